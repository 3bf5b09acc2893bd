"""Units the host link's phases share, and how they share them.

The receiver, the executor and the reply emitter never act in the same clock on the same unit (a
frame is received, then executed, then answered), so each unit below is built once and driven by all
of its users: :func:`share` ORs their requests (each user drives its requests, data included, only
while it acts, and 0 otherwise) and fans the unit's outputs back out. On the iCE40UP5K that is the
point: one CRC network, one buffer address, one length register and adder, one counter for the
frame timeout and the RUN watchdog.

- :class:`PayloadBuffer`: the payload block RAM and its one address register ``ptr``; the words
  above ``max_payload`` hold the IDENTIFY reply (initial contents, never written: no ROM logic).
- :class:`Timer`: the frame timeout / RUN watchdog counter.
- :class:`Length`: the frame length, first the request's ``len``, then the reply's, counted down.
- :class:`~.crc.Crc16` (in :mod:`.crc`): the CRC register, for both directions.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["buffer_signature", "timer_signature", "length_signature", "PayloadBuffer", "Timer", "Length", "share"]


def buffer_signature(depth: int) -> wiring.Signature:
    """A user's view of the :class:`PayloadBuffer` of ``depth`` bytes: ``rewind`` (ptr := 0),
    ``seek`` (ptr := ``seek_to``), ``step`` (ptr += 1), ``we`` (write ``wdata`` at ptr), ``hold``
    (keep ``rdata``); ``rdata`` is the byte at the previous clock's ptr (a synchronous read)."""
    return wiring.Signature({
        "rewind": Out(1), "seek": Out(1), "seek_to": Out(range(depth + 1)), "step": Out(1),
        "we": Out(1), "wdata": Out(8), "hold": Out(1),
        "ptr": In(range(depth + 1)), "rdata": In(8),
    })


def timer_signature() -> wiring.Signature:
    """A user's view of the :class:`Timer`: ``clear``, ``step`` (``watchdog``: towards the RUN limit,
    else the frame limit); ``expired``."""
    return wiring.Signature({"clear": Out(1), "step": Out(1), "watchdog": Out(1), "expired": In(1)})


def length_signature(bits: int, delta_max: int) -> wiring.Signature:
    """A user's view of the :class:`Length`: ``clear``; ``set`` (to ``set_to``); ``lo`` / ``hi``
    (``byte`` into the low byte / the bits above it); ``up`` (``+= delta``), ``down`` (``-= 1``); ``value``."""
    return wiring.Signature({
        "clear": Out(1), "set": Out(1), "set_to": Out(bits), "lo": Out(1), "hi": Out(1), "byte": Out(8),
        "up": Out(1), "delta": Out(range(delta_max + 1)), "down": Out(1),
        "value": In(bits),
    })


class PayloadBuffer(wiring.Component):
    """``max_payload`` bytes of payload, then the bytes of ``tail`` (read-only by use). Port ``port``:
    In(:func:`buffer_signature`) (the users' requests, merged)."""

    def __init__(self, max_payload: int, tail: bytes):
        self.max_payload, self.tail = max_payload, bytes(tail)
        self.depth = max_payload + len(self.tail)
        super().__init__({"port": In(buffer_signature(self.depth))})

    def elaborate(self, platform):
        m = Module()
        p = self.port
        m.submodules.mem = mem = memory.Memory(shape=8, depth=self.depth, init=[0] * self.max_payload + list(self.tail))
        wr = mem.write_port()
        rd = mem.read_port(domain="sync")
        ptr = Signal.like(p.ptr)
        m.d.comb += [p.ptr.eq(ptr), p.rdata.eq(rd.data),
                     rd.addr.eq(ptr), rd.en.eq(~p.hold), wr.addr.eq(ptr), wr.data.eq(p.wdata), wr.en.eq(p.we)]
        with m.If(p.rewind):
            m.d.sync += ptr.eq(0)
        with m.Elif(p.seek):
            m.d.sync += ptr.eq(p.seek_to)
        with m.Elif(p.step):
            m.d.sync += ptr.eq(ptr + 1)
        return m


class Timer(wiring.Component):
    """One up-counter for the frame timeout (``frame_limit`` quiet clocks) and the RUN watchdog
    (``run_limit`` clocks): cleared (a free synchronous reset on iCE40 flip-flops) and compared with
    a constant, cheaper than a loadable down-counter. ``expired`` is registered (timing,
    docs/BOARDS.md): set by the step that brings the count to limit - 1, so it rises exactly when the
    count equals limit - 1, as a direct compare would (limits are at least 2). Port ``port``:
    In(:func:`timer_signature`)."""

    def __init__(self, frame_limit: int, run_limit: int):
        assert frame_limit >= 2 and run_limit >= 2
        self.frame_limit, self.run_limit = frame_limit, run_limit
        super().__init__({"port": In(timer_signature())})

    def elaborate(self, platform):
        m = Module()
        p = self.port
        count = Signal(range(max(self.frame_limit, self.run_limit)))
        expired = Signal()
        m.d.comb += p.expired.eq(expired)
        with m.If(p.clear):
            m.d.sync += [count.eq(0), expired.eq(0)]
        with m.Elif(p.step):
            limit = Mux(p.watchdog, self.run_limit, self.frame_limit)
            m.d.sync += [count.eq(count + 1), expired.eq(count == limit - 2)]
        return m


class Length(wiring.Component):
    """The frame length register and its one adder: the request's ``len`` (the receiver loads it
    from the header), then the reply's (cleared for a reply without payload; the executor sets it, or
    sums a READ's by repeated addition), counted down as the payload leaves. ``bits`` wide: lengths
    never exceed max(max_payload, IDENTIFY_BYTES) once the header is checked. Port ``port``:
    In(:func:`length_signature`)."""

    def __init__(self, bits: int, delta_max: int):
        self.bits, self.delta_max = bits, delta_max
        super().__init__({"port": In(length_signature(bits, delta_max))})

    def elaborate(self, platform):
        m = Module()
        p = self.port
        length = Signal(self.bits)
        m.d.comb += p.value.eq(length)
        with m.If(p.clear):
            m.d.sync += length.eq(0)
        with m.Elif(p.set):
            m.d.sync += length.eq(p.set_to)
        with m.Elif(p.up | p.down):
            m.d.sync += length.eq((length + Mux(p.up, p.delta, -1))[:self.bits])
        with m.Else():
            with m.If(p.lo):
                m.d.sync += length[:8].eq(p.byte)
            with m.If(p.hi):
                m.d.sync += length[8:].eq(p.byte)   # fits once checked
        return m


def share(m: Module, unit, *users) -> None:
    """Connect the interface ``unit`` (flipped: it receives requests) to several ``users`` of the
    same signature: each request member of the unit gets the OR of the users' (they drive 0 when
    not acting), each output goes to every user."""
    for path, member, value in unit.signature.flatten(unit):
        if member.flow == In:   # a request, from the users' point of view Out
            merged = 0
            for user in users:
                merged = merged | _lookup(user, path)
            m.d.comb += value.eq(merged)
        else:
            for user in users:
                m.d.comb += _lookup(user, path).eq(value)


def _lookup(interface, path):
    for name in path:
        interface = getattr(interface, name) if isinstance(name, str) else interface[name]
    return interface
