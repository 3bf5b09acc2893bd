"""``cssnn report``: one Markdown page, with its PNG figures, from the JSON the other commands print.

Inputs are the ``--json`` outputs of ``cssnn compare`` (accuracy and agreement against T, synaptic
operations, spikes per layer, steps to agreement), ``cssnn build`` (Fmax, resources, latency) and
``cssnn sim`` (cycles, bit-exactness). Each of them records the command that produced it, and the
report quotes it beside the figure or row it made, so every number can be regenerated. An ANN
given directly is compared first (the report then holds that comparison's JSON too).

Every input is read and checked before anything is written; the report is assembled in a scratch
folder and moved into place, so a failure leaves no half-written report.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from cssnn.boards.report import MAIN_RESOURCES
from cssnn.sw.analysis.comparison import LEVELS, SERIES, plot_compare, steps_cell
from cssnn.sw.spec.errors import InputError

__all__ = ["ReportInputError", "KINDS", "load_input", "write_report"]

REPORT = "report.md"


class ReportInputError(InputError):
    """An input the report cannot use: the message names the file and what is wrong."""


#: What each kind of input must hold (the keys the report reads), and the command that makes it.
KINDS = {
    "compare": (("ann_accuracy", "runs", "steps_to_agreement", "dataset", "samples"), "cssnn compare ANN --json"),
    "build": (("board", "device", "clock_mhz", "fmax_mhz", "timing_met", "utilization"), "cssnn build NET --json"),
    "sim": (("backend", "samples", "bit_exact", "cycles_per_inference", "ideal_cycles_per_inference"),
            "cssnn sim NET --json"),
}


def load_input(path: str | Path, kind: str) -> dict:
    """Read one JSON input of ``kind`` ("compare", "build" or "sim"), or raise :class:`ReportInputError`."""
    path = Path(path)
    keys, maker = KINDS[kind]
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ReportInputError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ReportInputError(f"{path}: not a JSON file ({str(e).splitlines()[0]})") from None
    missing = [k for k in keys if not isinstance(data, dict) or k not in data]
    if missing:
        raise ReportInputError(f"{path}: not the output of `{maker}` (it has no {', '.join(repr(k) for k in missing)})")
    return {**data, "_source": str(path)}


def write_report(out: str | Path, *, compares=(), builds=(), sims=(), command: str = "cssnn report") -> dict:
    """Write ``out/report.md`` and its files; returns the paths written."""
    out = Path(out)
    if not (compares or builds or sims):
        raise ReportInputError("nothing to report: give an ANN, or --compare, --build or --sim JSON files")
    if out.exists() and not out.is_dir():
        raise ReportInputError(f"{out} exists and is not a folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.") as scratch:
        scratch = Path(scratch)
        lines = ["# cssnn report", "", f"Written by `{command}`. Every figure and table below names the command that "
                 "regenerates it.", ""]
        files = []  # written besides report.md: figures, and the data of a comparison made here
        for i, c in enumerate(compares, start=1):
            lines += _compare_section(c, i, len(compares), scratch, files)
        if builds or sims:
            lines += ["## Hardware", ""]
        if builds:
            lines += _builds_section(builds)
        if sims:
            lines += _sims_section(sims)
        (scratch / REPORT).write_text("\n".join(lines).rstrip() + "\n")
        out.mkdir(exist_ok=True)
        written = []
        for f in [REPORT, *files]:
            shutil.move(scratch / f, out / f)
            written.append(str(out / f))
    return {"report": str(out / REPORT), "files": written}


def _compare_section(c: dict, i: int, n: int, scratch: Path, files: list) -> list[str]:
    suffix = f"-{i}" if n > 1 else ""
    agreement, spikes = f"agreement{suffix}.png", f"spikes{suffix}.png"
    plot_compare(c, scratch / agreement)
    _plot_spikes(c, scratch / spikes)
    files += [agreement, spikes]
    data = ""
    if c["_source"] == "--ann":   # compared for this report: its data goes with it
        name = f"compare{suffix}.json"
        (scratch / name).write_text(json.dumps({k: v for k, v in c.items() if k != "_source"}, indent=2))
        files.append(name)
        data = f" ([{name}]({name}))"
    cmd = c.get("command")
    where = f"`{cmd}`" if cmd else f"{c['_source']} (its command was not recorded)"
    lines = [f"## {c['dataset']}: CSS against rate coding" + (f" ({i})" if n > 1 else ""), "",
             f"The ANN scores {c['ann_accuracy']:.2%} on {c['samples']} test samples. Data: {where}{data}.", "",
             "### Accuracy, agreement with the ANN and synaptic operations against T", "",
             f"![agreement and synaptic operations against T]({agreement})", "",
             (f"Figure: `{_with_plot(cmd, agreement)}`." if cmd else "Figure: drawn by `cssnn report`."), "",
             "| tool | coding | T | steps | accuracy | agreement | synaptic ops / sample | analog MACs / sample |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in c["runs"]:
        lines.append(f"| {r['tool']} | {r['coding']} | {r['timesteps']} | {r['steps']} | {r['accuracy']:.2%} | "
                     f"{r['agreement']:.2%} | {r['synaptic_ops_per_sample']:,.0f} | "
                     f"{r.get('analog_ops_per_sample', 0):,.0f} |")
    for s in c.get("skipped", []):
        lines.append(f"| {s['tool']} | {s['coding']} | {s['timesteps']} | | not run: the logits would need more "
                     "than 62 bits | | | |")
    lines += ["", "### Steps to agreement", "",
              "The fewest time steps per inference (latency included) among the T tried at which the agreement "
              "with the ANN reaches each level.", "",
              "| tool | coding | " + " | ".join(f"steps to {l:.1%}" for l in LEVELS) + " |",
              "|---|---|" + "---:|" * len(LEVELS)]
    for tool, coding in SERIES:
        mine = {r["level"]: r for r in c["steps_to_agreement"] if (r["tool"], r["coding"]) == (tool, coding)}
        if mine:
            lines.append(f"| {tool} | {coding} | " + " | ".join(steps_cell(mine[l]) for l in LEVELS) + " |")
    for s in c.get("skipped_tools", []):
        lines += ["", f"Not run: {s['tool']}: {s['reason']}"]
    if "spikingjelly" in c:
        lines += ["", f"SpikingJelly {c['spikingjelly']['version']} was given each of its settings "
                  f"({len(c['spikingjelly']['settings'])} tried); every row shows the best one at that T."]
    lines += ["", "### Spikes per layer", "", f"![spikes per layer]({spikes})", "",
              "Each series at its operating point, the smallest T reaching 99.5% agreement (its largest T if none "
              "does); drawn by `cssnn report` from the same data.", ""]
    return lines


def _with_plot(cmd: str, png: str) -> str:
    """The compare command that draws ``png`` (its ``--json`` dropped, ``--plot`` added unless there)."""
    return cmd if "--plot" in cmd else cmd.replace(" --json", "") + f" --plot {png}"


def operating_points(c: dict) -> dict[str, dict]:
    """Per series, the run at the smallest T reaching 99.5% agreement (else its largest T)."""
    points = {}
    for tool, coding in SERIES:
        rows = sorted((r for r in c["runs"] if (r["tool"], r["coding"]) == (tool, coding)), key=lambda r: r["timesteps"])
        if rows:
            points[f"{tool} {coding}"] = next((r for r in rows if r["agreement"] >= LEVELS[0]), rows[-1])
    return points


def _plot_spikes(c: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cssnn.sw.analysis.evaluate import COLORS

    points = operating_points(c)
    fig, ax = plt.subplots(figsize=(7, 3.8))
    width = 0.8 / max(1, len(points))
    n = 0
    for k, (label, r) in enumerate(points.items()):
        # CSS counts the input encoder as its layer 0; the rate networks start at the first hidden layer.
        first = 0 if r["coding"] == "css" else 1
        xs = [first + j + (k - (len(points) - 1) / 2) * width for j in range(len(r["spikes_per_layer"]))]
        ax.bar(xs, r["spikes_per_layer"], width, color=COLORS.get(label), label=f"{label}, T={r['timesteps']}")
        n = max(n, first + len(r["spikes_per_layer"]))
    ax.set_xticks(range(n), ["input encoder"] + [f"hidden layer {j}" for j in range(1, n)])
    ax.set_ylabel("spikes per sample")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _builds_section(builds) -> list[str]:
    lines = ["### Bitstreams", "", "| board | device | clock | Fmax | resources | cycles / inference | latency | "
             "bit-exact | command |", "|---|---|---:|---:|---|---:|---:|---|---|"]
    for b in builds:
        util = b["utilization"]
        res = ", ".join(f"{k} {util[k]['used']:,}/{util[k]['available']:,}" for k in MAIN_RESOURCES if k in util)
        timing = "" if b["timing_met"] else " (timing not met)"
        cycles = f"{b['cycles_per_inference']:,.0f}" if "cycles_per_inference" in b else "-"
        latency = f"{b['latency_us_per_inference']:.1f} us" if "latency_us_per_inference" in b else "-"
        exact = {True: "yes", False: "NO"}.get(b.get("bit_exact"), "-")
        lines.append(f"| {b['board']} | {b['device']} | {b['clock_mhz']:g} MHz | {b['fmax_mhz']:.1f} MHz{timing} | "
                     f"{res} | {cycles} | {latency} | {exact} | {_cmd(b)} |")
    return lines + [""]


def _sims_section(sims) -> list[str]:
    lines = ["### Cycle-accurate simulation", "", "| backend | samples | bit-exact | cycles / inference | ideal | "
             "ratio | synaptic ops / inference | accuracy | command |", "|---|---:|---|---:|---:|---:|---:|---:|---|"]
    for s in sims:
        ratio = s["cycles_per_inference"] / s["ideal_cycles_per_inference"] if s["ideal_cycles_per_inference"] else 0
        lines.append(f"| {s['backend']} | {s['samples']} | {'yes' if s['bit_exact'] else 'NO'} | "
                     f"{s['cycles_per_inference']:,.0f} | {s['ideal_cycles_per_inference']:,.0f} | {ratio:.2f} | "
                     f"{s.get('synaptic_ops_per_inference', 0):,.0f} | {s.get('accuracy', 0):.2%} | {_cmd(s)} |")
    return lines + [""]


def _cmd(d: dict) -> str:
    return f"`{d['command']}`" if d.get("command") else f"(not recorded; from {d['_source']})"
