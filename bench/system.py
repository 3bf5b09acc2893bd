"""Benchmark of the whole accelerator: ``python -m cssnn.bench.system [--samples 100] [--lanes 8]``.

For the converted digits network at T = 4, 6, 8 (each on an accelerator sized for it by
:func:`cssnn.sw.mapping.sizing.params_for`), runs ``--samples`` test samples through the host driver on the
direct Verilator harness, checks every logit against the golden model, and prints per T:

- cycles per inference (the hardware's RUN_CYCLES counter: start to done, all T + L steps);
- the ideal event-driven count (:mod:`cssnn.sw.mapping.ideal`) and the ratio measured / ideal;
- events and synaptic operations per inference;
- simulation speed: simulated clocks per wall-clock second of the whole run (protocol included),
  the median over ``--runs`` runs (wall-clock figures on shared machines are noisy; cycle counts are not).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from cssnn.bench import run
from cssnn.sim.transports import open_backend
from cssnn.sw.host.accelerator import Accelerator
from cssnn.sw.host.compare import compare_with_golden
from cssnn.sw.mapping.ideal import ideal_cycles
from cssnn.sw.mapping.sizing import params_for
from cssnn.verif.netgen import digits_network


def measure(timesteps: int, samples: int, lanes: int, backend: str, runs: int) -> dict:
    net, xs = digits_network(timesteps)
    xs = xs[:samples]
    ap = params_for(net, lanes=lanes)
    speeds, batch = [], None
    for _ in range(runs):
        with Accelerator(open_backend(backend, ap)) as acc:
            transport = acc.client.transport
            acc.load(net)
            c0, t0 = transport.cycles, time.perf_counter()
            batch = acc.infer_batch(xs)
            speeds.append((transport.cycles - c0) / (time.perf_counter() - t0))
    cmp = compare_with_golden(net, xs, batch, membrane_bits=ap.core.membrane_bits)
    ideal = ideal_cycles(net, cmp.golden.trace.spikes, lanes)
    return {
        "timesteps": timesteps, "samples": len(xs), "lanes": lanes, "backend": backend,
        "bit_exact": cmp.bit_exact,
        "cycles_per_inference": float(batch.cycles.mean()),
        "ideal_cycles_per_inference": float(ideal.mean()),
        "cycles_to_ideal": float(batch.cycles.sum() / ideal.sum()),
        "events_per_inference": float(batch.events.mean()),
        "synaptic_ops_per_inference": float(batch.synops.mean()),
        "sim_cycles_per_second": statistics.median(speeds),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--samples", type=int, default=100, help="digits test samples per T (default 100)")
    ap.add_argument("--lanes", type=int, default=8, help="neuron lanes (default 8)")
    ap.add_argument("--timesteps", type=lambda s: [int(v) for v in s.split(",")], default=[4, 6, 8])
    ap.add_argument("--backend", choices=("verilator", "amaranth"), default="verilator")
    ap.add_argument("--runs", type=int, default=3, help="runs per T for the speed median (default 3)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    rows = [measure(t, args.samples, args.lanes, args.backend, args.runs) for t in args.timesteps]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(f"digits 64-64-32-10, {args.lanes} lanes, {args.samples} test samples, {args.backend}")
        print(f"{'T':>3} {'bit-exact':>9} {'cycles/inf':>10} {'ideal':>8} {'ratio':>6} {'events':>7} {'synops':>8} "
              f"{'sim cycles/s':>12}")
        for r in rows:
            print(f"{r['timesteps']:>3} {str(r['bit_exact']):>9} {r['cycles_per_inference']:>10.0f} "
                  f"{r['ideal_cycles_per_inference']:>8.0f} {r['cycles_to_ideal']:>6.2f} {r['events_per_inference']:>7.0f} "
                  f"{r['synaptic_ops_per_inference']:>8.0f} {r['sim_cycles_per_second']:>12,.0f}")
    return 0 if all(r["bit_exact"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(run(main))
