"""Cycles per inference of the exact accelerator a board build uses, from simulation.

:func:`simulate_cycles` loads the network into an :class:`~cssnn.hw.accelerator.Accelerator` with
the build's :class:`~cssnn.hw.memmap.AccelParams` (SPRAM synapses simulate through their model),
runs each sample, and reads RUN_CYCLES (clocks from ``start`` to ``done``) and the logits, which are
compared with the golden model. Two backends:

- ``"amaranth"``: the accelerator alone in Amaranth's simulator, driven on its bus directly (one
  element per clock; zero synapse and bias elements are skipped because simulated memories start at
  zero). No build step; fine for small networks (digits: a few seconds).
- ``"verilator"``: the whole :class:`~cssnn.hw.system.System` compiled with Verilator and driven
  through the host protocol (:class:`cssnn.sim.transports.VerilatorTransport`); for large networks.

RUN_CYCLES does not depend on the host link, so both give the same counts.
"""

from __future__ import annotations

import numpy as np

from cssnn.sw.mapping.image import place_network, unpack_state
from cssnn.hw.memmap import AccelParams, Counter, Sel
from cssnn.sim.bus_tb import BusTestbench
from cssnn.sw.spec.network import SpikingNetwork

__all__ = ["simulate_cycles", "latency_inputs", "BACKENDS", "AUTO_AMARANTH_MAX_WRITES"]

BACKENDS = ("auto", "amaranth", "verilator")
#: ``auto`` uses the Amaranth simulator up to this many bus writes (load + inputs), Verilator above.
AUTO_AMARANTH_MAX_WRITES = 30_000


def latency_inputs(net: SpikingNetwork, samples: int, dataset: str | None = None, seed: int = 0) -> tuple[np.ndarray, str]:
    """``samples`` integer input codes for the latency run and where they come from: the test split of
    ``dataset`` (default ``digits`` when the network takes 64 inputs), else seeded uniform random codes
    (more spikes than natural images: a pessimistic latency)."""
    from cssnn.sw.frontends.datasets import load_dataset
    from cssnn.sw.spec.golden import quantize_input

    if samples < 1:
        raise ValueError(f"samples must be at least 1, not {samples}")
    if dataset is None and net.n_inputs == 64:
        dataset = "digits"
    if dataset is not None:
        data = load_dataset(dataset)
        if data.n_features != net.n_inputs:
            raise ValueError(f"the dataset has {data.n_features} features but the network takes {net.n_inputs}")
        return quantize_input(data.x_test[:samples], net.input_bits), f"{dataset} test samples 0-{samples - 1}"
    rng = np.random.default_rng(seed)
    return rng.integers(0, net.input_limit + 1, size=(samples, net.n_inputs)), f"uniform random inputs (seed {seed})"


def simulate_cycles(net: SpikingNetwork, ap: AccelParams, xs, *, backend: str = "auto",
                    timeout_cycles: int = 50_000_000) -> dict:
    """Run ``xs`` (integer input codes, one row per sample) on the accelerator ``ap``; return
    ``cycles`` (RUN_CYCLES per sample), ``logits`` (per sample), ``bit_exact`` (logits equal the golden
    model's) and ``backend``."""
    from cssnn.sw.spec.golden import run

    xs = np.atleast_2d(np.asarray(xs, dtype=np.int64))
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    image = place_network(net, ap.core)
    writes = [w for w in image.bus_writes(ap) if not (w[0] in (Sel.SYNAPSE, Sel.BIAS) and w[2] == 0)]
    if backend == "auto":
        total = len(writes) + len(xs) * net.n_inputs
        backend = "amaranth" if total <= AUTO_AMARANTH_MAX_WRITES else "verilator"
    if backend == "amaranth":
        cycles, logits = _amaranth(image, ap, writes, xs, timeout_cycles)
    else:
        cycles, logits = _verilator(net, ap, xs)
    gold = run(net, xs, membrane_bits=ap.core.membrane_bits)
    return {"cycles": cycles, "logits": logits, "backend": backend,
            "bit_exact": bool(np.array_equal(np.array(logits, dtype=np.int64), gold.logits))}


def _amaranth(image, ap: AccelParams, writes, xs, timeout_cycles: int):
    from amaranth.sim import Simulator

    from cssnn.hw.accelerator import Accelerator

    dut = Accelerator(ap)
    out_addrs = image.output_addrs()
    result = {"cycles": [], "logits": []}

    async def tb(ctx):
        bus = BusTestbench(ctx, dut.bus)
        ctx.set(dut.tap.ready, 1)
        await bus.write_many(writes)
        for x in xs:
            await bus.write_many(image.bus_input_writes(x))
            await bus.run(timeout=timeout_cycles)
            (run_cycles,) = await bus.read(Sel.COUNTER, [int(Counter.RUN_CYCLES)])
            raws = await bus.read(Sel.STATE, out_addrs)
            result["cycles"].append(int(run_cycles))
            result["logits"].append([unpack_state(ap.core, r)[0] for r in raws])

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    return result["cycles"], result["logits"]


def _verilator(net, ap: AccelParams, xs):
    from cssnn.sim.transports import VerilatorTransport
    from cssnn.sw.host.accelerator import Accelerator as Driver

    with Driver(VerilatorTransport(ap)) as acc:
        acc.load(net)
        res = acc.infer_batch(xs)
    return [int(c) for c in res.cycles], res.logits.tolist()
