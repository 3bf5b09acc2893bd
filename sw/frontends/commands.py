"""The ``cssnn`` subcommands of the frontends: ``train`` and ``convert`` (conventions:
:mod:`cssnn.command`)."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from cssnn.command import CLIError, add_command, emit, int_list, progress_bar

__all__ = ["register", "add_conversion_args", "conversion_config", "describe", "describe_text"]


def cmd_train(args) -> None:
    from cssnn.sw.frontends.datasets import load_dataset
    from cssnn.sw.frontends.importers import save_ann
    from cssnn.sw.frontends.train import train_mlp

    if not 0.0 <= args.sparsity < 1.0:  # NaN too
        raise CLIError(f"--sparsity must be in [0, 1) (the fraction of weights pruned), not {args.sparsity}")
    if args.epochs < 1:
        raise CLIError(f"--epochs must be positive, not {args.epochs}")
    data = load_dataset(args.dataset)
    with progress_bar(args.epochs, "training") as bar:
        def progress(epoch, loss):
            bar.set_postfix(loss=f"{loss:.4f}")
            bar.update(1)

        ann = train_mlp(data.x_train, data.y_train, args.hidden, n_classes=data.n_classes, epochs=args.epochs,
                        lr=args.lr, seed=args.seed, sparsity=args.sparsity, progress=progress)
    save_ann(ann, args.out)
    zeros = sum(int(np.count_nonzero(l.weight == 0)) for l in ann.layers)
    payload = {
        "out": str(args.out), "dataset": data.name, "hidden": args.hidden, "epochs": args.epochs, "seed": args.seed,
        "train_accuracy": float(np.mean(ann.predict(data.x_train) == data.y_train)),
        "ann_accuracy": float(np.mean(ann.predict(data.x_test) == data.y_test)),
        "sparsity": zeros / sum(l.weight.size for l in ann.layers),  # achieved: the fraction of zero weights
    }
    pruned = f", {payload['sparsity']:.1%} of the weights zero" if args.sparsity else ""
    emit(args, payload, f"trained {data.n_features}-{'-'.join(map(str, args.hidden))}-{data.n_classes} MLP on "
                         f"{data.name}: test accuracy {payload['ann_accuracy']:.2%}{pruned} -> {args.out}")


def conversion_config(args, coding, timesteps, output_bits):
    from cssnn.sw.frontends.convert import ConversionConfig

    return ConversionConfig(coding=coding, timesteps=timesteps, weight_bits=args.weight_bits,
                            input_bits=args.input_bits, percentile=args.percentile, output_bits=output_bits,
                            membrane_bits=getattr(args, "membrane_bits", None))


def cmd_convert(args) -> None:
    from cssnn.sw.frontends.convert import convert
    from cssnn.sw.frontends.datasets import load_dataset
    from cssnn.sw.frontends.importers import load_ann
    from cssnn.sw.spec.network import save_network

    ann = load_ann(args.ann, unsafe_pickle=args.unsafe_pickle)
    data = load_dataset(args.dataset)
    if data.n_features != ann.n_inputs:
        raise CLIError(f"the dataset has {data.n_features} features but the ANN expects {ann.n_inputs}")
    net = convert(ann, data.x_train, conversion_config(args, args.coding, args.timesteps, args.output_bits))
    save_network(net, args.out)
    payload = describe(net) | {"out": str(args.out)}
    emit(args, payload, describe_text(net) + f"\n-> {args.out}")


def _synapse_counts(net) -> tuple[list[tuple[int, int]], tuple[int, int]]:
    """Per layer and in total: (existing synapses, dense count n_in * n_out)."""
    per = [(l.synapses, l.shape.n_in * l.shape.n_out) for l in net.layers]
    return per, (sum(e for e, _ in per), sum(d for _, d in per))


def describe(net) -> dict:
    per, (existing, dense) = _synapse_counts(net)
    return {
        "coding": net.coding, "timesteps": net.timesteps, "total_steps": net.total_steps,
        "layers": [{"kind": l.shape.kind, "inputs": l.shape.n_in, "outputs": l.shape.n_out,
                    "threshold": l.threshold, "synapses": e, "dense_synapses": d, "density": e / d}
                   for l, (e, d) in zip(net.layers, per)],
        "synapses": existing, "dense_synapses": dense, "density": existing / dense,
        "thresholds": net.thresholds, "input_bits": net.input_bits, "weight_bits": net.weight_bits,
        "membrane_bits": net.membrane_bits, "output_bits": net.output_bits,
        "required_output_bits": net.required_output_bits, "conversion": net.meta,
    }


def describe_text(net) -> str:
    sizes = [str(net.n_inputs)] + [str(l.shape.n_out) for l in net.layers]
    return (f"{net.coding} network {'-'.join(sizes)}, T={net.timesteps} ({net.total_steps} steps per inference)\n"
            f"thresholds {net.thresholds}; widths: input {net.input_bits}, weight {net.weight_bits}, "
            f"membrane {net.membrane_bits}, output {net.output_bits} (needs {net.required_output_bits})\n"
            f"synapses: {_synapses_text(net)}")


def _synapses_text(net) -> str:
    per, total = _synapse_counts(net)
    parts = [f"layer {i} {e:,} of {d:,} ({e / d:.1%})" for i, (e, d) in enumerate(per, start=1)]
    return ", ".join(parts) + f"; total {total[0]:,} of {total[1]:,} ({total[0] / total[1]:.1%})"


def add_conversion_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--weight-bits", type=int, default=8, help="signed weight width (default 8)")
    p.add_argument("--input-bits", type=int, default=8, help="unsigned input width (default 8)")
    p.add_argument("--percentile", type=float, default=99.9,
                   help="activation percentile used for threshold balancing (default 99.9)")



def cmd_export(args) -> None:
    from cssnn.sw.frontends.importers import load_ann
    from cssnn.sw.frontends.nir_io import write_nir
    from cssnn.sw.spec.ann import ANNError
    from cssnn.sw.spec.network import NetworkError, load_network

    if args.out.suffix != ".nir":
        raise CLIError(f"--out must name a .nir file, not {args.out}")
    try:
        obj, kind = load_network(args.file), "network"
    except NetworkError as network_error:   # not a network: an ANN file then, or the network's reason
        try:
            obj, kind = load_ann(args.file), "ann"
        except ANNError:
            raise network_error from None
    write_nir(obj, args.out)
    layers = len(obj.layers)
    emit(args, {"out": str(args.out), "format": "nir", "kind": kind, "layers": layers},
         f"wrote {args.out}: the {'spiking network' if kind == 'network' else 'float ANN'} as NIR ({layers} weight "
         f"layers, IF neurons; the CSS parameters are in the graph's metadata)")


def register(subparsers) -> None:
    def add(name, func, help_):
        return add_command(subparsers, name, func, help_)

    p = add("train", cmd_train, "train a float MLP (NumPy) and save it as an ANN .npz")
    p.add_argument("--dataset", default="digits", help="'digits' (built in) or a PATH.npz (default digits)")
    p.add_argument("--out", type=Path, required=True, help="where to write the ANN .npz")
    p.add_argument("--hidden", type=int_list, default=[64, 32], help="hidden layer sizes (default 64,32)")
    p.add_argument("--epochs", type=int, default=150, help="training epochs (default 150)")
    p.add_argument("--lr", type=float, default=2e-3, help="Adam learning rate (default 0.002)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--sparsity", type=float, default=0.0, metavar="S",
                   help="prune this fraction of every weight matrix by magnitude, gradually during training "
                        "then fine-tuning, 0 <= S < 1 (default 0: dense); the zeros become absent synapses")

    p = add("export", cmd_export, "write a network (or a float ANN) in another tool's format: NIR")
    p.add_argument("file", type=Path, help="a converted network .npz (or an ANN file)")
    p.add_argument("--format", choices=("nir",), default="nir", help="the format (nir)")
    p.add_argument("--out", type=Path, required=True, help="where to write it (.nir)")

    p = add("convert", cmd_convert, "convert an ANN into an integer spiking network")
    p.add_argument("ann", type=Path, help="ANN file: .npz (W0, b0, W1, b1, ...), a NIR graph (.nir) of rate neurons, "
                                          "or a torch .pt (nn.Sequential)")
    p.add_argument("--unsafe-pickle", action="store_true",
                   help="read a PyTorch file by full unpickling, which runs any code it carries (trusted files only; "
                        "by default only the standard layers are read, and nothing runs)")
    p.add_argument("--dataset", default="digits", help="its training split is the calibration data (default digits)")
    p.add_argument("--out", type=Path, required=True, help="where to write the network .npz")
    p.add_argument("--timesteps", "-T", type=int, default=6, help="firing steps per layer, T (default 6)")
    p.add_argument("--coding", choices=("css", "rate"), default="css", help="spike coding (default css)")
    p.add_argument("--output-bits", type=int, default=32, help="output integrator width (default 32)")
    p.add_argument("--membrane-bits", type=int, default=None,
                   help="membrane width (default: the smallest with which saturation never changes a spike)")
    add_conversion_args(p)

