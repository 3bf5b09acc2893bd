"""The core's memories with their address and output registers: :class:`SynapseStore`,
:class:`NeuronStore` and :class:`IndexStore`.

Both have two sides. The *pipeline* side: the read address comes from a register of the pipeline
(the synapse store's own ``row``, the core's ``word``) while a phase reads, and every memory output
is registered (D) before any logic. The *random-access* side: explicit read and write ports (the
signatures below) for a client that reads or writes one word or lane at a time: today the host port
(:class:`~cssnn.hw.core.host.HostPort`), which uses them only while the core is idle. A read port's
``data`` is the word addressed two clocks earlier (the memory's synchronous read, then the D
register); a write lands at the clock edge.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from cssnn.hw.core.synapse import SynapseMemory
from cssnn.hw.params import CoreParams, check_params, index_lane_layout, state_lane_layout, syn_lane_layout

__all__ = ["SynapseStore", "NeuronStore", "IndexStore", "synapse_read_signature", "synapse_write_signature",
           "neuron_read_signature", "neuron_write_signature", "index_read_signature", "index_write_signature",
           "word_write_signature", "lanes_write_signature", "word_clear_signature"]


def _row(p: CoreParams) -> data.ArrayLayout:
    return data.ArrayLayout(syn_lane_layout(p), p.lanes)


def synapse_read_signature(p: CoreParams) -> wiring.Signature:
    """A read of the synapse store, reader's side: ``data`` is row ``addr`` two clocks later."""
    return wiring.Signature({"addr": Out(p.row_bits), "data": In(_row(p))})


def synapse_write_signature(p: CoreParams) -> wiring.Signature:
    """A write of one lane (weight, mask) of synapse row ``addr``, writer's side."""
    return wiring.Signature({"addr": Out(p.row_bits), "lane": Out(max(1, p.lane_bits)),
                             "data": Out(syn_lane_layout(p)), "en": Out(1)})


def neuron_read_signature(p: CoreParams) -> wiring.Signature:
    """A read of the neuron store, reader's side: word ``addr`` of the state, bias and accumulator
    memories two clocks later."""
    n = p.lanes
    return wiring.Signature({
        "addr": Out(p.group_bits), "state": In(data.ArrayLayout(state_lane_layout(p), n)),
        "bias": In(data.ArrayLayout(signed(p.bias_bits), n)), "acc": In(data.ArrayLayout(signed(p.acc_bits), n)),
    })


def neuron_write_signature(p: CoreParams) -> wiring.Signature:
    """Lane writes into the neuron store, writer's side: the low bits of ``data`` into the lanes set in
    ``lanes`` of word ``addr`` of each memory whose enable (``state``, ``bias``, ``acc``) is high."""
    return wiring.Signature({"addr": Out(p.group_bits), "lanes": Out(p.lanes), "data": Out(p.host_data_bits),
                             "state": Out(1), "bias": Out(1), "acc": Out(1)})


def index_read_signature(p: CoreParams) -> wiring.Signature:
    """A read of the index memory, reader's side: ``data`` is entry ``addr * N + lane`` two clocks later."""
    return wiring.Signature({"addr": Out(p.group_bits), "lane": Out(max(1, p.lane_bits)),
                             "data": In(index_lane_layout(p))})


def index_write_signature(p: CoreParams) -> wiring.Signature:
    """A write of index-memory entry ``addr * N + lane``, writer's side."""
    return wiring.Signature({"addr": Out(p.group_bits), "lane": Out(max(1, p.lane_bits)),
                             "data": Out(index_lane_layout(p)), "en": Out(1)})


def lanes_write_signature(p: CoreParams, lane_shape) -> wiring.Signature:
    """A pipeline stage's write of all N lanes, each lane ``k`` at its own word ``addr[k]``, writer's side."""
    return wiring.Signature({"en": Out(1), "addr": Out(data.ArrayLayout(p.group_bits, p.lanes)),
                             "data": Out(data.ArrayLayout(lane_shape, p.lanes))})


def word_write_signature(p: CoreParams, lane_shape) -> wiring.Signature:
    """A pipeline stage's write of a whole word (all N lanes of ``lane_shape``), writer's side."""
    return wiring.Signature({"en": Out(1), "addr": Out(p.group_bits),
                             "data": Out(data.ArrayLayout(lane_shape, p.lanes))})


def word_clear_signature(p: CoreParams) -> wiring.Signature:
    """A pipeline stage's clear (all lanes to zero) of word ``addr``, writer's side."""
    return wiring.Signature({"en": Out(1), "addr": Out(p.group_bits)})


