r"""The cssnn core: one layer-step at a time, event driven, N lanes.

Block diagram (one clock per box boundary; R = read addresses, D = the memory outputs registered,
X = accumulate or update stage 1, Y = update stage 2, Z = write-back, spikes, argmax)::

      step (config stream) ---> [ FSM: IDLE -> ACCUM -> UPDATE -> FLUSH -> IDLE, done pulse ]
                                       |                |
    events --> [E1] --> [event register], row = syn_base+(i<<k) (register, +1 per group)
                                  R: synapse row addr     R: word addr nb+g (register)
                                     row                  |
                                       |                  v
                             [synapse mem]  [acc mem]  [state mem]  [bias mem]   (sync reads = BRAM)
                                 D: registers ---------------------------------
                                       \    /  ^ sums of the two items ahead forwarded
                                 X: SpikeAccumulator --+      X/Y: NeuronArray (N x TsaLane, 2 stages)
                                       (acc +/- w)                |    |      \
                                                    Z: state/acc<-+    |       Argmax (output modes,
                                                       write back      v       registered tree)
                                                   word FIFO (credits) -> SpikeSerializer -> out

Per-step protocol (see docs/HARDWARE.md):

1. While ``busy`` is low the controller hands a :func:`config_layout` word to the ``step`` stream.
2. ACCUM: the core consumes ``events`` until an event with ``end = 1``. A spike event (i, neg) costs
   ``groups`` clocks (one synapse row and one accumulator word per group), steady state one row per
   clock; back-to-back events on the same accumulator word are forwarded (an item's read misses the
   sums of the two items ahead of it; those are muxed in front of the adder).
3. UPDATE: one word (N neurons) per clock: membrane, flag, accumulator, bias are read; the TSA update
   is written back and the accumulator cleared; nonzero spikes go through a word FIFO to the
   serializer (one spike per clock). A word is issued only while the FIFO has a place reserved for it,
   so the pipeline never stalls. Output modes feed the argmax instead and emit no spikes.
4. FLUSH: after the last spike, one end marker on ``out``; then ``done`` pulses for one clock and the
   core is idle again. So a step's ``out`` is its spikes in ascending index order plus an end marker,
   directly usable as the next layer's ``events``.

The ``host`` port reads and writes one lane of one memory per clock (read data four clocks later; a
write lands one clock after it is presented) and only acts while the core is idle. The encoder's
input x is loaded as the bias of the encoder neurons (its SILENT step then computes v = sat(0 + x),
identical to the spec's I = x, b = 0).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from ..params import CoreParams, HostMem, Mode, check_params, config_layout, event_layout, state_lane_layout
from .accumulator import SpikeAccumulator
from .argmax import Argmax
from .neuron import NeuronArray
from .serializer import SpikeSerializer, word_layout
from .skid import SkidBuffer
from .synapse import SynapseMemory

__all__ = ["Core", "host_signature", "COUNTERS", "HOST_READ_LATENCY"]

#: Clocks from a host-port read address to its ``rdata``.
HOST_READ_LATENCY = 4

#: The host read's first select takes one lane of a group of 2**READ_GROUP_BITS lanes, the second
#: one group (on the ECP5 one select over 16 lanes is too long a path).
READ_GROUP_BITS = 2

#: Words (of N spikes) the update can have in flight between issue and the serializer: five stages
#: (R, D, X, Y, Z) to keep one word per clock, the rest absorbs words with several spikes.
WORD_FIFO_DEPTH = 8

#: Counter ports of the core, in this order.
COUNTERS = ("cycles", "events", "synops", "spikes", "steps")


def host_signature(p: CoreParams) -> wiring.Signature:
    """Memory access from the host's side: one lane per clock; ``rdata`` is the lane addressed four
    clocks earlier (``sel``, ``addr``, ``lane``); a write (``we``) lands a clock later. Writes and reads
    act only while idle."""
    return wiring.Signature({
        "sel": Out(HostMem), "addr": Out(p.host_addr_bits), "lane": Out(max(1, p.lane_bits)),
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
        # buffered: the serializer takes the FIFO's word from a register, not from a LUT-RAM read
        m.submodules.word_fifo = word_fifo = SyncFIFOBuffered(width=word_layout(p).size, depth=WORD_FIFO_DEPTH)

        cfg = Signal(config_layout(p))
        g = Signal(p.group_bits + 1)          # R-stage group counter
        # last_group = (g + 1 >= cfg.groups), kept as a register (updated wherever ACCUM sets g): it
        # gates the event handshake, which runs on into the router's FIFO read enable
        last_group = Signal()
        idle = Signal()
        # word = neuron_base + g, kept as a register (stepped wherever g is): the address of the LUT-RAM
        # memories must not come through an adder (on the ECP5 that adder, the read and the data
        # register were the critical path)
        word = Signal(p.group_bits)

        # Pipeline stages (see the module docstring): R (read addresses) -> D (memory outputs into
        # registers) -> X (accumulate, or update stage 1) -> Y (update stage 2) -> Z (write-back,
        # spikes, argmax). Each stage has a valid bit per kind, because ACCUM items are still in flight
        # when the FSM is in UPDATE, and UPDATE items when it is in FLUSH.
        d_acc_v, d_upd_v = Signal(), Signal()
        d_neg = Signal()
        d_addr = Signal(p.group_bits)
        d_group = Signal(p.group_bits)
        x_acc_v, x_upd_v = Signal(), Signal()
        x_neg = Signal()
        x_addr = Signal(p.group_bits)
        x_group = Signal(p.group_bits)

        # D registers: the memory outputs (loaded every clock)
        d_syn = Signal.like(syn.read_data)
        d_acc = Signal.like(acc_r.data)
        d_state = Signal.like(st_r.data)
        d_bias = Signal.like(bias_r.data)

        # ---- host access (idle only) ----
        # Writes are registered and land one clock later: the address decode and lane select would
        # otherwise sit in front of the memories' write enables (on the UP5K, SPRAM chip select and
        # write enable, a critical path). So a read in the clock right after a write of the same
        # element returns the old value.
        h = self.host
        h_we = Signal()
        h_wsel = Signal(HostMem)
        h_waddr = Signal.like(h.addr)
        h_wlane = Signal.like(h.lane)
        h_wdata = Signal.like(h.wdata)
        m.d.sync += [h_we.eq(idle & h.we), h_wsel.eq(h.sel), h_waddr.eq(h.addr), h_wlane.eq(h.lane),
                     h_wdata.eq(h.wdata)]
        # Reads come from the D registers (the memory outputs registered), then two registered selects:
        # memory and lane within a group of lanes (READ_GROUP_BITS), then the group. Four clocks from
        # the address: a block RAM's output must not run into a select in the same clock, and one select
        # over all 16 lanes spans the lanes' whole placement (it was the ECP5's critical path).
        h_sel_r, h_sel_r2 = Signal(HostMem), Signal(HostMem)
        h_lane_r, h_lane_r2, h_lane_r3 = Signal.like(h.lane), Signal.like(h.lane), Signal.like(h.lane)
        m.d.sync += [h_sel_r.eq(h.sel), h_lane_r.eq(h.lane), h_sel_r2.eq(h_sel_r), h_lane_r2.eq(h_lane_r),
                     h_lane_r3.eq(h_lane_r2)]
        lane_en = Signal(n)
        for k in range(n):
            m.d.comb += lane_en[k].eq(h_wlane == k if n > 1 else 1)

        # Selects by case statements (word_select with a variable index would be a multiply).
        sources = {HostMem.SYNAPSE: (d_syn, p.weight_bits + 1), HostMem.STATE: (d_state, p.store_bits + 1),
                   HostMem.BIAS: (d_bias, p.bias_bits), HostMem.ACC: (d_acc, p.acc_bits)}
        gb = min(p.lane_bits, READ_GROUP_BITS)
        groups = [Signal.like(h.rdata, name=f"h_read_group{j}") for j in range(n >> gb)]

        def select(index, choices, target):
            if len(choices) == 1:
                m.d.sync += target.eq(choices[0])
                return
            with m.Switch(index):
                for k, choice in enumerate(choices):
                    with m.Case(k):
                        m.d.sync += target.eq(choice)

        for j, group in enumerate(groups):
            with m.Switch(h_sel_r2):
                for sel, (view, width) in sources.items():
                    with m.Case(sel):
                        lanes = view.as_value()[j * width << gb:(j + 1) * width << gb]
                        select(h_lane_r2[:gb], [lanes[k * width:(k + 1) * width] for k in range(1 << gb)], group)
        select(h_lane_r3[gb:], groups, h.rdata)

        m.d.comb += [
            syn.write_addr.eq(h_waddr), syn.write_lane.eq(h_wlane), syn.write_data.eq(h_wdata[:p.weight_bits + 1]),
            syn.write_en.eq(h_we & (h_wsel == HostMem.SYNAPSE)),
            bias_w.addr.eq(h_waddr), bias_w.data.as_value().eq(h_wdata[:p.bias_bits].replicate(n)),
            bias_w.en.eq(Mux(h_we & (h_wsel == HostMem.BIAS), lane_en, 0)),
        ]

        # ---- FSM ----
        fsm_state = Signal(2)  # 0 IDLE, 1 ACCUM, 2 UPDATE, 3 FLUSH
        IDLE, ACCUM, UPDATE, FLUSH = range(4)
        # fsm_state == ACCUM as a flip-flop of its own: it selects the synapse memory's read address,
        # in front of yosys's collision compare (see ``row``), so no decode in front of it
        accum = Signal()
        m.d.comb += [idle.eq(fsm_state == IDLE), self.busy.eq(~idle)]
        m.d.comb += self.step.ready.eq(idle)
        with m.If(self.step.valid & self.step.ready):
            m.d.sync += [cfg.eq(self.step.payload), fsm_state.eq(ACCUM), accum.eq(1),
                         g.eq(0), word.eq(self.step.payload.neuron_base),
                         last_group.eq(self.step.payload.groups < 2)]

        # ---- the event registers: the input stream goes through two registers before R. E1 takes the
        # raw event (its index is a FIFO's read data); the event register holds it while R issues its
        # rows. Events are taken only in ACCUM and never past the end marker: the next step's input (or
        # this step's own output, on a loopback) stays out.
        e1_v = Signal()
        e1 = Signal(event_layout(p))
        end_in = Signal()          # the end marker has been taken (into E1)
        evq_v = Signal()
        evq_neg, evq_end = Signal(), Signal()
        evq_take = Signal()        # the event register's event leaves it this clock (R)
        evq_load = Signal()
        m.d.comb += [
            evq_load.eq(accum & e1_v & (~evq_v | (evq_take & ~evq_end))),
            self.events.ready.eq(accum & ~end_in & (~e1_v | evq_load)),
        ]
        with m.If(self.events.valid & self.events.ready):
            m.d.sync += [e1.eq(self.events.payload), e1_v.eq(1), end_in.eq(self.events.payload.end)]
        with m.Elif(evq_load):
            m.d.sync += e1_v.eq(0)
        with m.If(evq_load):
            m.d.sync += [evq_v.eq(1), evq_neg.eq(e1.neg), evq_end.eq(e1.end)]
        with m.Elif(evq_take):
            m.d.sync += evq_v.eq(0)

        # Read addresses (R); the read ports are always enabled (nothing in the pipeline stalls)
        m.d.comb += [
            syn.read_addr.eq(h.addr), acc_r.addr.eq(h.addr), st_r.addr.eq(h.addr), bias_r.addr.eq(h.addr),
        ]
        issue = Signal()
        upd_wait = Signal()   # the first UPDATE clock: the last ACCUM sum is still in X

        # row = syn_base + (index << stride_log2) + g, the synapse row R reads, is a register: loaded with
        # the event's first row (computed from E1) as the event register takes it, stepped with g. The
        # synapse memory's address must come from a register: yosys emulates read-old-value on a
        # collision with the write port (the ECP5's PDPW16KD does not have it) by comparing the read
        # address with the write address into a flip-flop, and behind an adder that was a critical path.
        row = Signal(p.row_bits)
        with m.If(evq_load):
            m.d.sync += row.eq(cfg.syn_base + (e1.index << cfg.stride_log2))
        with m.Elif(accum & issue):
            m.d.sync += row.eq(row + 1)

        with m.If(accum):
            m.d.comb += [
                syn.read_addr.eq(row), acc_r.addr.eq(word),
                issue.eq(evq_v & ~evq_end),
                evq_take.eq(evq_v & (evq_end | last_group)),
            ]
            with m.If(issue):
                m.d.sync += [g.eq(Mux(last_group, 0, g + 1)), word.eq(Mux(last_group, cfg.neuron_base, word + 1)),
                             last_group.eq(Mux(last_group, cfg.groups < 2, g + 2 >= cfg.groups))]
            with m.If(evq_v & evq_end):
                m.d.sync += [fsm_state.eq(UPDATE), accum.eq(0), g.eq(0), word.eq(cfg.neuron_base), upd_wait.eq(1),
                             end_in.eq(0)]
            m.d.sync += [d_acc_v.eq(issue), d_neg.eq(evq_neg), d_addr.eq(word)]

        # UPDATE issues a word only with a credit: a free place for its spikes in the word FIFO in front
        # of the serializer, counting the words in flight. So nothing downstream can refuse a word and
        # the pipeline never stalls (a stall would fan out to every stage register and read port).
        credit = Signal()
        issue_upd = Signal()
        m.d.comb += issue_upd.eq((fsm_state == UPDATE) & issue)
        with m.If(fsm_state == UPDATE):
            m.d.comb += [acc_r.addr.eq(word), st_r.addr.eq(word), bias_r.addr.eq(word),
                         issue.eq((g < cfg.groups) & ~upd_wait & credit)]
            m.d.sync += [upd_wait.eq(0), d_upd_v.eq(issue), d_addr.eq(word), d_group.eq(g)]
            with m.If(issue):
                m.d.sync += [g.eq(g + 1), word.eq(word + 1)]
            with m.Elif((g >= cfg.groups) & ~upd_wait):
                m.d.sync += fsm_state.eq(FLUSH)
        with m.Else():
            m.d.sync += d_upd_v.eq(0)
        with m.If(~accum):
            m.d.sync += d_acc_v.eq(0)

        # ---- D: the memory outputs are registered before any logic (an ECP5 DP16KD without its output
        # register has a 5.8 ns clock-to-out) ----
        m.d.sync += [d_syn.eq(syn.read_data), d_acc.eq(acc_r.data), d_state.eq(st_r.data), d_bias.eq(bias_r.data),
                     x_acc_v.eq(d_acc_v), x_upd_v.eq(d_upd_v), x_neg.eq(d_neg), x_addr.eq(d_addr),
                     x_group.eq(d_group)]
        # The neuron lanes get their own copy of the accumulator word, loaded only for UPDATE words (the
        # enable keeps synthesis from merging it with d_acc): d_acc also feeds the adder and the host
        # read select, and from one register the lanes were a long route away (the ECP5 critical path).
        d_acc_upd = Signal.like(acc_r.data)
        with m.If(d_upd_v):
            m.d.sync += d_acc_upd.eq(acc_r.data)

        # ---- X, accumulate ----
        # An ACCUM read misses the sums the two items ahead of it write (they are in X while it is in R
        # and D), so those are forwarded by hand: w1/w2 are the ACCUM writes of the last two clocks, and
        # the hit flags compare addresses one clock early (in D) to keep the compares off the adder's
        # path. A read port transparent to the write port would not cover this distance, and would also
        # put the host's writes in front of the read data.
        w1_v, w2_v = Signal(), Signal()
        w1_addr = Signal(p.group_bits)
        w1_data = Signal.like(adder.acc_out)
        w2_data = Signal.like(adder.acc_out)
        hit1, hit2 = Signal(), Signal()
        m.d.sync += [
            w1_v.eq(x_acc_v), w1_addr.eq(x_addr), w1_data.eq(adder.acc_out), w2_v.eq(w1_v), w2_data.eq(w1_data),
            hit1.eq(x_acc_v & (d_addr == x_addr)), hit2.eq(w1_v & (d_addr == w1_addr)),
        ]
        m.d.comb += [adder.acc_in.eq(Mux(hit1, w1_data, Mux(hit2, w2_data, d_acc))), adder.row.eq(d_syn),
                     adder.neg.eq(x_neg)]
        acc_lanes_all = Const(2**n - 1, n)
        with m.If(x_acc_v):
            m.d.comb += [acc_w.addr.eq(x_addr), acc_w.data.eq(adder.acc_out), acc_w.en.eq(acc_lanes_all)]

        # ---- X, update stage 1: m = 2v + I, I + b, fire flags (registered in the NeuronArray) ----
        # The update is split over two clocks for timing (registers -> adders, compares and m -/+ 2 theta
        # is one clock, reset select -> saturate -> mode select the next); Z writes it back.
        for k in range(n):
            m.d.comb += [neurons.v[k].eq(d_state[k].v), neurons.fired[k].eq(d_state[k].fired)]
        m.d.comb += [neurons.acc.eq(d_acc_upd), neurons.bias.eq(d_bias), neurons.en.eq(1),
                     neurons.mode.eq(cfg.mode), neurons.threshold.eq(cfg.threshold)]
        valid_lanes = Signal(n)
        base = Signal(p.index_bits + 1)
        m.d.comb += base.eq(x_group << p.lane_bits)
        for k in range(n):
            m.d.comb += valid_lanes[k].eq(base + k < cfg.count)
        # X -> Y registers (besides the NeuronArray's): which word, which lanes are neurons of the layer
        s2_valid = Signal()
        s2_addr = Signal(p.group_bits)
        s2_group = Signal(p.group_bits)
        s2_lanes = Signal(n)
        m.d.sync += [s2_valid.eq(x_upd_v), s2_addr.eq(x_addr), s2_group.eq(x_group), s2_lanes.eq(valid_lanes)]
        # The accumulator word is cleared in stage 1: its value has gone into the stage register.
        with m.If(x_upd_v):
            m.d.comb += [acc_w.addr.eq(x_addr), acc_w.data.as_value().eq(0), acc_w.en.eq(acc_lanes_all)]

        # ---- Y, update stage 2: the NeuronArray's stage 2 (reset select, saturation, mode select) ----
        # (Y and Z run in UPDATE and in the first FLUSH clocks, until the last word has left)
        pos = Signal(n)
        neg = Signal(n)
        m.d.comb += [pos.eq(neurons.pos & s2_lanes), neg.eq(neurons.neg & s2_lanes)]
        # Y -> Z registers: the new state word, the masked spikes
        z_valid, z_any = Signal(), Signal()
        z_addr = Signal(p.group_bits)
        z_group = Signal(p.group_bits)
        z_lanes, z_pos, z_neg = Signal(n), Signal(n), Signal(n)
        z_word = Signal(data.ArrayLayout(state_lane_layout(p), n))
        m.d.sync += [z_valid.eq(s2_valid), z_addr.eq(s2_addr), z_group.eq(s2_group), z_lanes.eq(s2_lanes),
                     z_pos.eq(pos), z_neg.eq(neg), z_any.eq((pos | neg).any())]
        for k in range(n):
            m.d.sync += [z_word[k].v.eq(neurons.v_next[k]), z_word[k].fired.eq(neurons.fired_next[k])]

        # ---- Z: state write-back, spikes to the word FIFO, argmax ----
        # The word FIFO always has room for a word (credits), so Z never waits.
        m.d.comb += [
            # the serializer's word_layout: group, pos, neg from the low bits up
            word_fifo.w_data.eq(Cat(z_group, z_pos, z_neg)), word_fifo.w_en.eq(z_valid & z_any),
            ser.i.payload.as_value().eq(word_fifo.r_data), ser.i.valid.eq(word_fifo.r_rdy),
            word_fifo.r_en.eq(ser.i.ready),
        ]
        # credits: taken by an issued word, returned by a word without spikes leaving Z or by the
        # serializer taking a word from the FIFO
        free = Signal(range(WORD_FIFO_DEPTH + 1), init=WORD_FIFO_DEPTH)
        ret = Signal(2)
        m.d.comb += [credit.eq(free != 0),
                     ret.eq((z_valid & ~z_any) + (word_fifo.r_rdy & word_fifo.r_en))]
        m.d.sync += free.eq(free + ret - issue_upd)
        with m.If(z_valid):
            m.d.comb += [st_w.addr.eq(z_addr), st_w.data.eq(z_word), st_w.en.eq(acc_lanes_all)]
        with m.Elif(h_we & (h_wsel == HostMem.STATE)):
            m.d.comb += [st_w.addr.eq(h_waddr), st_w.data.as_value().eq(h_wdata[:p.store_bits + 1].replicate(n)),
                         st_w.en.eq(lane_en)]
        with m.If(h_we & (h_wsel == HostMem.ACC)):
            m.d.comb += [acc_w.addr.eq(h_waddr), acc_w.data.as_value().eq(h_wdata[:p.acc_bits].replicate(n)),
                         acc_w.en.eq(lane_en)]
        is_out = Signal()
        m.d.comb += is_out.eq((cfg.mode == Mode.OUT) | (cfg.mode == Mode.OUT_FIRST))
        m.d.comb += [amax.en.eq(z_valid & is_out), amax.first.eq(z_group == 0), amax.group.eq(z_group),
                     amax.values.eq(Cat(z_word[k].v for k in range(n))), amax.valid.eq(z_lanes),
                     self.argmax_index.eq(amax.index), self.argmax_value.eq(amax.value)]

        # ---- output stream: serializer spikes, then the end marker, through a skid buffer ----
        # The consumer's ready comes from far away (controller, router); behind the skid buffer it
        # drives two registers' enables and not the serializer's next-event logic.
        m.submodules.out_buf = out_buf = SkidBuffer(event_layout(p))
        wiring.connect(m, wiring.flipped(self.out), out_buf.o)
        end_ok = Signal()
        end_sent = Signal()      # the end marker is in the skid buffer; the step is done when it leaves
        m.d.comb += [
            # the end marker waits for Y and Z to drain (their spikes go first) and for the argmax pipeline
            # (so argmax_index/value are final when done pulses)
            end_ok.eq((fsm_state == FLUSH) & ~end_sent & ~d_upd_v & ~x_upd_v & ~s2_valid & ~z_valid
                      & (word_fifo.level == 0) & ~ser.busy & ~amax.busy),
            out_buf.i.valid.eq(ser.o.valid | end_ok),
            ser.o.ready.eq(out_buf.i.ready),
        ]
        with m.If(ser.o.valid):
            m.d.comb += out_buf.i.payload.eq(ser.o.payload)
        with m.Else():
            m.d.comb += out_buf.i.payload.end.eq(1)
        with m.If(end_ok & out_buf.i.ready):
            m.d.sync += end_sent.eq(1)
        # the core's out carries exactly one end marker per step, the last item
        with m.If(self.out.valid & self.out.ready & self.out.payload.end):
            m.d.sync += [fsm_state.eq(IDLE), end_sent.eq(0)]
            m.d.comb += self.done.eq(1)

        # ---- counters ----
        cnt = {name: getattr(self, f"cnt_{name}") for name in COUNTERS}
        # the row's synaptic operations are counted a clock later (popcount and 32-bit add in one clock
        # after the adder's inputs is too long); done is many clocks after the last ACCUM item
        synops_v = Signal()
        synops_q = Signal.like(adder.synops)
        m.d.sync += [synops_v.eq(x_acc_v), synops_q.eq(adder.synops)]
        with m.If(self.clear):
            m.d.sync += [c.eq(0) for c in cnt.values()]
        with m.Else():
            with m.If(~idle):
                m.d.sync += cnt["cycles"].eq(cnt["cycles"] + 1)
            with m.If(accum & issue & last_group):
                m.d.sync += cnt["events"].eq(cnt["events"] + 1)
            with m.If(synops_v):
                m.d.sync += cnt["synops"].eq(cnt["synops"] + synops_q)
            with m.If(ser.o.valid & ser.o.ready):
                m.d.sync += cnt["spikes"].eq(cnt["spikes"] + 1)
            with m.If(self.done):
                m.d.sync += cnt["steps"].eq(cnt["steps"] + 1)
        return m

