"""The host side of the protocol: a sans-IO codec and a client over any byte stream (docs/PROTOCOL.md).

The wire format (sync bytes, header and payload layouts, :class:`Cmd`, :class:`Status`, the identity
block) is defined once in :mod:`cssnn.hw.link.wire`, shared with the gateware; the CRC's parameters
in :mod:`cssnn.hw.link.crc`. This module builds on them.

It is sans-IO: :func:`encode_request` / :class:`ReplyParser` turn messages into bytes and back, the
payload helpers build and parse command payloads, and :class:`Client` runs commands over any
:class:`Transport` (something with ``send``/``recv``/``close``) with sequence matching, resync and
retries. :class:`SerialTransport` (pyserial, the ``cssnn[serial]`` extra, imported lazily) is the
transport for boards; simulators bring their own (:mod:`cssnn.sim.transports`, :mod:`cssnn.sim.bytestream`).

CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, no final XOR (``crc16(b"123456789") ==
0x29B1``), computed by the standard library (:func:`binascii.crc_hqx`).
"""

from __future__ import annotations

import binascii
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from cssnn.extras import require
from cssnn.hw.learn import LearnParams
from cssnn.hw.link.crc import CRC16_INIT, CRC16_POLY
from cssnn.hw.link.wire import (
    ACCEL_FIELDS,
    CORE_FIELDS,
    CRC_BYTES,
    ENUM_FIELDS,
    IDENTIFY_BYTES,
    IDENTITY_LAYOUT,
    LEARN_FIELDS,
    MAGIC,
    MAX_LEN,
    READ_PAYLOAD,
    READ_PAYLOAD_LAYOUT,
    REPLY_HEADER_LAYOUT,
    REQUEST_HEADER_LAYOUT,
    SYNC_REPLY,
    SYNC_REQUEST,
    WRITE_HEADER,
    WRITE_HEADER_LAYOUT,
    Cmd,
    Identity,
    Status,
    byte_offset,
    pack_bytes,
    unpack_bytes,
)
from cssnn.hw.memmap import PROTOCOL_VERSION, AccelParams, Sel
from cssnn.hw.params import CoreParams

__all__ = [
    "RETRYABLE", "crc16", "crc16_update",
    "Request", "Reply", "encode_request", "encode_reply", "ReplyParser", "RequestParser",
    "decode_identity", "write_payload", "parse_write_payload",
    "read_payload", "parse_read_payload", "encode_elements", "decode_elements",
    "ProtocolError", "LinkError", "LinkTimeout", "Transport", "Client", "SerialTransport",
]

#: Statuses a client retries: the frame may have been damaged in transit (the header is not covered
#: by a checked CRC when BAD_LENGTH is reported for len > max_payload), or the condition may pass.
RETRYABLE = frozenset({Status.BAD_CRC, Status.BAD_LENGTH, Status.TIMEOUT, Status.BUSY})


# ---------------------------------------------------------------------------------------------
# CRC-16/CCITT-FALSE
# ---------------------------------------------------------------------------------------------

assert CRC16_POLY == 0x1021, "binascii.crc_hqx computes the CCITT polynomial 0x1021 only"


def crc16_update(crc: int, data: Iterable[int]) -> int:
    """The CRC register ``crc`` after ``data`` (MSB first, no final XOR)."""
    return binascii.crc_hqx(bytes(data), crc)


def crc16(data: bytes | bytearray | Iterable[int]) -> int:
    """CRC-16/CCITT-FALSE of ``data`` (``crc16(b"123456789") == 0x29B1``)."""
    return binascii.crc_hqx(bytes(data), CRC16_INIT)


# ---------------------------------------------------------------------------------------------
# Frames
# ---------------------------------------------------------------------------------------------

def _status(v: int) -> Status | int:
    try:
        return Status(v)
    except ValueError:
        return v


def _cmd(v: int) -> Cmd | int:
    try:
        return Cmd(v)
    except ValueError:
        return v


@dataclass(frozen=True)
class Request:
    cmd: int
    seq: int
    payload: bytes = b""


