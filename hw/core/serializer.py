"""Spike serializer: one word of N ternary spikes in, spike events out one per clock.

The update stage of the core produces, per word (group g), a ``pos`` and a ``neg`` mask over the N
lanes, and marks a step's last word with ``end``. This block holds one such word and emits an event
``(index = g*N + k, neg)`` for every set lane ``k`` in ascending order, one per clock while the
consumer is ready, and after the spikes of an ``end`` word the step's end marker. It accepts the
next word in the same clock it hands out the last event of the current one, so a word with s
spikes costs max(1, s) clocks of the update stage. Nothing is dropped or duplicated under
back-pressure.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from cssnn.hw.params import CoreParams, check_params, event_layout

__all__ = ["SpikeSerializer", "word_layout"]


def word_layout(p: CoreParams) -> data.StructLayout:
    return data.StructLayout({"group": p.group_bits, "pos": p.lanes, "neg": p.lanes, "end": 1})


class SpikeSerializer(wiring.Component):
    """``i``: stream of words (group, pos, neg, end; a spike or ``end`` set); ``o``: stream of events
    (the spikes, then an end marker for an ``end`` word); ``busy``: an event is held."""

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

        def lowest(mask):
            """One-hot lowest set bit of ``mask`` (zero if none): one carry chain."""
            return mask & (-mask).as_unsigned()

        def encode(one_hot):
            """Lane number of a one-hot (or zero) lane mask: an OR tree, no priority chain."""
            return Cat(*(Cat(*(one_hot[k] for k in range(n) if k >> b & 1)).any()
                         for b in range(p.lane_bits)))

        # The event on the output is a register (valid, group, lane, neg); ``rest_*`` are the spikes of
        # its word that still follow it. Loading the next event (from ``rest`` or, when that is empty,
        # from a new word) needs only the lowest set bit of a register or of the FIFO's word, so the
        # consumer's ready gates clock enables and muxes but runs through no carry chain.
        valid = Signal()
        group = Signal(p.group_bits)
        lane = Signal(max(1, p.lane_bits))
        neg, end = Signal(), Signal()
        rest_pos, rest_neg = Signal(n), Signal(n)
        rest_any = Signal()
        rest_end = Signal()     # the held word's end marker is still to come (after rest)
        m.d.comb += [
            rest_any.eq((rest_pos | rest_neg).any()),
            self.o.valid.eq(valid),
            self.o.payload.index.eq((group << p.lane_bits) | lane if p.lane_bits else group),
            self.o.payload.neg.eq(neg),
            self.o.payload.end.eq(end),
            self.busy.eq(valid | rest_end),
        ]
        advance = Signal()      # the output register takes its next event (or empties)
        m.d.comb += [
            advance.eq(~valid | self.o.ready),
            self.i.ready.eq(advance & ~rest_any & ~rest_end),
        ]

        def load(pos, neg_mask):
            low = Signal(n, name="load_low")
            m.d.comb += low.eq(lowest(pos | neg_mask))
            lane_stmt = [lane.eq(encode(low))] if p.lane_bits else []
            return [*lane_stmt, neg.eq((neg_mask & low).any()),
                    rest_pos.eq(pos & ~low), rest_neg.eq(neg_mask & ~low)]

        word = self.i.payload
        word_any = Signal()
        m.d.comb += word_any.eq((word.pos | word.neg).any())
        with m.If(advance):
            m.d.sync += [valid.eq(0), end.eq(0)]
            with m.If(rest_any):
                m.d.sync += [*load(rest_pos, rest_neg), valid.eq(1)]
            with m.Elif(rest_end):   # the end marker: index 0, like the one the controller injects
                m.d.sync += [valid.eq(1), end.eq(1), rest_end.eq(0), group.eq(0), lane.eq(0), neg.eq(0)]
            with m.Elif(self.i.valid):
                m.d.sync += [*load(word.pos, word.neg), group.eq(word.group), rest_end.eq(word.end & word_any),
                             valid.eq(word_any)]
                with m.If(word.end & ~word_any):   # no spikes: the end marker at once
                    m.d.sync += [valid.eq(1), end.eq(1), group.eq(0), lane.eq(0), neg.eq(0)]
        return m
