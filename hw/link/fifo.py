"""The host link's byte queues: a block-RAM FIFO as small as a FIFO gets.

:class:`ByteFIFO` sits on the link's ``rx`` and ``tx`` (``HostLink(fifo_depth=...)``), so that bytes
arriving while the link executes or replies wait instead of being dropped by the UART, and a reply
drains to the UART while the next request is taken in (full duplex). It is two pointers, one
block RAM and (``skid=True``) a :class:`~cssnn.hw.core.skid.SkidBuffer` on the output: no level counter (Amaranth's
``SyncFIFOBuffered`` costs about twice the logic: the link shares an iCE40UP5K with the accelerator).
The skid buffer keeps the RAM's slow clock-to-output out of the logic that takes the bytes (without
it the ECP5 build's critical path ran from the RAM through the receiver: 68.8 MHz). The link's
transmit FIFO feeds a UART's shift register, one level of logic, and goes without (20 logic cells).

- ``w`` In(stream.Signature(8)): ready while fewer than ``depth`` bytes are in the RAM (up to two
  more wait in the skid buffer);
- ``r`` Out(stream.Signature(8)): a byte is offered from the second clock after it was written (the
  RAM's synchronous read; the third with the skid buffer's register), in order; each byte once.

The pointers are one bit wider than the address: equal means empty, differing in that bit alone full.
The read port's address is the *next* read pointer, so the RAM's data register holds the byte at the
head of the queue; ``r.valid`` is registered from the queue state of the clock the address was set
in, because a byte written in that same clock is not yet visible to the read.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from cssnn.hw.core.skid import SkidBuffer

__all__ = ["ByteFIFO"]


class ByteFIFO(wiring.Component):
    """A ``depth``-byte FIFO (a power of two, at least 2) in one memory, its output registered through a
    skid buffer if ``skid``; ports ``w`` and ``r``."""

    def __init__(self, depth: int, *, skid: bool = True):
        if not isinstance(depth, int) or isinstance(depth, bool) or depth < 2 or depth & (depth - 1):
            raise ValueError(f"depth must be a power of two >= 2, not {depth!r}")
        self.depth, self.skid = depth, bool(skid)
        super().__init__({"w": In(stream.Signature(8)), "r": Out(stream.Signature(8))})

    def elaborate(self, platform):
        m = Module()
        a = ceil_log2(self.depth)
        m.submodules.mem = mem = memory.Memory(shape=8, depth=self.depth, init=[])
        r = self.r
        if self.skid:
            m.submodules.skid = skid = SkidBuffer(8)
            r = skid.i   # the RAM side; skid.o is the FIFO's output
            wiring.connect(m, skid.o, wiring.flipped(self.r))
        wr, rd = mem.write_port(), mem.read_port(transparent_for=())
        wptr, rptr = Signal(a + 1), Signal(a + 1)
        full = (wptr[:a] == rptr[:a]) & (wptr[a] != rptr[a])
        take = r.valid & r.ready
        rnext = Signal(a + 1)
        m.d.comb += [
            self.w.ready.eq(~full),
            wr.addr.eq(wptr[:a]), wr.data.eq(self.w.payload), wr.en.eq(self.w.valid & ~full),
            rnext.eq(rptr + take),
            rd.addr.eq(rnext[:a]), r.payload.eq(rd.data),
        ]
        with m.If(wr.en):
            m.d.sync += wptr.eq(wptr + 1)
        m.d.sync += [rptr.eq(rnext), r.valid.eq(wptr != rnext)]
        return m