@dataclass(frozen=True)
class Reply:
    status: int
    cmd: int
    seq: int
    payload: bytes = b""

    @property
    def ok(self) -> bool:
        return self.status == Status.OK


def _u8(name, v):
    if not isinstance(v, int) or not 0 <= v <= 0xFF:
        raise ValueError(f"{name} must be an int in [0, 255], not {v!r}")
    return v


def _frame(layout, head: dict, payload: bytes) -> bytes:
    if len(payload) > MAX_LEN:
        raise ValueError(f"payload of {len(payload)} bytes does not fit the u16 length field")
    frame = pack_bytes(layout, {**head, "len": len(payload)}) + bytes(payload)
    return frame + struct.pack(">H", crc16(frame[1:]))   # the CRC covers all but the SYNC byte


def encode_request(cmd: int, seq: int, payload: bytes = b"") -> bytes:
    """``A5 cmd seq len payload crc`` (any cmd value, so tests can send unknown commands)."""
    return _frame(REQUEST_HEADER_LAYOUT, {"sync": SYNC_REQUEST, "cmd": _u8("cmd", cmd), "seq": _u8("seq", seq)},
                  payload)


def encode_reply(status: int, cmd: int, seq: int, payload: bytes = b"") -> bytes:
    """``5A status cmd seq len payload crc`` (what the device sends; for models and tests)."""
    return _frame(REPLY_HEADER_LAYOUT, {"sync": SYNC_REPLY, "status": _u8("status", status), "cmd": _u8("cmd", cmd),
                                        "seq": _u8("seq", seq)}, payload)


class _FrameParser:
    """Finds CRC-valid frames in a byte stream. A false SYNC (length too large, CRC wrong) costs one
    byte: the search restarts at the byte after it, so a real frame hidden behind garbage is found."""

    def __init__(self, sync: int, layout, max_payload: int):
        self.sync, self.layout = sync, layout
        self.header = layout.size // 8
        self._len_at = byte_offset(layout, "len")
        self.max_payload = max_payload
        self.buf = bytearray()
        self.dropped = 0      # bytes discarded as garbage
        self.crc_errors = 0   # candidate frames rejected by their CRC

    def reset(self) -> None:
        self.dropped += len(self.buf)
        self.buf.clear()

    def _make(self, frame: bytes):
        raise NotImplementedError

    def _scan(self, final: bool) -> list:
        out = []
        buf = self.buf
        while True:
            i = buf.find(self.sync)
            if i < 0:
                self.dropped += len(buf)
                buf.clear()
                return out
            if i:
                self.dropped += i
                del buf[:i]
            if len(buf) >= self.header:
                n = buf[self._len_at] | buf[self._len_at + 1] << 8
                if n > self.max_payload:
                    self._skip()
                    continue
                total = self.header + n + CRC_BYTES
                if len(buf) >= total:
                    if crc16(buf[1:total]) == 0:
                        out.append(self._make(bytes(buf[:total])))
                        del buf[:total]
                    else:
                        self.crc_errors += 1
                        self._skip()
                    continue
            if final and buf:
                self._skip()  # no more bytes are coming: this SYNC started no frame
                continue
            return out

    def _skip(self):
        self.dropped += 1
        del self.buf[:1]

    def feed(self, data: bytes) -> list:
        """Add received bytes; return the complete valid frames among everything received so far."""
        self.buf += data
        return self._scan(final=False)

    def flush(self) -> list:
        """The stream went quiet: an incomplete frame will never complete, so look for frames
        inside it (behind a false SYNC), then discard what is left."""
        return self._scan(final=True)


class ReplyParser(_FrameParser):
    """Reply frames from a byte stream: ``feed(bytes) -> list[Reply]`` (resyncs over garbage)."""

    def __init__(self, max_payload: int = MAX_LEN):
        super().__init__(SYNC_REPLY, REPLY_HEADER_LAYOUT, max_payload)

    def _make(self, f: bytes) -> Reply:
        h = unpack_bytes(self.layout, f)
        return Reply(_status(h["status"]), _cmd(h["cmd"]), h["seq"], f[self.header:-CRC_BYTES])


