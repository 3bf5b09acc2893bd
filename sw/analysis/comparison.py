"""Side by side on one trained ANN: CSS coding (cssnn), cssnn's own rate baseline and SpikingJelly's
rate-coded ``ann2snn``, over a list of T (``cssnn compare``).

Every run reports accuracy, agreement with the ANN, the time steps an inference takes (CSS adds its
pipeline latency, one step per layer; the rate networks integrate all layers in the same step),
synaptic operations per sample (one per spike per existing synapse) and wall-clock seconds per
sample on this machine. ``steps_to_agreement`` gives, for each tool and coding, the fewest steps
among the T tried at which the agreement first reaches 99.5% and 100%.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from cssnn.sw.analysis import spikingjelly_rate
from cssnn.sw.analysis.evaluate import plot_series, sweep
from cssnn.sw.frontends.convert import ConversionConfig
from cssnn.sw.frontends.datasets import Dataset
from cssnn.sw.spec.ann import ANN

__all__ = ["DEFAULT_TIMESTEPS", "LEVELS", "SERIES", "compare", "compare_table", "plot_compare", "steps_to_agreement",
           "steps_cell", "steps_table"]

DEFAULT_TIMESTEPS = (1, 2, 4, 6, 8, 16, 32, 64, 128, 256)
#: Agreement levels of ``steps_to_agreement``.
LEVELS = (0.995, 1.0)
#: (tool, coding) of the three series, in the order they are listed and drawn.
SERIES = (("cssnn", "css"), ("cssnn", "rate"), ("spikingjelly", "rate"))


def compare(ann: ANN, data: Dataset, timesteps: Sequence[int] = DEFAULT_TIMESTEPS,
            config: ConversionConfig | None = None, *, spikingjelly: bool = True,
            progress: Callable[[str], None] | None = None) -> dict:
    """Run the three conversions; ``spikingjelly=False`` (or SpikingJelly not installed) leaves that
    one out and says why in ``skipped_tools``."""
    ts = sorted(set(int(t) for t in timesteps))
    runs, skipped = [], []
    results = sweep(ann, data, ("css", "rate"), ts, config,
                    progress and (lambda coding, t: progress(f"cssnn {coding} T={t}")))
    for r in results:
        if "skipped" in r:
            skipped.append({"tool": "cssnn", "coding": r["coding"], "timesteps": r["timesteps"], "reason": r["skipped"]})
            continue
        runs.append({"tool": "cssnn", "coding": r["coding"], "timesteps": r["timesteps"], "steps": r["total_steps"],
                     "accuracy": r["snn_accuracy"], "agreement": r["agreement"],
                     "synaptic_ops_per_sample": r["synaptic_ops_per_sample"],
                     "analog_ops_per_sample": r["analog_ops_per_sample"], "spikes_per_layer": r["spikes_per_layer"],
                     "wall_seconds_per_sample": r["wall_seconds_per_sample"]})
    payload = {"dataset": data.name, "samples": int(len(data.x_test)), "timesteps": ts,
               "ann_accuracy": float((ann.predict(data.x_test) == data.y_test).mean())}
    reason = spikingjelly_rate.available() if spikingjelly else "left out (--no-spikingjelly)"
    if reason is None:
        try:
            sj_runs, settings = spikingjelly_rate.run_spikingjelly(
                ann, data, ts, progress=progress and (lambda s: progress(f"spikingjelly {s}")))
        except spikingjelly_rate.NotConverted as e:
            reason = str(e)
        else:
            runs += sj_runs
            payload["spikingjelly"] = {"version": spikingjelly_rate.VERSION, "settings": settings}
    skipped_tools = [] if reason is None else [{"tool": "spikingjelly", "reason": reason}]
    payload.update(runs=runs, steps_to_agreement=steps_to_agreement(runs), skipped=skipped,
                   skipped_tools=skipped_tools)
    return payload


def steps_to_agreement(runs: list[dict]) -> list[dict]:
    """For each (tool, coding) and level: the run with the fewest steps whose agreement reaches the
    level (its ``timesteps`` and ``steps``; both None when no T tried reaches it)."""
    out = []
    for tool, coding in SERIES:
        rows = sorted((r for r in runs if (r["tool"], r["coding"]) == (tool, coding)), key=lambda r: r["steps"])
        if not rows:
            continue
        for level in LEVELS:
            hit = next((r for r in rows if r["agreement"] >= level), None)
            out.append({"tool": tool, "coding": coding, "level": level,
                        "timesteps": hit and hit["timesteps"], "steps": hit and hit["steps"]})
    return out


def compare_table(result: dict) -> str:
    """The text form of :func:`compare`'s result: runs, then steps to agreement, then what was left out."""
    head = (f"{'tool':12} {'coding':6} {'T':>4} {'steps':>5} {'accuracy':>8} {'agreement':>9} {'synops/sample':>13} "
            f"{'analog MACs':>11} {'us/sample':>9}")
    lines = [head, "-" * len(head)]
    for r in result["runs"]:
        lines.append(f"{r['tool']:12} {r['coding']:6} {r['timesteps']:>4} {r['steps']:>5} {r['accuracy']:>8.2%} "
                     f"{r['agreement']:>9.2%} {r['synaptic_ops_per_sample']:>13,.0f} {r['analog_ops_per_sample']:>11,.0f} "
                     f"{1e6 * r['wall_seconds_per_sample']:>9.1f}")
    lines += ["", f"ANN accuracy {result['ann_accuracy']:.2%} on {result['samples']} test samples of {result['dataset']}",
              "", steps_table(result["steps_to_agreement"])]
    if result["skipped"]:
        ts = ", ".join(f"{s['coding']} T={s['timesteps']}" for s in result["skipped"])
        lines.append(f"not run: cssnn {ts} (the logits would need more than 62 bits)")
    for s in result["skipped_tools"]:
        lines.append(f"not run: {s['tool']}: {s['reason']}")
    return "\n".join(lines)


def steps_table(rows: list[dict]) -> str:
    """Steps to agreement as a text table (the report prints it as Markdown)."""
    head = f"{'tool':12} {'coding':6} " + " ".join(f"{f'steps to {l:.1%}':>16}" for l in LEVELS)
    lines = [head, "-" * len(head)]
    for tool, coding in SERIES:
        mine = {r["level"]: r for r in rows if (r["tool"], r["coding"]) == (tool, coding)}
        if mine:
            lines.append(f"{tool:12} {coding:6} " + " ".join(f"{steps_cell(mine[l]):>16}" for l in LEVELS))
    return "\n".join(lines)


def steps_cell(r: dict) -> str:
    """One entry of ``steps_to_agreement`` as a table cell: its steps (and T), or "not reached"."""
    return "not reached" if r["steps"] is None else f"{r['steps']} (T={r['timesteps']})"


def plot_compare(result: dict, path) -> None:
    """Agreement, accuracy and synaptic operations against T for every series."""
    series = {f"{tool} {coding}": [r for r in result["runs"] if (r["tool"], r["coding"]) == (tool, coding)]
              for tool, coding in SERIES}
    plot_series(series, path, title=f"{result['dataset']}: CSS vs rate coding (cssnn and SpikingJelly)",
                ann_accuracy=result["ann_accuracy"])
