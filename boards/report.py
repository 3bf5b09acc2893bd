"""Reading the place-and-route and synthesis reports.

- :func:`parse_report`: nextpnr's ``--report`` JSON -> post-route Fmax per clock, utilisation
  (resource -> used/available) and the critical paths, each summarised (start and end cells, delay
  split into logic and routing, logic levels, and the HDL source lines its nets come from, which
  name the path in the design).
- :func:`parse_yosys_stat`: ``stat -json`` after synthesis -> cell counts, for the fit check that
  runs before place-and-route.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

__all__ = ["parse_report", "parse_yosys_stat", "summarize_path", "ReportError", "SYSTEM_CLOCK", "MAIN_RESOURCES"]

#: Name of the system clock domain in the board top (its net is ``cd_sync.clk`` or ``$glbnet$cd_sync.clk``).
SYSTEM_CLOCK = "sync"


#: The resources a build's summary shows (logic cells, flip-flops, RAM blocks), where the device has them.
MAIN_RESOURCES = ("ICESTORM_LC", "ICESTORM_RAM", "ICESTORM_SPRAM", "TRELLIS_COMB", "TRELLIS_FF", "DP16KD", "TRELLIS_RAMW")


class ReportError(ValueError):
    """A report is missing or malformed."""


def _load(report) -> dict:
    if isinstance(report, dict):
        return report
    path = Path(report)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ReportError(f"no nextpnr report at {path}") from None
    except json.JSONDecodeError as e:
        raise ReportError(f"{path} is not a JSON report: {e}") from None


def _clock_name(net: str) -> str:
    """``$glbnet$cd_sync.clk`` or ``posedge cd_sync.clk`` -> ``cd_sync.clk``."""
    net = re.sub(r"^(posedge|negedge)\s+", "", net or "")
    return net.split("$")[-1] if net.startswith("$") else net


def _pick_clock(fmax: dict, clock: str | None) -> str | None:
    if not fmax:
        return None
    if clock is None:
        clock = SYSTEM_CLOCK
    want = re.compile(rf"(^|[.$_]){re.escape(clock)}([.$]|$)")
    for name in fmax:
        if _clock_name(name) in (clock, f"cd_{clock}.clk") or want.search(_clock_name(name)):
            return name
    return min(fmax, key=lambda n: fmax[n]["achieved"]) if len(fmax) > 1 else next(iter(fmax))


def summarize_path(path: dict) -> dict:
    """One critical path from the report: clocks, total/logic/routing delay (ns), logic levels,
    start and end cells, the nets it crosses and the HDL source lines of those nets."""
    segs = path.get("path", [])
    total = sum(float(s.get("delay", 0.0)) for s in segs)
    logic = sum(float(s.get("delay", 0.0)) for s in segs if s.get("type") in ("logic", "clk-to-q", "setup"))
    routing = sum(float(s.get("delay", 0.0)) for s in segs if s.get("type") == "routing")
    nets, sources = [], []
    for s in segs:
        if s.get("type") == "routing" and s.get("net"):
            nets.append(s["net"])
            for src in s.get("sources", []) or []:
                src = _short_source(src)
                if src and src not in sources:
                    sources.append(src)
    start = segs[0]["from"]["cell"] if segs else None
    end = segs[-1]["to"]["cell"] if segs else None
    return {
        "from": _clock_name(path.get("from", "")), "to": _clock_name(path.get("to", "")),
        "delay_ns": round(total, 3), "logic_ns": round(logic, 3), "routing_ns": round(routing, 3),
        "logic_levels": sum(1 for s in segs if s.get("type") == "logic"),
        "start": start, "end": end, "nets": nets, "sources": sources,
    }


def _short_source(src: str) -> str:
    """``/long/path/cssnn/hw/core/core.py:123`` -> ``hw/core/core.py:123`` (project files), else the file name."""
    src = src.strip()
    if not src:
        return ""
    m = re.search(r"(?:^|/)((?:hw|boards|sim|sw|verif|bench)/(?:[^/]+/)*[^/]+\.py:\d+)", src)
    if m:
        return m.group(1)
    if "/share/" in src:  # yosys techmap cells: not a design location
        return ""
    return Path(src.split(":")[0]).name + (":" + src.split(":")[1] if ":" in src else "")


def parse_report(report, *, clock: str | None = None) -> dict:
    """Parse a nextpnr ``--report`` JSON (a path or the loaded dict).

    Returns ``fmax_mhz`` (post-route Fmax of the system clock, ``clock`` or the domain named
    :data:`SYSTEM_CLOCK`; the slowest clock if neither is found), ``constraint_mhz`` (its target),
    ``timing_met``, ``clock`` (its net), ``fmax`` (every clock: ``{achieved, constraint}`` in MHz),
    ``utilization`` (``{resource: {used, available}}``) and ``critical_paths`` (:func:`summarize_path`
    of each; ``critical_path`` is the system clock's)."""
    rep = _load(report)
    if not isinstance(rep, dict) or "utilization" not in rep:
        raise ReportError("not a nextpnr report: it has no 'utilization' section")
    fmax = {}
    for name, v in (rep.get("fmax") or {}).items():
        try:
            fmax[name] = {"achieved": float(v["achieved"]), "constraint": float(v["constraint"])}
        except (KeyError, TypeError, ValueError):
            raise ReportError(f"malformed fmax entry for clock {name!r}: {v!r}") from None
    util = {}
    for name, v in rep["utilization"].items():
        try:
            util[name] = {"used": int(v["used"]), "available": int(v["available"])}
        except (KeyError, TypeError, ValueError):
            raise ReportError(f"malformed utilization entry {name!r}: {v!r}") from None
    paths = [summarize_path(p) for p in rep.get("critical_paths") or []]
    sys_clk = _pick_clock(fmax, clock)
    out = {
        "clock": _clock_name(sys_clk) if sys_clk else None,
        "fmax_mhz": round(fmax[sys_clk]["achieved"], 2) if sys_clk else None,
        "constraint_mhz": round(fmax[sys_clk]["constraint"], 2) if sys_clk else None,
        "timing_met": bool(fmax[sys_clk]["achieved"] >= fmax[sys_clk]["constraint"]) if sys_clk else None,
        "fmax": {_clock_name(k): v for k, v in fmax.items()},
        "utilization": util,
        "critical_paths": paths,
        "critical_path": None,
    }
    if sys_clk:
        name = _clock_name(sys_clk)
        own = [p for p in paths if p["from"] == name and p["to"] == name]
        out["critical_path"] = max(own, key=lambda p: p["delay_ns"]) if own else None
    return out


def parse_yosys_stat(stat) -> dict[str, int]:
    """Cell counts of the top module from yosys ``stat -json`` output (path, text or dict)."""
    if isinstance(stat, (str, Path)) and Path(stat).exists():
        stat = Path(stat).read_text()
    if isinstance(stat, str):
        try:
            stat = json.loads(stat[stat.index("{"):])
        except (ValueError, json.JSONDecodeError) as e:
            raise ReportError(f"not a yosys stat -json output: {e}") from None
    mods = stat.get("modules") or {}
    design = stat.get("design") or {}
    cells = design.get("num_cells_by_type")
    if cells is None:
        if not mods:
            raise ReportError("yosys stat output names no module")
        cells = {}
        for m in mods.values():
            for k, v in (m.get("num_cells_by_type") or {}).items():
                cells[k] = cells.get(k, 0) + int(v)
    return {k: int(v) for k, v in cells.items()}