class RequestParser(_FrameParser):
    """Request frames from a byte stream (sniffers, tests)."""

    def __init__(self, max_payload: int = MAX_LEN):
        super().__init__(SYNC_REQUEST, REQUEST_HEADER_LAYOUT, max_payload)

    def _make(self, f: bytes) -> Request:
        h = unpack_bytes(self.layout, f)
        return Request(_cmd(h["cmd"]), h["seq"], f[self.header:-CRC_BYTES])


# ---------------------------------------------------------------------------------------------
# IDENTIFY
# ---------------------------------------------------------------------------------------------

def _dec_field(name, v):
    if name in ENUM_FIELDS:
        choices = ENUM_FIELDS[name]
        if not v < len(choices):
            raise ProtocolError(f"device reports {name} code {v}, known: {list(choices)}")
        return choices[v]
    return v


def decode_identity(payload: bytes) -> Identity:
    """Parse an IDENTIFY reply payload (later protocol versions may append fields: ignored). The
    magic and the version come first, so a device of another protocol version is named as such."""
    head = 6  # magic u32, protocol_version u16: the same in every version
    if len(payload) < head or payload[:len(MAGIC)] != MAGIC:
        raise ProtocolError(f"bad identity magic {bytes(payload[:len(MAGIC)])!r} (expected {MAGIC!r}): "
                            f"not a cssnn accelerator")
    version = int.from_bytes(payload[len(MAGIC):head], "little")
    if version != PROTOCOL_VERSION:
        raise ProtocolError(f"the device speaks protocol version {version}, this host version {PROTOCOL_VERSION}: "
                            f"rebuild the bitstream with this cssnn (cssnn build)")
    if len(payload) < IDENTIFY_BYTES:
        raise ProtocolError(f"identity block of {len(payload)} bytes, expected at least {IDENTIFY_BYTES}")
    block = unpack_bytes(IDENTITY_LAYOUT, payload)
    core_vals = {n: _dec_field(n, block["core"][n]) for n in CORE_FIELDS}
    accel_vals = {n: _dec_field(n, block["accel"][n]) for n in ACCEL_FIELDS}
    learn_vals = {n: block["learn"][n] for n in LEARN_FIELDS}
    try:
        learn = LearnParams(**learn_vals) if any(learn_vals.values()) else None
        ap = AccelParams(core=CoreParams(**core_vals), learn=learn, **accel_vals)
    except ValueError as e:
        raise ProtocolError(f"device reports invalid parameters: {e}") from None
    return Identity(ap, block["max_payload"], block["timeout_cycles"], block["run_timeout_cycles"], version,
                    block["fifo_depth"])


# ---------------------------------------------------------------------------------------------
# WRITE / READ payloads
# ---------------------------------------------------------------------------------------------

def encode_elements(values: Iterable[int], elem_bytes: int) -> bytes:
    out = bytearray()
    for v in values:
        out += int(v).to_bytes(elem_bytes, "little")
    return bytes(out)


def decode_elements(data: bytes, elem_bytes: int) -> list[int]:
    if len(data) % elem_bytes:
        raise ProtocolError(f"{len(data)} bytes are not a whole number of {elem_bytes}-byte elements")
    return [int.from_bytes(data[i:i + elem_bytes], "little") for i in range(0, len(data), elem_bytes)]


def write_payload(sel: int, addr: int, values: Iterable[int], elem_bytes: int) -> bytes:
    """``sel u8, addr u32, values`` (each ``elem_bytes`` little-endian; not range-checked here)."""
    return pack_bytes(WRITE_HEADER_LAYOUT, {"sel": sel, "addr": addr}) + encode_elements(values, elem_bytes)


def parse_write_payload(payload: bytes, elem_bytes: int) -> tuple[int, int, list[int]]:
    if len(payload) < WRITE_HEADER:
        raise ProtocolError("WRITE payload shorter than its 5-byte header")
    h = unpack_bytes(WRITE_HEADER_LAYOUT, payload)
    return h["sel"], h["addr"], decode_elements(payload[WRITE_HEADER:], elem_bytes)


