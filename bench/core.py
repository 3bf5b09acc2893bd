"""Benchmark of the core on Verilator: ``python -m cssnn.bench.core [--runs 3] [--samples 5]``.

Runs the converted digits MLP and a dense stress network (a 128-input encoder that spikes at every
step into one 8-neuron word) on the ``WIDE`` configuration (8 lanes) with no input gaps and no output
back-pressure, checks every result against the golden model, and prints per layer:

- events: input spike events consumed, steps: layer-steps run, cycles: clocks from the accepted
  step config to ``done``, summed;
- cycles/event and cycles/step;
- rows: the synapse rows of the events' lists (one clock each: ``ceil(n/N)`` per event for a dense
  layer, fewer for a sparse one);
- ideal = sum over layer-steps of ``rows + ceil(n/N)`` (one synapse row per clock, one update word per
  clock), and the ratio cycles / ideal;
- ideal_o = the same with ``max(ceil(n/N), spikes out)`` for the update phase: a step cannot end
  before its output spikes left at one event per clock (the rate the next layer consumes them), and
  its ratio: what remains is the fixed per-step overhead (config, end markers, pipeline drain);

and the Verilator simulation speed: cocotb-driven cycles/s (the Python driver touches the ports every
clock) and free-running cycles/s (clock only), medians over ``--runs`` simulations.
"""

from __future__ import annotations

import argparse
import statistics
from collections import defaultdict

from cssnn.bench import run
from cssnn.hw.params import CoreParams
from cssnn.sim.verilator import run_cocotb

WIDE = CoreParams(lanes=8, weight_bits=8, membrane_bits=13, output_bits=32, acc_bits=16, bias_bits=16,
                  threshold_bits=16, neurons=256, synapse_rows=1024)


def layer_table(case: dict, lanes: int) -> list[dict]:
    sizes = case["sizes"]
    acc = defaultdict(lambda: {"events": 0, "rows": 0, "steps": 0, "cycles": 0, "ideal": 0, "ideal_out": 0})
    for sample in case["step_cycles"]:
        for _t, l, events, cycles, spikes_out, rows in sample:
            groups = -(-sizes[l] // lanes)
            a = acc[l]
            a["events"] += events
            a["rows"] += rows
            a["steps"] += 1
            a["cycles"] += cycles
            a["ideal"] += rows + groups
            a["ideal_out"] += rows + max(groups, spikes_out)
    rows = []
    for l in sorted(acc):
        a = acc[l]
        rows.append(dict(layer=l, n=sizes[l], groups=-(-sizes[l] // lanes), **a))
    tot = {k: sum(r[k] for r in rows) for k in ("events", "rows", "steps", "cycles", "ideal", "ideal_out")}
    rows.append(dict(layer="all", n=sum(sizes), groups=sum(r["groups"] for r in rows), **tot))
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="simulations for the wall-clock medians")
    ap.add_argument("--samples", type=int, default=5, help="digits test samples per run")
    args = ap.parse_args(argv)
    p = WIDE
    spec = {"digits": {"samples": args.samples}, "stress": {"samples": 2}, "bench": {"idle_cycles": 500_000}}
    reports = [run_cocotb(p, spec) for _ in range(args.runs)]
    rep = reports[0]
    bad = [m for r in reports for c in r["cases"] for m in c["mismatches"]]
    print(f"core: {p.lanes} lanes, {p.weight_bits}-bit weights, Bv={p.membrane_bits}, Bo={p.output_bits}; "
          f"golden-model check: {'bit-exact' if not bad else f'{len(bad)} MISMATCHES'}")
    for case in rep["cases"]:
        print(f"\n{case['name']}: sizes {case['sizes']}, {case['samples']} samples "
              f"(per inference: {statistics.mean(case['cycles']):.0f} busy cycles, "
              f"{statistics.mean(case['events']):.0f} events, {statistics.mean(case['synops']):.0f} synaptic ops)")
        print(f"{'layer':>6} {'n':>5} {'words':>5} {'events':>7} {'rows':>6} {'steps':>5} {'cycles':>7} {'cyc/event':>9} "
              f"{'cyc/step':>8} {'ideal':>7} {'ratio':>6} {'ideal_o':>7} {'ratio_o':>7}")
        for r in layer_table(case, p.lanes):
            ce = f"{r['cycles'] / r['events']:.2f}" if r["events"] else "-"
            print(f"{r['layer']:>6} {r['n']:>5} {r['groups']:>5} {r['events']:>7} {r['rows']:>6} {r['steps']:>5} "
                  f"{r['cycles']:>7} {ce:>9} {r['cycles'] / r['steps']:>8.1f} {r['ideal']:>7} {r['cycles'] / r['ideal']:>6.2f} "
                  f"{r['ideal_out']:>7} {r['cycles'] / r['ideal_out']:>7.2f}")
    driven = [r["driven_cycles"] / r["driven_seconds"] for r in reports]
    free = [r["free_running_cycles_per_s"] for r in reports]
    print(f"\nVerilator speed (median of {len(reports)} runs): cocotb-driven {statistics.median(driven):,.0f} cycles/s "
          f"(every clock goes through the Python driver), free-running {statistics.median(free):,.0f} cycles/s")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(run(main))
