# amaranth: UnusedElaboratable=no
"""UART (8N1) in Amaranth's simulator: loopback, back-pressure, framing errors, breaks, glitches,
overrun, baud-rate tolerance, and the host link end to end over the serial line."""

import random

import pytest
from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out, connect, flipped

from cssnn.hw.link.uart import UART, UARTRx, UARTTx, divisor_for
from cssnn.hw.link.wire import Identity
from cssnn.hw.memmap import AccelParams, Sel
from cssnn.hw.params import CoreParams
from cssnn.sim.bytestream import SimTransport
from cssnn.sw.host.protocol import Client
from cssnn.verif.bus_model import LinkRig
from cssnn.verif.pysim import run_testbenches


class Loopback(wiring.Component):
    """UARTTx -> line -> UARTRx; ``line`` is exposed so tests can watch it."""

    def __init__(self, divisor):
        self.divisor = divisor
        super().__init__({"i": In(stream.Signature(8)), "o": Out(stream.Signature(8)), "line": Out(1),
                          "framing_error": Out(1), "overrun": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.tx = tx = UARTTx(self.divisor)
        m.submodules.rx = rx = UARTRx(self.divisor)
        connect(m, flipped(self.i), tx.i)
        connect(m, rx.o, flipped(self.o))
        m.d.comb += [rx.rx.eq(tx.tx), self.line.eq(tx.tx), self.framing_error.eq(rx.framing_error),
                     self.overrun.eq(rx.overrun)]
        return m


@pytest.mark.parametrize("divisor", [4, 5, 7])
def test_loopback_random_bytes_with_gaps_and_backpressure(divisor):
    dut = Loopback(divisor)
    rng = random.Random(divisor)
    data = [rng.randrange(256) for _ in range(60)] + [0x00, 0xFF, 0x55, 0xAA]
    got, errors = [], []

    async def source(ctx):
        for b in data:
            while rng.random() < 0.3:
                await ctx.tick()
            ctx.set(dut.i.payload, b)
            ctx.set(dut.i.valid, 1)
            await ctx.tick().until(dut.i.ready)
            ctx.set(dut.i.valid, 0)

    async def sink(ctx):
        while len(got) < len(data):
            ready = rng.random() < 0.5
            ctx.set(dut.o.ready, ready)
            _, _, valid, payload, fe, ov = await ctx.tick().sample(dut.o.valid, dut.o.payload, dut.framing_error,
                                                                   dut.overrun)
            if valid and ready:
                got.append(payload)
            if fe or ov:
                errors.append((fe, ov))

    run_testbenches(dut, source, sink)
    assert got == data and errors == []


def decode_line(levels, divisor):
    """Bytes on a sampled 8N1 line (one sample per clock), checking every bit's exact length."""
    out, i = [], 0
    while i < len(levels):
        if levels[i] == 0:
            bits = [levels[i + divisor * k + divisor // 2] for k in range(10)]
            assert all(levels[i + divisor * k + j] == bits[k] for k in range(10) for j in range(divisor))
            assert bits[0] == 0 and bits[9] == 1
            out.append(sum(b << k for k, b in enumerate(bits[1:9])))
            i += 10 * divisor - 1  # the stop bit's last clock; the next start may follow at once
        i += 1
    return out


def test_tx_sends_back_to_back_frames_of_exact_length():
    d = 5
    dut = UARTTx(d)
    data = [0x00, 0xFF, 0xA5, 0x5A, 0x01, 0x80]
    levels = []

    async def tb(ctx):
        ctx.set(dut.i.valid, 1)
        for b in data:
            ctx.set(dut.i.payload, b)
            await ctx.tick().until(dut.i.ready)
        ctx.set(dut.i.valid, 0)

    async def watch(ctx):
        async for _, _, line in ctx.tick().sample(dut.tx):
            levels.append(line)
            if len(levels) > 10 * d * (len(data) + 1):
                return

    run_testbenches(dut, tb, watch)
    start = levels.index(0)
    assert levels[:start] == [1] * start and decode_line(levels, d) == data
    # Continuous: the last stop bit ends exactly len(data) frames after the first start bit.
    assert levels[start + 10 * d * len(data):] == [1] * (len(levels) - start - 10 * d * len(data))


def frame_bits(byte, stop=1):
    return [0] + [(byte >> k) & 1 for k in range(8)] + [stop]


def run_rx(divisor, waveform, *, ready=True):
    """Drive UARTRx's pin with ``waveform`` (a list of (level, clocks)); return (bytes, framing-error
    clocks, overrun clocks)."""
    dut = UARTRx(divisor)
    got, fe, ov = [], [], []
    total = sum(n for _, n in waveform) + 3 * divisor

    async def drive(ctx):
        for level, n in waveform:
            ctx.set(dut.rx, level)
            await ctx.tick().repeat(n)
        ctx.set(dut.rx, 1)

    async def watch(ctx):
        ctx.set(dut.o.ready, ready)
        for cycle in range(total):
            _, _, valid, payload, f, o = await ctx.tick().sample(dut.o.valid, dut.o.payload, dut.framing_error,
                                                                 dut.overrun)
            if valid and ready:
                got.append(payload)
            if f:
                fe.append(cycle)
            if o:
                ov.append(cycle)

    run_testbenches(dut, drive, watch)
    return got, fe, ov


def bits_waveform(bits, period):
    """(level, clocks) runs for bits of a (possibly fractional) period: edges at round(k * period)."""
    edges = [round(k * period) for k in range(len(bits) + 1)]
    return [(b, edges[k + 1] - edges[k]) for k, b in enumerate(bits)]


def test_rx_framing_error_drops_the_byte_and_waits_out_a_break():
    d = 6
    wave = ([(1, 10)] + bits_waveform(frame_bits(0x3C, stop=0), d)   # bad stop bit
            + [(0, 40 * d)]                                          # then a long break
            + [(1, 3 * d)] + bits_waveform(frame_bits(0xC3), d) + [(1, 2 * d)])
    got, fe, ov = run_rx(d, wave)
    assert got == [0xC3] and len(fe) == 1 and ov == []


def test_rx_ignores_a_short_glitch():
    d = 8
    wave = [(1, 10), (0, d // 2 - 2), (1, 3 * d)] + bits_waveform(frame_bits(0x81), d) + [(1, 2 * d)]
    got, fe, _ = run_rx(d, wave)
    assert got == [0x81] and fe == []


def test_rx_overrun_keeps_the_first_byte():
    d = 4
    wave = [(1, 5)] + bits_waveform(frame_bits(0x11) + frame_bits(0x22), d) + [(1, 2 * d)]
    dut_got, fe, ov = run_rx(d, wave, ready=False)
    assert dut_got == [] and len(ov) == 1 and fe == []

    dut = UARTRx(d)

    async def tb(ctx):
        ctx.set(dut.o.ready, 0)
        for level, n in wave:
            ctx.set(dut.rx, level)
            await ctx.tick().repeat(n)
        assert ctx.get(dut.o.valid) and ctx.get(dut.o.payload) == 0x11  # never replaced while offered
        ctx.set(dut.o.ready, 1)
        await ctx.tick()
        assert not ctx.get(dut.o.valid)

    run_testbenches(dut, tb)


@pytest.mark.parametrize("error", [-0.035, 0.035])
def test_rx_tolerates_baud_rate_error(error):
    d = 16
    data = [0x00, 0xFF, 0x5A, 0xA5, 0x0F]
    bits = [1] + sum((frame_bits(b) for b in data), []) + [1, 1]
    got, fe, _ = run_rx(d, bits_waveform(bits, d * (1 + error)))
    assert got == data and fe == []


def test_divisor_for_and_validation():
    assert divisor_for(12e6, 115200) == 104
    assert divisor_for(48e6, 1_000_000) == 48
    with pytest.raises(ValueError, match="minimum"):
        divisor_for(1e6, 500_000)
    with pytest.raises(ValueError, match="off"):
        divisor_for(1e6, 222_222)  # 4.5 clocks per bit: 12 % off either way
    for cls in (UARTRx, UARTTx, UART):
        with pytest.raises(ValueError, match="divisor"):
            cls(3)
        with pytest.raises(ValueError, match="divisor"):
            cls(4.5)


class SerialRig(wiring.Component):
    """Host UART <-> two wires <-> device UART <-> HostLink <-> BusModel."""

    def __init__(self, ap, divisor, link):
        self.ap, self.divisor = ap, divisor
        self.device = LinkRig(ap, link, dict(run_cycles=20))
        super().__init__({"i": In(stream.Signature(8)), "o": Out(stream.Signature(8))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.host = host = UART(self.divisor)
        m.submodules.dev_uart = dev = UART(self.divisor)
        m.submodules.device = self.device
        m.d.comb += [dev.rx.eq(host.tx), host.rx.eq(dev.tx)]
        connect(m, flipped(self.i), host.i)
        connect(m, host.o, flipped(self.o))
        connect(m, dev.o, self.device.rx)
        connect(m, self.device.tx, dev.i)
        return m


def test_host_link_over_the_serial_line():
    d = 4
    ap = AccelParams(CoreParams(lanes=2, neurons=16, synapse_rows=32))
    link = dict(max_payload=32, timeout_cycles=40 * d, run_timeout_cycles=500)
    r = SerialRig(ap, d, link)
    t = SimTransport(r, r.i, r.o, timeout_cycles=80 * d, quiet_cycles=12 * d)
    c = Client(t)
    assert c.identify() == Identity(ap, 32, 40 * d, 500)
    vals = list(range(1, 17))
    c.write(Sel.BIAS, 0, vals)
    assert c.read(Sel.BIAS, 0, 16) == vals
    c.run()
    assert c.read(Sel.COUNTER, 0, 1) == [1] and c.stats["retries"] == 0
