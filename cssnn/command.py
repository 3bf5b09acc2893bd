"""What every ``cssnn`` subcommand shares: its error type, argument types, JSON-or-text output and
progress bars. Each area of the project defines its own subcommands in a ``commands`` module with a
``register(subparsers)`` function; :mod:`cssnn.cli` gathers them.

Conventions: every subcommand takes ``--json`` (one JSON document on stdout, nothing else there);
progress bars go to stderr and only when it is a terminal; errors print one line naming the problem
and exit 2, without writing any output file.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys

__all__ = ["CLIError", "add_command", "int_list", "str_list", "progress_bar", "emit", "one_line", "command_line"]


class CLIError(Exception):
    """A user error the CLI reports in one line."""


def one_line(msg: str) -> CLIError:
    """A :class:`CLIError` from the first line of a longer message."""
    msg = str(msg).strip()
    return CLIError(msg.splitlines()[0] if msg else "failed")


def add_command(subparsers, name: str, func, help_: str) -> argparse.ArgumentParser:
    """Add subcommand ``name`` (running ``func(args)``) with the common ``--json`` flag."""
    p = subparsers.add_parser(name, help=help_, description=help_)
    p.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    p.set_defaults(func=func)
    return p


def int_list(text: str) -> list[int]:
    """argparse type: comma-separated positive integers."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def str_list(text: str) -> list[str]:
    """argparse type: comma-separated words."""
    return [v.strip() for v in text.split(",") if v.strip()]


def progress_bar(total: int, desc: str):
    """A progress bar on stderr (silent unless stderr is a terminal)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, file=sys.stderr, disable=None, leave=False)


def command_line(args) -> str:
    """The ``cssnn`` command that produced ``args``, as a shell line (reports quote it to say how a
    figure is regenerated)."""
    return shlex.join(["cssnn", *getattr(args, "argv", [])])


def emit(args, payload, text: str) -> None:
    """Print ``payload`` as JSON with ``--json``, else ``text``."""
    if args.json:
        print(json.dumps(payload, indent=2))
    else:
        print(text)
