"""Programming a board: optional and separate from building.

The bitstream is built from PyPI tools only; loading it onto a board needs the board's programmer
(``iceprog`` for the iCEBreaker, ``openFPGALoader`` for the ULX3S), which is not on PyPI as a
YoWASP tool. :func:`program` uses it if it is installed (or named by the board's environment
variable, ``ICEPROG`` / ``OPENFPGALOADER``) and otherwise raises :class:`ProgrammerMissing` saying
what to install and where the bitstream is. Programming loads SRAM (volatile) through the
amaranth-boards platform's own command.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from cssnn.boards.targets import get_board

__all__ = ["ProgrammerMissing", "ProgramError", "programmer_path", "program"]


class ProgrammerMissing(RuntimeError):
    """The board's programmer is not installed."""


class ProgramError(RuntimeError):
    """The programmer ran and failed."""


def programmer_path(board) -> str | None:
    """Full path of the board's programmer, or None if it is not installed."""
    board = get_board(board)
    tool = os.environ.get(board.programmer_env) or board.programmer
    return shutil.which(tool)


def program(board, build_dir, name: str = "cssnn") -> str:
    """Load the bitstream ``build_dir/name.{bin,bit}`` onto ``board``; return the programmer used."""
    from amaranth.build.run import LocalBuildProducts

    board = get_board(board)
    build_dir = Path(build_dir)
    ext = "bin" if board.family == "ice40" else "bit"
    bitstream = build_dir / f"{name}.{ext}"
    if not bitstream.exists():
        raise FileNotFoundError(f"no bitstream at {bitstream}: build it first")
    tool = programmer_path(board)
    if tool is None:
        wanted = os.environ.get(board.programmer_env) or board.programmer
        raise ProgrammerMissing(
            f"cannot program the {board.name}: its programmer {wanted!r} is not installed (install it, e.g. from "
            f"your distribution or the OSS CAD Suite, or set {board.programmer_env} to its path); the bitstream is "
            f"{bitstream}")
    env_before = os.environ.get(board.programmer_env)
    os.environ[board.programmer_env] = tool
    try:
        board.platform().toolchain_program(LocalBuildProducts(str(build_dir)), name)
    except subprocess.CalledProcessError as e:
        raise ProgramError(f"{Path(tool).name} failed (exit code {e.returncode}): is the {board.name} connected?") from None
    finally:
        if env_before is None:
            del os.environ[board.programmer_env]
        else:
            os.environ[board.programmer_env] = env_before
    return tool
