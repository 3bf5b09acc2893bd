"""The event input of the core: the ``events`` stream through two registers before R.

E1 takes the raw event (its index is a FIFO's read data); the event register holds it while R
issues its rows, and as it takes an event the event's first synapse row
``syn_base + (index << stride_log2)`` is computed from E1 (the synapse store's ``row`` register
loads it), so R only steps that register. Events are taken only while ``accum`` and never past the
end marker: the next step's input (or this step's own output, on a loopback) stays out.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from cssnn.hw.params import CoreParams, check_params, event_layout

__all__ = ["EventInput"]


class EventInput(wiring.Component):
    """In: ``events`` (the core's input stream), ``accum`` (the FSM is in ACCUM), ``last_group`` (the
    event's last row issues if it issues this clock), ``syn_base``, ``stride_log2`` (the step's).

    Out: ``pending`` (a spike event is in the event register: its rows issue), ``neg`` (its sign),
    ``end`` (the end marker is in the event register: ACCUM ends), ``load`` (the event register takes
    an event this clock) and ``first_row`` (that event's first row)."""

    def __init__(self, params: CoreParams):
        check_params(self, params)
        self.params = p = params
        super().__init__({
            "events": In(stream.Signature(event_layout(p))),
            "accum": In(1), "last_group": In(1), "syn_base": In(p.row_bits), "stride_log2": In(p.stride_bits),
            "pending": Out(1), "neg": Out(1), "end": Out(1), "load": Out(1), "first_row": Out(p.row_bits),
        })

    def elaborate(self, platform):
        p = self.params
        m = Module()
        e1_v = Signal()
        e1 = Signal(event_layout(p))
        end_in = Signal()          # the end marker has been taken (into E1)
        evq_v = Signal()
        evq_neg, evq_end = Signal(), Signal()
        evq_take = Signal()        # the event register's event leaves it this clock (R)
        evq_load = Signal()
        m.d.comb += [
            evq_load.eq(self.accum & e1_v & (~evq_v | (evq_take & ~evq_end))),
            self.events.ready.eq(self.accum & ~end_in & (~e1_v | evq_load)),
        ]
        with m.If(self.events.valid & self.events.ready):
            m.d.sync += [e1.eq(self.events.payload), e1_v.eq(1), end_in.eq(self.events.payload.end)]
        with m.Elif(evq_load):
            m.d.sync += e1_v.eq(0)
        with m.If(evq_load):
            m.d.sync += [evq_v.eq(1), evq_neg.eq(e1.neg), evq_end.eq(e1.end)]
        with m.Elif(evq_take):
            m.d.sync += evq_v.eq(0)
        with m.If(self.accum):
            m.d.comb += evq_take.eq(evq_v & (evq_end | self.last_group))
            with m.If(evq_v & evq_end):
                m.d.sync += end_in.eq(0)
        m.d.comb += [
            self.pending.eq(evq_v & ~evq_end), self.end.eq(evq_v & evq_end), self.neg.eq(evq_neg),
            self.load.eq(evq_load), self.first_row.eq(self.syn_base + (e1.index << self.stride_log2)),
        ]
        return m
