"""The TSA neuron array: the combinational update of N lanes (SEMANTICS.md sections 2 and 3).

The state (membrane ``v``, fired-positive flag ``f``) of the many virtual neurons a lane serves
lives in the core's state memory (block RAM); the core reads one word (N lanes) per clock, feeds it
through this array together with the accumulated input ``I`` and the bias ``b`` and writes the
result back. Per lane and mode:

    SILENT     v <- sat_Bv(I + b)                  f <- 0   (first step of the layer in an inference)
    FIRE       m = 2v + I                          (exact, no saturation)
               s = +1 if m >= theta; -1 if m <= -theta and f; else 0
               v <- sat_Bv(m - 2*theta*s)          f <- f | (s = +1)
    OUT_FIRST  v <- sat_Bo(I + b)
    OUT        v <- sat_Bo(2v + I)

Multiplier-free: ``2v`` and ``2*theta`` are shifts, ``2*theta*s`` a select between +-2*theta and 0.
Clearing ``f`` at the silent step (SEMANTICS.md section 2) is how the flag is zeroed at the start of
every inference, without a separate pass over the state memory.

The update is two halves (for timing, the core puts a register between them, ``pipelined=True``):

    stage 1   m = 2v + I, I + b, the fire flags (m >= theta, m <= -theta and f), m -/+ 2*theta
    stage 2   the reset select, saturation, the mode select

With ``pipelined=True`` the stage-1 results (and ``f``) are registered in the clocks where ``en`` is
high and stage 2 computes from those registers: ``v_next``/``fired_next``/``pos``/``neg`` then
belong to the inputs presented one enabled clock earlier. ``mode`` and ``threshold`` are used by both
stages, so they must stay constant while a word is in stage 2 (the core's step config does), and
``threshold`` must also be set a clock before the first word enters stage 1: its derived constants
(-theta, +-2 theta) are registered (the core's step config is loaded clocks before any update).
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from cssnn.hw.params import CoreParams, Mode, check_params

__all__ = ["TsaLane", "NeuronArray", "saturate"]


def saturate(value, bits: int):
    """Amaranth expression: two's-complement saturation of the signed ``value`` to ``bits`` bits.

    Written as a test of the bits above the result (they must all equal its sign bit) rather than two
    compares with constants, which synthesis would build as carry chains on the critical path."""
    width = value.shape().width
    hi, lo = 2 ** (bits - 1) - 1, -(2 ** (bits - 1))
    if width <= bits:
        return value
    top = value[bits - 1:]                 # the result's sign bit and everything above it
    fits = (top == 0) | (top == 2 ** len(top) - 1)
    return Mux(fits, value[:bits].as_signed(), Mux(value[-1], lo, hi))


class TsaLane(wiring.Component):
    """One lane: state, input and bias in; next state and ternary spike out.

    Ports: ``mode`` (:class:`Mode`), ``threshold`` (unsigned Bt), ``v`` (signed Bm = max(Bv, Bo)),
    ``fired``, ``acc`` (signed Bi), ``bias`` (signed Bb) in; ``v_next``, ``fired_next``, ``pos``,
    ``neg`` (the spike: +1, -1; never both) out. Combinational, or with ``pipelined=True`` a register
    between the two stages (advanced by ``en``, see the module docstring).
    """

    def __init__(self, params: CoreParams, *, pipelined: bool = False):
        check_params(self, params)
        self.params = p = params
        self.pipelined = bool(pipelined)
        super().__init__({
            "mode": In(Mode), "threshold": In(p.threshold_bits), "en": In(1, init=1),
            "v": In(signed(p.store_bits)), "fired": In(1), "acc": In(signed(p.acc_bits)),
            "bias": In(signed(p.bias_bits)),
            "v_next": Out(signed(p.store_bits)), "fired_next": Out(1), "pos": Out(1), "neg": Out(1),
        })

    def elaborate(self, platform):
        p = self.params
        m = Module()
        # ---- stage 1: exact sums (wide enough by construction; Amaranth widens + and <<) and flags ----
        two_v = Signal(signed(p.store_bits + 1))
        mem = Signal(signed(max(p.store_bits + 1, p.acc_bits) + 1))          # m = 2v + I
        ib = Signal(signed(max(p.acc_bits, p.bias_bits) + 1))                # I + b
        # theta's derived constants: with pipelined=True registered from ``threshold`` (they lag it by
        # a clock), so no negation runs in front of the compares of every lane
        theta = Signal(signed(p.threshold_bits + 1))
        neg_theta = Signal(signed(p.threshold_bits + 1))
        two_theta = Signal(signed(p.threshold_bits + 2))
        neg_two_theta = Signal(signed(p.threshold_bits + 2))
        domain = m.d.sync if self.pipelined else m.d.comb
        domain += [theta.eq(self.threshold), neg_theta.eq(-self.threshold),
                   two_theta.eq(self.threshold << 1), neg_two_theta.eq(-(self.threshold << 1))]
        pos = Signal()
        neg = Signal()
        # m - 2*theta*s, computed before s is known: a spike has the sign of m (+1 needs m >= theta >= 0,
        # -1 without +1 needs m < 0), so adj = m -/+ 2*theta by m's sign is the reset value whenever s != 0
        adj = Signal(signed(max(mem.shape().width, p.threshold_bits + 2) + 1))
        m.d.comb += [
            two_v.eq(self.v << 1),
            mem.eq(two_v + self.acc),
            ib.eq(self.acc + self.bias),
            pos.eq(mem >= theta),
            neg.eq((neg_theta >= mem) & self.fired),
        ]
        # both sums in parallel and a select after them: a select in front of one adder would wait for
        # m's sign, the end of m's carry chain, before the adder could start
        adj_up, adj_down = Signal.like(adj), Signal.like(adj)
        m.d.comb += [adj_up.eq(mem + two_theta), adj_down.eq(mem + neg_two_theta),
                     adj.eq(Mux(mem[-1], adj_up, adj_down))]
        # ---- the stage register (pipelined) or wires ----
        if self.pipelined:
            mem2, ib2 = Signal.like(mem, name="mem_s2"), Signal.like(ib, name="ib_s2")
            adj2 = Signal.like(adj, name="adj_s2")
            pos2, neg2, fired2 = Signal(name="pos_s2"), Signal(name="neg_s2"), Signal(name="fired_s2")
            with m.If(self.en):
                m.d.sync += [mem2.eq(mem), ib2.eq(ib), adj2.eq(adj), pos2.eq(pos), neg2.eq(neg),
                             fired2.eq(self.fired)]
        else:
            mem2, ib2, adj2, pos2, neg2, fired2 = mem, ib, adj, pos, neg, self.fired
        # ---- stage 2: reset by subtraction (a select: the sum is in adj), saturation, mode select ----
        reset = Signal.like(adj)   # m - 2*theta*s
        m.d.comb += reset.eq(Mux(pos2 | neg2, adj2, mem2))
        with m.Switch(self.mode):
            with m.Case(Mode.SILENT):
                m.d.comb += [self.v_next.eq(saturate(ib2, p.membrane_bits)), self.fired_next.eq(0)]
            with m.Case(Mode.FIRE):
                m.d.comb += [self.v_next.eq(saturate(reset, p.membrane_bits)),
                             self.fired_next.eq(fired2 | pos2), self.pos.eq(pos2), self.neg.eq(neg2)]
            with m.Case(Mode.OUT_FIRST):
                m.d.comb += [self.v_next.eq(saturate(ib2, p.output_bits)), self.fired_next.eq(0)]
            with m.Case(Mode.OUT):
                m.d.comb += [self.v_next.eq(saturate(mem2, p.output_bits)), self.fired_next.eq(0)]
        return m


class NeuronArray(wiring.Component):
    """N :class:`TsaLane` sharing ``mode``, ``threshold`` and ``en``; lane ports are arrays of N.
    ``pipelined`` as for :class:`TsaLane`."""

    def __init__(self, params: CoreParams, *, pipelined: bool = False):
        check_params(self, params)
        self.params = p = params
        self.pipelined = bool(pipelined)
        n = p.lanes
        super().__init__({
            "mode": In(Mode), "threshold": In(p.threshold_bits), "en": In(1, init=1),
            "v": In(data.ArrayLayout(signed(p.store_bits), n)), "fired": In(n),
            "acc": In(data.ArrayLayout(signed(p.acc_bits), n)), "bias": In(data.ArrayLayout(signed(p.bias_bits), n)),
            "v_next": Out(data.ArrayLayout(signed(p.store_bits), n)), "fired_next": Out(n),
            "pos": Out(n), "neg": Out(n),
        })

    def elaborate(self, platform):
        m = Module()
        for i in range(self.params.lanes):
            lane = m.submodules[f"lane{i}"] = TsaLane(self.params, pipelined=self.pipelined)
            m.d.comb += [
                lane.mode.eq(self.mode), lane.threshold.eq(self.threshold), lane.en.eq(self.en),
                lane.v.eq(self.v[i]), lane.fired.eq(self.fired[i]), lane.acc.eq(self.acc[i]),
                lane.bias.eq(self.bias[i]),
                self.v_next[i].eq(lane.v_next), self.fired_next[i].eq(lane.fired_next),
                self.pos[i].eq(lane.pos), self.neg[i].eq(lane.neg),
            ]
        return m
