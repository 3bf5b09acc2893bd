"""The accumulate stage of the core (ACCUM items): D, A, B, D2 and X of a read-modify-write of one
accumulator word per lane per clock.

An item is a synapse row (issued in R: its read address) and the event's sign. In D the synapse
memory outputs the row, in A it is in the synapse store's D register: lane ``k`` holds a synapse to
a neuron of lane ``k`` and that neuron's word within the layer (``offset``); the word in the neuron
memories, ``neuron_base + offset``, is registered, and in B accumulator bank ``k`` reads it
(``acc_addr``). In D2 the banks output the words, in X they are in the neuron store's D register and
the
:class:`~cssnn.hw.core.accumulator.SpikeAccumulator` adds (or subtracts) the row's weights into
them and the sums are written back, each lane at its own word. Consecutive items often hit the same
word of a lane, and an item's read (in B) misses the sums of the two items ahead of it (they are in
D2 and X then), so those are forwarded by hand, lane by lane: ``w1``/``w2`` are the writes of
the last two clocks, and the hit flags compare the addresses one clock early (in D2) to keep the
compares off the adder's path. No stall, no bubble.

With ``walk = "lanes"`` an item is one entry per lane, each of its own event (the lanes walk their
lists apart): the sign is per lane, and a lane without an entry comes from the synapse store as
zeros (mask 0, word 0 of the layer), so it adds nothing and writes back what it read.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from cssnn.hw.core.accumulator import SpikeAccumulator
from cssnn.hw.core.stores import lanes_write_signature
from cssnn.hw.params import CoreParams, check_params, syn_lane_layout

__all__ = ["AccumulateStage"]


class AccumulateStage(wiring.Component):
    """In: ``accum`` (the FSM is in ACCUM), ``issue`` (an item is issued in R), ``neg`` (its sign; per
    lane with ``walk = "lanes"``),
    ``neuron_base`` (the step's layer's first word),
    ``row`` (the synapse row read, from the synapse store's D register) and ``acc`` (the accumulator
    words read, from the neuron store's D register).

    Out: ``acc_addr`` (per lane, the word bank ``k`` reads: the row's offsets), ``acc_read`` (an item
    is in B: the banks read ``acc_addr``), ``busy`` (an item is in D, A, B, D2 or X), ``write``
    (:func:`~cssnn.hw.core.stores.lanes_write_signature`: the sums of the item in X), ``synops``
    (the synapses of that item's row that exist, valid with ``write.en``)."""

    def __init__(self, params: CoreParams):
        check_params(self, params)
        self.params = p = params
        n = p.lanes
        acc = signed(p.acc_bits)
        super().__init__({
            "accum": In(1), "issue": In(1), "neg": In(n if p.walk == "lanes" else 1), "neuron_base": In(p.group_bits),
            "row": In(data.ArrayLayout(syn_lane_layout(p), n)), "acc": In(data.ArrayLayout(acc, n)),
            "acc_addr": Out(data.ArrayLayout(p.group_bits, n)), "acc_read": Out(1), "busy": Out(1),
            "write": Out(lanes_write_signature(p, acc)), "synops": Out(ceil_log2(n + 1)),
            # with overlap ``busy_front``: an item in D, A or B (its sums are neither written nor in
            # D2 or X, from where the neuron store forwards them to UPDATE's read)
            **({"busy_front": Out(1)} if p.overlap else {}),
        })

    def elaborate(self, platform):
        p = self.params
        n = p.lanes
        m = Module()
        m.submodules.adder = adder = SpikeAccumulator(p)
        addrs = data.ArrayLayout(p.group_bits, n)
        # the item's valid bit and sign through D, A, B, D2 and X; its row from A on
        d_v, d_neg = Signal(), Signal.like(self.neg)
        a_v, a_neg = Signal(), Signal.like(self.neg)
        b_v, b_neg, b_addr = Signal(), Signal.like(self.neg), Signal(addrs)
        b_row = Signal.like(self.row)
        d2_v, d2_neg, d2_addr = Signal(), Signal.like(self.neg), Signal(addrs)
        d2_row = Signal.like(self.row)
        x_v, x_neg, x_addr = Signal(), Signal.like(self.neg), Signal(addrs)
        x_row = Signal.like(self.row)
        with m.If(self.accum):
            m.d.sync += [d_v.eq(self.issue), d_neg.eq(self.neg)]
        with m.Else():
            m.d.sync += d_v.eq(0)
        a_base = self.neuron_base
        if p.overlap:   # the layer's first word goes with the item: the next step's config comes in behind it
            d_base, a_base = Signal(p.group_bits), Signal(p.group_bits)
            m.d.sync += [d_base.eq(self.neuron_base), a_base.eq(d_base)]
        for k in range(n):   # A: the word of lane k's synapse = the layer's first word + its offset
            m.d.sync += b_addr[k].eq(a_base + self.row[k].offset)
        m.d.comb += [self.acc_addr.eq(b_addr), self.acc_read.eq(b_v)]
        m.d.sync += [a_v.eq(d_v), a_neg.eq(d_neg),
                     b_v.eq(a_v), b_neg.eq(a_neg), b_row.eq(self.row),
                     d2_v.eq(b_v), d2_neg.eq(b_neg), d2_addr.eq(b_addr), d2_row.eq(b_row),
                     x_v.eq(d2_v), x_neg.eq(d2_neg), x_addr.eq(d2_addr), x_row.eq(d2_row)]

        # forwarding of the last two sums (w1, w2) per lane, hits compared in D2
        w1_v, w2_v = Signal(), Signal()
        w1_addr = Signal(addrs)
        w1_data = Signal.like(adder.acc_out)
        w2_data = Signal.like(adder.acc_out)
        hit1, hit2 = Signal(n), Signal(n)
        m.d.sync += [w1_v.eq(x_v), w1_addr.eq(x_addr), w1_data.eq(adder.acc_out), w2_v.eq(w1_v), w2_data.eq(w1_data)]
        for k in range(n):
            m.d.sync += [hit1[k].eq(x_v & (d2_addr[k] == x_addr[k])), hit2[k].eq(w1_v & (d2_addr[k] == w1_addr[k]))]
            m.d.comb += adder.acc_in[k].eq(Mux(hit1[k], w1_data[k], Mux(hit2[k], w2_data[k], self.acc[k])))
        m.d.comb += [adder.row.eq(x_row), adder.neg.eq(x_neg),
                     self.write.en.eq(x_v), self.write.addr.eq(x_addr), self.write.data.eq(adder.acc_out),
                     self.synops.eq(adder.synops), self.busy.eq(d_v | a_v | b_v | d2_v | x_v)]
        if p.overlap:
            m.d.comb += self.busy_front.eq(d_v | a_v | b_v)
        return m
