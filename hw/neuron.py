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
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .params import CoreParams, Mode, check_params

__all__ = ["TsaLane", "NeuronArray", "saturate"]


def saturate(value, bits: int):
    """Amaranth expression: two's-complement saturation of ``value`` to ``bits`` bits (signed)."""
    hi, lo = 2 ** (bits - 1) - 1, -(2 ** (bits - 1))
    return Mux(value > hi, hi, Mux(value < lo, lo, value))


class TsaLane(wiring.Component):
    """One lane: state, input and bias in; next state and ternary spike out (combinational).

    Ports: ``mode`` (:class:`Mode`), ``threshold`` (unsigned Bt), ``v`` (signed Bm = max(Bv, Bo)),
    ``fired``, ``acc`` (signed Bi), ``bias`` (signed Bb) in; ``v_next``, ``fired_next``, ``pos``,
    ``neg`` (the spike: +1, -1; never both) out.
    """

    def __init__(self, params: CoreParams):
        check_params(self, params)
        self.params = p = params
        super().__init__({
            "mode": In(2), "threshold": In(p.threshold_bits),
            "v": In(signed(p.store_bits)), "fired": In(1), "acc": In(signed(p.acc_bits)),
            "bias": In(signed(p.bias_bits)),
            "v_next": Out(signed(p.store_bits)), "fired_next": Out(1), "pos": Out(1), "neg": Out(1),
        })

    def elaborate(self, platform):
        p = self.params
        m = Module()
        # Exact sums, wide enough by construction (Amaranth widens + and <<).
        two_v = Signal(signed(p.store_bits + 1))
        mem = Signal(signed(max(p.store_bits + 1, p.acc_bits) + 1))          # m = 2v + I
        ib = Signal(signed(max(p.acc_bits, p.bias_bits) + 1))                # I + b
        theta = Signal(signed(p.threshold_bits + 1))
        reset = Signal(signed(max(mem.shape().width, p.threshold_bits + 2) + 1))  # m - 2*theta*s
        m.d.comb += [
            two_v.eq(self.v << 1),
            mem.eq(two_v + self.acc),
            ib.eq(self.acc + self.bias),
            theta.eq(self.threshold),
        ]
        pos = Signal()
        neg = Signal()
        m.d.comb += [
            pos.eq(mem >= theta),
            neg.eq((mem <= -theta) & self.fired),
            reset.eq(Mux(pos, mem - (theta << 1), Mux(neg, mem + (theta << 1), mem))),
        ]
        with m.Switch(self.mode):
            with m.Case(Mode.SILENT):
                m.d.comb += [self.v_next.eq(saturate(ib, p.membrane_bits)), self.fired_next.eq(0)]
            with m.Case(Mode.FIRE):
                m.d.comb += [self.v_next.eq(saturate(reset, p.membrane_bits)),
                             self.fired_next.eq(self.fired | pos), self.pos.eq(pos), self.neg.eq(neg)]
            with m.Case(Mode.OUT_FIRST):
                m.d.comb += [self.v_next.eq(saturate(ib, p.output_bits)), self.fired_next.eq(0)]
            with m.Case(Mode.OUT):
                m.d.comb += [self.v_next.eq(saturate(mem, p.output_bits)), self.fired_next.eq(0)]
        return m


class NeuronArray(wiring.Component):
    """N :class:`TsaLane` sharing ``mode`` and ``threshold``; lane ports are arrays of N."""

    def __init__(self, params: CoreParams):
        check_params(self, params)
        self.params = p = params
        n = p.lanes
        super().__init__({
            "mode": In(2), "threshold": In(p.threshold_bits),
            "v": In(data.ArrayLayout(signed(p.store_bits), n)), "fired": In(n),
            "acc": In(data.ArrayLayout(signed(p.acc_bits), n)), "bias": In(data.ArrayLayout(signed(p.bias_bits), n)),
            "v_next": Out(data.ArrayLayout(signed(p.store_bits), n)), "fired_next": Out(n),
            "pos": Out(n), "neg": Out(n),
        })

    def elaborate(self, platform):
        m = Module()
        for i in range(self.params.lanes):
            lane = m.submodules[f"lane{i}"] = TsaLane(self.params)
            m.d.comb += [
                lane.mode.eq(self.mode), lane.threshold.eq(self.threshold),
                lane.v.eq(self.v[i]), lane.fired.eq(self.fired[i]), lane.acc.eq(self.acc[i]),
                lane.bias.eq(self.bias[i]),
                self.v_next[i].eq(lane.v_next), self.fired_next[i].eq(lane.fired_next),
                self.pos[i].eq(lane.pos), self.neg[i].eq(lane.neg),
            ]
        return m
