"""The ``cssnn`` command line: one program, one subcommand per job.

Every subcommand takes ``--json`` (one JSON document on stdout, nothing else there); progress bars
go to stderr and only when it is a terminal. Errors print one line naming the problem and exit 2,
without writing any output file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from cssnn import __version__

__all__ = ["main"]


class CLIError(Exception):
    """A user error the CLI reports in one line."""


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _str_list(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def _progress(total: int, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, file=sys.stderr, disable=None, leave=False)


def _emit(args, payload, text: str) -> None:
    if args.json:
        print(json.dumps(payload, indent=2))
    else:
        print(text)


# ---- subcommands ----------------------------------------------------------------------------

def cmd_train(args) -> None:
    from cssnn.sw.frontends.ann import save_ann
    from cssnn.sw.frontends.datasets import load_dataset
    from cssnn.sw.frontends.train import train_mlp

    data = load_dataset(args.dataset)
    with _progress(args.epochs, "training") as bar:
        def progress(epoch, loss):
            bar.set_postfix(loss=f"{loss:.4f}")
            bar.update(1)

        ann = train_mlp(data.x_train, data.y_train, args.hidden, n_classes=data.n_classes, epochs=args.epochs,
                        lr=args.lr, seed=args.seed, progress=progress)
    save_ann(ann, args.out)
    payload = {
        "out": str(args.out), "dataset": data.name, "hidden": args.hidden, "epochs": args.epochs, "seed": args.seed,
        "train_accuracy": float(np.mean(ann.predict(data.x_train) == data.y_train)),
        "ann_accuracy": float(np.mean(ann.predict(data.x_test) == data.y_test)),
    }
    _emit(args, payload, f"trained {data.n_features}-{'-'.join(map(str, args.hidden))}-{data.n_classes} MLP on "
                         f"{data.name}: test accuracy {payload['ann_accuracy']:.2%} -> {args.out}")


def _conversion_config(args, coding, timesteps, output_bits):
    from cssnn.sw.frontends.convert import ConversionConfig

    return ConversionConfig(coding=coding, timesteps=timesteps, weight_bits=args.weight_bits,
                            input_bits=args.input_bits, percentile=args.percentile, output_bits=output_bits,
                            membrane_bits=getattr(args, "membrane_bits", None))


def cmd_convert(args) -> None:
    from cssnn.sw.frontends.ann import load_ann
    from cssnn.sw.frontends.convert import convert
    from cssnn.sw.frontends.datasets import load_dataset
    from cssnn.sw.spec.network import save_network

    ann = load_ann(args.ann)
    data = load_dataset(args.dataset)
    if data.n_features != ann.n_inputs:
        raise CLIError(f"the dataset has {data.n_features} features but the ANN expects {ann.n_inputs}")
    net = convert(ann, data.x_train, _conversion_config(args, args.coding, args.timesteps, args.output_bits))
    save_network(net, args.out)
    payload = _describe(net) | {"out": str(args.out)}
    _emit(args, payload, _describe_text(net) + f"\n-> {args.out}")


def _describe(net) -> dict:
    return {
        "coding": net.coding, "timesteps": net.timesteps, "total_steps": net.total_steps,
        "layers": [{"kind": l.shape.kind, "inputs": l.shape.n_in, "outputs": l.shape.n_out,
                    "threshold": l.threshold} for l in net.layers],
        "thresholds": net.thresholds, "input_bits": net.input_bits, "weight_bits": net.weight_bits,
        "membrane_bits": net.membrane_bits, "output_bits": net.output_bits,
        "required_output_bits": net.required_output_bits, "conversion": net.meta,
    }


def _describe_text(net) -> str:
    sizes = [str(net.n_inputs)] + [str(l.shape.n_out) for l in net.layers]
    return (f"{net.coding} network {'-'.join(sizes)}, T={net.timesteps} ({net.total_steps} steps per inference)\n"
            f"thresholds {net.thresholds}; widths: input {net.input_bits}, weight {net.weight_bits}, "
            f"membrane {net.membrane_bits}, output {net.output_bits} (needs {net.required_output_bits})")


def cmd_info(args) -> None:
    from cssnn.sw.spec.network import load_network

    net = load_network(args.network)
    _emit(args, _describe(net), _describe_text(net))


def cmd_eval(args) -> None:
    from cssnn.sw.frontends.datasets import load_dataset
    from cssnn.sw.analysis.evaluate import evaluate
    from cssnn.sw.spec.network import load_network

    net = load_network(args.network)
    r = evaluate(net, load_dataset(args.dataset))
    _emit(args, r, _table([r]))


def cmd_sweep(args) -> None:
    from cssnn.sw.frontends.ann import load_ann
    from cssnn.sw.frontends.datasets import load_dataset
    from cssnn.sw.analysis.evaluate import plot_sweep, sweep

    ann = load_ann(args.ann)
    data = load_dataset(args.dataset)
    if data.n_features != ann.n_inputs:
        raise CLIError(f"the dataset has {data.n_features} features but the ANN expects {ann.n_inputs}")
    for c in args.codings:
        if c not in ("css", "rate"):
            raise CLIError(f"unknown coding {c!r} (expected css and/or rate)")
    with _progress(len(args.codings) * len(args.timesteps), "sweep") as bar:
        def progress(coding, t):
            bar.set_postfix(coding=coding, T=t)
            bar.update(1)

        results = sweep(ann, data, args.codings, args.timesteps, _conversion_config(args, "css", 1, None), progress)
    if args.plot:
        plot_sweep(results, args.plot, title=f"{data.name}: CSS vs rate coding")
    text = _table(results) + (f"\nplot: {args.plot}" if args.plot else "")
    _emit(args, results, text)


def _simulated(args, net):
    """(accelerator params, transport) of a simulated accelerator sized for ``net``."""
    from cssnn.sw.mapping.sizing import params_for
    from cssnn.sim.transports import open_backend

    ap = params_for(net, lanes=args.lanes)
    if args.backend == "verilator":
        print("building the Verilator model (cached after the first build)...", file=sys.stderr)
    return ap, open_backend(args.backend, ap)


def _test_inputs(net, dataset: str, samples: int | None = None):
    from cssnn.sw.frontends.datasets import load_dataset
    from cssnn.sw.spec.golden import quantize_input

    data = load_dataset(dataset)
    if data.n_features != net.n_inputs:
        raise CLIError(f"the dataset has {data.n_features} features but the network takes {net.n_inputs}")
    n = len(data.x_test) if samples is None else min(samples, len(data.x_test))
    return quantize_input(data.x_test[:n], net.input_bits), data.y_test[:n]


def cmd_sim(args) -> None:
    import time

    from cssnn.sw.mapping.ideal import ideal_cycles
    from cssnn.sw.host.accelerator import Accelerator
    from cssnn.sw.spec.golden import run
    from cssnn.sw.spec.network import load_network

    if args.samples < 1:
        raise CLIError(f"--samples must be at least 1, not {args.samples}")
    net = load_network(args.network)
    xs, ys = _test_inputs(net, args.dataset, args.samples)
    ap, transport = _simulated(args, net)
    gold = run(net, xs, trace=True, membrane_bits=ap.core.membrane_bits)
    with Accelerator(transport) as acc:
        acc.load(net)
        c0, t0 = transport.cycles, time.perf_counter()
        with _progress(len(xs), f"sim ({args.backend})") as bar:
            res = acc.infer_batch(xs, progress=bar)
        wall, sim_cycles = time.perf_counter() - t0, transport.cycles - c0
    # A sample mismatches if any logit, its class, its synaptic ops or its event count differs.
    events_gold = sum(np.count_nonzero(s.reshape(len(xs), -1), axis=1) for s in gold.trace.spikes)
    bad = ((res.logits != gold.logits).any(axis=1) | (res.classes != gold.classes)
           | (res.synops != gold.synaptic_ops) | (res.events != events_gold))
    ideal = ideal_cycles(net, gold.trace.spikes, ap.core.lanes)
    payload = {
        "bit_exact": bool(not bad.any()),
        "mismatches": int(bad.sum()),
        "mismatched_samples": np.flatnonzero(bad)[:20].tolist(),
        "samples": len(xs),
        "backend": args.backend,
        "dataset": args.dataset,
        "timesteps": net.timesteps,
        "cycles_per_inference": float(res.cycles.mean()),
        "cycles_per_inference_min": int(res.cycles.min()),
        "cycles_per_inference_max": int(res.cycles.max()),
        "ideal_cycles_per_inference": float(ideal.mean()),
        "cycles_to_ideal": float(res.cycles.sum() / ideal.sum()),
        "events_per_inference": float(res.events.mean()),
        "synaptic_ops_per_inference": float(res.synops.mean()),
        "accuracy": float((res.classes == ys).mean()),
        "golden_accuracy": float((gold.classes == ys).mean()),
        "sim_cycles": int(sim_cycles),
        "sim_seconds": wall,
        "sim_cycles_per_second": sim_cycles / wall if wall > 0 else None,
        "hardware": {"lanes": ap.core.lanes, **{k: getattr(ap.core, k) for k in (
            "weight_bits", "membrane_bits", "output_bits", "acc_bits", "bias_bits", "threshold_bits", "neurons",
            "synapse_rows")}},
    }
    verdict = "BIT-EXACT" if payload["bit_exact"] else f"{payload['mismatches']} MISMATCHING SAMPLES"
    text = (f"{verdict}: "
            f"{len(xs)} samples on {args.backend}, every logit compared with the golden model\n"
            f"cycles per inference {payload['cycles_per_inference']:.0f} (ideal event-driven "
            f"{payload['ideal_cycles_per_inference']:.0f}, ratio {payload['cycles_to_ideal']:.2f}); "
            f"accuracy {payload['accuracy']:.2%}\n"
            f"simulated {sim_cycles:,} cycles in {wall:.1f} s ({payload['sim_cycles_per_second']:,.0f} cycles/s)")
    _emit(args, payload, text)
    if bad.any():
        raise SystemExit(1)


def cmd_infer(args) -> None:
    from cssnn.sw.host.accelerator import Accelerator
    from cssnn.sw.spec.golden import run
    from cssnn.sw.spec.network import load_network

    net = load_network(args.network)
    if args.input is not None:
        x = _read_input(args.input)
    else:
        xs, _ = _test_inputs(net, args.dataset)
        if not 0 <= args.index < len(xs):
            raise CLIError(f"--index must be in [0, {len(xs) - 1}] for the {args.dataset} test split, not {args.index}")
        x = xs[args.index]
    if args.port:
        from cssnn.sw.host.protocol import SerialTransport

        transport = SerialTransport(args.port, baudrate=args.baud)
        where = args.port
    else:
        _, transport = _simulated(args, net)
        where = f"{args.backend} simulation"
    with Accelerator(transport) as acc:
        acc.load(net)
        r = acc.infer(x)
        codes = acc.encode(x)
    gold = run(net, codes[None, :], membrane_bits=acc.params.core.membrane_bits)
    payload = dict(r.as_dict(), matches_golden=bool(np.array_equal(r.logits, gold.logits[0])), device=where)
    _emit(args, payload, f"class {r.cls}  logits {r.logits.tolist()}\n"
                         f"{r.cycles} cycles, {r.events} events, {r.synops} synaptic ops on {where}"
                         f" ({'matches' if payload['matches_golden'] else 'DIFFERS FROM'} the golden model)")


def _read_input(path: Path) -> np.ndarray:
    """One sample from .npy or text (whitespace/comma separated): integers are input codes, floats
    features in [0, 1]."""
    try:
        if path.suffix == ".npy":
            x = np.load(path, allow_pickle=False)
        else:
            text = path.read_text().replace(",", " ").split()
            x = np.array([float(v) for v in text])
            if np.all(x == np.rint(x)) and not any("." in v for v in text):
                x = x.astype(np.int64)
    except ValueError as e:
        raise CLIError(f"cannot read an input from {path}: {e}") from None
    return np.asarray(x).reshape(-1)


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


# ---- argument parsing -----------------------------------------------------------------------

def _add_conversion_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--weight-bits", type=int, default=8, help="signed weight width (default 8)")
    p.add_argument("--input-bits", type=int, default=8, help="unsigned input width (default 8)")
    p.add_argument("--percentile", type=float, default=99.9,
                   help="activation percentile used for threshold balancing (default 99.9)")


def _add_backend_args(p: argparse.ArgumentParser, *, default: str, group=None) -> None:
    (group or p).add_argument("--backend", choices=("verilator", "amaranth"), default=default,
                              help=f"simulator (default {default})")
    p.add_argument("--lanes", type=int, default=8, help="neuron lanes of the simulated accelerator (default 8)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cssnn", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--version", action="version", version=f"cssnn {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name, func, help_):
        p = sub.add_parser(name, help=help_, description=help_)
        p.add_argument("--json", action="store_true", help="print one JSON document instead of text")
        p.set_defaults(func=func)
        return p

    p = add("train", cmd_train, "train a float MLP (NumPy) and save it as an ANN .npz")
    p.add_argument("--dataset", default="digits", help="'digits' (built in) or a PATH.npz (default digits)")
    p.add_argument("--out", type=Path, required=True, help="where to write the ANN .npz")
    p.add_argument("--hidden", type=_int_list, default=[64, 32], help="hidden layer sizes (default 64,32)")
    p.add_argument("--epochs", type=int, default=150, help="training epochs (default 150)")
    p.add_argument("--lr", type=float, default=2e-3, help="Adam learning rate (default 0.002)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")

    p = add("convert", cmd_convert, "convert an ANN into an integer spiking network")
    p.add_argument("ann", type=Path, help="ANN file: .npz (W0, b0, W1, b1, ...) or a torch .pt (nn.Sequential)")
    p.add_argument("--dataset", default="digits", help="its training split is the calibration data (default digits)")
    p.add_argument("--out", type=Path, required=True, help="where to write the network .npz")
    p.add_argument("--timesteps", "-T", type=int, default=6, help="firing steps per layer, T (default 6)")
    p.add_argument("--coding", choices=("css", "rate"), default="css", help="spike coding (default css)")
    p.add_argument("--output-bits", type=int, default=32, help="output integrator width (default 32)")
    p.add_argument("--membrane-bits", type=int, default=None,
                   help="membrane width (default: the smallest with which saturation never changes a spike)")
    _add_conversion_args(p)

    p = add("eval", cmd_eval, "evaluate a converted network on a dataset's test split (golden model)")
    p.add_argument("network", type=Path, help="converted network .npz")
    p.add_argument("--dataset", default="digits", help="'digits' or a PATH.npz (default digits)")

    p = add("sweep", cmd_sweep, "convert and evaluate an ANN over codings and time steps; table and plot")
    p.add_argument("ann", type=Path, help="ANN file (.npz or torch .pt)")
    p.add_argument("--dataset", default="digits", help="'digits' or a PATH.npz (default digits)")
    p.add_argument("--codings", type=_str_list, default=["css", "rate"], help="comma-separated (default css,rate)")
    p.add_argument("--timesteps", type=_int_list, default=[1, 2, 4, 6, 8, 16, 32, 64, 128, 256],
                   help="comma-separated T values (default 1,2,4,6,8,16,32,64,128,256)")
    p.add_argument("--plot", type=Path, default=Path("sweep.png"), help="PNG to write (default sweep.png)")
    _add_conversion_args(p)

    p = add("sim", cmd_sim, "run a converted network on the simulated accelerator, checked against the golden model")
    p.add_argument("network", type=Path, help="converted network .npz")
    p.add_argument("--dataset", default="digits", help="'digits' or a PATH.npz; its test split (default digits)")
    p.add_argument("--samples", type=int, default=200, help="test samples to run (default 200)")
    _add_backend_args(p, default="verilator")

    p = add("infer", cmd_infer, "classify one input on a board (--port) or a simulated accelerator (--backend)")
    p.add_argument("network", type=Path, help="converted network .npz")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--port", help="serial port of a board running the cssnn bitstream, e.g. /dev/ttyUSB1")
    p.add_argument("--baud", type=int, default=115200, help="serial baud rate (default 115200)")
    _add_backend_args(p, default="amaranth", group=where)
    p.add_argument("--input", type=Path, help="one sample: .npy or text; integers are input codes, floats features in [0, 1]")
    p.add_argument("--dataset", default="digits", help="without --input: take a test sample of this dataset")
    p.add_argument("--index", type=int, default=0, help="without --input: which test sample (default 0)")

    p = add("info", cmd_info, "describe a converted network file")
    p.add_argument("network", type=Path, help="converted network .npz")

    from cssnn.boards.commands import register  # build, selftest: the board flow lives with the boards

    register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from cssnn.sw.frontends.ann import ANNError
    from cssnn.sw.frontends.datasets import DatasetError
    from cssnn.sw.spec.network import NetworkError

    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except BrokenPipeError:  # e.g. piped into `head`
        sys.stderr.close()
        return 0
    except (CLIError, ANNError, DatasetError, NetworkError, ValueError, OSError) as e:
        print(f"cssnn {args.command}: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
