"""The host link's reply emitter: ``5A status cmd seq len payload crc`` on ``tx``.

A reply request (``start`` with its ``status``, from the receiver or the executor) starts a frame:
the header (from :data:`~.wire.REPLY_HEADER_LAYOUT`), ``length`` payload bytes (from the shared
:class:`~.shared.PayloadBuffer`, or for READ from the executor's ``read`` stream), then the CRC over
status .. payload, computed on the shared :class:`~.crc.Crc16` as the bytes leave. The payload
length is the shared :class:`~.shared.Length`, which whoever asks for the reply has set (0 for a
reply without payload); it counts down as bytes leave. ``done`` pulses as the last byte is taken,
and the receiver hunts again.

Bytes go out through a one-entry output register (timing, docs/BOARDS.md): a byte is loaded when the
register is free or being emptied (``emit_rdy``), and a CRC-covered byte updates the CRC one clock
later, from that register, so the CRC sees registers only.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from cssnn.hw.link.crc import crc_signature
from cssnn.hw.link.shared import buffer_signature, length_signature
from cssnn.hw.link.wire import NO_CMD, REPLY_HEADER, REPLY_HEADER_LAYOUT, SYNC_REPLY, Cmd, Status

__all__ = ["ReplyEmitter", "reply_request_signature"]


def reply_request_signature() -> wiring.Signature:
    """Asking for a reply (the receiver, the executor): ``start`` (one clock) with its ``status``."""
    return wiring.Signature({"start": Out(1), "status": Out(Status)})


class ReplyEmitter(wiring.Component):
    """Parameters: ``length_bits``, ``delta_max`` (of the shared :class:`~.shared.Length`), ``buffer_depth``.

    Ports: ``tx`` Out(stream.Signature(8)); ``request`` In(:func:`reply_request_signature`);
    ``cmd`` In(Cmd), ``seq`` In(8) (echoed); ``read`` In(stream.Signature(8)) (READ's payload);
    ``hdr_done``, ``last`` (one payload byte left), ``done`` Out(1); the shared units ``buf``,
    ``crc`` and ``length`` (the payload length, set before ``start``).
    """

    def __init__(self, *, length_bits: int, delta_max: int, buffer_depth: int):
        super().__init__({
            "tx": Out(stream.Signature(8)),
            "request": In(reply_request_signature()),
            "cmd": In(Cmd, init=NO_CMD), "seq": In(8),
            "read": In(stream.Signature(8)),
            "hdr_done": Out(1), "last": Out(1), "done": Out(1),
            "buf": Out(buffer_signature(buffer_depth)),
            "crc": Out(crc_signature()),
            "length": Out(length_signature(length_bits, delta_max)),
        })

    def elaborate(self, platform):
        m = Module()
        tx, buf, crc = self.tx, self.buf, self.crc
        status = Signal(Status)
        from_read = Signal()   # the payload comes from the executor (READ, INFER), not the buffer
        length = self.length.value
        hb = Signal(range(REPLY_HEADER))   # byte index within the header / the CRC

        ob_valid, ob_data, crc_pend = Signal(), Signal(8), Signal()
        emit_rdy = ~ob_valid | tx.ready
        m.d.comb += [tx.valid.eq(ob_valid), tx.payload.eq(ob_data)]
        with m.If(tx.ready):
            m.d.sync += ob_valid.eq(0)
        m.d.sync += crc_pend.eq(0)
        with m.If(crc_pend):
            m.d.comb += [crc.en.eq(1), crc.data.eq(ob_data)]

        def emit(byte, covered):
            m.d.sync += [ob_valid.eq(1), ob_data.eq(byte), crc_pend.eq(covered)]

        m.d.comb += self.last.eq(length == 1)

        def payload_byte(byte):
            emit(byte, 1)
            m.d.comb += self.length.down.eq(1)
            with m.If(length == 1):
                m.next = "CRC"

        header = Signal(REPLY_HEADER_LAYOUT)
        m.d.comb += [header.sync.eq(SYNC_REPLY), header.status.eq(status), header.cmd.eq(self.cmd),
                     header.seq.eq(self.seq), header.len.eq(length)]
        hbyte = Signal(8)
        with m.Switch(hb):
            for i in range(REPLY_HEADER):
                with m.Case(i) if i < REPLY_HEADER - 1 else m.Default():
                    m.d.comb += hbyte.eq(header.as_value()[8 * i:8 * i + 8])

        with m.FSM(init="IDLE"):
            with m.State("IDLE"):
                with m.If(self.request.start):
                    m.d.sync += [status.eq(self.request.status),
                                 from_read.eq((self.cmd == Cmd.READ) | (self.cmd == Cmd.INFER))]
                    m.next = "HEADER"

            with m.State("HEADER"):  # the read port prefetches buf[ptr]
                with m.If(emit_rdy):  # the CRC covers status .. payload: start it at the SYNC byte
                    emit(hbyte, hb != 0)
                    m.d.sync += hb.eq(hb + 1)
                    with m.If(hb == 0):
                        m.d.comb += crc.init.eq(1)
                    with m.If(hb == REPLY_HEADER - 1):
                        # buf[ptr] is prefetched; BUFFER reads ahead at ptr + 1.
                        m.d.sync += hb.eq(0)
                        m.d.comb += [buf.step.eq(1), self.hdr_done.eq(1)]
                        with m.If(length == 0):
                            m.next = "CRC"
                        with m.Elif(from_read):
                            m.next = "READ"
                        with m.Else():
                            m.next = "BUFFER"

            with m.State("BUFFER"):  # IDENTIFY, ECHO: bytes from the buffer, one per clock
                # The read port advances only when a byte is taken (its data holds otherwise).
                m.d.comb += buf.hold.eq(~emit_rdy)
                with m.If(emit_rdy):
                    m.d.comb += buf.step.eq(1)
                    payload_byte(buf.rdata)

            with m.State("READ"):  # READ, INFER: bytes from the executor
                m.d.comb += self.read.ready.eq(emit_rdy)
                with m.If(self.read.valid & emit_rdy):
                    payload_byte(self.read.payload)

            with m.State("CRC"):
                # Waits for the last covered byte's CRC update (crc_pend).
                with m.If(emit_rdy & ~crc_pend):
                    emit(Mux(hb == 0, crc.value[8:], crc.value[:8]), 0)
                    m.d.sync += hb.eq(hb + 1)
                    with m.If(hb == 1):
                        m.d.sync += hb.eq(0)
                        m.d.comb += self.done.eq(1)
                        m.next = "IDLE"
        return m
