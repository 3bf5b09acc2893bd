"""Steps to agreement: the smallest T at which CSS, cssnn's rate baseline and SpikingJelly's rate-coded
``ann2snn`` (when installed) reach a given agreement with the ANN, over several training seeds,
searching every T (not a grid).

    python -m cssnn.bench.agreement --seeds 5 [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys

from cssnn.sw.analysis import spikingjelly_rate
from cssnn.sw.analysis.comparison import LEVELS
from cssnn.sw.analysis.evaluate import evaluate
from cssnn.sw.frontends.convert import ConversionConfig, convert
from cssnn.sw.frontends.datasets import load_dataset
from cssnn.sw.frontends.train import train_mlp

MAX_T = {"css": 32, "rate": 512, "spikingjelly": 512}


def steps_to_agreement(ann, data, coding: str, level: float, max_t: int) -> int | None:
    for t in range(1, max_t + 1):
        net = convert(ann, data.x_train, ConversionConfig(coding=coding, timesteps=t, output_bits=None))
        if evaluate(net, data)["agreement"] >= level:
            return t
    return None


def spikingjelly_steps(ann, data) -> dict[float, int | None]:
    """One simulation of MAX_T steps gives SpikingJelly's agreement at every T (its best setting at each)."""
    runs, _ = spikingjelly_rate.run_spikingjelly(ann, data, range(1, MAX_T["spikingjelly"] + 1))
    return {level: next((r["timesteps"] for r in runs if r["agreement"] >= level), None) for level in LEVELS}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m cssnn.bench.agreement", description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=5, help="training seeds 0..N-1 (default 5)")
    p.add_argument("--dataset", default="digits")
    p.add_argument("--hidden", default="64,32")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    data = load_dataset(args.dataset)
    hidden = [int(h) for h in args.hidden.split(",")]
    tools = ["css", "rate"]
    missing = spikingjelly_rate.available()
    if missing:
        print(f"SpikingJelly left out: {missing}", file=sys.stderr)
    else:
        tools.append("spikingjelly")
    rows = []
    for seed in range(args.seeds):
        ann = train_mlp(data.x_train, data.y_train, hidden, n_classes=data.n_classes, seed=seed)
        row = {"seed": seed}
        for level in LEVELS:
            for coding in ("css", "rate"):
                row[f"{coding}@{level}"] = steps_to_agreement(ann, data, coding, level, MAX_T[coding])
        if "spikingjelly" in tools:
            for level, t in spikingjelly_steps(ann, data).items():
                row[f"spikingjelly@{level}"] = t
        rows.append(row)
        print(f"seed {seed}: {row}", file=sys.stderr)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    cols = [f"{c}@{l}" for l in LEVELS for c in tools]
    print("| seed | " + " | ".join(f"{c}: T for {l:.1%}" for l in LEVELS for c in tools) + " |")
    print("|---" + "|---:" * len(cols) + "|")
    for r in rows:
        print(f"| {r['seed']} | " + " | ".join(str(r[k]) for k in cols) + " |")
    med = {k: statistics.median(v) if (v := [r[k] for r in rows if r[k] is not None]) else None for k in cols}
    print("| median | " + " | ".join("-" if med[k] is None else f"**{med[k]:g}**" for k in cols) + " |")
    print(f"\nT is the rate networks' steps per inference; CSS adds a latency of one step per weight layer "
          f"(T + {len(hidden) + 1} here).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
