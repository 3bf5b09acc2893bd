"""Models of the accelerator side of the host link, for tests.

- :class:`BusModel`: an Amaranth component implementing :func:`~cssnn.hw.memmap.bus_signature` with
  one block-RAM-style memory per selector and a start/done model (finishes after ``run_cycles``, or
  never with ``hang=True``), so :class:`~cssnn.hw.link.HostLink` can be simulated without the
  real accelerator.
- :class:`DeviceModel`: the whole device (link + memories) in pure Python, byte for byte what the
  gateware does (docs/PROTOCOL.md), including the order of the checks, so the gateware can be
  compared against it and the :class:`~cssnn.sw.host.protocol.Client` tested fast.
- :class:`ModelTransport`: a :class:`~cssnn.sw.host.protocol.Transport` talking to a :class:`DeviceModel`.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out, connect, flipped

from cssnn.hw.link.wire import (
    IDENTIFY_BYTES,
    READ_PAYLOAD,
    SYNC_REQUEST,
    WRITE_HEADER,
    Cmd,
    Identity,
    Status,
    encode_identity,
)
from cssnn.hw.memmap import AccelParams, Counter, Sel, bus_signature
from cssnn.hw.params import READ_LATENCY
from cssnn.sw.host.protocol import crc16_update, encode_reply

__all__ = ["BusModel", "LinkRig", "DeviceModel", "ModelTransport", "counter_init"]


def counter_init(ap: AccelParams) -> list[int]:
    """Recognisable values for the read-only COUNTER memory of the models."""
    bits = ap.elem_bits(Sel.COUNTER)
    return [(0x5A5A5A5A5A5A5A5A ^ (i * 0x0101010101010101)) & (2**bits - 1) for i in range(ap.depth(Sel.COUNTER))]


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
            q = Signal(3)
            m.d.sync += q.eq(sel_d)
            sel_d = q
        m.d.comb += bus.busy.eq(busy)
        with m.If(bus.we & ~busy & (bus.sel != Sel.COUNTER)):
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
            else:
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


class DeviceModel:
    """The device in pure Python: feed it request bytes, get reply bytes (docs/PROTOCOL.md).

    ``mem[sel]`` holds the raw elements. Time is abstract: :meth:`idle` says "the line has been quiet
    for longer than the frame timeout" (a partial frame is then answered with TIMEOUT). A RUN takes no
    time unless ``hang`` is set, in which case it ends with WATCHDOG and the accelerator stays busy
    until :meth:`finish_run`.
    """

    HUNT, HEADER, PAYLOAD, CRC = range(4)

    def __init__(self, ap: AccelParams, *, max_payload: int = 256, timeout_cycles: int = 1 << 20,
                 run_timeout_cycles: int = 1 << 24, hang: bool = False):
        self.ap, self.max_payload, self.hang = ap, max_payload, hang
        self.identity = Identity(ap, max_payload, timeout_cycles, run_timeout_cycles)
        self.ident_bytes = encode_identity(self.identity)
        assert len(self.ident_bytes) == IDENTIFY_BYTES
        self.mem = {s: [0] * ap.depth(s) for s in Sel}
        self.mem[Sel.COUNTER] = counter_init(ap)
        self.busy = False
        self.runs = 0
        self.executed: list[tuple[int, bytes]] = []  # (cmd, payload) of every request that passed its CRC
        self._state = self.HUNT

    # ---- the byte-serial receiver ----
    def feed(self, data: bytes) -> bytes:
        out = bytearray()
        for b in data:
            out += self._byte(b)
        return bytes(out)

    def idle(self) -> bytes:
        """The frame timeout expired."""
        if self._state == self.HUNT:
            return b""
        self._state = self.HUNT
        return encode_reply(Status.TIMEOUT, self._cmd, self._seq)

    def _byte(self, b: int) -> bytes:
        st = self._state
        if st == self.HUNT:
            if b == SYNC_REQUEST:
                self._state, self._head, self._cmd, self._seq = self.HEADER, [], 0, 0
                self._crc, self._payload = 0xFFFF, bytearray()
            return b""
        self._crc = crc16_update(self._crc, [b])
        if st == self.HEADER:
            self._head.append(b)
            if len(self._head) == 1:
                self._cmd = b
            elif len(self._head) == 2:
                self._seq = b
            elif len(self._head) == 4:
                self._len = self._head[2] | self._head[3] << 8
                if self._len > self.max_payload:
                    self._state = self.HUNT
                    return encode_reply(Status.BAD_LENGTH, self._cmd, self._seq)
                self._state, self._ncrc = (self.PAYLOAD if self._len else self.CRC), 0
            return b""
        if st == self.PAYLOAD:
            self._payload.append(b)
            if len(self._payload) == self._len:
                self._state, self._ncrc = self.CRC, 0
            return b""
        self._ncrc += 1
        if self._ncrc < 2:
            return b""
        self._state = self.HUNT
        if self._crc != 0:
            return encode_reply(Status.BAD_CRC, self._cmd, self._seq)
        self.executed.append((self._cmd, bytes(self._payload)))
        status, payload = self.execute(self._cmd, bytes(self._payload))
        return encode_reply(status, self._cmd, self._seq, payload)

    # ---- command execution, checks in the gateware's order ----
    def execute(self, cmd: int, p: bytes) -> tuple[Status, bytes]:
        ap, n = self.ap, len(p)
        if cmd not in set(Cmd):
            return Status.UNKNOWN_CMD, b""
        if (cmd in (Cmd.IDENTIFY, Cmd.RUN) and n != 0 or cmd == Cmd.READ and n != READ_PAYLOAD
                or cmd == Cmd.WRITE and n < WRITE_HEADER):
            return Status.BAD_LENGTH, b""
        if cmd == Cmd.IDENTIFY:
            return Status.OK, self.ident_bytes
        if cmd == Cmd.ECHO:
            return Status.OK, p
        if cmd in (Cmd.READ, Cmd.WRITE):
            if p[0] >= len(Sel):
                return Status.BAD_ADDRESS, b""
            sel = Sel(p[0])
            addr = int.from_bytes(p[1:5], "little")
            eb = ap.elem_bytes(sel)
            if cmd == Cmd.WRITE:
                count, rest = divmod(n - WRITE_HEADER, eb)
                if rest or count == 0:
                    return Status.BAD_LENGTH, b""
            else:
                count = int.from_bytes(p[5:7], "little")
                if count == 0 or count > self.max_payload // eb:
                    return Status.BAD_LENGTH, b""
            if addr + count > ap.depth(sel):
                return Status.BAD_ADDRESS, b""
            if cmd == Cmd.WRITE and not ap.writable(sel):
                return Status.BAD_ADDRESS, b""
        if self.busy:
            return Status.BUSY, b""
        if cmd == Cmd.RUN:
            if self.hang:
                self.busy = True
                return Status.WATCHDOG, b""
            self._complete_run()
            return Status.OK, b""
        mask = 2 ** ap.elem_bits(sel) - 1
        if cmd == Cmd.WRITE:
            for i in range(count):
                self.mem[sel][addr + i] = int.from_bytes(p[WRITE_HEADER + i * eb:WRITE_HEADER + (i + 1) * eb],
                                                         "little") & mask
            return Status.OK, b""
        return Status.OK, b"".join(v.to_bytes(eb, "little") for v in self.mem[sel][addr:addr + count])

    def _complete_run(self):
        self.runs += 1
        self.mem[Sel.COUNTER][Counter.RUN_CYCLES] = self.runs

    def finish_run(self) -> None:
        """A hung run finally completes."""
        if self.busy:
            self.busy = False
            self._complete_run()


class ModelTransport:
    """A :class:`~cssnn.sw.host.protocol.Transport` to a :class:`DeviceModel`. ``recv`` returns the replies
    produced so far; when there are none it lets the device's frame timeout pass (:meth:`DeviceModel.idle`)
    and returns what that produced (a TIMEOUT reply for a partial frame, else ``b""``), as a real line
    does when the transport timeout exceeds the device's."""

    def __init__(self, device: DeviceModel):
        self.device = device
        self._out = bytearray()
        self.closed = False

    def send(self, data: bytes) -> None:
        self._out += self.device.feed(bytes(data))

    def recv(self) -> bytes:
        if not self._out:
            return self.device.idle()  # TIMEOUT reply for a partial frame, else b""
        data, self._out = bytes(self._out), bytearray()
        return data

    def close(self) -> None:
        self.closed = True
