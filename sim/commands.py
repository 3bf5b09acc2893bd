"""The ``cssnn`` subcommands that run an accelerator: ``sim`` (a simulated one, every result compared
with the golden model), ``infer`` (one input on a board or a simulator) and ``learn`` (on-chip STDP
learning with pruning on a simulated accelerator). Conventions: :mod:`cssnn.command`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from cssnn.command import CLIError, add_command, command_line, emit, progress_bar
from cssnn.sw.host.protocol import DEFAULT_BAUD

__all__ = ["register"]

#: ``cssnn sim --trace`` records every clock: a few samples only.
MAX_TRACED_SAMPLES = 20


def _simulated(args, net):
    """(accelerator params, transport) of a simulated accelerator sized for ``net``."""
    from cssnn.sim.transports import open_backend
    from cssnn.sw.mapping.sizing import params_for

    ap = params_for(net, lanes=args.lanes)
    if args.backend == "verilator":
        print("building the Verilator model (cached after the first build)...", file=sys.stderr)
    trace = getattr(args, "trace", None)
    kwargs = {} if trace is None else {"trace": trace} if args.backend == "verilator" else {"vcd": str(trace)}
    try:
        return ap, open_backend(args.backend, ap, **kwargs)
    except RuntimeError as e:   # a failed Verilator build
        raise CLIError(str(e).splitlines()[0]) from None


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

    from cssnn.sw.host.accelerator import Accelerator
    from cssnn.sw.host.compare import compare_with_golden, first_divergence
    from cssnn.sw.mapping.ideal import ideal_cycles
    from cssnn.sw.spec.network import load_network

    if args.samples < 1:
        raise CLIError(f"--samples must be at least 1, not {args.samples}")
    if args.trace is not None:
        allowed = (".vcd", ".fst") if args.backend == "verilator" else (".vcd",)
        if args.trace.suffix not in allowed:
            raise CLIError(f"--trace writes {' or '.join(allowed)} on the {args.backend} backend, not {args.trace.name}")
        if args.samples > MAX_TRACED_SAMPLES:
            raise CLIError(f"--trace records every clock: run at most {MAX_TRACED_SAMPLES} samples (--samples)")
    net = load_network(args.network)
    xs, ys = _test_inputs(net, args.dataset, args.samples)
    ap, transport = _simulated(args, net)
    divergence = None
    with Accelerator(transport) as acc:
        acc.load(net)
        c0, t0 = transport.cycles, time.perf_counter()
        with progress_bar(len(xs), f"sim ({args.backend})") as bar:
            batch = acc.infer_batch(xs, progress=bar)
        wall, sim_cycles = time.perf_counter() - t0, transport.cycles - c0
        cmp = compare_with_golden(net, xs, batch, membrane_bits=ap.core.membrane_bits)
        if not cmp.bit_exact:   # re-run the first bad sample step by step to find where it departs
            b = int(cmp.mismatched_samples[0])
            divergence = first_divergence(acc, xs[b], b)
    res, gold = cmp.hardware, cmp.golden
    bad = cmp.mismatched_samples
    ideal = ideal_cycles(net, gold.trace.spikes, ap.core.lanes)
    payload = {
        "bit_exact": cmp.bit_exact,
        "mismatches": len(bad),
        "mismatched_samples": bad[:20].tolist(),
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
        "synapses": acc.image.synapses,
        "synapse_rows_used": acc.image.rows_used,
        "synapse_memory_bits": acc.image.synapse_bits,
        "first_divergence": divergence.as_dict() if divergence else None,
        "trace": str(args.trace) if args.trace else None,
        "hardware": {"lanes": ap.core.lanes, **{k: getattr(ap.core, k) for k in (
            "weight_bits", "membrane_bits", "output_bits", "acc_bits", "bias_bits", "threshold_bits", "neurons",
            "synapse_rows", "layer_words", "list_rows", "walk")}, "order": ap.order, "fifo_depth": ap.fifo_depth},
        "command": command_line(args),
    }
    verdict = "BIT-EXACT" if payload["bit_exact"] else f"{payload['mismatches']} MISMATCHING SAMPLES"
    text = (f"{verdict}: "
            f"{len(xs)} samples on {args.backend}, every logit compared with the golden model\n"
            f"cycles per inference {payload['cycles_per_inference']:.0f} (ideal event-driven "
            f"{payload['ideal_cycles_per_inference']:.0f}, ratio {payload['cycles_to_ideal']:.2f}); "
            f"accuracy {payload['accuracy']:.2%}\n"
            f"{payload['synapses']:,} synapses in {payload['synapse_rows_used']:,} synapse rows "
            f"({payload['synapse_memory_bits'] / 8192:.1f} KiB)\n"
            f"simulated {sim_cycles:,} cycles in {wall:.1f} s ({payload['sim_cycles_per_second']:,.0f} cycles/s)"
            + (f"\n{divergence}" if divergence else "")
            + (f"\nwaveform: {args.trace} (cycle c at time 10c)" if args.trace else ""))
    emit(args, payload, text)
    if not cmp.bit_exact:
        raise SystemExit(1)


def cmd_infer(args) -> None:
    from cssnn.sw.host.accelerator import Accelerator, BatchInference
    from cssnn.sw.host.compare import compare_with_golden
    from cssnn.sw.spec.network import load_network

    net = load_network(args.network)
    if args.samples is not None and (args.samples < 1 or args.input is not None):
        raise CLIError("--samples must be at least 1" if args.samples < 1 else "--samples and --input exclude each other")
    if args.input is not None:
        x = _read_input(args.input)
    else:
        xs, ys = _test_inputs(net, args.dataset)
        if not 0 <= args.index < len(xs):
            raise CLIError(f"--index must be in [0, {len(xs) - 1}] for the {args.dataset} test split, not {args.index}")
        x = xs[args.index]
    if args.port:
        from cssnn.sw.host.protocol import SerialTransport

        transport = SerialTransport(args.port, baudrate=args.baud, timeout=args.timeout)
        where = args.port
    else:
        _, transport = _simulated(args, net)
        where = f"{args.backend} simulation"
    with Accelerator(transport) as acc:
        if args.samples is not None:
            return _infer_batch(args, acc, net, xs[args.index:args.index + args.samples],
                                ys[args.index:args.index + args.samples], where)
        acc.load(net)
        r = acc.infer(x)
        codes = acc.encode(x)
        membrane_bits = acc.params.core.membrane_bits
    cmp = compare_with_golden(net, codes[None, :], BatchInference.of([r], net.n_outputs), membrane_bits=membrane_bits)
    payload = dict(r.as_dict(), matches_golden=cmp.bit_exact, device=where)
    emit(args, payload, f"class {r.cls}  logits {r.logits.tolist()}\n"
                         f"{r.cycles} cycles, {r.events} events, {r.synops} synaptic ops on {where}"
                         f" ({'matches' if payload['matches_golden'] else 'DIFFERS FROM'} the golden model)")


def _infer_batch(args, acc, net, xs, ys, where: str) -> None:
    """``cssnn infer --samples N``: the batch through :meth:`Accelerator.infer_batch` (INFER requests sent
    ahead), every class (and logit, unless ``--no-logits``) compared with the golden model."""
    import time

    from cssnn.sw.host.compare import compare_with_golden

    stats = acc.client.stats
    t0 = time.perf_counter()
    acc.load(net)
    t1, before = time.perf_counter(), dict(stats)
    with progress_bar(len(xs), "infer") as bar:
        batch = acc.infer_batch(xs, counters=False, logits=args.logits, progress=bar)
    wall = time.perf_counter() - t1
    delta = {k: stats[k] - before[k] for k in ("bytes_sent", "bytes_received", "requests", "retries")}
    cmp = compare_with_golden(net, xs, batch, membrane_bits=acc.params.core.membrane_bits)
    n = len(xs)
    payload = {
        "samples": n, "accuracy": float((batch.classes == ys).mean()), "bit_exact": cmp.bit_exact,
        "compared": ["class", "logits"] if args.logits else ["class"], "mismatches": len(cmp.mismatches),
        "inferences_per_second": n / wall if wall > 0 else None, "seconds": wall,
        "bytes_per_inference": (delta["bytes_sent"] + delta["bytes_received"]) / n,
        "bytes_sent_per_inference": delta["bytes_sent"] / n, "bytes_received_per_inference": delta["bytes_received"] / n,
        "requests": delta["requests"], "retries": delta["retries"], "pipelined": acc.batchable(),
        "load_seconds": t1 - t0, "load_bytes": before["bytes_sent"] + before["bytes_received"],
        "device": where, "command": command_line(args),
    }
    verdict = "BIT-EXACT" if cmp.bit_exact else f"{len(cmp.mismatches)} MISMATCHES"
    emit(args, payload, f"{verdict}: {n} samples on {where} ({' and '.join(payload['compared'])} compared with the "
                         f"golden model), accuracy {payload['accuracy']:.2%}\n"
                         f"{payload['inferences_per_second']:,.1f} inferences/s, {payload['bytes_per_inference']:.1f} "
                         f"bytes per inference ({payload['bytes_sent_per_inference']:.0f} sent, "
                         f"{payload['bytes_received_per_inference']:.0f} received), {payload['requests']} requests, "
                         f"{payload['retries']} retries; network loaded in {payload['load_seconds']:.2f} s")
    if not cmp.bit_exact:
        raise SystemExit(1)


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



def cmd_learn(args) -> None:
    from cssnn.sim.learning import run_learning
    from cssnn.sw.analysis.learning import plot_learning
    from cssnn.sw.frontends.datasets import load_dataset
    from cssnn.sw.spec.stdp import save_learning

    for name in ("neurons", "epochs", "samples"):
        v = getattr(args, name)
        if v is not None and v < 1:
            raise CLIError(f"--{name} must be at least 1, not {v}")
    if args.plot is not None and args.plot.suffix.lower() not in (".png", ".pdf", ".svg"):
        raise CLIError(f"--plot must name a .png, .pdf or .svg file, not {args.plot}")
    if args.out is not None and args.out.suffix.lower() != ".npz":
        raise CLIError(f"--out must name an .npz file, not {args.out}")
    ds = load_dataset(args.dataset)
    if args.backend == "verilator":
        print("building the Verilator model (cached after the first build)...", file=sys.stderr)
    res = run_learning(ds, neurons=args.neurons, prune=args.prune, epochs=args.epochs, samples=args.samples,
                       backend=args.backend, seed=args.seed, progress=progress_bar)
    s = res.summary
    if s["bit_exact"] is False:
        raise CLIError("the hardware's weights or features differ from the golden model's (nothing written)")
    if args.out is not None:
        save_learning(res.layer, args.out)
        s["out"] = str(args.out)
    if args.plot is not None:
        plot_learning(args.plot, res.layer, ds.input_shape, res.connectivity, res.y_test, res.predictions,
                      s["accuracy"], f"STDP on {ds.name}: {args.neurons} neurons, "
                      f"{'pruning' if args.prune else 'no pruning'}, {s['samples']} samples x {args.epochs} epochs")
        s["plot"] = str(args.plot)
    exact = {None: "golden model only", True: "bit-exact with the golden model", False: "MISMATCH with the golden model"}
    text = (f"readout accuracy {100 * s['accuracy']:.1f}% on the test split, {100 * s['connectivity']:.1f}% of "
            f"the synapses kept ({s['synapses']} of {s['synapses_initial']})\n"
            f"learning: {s['learning_cycles']:,} cycles for {s['learning_samples']} samples "
            f"({s['learning_cycles'] / max(1, s['learning_samples']):,.0f} per sample); "
            f"inference (features): {s['inference_cycles_per_sample']:,.0f} cycles per sample\n"
            f"{args.backend}: {exact[s['bit_exact']]}" + (f"\nplot: {args.plot}" if args.plot else "")
            + (f"\nlearned layer: {args.out}" if args.out else ""))
    emit(args, s, text)


def add_backend_args(p: argparse.ArgumentParser, *, default: str, group=None) -> None:
    (group or p).add_argument("--backend", choices=("verilator", "amaranth"), default=default,
                              help=f"simulator (default {default})")
    p.add_argument("--lanes", type=int, default=8, help="neuron lanes of the simulated accelerator (default 8)")



def register(subparsers) -> None:
    def add(name, func, help_):
        return add_command(subparsers, name, func, help_)

    p = add("sim", cmd_sim, "run a converted network on the simulated accelerator, checked against the golden model")
    p.add_argument("network", type=Path, help="converted network .npz")
    p.add_argument("--dataset", default="digits", help="'digits' or a PATH.npz; its test split (default digits)")
    p.add_argument("--samples", type=int, default=200, help="test samples to run (default 200)")
    add_backend_args(p, default="verilator")
    p.add_argument("--trace", type=Path, default=None,
                   help=f"write a waveform of the whole run (.vcd; .fst on Verilator): every clock, so at most "
                        f"{MAX_TRACED_SAMPLES} samples")

    p = add("learn", cmd_learn, "learn a layer on chip with STDP and connection pruning (simulated accelerator), "
                                "checked against the golden model, then score a readout")
    p.add_argument("--dataset", default="digits", help="'digits' or a PATH.npz (default digits)")
    p.add_argument("--prune", action=argparse.BooleanOptionalAction, default=True,
                   help="prune synapses while learning (default on)")
    p.add_argument("--neurons", type=int, default=64, help="neurons of the learning layer (default 64)")
    p.add_argument("--epochs", type=int, default=1, help="passes over the training samples (default 1)")
    p.add_argument("--samples", type=int, default=None, help="training samples (default all)")
    p.add_argument("--backend", choices=("verilator", "amaranth", "golden"), default="verilator",
                   help="where to learn: a simulator, or the golden model alone (default verilator)")
    p.add_argument("--seed", type=int, default=0, help="initial weights and sample order (default 0)")
    p.add_argument("--plot", type=Path, help="write receptive fields, connectivity and the readout to this image")
    p.add_argument("--out", type=Path, help="save the learned layer (weights, existence mask, thresholds, rule) as .npz")

    p = add("infer", cmd_infer, "classify one input on a board (--port) or a simulated accelerator (--backend)")
    p.add_argument("network", type=Path, help="converted network .npz")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--port", help="serial port of a board running the cssnn bitstream, e.g. /dev/ttyUSB1")
    p.add_argument("--baud", type=int, default=DEFAULT_BAUD, help=f"serial baud rate (default {DEFAULT_BAUD})")
    p.add_argument("--timeout", type=float, default=0.5,
                   help="serial read timeout in seconds (default 0.5; more for a virtual board, which runs slower)")
    add_backend_args(p, default="amaranth", group=where)
    p.add_argument("--input", type=Path, help="one sample: .npy or text; integers are input codes, floats features in [0, 1]")
    p.add_argument("--dataset", default="digits", help="without --input: take a test sample of this dataset")
    p.add_argument("--index", type=int, default=0, help="without --input: which test sample (default 0)")
    p.add_argument("--samples", type=int, default=None,
                   help="run a batch of this many test samples from --index on (INFER requests sent ahead of their "
                        "replies) and report accuracy, bit-exactness, inferences/s and bytes per inference")
    p.add_argument("--logits", action=argparse.BooleanOptionalAction, default=True,
                   help="with --samples: read every logit back (default) or the classes alone")
