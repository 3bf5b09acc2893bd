"""The host link: the framed, CRC-checked request/reply protocol of docs/PROTOCOL.md in gateware.

One idea: *turn a byte stream into bus accesses, safely*. :class:`HostLink` receives request frames
on ``rx`` (a byte stream, e.g. from :class:`~cssnn.hw.link.uart.UARTRx`), buffers the payload in one block
RAM, checks the CRC, range-checks the command against the memory map (:mod:`cssnn.hw.memmap`) and
only then executes it on ``bus``; it answers every frame, good or bad, with a reply frame on ``tx``.
A corrupted frame therefore never half-writes a memory, and no input makes the link hang: a frame
that stops arriving ends with a TIMEOUT reply, a run that never finishes with WATCHDOG.

Three phases, one after the other, each a component: :class:`~.receive.Receiver` (sync hunt,
header, payload into the buffer, CRC check, frame timeout), :class:`~.execute.Executor` (checks
against the memory map, WRITE/READ/RUN on the bus with the watchdog, IDENTIFY, ECHO) and
:class:`~.reply.ReplyEmitter` (the reply frame and its CRC). They share, through
:func:`~.shared.share`, one payload buffer (whose spare words hold the IDENTIFY reply as initial
contents: no ROM logic), one CRC and one counter for the frame timeout and the RUN watchdog.

Small by construction (it shares an iCE40UP5K with the accelerator): a byte-serial datapath (one
CRC byte per clock; elements assembled or serialised a byte per clock, plus one clock per element)
and per-selector constants from one case statement. The wire format comes from :mod:`.wire`, which
the host (:mod:`cssnn.sw.host.protocol`) uses too, so gateware and host cannot disagree.
"""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out, connect, flipped
from amaranth.utils import bits_for

from cssnn.hw.link.crc import Crc16
from cssnn.hw.link.execute import Executor
from cssnn.hw.link.fifo import ByteFIFO
from cssnn.hw.link.receive import Receiver
from cssnn.hw.link.reply import ReplyEmitter
from cssnn.hw.link.shared import Length, PayloadBuffer, Timer, share
from cssnn.hw.link.wire import IDENTIFY_BYTES, READ_PAYLOAD, WRITE_HEADER, Identity, encode_identity
from cssnn.hw.memmap import AccelParams, Sel, bus_signature

__all__ = ["HostLink"]

MAX_PAYLOAD_LIMIT = 32768
CYCLES_LIMIT = 2**32 - 1  # the identity block reports the timeouts as u32


