"""The ``cssnn report`` subcommand (conventions: :mod:`cssnn.command`)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from cssnn.command import CLIError, add_command, command_line, emit

__all__ = ["register"]


def cmd_report(args) -> None:
    from cssnn.bench.report import ReportInputError, load_input, write_report

    try:
        compares = [load_input(p, "compare") for p in args.compare]
        builds = [load_input(p, "build") for p in args.build]
        sims = [load_input(p, "sim") for p in args.sim]
    except ReportInputError as e:
        raise CLIError(str(e)) from None
    if args.ann is not None:
        compares.append(_compare(args))
    result = write_report(args.out, compares=compares, builds=builds, sims=sims, command=command_line(args))
    emit(args, result, f"wrote {result['report']} and {len(result['files']) - 1} files beside it")


def _compare(args) -> dict:
    """Compare the ANN given with ``--ann`` (as ``cssnn compare`` does with its defaults)."""
    from cssnn.sw.analysis.commands import load_ann_and_dataset
    from cssnn.sw.analysis.comparison import compare

    ann, data = load_ann_and_dataset(args.ann, args.dataset)
    result = compare(ann, data)
    result["command"] = shlex.join(["cssnn", "compare", str(args.ann), "--dataset", args.dataset, "--json"])
    for s in result["skipped_tools"]:
        print(f"cssnn report: {s['reason']}", file=sys.stderr)
    return {**result, "_source": "--ann"}


def register(subparsers) -> None:
    p = add_command(subparsers, "report", cmd_report,
                    "a Markdown report with figures from compare, build and sim results (their --json files)")
    p.add_argument("--out", type=Path, required=True, help="folder to write report.md and its PNG figures into")
    p.add_argument("--compare", type=Path, action="append", default=[], metavar="COMPARE.json",
                   help="output of `cssnn compare ANN --json` (repeatable)")
    p.add_argument("--build", type=Path, action="append", default=[], metavar="BUILD.json",
                   help="output of `cssnn build NET --json` (repeatable)")
    p.add_argument("--sim", type=Path, action="append", default=[], metavar="SIM.json",
                   help="output of `cssnn sim NET --json` (repeatable)")
    p.add_argument("--ann", type=Path, help="an ANN to compare first (as `cssnn compare ANN` does)")
    p.add_argument("--dataset", default="digits", help="dataset of --ann: 'digits' or a PATH.npz (default digits)")
