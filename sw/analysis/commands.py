"""The ``cssnn`` subcommands of the analysis: ``info``, ``eval``, ``sweep``, ``compare`` and ``report``
(conventions: :mod:`cssnn.command`)."""

from __future__ import annotations

import sys
from pathlib import Path

from cssnn.command import CLIError, add_command, command_line, emit, int_list, progress_bar, str_list
from cssnn.sw.frontends.commands import add_conversion_args, conversion_config

__all__ = ["register", "load_ann_and_dataset"]


def cmd_info(args) -> None:
    from cssnn.sw.frontends.commands import describe, describe_text
    from cssnn.sw.mapping.requirements import DoesNotFit
    from cssnn.sw.mapping.sizing import synapse_memory
    from cssnn.sw.spec.network import load_network

    if args.lanes < 1 or args.lanes & (args.lanes - 1):
        raise CLIError(f"--lanes must be a power of two, not {args.lanes}")
    net = load_network(args.network)
    payload, text = describe(net), describe_text(net)
    try:
        mem = synapse_memory(net, args.lanes)
    except DoesNotFit as e:    # e.g. a rate-coded network: no accelerator runs it
        payload["synapse_memory"] = None
        text += f"\nsynapse memory: none ({e})"
    else:
        payload["synapse_memory"] = mem
        text += (f"\nsynapse memory on {mem['lanes']} lanes: {mem['synapse_rows']:,} rows x {mem['lanes']} lanes x "
                 f"{mem['lane_bits']} bits = {mem['synapse_bits'] / 8192:.1f} KiB (a dense layout: "
                 f"{mem['dense_rows']:,} rows)")
    emit(args, payload, text)


def cmd_eval(args) -> None:
    from cssnn.sw.analysis.evaluate import evaluate
    from cssnn.sw.frontends.datasets import load_dataset
    from cssnn.sw.spec.network import load_network

    net = load_network(args.network)
    r = evaluate(net, load_dataset(args.dataset))
    emit(args, r, _table([r]))


def cmd_sweep(args) -> None:
    from cssnn.sw.analysis.evaluate import plot_sweep, sweep

    ann, data = load_ann_and_dataset(args.ann, args.dataset, unsafe_pickle=args.unsafe_pickle)
    for c in args.codings:
        if c not in ("css", "rate"):
            raise CLIError(f"unknown coding {c!r} (expected css and/or rate)")
    with progress_bar(len(args.codings) * len(args.timesteps), "sweep") as bar:
        def progress(coding, t):
            bar.set_postfix(coding=coding, T=t)
            bar.update(1)

        results = sweep(ann, data, args.codings, args.timesteps, conversion_config(args, "css", 1, None), progress)
    if args.plot:
        plot_sweep(results, args.plot, title=f"{data.name}: CSS vs rate coding")
    text = _table(results) + (f"\nplot: {args.plot}" if args.plot else "")
    emit(args, results, text)


def load_ann_and_dataset(ann_path, dataset: str, *, unsafe_pickle: bool = False):
    """The ANN and dataset a command works on, checked against each other."""
    from cssnn.sw.frontends.datasets import load_dataset
    from cssnn.sw.frontends.importers import load_ann

    ann = load_ann(ann_path, unsafe_pickle=unsafe_pickle)
    data = load_dataset(dataset)
    if data.n_features != ann.n_inputs:
        raise CLIError(f"the dataset has {data.n_features} features but the ANN expects {ann.n_inputs}")
    return ann, data


