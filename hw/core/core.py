r"""The cssnn core: event driven, N lanes, sparse synapse lists; a layer-step accumulates while the
one before it updates (and the one before that may still be emitting its spikes).

Block diagram (one clock per box boundary; R = read addresses, D = the memory outputs registered,
X = accumulate or update stage 1, Y = update stage 2, Z = write-back, spikes, argmax)::

      step (config stream) ---> [ ACCUM --handoff--> UPDATE ]   (a step in each; done: an end marker left)
                                       |                |
    events --> slot = idx_base + i --> [index mem] --> [EB: first row, rows]
                 --> [event register]: row register = first row, +1 per clock, `rows` times
                                  R: synapse row addr     R (UPDATE): word addr nb+g (register)
                             [synapse mem]                |
                          D: row registered (lane k: weight, word offset, mask)
                          A: per lane, nb + offset -> register
                          B: [acc bank k] reads its word     [state mem] [acc banks] [bias mem]
                         D2: registers --------------------------------------------
                                       \    /  ^ per lane, the sums of the two items ahead forwarded
                                 X: SpikeAccumulator --+      X/Y: NeuronArray (N x TsaLane, 2 stages)
                                       (acc +/- w)                |    |      \
                            write back, lane k at its word   Z: state<-+    |   Argmax (output modes,
                                                                      v       registered tree)
                              word FIFO (credits; the last word carries the end) -> SpikeSerializer -> out

Per-step protocol (see docs/HARDWARE.md):

1. When ``step.ready`` is high (no step in ACCUM, fewer than ``CoreParams.max_inflight`` in flight;
   with ``CoreParams.overlap`` also while fewer than ``CoreParams.steps_ahead`` steps are held behind
   ACCUM's and the end markers of every step held are in) the controller hands a
   :func:`config_layout` word to the ``step`` stream.
2. ACCUM: the core consumes ``events`` until an event with ``end = 1``. A spike event of neuron slot
   ``i`` of the previous layer finds its list in index-memory entry ``idx_base + i`` and costs one
   clock per row of it (0 rows: none); lane ``k`` of a row adds (or subtracts) a weight into
   accumulator bank ``k`` at the word the lane names, so only synapses that exist cost anything.
   Items on the same word of a lane are forwarded (an item's read misses the sums of the two items
   ahead of it; those are muxed in front of the adder).
3. The handoff: at the end marker, once the step before has issued its last word and (without
   ``overlap``) that word has been written back (no word in the update stage), the step goes to
   UPDATE with its config, and ACCUM takes the next step: with ``overlap`` in the clock the last word
   issues, and ACCUM takes the first config held behind it (``nxt``), whose events followed the end
   marker in. With ``overlap`` each UPDATE word carries its config through the stages, a word waits
   only while the word it reads is still to be written back by an earlier step
   (``UpdateStage.hazard``), and the neuron store forwards the accumulate stage's last two sums into
   the word UPDATE reads, so a step's first word waits only for its rows in D, A and B. UPDATE, once the last sum
   is written: one word (N neurons) per clock: membrane, flag, accumulator, bias are read; the TSA
   update is written back and the accumulator cleared; nonzero spikes go through a word FIFO to the
   serializer (one spike per clock). A word is issued only while the FIFO has a place reserved for
   it, so the pipeline never stalls, and never while a row is in B (the banks' ports). Output modes
   feed the argmax instead and emit no spikes. The last word carries the step's end marker.
   Meanwhile the next step's rows issue every clock, except while UPDATE waits for its last sums,
   while the updating step is their own layer (``same``), and while UPDATE's spikes would run dry
   (``words_first``). An encoder word neither reads nor clears the accumulator, whose words it
   aliases (the config's ``encoder`` bit).
4. ``out`` carries the step's spikes in ascending slot order and then the end marker, directly usable
   as the next layer's ``events``; ``done`` pulses as the end marker leaves.

The ``host`` port reads and writes one lane of one memory per clock (read data
:data:`~cssnn.hw.params.READ_LATENCY` clocks later; a write lands one clock after it is presented)
and only acts while the core is not ``busy``. The encoder's input x is loaded as the bias of the
encoder neurons (its SILENT step then computes v = sat(0 + x), identical to the spec's I = x, b = 0).

:class:`Core` holds the two steps (ACCUM's config, the handoff, UPDATE's flags), the UPDATE
counters (``g``, ``word``, ``last``), the word address of the UPDATE items in D and X and the steps
in flight; it wires the
components (one module each in this package): :class:`~.stores.SynapseStore`,
:class:`~.stores.NeuronStore` and :class:`~.stores.IndexStore` (the memories, their address and D
registers), :class:`~.host.HostPort`, :class:`~.events.EventInput` (the index read, EB, the
event register), :class:`~.accumulate.AccumulateStage` (the word addresses, the adder, the
forwarding), :class:`~.update.UpdateStage` (the neuron array's stages, credits, argmax),
:class:`~.output.OutputStage` (word FIFO, serializer, skid buffer) and :class:`~.counters.Counters`.
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from cssnn.hw.core.accumulate import AccumulateStage
from cssnn.hw.core.counters import COUNTERS, Counters
from cssnn.hw.core.events import EventInput
from cssnn.hw.core.host import HostPort, host_signature
from cssnn.hw.core.output import OutputStage
from cssnn.hw.core.stores import IndexStore, NeuronStore, SynapseStore
from cssnn.hw.core.update import UpdateStage
from cssnn.hw.params import CoreParams, check_params, config_layout, event_layout

__all__ = ["Core", "WORDS_FIRST_LANES", "host_signature", "COUNTERS"]

#: Lanes from which rows give way to UPDATE's words when its spikes would run dry (``words_first``):
#: measured on 8 lanes, 784-256-10 at 5%: 10,453 -> 10,229 cycles (chain), 12,074 -> 10,600 (waves);
#: on 2 lanes nothing (+-0.3%), so smaller cores leave its logic out.
WORDS_FIRST_LANES = 4


class Core(wiring.Component):
    """A cssnn core. Ports:

    ``step``      In stream of :func:`~cssnn.hw.params.config_layout` (accepted while no step is in
                  ACCUM, or with ``overlap`` while fewer than ``steps_ahead`` steps are held behind
                  it and every held step's end marker is in, and fewer than
                  ``CoreParams.max_inflight`` steps are in flight)
    ``events``    In stream of :func:`~cssnn.hw.params.event_layout` (the step's input spikes + end marker)
    ``out``       Out stream of events (the step's output spikes + end marker)
    ``busy``      high while a step is in flight: from its accepted ``step`` until its ``done``, and while
                  the argmax drains after it
    ``done``      one-clock pulse when a step's end marker has been accepted on ``out``
    ``host``      In :func:`~cssnn.hw.core.host.host_signature` memory access
    ``argmax_index``, ``argmax_value``  argmax of the last output-mode step, final while
                  ``argmax_idle`` is high (a step's end marker does not wait for it)
    ``cnt_cycles``  busy clocks; ``cnt_events`` input spike events; ``cnt_synops`` synaptic operations
    (existing synapses touched); ``cnt_spikes`` output spikes; ``cnt_steps`` steps done (see
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
            "argmax_index": Out(p.index_bits), "argmax_value": Out(signed(p.store_bits)), "argmax_idle": Out(1),
            "clear": In(1),
        }
        for name in COUNTERS:
            sig[f"cnt_{name}"] = Out(p.counter_bits)
        super().__init__(sig)

    def elaborate(self, platform):
        p = self.params
        m = Module()
        m.submodules.syn = SynapseStore(p)
        m.submodules.neuron_store = NeuronStore(p)
        m.submodules.index_store = IndexStore(p)
        m.submodules.host = HostPort(p)
        m.submodules.event_in = ev = EventInput(p)
        m.submodules.accumulate = acc = AccumulateStage(p)
        m.submodules.update = upd = UpdateStage(p)
        m.submodules.output = out = OutputStage(p)
        m.submodules.counters = Counters(p)

        # ---- ACCUM: the step whose events come in ----
        cfg = Signal(config_layout(p))
        # a step is in ACCUM, as a flip-flop of its own: it selects the synapse read address, so no
        # decode in front of it (timing: docs/BOARDS.md, item 19)
        accum = Signal()
        row = Signal()        # a synapse row of it issues in R
        # ---- UPDATE: the step handed over by ACCUM once its end marker came ----
        updating = Signal()   # its words are being issued
        first = Signal()      # its first word has not issued: it waits for its last sums to be written
        g = Signal(p.group_bits + 1)          # the group counter
        word = Signal(p.group_bits)           # neuron_base + g, stepped with g (timing)
        last = Signal()                       # g + 1 == groups, stepped with g
        groups = Signal(p.group_bits + 1)
        base = Signal(p.group_bits)
        issue = Signal()      # a word issues in R
        # the step in ACCUM is the updating step's layer: its rows wait until the last word issued
        same = Signal()
        d_addr, x_addr = Signal(p.group_bits), Signal(p.group_bits)   # the UPDATE word in D and X
        # steps accepted whose end marker has not left yet
        inflight = Signal(range(p.max_inflight + 1))
        busy = Signal()
        m.d.comb += busy.eq(accum | updating | (inflight != 0) | ~upd.argmax_idle)   # the argmax drains after the end marker

        accept, handoff, done_words = Signal(), Signal(), Signal()
        m.d.comb += [self.busy.eq(busy), accept.eq(self.step.valid & self.step.ready), done_words.eq(issue & last),
                     # with overlap in the clock UPDATE issues its last word (each word carries its config)
                     handoff.eq(accum & ev.end & ((~updating | done_words) if p.overlap else (~updating & ~upd.busy)))]
        m.d.sync += inflight.eq(inflight + accept - out.done)
        same_next = Signal()
        m.d.comb += same_next.eq(same)
        if p.overlap:
            # the next steps' configs are taken behind ACCUM's (``nxt``, ``steps_ahead`` places) once
            # the end markers of every step held are in (the controller's input follows the step it
            # gave last): their events follow those markers into the event input, and ACCUM takes the
            # first at the handoff
            ahead = p.steps_ahead
            nxt = [Signal(config_layout(p), name=f"nxt{i}") for i in range(ahead)]
            nq = Signal(range(ahead + 1))
            pop, into_q = Signal(), Signal()
            m.d.comb += [ev.steps.eq(accum + nq), self.step.ready.eq((ev.ends == accum + nq) & (nq != ahead) &
                                                                     (inflight < p.max_inflight))]
            for i in range(ahead):
                m.d.comb += ev.idx_next[i].eq(nxt[i].idx_base)
            coming = Signal(config_layout(p))   # the step ACCUM takes at the handoff, if any
            m.d.comb += [coming.eq(Mux(nq != 0, nxt[0], self.step.payload)), pop.eq(handoff & (nq != 0)),
                         into_q.eq(accept & accum & ~(handoff & (nq == 0)))]
            with m.If(pop):
                for i in range(ahead - 1):
                    m.d.sync += nxt[i].eq(nxt[i + 1])
            for i in range(ahead):   # an accepted step goes to the first free place (after the pop)
                with m.If(into_q & (nq - pop == i)):
                    m.d.sync += nxt[i].eq(self.step.payload)
            m.d.sync += nq.eq(nq - pop + into_q)
            with m.If(handoff):
                m.d.sync += accum.eq((nq != 0) | accept)
                with m.If((nq != 0) | accept):
                    m.d.sync += cfg.eq(coming)
                    m.d.comb += same_next.eq(coming.neuron_base == cfg.neuron_base)
        else:
            m.d.comb += self.step.ready.eq(~accum & (inflight < p.max_inflight))
        with m.If(accept & ~accum):
            m.d.sync += [cfg.eq(self.step.payload), accum.eq(1)]
            m.d.comb += same_next.eq(updating & ~done_words & (self.step.payload.neuron_base == base))
        with m.If(done_words & ~handoff):
            m.d.comb += same_next.eq(0)
        m.d.sync += same.eq(same_next)
        # ACCUM issues a row per clock while it has one, except while the updating step waits for its
        # last sums (they would mix with its rows in the accumulate stage: its refill after a handoff
        # takes longer anyway) and while the updating step is this step's layer
        # and while UPDATE has the right of way: its spikes would run dry (every credit free), so
        # rows wait until the words issued have used the credits (a row in B blocks a word, and
        # rows are issued every clock when the events are already in; the spikes then leave
        # while the rows run, not after them). A word carries up to N spikes and the serializer
        # sends one per clock, so this matters from WORDS_FIRST_LANES lanes on; below, no logic.
        # `held` is `same | words_first` as one register: one gate on the row path (timing: the row
        # feeds the event input's ready)
        held = same
        if p.lanes >= WORDS_FIRST_LANES:
            words_first, wf_next, held = Signal(), Signal(), Signal()
            m.d.comb += wf_next.eq(words_first)
            with m.If(~updating | ~upd.credit):
                m.d.comb += wf_next.eq(0)
            with m.Elif(upd.starving & ~first):
                m.d.comb += wf_next.eq(1)
            m.d.sync += [words_first.eq(wf_next), held.eq(same_next | wf_next)]
        m.d.comb += row.eq(accum & ev.pending & ~first & ~held)
        # the handoff: ACCUM's end marker taken once UPDATE has issued its last word and, without
        # overlap, written it back (the update stage then holds one step's config, and a step of the
        # same layer must read the state after that write); the step's config goes with it. With
        # overlap each word carries its config, and a word waits only while the word it reads is still
        # to be written back (`UpdateStage.hazard`: an earlier step of its layer)
        # UPDATE issues a word only with a credit (a place in the word FIFO), so nothing stalls; its
        # first word only once the last sum of its step is written (no row in the accumulate stage,
        # where ACCUM holds its rows back until then); and never while a row is in B (that row reads
        # the accumulator banks, and its sums are written in the clock the word's clear would be)
        # (with overlap its sums in D2 and X are forwarded to it: it waits only for the items before them)
        drained = ~acc.busy_front if p.overlap else ~acc.busy
        # and (with overlap) never before the word it reads has been written back (by an earlier step)
        hazard = upd.hazard if p.overlap else Const(0)
        m.d.comb += issue.eq(updating & upd.credit & ~acc.acc_read & ~(first & ~drained) & ~hazard)
        with m.If(issue):
            m.d.sync += [first.eq(0), g.eq(g + 1), word.eq(word + 1), last.eq(g + 2 == groups)]
            with m.If(last):
                m.d.sync += updating.eq(0)
        with m.If(handoff):   # after the issue: a step handed over as the last word issues takes UPDATE
            if not p.overlap:
                m.d.sync += accum.eq(0)
            m.d.sync += [updating.eq(1), first.eq(1), g.eq(0), word.eq(cfg.neuron_base),
                         base.eq(cfg.neuron_base), groups.eq(cfg.groups), last.eq(cfg.groups == 1)]
        m.d.sync += [d_addr.eq(word), x_addr.eq(d_addr)]

        if p.overlap:
            m.d.comb += [upd.r_addr.eq(word), upd.d_addr.eq(d_addr), upd.load_addr.eq(cfg.neuron_base)]
        self._connect(m, cfg, accum, updating, busy, row, issue, handoff, last, g, word, x_addr)
        return m

    def _connect(self, m, cfg, accum, updating, busy, row, issue, handoff, last, g, word, x_addr):
        """Wires the components (``m.submodules``) to the FSM's signals and to the core's ports."""
        syn, nst, host = m.submodules.syn, m.submodules.neuron_store, m.submodules.host
        ev, acc, upd = m.submodules.event_in, m.submodules.accumulate, m.submodules.update
        out, counters, idx = m.submodules.output, m.submodules.counters, m.submodules.index_store
        # the random-access ports (host), the stores' writers, the streams
        wiring.connect(m, wiring.flipped(self.host), host.bus)
        wiring.connect(m, host.syn_read, syn.read)
        wiring.connect(m, host.syn_write, syn.write)
        wiring.connect(m, host.neuron_read, nst.read)
        wiring.connect(m, host.neuron_write, nst.write)
        wiring.connect(m, host.index_read, idx.read)
        wiring.connect(m, host.index_write, idx.write)
        wiring.connect(m, acc.write, nst.acc_write)
        wiring.connect(m, upd.acc_clear, nst.acc_clear)
        wiring.connect(m, upd.state_write, nst.state_write)
        wiring.connect(m, wiring.flipped(self.events), ev.events)
        wiring.connect(m, upd.words, out.words)
        wiring.connect(m, wiring.flipped(self.out), out.out)
        m.d.comb += [
            host.idle.eq(~busy),
            ev.accum.eq(accum), ev.idx_base.eq(cfg.idx_base), ev.index_data.eq(idx.pipe_data),
            ev.row_issue.eq(row), ev.end_take.eq(handoff),
            idx.accum.eq(accum), idx.pipe_addr.eq(ev.index_addr), idx.pipe_en.eq(ev.index_en),
            syn.accum.eq(accum), syn.row_load.eq(ev.load), syn.row_first.eq(ev.first_row),
            syn.row_step.eq(ev.issues),
            nst.acc_read.eq(acc.acc_read), nst.update.eq(updating), nst.word.eq(word), nst.upd_valid.eq(upd.d_valid),
            nst.acc_addr.eq(acc.acc_addr),
            acc.accum.eq(accum), acc.issue.eq(row), acc.neg.eq(ev.neg), acc.neuron_base.eq(cfg.neuron_base),
            acc.row.eq(syn.row_data), acc.acc.eq(nst.acc),
            upd.update.eq(updating), upd.load.eq(handoff), upd.issue.eq(issue), upd.last.eq(last),
            upd.group.eq(g), upd.x_addr.eq(x_addr),
            upd.mode.eq(cfg.mode), upd.threshold.eq(cfg.threshold), upd.count.eq(cfg.count),
            upd.encoder.eq(cfg.encoder), nst.upd_zero.eq(upd.d_encoder),
            upd.state.eq(nst.state), upd.acc.eq(nst.acc_upd), upd.bias.eq(nst.bias),
            upd.word_taken.eq(out.word_taken),
            self.argmax_idle.eq(upd.argmax_idle),
            self.done.eq(out.done), self.argmax_index.eq(upd.argmax_index), self.argmax_value.eq(upd.argmax_value),
            counters.clear.eq(self.clear), counters.busy.eq(busy), counters.event.eq(ev.event),
            counters.synops_valid.eq(acc.write.en), counters.synops.eq(acc.synops),
            counters.spike.eq(out.spike), counters.step.eq(out.done),
        ]
        for name in COUNTERS:
            m.d.comb += getattr(self, f"cnt_{name}").eq(getattr(counters, f"cnt_{name}"))
