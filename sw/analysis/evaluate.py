"""Accuracy, agreement with the source ANN, and operation counts of converted networks; T sweeps."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace

import numpy as np

from cssnn.sw.frontends.convert import ConversionConfig, convert
from cssnn.sw.frontends.datasets import Dataset
from cssnn.sw.spec.ann import ANN
from cssnn.sw.spec.golden import quantize_input, run
from cssnn.sw.spec.network import NetworkError, SpikingNetwork

__all__ = ["evaluate", "sweep", "plot_sweep", "plot_series"]


def evaluate(net: SpikingNetwork, data: Dataset, *, batch_size: int = 1024) -> dict:
    """Run the golden model on the test split; the keys are the CLI's ``eval --json`` contract."""
    if net.ann is None:
        raise NetworkError("the network file holds no source ANN, so agreement cannot be measured")
    if data.n_features != net.n_inputs:
        raise NetworkError(f"the dataset has {data.n_features} features but the network expects {net.n_inputs}")
    x = data.x_test
    ann_classes = net.ann.predict(x)
    classes, spikes, synops, analog = [], [], [], []
    started = time.perf_counter()
    for start in range(0, len(x), batch_size):
        r = run(net, quantize_input(x[start:start + batch_size], net.input_bits))
        classes.append(r.classes)
        spikes.append(r.spikes)
        synops.append(r.synaptic_ops)
        analog.append(r.analog_ops)
    wall = time.perf_counter() - started
    classes = np.concatenate(classes)
    spikes = np.concatenate(spikes)
    return {
        "coding": net.coding,
        "timesteps": net.timesteps,
        "total_steps": net.total_steps,
        "samples": int(len(x)),
        "ann_accuracy": float(np.mean(ann_classes == data.y_test)),
        "snn_accuracy": float(np.mean(classes == data.y_test)),
        "agreement": float(np.mean(classes == ann_classes)),
        "synaptic_ops_per_sample": float(np.mean(np.concatenate(synops))),
        "analog_ops_per_sample": float(np.mean(np.concatenate(analog))),
        "spikes_per_layer": [float(v) for v in spikes.mean(axis=0)],
        "wall_seconds_per_sample": wall / len(x),
        "weight_bits": net.weight_bits,
        "membrane_bits": net.membrane_bits,
        "output_bits": net.output_bits,
    }


def sweep(ann: ANN, data: Dataset, codings: Sequence[str], timesteps: Iterable[int],
          config: ConversionConfig | None = None,
          progress: Callable[[str, int], None] | None = None) -> list[dict]:
    """Convert and evaluate ``ann`` for every (coding, T). Host-side study: the output integrators
    get the width each T needs; a T that needs more than the golden model's 62 bits gives an entry
    with ``"skipped"`` (the reason) instead of results."""
    if config is None:
        config = ConversionConfig(output_bits=None)
    results = []
    for coding in codings:
        for t in timesteps:
            if progress:
                progress(coding, t)
            cfg = replace(config, coding=coding, timesteps=int(t))
            try:
                net = convert(ann, data.x_train, cfg)
            except NetworkError as e:
                if "output integrators need" not in str(e):
                    raise
                results.append({"coding": coding, "timesteps": int(t), "skipped": str(e)})
                continue
            results.append(evaluate(net, data))
    return results


def plot_sweep(results: list[dict], path, title: str = "") -> None:
    """Accuracy/agreement and synaptic operations against T, one line per coding."""
    series = {}
    for r in results:
        if "skipped" not in r:
            series.setdefault(r["coding"], []).append({**r, "accuracy": r["snn_accuracy"]})
    ann_acc = next((r["ann_accuracy"] for r in results if "ann_accuracy" in r), None)
    plot_series(series, path, title=title, ann_accuracy=ann_acc)


#: Line colours of the series cssnn draws (anything else takes matplotlib's next colour).
COLORS = {"css": "tab:blue", "rate": "tab:orange", "cssnn css": "tab:blue", "cssnn rate": "tab:orange",
          "spikingjelly rate": "tab:green"}


def plot_series(series: dict[str, list[dict]], path, *, title: str = "", ann_accuracy: float | None = None) -> None:
    """Two panels against T: agreement with the ANN and accuracy (left), synaptic operations per
    sample (right); one line per series (rows with ``timesteps``, ``agreement``, ``accuracy``,
    ``synaptic_ops_per_sample``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for label, rows in series.items():
        if not rows:
            continue
        t = [r["timesteps"] for r in rows]
        c = COLORS.get(label)
        ax1.plot(t, [100 * r["agreement"] for r in rows], "o-", color=c, label=f"{label}: agreement with ANN")
        ax1.plot(t, [100 * r["accuracy"] for r in rows], "s--", color=c, alpha=0.6, label=f"{label}: accuracy")
        ax2.plot(t, [r["synaptic_ops_per_sample"] for r in rows], "o-", color=c, label=label)
    if ann_accuracy is not None:
        ax1.axhline(100 * ann_accuracy, color="gray", lw=0.8, ls=":", label="ANN accuracy")
    for ax in (ax1, ax2):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("time steps T")
        ax.grid(True, which="both", alpha=0.3)
    ax1.set_ylabel("%")
    ax1.set_ylim(85, 100.5)  # points below 85% fall off the chart: the interesting region is near 100%
    ax1.set_title("(values below 85% not shown)", fontsize=8, loc="left")
    ax1.legend(fontsize=7, loc="lower right")
    ax2.set_yscale("log")
    ax2.set_ylabel("synaptic operations per sample")
    ax2.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
