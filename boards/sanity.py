"""Board self-test over the UART: identify the bitstream, run a tiny network, compare with the golden model.

A user with a programmed board runs ``cssnn selftest --port /dev/ttyUSB1`` and knows within seconds
whether the board, the bitstream and the serial link work: :func:`selftest` sends ECHO (the link),
IDENTIFY (the accelerator's parameters, which must decode), loads :func:`tiny_network` (sized to fit
any cssnn bitstream: 8 inputs, 6 hidden, 3 outputs) and runs a few inputs, each answer checked bit
for bit against the golden model, and reports the cycle counts.

Any cssnn bitstream answers (the tiny network fits every accelerator :func:`cssnn.boards.fit.
board_params` makes); :data:`SANITY_LANES` and ``cssnn build --sanity`` build a small dedicated
bitstream for it in a fraction of the full build's time.

:class:`SerialLineTransport` runs the same self-test against :class:`~cssnn.boards.top.BoardLogic`
in Amaranth's simulator through its serial *pins* (bit-level UART frames at ``divisor`` clocks per
bit), so the board logic the bitstream contains is checked without a board.
"""

from __future__ import annotations

import time
from collections import deque

import numpy as np

from cssnn.hw.memmap import AccelParams
from cssnn.sw.spec.layers import Dense
from cssnn.sw.spec.network import SpikingLayer, SpikingNetwork

__all__ = ["tiny_network", "tiny_inputs", "selftest", "SerialLineTransport", "SANITY_LANES"]

#: Lanes of the dedicated sanity bitstream.
SANITY_LANES = 2


def tiny_network() -> SpikingNetwork:
    """A fixed 8-6-3 CSS network (T = 4, 4-bit inputs, 3-bit weights) with positive and negative
    weights and spikes: small enough for any cssnn bitstream, busy enough to exercise every layer."""
    rng = np.random.default_rng(2026)
    w1 = rng.integers(-3, 4, size=(6, 8))
    w2 = rng.integers(-3, 4, size=(3, 6))
    layers = (SpikingLayer(Dense(8, 6), w1, rng.integers(-4, 5, size=6), 6),
              SpikingLayer(Dense(6, 3), w2, np.zeros(3, int), None))
    return SpikingNetwork(layers, timesteps=4, input_bits=4, weight_bits=3, output_bits=None)


def tiny_inputs(count: int = 4) -> np.ndarray:
    """Input codes for the self-test: all-max first (every encoder neuron fires), then seeded random."""
    net = tiny_network()
    rng = np.random.default_rng(7)
    xs = rng.integers(0, net.input_limit + 1, size=(count, net.n_inputs))
    xs[0] = net.input_limit
    return xs


def selftest(transport, *, samples: int = 4) -> dict:
    """Run the self-test over ``transport`` (a :class:`cssnn.sw.host.protocol.Transport`); return
    ``ok``, ``echo``, ``identity`` (the accelerator's parameters), ``samples``, ``mismatches``,
    ``cycles`` (RUN_CYCLES per sample) and ``seconds``. Link or protocol failures raise (from
    :class:`cssnn.sw.host.protocol.Client`)."""
    from cssnn.sw.host.accelerator import Accelerator
    from cssnn.sw.spec.golden import run

    t0 = time.perf_counter()
    net = tiny_network()
    xs = tiny_inputs(samples)
    acc = Accelerator(transport)
    probe = bytes(range(16))
    echo_ok = acc.client.echo(probe) == probe
    ident = acc.identify()
    ap: AccelParams = ident.params
    acc.load(net)
    res = acc.infer_batch(xs)
    gold = run(net, xs, membrane_bits=ap.core.membrane_bits)
    bad = [i for i in range(len(xs)) if not np.array_equal(res.logits[i], gold.logits[i])
           or int(res.classes[i]) != int(gold.classes[i])]
    c = ap.core
    return {
        "ok": bool(echo_ok and not bad),
        "echo": echo_ok,
        "identity": {"protocol_version": ident.protocol_version, "lanes": c.lanes, "neurons": c.neurons,
                     "synapse_rows": c.synapse_rows, "synapse_ram": c.synapse_ram, "weight_bits": c.weight_bits,
                     "membrane_bits": c.membrane_bits, "output_bits": c.output_bits, "max_layers": ap.max_layers,
                     "max_payload": ident.max_payload},
        "samples": len(xs), "mismatches": bad, "cycles": [int(v) for v in res.cycles],
        "classes": [int(v) for v in res.classes], "seconds": round(time.perf_counter() - t0, 3),
    }


