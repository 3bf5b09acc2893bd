"""The host link: the protocol of docs/PROTOCOL.md in gateware.

- :mod:`.wire`: the wire format (sync bytes, header and payload layouts, :class:`~.wire.Cmd`,
  :class:`~.wire.Status`, the identity block), shared with the host (:mod:`cssnn.sw.host.protocol`).
- :mod:`.crc`: CRC-16/CCITT-FALSE, one byte per clock.
- :mod:`.hostlink`: :class:`HostLink`, wiring the receiver (:mod:`.receive`), the executor
  (:mod:`.execute`) and the reply emitter (:mod:`.reply`) around shared units (:mod:`.shared`).
- :mod:`.uart`: an 8N1 UART with byte streams, the physical layer on boards.
"""

from cssnn.hw.link.hostlink import HostLink

__all__ = ["HostLink"]
