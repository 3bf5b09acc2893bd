r"""The cssnn core: one layer-step at a time, event driven, N lanes.

Block diagram (one clock per box boundary; S0 = issue, S1 = execute; UPDATE has a second stage S2:
the NeuronArray's stage register splits the update, write-back/spikes/stall/argmax come from S2)::

      step (config stream) ---> [ FSM: IDLE -> ACCUM -> UPDATE -> FLUSH -> IDLE, done pulse ]
                                       |                |
    events (index, neg, end) --> S0: synapse row addr   S0: word addr nb+g
                                  syn_base+(i<<k)+g       |
                                       |                  v
                             [synapse mem]  [acc mem]  [state mem]  [bias mem]   (sync reads = BRAM)
                                       \    /  ^ forwarded           |             |
                                 S1: SpikeAccumulator --+      S1/S2: NeuronArray (N x TsaLane, 2 stages)
                                       (acc +/- w)                |    |      \
                                                       state/acc<-+    |       Argmax (output modes,
                                                       write back      v       registered tree)
                                                            SpikeSerializer --> out (index, neg, end)

Per-step protocol (see docs/HARDWARE.md):

1. While ``busy`` is low the controller hands a :func:`config_layout` word to the ``step`` stream.
2. ACCUM: the core consumes ``events`` until an event with ``end = 1``. A spike event (i, neg) costs
   ``groups`` clocks (one synapse row and one accumulator word per group), steady state one row per
   clock; back-to-back events on the same accumulator word are forwarded (the sum written by S1 is
   registered and replaces the read data of the same word in the next clock).
3. UPDATE: one word (N neurons) per clock: membrane, flag, accumulator, bias are read; the TSA update
   is written back and the accumulator cleared; nonzero spikes go to the serializer (a word with s > 1
   spikes holds the update stage s clocks). Output modes feed the argmax instead and emit no spikes.
4. FLUSH: after the last spike, one end marker on ``out``; then ``done`` pulses for one clock and the
   core is idle again. So a step's ``out`` is its spikes in ascending index order plus an end marker,
   directly usable as the next layer's ``events``.

The ``host`` port reads and writes one lane of one memory per clock (read data one clock later) and
only acts while the core is idle. The encoder's input x is loaded as the bias of the encoder neurons
(its SILENT step then computes v = sat(0 + x), identical to the spec's I = x, b = 0).
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, signed
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .accumulator import SpikeAccumulator
from .argmax import Argmax
from .neuron import NeuronArray
from .params import CoreParams, HostMem, Mode, check_params, config_layout, event_layout, state_lane_layout
from .serializer import SpikeSerializer
from .synapse import SynapseMemory

__all__ = ["Core", "host_signature", "COUNTERS"]

#: Counter ports of the core, in this order.
COUNTERS = ("cycles", "events", "synops", "spikes", "steps")


def host_signature(p: CoreParams) -> wiring.Signature:
    """Memory access from the host's side: one lane per clock; ``rdata`` is the lane addressed in the
    previous clock (``sel``, ``addr``, ``lane``). Writes (``we``) and reads act only while idle."""
    return wiring.Signature({
        "sel": Out(2), "addr": Out(p.host_addr_bits), "lane": Out(max(1, p.lane_bits)),
        "wdata": Out(p.host_data_bits), "we": Out(1), "rdata": In(p.host_data_bits),
    })


class Core(wiring.Component):
    """A cssnn core. Ports:

    ``step``      In stream of :func:`~cssnn.hw.params.config_layout` (accepted only while idle)
    ``events``    In stream of :func:`~cssnn.hw.params.event_layout` (the step's input spikes + end marker)
    ``out``       Out stream of events (the step's output spikes + end marker)
    ``busy``      high from the accepted ``step`` until ``done``
    ``done``      one-clock pulse when the step's end marker has been accepted on ``out``
    ``host``      In :func:`host_signature` memory access
    ``argmax_index``, ``argmax_value``  argmax of the last output-mode step
    ``cnt_cycles``  busy clocks; ``cnt_events`` input spike events; ``cnt_synops`` synaptic operations
    (unmasked synapses touched); ``cnt_spikes`` output spikes; ``cnt_steps`` steps done (see
    :data:`COUNTERS`); ``clear`` zeroes them all
    """

    def __init__(self, params: CoreParams):
        check_params(self, params)
        self.params = p = params
        sig = {
            "step": In(stream.Signature(config_layout(p))),
            "events": In(stream.Signature(event_layout(p))),
            "out": Out(stream.Signature(event_layout(p))),
            "busy": Out(1), "done": Out(1),
            "host": In(host_signature(p)),
            "argmax_index": Out(p.index_bits), "argmax_value": Out(signed(p.store_bits)),
            "clear": In(1),
        }
        for name in COUNTERS:
            sig[f"cnt_{name}"] = Out(p.counter_bits)
        super().__init__(sig)

    def elaborate(self, platform):
        p = self.params
        n = p.lanes
        m = Module()

        m.submodules.syn = syn = SynapseMemory(p)
        m.submodules.acc_mem = acc_mem = memory.Memory(shape=data.ArrayLayout(signed(p.acc_bits), n),
                                                       depth=p.groups, init=[])
        m.submodules.state_mem = state_mem = memory.Memory(shape=data.ArrayLayout(state_lane_layout(p), n),
                                                           depth=p.groups, init=[])
        m.submodules.bias_mem = bias_mem = memory.Memory(shape=data.ArrayLayout(signed(p.bias_bits), n),
                                                         depth=p.groups, init=[])
        acc_w = acc_mem.write_port(granularity=1)
        acc_r = acc_mem.read_port()
        st_w = state_mem.write_port(granularity=1)
        st_r = state_mem.read_port()
        bias_w = bias_mem.write_port(granularity=1)
        bias_r = bias_mem.read_port()
        m.submodules.adder = adder = SpikeAccumulator(p)
        m.submodules.neurons = neurons = NeuronArray(p, pipelined=True)
        m.submodules.ser = ser = SpikeSerializer(p)
        m.submodules.argmax = amax = Argmax(p)

        cfg = Signal(config_layout(p))
        g = Signal(p.group_bits + 1)          # S0 group counter
        s1_valid = Signal()
        s1_neg = Signal()
        s1_group = Signal(p.group_bits)
        s1_addr = Signal(p.group_bits)
        stall = Signal()
        idle = Signal()
        ev = self.events.payload
        word = Signal(p.group_bits)
        m.d.comb += word.eq(cfg.neuron_base + g)

        # ---- host access (idle only) ----
        h = self.host
        h_we = Signal()
        m.d.comb += h_we.eq(idle & h.we)
        h_sel_r = Signal(2)
        h_lane_r = Signal.like(h.lane)
        m.d.sync += [h_sel_r.eq(h.sel), h_lane_r.eq(h.lane)]
        lane_en = Signal(n)
        for k in range(n):
            m.d.comb += lane_en[k].eq(h.lane == k if n > 1 else 1)

        # Lane select by a case statement (word_select with a variable index would be a multiply).
        sources = {HostMem.SYNAPSE: (syn.read_data, p.weight_bits + 1), HostMem.STATE: (st_r.data, p.store_bits + 1),
                   HostMem.BIAS: (bias_r.data, p.bias_bits), HostMem.ACC: (acc_r.data, p.acc_bits)}
        with m.Switch(h_sel_r):
            for sel, (view, width) in sources.items():
                with m.Case(sel):
                    raw = view.as_value()
                    with m.Switch(h_lane_r):
                        for k in range(n):
                            with m.Case(k):
                                m.d.comb += h.rdata.eq(raw[k * width:(k + 1) * width])

        m.d.comb += [
            syn.write_addr.eq(h.addr), syn.write_lane.eq(h.lane), syn.write_data.eq(h.wdata[:p.weight_bits + 1]),
            syn.write_en.eq(h_we & (h.sel == HostMem.SYNAPSE)),
            bias_w.addr.eq(h.addr), bias_w.data.as_value().eq(h.wdata[:p.bias_bits].replicate(n)),
            bias_w.en.eq(Mux(h_we & (h.sel == HostMem.BIAS), lane_en, 0)),
        ]

        # ---- FSM ----
        fsm_state = Signal(2)  # 0 IDLE, 1 ACCUM, 2 UPDATE, 3 FLUSH
        IDLE, ACCUM, UPDATE, FLUSH = range(4)
        m.d.comb += [idle.eq(fsm_state == IDLE), self.busy.eq(~idle)]
        m.d.comb += self.step.ready.eq(idle)
        with m.If(self.step.valid & self.step.ready):
            m.d.sync += [cfg.eq(self.step.payload), fsm_state.eq(ACCUM), g.eq(0)]

        # Read addresses (S0) and enables
        m.d.comb += [
            syn.read_addr.eq(h.addr), acc_r.addr.eq(h.addr), st_r.addr.eq(h.addr), bias_r.addr.eq(h.addr),
            syn.read_en.eq(~stall), acc_r.en.eq(~stall), st_r.en.eq(~stall), bias_r.en.eq(~stall),
        ]
        issue = Signal()
        last_group = Signal()
        m.d.comb += last_group.eq(g + 1 >= cfg.groups)

        with m.If(fsm_state == ACCUM):
            row = Signal(p.row_bits)
            m.d.comb += [
                row.eq(cfg.syn_base + (ev.index << cfg.stride_log2) + g),
                syn.read_addr.eq(row), acc_r.addr.eq(word),
                issue.eq(self.events.valid & ~ev.end),
                self.events.ready.eq(ev.end | last_group),
            ]
            with m.If(issue):
                m.d.sync += g.eq(Mux(last_group, 0, g + 1))
            with m.If(self.events.valid & ev.end):
                m.d.sync += [fsm_state.eq(UPDATE), g.eq(0)]
            m.d.sync += [s1_valid.eq(issue), s1_neg.eq(ev.neg), s1_addr.eq(word)]

        with m.If(fsm_state == UPDATE):
            m.d.comb += [acc_r.addr.eq(word), st_r.addr.eq(word), bias_r.addr.eq(word),
                         issue.eq((g < cfg.groups) & ~stall)]
            with m.If(~stall):
                m.d.sync += [s1_valid.eq(issue), s1_addr.eq(word), s1_group.eq(g)]
                with m.If(issue):
                    m.d.sync += g.eq(g + 1)
                with m.Else():
                    m.d.sync += fsm_state.eq(FLUSH)

        # ---- S1, accumulate ----
        # Back-to-back events on one accumulator word: S0 reads the word in the clock S1 writes it, so
        # the new sum is forwarded by hand (a compare and a register) rather than by a read port
        # transparent to the write port: that transparency would also cover the host's writes and put
        # the bus address decode in front of the read-data register (a critical path on the ECP5).
        # Only ACCUM needs it: UPDATE reads each word once, after the last ACCUM write.
        fwd = Signal()
        fwd_data = Signal.like(adder.acc_out)
        m.d.sync += [fwd.eq((fsm_state == ACCUM) & s1_valid & (acc_r.addr == s1_addr)), fwd_data.eq(adder.acc_out)]
        m.d.comb += [adder.acc_in.eq(Mux(fwd, fwd_data, acc_r.data)), adder.row.eq(syn.read_data),
                     adder.neg.eq(s1_neg)]
        acc_lanes_all = Const(2**n - 1, n)
        with m.If((fsm_state == ACCUM) & s1_valid):
            m.d.comb += [acc_w.addr.eq(s1_addr), acc_w.data.eq(adder.acc_out), acc_w.en.eq(acc_lanes_all)]

        # ---- S1, update stage 1: m = 2v + I, I + b, fire flags (registered in the NeuronArray) ----
        # The update is split over two clocks for timing (BRAM outputs -> adders -> compares is one
        # clock, subtract 2*theta -> saturate -> mode select -> write-back/spikes/stall the next).
        # A stalled stage 2 holds stage 1 (the read ports' data hold while ~stall) and S0.
        st_in = st_r.data
        for k in range(n):
            m.d.comb += [neurons.v[k].eq(st_in[k].v), neurons.fired[k].eq(st_in[k].fired)]
        m.d.comb += [neurons.acc.eq(acc_r.data), neurons.bias.eq(bias_r.data), neurons.en.eq(~stall),
                     neurons.mode.eq(cfg.mode), neurons.threshold.eq(cfg.threshold)]
        valid_lanes = Signal(n)
        base = Signal(p.index_bits + 1)
        m.d.comb += base.eq(s1_group << p.lane_bits)
        for k in range(n):
            m.d.comb += valid_lanes[k].eq(base + k < cfg.count)
        # S1 -> S2 registers (besides the NeuronArray's): which word, which lanes are neurons of the layer
        s2_valid = Signal()
        s2_addr = Signal(p.group_bits)
        s2_group = Signal(p.group_bits)
        s2_lanes = Signal(n)
        with m.If(~stall):
            m.d.sync += [s2_valid.eq((fsm_state == UPDATE) & s1_valid), s2_addr.eq(s1_addr), s2_group.eq(s1_group),
                         s2_lanes.eq(valid_lanes)]
        # The accumulator word is cleared in stage 1: its value has gone into the stage register.
        fire1 = Signal()
        m.d.comb += fire1.eq((fsm_state == UPDATE) & s1_valid & ~stall)
        with m.If(fire1):
            m.d.comb += [acc_w.addr.eq(s1_addr), acc_w.data.as_value().eq(0), acc_w.en.eq(acc_lanes_all)]

        # ---- S2, update stage 2: write-back, spikes to the serializer, stall, argmax ----
        # (runs in UPDATE and in the first FLUSH clocks, until the last word has left)
        pos = Signal(n)
        neg = Signal(n)
        m.d.comb += [pos.eq(neurons.pos & s2_lanes), neg.eq(neurons.neg & s2_lanes)]
        any_spike = Signal()
        m.d.comb += any_spike.eq((pos | neg).any())
        m.d.comb += [
            stall.eq(s2_valid & any_spike & ~ser.i.ready),
            ser.i.payload.group.eq(s2_group), ser.i.payload.pos.eq(pos), ser.i.payload.neg.eq(neg),
            ser.i.valid.eq(s2_valid & any_spike),
        ]
        fire = Signal()
        m.d.comb += fire.eq(s2_valid & ~stall)
        st_word = Signal(data.ArrayLayout(state_lane_layout(p), n))
        for k in range(n):
            m.d.comb += [st_word[k].v.eq(neurons.v_next[k]), st_word[k].fired.eq(neurons.fired_next[k])]
        with m.If(fire):
            m.d.comb += [st_w.addr.eq(s2_addr), st_w.data.eq(st_word), st_w.en.eq(acc_lanes_all)]
        with m.Elif(h_we & (h.sel == HostMem.STATE)):
            m.d.comb += [st_w.addr.eq(h.addr), st_w.data.as_value().eq(h.wdata[:p.store_bits + 1].replicate(n)),
                         st_w.en.eq(lane_en)]
        with m.If(h_we & (h.sel == HostMem.ACC)):
            m.d.comb += [acc_w.addr.eq(h.addr), acc_w.data.as_value().eq(h.wdata[:p.acc_bits].replicate(n)),
                         acc_w.en.eq(lane_en)]
        is_out = Signal()
        m.d.comb += is_out.eq((cfg.mode == Mode.OUT) | (cfg.mode == Mode.OUT_FIRST))
        m.d.comb += [amax.en.eq(fire & is_out), amax.first.eq(s2_group == 0), amax.group.eq(s2_group),
                     amax.values.eq(neurons.v_next), amax.valid.eq(s2_lanes),
                     self.argmax_index.eq(amax.index), self.argmax_value.eq(amax.value)]

        # ---- output stream: serializer spikes, then the end marker ----
        end_ok = Signal()
        m.d.comb += [
            # the end marker waits for stage 2 to drain (its spikes go first) and for the argmax pipeline
            # (so argmax_index/value are final when done pulses)
            end_ok.eq((fsm_state == FLUSH) & ~s2_valid & ~ser.busy & ~amax.busy),
            self.out.valid.eq(ser.o.valid | end_ok),
            ser.o.ready.eq(self.out.ready),
        ]
        with m.If(ser.o.valid):
            m.d.comb += self.out.payload.eq(ser.o.payload)
        with m.Else():
            m.d.comb += self.out.payload.end.eq(1)
        with m.If(end_ok & self.out.ready):
            m.d.sync += fsm_state.eq(IDLE)
            m.d.comb += self.done.eq(1)

        # ---- counters ----
        cnt = {name: getattr(self, f"cnt_{name}") for name in COUNTERS}
        with m.If(self.clear):
            m.d.sync += [c.eq(0) for c in cnt.values()]
        with m.Else():
            with m.If(~idle):
                m.d.sync += cnt["cycles"].eq(cnt["cycles"] + 1)
            with m.If((fsm_state == ACCUM) & issue & last_group):
                m.d.sync += cnt["events"].eq(cnt["events"] + 1)
            with m.If((fsm_state == ACCUM) & s1_valid):
                m.d.sync += cnt["synops"].eq(cnt["synops"] + adder.synops)
            with m.If(ser.o.valid & self.out.ready):
                m.d.sync += cnt["spikes"].eq(cnt["spikes"] + 1)
            with m.If(self.done):
                m.d.sync += cnt["steps"].eq(cnt["steps"] + 1)
        return m

