"""A :class:`~cssnn.sw.host.protocol.Transport` into the byte streams of a design in Amaranth's simulator.

The caller's code (a real :class:`~cssnn.sw.host.protocol.Client`) runs in lockstep with pysim: simulated
time advances only inside :meth:`SimTransport.recv`, which steps the simulator (``Simulator.advance``)
from outside, so no threads are needed and runs are deterministic. ``send`` queues bytes for the
``rx`` stream; a background testbench offers them (with optional random gaps) and collects ``tx``
bytes (with optional random back-pressure), honouring the stream rules.

``recv`` returns once reply bytes arrived and the ``tx`` stream then stayed idle for ``quiet_cycles``
clocks, or ``b""`` after ``timeout_cycles`` clocks without a byte once every sent byte was taken
(choose it larger than the link's frame timeout, as for a serial port).
"""

from __future__ import annotations

import random
from collections import deque

from amaranth.sim import Simulator

__all__ = ["SimTransport", "LossyTransport"]


class SimTransport:
    """``dut`` in a new simulator with a clock; ``rx``/``tx`` are its byte streams (In/Out).

    ``gap`` is the probability that the source withholds a byte in a clock, ``stall`` that the sink
    is not ready. ``cycles`` counts simulated clocks. ``watch`` maps names to signals sampled every
    clock into :attr:`watched` (e.g. a write counter). :attr:`sim` may get more testbenches before the
    first ``recv``.
    """

    def __init__(self, dut, rx, tx, *, timeout_cycles: int = 2000, quiet_cycles: int = 16, gap: float = 0.0,
                 stall: float = 0.0, seed: int = 0, watch: dict | None = None, vcd: str | None = None):
        if not 0 <= gap < 1 or not 0 <= stall < 1:
            raise ValueError(f"gap and stall must be probabilities below 1, not {gap!r}, {stall!r}")
        self.dut, self.rx, self.tx = dut, rx, tx
        self.timeout_cycles, self.quiet_cycles = timeout_cycles, quiet_cycles
        self.gap, self.stall = gap, stall
        self.rng = random.Random(seed)
        self.cycles = 0
        self.sent = bytearray()      # every byte the design accepted, for inspection
        self._in: deque[int] = deque()
        self._out = bytearray()
        self._last_activity = 0
        self._watch = dict(watch or {})
        self.watched = {name: 0 for name in self._watch}
        self.sim = Simulator(dut)
        self.sim.add_clock(1e-8)
        self.sim.add_testbench(self._pump, background=True)
        self._vcd = self.sim.write_vcd(vcd) if vcd else None
        if self._vcd:
            self._vcd.__enter__()

    async def _pump(self, ctx):
        rx, tx = self.rx, self.tx
        while True:
            offer = bool(self._in) and self.rng.random() >= self.gap
            take = self.rng.random() >= self.stall
            ctx.set(rx.valid, offer)
            if offer:
                ctx.set(rx.payload, self._in[0])
            ctx.set(tx.ready, take)
            _, _, rx_ready, tx_valid, tx_payload = await ctx.tick().sample(rx.ready, tx.valid, tx.payload)
            self.cycles += 1
            for name, sig in self._watch.items():
                self.watched[name] = ctx.get(sig)
            if offer and rx_ready:
                self.sent.append(self._in.popleft())
            if tx_valid:
                self._last_activity = self.cycles
                if take:
                    self._out.append(tx_payload)

    def _step(self, n: int = 1) -> None:
        target = self.cycles + n
        while self.cycles < target:
            self.sim.advance()

    def run(self, cycles: int) -> bytes:
        """Run ``cycles`` clocks; return (and consume) the bytes that came out."""
        self._step(cycles)
        out, self._out = bytes(self._out), bytearray()
        return out

    def send(self, data: bytes) -> None:
        self._in.extend(bytes(data))

    def drain(self) -> bytes:
        """Everything until the line is quiet (``recv`` until ``b""``)."""
        out = bytearray()
        while data := self.recv():
            out += data
        return bytes(out)

    def recv(self) -> bytes:
        start = self.cycles
        while True:
            self._step(8)
            if self._in:  # like a serial port's flush(): the timeout runs once everything is sent
                start = self.cycles
            if self._out:
                if self.cycles - self._last_activity >= self.quiet_cycles:
                    out, self._out = bytes(self._out), bytearray()
                    return out
            elif self.cycles - max(start, self._last_activity) >= self.timeout_cycles:
                return b""

    @property
    def pending(self) -> int:
        """Bytes sent but not yet taken by the design."""
        return len(self._in)

    def close(self) -> None:
        if self._vcd:
            self._vcd.__exit__(None, None, None)
            self._vcd = None


class LossyTransport:
    """Wraps a transport and damages the bytes both ways: each byte is dropped with probability
    ``drop``, has one bit flipped with probability ``corrupt``, and is followed by a random garbage
    byte with probability ``garbage``. For testing recovery: the client must still get right answers."""

    def __init__(self, inner, *, drop: float = 0.0, corrupt: float = 0.0, garbage: float = 0.0, seed: int = 0):
        self.inner = inner
        self.drop, self.corrupt, self.garbage = drop, corrupt, garbage
        self.rng = random.Random(seed)
        self.damaged = 0

    def _mangle(self, data: bytes) -> bytes:
        out = bytearray()
        for b in data:
            r = self.rng.random()
            if r < self.drop:
                self.damaged += 1
                continue
            if r < self.drop + self.corrupt:
                self.damaged += 1
                b ^= 1 << self.rng.randrange(8)
            out.append(b)
            if self.rng.random() < self.garbage:
                self.damaged += 1
                out.append(self.rng.randrange(256))
        return bytes(out)

    def send(self, data: bytes) -> None:
        self.inner.send(self._mangle(data))

    def recv(self) -> bytes:
        return self._mangle(self.inner.recv())

    def close(self) -> None:
        self.inner.close()
