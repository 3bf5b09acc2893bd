"""cocotb tests of the learning engine on Verilator (run through :func:`cssnn.sim.verilator.run_cocotb_learning`).

The environment variable ``CSSNN_COCOTB_SPEC`` holds a JSON spec: ``params`` (the
:class:`~cssnn.hw.learn.LearnParams` the Verilog was built with), ``report`` (a path for the JSON
report), and what to run:

- ``random``: ``{"seed": s, "layers": n, "samples": k}`` n random layers and rules
  (:func:`~cssnn.verif.learn_tb.random_layer`), k random samples each, random host writes during every pass;
- ``digits``: ``{"samples": k}`` the default rule on the first k digits training samples (the engine's
  inputs must be 64).

After every sample the test compares the hardware's weights, masks, thresholds, winner, features,
cycles and synaptic ops with the golden model's (:func:`~cssnn.verif.learn_tb.check_learning`) and
fails on any difference.
"""

from __future__ import annotations

import json
import os
import random

import cocotb
import numpy as np

from cssnn.hw.learn import LearnParams
from cssnn.verif.cocotb_core import CocotbIO, start_clock
from cssnn.verif.learn_tb import EngineDriver, check_learning, random_layer


@cocotb.test()
async def learning_matches_golden(dut):
    from cssnn.sw.frontends.datasets import load_dataset
    from cssnn.sw.spec.stdp import init_layer, ttfs_encode

    spec = json.loads(os.environ["CSSNN_COCOTB_SPEC"])
    lp = LearnParams(**spec["params"])
    await start_clock(dut, ("start", "learn", "host__we"))
    drv = EngineDriver(CocotbIO(dut), lp)
    reports = []
    if "random" in spec:
        r = spec["random"]
        rng = np.random.default_rng(r["seed"])
        for i in range(r["layers"]):
            layer, times = random_layer(rng, lp, r["samples"])
            reports.append(await check_learning(drv, layer, times, noise=random.Random(i), name=f"random#{i}"))
    if "digits" in spec:
        layer = init_layer(lp.inputs, lp.neurons)
        times = ttfs_encode(load_dataset("digits").x_train[:spec["digits"]["samples"]], lp.window)
        reports.append(await check_learning(drv, layer, times, name="digits"))
    for rep in reports:
        rep.pop("final")
    with open(spec["report"], "w") as f:
        json.dump({"cases": reports}, f)
    bad = [m for rep in reports for m in rep["mismatches"]]
    assert not bad, f"{len(bad)} mismatches with the golden model, first: " + "\n".join(bad[:10])
