"""Steps to agreement: the smallest T at which CSS and rate coding reach a given agreement with the
ANN, over several training seeds, searching every T (not a grid).

    python -m cssnn.sw.analysis.compare --seeds 5 [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys

from cssnn.sw.frontends.convert import ConversionConfig, convert
from cssnn.sw.frontends.datasets import load_dataset
from cssnn.sw.analysis.evaluate import evaluate
from cssnn.sw.frontends.train import train_mlp

LEVELS = (0.995, 1.0)
MAX_T = {"css": 32, "rate": 512}


def steps_to_agreement(ann, data, coding: str, level: float, max_t: int) -> int | None:
    for t in range(1, max_t + 1):
        net = convert(ann, data.x_train, ConversionConfig(coding=coding, timesteps=t, output_bits=None))
        if evaluate(net, data)["agreement"] >= level:
            return t
    return None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m cssnn.sw.analysis.compare", description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=5, help="training seeds 0..N-1 (default 5)")
    p.add_argument("--dataset", default="digits")
    p.add_argument("--hidden", default="64,32")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    data = load_dataset(args.dataset)
    hidden = [int(h) for h in args.hidden.split(",")]
    rows = []
    for seed in range(args.seeds):
        ann = train_mlp(data.x_train, data.y_train, hidden, n_classes=data.n_classes, seed=seed)
        row = {"seed": seed}
        for level in LEVELS:
            for coding in ("css", "rate"):
                row[f"{coding}@{level}"] = steps_to_agreement(ann, data, coding, level, MAX_T[coding])
        rows.append(row)
        print(f"seed {seed}: {row}", file=sys.stderr)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print("| seed | " + " | ".join(f"{c} T for {l:.1%}" for l in LEVELS for c in ("css", "rate")) + " |")
    print("|---" * (1 + 2 * len(LEVELS)) + "|")
    for r in rows:
        print(f"| {r['seed']} | " + " | ".join(str(r[f'{c}@{l}']) for l in LEVELS for c in ("css", "rate")) + " |")
    med = {k: statistics.median(r[k] for r in rows if r[k] is not None) for k in rows[0] if k != "seed"}
    print("| median | " + " | ".join(f"{med[f'{c}@{l}']:g}" for l in LEVELS for c in ("css", "rate")) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