def read_payload(sel: int, addr: int, count: int) -> bytes:
    return pack_bytes(READ_PAYLOAD_LAYOUT, {"sel": sel, "addr": addr, "count": count})


def parse_read_payload(payload: bytes) -> tuple[int, int, int]:
    if len(payload) != READ_PAYLOAD:
        raise ProtocolError(f"READ payload of {len(payload)} bytes, expected {READ_PAYLOAD}")
    h = unpack_bytes(READ_PAYLOAD_LAYOUT, payload)
    return h["sel"], h["addr"], h["count"]


# ---------------------------------------------------------------------------------------------
# Client
# ---------------------------------------------------------------------------------------------

class ProtocolError(Exception):
    """A reply that is well framed but does not make sense (bad identity, wrong payload size)."""


class LinkError(Exception):
    """The device answered a command with an error (``status``), after any retries."""

    def __init__(self, message: str, status: Status | int | None = None, reply: Reply | None = None):
        super().__init__(message)
        self.status, self.reply = status, reply


class LinkTimeout(LinkError, TimeoutError):
    """Nothing (no matching reply) came back, after every retry."""


@runtime_checkable
class Transport(Protocol):
    """A byte pipe to the device.

    ``recv()`` returns whatever bytes arrived; ``b""`` means nothing arrived within the transport's
    own timeout (seconds for a serial port, clock cycles for a simulator). That timeout should exceed
    the device's frame timeout, so that one empty ``recv`` means the device has given up on any
    partial frame (the client's resync relies on it).
    """

    def send(self, data: bytes) -> None: ...

    def recv(self) -> bytes: ...

    def close(self) -> None: ...