class SynapseStore(wiring.Component):
    """The synapse memory (:class:`~cssnn.hw.core.synapse.SynapseMemory`), its read address register
    ``row`` and its D register.

    Pipeline side: ``row_load`` loads ``row`` with ``row_first`` (an event's first row), else
    ``row_step`` steps it; while ``accum`` is high the memory reads ``row``; ``row_data`` is the row
    read, registered. With ``walk = "lanes"`` all three are per lane (each bank has its own ``row``),
    and a lane whose bank issued no read while ``accum`` comes out of D as zeros (no synapse: mask 0,
    word 0 of the layer). Random-access side: ``read`` (:func:`synapse_read_signature`; its address is
    used while ``accum`` is low, its ``data`` is ``row_data``) and ``write``
    (:func:`synapse_write_signature`).
    """

    def __init__(self, params: CoreParams):
        check_params(self, params)
        self.params = p = params
        lanes = p.walk == "lanes"
        super().__init__({
            "read": In(synapse_read_signature(p)), "write": In(synapse_write_signature(p)),
            "accum": In(1), "row_load": In(p.lanes if lanes else 1),
            "row_first": In(data.ArrayLayout(p.row_bits, p.lanes) if lanes else p.row_bits),
            "row_step": In(p.lanes if lanes else 1),
            "row_data": Out(_row(p)),
        })

    def elaborate(self, platform):
        p = self.params
        m = Module()
        m.submodules.mem = mem = SynapseMemory(p)
        # the read address comes from a register: timing (docs/BOARDS.md, item 19)
        d_syn = Signal.like(mem.read_data)
        if p.walk == "lanes":
            for k in range(p.lanes):
                row, zero = Signal(p.row_bits), Signal()
                with m.If(self.row_load[k]):
                    m.d.sync += row.eq(self.row_first[k])
                with m.Elif(self.row_step[k]):
                    m.d.sync += row.eq(row + 1)
                m.d.comb += mem.read_addr[k].eq(Mux(self.accum, row, self.read.addr))
                # D: the memory output registered before any logic; zeros (a synchronous reset) for a
                # lane that read nothing
                m.d.sync += zero.eq(self.accum & ~self.row_step[k])
                with m.If(zero):
                    m.d.sync += d_syn[k].eq(0)
                with m.Else():
                    m.d.sync += d_syn[k].eq(mem.read_data[k])
        else:
            row = Signal(p.row_bits)
            with m.If(self.row_load):
                m.d.sync += row.eq(self.row_first)
            with m.Elif(self.row_step):
                m.d.sync += row.eq(row + 1)
            m.d.comb += mem.read_addr.eq(self.read.addr)
            with m.If(self.accum):
                m.d.comb += mem.read_addr.eq(row)
            # D: the memory output registered before any logic
            m.d.sync += d_syn.eq(mem.read_data)
        m.d.comb += [
            self.row_data.eq(d_syn), self.read.data.eq(d_syn),
            mem.write_addr.eq(self.write.addr), mem.write_lane.eq(self.write.lane),
            mem.write_data.eq(self.write.data), mem.write_en.eq(self.write.en),
        ]
        return m


