"""The update stage of the core (UPDATE words): D, X, Y and Z of the TSA update, one word of N
neurons per clock, and the credits that keep it from ever stalling.

- X: :class:`~cssnn.hw.core.neuron.NeuronArray` stage 1 (``m = 2v + I``, ``I + b``, fire flags,
  ``m -/+ 2 theta``; registered inside the array), the mask of the lanes that are neurons of the
  layer (index < ``count``); the accumulator word is cleared (its value is in the stage register).
- Y: the array's stage 2 (reset select, saturation, mode select), spikes masked, into the Z
  registers.
- Z: the state write-back, the word's spikes to the output stage's word FIFO (``words``; the step's
  last word goes there even without spikes, marked ``end``: the end marker follows its spikes),
  output modes to the :class:`~cssnn.hw.core.argmax.Argmax`.

Z writes word g while Y holds g+1, X g+2, D g+3 and R reads g+4: never the same word, no forwarding.
A word is issued only with a *credit*, a place in the word FIFO not yet claimed by a word in flight
(taken at issue, returned when a word that does not go to the FIFO leaves Z or when the serializer
takes a word from the FIFO): the FIFO always has room, nothing downstream can refuse a word, and no ready
signal fans out to the stage registers and read ports.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from cssnn.hw.core.argmax import Argmax
from cssnn.hw.core.neuron import NeuronArray
from cssnn.hw.core.output import WORD_FIFO_DEPTH
from cssnn.hw.core.serializer import word_layout
from cssnn.hw.core.stores import word_clear_signature, word_write_signature
from cssnn.hw.params import CoreParams, Mode, check_params, state_lane_layout

__all__ = ["UpdateStage"]


class UpdateStage(wiring.Component):
    """In: ``update`` (a step is in UPDATE), ``issue`` (a word is issued in R), ``last`` (it is
    the step's last word), ``group`` (its group g), ``x_addr`` (the memory word of the item in X:
    the core's address register), ``mode``, ``threshold``, ``count``, ``encoder`` (the step's,
    taken while ``load`` is high: before the step's first word; without
    :attr:`~cssnn.hw.params.CoreParams.overlap` only while no word is in the stage, ``busy`` low,
    and held while its words are in it; with it, each word carries its step's config through the
    stages, so the next step may load while words of this one are still in them),
    ``state``, ``acc``, ``bias`` (the word read: the neuron store's D registers), ``word_taken``
    (the serializer took a word from the FIFO). With ``overlap`` also ``r_addr``/``d_addr`` (the
    memory words of the items in R and D) and ``load_addr`` (the first word of the step taken with
    ``load``; R reads it next): the hazard.

    Out: ``d_valid`` (an UPDATE word is in D), ``d_encoder`` (it is an encoder word: the neuron
    store zeroes its accumulator input), ``busy`` (a word is in D, X, Y or Z), ``credit`` (a word
    may issue), ``starving`` (every credit is free: no word in flight or in the FIFO, the serializer
    is about to idle), ``acc_clear`` (not for an encoder word: its accumulator words alias weight layers'),
    ``state_write`` (to the neuron store), ``words`` (the spike words, always taken: credits),
    ``argmax_idle`` (no word in the argmax), ``argmax_index``, ``argmax_value``; with ``overlap``
    ``hazard`` (the word R reads is still to be written back from D, X, Y or Z; a register, computed
    the clock before from the ``issue``/``load`` of that clock)."""

    def __init__(self, params: CoreParams):
        check_params(self, params)
        self.params = p = params
        n = p.lanes
        state = state_lane_layout(p)
        super().__init__({
            "update": In(1), "load": In(1), "issue": In(1), "last": In(1), "group": In(p.group_bits), "x_addr": In(p.group_bits),
            "mode": In(Mode), "threshold": In(p.threshold_bits), "count": In(p.index_bits + 1), "encoder": In(1),
            "state": In(data.ArrayLayout(state, n)), "acc": In(data.ArrayLayout(signed(p.acc_bits), n)),
            "bias": In(data.ArrayLayout(signed(p.bias_bits), n)), "word_taken": In(1),
            "d_valid": Out(1), "d_encoder": Out(1), "busy": Out(1), "credit": Out(1), "starving": Out(1),
            "acc_clear": Out(word_clear_signature(p)),
            "state_write": Out(word_write_signature(p, state)),
            "words": Out(stream.Signature(word_layout(p), always_ready=True)), "argmax_idle": Out(1),
            "argmax_index": Out(p.index_bits), "argmax_value": Out(signed(p.store_bits)),
            **({"r_addr": In(p.group_bits), "d_addr": In(p.group_bits), "load_addr": In(p.group_bits),
                "hazard": Out(1)} if p.overlap else {}),
        })

    def elaborate(self, platform):
        p = self.params
        n = p.lanes
        m = Module()
        m.submodules.neurons = neurons = NeuronArray(p, pipelined=True)
        m.submodules.argmax = amax = Argmax(p)
        # the step's config, for its words issued in R; with overlap each word takes it along through
        # D, X, Y, Z (what each stage uses), so a step may load while the words of the one before are
        # still in the stage; without, the stages share it (the core loads only while ~busy: on the
        # iCEBreaker's 2 lanes the copies cost LCs it does not have)
        cfg = data.StructLayout({"mode": Mode, "threshold": p.threshold_bits, "count": p.index_bits + 1, "encoder": 1})
        r_cfg = Signal(cfg)
        with m.If(self.load):
            m.d.sync += [r_cfg.mode.eq(self.mode), r_cfg.threshold.eq(self.threshold), r_cfg.count.eq(self.count),
                         r_cfg.encoder.eq(self.encoder)]
        if p.overlap:
            d_cfg, x_cfg, s2_mode, z_mode = Signal(cfg), Signal(cfg), Signal(Mode), Signal(Mode)
            m.d.sync += [d_cfg.eq(r_cfg), x_cfg.eq(d_cfg), s2_mode.eq(x_cfg.mode), z_mode.eq(s2_mode)]
        else:
            d_cfg = x_cfg = r_cfg
            s2_mode = z_mode = r_cfg.mode

        # D, X: the word's valid bit and group
        d_upd_v, x_upd_v = Signal(), Signal()
        d_end, x_end, s2_end, z_end = Signal(), Signal(), Signal(), Signal()   # the step's last word
        d_group, x_group = Signal(p.group_bits), Signal(p.group_bits)
        with m.If(self.update):
            m.d.sync += [d_upd_v.eq(self.issue), d_group.eq(self.group), d_end.eq(self.issue & self.last)]
        with m.Else():
            m.d.sync += [d_upd_v.eq(0), d_end.eq(0)]
        m.d.sync += [x_upd_v.eq(d_upd_v), x_group.eq(d_group), x_end.eq(d_end), s2_end.eq(x_end), z_end.eq(s2_end)]

        # X: the array's stage 1, the layer's lanes, the accumulator clear
        for k in range(n):
            m.d.comb += [neurons.v[k].eq(self.state[k].v), neurons.fired[k].eq(self.state[k].fired)]
        m.d.comb += [neurons.acc.eq(self.acc), neurons.bias.eq(self.bias), neurons.en.eq(1),
                     neurons.mode.eq(s2_mode), neurons.threshold.eq(d_cfg.threshold)]
        valid_lanes = Signal(n)
        base = Signal(p.index_bits + 1)
        m.d.comb += base.eq(x_group << p.lane_bits)
        for k in range(n):
            m.d.comb += valid_lanes[k].eq(base + k < x_cfg.count)
        s2_valid = Signal()
        s2_addr = Signal(p.group_bits)
        s2_group = Signal(p.group_bits)
        s2_lanes = Signal(n)
        m.d.sync += [s2_valid.eq(x_upd_v), s2_addr.eq(self.x_addr), s2_group.eq(x_group), s2_lanes.eq(valid_lanes)]
        m.d.comb += [self.acc_clear.en.eq(x_upd_v & ~x_cfg.encoder), self.acc_clear.addr.eq(self.x_addr)]

        # Y: the array's stage 2, spikes masked, into the Z registers
        pos, neg = Signal(n), Signal(n)
        m.d.comb += [pos.eq(neurons.pos & s2_lanes), neg.eq(neurons.neg & s2_lanes)]
        z_valid, z_any = Signal(), Signal()
        z_addr = Signal(p.group_bits)
        z_group = Signal(p.group_bits)
        z_lanes, z_pos, z_neg = Signal(n), Signal(n), Signal(n)
        z_word = Signal(data.ArrayLayout(state_lane_layout(p), n))
        m.d.sync += [z_valid.eq(s2_valid), z_addr.eq(s2_addr), z_group.eq(s2_group), z_lanes.eq(s2_lanes),
                     z_pos.eq(pos), z_neg.eq(neg), z_any.eq((pos | neg).any())]
        for k in range(n):
            m.d.sync += [z_word[k].v.eq(neurons.v_next[k]), z_word[k].fired.eq(neurons.fired_next[k])]

        # Z: write-back, spike words, argmax
        w = self.words.payload
        m.d.comb += [self.state_write.en.eq(z_valid), self.state_write.addr.eq(z_addr), self.state_write.data.eq(z_word),
                     w.group.eq(z_group), w.pos.eq(z_pos), w.neg.eq(z_neg), w.end.eq(z_end),
                     self.words.valid.eq(z_valid & (z_any | z_end))]
        is_out = Signal()
        m.d.comb += is_out.eq((z_mode == Mode.OUT) | (z_mode == Mode.OUT_FIRST))
        m.d.comb += [amax.en.eq(z_valid & is_out), amax.first.eq(z_group == 0), amax.group.eq(z_group),
                     amax.values.eq(Cat(z_word[k].v for k in range(n))), amax.valid.eq(z_lanes),
                     self.argmax_index.eq(amax.index), self.argmax_value.eq(amax.value)]

        # credits: taken by an issued word, returned by a word without spikes leaving Z or by the
        # serializer taking a word from the FIFO
        free = Signal(range(WORD_FIFO_DEPTH + 1), init=WORD_FIFO_DEPTH)
        ret = Signal(2)
        m.d.comb += [self.credit.eq(free != 0), self.starving.eq(free == WORD_FIFO_DEPTH),
                     ret.eq((z_valid & ~z_any & ~z_end) + self.word_taken)]
        m.d.sync += free.eq(free + ret - (self.update & self.issue))
        m.d.comb += [self.d_valid.eq(d_upd_v), self.d_encoder.eq(d_cfg.encoder), self.argmax_idle.eq(~amax.busy),
                     self.busy.eq(d_upd_v | x_upd_v | s2_valid | z_valid)]
        if p.overlap:
            # the memory word R reads is still to be written back by a word in D, X, Y or Z (of an
            # earlier step of its layer: a step's own words are distinct). A register, computed a clock
            # ahead for each word R may read next (the first word of a step loaded, the next word, the
            # same one), so the compares stay off the issue path (ECP5 timing): the words in D, X, Y now
            # are those in X, Y, Z then, and a word issued now is in D then
            def ahead(addr):
                return (d_upd_v & (self.d_addr == addr)) | (x_upd_v & (self.x_addr == addr)) | (s2_valid & (s2_addr == addr))
            issued = self.update & self.issue
            r_next = Signal(p.group_bits)
            m.d.comb += r_next.eq(self.r_addr + 1)
            m.d.sync += self.hazard.eq(Mux(self.load, ahead(self.load_addr) | (issued & (self.r_addr == self.load_addr)),
                                           Mux(issued, ahead(r_next), ahead(self.r_addr))))
        return m
