"""The accumulate stage of the core (ACCUM items): D and X of a read-modify-write of one
accumulator word per clock.

An item is (synapse row, accumulator word, sign) issued in R. In X the
:class:`~cssnn.hw.core.accumulator.SpikeAccumulator` adds (or subtracts) the row into the word read
from the neuron store, and the sum is written back at the end of X. Consecutive items usually hit
the same word, and an item's read misses the sums the two items ahead of it write (they are in X
while it is in R and D), so those are forwarded by hand: ``w1``/``w2`` are the writes of the last two
clocks, and the hit flags compare the addresses one clock early (in D) to keep the compares off the
adder's path. A read port transparent to the write port would not cover this distance, and would
also put the host's writes in front of the read data. No stall, no bubble.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from cssnn.hw.core.accumulator import SpikeAccumulator
from cssnn.hw.core.stores import word_write_signature
from cssnn.hw.params import CoreParams, check_params, syn_lane_layout

__all__ = ["AccumulateStage"]


class AccumulateStage(wiring.Component):
    """In: ``accum`` (the FSM is in ACCUM), ``issue`` (an item is issued in R), ``neg`` (its sign),
    ``d_addr``/``x_addr`` (the accumulator word of the items in D and X: the core's address
    registers), ``row`` and ``acc`` (the synapse row and accumulator word read, from the stores' D
    registers).

    Out: ``write`` (:func:`~cssnn.hw.core.stores.word_write_signature`: the sum of the item in X),
    ``synops`` (the unmasked lanes of that item's row, valid with ``write.en``)."""

    def __init__(self, params: CoreParams):
        check_params(self, params)
        self.params = p = params
        n = p.lanes
        acc = signed(p.acc_bits)
        super().__init__({
            "accum": In(1), "issue": In(1), "neg": In(1),
            "d_addr": In(p.group_bits), "x_addr": In(p.group_bits),
            "row": In(data.ArrayLayout(syn_lane_layout(p), n)), "acc": In(data.ArrayLayout(acc, n)),
            "write": Out(word_write_signature(p, acc)), "synops": Out(ceil_log2(n + 1)),
        })

    def elaborate(self, platform):
        p = self.params
        m = Module()
        m.submodules.adder = adder = SpikeAccumulator(p)
        # the item's valid bit and sign through D and X
        d_acc_v, d_neg = Signal(), Signal()
        x_acc_v, x_neg = Signal(), Signal()
        with m.If(self.accum):
            m.d.sync += [d_acc_v.eq(self.issue), d_neg.eq(self.neg)]
        with m.If(~self.accum):
            m.d.sync += d_acc_v.eq(0)
        m.d.sync += [x_acc_v.eq(d_acc_v), x_neg.eq(d_neg)]

        # forwarding of the last two sums (w1, w2), hits compared in D
        w1_v, w2_v = Signal(), Signal()
        w1_addr = Signal(p.group_bits)
        w1_data = Signal.like(adder.acc_out)
        w2_data = Signal.like(adder.acc_out)
        hit1, hit2 = Signal(), Signal()
        m.d.sync += [
            w1_v.eq(x_acc_v), w1_addr.eq(self.x_addr), w1_data.eq(adder.acc_out), w2_v.eq(w1_v), w2_data.eq(w1_data),
            hit1.eq(x_acc_v & (self.d_addr == self.x_addr)), hit2.eq(w1_v & (self.d_addr == w1_addr)),
        ]
        m.d.comb += [adder.acc_in.eq(Mux(hit1, w1_data, Mux(hit2, w2_data, self.acc))), adder.row.eq(self.row),
                     adder.neg.eq(x_neg)]
        m.d.comb += [self.write.en.eq(x_acc_v), self.write.addr.eq(self.x_addr), self.write.data.eq(adder.acc_out),
                     self.synops.eq(adder.synops)]
        return m
