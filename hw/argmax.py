"""Argmax over the output integrators, N lanes per clock (lowest index wins a tie, like numpy).

The core feeds it every word (group) of output membranes it writes in an output-layer step, in
ascending group order; ``first`` marks group 0 (restarts the search). After the step's last word the
registered ``index``/``value`` hold the argmax of the layer's ``count`` neurons (lanes at index >=
count are excluded by ``valid``).
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .params import CoreParams, check_params

__all__ = ["Argmax"]


class Argmax(wiring.Component):
    """In: ``en`` (a word this clock), ``first``, ``group``, ``values`` (N x signed Bm), ``valid`` (N
    bits). Out (registered): ``index``, ``value``."""

    def __init__(self, params: CoreParams):
        check_params(self, params)
        self.params = p = params
        super().__init__({
            "en": In(1), "first": In(1), "group": In(p.group_bits),
            "values": In(data.ArrayLayout(signed(p.store_bits), p.lanes)), "valid": In(p.lanes),
            "index": Out(p.index_bits), "value": Out(signed(p.store_bits)),
        })

    def elaborate(self, platform):
        p = self.params
        m = Module()
        # Best lane of this word: a left-to-right scan with strict '>' keeps the lowest lane on ties.
        best_v = Const(-(2 ** (p.store_bits - 1)), signed(p.store_bits))
        best_k = Const(0, max(1, p.lane_bits))
        best_ok = Const(0, 1)
        for k in range(p.lanes):
            v = self.values[k]
            take = Signal(name=f"take{k}")
            m.d.comb += take.eq(self.valid[k] & (~best_ok | (v > best_v)))
            nv, nk, nok = Signal.like(v, name=f"bv{k}"), Signal(max(1, p.lane_bits), name=f"bk{k}"), Signal(name=f"bo{k}")
            m.d.comb += [nv.eq(Mux(take, v, best_v)), nk.eq(Mux(take, k, best_k)), nok.eq(best_ok | self.valid[k])]
            best_v, best_k, best_ok = nv, nk, nok
        index = Signal(p.index_bits)
        if p.lane_bits:
            m.d.comb += index.eq((self.group << p.lane_bits) | best_k)
        else:
            m.d.comb += index.eq(self.group)
        with m.If(self.en & best_ok & (self.first | (best_v > self.value))):
            m.d.sync += [self.index.eq(index), self.value.eq(best_v)]
        return m