class Client:
    """Runs commands on a device over a :class:`Transport`.

    Every attempt uses a fresh sequence number; replies whose (cmd, seq) do not match are stale or
    duplicates and are discarded. An attempt fails on silence (``silence`` empty ``recv`` calls in a
    row; ``run_silence`` for RUN, which may take long) or on a retryable error reply (:data:`RETRYABLE`);
    the client then resynchronises (drains the line until ``recv`` is quiet, which also waits out the
    device's frame timeout) and sends again, up to ``retries`` more times. Commands are idempotent, so
    a repeated command is harmless. UNKNOWN_CMD, BAD_ADDRESS and WATCHDOG come from a CRC-checked
    request and are raised at once.

    ``write``/``read`` check their arguments against the device's identity (fetched once, lazily)
    and split transfers into frames of at most ``max_payload`` bytes.
    """

    def __init__(self, transport: Transport, *, retries: int = 3, silence: int = 2, run_silence: int = 50,
                 max_polls: int = 10_000):
        if not isinstance(retries, int) or retries < 0:
            raise ValueError(f"retries must be an int >= 0, not {retries!r}")
        for name, v in (("silence", silence), ("run_silence", run_silence), ("max_polls", max_polls)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be an int >= 1, not {v!r}")
        self.transport = transport
        self.retries, self.silence, self.run_silence, self.max_polls = retries, silence, run_silence, max_polls
        self.parser = ReplyParser()
        self.identity: Identity | None = None
        self._seq = 0
        self.stats = {"requests": 0, "attempts": 0, "retries": 0, "stale": 0, "silences": 0, "errors": 0,
                      "bytes_sent": 0, "bytes_received": 0}

    # ---- context manager ----
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        self.transport.close()

    # ---- commands ----
    def identify(self) -> Identity:
        ident = decode_identity(self.transact(Cmd.IDENTIFY).payload)
        self.identity = ident
        self.parser.max_payload = max(ident.max_payload, IDENTIFY_BYTES)
        return ident

    def echo(self, data: bytes = b"") -> bytes:
        reply = self.transact(Cmd.ECHO, bytes(data))
        if reply.payload != bytes(data):
            raise ProtocolError("ECHO came back different")
        return reply.payload

    def write(self, sel: Sel | int, addr: int, values: Sequence[int]) -> None:
        """Write raw unsigned element values ``values`` to ``sel`` from element ``addr`` on."""
        for payload in self._write_payloads(sel, addr, values):
            self.transact(Cmd.WRITE, payload)

    def write_many(self, writes: Iterable[tuple[Sel | int, int, Sequence[int]]]) -> None:
        """Every ``(sel, addr, values)`` of ``writes``, all checked before any is sent. On a protocol-4
        device whose writes touch each element once, the WRITE requests are sent ahead of their
        replies (:meth:`pipeline`: a network loads in about one round trip); otherwise one by one."""
        payloads, seen, overlap = [], set(), False
        for sel, addr, values in writes:
            payloads += self._write_payloads(sel, addr, values)
            span = {(int(sel), a) for a in range(addr, addr + len(values))}
            overlap |= not seen.isdisjoint(span)
            seen |= span
        if self._ident().pipelined and not overlap:
            self.pipeline(Cmd.WRITE, payloads)
        else:
            for payload in payloads:
                self.transact(Cmd.WRITE, payload)

    def _write_payloads(self, sel: Sel | int, addr: int, values: Sequence[int]) -> list[bytes]:
        """The WRITE payloads (at most ``max_payload`` bytes each) of one write, checked first."""
        ident = self._ident()
        sel = self._sel(sel)
        values = [int(v) for v in values]
        ap = ident.params
        if not ap.writable(sel):
            raise ValueError(f"{sel.name} is read-only")
        self._range(ap, sel, addr, len(values))
        bits = ap.elem_bits(sel)
        for i, v in enumerate(values):
            if not 0 <= v < 2**bits:
                raise ValueError(f"{sel.name} element {addr + i}: {v} is not a raw {bits}-bit value")
        eb, per = ap.elem_bytes(sel), ident.max_write(sel)
        return [write_payload(sel, addr + off, values[off:off + per], eb) for off in range(0, len(values), per)]

    def read(self, sel: Sel | int, addr: int, count: int) -> list[int]:
        """Read ``count`` raw elements of ``sel`` from element ``addr`` on."""
        ident = self._ident()
        sel = self._sel(sel)
        ap = ident.params
        self._range(ap, sel, addr, count)
        eb, per = ap.elem_bytes(sel), ident.max_read(sel)
        out: list[int] = []
        for off in range(0, count, per):
            n = min(per, count - off)
            reply = self.transact(Cmd.READ, read_payload(sel, addr + off, n))
            if len(reply.payload) != n * eb:
                raise ProtocolError(f"READ of {n} elements returned {len(reply.payload)} bytes")
            out += decode_elements(reply.payload, eb)
        return out

    def run(self) -> None:
        """Run one inference; returns when the device reports done."""
        self.transact(Cmd.RUN, silence=self.run_silence)

    def setup(self, sel: Sel | int, addr: int, count: int) -> None:
        """SETUP: what every INFER sends back after the class, ``count`` elements of ``sel`` from
        ``addr`` on (0: the class alone)."""
        ident = self._ident()
        sel = self._sel(sel)
        self._range(ident.params, sel, addr, count)
        if count > ident.max_read(sel):
            raise ValueError(f"an INFER reply holds at most {ident.max_read(sel)} {sel.name} elements, not {count}")
        self.transact(Cmd.SETUP, read_payload(sel, addr, count))

    def infer(self, sel: Sel | int, addr: int, samples: Sequence[Sequence[int]], *, progress=None) -> list[bytes]:
        """INFER every sample (one byte per element, written to ``sel`` from ``addr`` on, then a run)
        and return each reply's payload (the class element, then the SETUP window), in order. The
        requests are sent ahead of their replies, as far as the device's receive queue allows
        (:meth:`~cssnn.hw.link.wire.Identity.send_ahead`), so the line stays busy. ``progress`` (e.g.
        a tqdm bar) is updated per reply."""
        ident = self._ident()
        sel = self._sel(sel)
        if not ident.pipelined:
            raise ProtocolError(f"the device speaks protocol version {ident.protocol_version}, which has no INFER")
        payloads = []
        for x in samples:
            x = [int(v) for v in x]
            self._range(ident.params, sel, addr, len(x))
            if not x or len(x) > ident.max_payload - WRITE_HEADER or min(x) < 0 or max(x) > 0xFF:
                raise ValueError(f"an INFER sample is 1 .. {ident.max_payload - WRITE_HEADER} values in [0, 255]")
            payloads.append(write_payload(sel, addr, x, 1))
        return [r.payload for r in self.pipeline(Cmd.INFER, payloads, progress=progress)]

    def pipeline(self, cmd: int, payloads: Sequence[bytes], *, progress=None) -> list[Reply]:
        """Send one ``cmd`` request per payload, ahead of the replies: at most
        :meth:`~cssnn.hw.link.wire.Identity.send_ahead` request bytes (and 128 requests) outstanding,
        or one request at a time when the device queues nothing. Returns the OK replies in order.
        The device answers in order, so a reply also says that every request sent before it and
        still unanswered was lost. Those, requests that get a retryable error, and the rest when the
        line has been quiet for ``silence + 2`` receive timeouts are sent again (up to ``retries``
        times each); the commands must be idempotent, and each must finish within a receive timeout
        or two (INFER's run does)."""
        ident = self._ident()
        budget = ident.send_ahead()
        todo = list(range(len(payloads)))[::-1]   # a stack: the next request last
        tries = [0] * len(payloads)
        replies: list[Reply | None] = [None] * len(payloads)
        outstanding: dict[int, tuple[int, int]] = {}   # seq -> (request index, frame bytes), in send order
        quiet = 0
        self.stats["requests"] += len(payloads)
        while todo or outstanding:
            while todo and len(outstanding) < 128:
                while self._seq in outstanding:   # a lost request's seq is not reused while it waits
                    self._seq = (self._seq + 1) & 0xFF
                i = todo[-1]
                frame = encode_request(cmd, self._seq, payloads[i])
                if outstanding and sum(n for _i, n in outstanding.values()) + len(frame) > budget:
                    break
                todo.pop()
                outstanding[self._seq] = (i, len(frame))
                self._seq = (self._seq + 1) & 0xFF
                self.stats["attempts"] += 1
                self._send(frame)
            data = self._recv()
            quiet = 0 if data else quiet + 1
            for r in self.parser.feed(data) if data else self.parser.flush():
                if r.cmd != cmd or r.seq not in outstanding:
                    self.stats["stale"] += 1
                    continue
                for seq in list(outstanding):   # sent before r: lost (the device answers in order)
                    if seq == r.seq:
                        break
                    todo.append(self._retry(outstanding.pop(seq)[0], tries, "no reply", cmd, None))
                i, _n = outstanding.pop(r.seq)
                if r.status == Status.OK:
                    replies[i] = r
                    if progress is not None:
                        progress.update(1)
                    continue
                self.stats["errors"] += 1
                if r.status not in RETRYABLE:
                    raise LinkError(f"{_name(cmd)}: device replied {_name(r.status)}", r.status, r)
                todo.append(self._retry(i, tries, _name(r.status), cmd, r))
            if quiet >= self.silence + 2 and outstanding:   # the rest are lost: resync, send them again
                self.stats["silences"] += 1
                self.resync()
                for i, _n in sorted(outstanding.values(), reverse=True):
                    todo.append(self._retry(i, tries, "silence", cmd, None))
                outstanding.clear()
                quiet = 0
        return replies

    def _retry(self, i: int, tries: list[int], why: str, cmd: int, reply: Reply | None) -> int:
        tries[i] += 1
        if tries[i] > self.retries:
            what = f"{_name(cmd)} request {i} failed after {self.retries + 1} attempts (last: {why})"
            if reply is None:
                raise LinkTimeout(what)
            raise LinkError(what, reply.status, reply)
        self.stats["retries"] += 1
        return i

    # ---- machinery ----
    def transact(self, cmd: int, payload: bytes = b"", *, silence: int | None = None) -> Reply:
        """Send one command (with retries) and return its OK reply."""
        self.stats["requests"] += 1
        history = []
        for attempt in range(self.retries + 1):
            if attempt:
                self.stats["retries"] += 1
                self.resync()
            seq = self._seq
            self._seq = (self._seq + 1) & 0xFF
            self.stats["attempts"] += 1
            self._send(encode_request(cmd, seq, payload))
            reply = self._await(cmd, seq, silence or self.silence)
            if reply is None:
                self.stats["silences"] += 1
                history.append("silence")
                continue
            if reply.status == Status.OK:
                return reply
            self.stats["errors"] += 1
            history.append(_name(reply.status))
            if reply.status not in RETRYABLE:
                raise LinkError(f"{_name(cmd)}: device replied {_name(reply.status)}", reply.status, reply)
            last = reply
        what = f"{_name(cmd)} failed after {self.retries + 1} attempts ({', '.join(history)})"
        if history[-1] == "silence":
            raise LinkTimeout(what)
        raise LinkError(what, last.status, last)

    def resync(self) -> None:
        """Forget partial replies and drain the line until it is quiet (the device's frame timeout
        has then passed too, so it is hunting for a SYNC again)."""
        self.parser.reset()
        for _ in range(self.max_polls):
            if not self._recv():
                break
        self.parser.reset()

    def _await(self, cmd: int, seq: int, silence: int) -> Reply | None:
        quiet = 0
        for _ in range(self.max_polls):
            data = self._recv()
            if data:
                quiet = 0
                replies = self.parser.feed(data)
            else:
                quiet += 1
                replies = self.parser.flush()
            for r in replies:
                if r.seq == seq and r.cmd == cmd:
                    return r
                self.stats["stale"] += 1
            if quiet >= silence:
                return None
        return None

    def _send(self, frame: bytes) -> None:
        self.stats["bytes_sent"] += len(frame)
        self.transport.send(frame)

    def _recv(self) -> bytes:
        data = self.transport.recv()
        self.stats["bytes_received"] += len(data)
        return data

    def _ident(self) -> Identity:
        return self.identity if self.identity is not None else self.identify()

    @staticmethod
    def _sel(sel) -> Sel:
        try:
            return Sel(sel)
        except ValueError:
            raise ValueError(f"unknown selector {sel!r}") from None

    @staticmethod
    def _range(ap: AccelParams, sel: Sel, addr: int, count: int) -> None:
        if not isinstance(addr, int) or not isinstance(count, int) or addr < 0 or count < 0:
            raise ValueError(f"addr and count must be ints >= 0, not {addr!r}, {count!r}")
        if addr + count > ap.depth(sel):
            raise ValueError(f"{sel.name}[{addr}:{addr + count}] is beyond its depth {ap.depth(sel)}")


def _name(v: int) -> str:
    return getattr(v, "name", None) or f"0x{int(v):02x}"


#: The serial rate of a board's build and of the host's serial port unless told otherwise: the fastest
#: that both boards' USB-UARTs run (FT2232H on the iCEBreaker, FT231X on the ULX3S: 3 Mbaud) and that
#: their default clocks make closely (30 MHz: 10 clocks per bit, exact; 100 MHz: 33, +1.0 %).
DEFAULT_BAUD = 3_000_000


class SerialTransport:
    """A :class:`Transport` over a serial port (pyserial, the ``cssnn[serial]`` extra).

    ``port`` is a device (``/dev/ttyUSB1``, ``COM3``) or any pyserial URL (``loop://``). ``timeout``
    (seconds) is how long ``recv`` waits for a first byte: make it longer than the device's frame
    timeout (``timeout_cycles / f_clk``; IDENTIFY reports the cycles)."""

    def __init__(self, port: str, baudrate: int = DEFAULT_BAUD, *, timeout: float = 0.2, **kwargs):
        serial = require("serial", extra="serial", purpose="a board on a serial port (SerialTransport)")
        if not timeout > 0:
            raise ValueError(f"timeout must be positive seconds, not {timeout!r}")
        self._ser = serial.serial_for_url(port, baudrate=baudrate, timeout=timeout, **kwargs)

    def send(self, data: bytes) -> None:
        self._ser.write(bytes(data))
        self._ser.flush()

    def recv(self) -> bytes:
        data = self._ser.read(1)  # blocks up to the timeout
        if data:
            data += self._ser.read(self._ser.in_waiting)
        return bytes(data)

    def close(self) -> None:
        self._ser.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
