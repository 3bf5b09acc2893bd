"""Skid buffer: a stream register that also registers the ready going back upstream.

A plain register stage on a stream still passes the consumer's ``ready`` combinationally to the
producer. This one does not: ``i.ready`` is a flip-flop (the skid register is empty), so a consumer
far away in the placement only drives the enables of two registers here, never the producer's logic.
Full throughput (one item per clock while ``o.ready`` stays high), one clock of latency, items in
order, none lost or duplicated::

    i --+--------------> [out register] --> o
        |                  ^
        +--> [skid] -------+      i.ready = skid empty

While the consumer stalls with the out register full, one more item is taken into the skid register;
then ``i.ready`` drops. When the consumer takes the out register, the skid item (if any) moves into it.
"""

from __future__ import annotations

from amaranth.hdl import Module, Shape, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["SkidBuffer"]


class SkidBuffer(wiring.Component):
    """``i``: In stream of ``shape``; ``o``: Out stream of ``shape``; ``i.ready`` is a register."""

    def __init__(self, shape):
        Shape.cast(shape)   # raises a clear TypeError for anything that is not a shape
        self.shape = shape
        super().__init__({"i": In(stream.Signature(shape)), "o": Out(stream.Signature(shape))})
        # the two registers (built here so that the formal proof can state invariants over them)
        self.o_valid, self.o_data = Signal(name="o_valid"), Signal(shape, name="o_data")
        self.s_valid, self.s_data = Signal(name="s_valid"), Signal(shape, name="s_data")

    def elaborate(self, platform):
        m = Module()
        o_valid, o_data, s_valid, s_data = self.o_valid, self.o_data, self.s_valid, self.s_data
        m.d.comb += [self.o.valid.eq(o_valid), self.o.payload.eq(o_data), self.i.ready.eq(~s_valid)]
        with m.If(self.o.ready | ~o_valid):
            # the out register is free: it takes the skid item, else the input
            with m.If(s_valid):
                m.d.sync += [o_data.eq(s_data), o_valid.eq(1), s_valid.eq(0)]
            with m.Else():
                m.d.sync += [o_data.eq(self.i.payload), o_valid.eq(self.i.valid)]
        with m.Elif(self.i.valid & ~s_valid):
            # the out register is held: the input item waits in the skid register
            m.d.sync += [s_data.eq(self.i.payload), s_valid.eq(1)]
        return m
