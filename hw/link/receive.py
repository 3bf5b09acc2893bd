"""The host link's receiver: request frames from a byte stream, checked by their CRC.

It hunts for the SYNC byte, takes the header (``cmd``, ``seq``, ``len``), writes the payload into the
shared :class:`~.shared.PayloadBuffer` (offering each payload byte to the executor as it passes:
``pvalid``/``pbyte`` at buffer index ``ptr``), shifts everything after the SYNC through the shared
CRC and checks the residue. It knows nothing about commands: a checked frame is ``accept``-ed (the
executor takes over), a frame that cannot be received is ``reject``-ed with its status (BAD_LENGTH
for ``len > max_payload``, as soon as the header is in; BAD_CRC; TIMEOUT after ``timeout_cycles``
quiet clocks inside a frame). Either way it then waits for ``resume`` (the reply has been sent) and
hunts again. ``rx`` is ready only while receiving.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from cssnn.hw.link.crc import crc_signature
from cssnn.hw.link.reply import reply_request_signature
from cssnn.hw.link.shared import buffer_signature, length_signature, timer_signature
from cssnn.hw.link.wire import NO_CMD, REQUEST_HEADER, REQUEST_HEADER_LAYOUT, SYNC_REQUEST, Cmd, Status, byte_offset

__all__ = ["Receiver"]


class Receiver(wiring.Component):
    """Parameters: ``max_payload``, ``length_bits``, ``delta_max`` (of the shared :class:`~.shared.Length`),
    ``buffer_depth``.

    Ports: ``rx`` In(stream.Signature(8)); ``cmd`` Out(Cmd), ``seq`` Out(8) (the header, registered;
    valid from ``accept`` until the next frame; ``len`` goes into the shared ``length``);
    ``sof`` (a SYNC byte started a frame), ``pvalid``, ``pbyte``, ``in_payload`` (payload bytes as
    they pass); ``accept`` (the CRC checked); ``reply`` Out(:func:`~.reply.reply_request_signature`) (a
    frame rejected); ``resume`` In(1); and the shared units ``buf``, ``crc``, ``timer``, ``length``.
    """

    def __init__(self, *, max_payload: int, length_bits: int, delta_max: int, buffer_depth: int):
        self.max_payload = max_payload
        super().__init__({
            "rx": In(stream.Signature(8)),
            "cmd": Out(Cmd, init=NO_CMD),
            "seq": Out(8),
            "sof": Out(1), "pvalid": Out(1), "pbyte": Out(8), "in_payload": Out(1),
            "accept": Out(1),
            "reply": Out(reply_request_signature()),
            "resume": In(1),
            "buf": Out(buffer_signature(buffer_depth)),
            "crc": Out(crc_signature()),
            "timer": Out(timer_signature()),
            "length": Out(length_signature(length_bits, delta_max)),
        })

    def elaborate(self, platform):
        m = Module()
        rx, buf, crc, timer = self.rx, self.buf, self.crc, self.timer
        cmd, seq, length = self.cmd, self.seq, self.length.value
        hb = Signal(range(REQUEST_HEADER - 1))   # byte index after the SYNC: header 0-3, CRC 0-1
        rx_fire = rx.valid & rx.ready
        m.d.comb += [buf.wdata.eq(rx.payload), self.pbyte.eq(rx.payload), self.length.byte.eq(rx.payload)]

        def reject(status):   # a reply without payload
            m.d.comb += [self.reply.start.eq(1), self.reply.status.eq(status), self.length.clear.eq(1)]
            m.next = "WAIT"

        def shift_crc():   # every byte after the SYNC, CRC included
            m.d.comb += [rx.ready.eq(1), crc.data.eq(rx.payload), crc.en.eq(rx_fire)]

        def frame_timer():   # inside a frame: restart on every byte, give up after timeout_cycles
            with m.If(rx_fire):
                m.d.comb += timer.clear.eq(1)
            with m.Elif(timer.expired):
                reject(Status.TIMEOUT)
            with m.Else():
                m.d.comb += timer.step.eq(1)

        # The header after the SYNC byte, from its layout: hb = byte offset - 1.
        at = {name: byte_offset(REQUEST_HEADER_LAYOUT, name) - 1 for name in ("cmd", "seq", "len")}
        assert at == {"cmd": 0, "seq": 1, "len": 2} and REQUEST_HEADER == 5

        with m.FSM(init="HUNT"):
            with m.State("HUNT"):
                m.d.comb += rx.ready.eq(1)
                with m.If(rx_fire & (rx.payload == SYNC_REQUEST)):
                    m.d.sync += [cmd.eq(0), seq.eq(0), hb.eq(0)]
                    m.d.comb += [self.sof.eq(1), buf.rewind.eq(1), crc.init.eq(1), timer.clear.eq(1),
                                 self.length.clear.eq(1)]
                    m.next = "HEADER"

            with m.State("HEADER"):
                shift_crc()
                with m.If(rx_fire):
                    m.d.sync += hb.eq(hb + 1)
                    with m.Switch(hb):
                        with m.Case(at["cmd"]):
                            m.d.sync += cmd.eq(rx.payload)
                        with m.Case(at["seq"]):
                            m.d.sync += seq.eq(rx.payload)
                        with m.Case(at["len"]):
                            m.d.comb += self.length.lo.eq(1)
                        with m.Default():
                            new_len = Cat(length[:8], rx.payload)
                            m.d.comb += self.length.hi.eq(1)
                            m.d.sync += hb.eq(0)
                            with m.If(new_len >= self.max_payload + 1):  # cannot be buffered: answer now
                                reject(Status.BAD_LENGTH)
                            with m.Elif(new_len == 0):
                                m.next = "CRC"
                            with m.Else():
                                m.next = "PAYLOAD"
                frame_timer()

            with m.State("PAYLOAD"):
                shift_crc()
                m.d.comb += [self.in_payload.eq(1), self.pvalid.eq(rx_fire), buf.we.eq(rx_fire), buf.step.eq(rx_fire)]
                with m.If(rx_fire & (buf.ptr + 1 == length)):
                    m.next = "CRC"
                frame_timer()

            with m.State("CRC"):
                shift_crc()
                with m.If(rx_fire):
                    m.d.sync += hb.eq(hb + 1)
                    with m.If(hb == 1):
                        m.d.sync += hb.eq(0)
                        with m.If(crc.residue_zero):  # the CRC over the frame including its CRC is 0
                            m.d.comb += self.accept.eq(1)
                            m.next = "WAIT"
                        with m.Else():
                            reject(Status.BAD_CRC)
                frame_timer()

            with m.State("WAIT"):   # executing and/or replying
                with m.If(self.resume):
                    m.next = "HUNT"
        return m
