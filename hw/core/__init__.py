"""The cssnn core (see docs/HARDWARE.md): :class:`Core` and the components it wires together.

``from cssnn.hw.core import Core, host_signature, COUNTERS`` is the public
interface; the components live in the modules of this package.
"""

from cssnn.hw.core.core import COUNTERS, Core, host_signature

__all__ = ["Core", "host_signature", "COUNTERS"]
