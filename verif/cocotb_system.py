"""cocotb end-to-end test of the whole accelerator on Verilator: the real host driver
(:class:`cssnn.sw.host.accelerator.Accelerator`, through the protocol codec and the host-link gateware) loads
networks and runs inferences, and every logit, class and counter is compared with the golden model.

Run through :func:`cssnn.sim.verilator.run_cocotb_module` with a JSON spec in ``CSSNN_COCOTB_SPEC``:
``ap`` (the :class:`~cssnn.hw.memmap.AccelParams` the Verilog was built with, as a dict), ``report``
(a path for the JSON report) and ``cases``: a list of ``{"kind": "digits", "timesteps": T,
"samples": k}`` and ``{"kind": "random", "seed": s, "networks": n, "samples": k, "max_layers": d}``.

The driver is blocking code; it runs in a cocotb ``bridge`` thread and its transport's ``recv``
is a ``resume``-d coroutine that clocks the simulation, so the same driver code runs here, on the
other simulators and on boards.
"""

from __future__ import annotations

import json
import os
import time
from collections import deque

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.simtime import get_sim_time
from cocotb.task import bridge, resume
from cocotb.triggers import ClockCycles, First, ReadOnly, RisingEdge

from cssnn.hw.memmap import AccelParams
from cssnn.hw.params import CoreParams
from cssnn.sim.transports import RECV_TIMEOUT
from cssnn.sw.host.accelerator import Accelerator
from cssnn.sw.host.compare import compare_with_golden
from cssnn.verif.netgen import digits_network, random_inputs, random_network

PERIOD_NS = 10


def accel_params(d: dict) -> AccelParams:
    d = dict(d)
    return AccelParams(core=CoreParams(**d.pop("core")), **d)


class CocotbTransport:
    """The :class:`cssnn.sw.host.protocol.Transport` contract on a cocotb-driven System (see
    :mod:`cssnn.sim.transports` for the simulated-time semantics)."""

    def __init__(self, dut, *, timeout_cycles: int = RECV_TIMEOUT, quiet_cycles: int = 32):
        self.dut = dut
        self.timeout_cycles, self.quiet_cycles = timeout_cycles, quiet_cycles
        self._rx: deque[int] = deque()
        self.recv = resume(self._recv)

    @property
    def cycles(self) -> int:
        return int(get_sim_time("ns")) // PERIOD_NS

    def send(self, data: bytes) -> None:
        self._rx.extend(data)

    async def _recv(self) -> bytes:
        dut, rx, out = self.dut, self._rx, bytearray()
        start = last = self.cycles
        while True:
            now = self.cycles
            if not rx:
                if out and now - last >= self.quiet_cycles:
                    return bytes(out)
                if not out and now - start >= self.timeout_cycles:
                    return b""
            dut.rx__valid.value = int(bool(rx))
            if rx:
                dut.rx__payload.value = rx[0]
            await ReadOnly()
            give = int(dut.tx__valid.value)
            if not rx and not give:
                # Nothing to send and nothing coming: sleep until a reply byte appears (a RUN can
                # take thousands of clocks) or the quiet/timeout budget runs out.
                budget = self.quiet_cycles - (now - last) if out else self.timeout_cycles - (now - start)
                await First(RisingEdge(dut.tx__valid), ClockCycles(dut.clk, max(1, budget)))
                continue
            take = bool(rx) and int(dut.rx__ready.value)
            byte = int(dut.tx__payload.value)
            await RisingEdge(dut.clk)
            if take:
                rx.popleft()
            if give:
                out.append(byte)
                last = self.cycles

    def close(self) -> None:
        pass


def _run_cases(transport: CocotbTransport, ap: AccelParams, cases: list[dict]) -> list[dict]:
    acc = Accelerator(transport)
    ident = acc.identify()
    if ident.params != ap:
        raise AssertionError(f"IDENTIFY reports {ident.params}, the build has {ap}")
    reports = []
    for case in cases:
        if case["kind"] == "digits":
            net, xs = digits_network(case.get("timesteps", 6))
            nets = [("digits", net, xs[: case["samples"]])]
        else:
            rng = np.random.default_rng(case["seed"])
            nets = []
            for i in range(case["networks"]):
                net = random_network(rng, ap.core, max_layers=case.get("max_layers", 4),
                                     max_size=min(case.get("max_size", 40), ap.fifo_depth - 1))
                xs = random_inputs(rng, net, case["samples"])
                nets.append((f"random#{i}", net, xs))
        for name, net, xs in nets:
            acc.load(net)
            c0, t0 = transport.cycles, time.perf_counter()
            batch = acc.infer_batch(xs)
            seconds, sim_cycles = time.perf_counter() - t0, transport.cycles - c0
            cmp = compare_with_golden(net, xs, batch, membrane_bits=ap.core.membrane_bits)
            gold = cmp.golden
            bad = [f"{name} {m}" for m in cmp.mismatches]
            reports.append({"name": name, "samples": len(xs), "n_layers": net.n_layers, "mismatches": bad,
                            "sizes": [net.n_inputs] + [layer.shape.n_out for layer in net.layers],
                            "timesteps": net.timesteps, "cycles": batch.cycles.tolist(),
                            "sim_cycles": sim_cycles, "seconds": seconds,
                            "neg_spikes": int(sum((s < 0).sum() for s in gold.trace.spikes))})
    return reports


@cocotb.test()
async def system_matches_golden(dut):
    spec = json.loads(os.environ["CSSNN_COCOTB_SPEC"])
    ap = accel_params(spec["ap"])
    cocotb.start_soon(Clock(dut.clk, PERIOD_NS, unit="ns").start())
    dut.rx__valid.value = 0
    dut.tx__ready.value = 1
    dut.rst.value = 1
    await ClockCycles(dut.clk, 2)
    dut.rst.value = 0
    await RisingEdge(dut.clk)
    transport = CocotbTransport(dut)
    reports = await bridge(_run_cases)(transport, ap, spec["cases"])
    with open(spec["report"], "w") as f:
        json.dump({"cases": reports}, f)
    bad = [m for r in reports for m in r["mismatches"]]
    assert not bad, f"{len(bad)} mismatches with the golden model, first:\n" + "\n".join(bad[:10])
