"""cocotb tests of the core on Verilator (run through :func:`cssnn.sim.verilator.run_cocotb`).

The environment variable ``CSSNN_COCOTB_SPEC`` holds a JSON spec: ``params`` (the
:class:`~cssnn.hw.params.CoreParams` the Verilog was built with), ``report`` (a path for the JSON
report), and what to run:

- ``digits``: ``{"samples": k, "timesteps": T}`` the converted digits MLP on the first k test inputs;
- ``random``: ``{"seed": s, "networks": n, "samples": k}`` n seeded random networks, k inputs each;
- ``sparse``: the same with random existence masks (:func:`~cssnn.verif.netgen.sparse_case`: densities
  1% to 100%, empty fan-outs, all of a layer's synapses in one lane);
- ``valid_prob``/``ready_prob``: input gaps and output back-pressure (1.0 = none);
- ``stress``: ``{"samples": k}`` :func:`~cssnn.verif.netgen.dense_stress_network` on all-max inputs;
- ``bench``: ``{"idle_cycles": c}`` also measure the raw Verilator clock rate (clock only, no driver).

Every network is loaded through the host port of the one simulation (no rebuild per network). The
test fails if any spike, membrane, logit, class or counter differs from the golden model.
"""

from __future__ import annotations

import json
import os
import time

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

from cssnn.hw.params import CoreParams
from cssnn.verif.check import run_case
from cssnn.verif.core_tb import CoreDriver
from cssnn.verif.netgen import dense_stress_network, digits_network, golden, random_case, sparse_case


class CocotbIO:
    """IO adapter of :class:`~cssnn.verif.core_tb.CoreDriver` for cocotb (raw unsigned port values)."""

    def __init__(self, dut):
        self.dut = dut
        self.clk = dut.clk
        self._h = {}
        self.cycles = 0

    def _handle(self, name):
        h = self._h.get(name)
        if h is None:
            h = self._h[name] = getattr(self.dut, name)
        return h

    def set(self, name, value):
        self._handle(name).value = int(value)

    def get(self, name):
        return int(self._handle(name).value)

    async def settle(self):
        await ReadOnly()

    async def tick(self):
        await RisingEdge(self.clk)
        self.cycles += 1


async def start_clock(dut, inputs=("step__valid", "events__valid", "out__ready", "host__we", "clear")):
    """Start the clock, hold ``inputs`` low and reset for two clocks (the core's inputs by default)."""
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    for name in ("rst", *inputs):
        getattr(dut, name).value = 0
    dut.rst.value = 1
    await ClockCycles(dut.clk, 2)
    dut.rst.value = 0
    await RisingEdge(dut.clk)


@cocotb.test()
async def core_matches_golden(dut):
    spec = json.loads(os.environ["CSSNN_COCOTB_SPEC"])
    p = CoreParams(**spec["params"])
    await start_clock(dut)
    io = CocotbIO(dut)
    drv = CoreDriver(io, p, seed=spec.get("seed", 0), valid_prob=spec.get("valid_prob", 1.0),
                     ready_prob=spec.get("ready_prob", 1.0))
    reports = []
    sim_cycles, sim_seconds = 0, 0.0

    async def timed(net, xs, gold, name):
        nonlocal sim_cycles, sim_seconds
        c0, t0 = io.cycles, time.perf_counter()
        rep = await run_case(drv, p, net, xs, gold, name=name)
        sim_cycles += io.cycles - c0
        sim_seconds += time.perf_counter() - t0
        rep["n_layers"] = net.n_layers
        rep["sizes"] = [net.n_inputs] + [layer.shape.n_out for layer in net.layers]
        reports.append(rep)

    if "digits" in spec:
        d = spec["digits"]
        net, xs = digits_network(d.get("timesteps", 6))
        xs = xs[: d["samples"]]
        gold = golden(net, xs, p.membrane_bits)
        await timed(net, xs, gold, "digits")
    if "stress" in spec:
        net = dense_stress_network(membrane_bits=p.membrane_bits)
        xs = np.full((spec["stress"]["samples"], net.n_inputs), net.input_limit)
        gold = golden(net, xs, p.membrane_bits)
        await timed(net, xs, gold, "stress")
    for kind, case in (("random", random_case), ("sparse", sparse_case)):
        if kind in spec:
            r = spec[kind]
            rng = np.random.default_rng(r["seed"])
            for i in range(r["networks"]):
                net, xs, gold = case(rng, p, r["samples"], max_size=r.get("max_size", 40))
                await timed(net, xs, gold, f"{kind}#{i}")
    out = {"cases": reports, "driven_cycles": sim_cycles, "driven_seconds": sim_seconds}
    if "bench" in spec:
        n = spec["bench"].get("idle_cycles", 200_000)
        t1 = time.perf_counter()
        await ClockCycles(dut.clk, n)
        out["free_running_cycles_per_s"] = n / (time.perf_counter() - t1)
    with open(spec["report"], "w") as f:
        json.dump(out, f)
    bad = [m for rep in reports for m in rep["mismatches"]]
    assert not bad, f"{len(bad)} mismatches with the golden model, first: " + "\n".join(bad[:10])