def cmd_compare(args) -> None:
    from cssnn.sw.analysis.comparison import compare, compare_table, plot_compare
    from cssnn.sw.analysis.spikingjelly_rate import SETTINGS

    ann, data = load_ann_and_dataset(args.ann, args.dataset, unsafe_pickle=args.unsafe_pickle)
    sj = not args.no_spikingjelly
    with progress_bar(2 * len(set(args.timesteps)) + (len(SETTINGS) if sj else 0), "compare") as bar:
        def progress(what):
            bar.set_postfix_str(what)
            bar.update(1)

        result = compare(ann, data, args.timesteps, conversion_config(args, "css", 1, None), spikingjelly=sj,
                         progress=progress)
    result["command"] = command_line(args)
    if args.plot:
        plot_compare(result, args.plot)
        result["plot"] = str(args.plot)
    for s in result["skipped_tools"]:
        if s["tool"] == "spikingjelly" and sj:
            print(f"cssnn compare: {s['reason']}", file=sys.stderr)
    emit(args, result, compare_table(result) + (f"\nplot: {args.plot}" if args.plot else ""))


def _table(results: list[dict]) -> str:
    head = (f"{'coding':6} {'T':>4} {'steps':>5} {'accuracy':>9} {'agreement':>9} {'synops/sample':>13} "
            f"{'analog MACs':>11}")
    lines = [head, "-" * len(head)]
    for r in results:
        if "skipped" in r:
            lines.append(f"{r['coding']:6} {r['timesteps']:>4} {'':>5} {'-':>9} {'-':>9} {'-':>13} {'-':>11}  "
                         "(skipped: the logits would need more than 62 bits)")
            continue
        lines.append(f"{r['coding']:6} {r['timesteps']:>4} {r['total_steps']:>5} {r['snn_accuracy']:>9.2%} "
                     f"{r['agreement']:>9.2%} {r['synaptic_ops_per_sample']:>13,.0f} "
                     f"{r['analog_ops_per_sample']:>11,.0f}")
    ann = next((r["ann_accuracy"] for r in results if "ann_accuracy" in r), None)
    if ann is not None:
        lines.append(f"ANN accuracy {ann:.2%} on {results[0].get('samples', '?')} test samples")
    return "\n".join(lines)



def register(subparsers) -> None:
    def add(name, func, help_):
        return add_command(subparsers, name, func, help_)

    p = add("info", cmd_info, "describe a converted network file: layers, widths, synapses, synapse memory")
    p.add_argument("network", type=Path, help="converted network .npz")
    p.add_argument("--lanes", type=int, default=8, help="lanes of the accelerator the memory is counted for (default 8)")

    p = add("eval", cmd_eval, "evaluate a converted network on a dataset's test split (golden model)")
    p.add_argument("network", type=Path, help="converted network .npz")
    p.add_argument("--dataset", default="digits", help="'digits' or a PATH.npz (default digits)")

    p = add("sweep", cmd_sweep, "convert and evaluate an ANN over codings and time steps; table and plot")
    _add_ann_args(p)
    p.add_argument("--codings", type=str_list, default=["css", "rate"], help="comma-separated (default css,rate)")
    p.add_argument("--plot", type=Path, default=Path("sweep.png"), help="PNG to write (default sweep.png)")
    add_conversion_args(p)

    p = add("compare", cmd_compare, "CSS, cssnn's rate baseline and SpikingJelly's ann2snn side by side on one ANN")
    _add_ann_args(p)
    p.add_argument("--plot", type=Path, help="PNG of agreement, accuracy and synaptic ops against T")
    p.add_argument("--no-spikingjelly", action="store_true", help="leave the SpikingJelly baseline out")
    add_conversion_args(p)


def _add_ann_args(p) -> None:
    from cssnn.sw.analysis.comparison import DEFAULT_TIMESTEPS

    p.add_argument("ann", type=Path, help="ANN file (.npz, .nir, or torch .pt)")
    p.add_argument("--unsafe-pickle", action="store_true",
                   help="read a PyTorch file by full unpickling, which runs any code it carries (trusted files only; "
                        "by default only the standard layers are read, and nothing runs)")
    p.add_argument("--dataset", default="digits", help="'digits' or a PATH.npz (default digits)")
    default = ",".join(map(str, DEFAULT_TIMESTEPS))
    p.add_argument("--timesteps", type=int_list, default=list(DEFAULT_TIMESTEPS),
                   help=f"comma-separated T values (default {default})")
