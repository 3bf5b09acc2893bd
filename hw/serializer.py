"""Spike serializer: one word of N ternary spikes in, spike events out one per clock.

The update stage of the core produces, per word (group g), a ``pos`` and a ``neg`` mask over the N
lanes. This block holds one such word and emits an event ``(index = g*N + k, neg)`` for every set
lane ``k`` in ascending order, one per clock while the consumer is ready. It accepts the next word in
the same clock it hands out the last event of the current one, so a word with s spikes costs
max(1, s) clocks of the update stage. Nothing is dropped or duplicated under back-pressure.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .params import CoreParams, check_params, event_layout

__all__ = ["SpikeSerializer", "word_layout"]


def word_layout(p: CoreParams) -> data.StructLayout:
    return data.StructLayout({"group": p.group_bits, "pos": p.lanes, "neg": p.lanes})


class SpikeSerializer(wiring.Component):
    """``i``: stream of words (group, pos, neg; at least one bit set); ``o``: stream of events
    (``end`` is always 0 here); ``busy``: a word is held."""

    def __init__(self, params: CoreParams):
        check_params(self, params)
        self.params = p = params
        super().__init__({
            "i": In(stream.Signature(word_layout(p))),
            "o": Out(stream.Signature(event_layout(p))),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        p = self.params
        n = p.lanes
        m = Module()
        valid = Signal()
        pos, neg, group = Signal(n), Signal(n), Signal(p.group_bits)
        both = Signal(n)
        low = Signal(n)     # lowest set bit of both (one-hot)
        rest = Signal(n)    # both without it
        m.d.comb += [
            both.eq(pos | neg),
            low.eq(both & (-both).as_unsigned()),
            rest.eq(both & ~low),
        ]
        lane = Signal(max(1, p.lane_bits))
        for k in reversed(range(n)):
            with m.If(low[k]):
                m.d.comb += lane.eq(k)
        m.d.comb += [
            self.o.valid.eq(valid),
            self.o.payload.index.eq((group << p.lane_bits) | lane if p.lane_bits else group),
            self.o.payload.neg.eq((neg & low).any()),
            self.o.payload.end.eq(0),
            self.busy.eq(valid),
        ]
        last = Signal()
        m.d.comb += last.eq(self.o.valid & self.o.ready & (rest == 0))
        m.d.comb += self.i.ready.eq(~valid | last)
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += [pos.eq(pos & ~low), neg.eq(neg & ~low)]
            with m.If(rest == 0):
                m.d.sync += valid.eq(0)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [valid.eq(1), pos.eq(self.i.payload.pos), neg.eq(self.i.payload.neg),
                         group.eq(self.i.payload.group)]
        return m
