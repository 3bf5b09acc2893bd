"""The whole accelerator as a host sees it: :class:`~cssnn.hw.accelerator.AcceleratorGateware` behind a
:class:`~cssnn.hw.link.HostLink`, talking the protocol of docs/PROTOCOL.md over a byte stream.

Boards put a UART in front of ``rx``/``tx``; simulators push bytes into the streams directly (the
same frames, without the bit-serial line), so every transport exercises the real protocol
gateware. The router's debug ``tap`` is drained and dropped here (ready tied high), so a route
table that selects it can never stall a run; tests that read the tap use the AcceleratorGateware directly.
"""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from cssnn.hw.accelerator import AcceleratorGateware
from cssnn.hw.link import HostLink
from cssnn.hw.memmap import AccelParams

__all__ = ["System"]


class System(wiring.Component):
    """Ports: ``rx`` (bytes in), ``tx`` (bytes out), ``busy`` (an inference is running).
    ``table_ram`` goes to the :class:`~cssnn.hw.accelerator.AcceleratorGateware`, the other keywords to
    the host link."""

    def __init__(self, ap: AccelParams, *, table_ram: str | None = None, **link_kwargs):
        if not isinstance(ap, AccelParams):
            raise TypeError(f"ap must be an AccelParams, not {ap!r}")
        self.ap = ap
        self.accelerator = AcceleratorGateware(ap, table_ram=table_ram)
        self.link = HostLink(ap, **link_kwargs)
        super().__init__({"rx": In(stream.Signature(8)), "tx": Out(stream.Signature(8)), "busy": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.accelerator = acc = self.accelerator
        m.submodules.link = link = self.link
        wiring.connect(m, link.bus, acc.bus)
        wiring.connect(m, wiring.flipped(self.rx), link.rx)
        wiring.connect(m, link.tx, wiring.flipped(self.tx))
        m.d.comb += self.busy.eq(acc.bus.busy)
        m.d.comb += acc.tap.ready.eq(1)
        return m
