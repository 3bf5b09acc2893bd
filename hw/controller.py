r"""The schedule of one inference in gateware: which layer-step the core runs next, and its input.

One idea: *the order of layer-steps* (docs/SEMANTICS.md section 4, "Evaluation order";
:meth:`NetworkImage.evaluation_order`). Layer ``l``'s own step ``s`` (SILENT or OUT_FIRST at
``s == 0``; then FIRE up to ``s == T`` for ``l < L``, OUT up to ``s == T - 1`` for the output
layer ``L``) is the layer-step at the spec's global step ``t = s + l``. It runs in round ``r``: with
``k = 1`` (``AccelParams.order == "chain"``) ``r = t``, with ``k = 2`` (``"waves"``) the wave
``r = t + l``, so ``s = r - k*l``, ``r = 0 .. T + k*L - 1``. Within a round the active layers run in
ascending order, ``l = lo(r) .. hi(r)``: ``hi(r) = min(r // k, L)``, ``lo(r) = max(0, ceil((r - T) / k))``.

- chain: a layer-step takes its predecessor's spikes of the same round, so it waits for them to
  cross the pipeline and the router;
- waves: a layer-step consumes only what the previous wave produced, so the core may run it while
  the previous step's spikes are still leaving. The loopback FIFO then holds one step's output of
  every spiking layer, plus the running step's own (:meth:`AccelParams.loopback_entries`); the
  consumers of a wave take them in the order the previous wave produced them.

Input of a layer-step: the encoder (``l == 0``) and a layer's last FIRE step (``s == T``: its
predecessor has finished) get just an end marker injected by the controller; every other layer
takes its predecessor's spikes (then the predecessor's end marker) from the router's loopback port.
A predecessor whose route lacks LOOPBACK also means an injected marker (so a mis-set route table
gives wrong numbers, never a hang).

Output of a layer-step: a SILENT step's output (just an end marker) is sunk here, its consumer is not
active yet; every other step's output goes to the router tagged ``source = l``. The output layer's
events may not use the loopback port (it has no consumer: ``route_enable`` masks it).

Timing: the next step's layer-table entry is read (synchronous read port, addressed with the
*next* value of the layer counter) while the current step runs, so the config is on ``step`` when
the core can take it, which is while the previous step's spikes still leave: the input mux follows
the step just accepted, the output demux a queue of the steps in flight (popped by the core's
``done``). One clock at the end registers the last step's done, and the run ends once the core's
argmax has drained too (``argmax_idle``; the end markers do not wait for it, since only the last
class is read; the core counts as busy until then), so ``run cycles = core busy cycles + 2`` (with
the start clock).
``start`` while idle runs one inference; ``done`` pulses in the last busy clock. T == 0, L == 0 or
L >= max_layers run nothing (done at once).

Block diagram::

    start --> [ (r, l) counters ] --next l--> layer table read port --> step (config) --> core
                     |   \--next l-1--> route table query (LOOPBACK bit of the predecessor)
                     v
              cur: layer, inject, sink
    inject ? end marker : router loopback port  --> core.events
    core.out --> sink (SILENT) | router.i {event, source = cur layer}
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from cssnn.hw.memmap import ROUTE_PORTS, AccelParams, Route, layer_layout
from cssnn.hw.params import Mode, config_layout, event_layout
from cssnn.hw.router import routed_layout

__all__ = ["Controller"]

LOOPBACK_BIT = Route.LOOPBACK.bit_length() - 1
ALL_PORTS = 2**ROUTE_PORTS - 1


class Controller(wiring.Component):
    """Runs the schedule from the layer table and the T, L registers. Ports:

    ``start``        In: one clock while idle runs one inference
    ``busy``, ``done``  Out: busy from the clock after ``start`` through the ``done`` clock
    ``clear``        Out: pulses with an accepted ``start`` (zero the core's counters)
    ``timesteps``, ``layers``  In: the T and L registers (held while busy)
    ``table_addr``   Out: layer-table read address; ``table_data`` In: the entry addressed the
                     previous clock (:func:`~cssnn.hw.memmap.layer_layout`)
    ``route_addr``   Out: route-table read address; ``route_mask`` In: that entry, previous clock
    ``step``         Out stream of :func:`~cssnn.hw.params.config_layout` -> the core's ``step``
    ``core_done``    In: the core's ``done``; ``argmax_idle`` In: the core's (the run ends only then)
    ``events``       Out stream of events -> the core's ``events``
    ``core_out``     In stream of events <- the core's ``out``
    ``routed``       Out stream of :func:`~cssnn.hw.router.routed_layout` -> the router's input
    ``route_enable`` Out: the router's ``enable`` (no LOOPBACK for the output layer's events)
    ``loopback``     In stream of routed events <- the router's LOOPBACK port
    ``t``, ``layer`` Out: the spec's global step and the layer of the step currently running
                     (for debugging)
    """

    def __init__(self, ap: AccelParams):
        if not isinstance(ap, AccelParams):
            raise TypeError(f"ap must be an AccelParams, not {ap!r}")
        self.ap = ap
        p = ap.core
        lb = ap.layer_bits
        self.k = 1 if ap.order == "chain" else 2   # the round of (l, t): t (chain) or t + l (waves)
        self.t_bits = max(ap.timestep_bits, lb + self.k) + 1   # the round goes up to T + k*L - 1
        routed = routed_layout(p, lb)
        super().__init__({
            "start": In(1), "busy": Out(1), "done": Out(1), "clear": Out(1),
            "timesteps": In(ap.timestep_bits), "layers": In(lb + 1),
            "table_addr": Out(lb), "table_data": In(layer_layout(p)),
            "route_addr": Out(lb), "route_mask": In(ROUTE_PORTS),
            "step": Out(stream.Signature(config_layout(p))),
            "core_done": In(1), "argmax_idle": In(1, init=1),
            "events": Out(stream.Signature(event_layout(p))),
            "core_out": In(stream.Signature(event_layout(p))),
            "routed": Out(stream.Signature(routed)),
            "route_enable": Out(ROUTE_PORTS),
            "loopback": In(stream.Signature(routed)),
            "t": Out(self.t_bits), "layer": Out(lb + 1),
        })

    def elaborate(self, platform):
        ap = self.ap
        lb = ap.layer_bits
        m = Module()
        T, L = self.timesteps, self.layers

        running = Signal()       # an inference is in progress (steps issued or running)
        issued_all = Signal()    # the last step's config has been accepted
        empty_run = Signal()     # start with unusable registers: done in the next clock
        nr = Signal(self.t_bits)  # (nr, nl): the next step to hand to the core (round, layer)
        nl = Signal(lb + 1)
        nr_next = Signal.like(nr)
        nl_next = Signal.like(nl)
        m.d.comb += [nr_next.eq(nr), nl_next.eq(nl)]
        m.d.sync += [nr.eq(nr_next), nl.eq(nl_next)]
        # Addressing the tables with the *next* counter value makes their sync read data line up
        # with (nr, nl) one clock later: the prefetch costs no extra state.
        m.d.comb += [self.table_addr.eq(nl_next), self.route_addr.eq(nl_next - 1)]

        # ---- where the next step is in the schedule ----
        restart, taken = Signal(), Signal()   # an inference starts; the core takes the next step
        at_hi, is_last, r1, lo1, own_first, own_last, t_now = self._round(m, nr, nl, restart, taken)
        out_layer = Signal()
        mode = Signal(2)
        inject = Signal()
        m.d.comb += [
            out_layer.eq(nl == L),
            mode.eq(Mux(out_layer, Mux(own_first, Mode.OUT_FIRST, Mode.OUT), Mux(own_first, Mode.SILENT, Mode.FIRE))),
            # route_mask is the entry of layer nl - 1 (not used for nl == 0)
            inject.eq((nl == 0) | own_last | ~self.route_mask[LOOPBACK_BIT]),
        ]
        for name, _ in layer_layout(ap.core):
            m.d.comb += getattr(self.step.payload, name).eq(getattr(self.table_data, name))
        m.d.comb += [self.step.payload.mode.eq(mode), self.step.payload.encoder.eq(nl == 0),
                     self.step.valid.eq(running & ~issued_all)]

        # ---- the step the core is running (its input) and the steps whose output is leaving ----
        cur_layer = Signal(lb + 1)
        cur_t = Signal.like(nr)
        cur_inject = Signal(init=1)
        inj_pending = Signal()   # the injected end marker has not been taken yet
        m.d.comb += [self.t.eq(cur_t), self.layer.eq(cur_layer)]
        # The core takes the next step while the previous one's spikes still leave (at most
        # CoreParams.max_inflight steps in flight): the output demux follows a queue of the steps accepted,
        # popped by the core's done (one per step, as its end marker leaves).
        out_entry = data.StructLayout({"sink": 1, "layer": lb + 1, "out": 1, "last": 1})
        out_q = [Signal(out_entry, name=f"out_q{k}") for k in range(ap.core.max_inflight)]
        out_n = Signal(range(ap.core.max_inflight + 1))
        head = out_q[0]
        idle = Signal()
        m.d.comb += [idle.eq(~running & ~empty_run), self.busy.eq(~idle)]
        m.d.comb += [restart.eq(self.start & idle), taken.eq(self.step.valid & self.step.ready),
                     self.clear.eq(restart)]
        regs_ok = Signal()
        m.d.comb += regs_ok.eq((T != 0) & (L != 0) & (L < ap.max_layers))

        m.d.sync += empty_run.eq(0)
        with m.If(restart):
            m.d.comb += [nr_next.eq(0), nl_next.eq(0)]
            m.d.sync += issued_all.eq(0)
            with m.If(regs_ok):
                m.d.sync += running.eq(1)
            with m.Else():
                m.d.sync += empty_run.eq(1)
        with m.Elif(taken):
            m.d.sync += [cur_layer.eq(nl), cur_t.eq(t_now), cur_inject.eq(inject), inj_pending.eq(inject)]
            with m.If(is_last):
                m.d.sync += issued_all.eq(1)
            with m.Elif(at_hi):
                m.d.comb += [nr_next.eq(r1), nl_next.eq(lo1)]
            with m.Else():
                m.d.comb += nl_next.eq(nl + 1)

        # The last step's done is registered before it ends the run: the core's done depends on its
        # out.ready, which comes through the router, and would otherwise run on into the host link.
        # The run ends once the argmax has drained too (the core's end markers do not wait for it: only
        # the last output step's class is read)
        last_done = Signal()
        with m.If(running & self.core_done & head.last):
            m.d.sync += last_done.eq(1)
        m.d.comb += self.done.eq(empty_run | (last_done & self.argmax_idle))
        with m.If(last_done & self.argmax_idle):
            m.d.sync += [running.eq(0), last_done.eq(0)]

        # ---- input mux: injected end marker or the loopback port ----
        with m.If(cur_inject):
            m.d.comb += [self.events.valid.eq(inj_pending), self.events.payload.end.eq(1)]
            with m.If(self.events.valid & self.events.ready):
                m.d.sync += inj_pending.eq(0)
        with m.Else():
            m.d.comb += [self.events.valid.eq(self.loopback.valid),
                         self.events.payload.eq(self.loopback.payload.event),
                         self.loopback.ready.eq(self.events.ready)]

        # ---- the output queue: pushed by an accepted step, popped by the core's done ----
        push, pop = Signal(), Signal()
        entry = Signal(out_entry)
        m.d.comb += [push.eq(taken), pop.eq(self.core_done & (out_n != 0)),
                     entry.sink.eq(mode == Mode.SILENT), entry.layer.eq(nl), entry.out.eq(out_layer),
                     entry.last.eq(is_last)]
        m.d.sync += out_n.eq(out_n + push - pop)
        with m.If(pop):
            for k in range(ap.core.max_inflight - 1):
                m.d.sync += out_q[k].eq(out_q[k + 1])
        for k in range(ap.core.max_inflight):   # the push lands at the first free place (after the pop)
            with m.If(push & (out_n - pop == k)):
                m.d.sync += out_q[k].eq(entry)
        with m.If(restart):
            m.d.sync += out_n.eq(0)

        # ---- output demux: sink (SILENT) or the router, for the step at the head of the queue ----
        with m.If(head.sink):
            m.d.comb += self.core_out.ready.eq(1)
        with m.Else():
            m.d.comb += [self.routed.valid.eq(self.core_out.valid),
                         self.routed.payload.event.eq(self.core_out.payload),
                         self.routed.payload.source.eq(head.layer),
                         self.core_out.ready.eq(self.routed.ready)]
        m.d.comb += self.route_enable.eq(Mux(head.out, ALL_PORTS & ~int(Route.LOOPBACK), ALL_PORTS))
        return m

    def _round(self, m, nr, nl, restart, taken):
        """Where ``(nr, nl)`` is in its round (module docstring): ``at_hi`` (nl == hi(nr), nl never
        exceeds it), ``is_last``, ``r1`` = nr + 1, ``lo1`` = lo(nr + 1), ``own_first`` (s == 0: SILENT
        or OUT_FIRST), ``own_last`` (s == T for l < L: the predecessor has finished) and the spec's
        global step ``t_now``. ``restart`` and ``taken`` (not the last step) step the waves' register."""
        T, L = self.timesteps, self.layers
        at_hi, is_last, own_first, own_last = Signal(), Signal(), Signal(), Signal()
        r1, lo1 = Signal.like(nr), Signal.like(nl)
        m.d.comb += r1.eq(nr + 1)
        if self.k == 1:
            # chain: s = nr - nl, compared rather than kept (fewer logic cells on the iCE40)
            lo = Signal.like(nl)
            m.d.comb += [
                at_hi.eq((nl == nr) | (nl == L)),
                is_last.eq(at_hi & (nr == T + L - 1)),
                lo1.eq(Mux(r1 >= T, r1 - T, 0)),
                lo.eq(Mux(nr >= T, nr - T, 0)),
                own_first.eq(nr == nl),
                own_last.eq(nl == lo),   # s == T, or the encoder (injected anyway)
            ]
            return at_hi, is_last, r1, lo1, own_first, own_last, nr
        # waves: s = nr - 2*nl as a register stepped with (nr, nl): 2 lower per layer within a wave;
        # a wave starts at lo(r1), where s is r1, or T - ((r1 - T) mod 2) once r1 > T
        # (lo(r1) = ceil((r1 - T) / 2))
        s = Signal(self.t_bits)
        past = Signal()       # r1 > T: the encoder has had its last step
        m.d.comb += [
            at_hi.eq((s < 2) | (nl == L)),                # nl + 1 > nr // 2, or the output layer
            is_last.eq(at_hi & (nr == T + (L << 1) - 1)),
            past.eq(T < r1),
            lo1.eq(Mux(past, (r1 - T + 1) >> 1, 0)),
            own_first.eq(s == 0),
            own_last.eq(s == T),
        ]
        with m.If(restart):
            m.d.sync += s.eq(0)
        with m.Elif(taken & ~is_last):
            m.d.sync += s.eq(Mux(at_hi, Mux(past, T - (r1[0] ^ T[0]), r1), s - 2))
        return at_hi, is_last, r1, lo1, own_first, own_last, s + nl