class NeuronStore(wiring.Component):
    """The state, accumulator and bias memories (one word of N lanes per address) and their D
    registers.

    The accumulator is N banks, one per lane, so that each lane can be addressed on its own.
    Pipeline side: while ``acc_read`` accumulator bank ``k`` reads word ``acc_addr[k]`` (the word of
    lane ``k``'s synapse in the row in A); while ``update`` all three memories read ``word``;
    ``state``, ``bias``, ``acc`` are the words read, registered; ``acc_upd`` is a second register of
    the accumulator word, loaded only while ``upd_valid`` (an UPDATE word is in D), for the neuron
    lanes (with ``upd_zero``, that word is an encoder's: zero; with ``overlap`` it takes the
    ``acc_write`` sums of that word written in its read's clock and the next). Pipeline writes: ``acc_write`` (the
    accumulate stage's sums, each lane at its own word), ``acc_clear`` and ``state_write`` (the
    update stage's clear and write-back).

    Random-access side: ``read`` (:func:`neuron_read_signature`; its address is used while no phase
    reads) and ``write`` (:func:`neuron_write_signature`). Writers by priority, lowest first: the
    accumulator ``acc_write``, ``acc_clear``, ``write.acc``; the state ``write.state``,
    ``state_write``; the bias only ``write.bias``.
    """

    def __init__(self, params: CoreParams):
        check_params(self, params)
        self.params = p = params
        n = p.lanes
        state, acc = state_lane_layout(p), signed(p.acc_bits)
        super().__init__({
            "read": In(neuron_read_signature(p)), "write": In(neuron_write_signature(p)),
            "acc_read": In(1), "update": In(1), "word": In(p.group_bits),
            "upd_valid": In(1), "upd_zero": In(1),
            "acc_addr": In(data.ArrayLayout(p.group_bits, n)),
            "state": Out(data.ArrayLayout(state, n)), "bias": Out(data.ArrayLayout(signed(p.bias_bits), n)),
            "acc": Out(data.ArrayLayout(acc, n)), "acc_upd": Out(data.ArrayLayout(acc, n)),
            "acc_write": In(lanes_write_signature(p, acc)), "acc_clear": In(word_clear_signature(p)),
            "state_write": In(word_write_signature(p, state)),
        })

    def elaborate(self, platform):
        p = self.params
        n = p.lanes
        m = Module()
        acc_shape = signed(p.acc_bits)
        banks = []
        for k in range(n):
            # acc_words deep: a word's low bits address it (the weight layers' words are distinct
            # there; the encoder's alias them and read zeros, docs/HARDWARE.md)
            m.submodules[f"acc_mem{k}"] = bank = memory.Memory(shape=acc_shape, depth=p.acc_words, init=[])
            banks.append((bank.write_port(), bank.read_port()))
        m.submodules.state_mem = state_mem = memory.Memory(shape=data.ArrayLayout(state_lane_layout(p), n),
                                                           depth=p.groups, init=[])
        m.submodules.bias_mem = bias_mem = memory.Memory(shape=data.ArrayLayout(signed(p.bias_bits), n),
                                                         depth=p.groups, init=[])
        st_w, st_r = state_mem.write_port(granularity=1), state_mem.read_port()
        bias_w, bias_r = bias_mem.write_port(granularity=1), bias_mem.read_port()

        # read addresses (R): the read ports are always enabled (nothing in the pipeline stalls)
        m.d.comb += [st_r.addr.eq(self.read.addr), bias_r.addr.eq(self.read.addr)]
        with m.If(self.update):
            m.d.comb += [st_r.addr.eq(self.word), bias_r.addr.eq(self.word)]
        acc_data = Signal(data.ArrayLayout(acc_shape, n))
        for k, (_, acc_r) in enumerate(banks):
            m.d.comb += [acc_r.addr.eq(self.read.addr), acc_data[k].eq(acc_r.data)]
            with m.If(self.update):
                m.d.comb += acc_r.addr.eq(self.word)
            with m.If(self.acc_read):
                m.d.comb += acc_r.addr.eq(self.acc_addr[k])

        # D: the memory outputs registered before any logic (timing, docs/HARDWARE.md)
        d_acc, d_state, d_bias = Signal.like(acc_data), Signal.like(st_r.data), Signal.like(bias_r.data)
        m.d.sync += [d_acc.eq(acc_data), d_state.eq(st_r.data), d_bias.eq(bias_r.data)]
        # the lanes' own copy, kept apart from d_acc by its enable: timing (docs/BOARDS.md, item 16)
        # (zero for an encoder word: a synchronous reset of the register, no logic in front of it)
        d_acc_upd = Signal.like(acc_data)
        upd_data = acc_data
        if p.overlap:
            # the accumulate stage's sums written while the word is read (R) and in D are forwarded into
            # it, lane by lane, so a step's first word may issue while its last sums are in D2 and X
            # (hits on the whole word address: an encoder word's differs from every weight layer's, it
            # aliases them only in the banks; the compares run a clock ahead of the data, and the mux
            # sits in front of this register, not of the lanes' adders: ECP5 timing)
            upd_data = Signal.like(acc_data)
            d_word = Signal(p.group_bits)
            r_hit, d_hit = Signal(n), Signal(n)
            r_sums = Signal.like(acc_data)     # the sums written in R (the read misses them)
            aw = self.acc_write
            m.d.sync += [d_word.eq(self.word), r_sums.eq(aw.data)]
            for k in range(n):
                m.d.sync += r_hit[k].eq(aw.en & (aw.addr[k] == self.word))
                m.d.comb += [d_hit[k].eq(aw.en & (aw.addr[k] == d_word)),
                             upd_data[k].eq(Mux(d_hit[k], aw.data[k], Mux(r_hit[k], r_sums[k], acc_data[k])))]
        with m.If(self.upd_valid & self.upd_zero):
            m.d.sync += d_acc_upd.eq(0)
        with m.Elif(self.upd_valid):
            m.d.sync += d_acc_upd.eq(upd_data)
        m.d.comb += [self.acc.eq(d_acc), self.acc_upd.eq(d_acc_upd), self.state.eq(d_state), self.bias.eq(d_bias),
                     self.read.acc.eq(d_acc), self.read.state.eq(d_state), self.read.bias.eq(d_bias)]

        # writes
        w = self.write
        all_lanes = Const(2**n - 1, n)
        for k, (acc_w, _) in enumerate(banks):
            with m.If(self.acc_write.en):
                m.d.comb += [acc_w.addr.eq(self.acc_write.addr[k]), acc_w.data.eq(self.acc_write.data[k]), acc_w.en.eq(1)]
            with m.If(self.acc_clear.en):
                m.d.comb += [acc_w.addr.eq(self.acc_clear.addr), acc_w.data.eq(0), acc_w.en.eq(1)]
            with m.If(w.acc & w.lanes[k]):
                m.d.comb += [acc_w.addr.eq(w.addr), acc_w.data.eq(w.data[:p.acc_bits]), acc_w.en.eq(1)]
        with m.If(self.state_write.en):
            m.d.comb += [st_w.addr.eq(self.state_write.addr), st_w.data.eq(self.state_write.data),
                         st_w.en.eq(all_lanes)]
        with m.Elif(w.state):
            m.d.comb += [st_w.addr.eq(w.addr), st_w.data.as_value().eq(w.data[:state_lane_layout(p).size].replicate(n)),
                         st_w.en.eq(w.lanes)]
        m.d.comb += [bias_w.addr.eq(w.addr), bias_w.data.as_value().eq(w.data[:p.bias_bits].replicate(n)),
                     bias_w.en.eq(Mux(w.bias, w.lanes, 0))]
        return m


