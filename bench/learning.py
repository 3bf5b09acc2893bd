"""On-chip STDP learning with and without pruning: ``python -m cssnn.bench.learning [--seeds 0,1,2]
[--neurons 64] [--epochs 1] [--backend verilator|amaranth|golden] [--json]``.

Per seed, the same layer (same initial weights, same sample order) learns the digits training split
twice on the simulated accelerator, once with pruning and once without; every weight, mask,
threshold, winner, feature and per-sample cycle count is checked against the golden model
(``bit_exact``). Reported: readout accuracy on the test split, connections removed, learning cycles
(all training samples, from the engine's counters) and inference cycles per sample (feature
extraction of one test sample), and the ratios against no pruning. Cycle counts are deterministic;
the run takes about a minute on Verilator.

``--ablations``: the golden model alone (seconds), mean readout accuracy and connectivity over the
seeds for variants of the rule (no pruning, no homeostasis, other sizes, windows, widths, epochs)
and for a second STDP layer learned on the first layer's first-spike times.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

from cssnn.command import int_list
from cssnn.sim.learning import run_learning
from cssnn.sw.analysis.learning import readout_accuracy, spike_features
from cssnn.sw.frontends.datasets import load_dataset
from cssnn.sw.spec.stdp import StdpRule, first_spikes, init_layer, learn, ttfs_encode

#: The issue's targets (pruned against unpruned, same data and seed).
TARGETS = {"connections_removed": 0.80, "learning_fewer": 2.0, "inference_fewer": 2.5, "accuracy_loss": 0.005,
           "accuracy": 0.90}


def compare(ds, seed: int, neurons: int, epochs: int, backend: str) -> dict:
    runs = {prune: run_learning(ds, neurons=neurons, prune=prune, epochs=epochs, backend=backend, seed=seed).summary
            for prune in (True, False)}
    p, n = runs[True], runs[False]
    return {"seed": seed, "pruned": p, "unpruned": n,
            "connections_removed": 1 - p["connectivity"] / n["connectivity"],
            "learning_fewer": n["learning_cycles"] / p["learning_cycles"],
            "inference_fewer": n["inference_cycles_per_sample"] / p["inference_cycles_per_sample"],
            "accuracy_change": p["accuracy"] - n["accuracy"],
            "bit_exact": p["bit_exact"] is not False and n["bit_exact"] is not False}


#: (name, neurons, epochs, StdpRule overrides) of the ablation table.
VARIANTS = (
    ("default (64 neurons, W = 8, Bw = 8, prune below 192, homeostasis)", 64, 1, {}),
    ("no pruning", 64, 1, {"prune_below": 0}),
    ("no homeostasis", 64, 1, {"theta_up": 0, "theta_down": 0}),
    ("no homeostasis, no pruning", 64, 1, {"theta_up": 0, "theta_down": 0, "prune_below": 0}),
    ("prune below 128 (M/2)", 64, 1, {"prune_below": 128}),
    ("prune below 224", 64, 1, {"prune_below": 224}),
    ("32 neurons (h+ = 32)", 32, 1, {"theta_up": 32}),
    ("128 neurons (h+ = 128)", 128, 1, {"theta_up": 128}),
    ("128 neurons, no pruning", 128, 1, {"theta_up": 128, "prune_below": 0}),
    ("2 epochs", 64, 2, {}),
    ("2 epochs, no pruning", 64, 2, {"prune_below": 0}),
    ("window 4", 64, 1, {"window": 4}),
    ("window 16", 64, 1, {"window": 16}),
    ("6-bit weights (prune below 48)", 64, 1, {"weight_bits": 6}),
)


def _golden_run(ds, t_train, t_test, neurons, epochs, seed, rule):
    layer = init_layer(t_train.shape[1], neurons, rule, seed=seed)
    g, _ = learn(layer, t_train, epochs=epochs, seed=seed)
    f_train, f_test = first_spikes(g, t_train)[0], first_spikes(g, t_test)[0]
    return g, f_train, f_test


def ablations(ds, seeds) -> list[dict]:
    rows = []
    for name, neurons, epochs, kw in VARIANTS:
        rule = StdpRule(**kw)
        t_train, t_test = ttfs_encode(ds.x_train, rule.window), ttfs_encode(ds.x_test, rule.window)
        accs, conns = [], []
        for seed in seeds:
            g, f_train, f_test = _golden_run(ds, t_train, t_test, neurons, epochs, seed, rule)
            accs.append(readout_accuracy(spike_features(f_train, rule.window), ds.y_train,
                                         spike_features(f_test, rule.window), ds.y_test)[0])
            conns.append(g.connectivity)
        rows.append({"variant": name, "accuracy": float(np.mean(accs)), "connectivity": float(np.mean(conns))})
    # a second layer, learned on the first layer's first-spike times (64 neurons, default rule)
    rule = StdpRule()
    t_train, t_test = ttfs_encode(ds.x_train, rule.window), ttfs_encode(ds.x_test, rule.window)
    second, both = [], []
    for seed in seeds:
        _, f_train, f_test = _golden_run(ds, t_train, t_test, 64, 1, seed, rule)
        _, g_train, g_test = _golden_run(ds, f_train, f_test, 64, 1, seed + 100, rule)
        second.append(readout_accuracy(spike_features(g_train, 8), ds.y_train, spike_features(g_test, 8), ds.y_test)[0])
        both.append(readout_accuracy(spike_features(np.hstack([f_train, g_train]), 8), ds.y_train,
                                     spike_features(np.hstack([f_test, g_test]), 8), ds.y_test)[0])
    rows.append({"variant": "second layer (64 neurons): its features alone", "accuracy": float(np.mean(second)),
                 "connectivity": None})
    rows.append({"variant": "second layer: both layers' features", "accuracy": float(np.mean(both)),
                 "connectivity": None})
    return rows


def _exact(*flags) -> str:
    if any(f is False for f in flags):
        return "NO"
    return "golden only" if any(f is None for f in flags) else "yes"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=lambda s: [int(v) for v in s.split(",")], default=[0, 1, 2],
                    help="seeds (initial weights and sample order; default 0,1,2)")
    ap.add_argument("--neurons", type=int_list, default=[64], help="learning-layer sizes (default 64)")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--backend", choices=("verilator", "amaranth", "golden"), default="verilator")
    ap.add_argument("--ablations", action="store_true", help="the golden model's table of rule variants instead")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    ds = load_dataset("digits")
    if args.ablations:
        rows = ablations(ds, args.seeds)
        if args.json:
            print(json.dumps({"ablations": rows, "seeds": args.seeds}, indent=2))
            return 0
        print(f"golden model, digits, mean over seeds {args.seeds}\n")
        print("| variant | readout accuracy | connectivity |\n|---|---:|---:|")
        for r in rows:
            conn = "" if r["connectivity"] is None else f"{r['connectivity']:.1%}"
            print(f"| {r['variant']} | {r['accuracy']:.1%} | {conn} |")
        return 0
    rows = [compare(ds, seed, k, args.epochs, args.backend) for k in args.neurons for seed in args.seeds]
    report = {"rows": rows, "targets": TARGETS, "backend": args.backend, "epochs": args.epochs,
              "seconds": time.perf_counter() - t0}
    ok = all(r["bit_exact"] for r in rows)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0 if ok else 1
    print(f"STDP on digits ({len(ds.x_train)} training samples x {args.epochs} epoch(s), readout on the "
          f"{len(ds.x_test)} test samples), {args.backend}\n")
    print("| neurons | seed | accuracy pruned / unpruned | connections removed | learning cycles pruned / unpruned "
          "| fewer | inference cycles/sample pruned / unpruned | fewer | bit-exact |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        p, n = r["pruned"], r["unpruned"]
        print(f"| {p['neurons']} | {r['seed']} | {p['accuracy']:.1%} / {n['accuracy']:.1%} | {r['connections_removed']:.1%} "
              f"| {p['learning_cycles']:,} / {n['learning_cycles']:,} | {r['learning_fewer']:.2f}x "
              f"| {p['inference_cycles_per_sample']:,.0f} / {n['inference_cycles_per_sample']:,.0f} "
              f"| {r['inference_fewer']:.2f}x | {_exact(p['bit_exact'], n['bit_exact'])} |")
    med = {k: statistics.median(r[k] for r in rows) for k in ("connections_removed", "learning_fewer", "inference_fewer",
                                                               "accuracy_change")}
    print(f"\nmedian: {med['connections_removed']:.1%} of the connections removed, learning {med['learning_fewer']:.2f}x "
          f"and inference {med['inference_fewer']:.2f}x fewer cycles, accuracy {100 * med['accuracy_change']:+.1f} points "
          f"(targets: >= {TARGETS['connections_removed']:.0%}, >= {TARGETS['learning_fewer']}x, "
          f">= {TARGETS['inference_fewer']}x, >= -{100 * TARGETS['accuracy_loss']:.1f} points, accuracy >= 90%)")
    print(f"{report['seconds']:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
