"""The board subcommands of the ``cssnn`` command line: ``build``, ``selftest`` and ``board-sim``.

``cssnn.cli`` calls :func:`register` with its subparsers. Conventions (:mod:`cssnn.command`):
``--json`` prints one JSON document on stdout and nothing else there; progress goes to stderr;
errors are one line naming the problem (``cssnn build: error: ...``) and exit code 2. ``board-sim``
serves until it is stopped, so it prints two lines (its port when it is ready, its report when it
stops), each one JSON object with ``--json``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from cssnn.boards.report import MAIN_RESOURCES
from cssnn.boards.targets import BOARDS
from cssnn.boards.top import DEFAULT_BAUD
from cssnn.command import CLIError, add_command, command_line, emit, one_line
from cssnn.hw.memmap import ORDERS
from cssnn.hw.params import WALKS

__all__ = ["register", "cmd_build", "cmd_selftest", "cmd_board_sim"]


def _progress(args):
    if getattr(args, "quiet", False):
        return None

    def say(msg: str) -> None:
        print(f"cssnn build: {msg}", file=sys.stderr, flush=True)

    return say


def _build_text(r: dict) -> str:
    util = r["utilization"]
    main = [k for k in MAIN_RESOURCES if k in util]
    lines = [f"bitstream: {r['bitstream']}",
             f"board {r['board']} ({r['device']}), {r['params']['core']['lanes']} lanes, synapses in "
             f"{'SPRAM' if r['params']['core']['synapse_ram'] == 'spram' else 'block RAM'}",
             f"clock {r['clock_mhz']:g} MHz, post-route Fmax {r['fmax_mhz']:.1f} MHz"
             + ("" if r["timing_met"] else "  ** TIMING NOT MET: the design may misbehave at this clock **"),
             "utilization: " + ", ".join(f"{k} {util[k]['used']}/{util[k]['available']} "
                                         f"({util[k]['used'] / util[k]['available']:.0%})" for k in main)]
    cp = r.get("critical_path")
    if cp:
        lines.append(f"critical path: {cp['delay_ns']:.1f} ns, {cp['logic_levels']} logic levels, through "
                     + (", ".join(cp["sources"][:6]) or cp["start"]))
    if "latency_us_per_inference" in r:
        lines.append(f"latency: {r['cycles_per_inference']:.0f} cycles per inference (median of {len(r['cycles'])}, "
                     f"max {r['cycles_per_inference_max']}) = {r['latency_us_per_inference']:.1f} us at "
                     f"{r['clock_mhz']:g} MHz ({r['latency_us_at_fmax']:.1f} us at Fmax); simulated results "
                     f"{'match' if r['bit_exact'] else 'DIFFER FROM'} the golden model")
    if r.get("programmed"):
        lines.append(f"programmed with {r['programmer']}")
    return "\n".join(lines)


def cmd_build(args) -> None:
    from cssnn.boards.build import BuildError, build
    from cssnn.boards.program import ProgramError, ProgrammerMissing
    from cssnn.boards.sanity import SANITY_LANES, tiny_network
    from cssnn.sw.spec.network import load_network

    if args.sanity:
        if args.network is not None:
            raise one_line("give either a network or --sanity, not both")
        net = tiny_network()
        lanes = args.lanes or SANITY_LANES
    else:
        if args.network is None:
            raise one_line("a network file is required (or --sanity for the self-test bitstream)")
        net = load_network(args.network)
        lanes = args.lanes
    if args.samples < 0:
        raise one_line(f"--samples must be at least 0, not {args.samples}")
    if args.learning is not None and args.learning < 1:
        raise one_line(f"--learning must be at least 1 neuron, not {args.learning}")
    try:
        r = build(net, args.board, args.out, freq_mhz=args.freq, lanes=lanes, baud=args.baud, seed=args.seed,
                  samples=args.samples, dataset=args.dataset, latency_backend=args.sim_backend,
                  learning=args.learning, order=args.order, walk=args.walk, progress=_progress(args))
    except BuildError as e:
        raise one_line(str(e)) from None
    r["command"] = command_line(args)
    if not r["timing_met"]:
        print(f"cssnn build: warning: timing not met: Fmax {r['fmax_mhz']:.1f} MHz < clock {r['clock_mhz']:g} MHz "
              f"(try --freq {int(r['fmax_mhz'])})", file=sys.stderr)
    error = None
    if args.program:  # a separate step: the bitstream and its report stand even if it fails
        from cssnn.boards.build import NAME
        from cssnn.boards.program import program

        try:
            r["programmer"] = program(args.board, Path(r["bitstream"]).parent, NAME)
            r["programmed"] = True
        except (ProgrammerMissing, ProgramError, OSError) as e:
            r["program_error"] = error = str(e)
    emit(args, r, _build_text(r))
    if error:
        raise one_line(error)


def cmd_selftest(args) -> None:
    from cssnn.boards.sanity import selftest
    from cssnn.sw.host.protocol import LinkError, ProtocolError, SerialTransport
    from cssnn.sw.mapping.requirements import DoesNotFit

    try:
        transport = SerialTransport(args.port, baudrate=args.baud, timeout=args.timeout)
    except ImportError as e:
        raise one_line(str(e)) from None
    try:
        r = selftest(transport, samples=args.samples)
    except (ProtocolError, LinkError, DoesNotFit, RuntimeError) as e:
        raise one_line(f"{args.port}: {e}") from None
    finally:
        transport.close()
    ident = r["identity"]
    text = (f"{'PASS' if r['ok'] else 'FAIL'}: {args.port} answers (echo {'ok' if r['echo'] else 'WRONG'}); "
            f"accelerator with {ident['lanes']} lanes, {ident['neurons']} neurons, {ident['synapse_rows']} synapse rows "
            f"({ident['synapse_ram']}); tiny network: {r['samples'] - len(r['mismatches'])}/{r['samples']} answers "
            f"match the golden model, {min(r['cycles'])}-{max(r['cycles'])} cycles each; {r['seconds']:.2f} s")
    emit(args, r, text)
    if not r["ok"]:
        raise SystemExit(1)


def _board_sim_text(board, final: dict) -> str:
    leds = "; ".join(f"{led['name']} ({led['role'] or 'unused'}) {'on' if led['on'] else 'off'}, {led['toggles']} toggles"
                     for led in final["leds"])
    return (f"simulated {final['cycles']:,} cycles = {final['seconds']:.4f} s of {board} time; {final['rx_bytes']:,} "
            f"bytes in, {final['tx_bytes']:,} bytes out\nLEDs: {leds}")


def cmd_board_sim(args) -> None:
    import json
    import signal
    import threading

    from cssnn.boards.virtual import VirtualBoard
    from cssnn.sw.spec.network import load_network

    def say(msg: str) -> None:
        print(f"cssnn board-sim: {msg}", file=sys.stderr, flush=True)

    net = load_network(args.network)
    try:
        vb = VirtualBoard(net, args.board, baud=args.baud, progress=say)
    except (ValueError, RuntimeError) as e:   # does not fit, a baud rate the clock cannot make, a failed build
        raise one_line(str(e)) from None
    stop = threading.Event()
    handlers = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        ready = {"port": vb.port, "board": vb.board.name, "clock_hz": vb.clk_hz, "baud": vb.baud,
                 "divisor": vb.divisor, "idle_cycles": vb.idle_cycles}
        print(json.dumps(ready) if args.json else vb.port, flush=True)   # one line each, even with --json
        say(f"virtual {vb.board.name} at {vb.clk_hz / 1e6:g} MHz, {vb.baud} baud ({vb.divisor} clocks per bit) on "
            f"{vb.port}; Ctrl-C stops it")
        while vb.running and not stop.wait(0.2):
            pass
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        final = vb.close()
    if final is None:
        raise CLIError(f"the simulated board stopped by itself (exit code {vb.proc.returncode})")
    print(json.dumps(dict(final, clock_hz=vb.clk_hz)) if args.json else _board_sim_text(vb.board.name, final),
          flush=True)


def register(subparsers) -> None:
    """Add ``build``, ``selftest`` and ``board-sim`` to the ``cssnn`` subcommands (``subparsers`` from
    ``argparse.ArgumentParser.add_subparsers``)."""
    def add(name, func, help_):
        return add_command(subparsers, name, func, help_)

    p = add("build", cmd_build, "build the bitstream for a network on an FPGA board (PyPI tools only), with "
                                "Fmax, utilisation and latency")
    p.add_argument("network", type=Path, nargs="?", help="converted network .npz")
    p.add_argument("--board", required=True, choices=list(BOARDS), help="target board")
    p.add_argument("--out", type=Path, default=None, help="build directory (default build/BOARD)")
    p.add_argument("--freq", type=float, default=None,
                   help="system clock in MHz (default: the board's, 30 for icebreaker, 100 for ulx3s-85f; "
                        "the PLL makes the highest frequency not above it)")
    p.add_argument("--lanes", type=int, default=None, help="neuron lanes (default: the most that fit)")
    p.add_argument("--order", choices=ORDERS, default=None,
                   help="evaluation order of the layer-steps (default: waves if they fit with those lanes, else chain; "
                        "docs/SEMANTICS.md section 4)")
    p.add_argument("--walk", choices=WALKS, default=None,
                   help="how a spike's synapse list is walked: rows (all lanes together) or lanes (each lane on its "
                        "own; default: lanes from 4 lanes on with block RAM where the network's lanes are uneven, "
                        "if it fits; docs/HARDWARE.md)")
    p.add_argument("--baud", type=int, default=DEFAULT_BAUD, help=f"UART baud rate (default {DEFAULT_BAUD})")
    p.add_argument("--seed", type=int, default=1, help="place-and-route seed (default 1)")
    p.add_argument("--samples", type=int, default=5,
                   help="inferences simulated for the latency (default 5; 0 skips the simulation)")
    p.add_argument("--dataset", default=None,
                   help="latency inputs: a dataset's test split (default digits for 64-input networks, else "
                        "random inputs)")
    p.add_argument("--sim-backend", choices=("auto", "amaranth", "verilator"), default="auto",
                   help="simulator for the latency (default auto: Amaranth for small networks, Verilator for large)")
    p.add_argument("--program", action="store_true",
                   help="program the board after building (needs its programmer: iceprog / openFPGALoader)")
    p.add_argument("--sanity", action="store_true",
                   help="build the small self-test bitstream (the tiny network of 'cssnn selftest') instead")
    p.add_argument("--learning", type=int, default=None, metavar="NEURONS",
                   help="add a learning engine (on-chip STDP, docs/LEARNING.md) of NEURONS neurons on the network's inputs")
    p.add_argument("--quiet", action="store_true", help="no progress messages on stderr")

    p = add("selftest", cmd_selftest, "check a programmed board over its UART in seconds: identify the "
                                      "bitstream, run a tiny network, compare with the golden model")
    p.add_argument("--port", required=True, help="serial port of the board, e.g. /dev/ttyUSB1 (iCEBreaker: the "
                                                 "second FTDI channel)")
    p.add_argument("--baud", type=int, default=DEFAULT_BAUD, help=f"UART baud rate of the bitstream (default {DEFAULT_BAUD})")
    p.add_argument("--samples", type=int, default=4, help="tiny-network inferences (default 4)")
    p.add_argument("--timeout", type=float, default=0.5, help="serial read timeout in seconds (default 0.5)")

    p = add("board-sim", cmd_board_sim, "simulate a board running a network's bitstream (cycle-accurate, Verilator) "
                                        "behind a pseudo-terminal: infer/selftest --port talk to it as to the board")
    p.add_argument("network", type=Path, help="converted network .npz (the accelerator is sized for it as by 'cssnn build')")
    p.add_argument("--board", required=True, choices=list(BOARDS), help="the board to simulate")
    p.add_argument("--baud", type=int, default=None,
                   help="UART baud rate (default: the board's default, as 'cssnn build'); a higher rate simulates "
                        "faster, as the simulation runs far slower than the board")
