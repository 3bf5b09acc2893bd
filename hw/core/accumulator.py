"""Weighted-spike accumulators: add or subtract one synapse row into N lane accumulators.

For a spike event (presynaptic i, sign) the core reads synapse row ``(i, g)`` (N weights + N mask
bits for postsynaptic neurons ``g*N .. g*N+N-1``) and the accumulator word ``g`` of the layer, and
this block computes the new word: ``acc[k] + w[k]`` (+1 spike) or ``acc[k] - w[k]`` (-1 spike) for
every lane whose mask bit is set, ``acc[k]`` unchanged otherwise. No multiplier: the sign selects an
adder or a subtractor. ``synops`` is the number of unmasked lanes (the synaptic operations this row
costs, SEMANTICS.md section 5).

The sums wrap at ``acc_bits``; the layout helper checks that ``Imax`` of every layer fits, so they
never do. The block is combinational: the core registers around it (memory outputs registered, add and write
back in the next clock, the sums of the two items ahead forwarded, see ``hw/core/``).
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from cssnn.hw.params import CoreParams, check_params, syn_lane_layout

__all__ = ["SpikeAccumulator"]


class SpikeAccumulator(wiring.Component):
    """``acc_in`` (N x signed Bi), ``row`` (N x (weight, mask)), ``neg`` (per lane with
    ``walk = "lanes"``, whose lanes carry items of different events) -> ``acc_out``, ``synops``."""

    def __init__(self, params: CoreParams):
        check_params(self, params)
        self.params = p = params
        n = p.lanes
        super().__init__({
            "acc_in": In(data.ArrayLayout(signed(p.acc_bits), n)),
            "row": In(data.ArrayLayout(syn_lane_layout(p), n)),
            "neg": In(n if p.walk == "lanes" else 1),
            "acc_out": Out(data.ArrayLayout(signed(p.acc_bits), n)),
            "synops": Out(ceil_log2(n + 1)),
        })

    def elaborate(self, platform):
        m = Module()
        n = self.params.lanes
        for k in range(n):
            a, syn = self.acc_in[k], self.row[k]
            neg = self.neg[k] if self.params.walk == "lanes" else self.neg
            upd = Mux(neg, a - syn.weight, a + syn.weight)
            m.d.comb += self.acc_out[k].eq(Mux(syn.mask, upd, a))
        m.d.comb += self.synops.eq(sum(self.row[k].mask for k in range(n)))
        return m