async def _ticks(ctx, n: int) -> None:
    for _ in range(n):
        await ctx.tick()


class SerialLineTransport:
    """:class:`~cssnn.boards.top.BoardLogic` in Amaranth's simulator, reached through its UART pins.

    ``send`` queues bytes that a testbench shifts onto ``uart_rx`` as 8N1 frames (``divisor`` clocks
    per bit); a second testbench samples ``uart_tx`` mid-bit and collects the reply bytes. ``recv``
    runs the clock until a reply arrived and the line stayed quiet ``quiet_bits`` bit times, or
    ``timeout_bits`` bit times passed with nothing (then ``b""``). ``cycles`` counts simulated clocks.
    """

    def __init__(self, ap: AccelParams, *, divisor: int = 8, timeout_bits: int = 4000, quiet_bits: int = 30,
                 **link_kwargs):
        from amaranth.sim import Simulator

        from cssnn.boards.top import BoardLogic

        if not isinstance(divisor, int) or divisor < 4:
            raise ValueError(f"divisor must be an int >= 4, not {divisor!r}")
        self.divisor = divisor
        self.dut = dut = BoardLogic(ap, clk_hz=divisor * 1_000_000, baud=1_000_000, n_leds=5, **link_kwargs)
        self.timeout_cycles = timeout_bits * divisor
        self.quiet_cycles = quiet_bits * divisor
        self.cycles = 0
        self._tx: deque[int] = deque()
        self._rx = bytearray()
        self._periods = 0
        self.sim = sim = Simulator(dut)
        sim.add_clock(1e-6 / divisor)
        d = divisor

        async def drive(ctx):  # host -> board: 8N1 on uart_rx (the queue is polled once per bit time)
            ctx.set(dut.uart_rx, 1)
            while True:
                if not self._tx:
                    await _ticks(ctx, d)
                    continue
                byte = self._tx.popleft()
                for bit in [0] + [(byte >> i) & 1 for i in range(8)] + [1]:
                    ctx.set(dut.uart_rx, bit)
                    await _ticks(ctx, d)

        async def sample(ctx):  # board -> host: wait for a start bit's falling edge, sample mid-bit
            while True:
                await ctx.negedge(dut.uart_tx)
                await _ticks(ctx, d // 2 + 1)
                if ctx.get(dut.uart_tx):
                    continue  # a glitch
                byte = 0
                for i in range(8):
                    await _ticks(ctx, d)
                    byte |= ctx.get(dut.uart_tx) << i
                await _ticks(ctx, d)  # the stop bit
                self._rx.append(byte)

        sim.add_testbench(drive, background=True)
        sim.add_testbench(sample, background=True)

    def _run(self, n: int) -> None:
        self._periods += n
        self.cycles = self._periods
        self.sim.run_until(self._periods * 1e-6 / self.divisor)

    def send(self, data: bytes) -> None:
        self._tx.extend(bytes(data))

    def recv(self) -> bytes:
        waited = quiet = 0
        step = self.divisor * 10
        while True:
            before = len(self._rx)
            self._run(step)
            waited += step
            if len(self._rx) != before:
                quiet = 0
            else:
                quiet += step
            if self._rx and not self._tx and quiet >= self.quiet_cycles:
                out = bytes(self._rx)
                self._rx.clear()
                return out
            if not self._rx and waited >= self.timeout_cycles and not self._tx:
                return b""

    def close(self) -> None:
        pass
