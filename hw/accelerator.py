r"""The accelerator top: a core, the controller that runs the schedule, the spike router, the tables,
and the bus of :mod:`cssnn.hw.memmap`.

One idea: *one inference per ``start``, everything reachable from one bus*. The host loads a network
through ``bus`` (:meth:`NetworkImage.bus_writes`), writes a sample's input
(:meth:`NetworkImage.bus_input_writes`), pulses ``start``, waits for ``done`` and reads the output
integrators (STATE) and the counters::

                 bus (sel, addr, wdata, we, rdata, start, busy, done)
                  |           |              |               |          \
          SYNAPSE/STATE/   LAYER table    ROUTE table     REG (T, L)   COUNTER (read-only)
          BIAS/ACC           |               |               |
          core host port     |  +------------+---------------+
                |            v  v            |
                |         Controller --step--> Core --out--> Controller --routed--> [2-entry FIFO]
                |            ^     --events->    ^                                       |
                +------------|-------------------+                                    Router
                             |                                        port 0 LOOPBACK |   | port 1 TAP
                             +-----------------------------------------------------<--+   +--> tap

Bus (``memmap``): ``rdata`` is the element addressed (``sel``, ``addr``) READ_LATENCY clocks earlier;
``we`` writes ``wdata``, only while ``busy`` is low and only inside ``depth(sel)`` (out-of-range
writes are ignored, COUNTER is read-only); writes to the core's memories land a clock later, so a
read of that element in the very next clock still returns the old value. Neuron memories use flat
element ``word * N + lane`` (synapses ``row * N + lane``): the lane is the low ``log2 N`` bits.

Counters: RUN_CYCLES counts the busy clocks (from the clock after ``start`` through the ``done``
clock, i.e. done arrives RUN_CYCLES clocks after start); the others are the core's; all are
cleared by ``start``. ARGMAX_VALUE is the signed Bm-bit value sign-extended to the element width
(its low Bm bits are the raw value).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from cssnn.hw.controller import Controller
from cssnn.hw.core import Core
from cssnn.hw.learn import HOST_LATENCY, LearningEngine
from cssnn.hw.memmap import (
    CORE_SELS,
    LEARN_SELS,
    MODE_BITS,
    AccelParams,
    Counter,
    Reg,
    Route,
    RunMode,
    Sel,
    bus_signature,
    layer_layout,
)
from cssnn.hw.params import READ_LATENCY
from cssnn.hw.router import Router, routed_layout

__all__ = ["AcceleratorGateware", "tap_layout", "LOOPBACK_PORT", "TAP_PORT", "TABLE_RAMS"]

#: Where the layer table may be put (``AcceleratorGateware(table_ram=...)``; the yosys ``ram_style``).
TABLE_RAMS = (None, "block", "logic")

LOOPBACK_PORT = Route.LOOPBACK.bit_length() - 1
TAP_PORT = Route.TAP.bit_length() - 1


def tap_layout(ap: AccelParams) -> data.StructLayout:
    """Payload of the ``tap`` stream: ``event`` (:func:`~cssnn.hw.params.event_layout`) and
    ``source`` (the layer that emitted it)."""
    return routed_layout(ap.core, ap.layer_bits)


class AcceleratorGateware(wiring.Component):
    """Ports:

    ``bus``  In(:func:`~cssnn.hw.memmap.bus_signature`): memories, tables, registers, counters,
             ``start``/``busy``/``done``
    ``tap``  Out stream of :func:`tap_layout`: the events of every layer whose ROUTE entry has TAP
             (a FIRE or output step's spikes, then its end marker; SILENT steps are not tapped).
             It must be drained, or the run stalls once its FIFO (``ap.tap_depth``) is full.

    Attributes ``core`` (:class:`~cssnn.hw.core.Core`), ``controller``
    (:class:`~cssnn.hw.controller.Controller`) and ``router`` (:class:`~cssnn.hw.router.Router`, port 0
    LOOPBACK with ``ap.fifo_depth`` entries, port 1 TAP with ``ap.tap_depth``) are the submodules.
    """

    def __init__(self, ap: AccelParams, *, table_ram: str | None = None):
        if not isinstance(ap, AccelParams):
            raise TypeError(f"ap must be an AccelParams, not {ap!r}")
        if table_ram not in TABLE_RAMS:
            raise ValueError(f"table_ram must be one of {', '.join(map(repr, TABLE_RAMS))}, not {table_ram!r}")
        self.ap, self.table_ram = ap, table_ram
        super().__init__({
            "bus": In(bus_signature(ap)),
            "tap": Out(stream.Signature(tap_layout(ap))),
        })
        # Built here (not in elaborate) so that a testbench can watch their ports.
        self.core = Core(ap.core)
        self.controller = Controller(ap)
        # Every layer loops back by default, so a freshly reset accelerator only needs T, L and the
        # layer table (the controller masks LOOPBACK for the output layer).
        self.router = Router(ap.core, max_layers=ap.max_layers, depths=(ap.fifo_depth, ap.tap_depth),
                             init=[int(Route.LOOPBACK)] * ap.max_layers)
        self.learner = LearningEngine(ap.learn, counter_bits=ap.core.counter_bits) if ap.learn else None

    def elaborate(self, platform):
        p = self.ap.core
        m = Module()
        m.submodules.core = core = self.core
        m.submodules.ctrl = ctrl = self.controller
        m.submodules.router = self.router
        self._datapath(m)
        busy = Signal()
        m.d.comb += busy.eq(ctrl.busy | (self.learner.busy if self.learner else 0))
        lt_r, regs = self._bus_write(m, busy)

        # RUN_CYCLES: busy clocks of the top (start .. done)
        run_cycles = Signal(p.counter_bits)
        with m.If(ctrl.clear):
            m.d.sync += run_cycles.eq(0)
        with m.Elif(ctrl.busy):
            m.d.sync += run_cycles.eq(run_cycles + 1)

        counters = {
            Counter.RUN_CYCLES: run_cycles, Counter.CORE_CYCLES: core.cnt_cycles, Counter.EVENTS: core.cnt_events,
            Counter.SYNOPS: core.cnt_synops, Counter.SPIKES: core.cnt_spikes, Counter.STEPS: core.cnt_steps,
            Counter.ARGMAX_INDEX: core.argmax_index,
            Counter.ARGMAX_VALUE: core.argmax_value,   # signed: sign-extended (low Bm bits are the raw value)
        }
        if self.learner:
            self._learner(m, regs)
            e = self.learner
            counters.update({Counter.LEARN_CYCLES: e.cycles, Counter.LEARN_SYNOPS: e.synops, Counter.WINNER: e.winner,
                             Counter.FIRE_TIME: e.fire_time, Counter.PRUNED: e.pruned})
        else:
            m.d.comb += [ctrl.start.eq(self.bus.start), self.bus.busy.eq(ctrl.busy), self.bus.done.eq(ctrl.done)]
        self._bus_read(m, lt_r, regs, counters)
        return m

    def _datapath(self, m: Module) -> None:
        """Controller between core and router; the controller's start/busy/done on the bus."""
        core, ctrl, router = self.core, self.controller, self.router

        wiring.connect(m, ctrl.step, core.step)
        wiring.connect(m, ctrl.events, core.events)
        wiring.connect(m, core.out, ctrl.core_out)
        # A 2-entry FIFO between the controller and the router: its ready comes from registers, so the
        # router's table lookup and FIFO-full checks do not run on into the core's done and FSM. The
        # controller's port enables travel with their event (the step may change while one waits).
        route_width = len(ctrl.routed.payload.as_value())
        m.submodules.route_buf = route_buf = SyncFIFO(width=route_width + len(router.enable), depth=2)
        m.d.comb += [
            route_buf.w_data.eq(Cat(ctrl.routed.payload.as_value(), ctrl.route_enable)),
            route_buf.w_en.eq(ctrl.routed.valid), ctrl.routed.ready.eq(route_buf.w_rdy),
            router.i.payload.as_value().eq(route_buf.r_data[:route_width]),
            router.enable.eq(route_buf.r_data[route_width:]),
            router.i.valid.eq(route_buf.r_rdy), route_buf.r_en.eq(router.i.ready),
        ]
        wiring.connect(m, router.o[LOOPBACK_PORT], ctrl.loopback)
        wiring.connect(m, router.o[TAP_PORT], wiring.flipped(self.tap))
        m.d.comb += [
            ctrl.core_done.eq(core.done), ctrl.argmax_idle.eq(core.argmax_idle), core.clear.eq(ctrl.clear),
            router.query_addr.eq(ctrl.route_addr), ctrl.route_mask.eq(router.query_mask),
        ]

    def _learner(self, m: Module, regs: dict) -> None:
        """The learning engine: ``start`` goes to it unless Reg.MODE is INFER; its host port is the
        LEARN_* selectors; the rule's registers."""
        bus, ctrl, e = self.bus, self.controller, self.learner
        m.submodules.learner = e
        mode = regs[Reg.MODE]
        m.d.comb += [
            ctrl.start.eq(bus.start & (mode == RunMode.INFER)),
            e.start.eq(bus.start & (mode != RunMode.INFER)), e.learn.eq(mode == RunMode.LEARN),
            bus.busy.eq(ctrl.busy | e.busy), bus.done.eq(ctrl.done | e.done),
            e.host.sel.eq(bus.sel - LEARN_SELS), e.host.addr.eq(bus.addr), e.host.wdata.eq(bus.wdata),
            e.prune_below.eq(regs[Reg.PRUNE_BELOW]), e.theta_up.eq(regs[Reg.THETA_UP]),
            e.theta_down.eq(regs[Reg.THETA_DOWN]), e.theta_min.eq(regs[Reg.THETA_MIN]),
        ]

    def _bus_write(self, m: Module, busy):
        """Bus writes (idle only, inside ``depth(sel)``) into the core's memories, the layer table
        (built here, its read port shared with the controller), the route table and the registers.
        Returns the layer table's read port and the registers by :class:`Reg`."""
        ap, core, ctrl, router, bus = self.ap, self.core, self.controller, self.router, self.bus
        p, lb = ap.core, ap.layer_bits
        in_range = Signal()
        with m.Switch(bus.sel):
            for sel in Sel:
                with m.Case(sel):
                    depth = ap.depth(sel)
                    m.d.comb += in_range.eq(Const(1) if depth >= 2 ** len(bus.addr) else
                                            Const(0) if depth == 0 else bus.addr < depth)
        wr = Signal()
        m.d.comb += wr.eq(bus.we & ~busy & in_range)
        if self.learner:
            m.d.comb += self.learner.host.we.eq(wr & (bus.sel >= LEARN_SELS))

        # core memories: flat element = word_or_row * N + lane
        h = core.host
        m.d.comb += [
            h.sel.eq(bus.sel[:len(h.sel)]), h.addr.eq(bus.addr >> p.lane_bits), h.wdata.eq(bus.wdata),
            h.we.eq(wr & (bus.sel < CORE_SELS)),
        ]
        if p.lane_bits:
            m.d.comb += h.lane.eq(bus.addr[:p.lane_bits])

        # layer table: one read port (1R1W), the bus's while idle, the controller's from the start clock
        # on (its first prefetch); transparent, so a write in the start clock is seen by that prefetch.
        # ``table_ram`` forces block RAM or logic (a board's sizing chooses: docs/BOARDS.md); None: synthesis.
        attrs = {"ram_style": self.table_ram} if self.table_ram else {}
        m.submodules.layer_table = lt = memory.Memory(shape=layer_layout(p), depth=ap.max_layers, init=[],
                                                      attrs=attrs)
        lt_w = lt.write_port()
        lt_r = lt.read_port(transparent_for=(lt_w,))
        m.d.comb += [
            lt_w.addr.eq(bus.addr[:lb]), lt_w.data.as_value().eq(bus.wdata[:layer_layout(p).size]),
            lt_w.en.eq(wr & (bus.sel == Sel.LAYER)),
            lt_r.addr.eq(Mux(ctrl.busy | ctrl.clear, ctrl.table_addr, bus.addr[:lb])),
            ctrl.table_data.eq(lt_r.data),
        ]

        # route table (in the router)
        m.d.comb += [router.table_addr.eq(bus.addr[:lb]), router.table_wdata.eq(bus.wdata),
                     router.table_we.eq(wr & (bus.sel == Sel.ROUTE))]

        # registers (the learning rule's only with a learning engine)
        regs = {Reg.TIMESTEPS: Signal(ap.timestep_bits, name="reg_t"), Reg.LAYERS: Signal(lb + 1, name="reg_l")}
        if ap.learn:
            pb = ap.learn.potential_bits
            regs.update({Reg.MODE: Signal(MODE_BITS, name="reg_mode"),
                         Reg.PRUNE_BELOW: Signal(ap.learn.weight_bits, name="reg_prune_below"),
                         Reg.THETA_UP: Signal(pb, name="reg_theta_up"), Reg.THETA_DOWN: Signal(pb, name="reg_theta_down"),
                         Reg.THETA_MIN: Signal(pb, name="reg_theta_min")})
        m.d.comb += [ctrl.timesteps.eq(regs[Reg.TIMESTEPS]), ctrl.layers.eq(regs[Reg.LAYERS])]
        with m.If(wr & (bus.sel == Sel.REG)):
            with m.Switch(bus.addr):
                for r, sig in regs.items():
                    with m.Case(r):
                        m.d.sync += sig.eq(bus.wdata)
        return lt_r, regs

    def _bus_read(self, m: Module, lt_r, regs: dict, counters: dict) -> None:
        """Bus reads: ``rdata`` is the element addressed READ_LATENCY clocks earlier."""
        ap, bus = self.ap, self.bus
        # ---- bus read: everything READ_LATENCY clocks after the address. The core's host port has
        # that latency (memory outputs registered, then two selects); the other sources are selected
        # into one register two clocks after the address and delayed to match. ----
        assert READ_LATENCY >= 3

        def delayed(sig, clocks):
            for _ in range(clocks):
                q = Signal.like(sig)
                m.d.sync += q.eq(sig)
                sig = q
            return sig

        sel_d1, addr_d1 = delayed(bus.sel, 1), delayed(bus.addr, 1)
        sel_d = delayed(sel_d1, READ_LATENCY - 1)
        # The tables' sync read data (a clock after the address), or a register or counter selected by
        # the registered address (timing: docs/BOARDS.md); zero for the core's memories.
        other = Signal(ap.bus_data_bits)
        m.d.sync += other.eq(0)
        with m.Switch(sel_d1):
            with m.Case(Sel.LAYER):
                m.d.sync += other.eq(lt_r.data.as_value())
            with m.Case(Sel.ROUTE):
                m.d.sync += other.eq(self.router.table_rdata)
            with m.Case(Sel.REG):
                with m.Switch(addr_d1):
                    for r, sig in regs.items():
                        with m.Case(r):
                            m.d.sync += other.eq(sig)
            with m.Case(Sel.COUNTER):
                with m.Switch(addr_d1):
                    for c, sig in counters.items():
                        with m.Case(c):
                            m.d.sync += other[:ap.elem_bits(Sel.COUNTER)].eq(sig)
        other_d = delayed(other, READ_LATENCY - 2)
        with m.Switch(sel_d):
            with m.Case(*(Sel(s) for s in range(CORE_SELS))):
                m.d.comb += bus.rdata.eq(self.core.host.rdata)
            if self.learner:
                with m.Case(*(s for s in Sel if s >= LEARN_SELS)):
                    m.d.comb += bus.rdata.eq(delayed(self.learner.host.rdata, READ_LATENCY - HOST_LATENCY))
            with m.Default():
                m.d.comb += bus.rdata.eq(other_d)