class HostLink(wiring.Component):
    """Protocol engine between a byte stream and the accelerator bus.

    Parameters: ``ap`` the accelerator's :class:`AccelParams`; ``max_payload`` the largest request
    payload (the buffer size; a READ reply carries at most this many bytes); ``timeout_cycles`` the
    largest gap between two bytes of a frame before the link gives up on it (TIMEOUT);
    ``run_timeout_cycles`` the RUN watchdog (WATCHDOG); ``fifo_depth`` bytes of queue on ``rx`` and on
    ``tx`` (0: none; a power of two otherwise, announced by IDENTIFY): with it the link takes in the
    next requests while it executes and replies, so a host may send that many bytes ahead.

    Ports: ``rx`` In(stream.Signature(8)), ``tx`` Out(stream.Signature(8)), ``bus``
    Out(:func:`bus_signature`). Without a FIFO ``rx`` is only ready while a frame is being received
    (or hunted for): with a back-pressured byte source, requests may be pipelined; a UART drops what
    arrives meanwhile (up to ``fifo_depth`` bytes are queued instead).
    """

    #: The CRC unit's class (:class:`~.crc.Crc16`): the host link proof (:mod:`cssnn.verif.proofs`)
    #: puts an abstract one in its place, whose register takes any value on each byte.
    crc_unit = Crc16

    def __init__(self, ap: AccelParams, *, max_payload: int = 256, timeout_cycles: int = 1 << 20,
                 run_timeout_cycles: int = 1 << 24, fifo_depth: int = 0):
        if not isinstance(ap, AccelParams):
            raise TypeError(f"ap must be an AccelParams, not {ap!r}")
        ebmax = max(ap.elem_bytes(s) for s in Sel)
        lo = max(16, READ_PAYLOAD, WRITE_HEADER + ebmax)
        if not isinstance(max_payload, int) or isinstance(max_payload, bool) or not lo <= max_payload <= MAX_PAYLOAD_LIMIT:
            raise ValueError(f"max_payload must be an int in [{lo}, {MAX_PAYLOAD_LIMIT}] (at least one "
                             f"{ebmax}-byte element per WRITE), not {max_payload!r}")
        for name, v in (("timeout_cycles", timeout_cycles), ("run_timeout_cycles", run_timeout_cycles)):
            if not isinstance(v, int) or isinstance(v, bool) or not 2 <= v <= CYCLES_LIMIT:
                raise ValueError(f"{name} must be an int in [2, 2**32 - 1], not {v!r}")
        if (not isinstance(fifo_depth, int) or isinstance(fifo_depth, bool) or fifo_depth < 0 or fifo_depth == 1
                or fifo_depth & (fifo_depth - 1) or fifo_depth > MAX_PAYLOAD_LIMIT):
            raise ValueError(f"fifo_depth must be 0 or a power of two in [2, {MAX_PAYLOAD_LIMIT}], not {fifo_depth!r}")
        if ap.bus_addr_bits > 32:
            raise ValueError(f"bus_addr_bits={ap.bus_addr_bits}: addresses beyond 32 bits do not fit the protocol")
        self.ap = ap
        self.max_payload = max_payload
        self.timeout_cycles = timeout_cycles
        self.run_timeout_cycles = run_timeout_cycles
        self.fifo_depth = fifo_depth
        self.identity = Identity(ap, max_payload, timeout_cycles, run_timeout_cycles, fifo_depth=fifo_depth)
        self.identity_bytes = encode_identity(self.identity)
        assert len(self.identity_bytes) == IDENTIFY_BYTES
        super().__init__({
            "rx": In(stream.Signature(8)),
            "tx": Out(stream.Signature(8)),
            "bus": Out(bus_signature(ap)),
        })

    def elaborate(self, platform):
        mp = self.max_payload
        depth = mp + IDENTIFY_BYTES      # the buffer: payload, then the IDENTIFY reply
        ebmax = max(self.ap.elem_bytes(s) for s in Sel)
        # Lengths never exceed max(max_payload, IDENTIFY_BYTES) once the header is checked (an INFER
        # reply: a READ's and one element more), so they are kept only that wide.
        length_bits = max(8, bits_for(max(mp, IDENTIFY_BYTES) + ebmax))
        m = Module()
        m.submodules.buffer = buffer = PayloadBuffer(mp, self.identity_bytes)
        m.submodules.timer = timer = Timer(self.timeout_cycles, self.run_timeout_cycles)
        m.submodules.crc = crc = self.crc_unit()
        m.submodules.length = length = Length(length_bits, ebmax)
        kw = dict(length_bits=length_bits, buffer_depth=depth)
        m.submodules.receive = rcv = Receiver(max_payload=mp, delta_max=ebmax, **kw)
        m.submodules.execute = exe = Executor(self.ap, max_payload=mp, **kw)
        m.submodules.reply = rpl = ReplyEmitter(delta_max=ebmax, **kw)

        if self.fifo_depth:   # full duplex: bytes arriving while the link executes or replies wait here
            m.submodules.rx_fifo = rx_fifo = ByteFIFO(self.fifo_depth)
            m.submodules.tx_fifo = tx_fifo = ByteFIFO(self.fifo_depth, skid=False)   # into a UART register
            connect(m, flipped(self.rx), rx_fifo.w)
            connect(m, rx_fifo.r, rcv.rx)
            connect(m, rpl.tx, tx_fifo.w)
            connect(m, tx_fifo.r, flipped(self.tx))
        else:
            connect(m, flipped(self.rx), rcv.rx)
            connect(m, rpl.tx, flipped(self.tx))
        connect(m, exe.bus, flipped(self.bus))
        # The phases never overlap: their requests to the shared units are ORed.
        share(m, buffer.port, rcv.buf, exe.buf, rpl.buf)
        share(m, crc.port, rcv.crc, rpl.crc)
        share(m, timer.port, rcv.timer, exe.timer)
        share(m, length.port, rcv.length, exe.length, rpl.length)
        share(m, rpl.request, rcv.reply, exe.reply)
        # receive -> execute -> reply -> receive
        m.d.comb += [exe.cmd.eq(rcv.cmd), exe.sof.eq(rcv.sof), exe.pvalid.eq(rcv.pvalid), exe.pbyte.eq(rcv.pbyte),
                     exe.in_payload.eq(rcv.in_payload), exe.accept.eq(rcv.accept)]
        connect(m, exe.read, rpl.read)
        m.d.comb += [rpl.cmd.eq(rcv.cmd), rpl.seq.eq(rcv.seq), exe.hdr_done.eq(rpl.hdr_done),
                     exe.reply_last.eq(rpl.last), rcv.resume.eq(rpl.done)]
        return m
