"""8N1 UART with byte streams: the physical layer under the host link on boards.

:class:`UARTRx` oversamples nothing: it synchronises the line with two flip-flops, finds the start
bit's falling edge, re-checks it half a bit later (a glitch shorter than that is ignored) and samples
every bit in its middle. A byte whose stop bit reads 0 is a framing error (line noise, wrong baud
rate, a break): it is dropped, ``framing_error`` pulses, and the receiver waits for the line to go
idle (high) before hunting for the next start bit, so a held-low line does not produce a stream of
0x00 bytes. A byte that completes while the previous one has not been taken is dropped
(``overrun`` pulses): the stream never changes a payload it is offering.

:class:`UARTTx` sends start, 8 data bits LSB first, stop; back to back when bytes keep coming. Its
line output comes straight from a flip-flop (no glitches).

``divisor`` is clocks per bit (:func:`divisor_for` computes it from frequencies and checks the
error); at least 4, so the half-bit check and the synchroniser's latency fit comfortably.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out, connect, flipped

__all__ = ["UARTRx", "UARTTx", "UART", "divisor_for"]

MIN_DIVISOR = 4


def divisor_for(clk_freq: float, baudrate: float, *, tolerance: float = 0.02) -> int:
    """Clocks per bit for ``baudrate`` at ``clk_freq`` (rounded); ``ValueError`` if the resulting
    baud rate is off by more than ``tolerance`` (8N1 tolerates about 4-5 % in total, both ends)."""
    if clk_freq <= 0 or baudrate <= 0:
        raise ValueError(f"clk_freq and baudrate must be positive, not {clk_freq!r}, {baudrate!r}")
    d = round(clk_freq / baudrate)
    if d < MIN_DIVISOR:
        raise ValueError(f"{baudrate} baud needs a divisor of {clk_freq / baudrate:.2f} at {clk_freq} Hz; "
                         f"the minimum is {MIN_DIVISOR}")
    err = abs(clk_freq / d - baudrate) / baudrate
    if err > tolerance:
        raise ValueError(f"{baudrate} baud at {clk_freq} Hz: divisor {d} is {err:.1%} off (tolerance {tolerance:.0%})")
    return d


def _check_divisor(divisor):
    if not isinstance(divisor, int) or isinstance(divisor, bool) or divisor < MIN_DIVISOR:
        raise ValueError(f"divisor must be an int >= {MIN_DIVISOR} (clocks per bit), not {divisor!r}")


class UARTRx(wiring.Component):
    """Ports: ``rx`` In(1) (the line, idle high), ``o`` Out(stream.Signature(8)) (bytes received),
    ``framing_error`` and ``overrun`` (one-clock pulses)."""

    def __init__(self, divisor: int):
        _check_divisor(divisor)
        self.divisor = divisor
        super().__init__({
            "rx": In(1, init=1),
            "o": Out(stream.Signature(8)),
            "framing_error": Out(1),
            "overrun": Out(1),
        })

    def elaborate(self, platform):
        d = self.divisor
        m = Module()
        s1, line = Signal(init=1), Signal(init=1)  # 2-FF synchroniser: the pin is asynchronous
        m.d.sync += [s1.eq(self.rx), line.eq(s1)]

        timer = Signal(range(d))
        bit = Signal(range(8))
        shreg = Signal(8)
        data, valid = Signal(8), Signal()
        m.d.comb += [self.o.payload.eq(data), self.o.valid.eq(valid)]
        with m.If(self.o.ready):
            m.d.sync += valid.eq(0)

        with m.FSM():
            with m.State("IDLE"):
                with m.If(~line):
                    m.d.sync += timer.eq(d // 2 - 1)
                    m.next = "START"
            with m.State("START"):  # mid start bit: still low, or it was a glitch
                m.d.sync += timer.eq(timer - 1)
                with m.If(timer == 0):
                    with m.If(line):
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += [timer.eq(d - 1), bit.eq(0)]
                        m.next = "DATA"
            with m.State("DATA"):
                m.d.sync += timer.eq(timer - 1)
                with m.If(timer == 0):
                    m.d.sync += [timer.eq(d - 1), shreg.eq(Cat(shreg[1:], line)), bit.eq(bit + 1)]
                    with m.If(bit == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                m.d.sync += timer.eq(timer - 1)
                with m.If(timer == 0):
                    with m.If(~line):
                        m.d.comb += self.framing_error.eq(1)
                        m.next = "BREAK"
                    with m.Elif(valid & ~self.o.ready):
                        m.d.comb += self.overrun.eq(1)
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += [data.eq(shreg), valid.eq(1)]
                        m.next = "IDLE"
            with m.State("BREAK"):  # after a framing error, wait for an idle line
                with m.If(line):
                    m.next = "IDLE"
        return m


class UARTTx(wiring.Component):
    """Ports: ``i`` In(stream.Signature(8)) (bytes to send), ``tx`` Out(1) (the line, idle high)."""

    def __init__(self, divisor: int):
        _check_divisor(divisor)
        self.divisor = divisor
        super().__init__({
            "i": In(stream.Signature(8)),
            "tx": Out(1, init=1),
        })

    def elaborate(self, platform):
        d = self.divisor
        m = Module()
        shreg = Signal(10, init=0x3FF)  # stop, data[7:0], start; shifted out LSB first, refilled with 1s
        bits = Signal(range(11))
        timer = Signal(range(d))
        m.d.comb += [self.tx.eq(shreg[0]), self.i.ready.eq(bits == 0)]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [shreg.eq(Cat(0, self.i.payload, 1)), bits.eq(10), timer.eq(d - 1)]
        with m.Elif(bits != 0):
            m.d.sync += timer.eq(timer - 1)
            with m.If(timer == 0):
                m.d.sync += [shreg.eq(Cat(shreg[1:], 1)), bits.eq(bits - 1), timer.eq(d - 1)]
        return m


class UART(wiring.Component):
    """:class:`UARTRx` + :class:`UARTTx`. Ports: ``rx`` In(1), ``tx`` Out(1) (the lines), ``o``
    Out(stream.Signature(8)) (bytes received), ``i`` In(stream.Signature(8)) (bytes to send),
    ``framing_error``, ``overrun``. Connects directly to :class:`~cssnn.hw.link.HostLink`:
    ``connect(m, uart.o, link.rx); connect(m, link.tx, uart.i)``."""

    def __init__(self, divisor: int):
        _check_divisor(divisor)
        self.divisor = divisor
        super().__init__({
            "rx": In(1, init=1),
            "tx": Out(1, init=1),
            "o": Out(stream.Signature(8)),
            "i": In(stream.Signature(8)),
            "framing_error": Out(1),
            "overrun": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.urx = urx = UARTRx(self.divisor)
        m.submodules.utx = utx = UARTTx(self.divisor)
        connect(m, urx.o, flipped(self.o))
        connect(m, flipped(self.i), utx.i)
        m.d.comb += [urx.rx.eq(self.rx), self.tx.eq(utx.tx),
                     self.framing_error.eq(urx.framing_error), self.overrun.eq(urx.overrun)]
        return m
