"""The host protocol's wire format (docs/PROTOCOL.md): the bytes both ends agree on.

One idea: *what the bytes mean*, defined once for the gateware (:mod:`cssnn.hw.link`) and the host
(:mod:`cssnn.sw.host.protocol`, the sans-IO codec and the client built on it). Nothing here does I/O or
knows about retries; the CRC's parameters are in :mod:`.crc`.

Frames (integers little-endian, the CRC big-endian so that the CRC over a whole frame is zero)::

    request  A5 | cmd | seq | len (u16) | payload[len] | crc16 (over cmd .. payload)
    reply    5A | status | cmd | seq | len (u16) | payload[len] | crc16 (over status .. payload)

Headers and payloads are Amaranth :class:`~amaranth.lib.data.StructLayout` s: a little-endian byte
string is a bit-field record whose first byte is bits 0-7, so :func:`pack` / :func:`unpack` are
``Layout.const`` / ``Layout.from_bits`` and the gateware takes its byte offsets from the same layouts.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from amaranth.hdl import C
from amaranth.lib import data, enum

from cssnn.hw.learn import LearnParams
from cssnn.hw.memmap import ORDERS, PROTOCOL_VERSION, AccelParams, Sel
from cssnn.hw.params import SYNAPSE_RAMS, WALKS, CoreParams, pack

__all__ = [
    "SYNC_REQUEST", "SYNC_REPLY", "CRC_BYTES", "MAX_LEN", "MAGIC", "Cmd", "Status", "NO_CMD",
    "REQUEST_HEADER_LAYOUT", "REPLY_HEADER_LAYOUT", "WRITE_HEADER_LAYOUT", "READ_PAYLOAD_LAYOUT",
    "REQUEST_HEADER", "REPLY_HEADER", "WRITE_HEADER", "READ_PAYLOAD", "byte_offset", "pack_bytes", "unpack_bytes",
    "CORE_FIELDS", "ACCEL_FIELDS", "LEARN_FIELDS", "ENUM_FIELDS", "IDENTITY_LAYOUT", "IDENTIFY_BYTES", "MAGIC_VALUE",
    "check_fields_covered", "Identity", "encode_identity",
]

SYNC_REQUEST = 0xA5
SYNC_REPLY = 0x5A
CRC_BYTES = 2
MAX_LEN = 0xFFFF     #: the u16 length field
MAGIC = b"CSNN"


class Cmd(enum.IntEnum, shape=8):
    """Request commands (0x00 is deliberately unused: a zeroed line is not a command)."""

    IDENTIFY = 0x01  #: -> identity block (:class:`Identity`)
    WRITE = 0x02     #: sel u8, addr u32, elements -> (empty)
    READ = 0x03      #: sel u8, addr u32, count u16 -> elements
    RUN = 0x04       #: pulse start, wait for done (watchdog) -> (empty)
    ECHO = 0x05      #: any payload -> the same payload
    SETUP = 0x06     #: sel u8, addr u32, count u16 (a READ payload) -> (empty): INFER's reply window
    INFER = 0x07     #: sel u8, addr u32, one byte per element -> class, then the SETUP window


class Status(enum.IntEnum, shape=8):
    """Reply status codes."""

    OK = 0x00
    BAD_CRC = 0x01      #: the frame's CRC did not check: nothing was executed
    BAD_LENGTH = 0x02   #: len > max_payload (header), or a payload length the command does not allow
    UNKNOWN_CMD = 0x03
    BAD_ADDRESS = 0x04  #: unknown selector, range beyond depth(sel), or a write to a read-only selector
    TIMEOUT = 0x05      #: the frame stopped arriving (inter-byte gap > the link's timeout_cycles)
    BUSY = 0x06         #: the accelerator is running (a RUN timed out and it has not finished yet)
    WATCHDOG = 0x07     #: RUN: done did not come within the link's run_timeout_cycles


# Header fields are raw bytes, not Cmd/Status: any value can arrive on the wire (an unknown command
# is answered UNKNOWN_CMD with its byte echoed), and a parser must not reject what it cannot name.
#: Initial value of a ``Cmd``-shaped signal: 0, before any command (an enum shape's initial value
#: must be a member or a constant, and 0 is deliberately none).
NO_CMD = C(0, 8)

#: ``sync, cmd, seq, len``.
REQUEST_HEADER_LAYOUT = data.StructLayout({"sync": 8, "cmd": 8, "seq": 8, "len": 16})
#: ``sync, status, cmd, seq, len``.
REPLY_HEADER_LAYOUT = data.StructLayout({"sync": 8, "status": 8, "cmd": 8, "seq": 8, "len": 16})
#: WRITE payload: ``sel, addr``, then the elements.
WRITE_HEADER_LAYOUT = data.StructLayout({"sel": 8, "addr": 32})
#: READ payload: ``sel, addr, count``.
READ_PAYLOAD_LAYOUT = data.StructLayout({"sel": 8, "addr": 32, "count": 16})

REQUEST_HEADER = REQUEST_HEADER_LAYOUT.size // 8   #: 5
REPLY_HEADER = REPLY_HEADER_LAYOUT.size // 8       #: 6
WRITE_HEADER = WRITE_HEADER_LAYOUT.size // 8       #: 5
READ_PAYLOAD = READ_PAYLOAD_LAYOUT.size // 8       #: 7
assert WRITE_HEADER_LAYOUT.size < READ_PAYLOAD_LAYOUT.size and all(
    WRITE_HEADER_LAYOUT[n].offset == READ_PAYLOAD_LAYOUT[n].offset for n in ("sel", "addr")), \
    "READ and WRITE payloads start alike (the gateware captures sel and addr once)"


def byte_offset(layout: data.StructLayout, name: str) -> int:
    """Byte offset of field ``name`` (fields are whole bytes)."""
    offset = layout[name].offset
    assert offset % 8 == 0
    return offset // 8


def pack_bytes(layout: data.StructLayout, values: dict) -> bytes:
    """The bytes (little-endian) of ``layout`` filled with ``values`` (:func:`~cssnn.hw.params.pack`)."""
    return pack(layout, values).to_bytes(layout.size // 8, "little")


def unpack_bytes(layout: data.StructLayout, blob: bytes) -> data.Const:
    """The first ``layout.size // 8`` bytes of ``blob`` as a :class:`~amaranth.lib.data.Const`
    (``c["field"]`` gives the int)."""
    n = layout.size // 8
    assert len(blob) >= n
    return layout.from_bits(int.from_bytes(blob[:n], "little"))


# ---------------------------------------------------------------------------------------------
# IDENTIFY
# ---------------------------------------------------------------------------------------------

#: Field order of the identity block: every field of CoreParams, then of AccelParams (but core),
#: each a u32. A name (``synapse_ram``, ``order``, ``walk``) is sent as its index in its tuple
#: (:data:`ENUM_FIELDS`).
CORE_FIELDS = ("lanes", "weight_bits", "membrane_bits", "output_bits", "acc_bits", "bias_bits",
               "threshold_bits", "neurons", "synapse_rows", "counter_bits", "synapse_ram", "layer_words", "acc_words",
               "list_rows", "walk")
ACCEL_FIELDS = ("max_layers", "timestep_bits", "fifo_depth", "tap_depth", "order")
#: The learning engine's fields (LearnParams), all 0 when the accelerator has none.
LEARN_FIELDS = ("inputs", "neurons", "window", "weight_bits")
ENUM_FIELDS = {"synapse_ram": SYNAPSE_RAMS, "order": ORDERS, "walk": WALKS}

#: The identity block (protocol version 6, 116 bytes), little-endian.
IDENTITY_LAYOUT = data.StructLayout({
    "magic": 32,
    "protocol_version": 16,
    "max_payload": 16,
    "timeout_cycles": 32,       # the link's frame (inter-byte) timeout, clocks
    "run_timeout_cycles": 32,   # the RUN watchdog, clocks
    "core": data.StructLayout({name: 32 for name in CORE_FIELDS}),
    "accel": data.StructLayout({name: 32 for name in ACCEL_FIELDS}),
    "learn": data.StructLayout({name: 32 for name in LEARN_FIELDS}),
    "fifo_depth": 32,           # bytes the link queues in each direction (0: none; version 4)
})
IDENTIFY_BYTES = IDENTITY_LAYOUT.size // 8  #: 116 for protocol version 6
MAGIC_VALUE = int.from_bytes(MAGIC, "little")


def check_fields_covered() -> None:
    """Raise if CoreParams/AccelParams gained a field the identity block does not carry (IDENTIFY
    must rebuild the parameters exactly, so this file has to follow)."""
    for cls, names in ((CoreParams, set(CORE_FIELDS)), (AccelParams, set(ACCEL_FIELDS) | {"core", "learn"}),
                       (LearnParams, set(LEARN_FIELDS))):
        missing = {f.name for f in fields(cls)} - names
        if missing:
            raise RuntimeError(f"the IDENTIFY block (cssnn.hw.link.wire) does not carry {cls.__name__} field(s) "
                               f"{sorted(missing)}: add them to the *_FIELDS tuples (and bump PROTOCOL_VERSION)")


@dataclass(frozen=True)
class Identity:
    """What IDENTIFY reports: enough to rebuild the device's :class:`AccelParams` exactly."""

    params: AccelParams
    max_payload: int
    timeout_cycles: int       #: the link's frame (inter-byte) timeout, clocks
    run_timeout_cycles: int   #: the RUN watchdog, clocks
    protocol_version: int = PROTOCOL_VERSION
    fifo_depth: int = 0       #: bytes the link queues per direction: how far a host may send ahead

    @property
    def pipelined(self) -> bool:
        """SETUP/INFER exist and requests may be sent ahead, up to :meth:`send_ahead` bytes."""
        return self.protocol_version >= 4

    def send_ahead(self) -> int:
        """Request bytes a host may have outstanding (sent, reply not yet in) without the link dropping
        any: its receive queue. 0: none, send one frame at a time."""
        return self.fifo_depth

    def max_write(self, sel: Sel) -> int:
        """Elements of ``sel`` in one WRITE frame."""
        return (self.max_payload - WRITE_HEADER) // self.params.elem_bytes(sel)

    def max_read(self, sel: Sel) -> int:
        """Elements of ``sel`` in one READ reply."""
        return self.max_payload // self.params.elem_bytes(sel)


def _codes(params, names) -> dict:
    """The fields ``names`` of ``params`` as the identity block's integers (an enum field: its index)."""
    return {n: (ENUM_FIELDS[n].index(v) if n in ENUM_FIELDS else v) for n in names for v in [getattr(params, n)]}


def encode_identity(ident: Identity) -> bytes:
    """The identity block of ``ident`` (``ValueError`` if a value does not fit its field)."""
    check_fields_covered()
    ap = ident.params
    core = _codes(ap.core, CORE_FIELDS)
    try:
        return pack_bytes(IDENTITY_LAYOUT, {
            "magic": MAGIC_VALUE, "protocol_version": ident.protocol_version, "max_payload": ident.max_payload,
            "timeout_cycles": ident.timeout_cycles, "run_timeout_cycles": ident.run_timeout_cycles,
            "core": core, "accel": _codes(ap, ACCEL_FIELDS),
            "learn": {n: getattr(ap.learn, n) if ap.learn else 0 for n in LEARN_FIELDS},
            "fifo_depth": ident.fifo_depth,
        })
    except ValueError as e:
        raise ValueError(f"identity does not fit the identity block: {e}") from None
