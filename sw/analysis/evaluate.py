"""Accuracy, agreement with the source ANN, and operation counts of converted networks; T sweeps."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace

import numpy as np

from cssnn.sw.frontends.ann import ANN
from cssnn.sw.frontends.convert import ConversionConfig, convert
from cssnn.sw.frontends.datasets import Dataset
from cssnn.sw.spec.golden import quantize_input, run
from cssnn.sw.spec.network import NetworkError, SpikingNetwork

__all__ = ["evaluate", "sweep", "plot_sweep"]


def evaluate(net: SpikingNetwork, data: Dataset, *, batch_size: int = 1024) -> dict:
    """Run the golden model on the test split; the keys are the CLI's ``eval --json`` contract."""
    if net.ann is None:
        raise NetworkError("the network file holds no source ANN, so agreement cannot be measured")
    if data.n_features != net.n_inputs:
        raise NetworkError(f"the dataset has {data.n_features} features but the network expects {net.n_inputs}")
    x = data.x_test
    ann_classes = net.ann.predict(x)
    classes, spikes, synops, analog = [], [], [], []
    for start in range(0, len(x), batch_size):
        r = run(net, quantize_input(x[start:start + batch_size], net.input_bits))
        classes.append(r.classes)
        spikes.append(r.spikes)
        synops.append(r.synaptic_ops)
        analog.append(r.analog_ops)
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
        "weight_bits": net.weight_bits,
        "membrane_bits": net.membrane_bits,
        "output_bits": net.output_bits,
    }


def sweep(ann: ANN, data: Dataset, codings: Sequence[str], timesteps: Iterable[int],
          config: ConversionConfig = ConversionConfig(output_bits=None),
          progress: Callable[[str, int], None] | None = None) -> list[dict]:
    """Convert and evaluate ``ann`` for every (coding, T). Host-side study: the output integrators
    get the width each T needs; a T that needs more than the golden model's 62 bits gives an entry
    with ``"skipped"`` (the reason) instead of results."""
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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    colors = {"css": "tab:blue", "rate": "tab:orange"}
    for coding in dict.fromkeys(r["coding"] for r in results):
        rows = [r for r in results if r["coding"] == coding and "skipped" not in r]
        if not rows:
            continue
        t = [r["timesteps"] for r in rows]
        c = colors.get(coding)
        ax1.plot(t, [100 * r["agreement"] for r in rows], "o-", color=c, label=f"{coding}: agreement with ANN")
        ax1.plot(t, [100 * r["snn_accuracy"] for r in rows], "s--", color=c, alpha=0.6, label=f"{coding}: accuracy")
        ax2.plot(t, [r["synaptic_ops_per_sample"] for r in rows], "o-", color=c, label=coding)
    ann_acc = next((r["ann_accuracy"] for r in results if "ann_accuracy" in r), None)
    if ann_acc is not None:
        ax1.axhline(100 * ann_acc, color="gray", lw=0.8, ls=":", label="ANN accuracy")
    for ax in (ax1, ax2):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("time steps T")
        ax.grid(True, which="both", alpha=0.3)
    ax1.set_ylabel("%")
    ax1.set_ylim(85, 100.5)  # points below 85% fall off the chart: the interesting region is near 100%
    ax1.set_title("(values below 85% not shown)", fontsize=8, loc="left")
    ax1.legend(fontsize=8, loc="lower right")
    ax2.set_yscale("log")
    ax2.set_ylabel("synaptic operations per sample")
    ax2.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
