"""The ``cssnn`` command line: one program, one subcommand per job.

Each area registers its own subcommands (conventions in :mod:`cssnn.command`):

=============================  =========================================
``cssnn.sw.frontends.commands``  train, convert, info
``cssnn.sw.analysis.commands``   eval, sweep, compare
``cssnn.sim.commands``           sim, infer
``cssnn.boards.commands``        build, selftest, board-sim
``cssnn.bench.commands``         report
=============================  =========================================
"""

from __future__ import annotations

import argparse
import sys
import warnings

from amaranth.hdl import UnusedElaboratable

from cssnn import __version__
from cssnn.bench import commands as bench_commands
from cssnn.boards import commands as board_commands
from cssnn.command import CLIError
from cssnn.extras import MissingExtra
from cssnn.sim import commands as sim_commands
from cssnn.sw.analysis import commands as analysis_commands
from cssnn.sw.frontends import commands as frontend_commands
from cssnn.sw.frontends.datasets import DatasetError
from cssnn.sw.host.accelerator import DeviceReset
from cssnn.sw.host.protocol import LinkError, ProtocolError
from cssnn.sw.spec.ann import ANNError
from cssnn.sw.spec.network import NetworkError

__all__ = ["main", "build_parser"]

#: In the order ``cssnn --help`` lists them.
AREAS = (frontend_commands, analysis_commands, sim_commands, board_commands, bench_commands)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cssnn", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"cssnn {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for area in AREAS:
        area.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    # A component whose constructor rejected its parameters was never elaborated, by design.
    warnings.filterwarnings("ignore", category=UnusedElaboratable)
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.argv = argv  # the command line as typed: JSON payloads record it (cssnn.command.command_line)
    try:
        args.func(args)
    except BrokenPipeError:  # e.g. piped into `head`
        sys.stderr.close()
        return 0
    except (CLIError, MissingExtra, ANNError, DatasetError, NetworkError, ValueError, OSError,
            LinkError, ProtocolError, DeviceReset) as e:   # a board that does not answer, or not as a cssnn board
        print(f"cssnn {args.command}: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
