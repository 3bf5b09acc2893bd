"""A gateware model of the accelerator's bus, for simulating the host link without the accelerator.

- :class:`BusModel`: an Amaranth component implementing :func:`~cssnn.hw.memmap.bus_signature` with
  one block-RAM-style memory per selector and a start/done model (finishes after ``run_cycles``, or
  never with ``hang=True``);
- :class:`LinkRig`: a :class:`~cssnn.hw.link.HostLink` wired to a :class:`BusModel`.

The same device in pure Python (to compare the gateware with, byte for byte) is
:class:`cssnn.verif.device_model.DeviceModel`.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out, connect, flipped

from cssnn.hw.memmap import AccelParams, Counter, Sel, bus_signature
from cssnn.hw.params import READ_LATENCY
from cssnn.verif.device_model import counter_init

__all__ = ["BusModel", "LinkRig"]


class BusModel(wiring.Component):
    """The accelerator's bus with plain memories behind it (see the module docstring).

    Ports: ``bus`` (the accelerator side of ``bus_signature(ap)``), ``runs`` (completed runs),
    ``writes`` (element writes performed, so a test can prove a bad frame wrote nothing). A run
    started by ``start`` keeps ``busy`` high for ``run_cycles`` clocks, then pulses ``done``; when it
    ends, COUNTER element 0 (RUN_CYCLES) is set to the number of completed runs, so a test can see that
    a RUN really happened. Writes while busy are ignored, as the memory map says.
    """

    def __init__(self, ap: AccelParams, *, run_cycles: int = 16, hang: bool = False):
        if not isinstance(ap, AccelParams):
            raise TypeError(f"ap must be an AccelParams, not {ap!r}")
        if not isinstance(run_cycles, int) or run_cycles < 1:
            raise ValueError(f"run_cycles must be an int >= 1, not {run_cycles!r}")
        self.ap, self.run_cycles, self.hang = ap, run_cycles, bool(hang)
        super().__init__({"bus": In(bus_signature(ap)), "runs": Out(16), "writes": Out(32)})

    def elaborate(self, platform):
        ap, bus = self.ap, self.bus
        m = Module()
        busy = Signal()
        # READ_LATENCY: the select is delayed that many clocks, the sync read data one less
        sel_d = bus.sel
        for _ in range(READ_LATENCY):
            q = Signal(Sel)
            m.d.sync += q.eq(sel_d)
            sel_d = q
        m.d.comb += bus.busy.eq(busy)
        with m.If(bus.we & ~busy & (bus.sel != Sel.COUNTER) & (bus.sel != Sel.LEARN_RESULT)):
            m.d.sync += self.writes.eq(self.writes + 1)

        for s in Sel:
            init = counter_init(ap) if s == Sel.COUNTER else []
            mem = memory.Memory(shape=ap.elem_bits(s), depth=ap.depth(s), init=init)
            m.submodules[f"mem_{s.name.lower()}"] = mem
            rd = mem.read_port()
            wr = mem.write_port()
            m.d.comb += rd.addr.eq(bus.addr)
            rd_d = rd.data
            for _ in range(READ_LATENCY - 1):
                q = Signal.like(rd.data)
                m.d.sync += q.eq(rd_d)
                rd_d = q
            with m.If(sel_d == s):
                m.d.comb += bus.rdata.eq(rd_d)
            if ap.writable(s):
                m.d.comb += [wr.addr.eq(bus.addr), wr.data.eq(bus.wdata),
                             wr.en.eq(bus.we & (bus.sel == s) & ~busy)]
            elif s == Sel.COUNTER:
                counter_wr = wr

        count = Signal(range(self.run_cycles + 1))
        with m.If(bus.start & ~busy):
            m.d.sync += [busy.eq(1), count.eq(self.run_cycles - 1)]
        with m.Elif(busy):
            with m.If(count != 0):
                m.d.sync += count.eq(count - 1)
            with m.Else():
                if not self.hang:  # a hung run stays busy forever
                    m.d.sync += [busy.eq(0), self.runs.eq(self.runs + 1)]
                    m.d.comb += [bus.done.eq(1), counter_wr.addr.eq(Counter.RUN_CYCLES),
                                 counter_wr.data.eq(self.runs + 1), counter_wr.en.eq(1)]
        return m


class LinkRig(wiring.Component):
    """A :class:`~cssnn.hw.link.HostLink` wired to a :class:`BusModel`: ``rx``/``tx`` byte streams
    in and out, plus the model's ``runs`` and ``writes``. ``link_kwargs`` go to the link, ``model_kwargs``
    to the model."""

    def __init__(self, ap: AccelParams, link_kwargs: dict | None = None, model_kwargs: dict | None = None):
        from cssnn.hw.link import HostLink

        self.link = HostLink(ap, **(link_kwargs or {}))
        self.model = BusModel(ap, **(model_kwargs or {}))
        super().__init__({"rx": In(stream.Signature(8)), "tx": Out(stream.Signature(8)),
                          "runs": Out(16), "writes": Out(32)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.link, m.submodules.model = self.link, self.model
        connect(m, self.link.bus, self.model.bus)
        connect(m, flipped(self.rx), self.link.rx)
        connect(m, self.link.tx, flipped(self.tx))
        m.d.comb += [self.runs.eq(self.model.runs), self.writes.eq(self.model.writes)]
        return m