class IndexStore(wiring.Component):
    """The index memory: per neuron slot (``word * N + lane``) the synapse rows of that neuron as a
    presynaptic neuron (:func:`~cssnn.hw.params.index_lane_layout`: first row, row count).

    Pipeline side: ``pipe_addr`` (a slot), ``pipe_en`` (0 holds ``pipe_data``) -> ``pipe_data``, the
    memory's synchronous read data (one clock later; the reader registers it). Random-access side:
    ``read`` (:func:`index_read_signature`; its address is used while ``accum`` is low) and ``write``
    (:func:`index_write_signature`)."""

    def __init__(self, params: CoreParams):
        check_params(self, params)
        self.params = p = params
        super().__init__({
            "read": In(index_read_signature(p)), "write": In(index_write_signature(p)),
            "accum": In(1), "pipe_addr": In(p.slot_bits), "pipe_en": In(1), "pipe_data": Out(index_lane_layout(p)),
        })

    def elaborate(self, platform):
        p = self.params
        m = Module()
        layout = index_lane_layout(p)

        def slot(port):
            return port.addr if p.lanes == 1 else Cat(port.lane[:p.lane_bits], port.addr)

        # one memory per field (first row, row count): narrower memories map to fewer block RAMs
        # (iCE40: a 14-bit and an 8-bit field fit 256 x 16 and 512 x 8 blocks, 22 bits would not).
        # Block RAM always: the event input adds the slot in front of the address, and an ECP5 LUT RAM
        # would have its read and the mux tree after it in that clock too (96.4 MHz)
        rd_data = Signal(layout)
        for name, field in layout:
            m.submodules[f"{name}_mem"] = mem = memory.Memory(shape=field.shape, depth=p.neurons, init=[],
                                                              attrs={"ram_style": "block"})
            wr, rd = mem.write_port(), mem.read_port()
            m.d.comb += [rd.addr.eq(slot(self.read)), rd.en.eq(1), getattr(rd_data, name).eq(rd.data)]
            with m.If(self.accum):
                m.d.comb += [rd.addr.eq(self.pipe_addr), rd.en.eq(self.pipe_en)]
            m.d.comb += [wr.addr.eq(slot(self.write)), wr.data.eq(getattr(self.write.data, name)), wr.en.eq(self.write.en)]
        d = Signal.like(rd_data)
        m.d.sync += d.eq(rd_data)
        m.d.comb += [self.pipe_data.eq(rd_data), self.read.data.eq(d)]
        return m
