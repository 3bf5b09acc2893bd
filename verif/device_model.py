"""The device (host link + accelerator memories) in pure Python, for tests.

- :class:`DeviceModel`: byte for byte what the gateware does (docs/PROTOCOL.md), including the order
  of the checks, so the gateware can be compared against it and the
  :class:`~cssnn.sw.host.protocol.Client` tested fast;
- :class:`ModelTransport`: a :class:`~cssnn.sw.host.protocol.Transport` talking to a :class:`DeviceModel`.
"""

from __future__ import annotations

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
from cssnn.hw.memmap import AccelParams, Counter, Sel
from cssnn.sw.host.protocol import crc16_update, encode_reply

__all__ = ["DeviceModel", "ModelTransport", "counter_init"]


def counter_init(ap: AccelParams) -> list[int]:
    """Recognisable values for the read-only COUNTER memory of the models."""
    bits = ap.elem_bits(Sel.COUNTER)
    return [(0x5A5A5A5A5A5A5A5A ^ (i * 0x0101010101010101)) & (2**bits - 1) for i in range(ap.depth(Sel.COUNTER))]


class DeviceModel:
    """The device in pure Python: feed it request bytes, get reply bytes (docs/PROTOCOL.md).

    ``mem[sel]`` holds the raw elements. Time is abstract: :meth:`idle` says "the line has been quiet
    for longer than the frame timeout" (a partial frame is then answered with TIMEOUT). A RUN takes no
    time unless ``hang`` is set, in which case it ends with WATCHDOG and the accelerator stays busy
    until :meth:`finish_run`.
    """

    HUNT, HEADER, PAYLOAD, CRC = range(4)
    #: INFER's reply window after reset: nothing after the class (the gateware's ``win_*`` init values)
    RESET_WINDOW = (Sel.COUNTER, 0, 0)

    def __init__(self, ap: AccelParams, *, max_payload: int = 256, timeout_cycles: int = 1 << 20,
                 run_timeout_cycles: int = 1 << 24, fifo_depth: int = 0, hang: bool = False):
        self.ap, self.max_payload, self.hang = ap, max_payload, hang
        self.identity = Identity(ap, max_payload, timeout_cycles, run_timeout_cycles, fifo_depth=fifo_depth)
        self.ident_bytes = encode_identity(self.identity)
        assert len(self.ident_bytes) == IDENTIFY_BYTES
        self.mem = {s: [0] * ap.depth(s) for s in Sel}
        self.mem[Sel.COUNTER] = counter_init(ap)
        self.busy = False
        self.runs = 0
        self.window = self.RESET_WINDOW   # SETUP's: what INFER sends after the class
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
        reads, writes = (Cmd.READ, Cmd.SETUP), (Cmd.WRITE, Cmd.INFER)
        if (cmd in (Cmd.IDENTIFY, Cmd.RUN) and n != 0 or cmd in reads and n != READ_PAYLOAD
                or cmd in writes and n < WRITE_HEADER):
            return Status.BAD_LENGTH, b""
        if cmd == Cmd.IDENTIFY:
            return Status.OK, self.ident_bytes
        if cmd == Cmd.ECHO:
            return Status.OK, p
        if cmd in reads + writes:
            if p[0] >= len(Sel):
                return Status.BAD_ADDRESS, b""
            sel = Sel(p[0])
            addr = int.from_bytes(p[1:5], "little")
            eb = ap.elem_bytes(sel)
            wide = 1 if cmd == Cmd.INFER else eb   # INFER: one byte per element
            if cmd in writes:
                count, rest = divmod(n - WRITE_HEADER, wide)
                if rest or count == 0:
                    return Status.BAD_LENGTH, b""
            else:
                count = int.from_bytes(p[5:7], "little")
                if count == 0 and cmd == Cmd.READ or count > self.max_payload // eb:
                    return Status.BAD_LENGTH, b""
            if addr + count > ap.depth(sel):
                return Status.BAD_ADDRESS, b""
            if cmd in writes and not ap.writable(sel):
                return Status.BAD_ADDRESS, b""
        if self.busy:
            return Status.BUSY, b""
        if cmd == Cmd.SETUP:
            self.window = (sel, addr, count)
            return Status.OK, b""
        if cmd in (Cmd.WRITE, Cmd.INFER):
            mask = 2 ** ap.elem_bits(sel) - 1
            for i in range(count):
                self.mem[sel][addr + i] = int.from_bytes(p[WRITE_HEADER + i * wide:WRITE_HEADER + (i + 1) * wide],
                                                         "little") & mask
            if cmd == Cmd.WRITE:
                return Status.OK, b""
        if cmd in (Cmd.RUN, Cmd.INFER):
            if self.hang:
                self.busy = True
                return Status.WATCHDOG, b""
            self._complete_run()
            if cmd == Cmd.RUN:
                return Status.OK, b""
            return Status.OK, self._read(Sel.COUNTER, Counter.ARGMAX_INDEX, 1) + self._read(*self.window)
        return Status.OK, self._read(sel, addr, count)

    def _read(self, sel: Sel, addr: int, count: int) -> bytes:
        eb = self.ap.elem_bytes(sel)
        return b"".join(v.to_bytes(eb, "little") for v in self.mem[sel][addr:addr + count])

    def reset(self) -> None:
        """The board's reset: registers (the link's state and SETUP window, REG, busy) return to their
        reset values; memories keep their contents, as block RAM does."""
        self._state, self.busy, self.window = self.HUNT, False, self.RESET_WINDOW
        self.mem[Sel.REG] = [0] * self.ap.depth(Sel.REG)

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
