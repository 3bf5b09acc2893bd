"""The host link: the framed, CRC-checked request/reply protocol of docs/PROTOCOL.md in gateware.

One idea: *turn a byte stream into bus accesses, safely*. :class:`HostLink` receives request frames
on ``rx`` (a byte stream, e.g. from :class:`~cssnn.hw.uart.UARTRx`), buffers the payload in one block
RAM, checks the CRC, range-checks the command against the memory map (:mod:`cssnn.hw.memmap`) and
only then executes it on ``bus``; it answers every frame, good or bad, with a reply frame on ``tx``.
A corrupted frame therefore never half-writes a memory, and no input makes the link hang: a frame
that stops arriving ends with a TIMEOUT reply, a run that never finishes with WATCHDOG.

Small by construction (it shares an iCE40UP5K with the accelerator): a byte-serial datapath (one
CRC byte per clock; elements assembled or serialised a byte per clock, plus one clock per element),
per-selector constants from one case statement, one counter shared by the frame timeout and the run
watchdog, and the IDENTIFY reply stored as the initial contents of the payload buffer's spare words
(no ROM logic). The protocol constants and the identity image come from :mod:`cssnn.sw.host.protocol`, the
specification in code, so gateware and host cannot disagree.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import bits_for

from cssnn.sw.host.protocol import (IDENTIFY_BYTES, READ_PAYLOAD, SYNC_REPLY, SYNC_REQUEST, WRITE_HEADER, Cmd, Identity,
                           Status, encode_identity)
from cssnn.hw.crc import CRC16_INIT, crc16_next
from cssnn.hw.memmap import BUS_READ_LATENCY, AccelParams, Sel, bus_signature

__all__ = ["HostLink"]

MAX_PAYLOAD_LIMIT = 32768
CYCLES_LIMIT = 2**32 - 1  # the identity block reports the timeouts as u32


class HostLink(wiring.Component):
    """Protocol engine between a byte stream and the accelerator bus.

    Parameters: ``ap`` the accelerator's :class:`AccelParams`; ``max_payload`` the largest request
    payload (the buffer size; a READ reply carries at most this many bytes); ``timeout_cycles`` the
    largest gap between two bytes of a frame before the link gives up on it (TIMEOUT);
    ``run_timeout_cycles`` the RUN watchdog (WATCHDOG).

    Ports: ``rx`` In(stream.Signature(8)), ``tx`` Out(stream.Signature(8)), ``bus``
    Out(:func:`bus_signature`). ``rx`` is only ready while a frame is being received (or hunted for):
    with a back-pressured byte source, requests may be pipelined; a UART drops what arrives meanwhile.
    """

    def __init__(self, ap: AccelParams, *, max_payload: int = 256, timeout_cycles: int = 1 << 20,
                 run_timeout_cycles: int = 1 << 24):
        def fail(exc, msg):
            self._MustUse__silence = True
            raise exc(msg)

        if not isinstance(ap, AccelParams):
            fail(TypeError, f"ap must be an AccelParams, not {ap!r}")
        ebmax = max(ap.elem_bytes(s) for s in Sel)
        lo = max(16, READ_PAYLOAD, WRITE_HEADER + ebmax)
        if not isinstance(max_payload, int) or isinstance(max_payload, bool) or not lo <= max_payload <= MAX_PAYLOAD_LIMIT:
            fail(ValueError, f"max_payload must be an int in [{lo}, {MAX_PAYLOAD_LIMIT}] (at least one "
                             f"{ebmax}-byte element per WRITE), not {max_payload!r}")
        for name, v in (("timeout_cycles", timeout_cycles), ("run_timeout_cycles", run_timeout_cycles)):
            if not isinstance(v, int) or isinstance(v, bool) or not 2 <= v <= CYCLES_LIMIT:
                fail(ValueError, f"{name} must be an int in [2, 2**32 - 1], not {v!r}")
        if ap.bus_addr_bits > 32:
            fail(ValueError, f"bus_addr_bits={ap.bus_addr_bits}: addresses beyond 32 bits do not fit the protocol")
        self.ap = ap
        self.max_payload = max_payload
        self.timeout_cycles = timeout_cycles
        self.run_timeout_cycles = run_timeout_cycles
        self.identity = Identity(ap, max_payload, timeout_cycles, run_timeout_cycles)
        self.identity_bytes = encode_identity(self.identity)
        super().__init__({
            "rx": In(stream.Signature(8)),
            "tx": Out(stream.Signature(8)),
            "bus": Out(bus_signature(ap)),
        })

    def elaborate(self, platform):
        ap, mp = self.ap, self.max_payload
        rx, tx, bus = self.rx, self.tx, self.bus
        A, D = ap.bus_addr_bits, ap.bus_data_bits
        ebmax = max(ap.elem_bytes(s) for s in Sel)
        m = Module()

        # Payload buffer; its words above max_payload hold the IDENTIFY reply (never overwritten:
        # a payload is at most max_payload bytes).
        ident = list(self.identity_bytes)
        assert len(ident) == IDENTIFY_BYTES
        m.submodules.buf = buf = memory.Memory(shape=8, depth=mp + len(ident), init=[0] * mp + ident)
        wr = buf.write_port()
        rd = buf.read_port(domain="sync")

        crc = Signal(16, init=CRC16_INIT)
        cmd, seq = Signal(8), Signal(8)
        # Lengths and counts never exceed max(max_payload, IDENTIFY_BYTES) once the header is checked,
        # so they are kept only that wide (a READ count's high bits collapse into count_big).
        length = Signal(max(8, bits_for(max(mp, IDENTIFY_BYTES))))  # request len; reply len, counted down
        status = Signal(3)
        ptr = Signal(range(mp + len(ident) + 1))  # buffer address: write, WRITE fetch, reply read
        hb = Signal(3)         # byte index within the header / CRC
        # Frame timeout and run watchdog share one up-counter: cleared (a free synchronous reset on
        # iCE40 flip-flops) and compared with a constant, cheaper than a loadable down-counter.
        timer = Signal(range(max(self.timeout_cycles, self.run_timeout_cycles)))
        timer_expired = Signal()
        sel_raw = Signal(8)
        addr = Signal(32)      # the bus address register (low A bits) once executing
        count = Signal(range(mp + 1))  # READ: requested count; WRITE: elements received; then a down counter
        count_big = Signal()   # READ count >= 2**len(count)
        ebc = Signal(range(max(2, ebmax)))  # byte within an element
        wdata = Signal(8 * ebmax)

        # Per-selector constants: one small case statement (a few LUTs per output bit).
        sel = sel_raw[:3]
        eb = Signal(range(ebmax + 1))
        depth = Signal(A + 1)
        maxcount = Signal(range(mp + 1))
        lastmask = Signal(8)   # bits of the element's last byte that exist (elem_bits(sel) mod 8)
        writable = Signal()
        with m.Switch(sel):
            for s in Sel:
                with m.Case(s):
                    ebs, bits = ap.elem_bytes(s), ap.elem_bits(s)
                    m.d.comb += [eb.eq(ebs), depth.eq(ap.depth(s)), maxcount.eq(mp // ebs),
                                 lastmask.eq((1 << (bits - 8 * (ebs - 1))) - 1), writable.eq(ap.writable(s))]
        last_byte = ebc == eb - 1
        byte_mask = Mux(last_byte, lastmask, 0xFF)

        crc_in = Signal(8)
        crc_upd = crc16_next(crc, crc_in)
        rx_fire = rx.valid & rx.ready

        # Transmit: a one-entry output register between the FSM and ``tx`` (for timing: no path from
        # the reply's byte mux through the CRC into the FSM in one clock). The FSM loads a byte when the
        # register is free or being emptied (``emit_rdy``); a CRC-covered byte updates the CRC one
        # clock later, from the register (``crc_pend``), so the CRC sees registers only.
        ob_valid, ob_data, crc_pend = Signal(), Signal(8), Signal()
        emit_rdy = ~ob_valid | tx.ready
        m.d.comb += [tx.valid.eq(ob_valid), tx.payload.eq(ob_data)]
        with m.If(tx.ready):
            m.d.sync += ob_valid.eq(0)
        m.d.sync += crc_pend.eq(0)
        with m.If(crc_pend):
            m.d.comb += crc_in.eq(ob_data)
            m.d.sync += crc.eq(crc_upd)

        def emit(byte, covered):
            m.d.sync += [ob_valid.eq(1), ob_data.eq(byte), crc_pend.eq(covered)]

        m.d.comb += [
            bus.sel.eq(sel), bus.addr.eq(addr[:A]), bus.wdata.eq(wdata[:D]),
            rd.addr.eq(ptr), rd.en.eq(1),
            wr.addr.eq(ptr), wr.data.eq(rx.payload),
        ]

        def reply(st, *, with_len=False):
            m.d.sync += [status.eq(st), hb.eq(0), ebc.eq(0)]
            if not with_len:
                m.d.sync += length.eq(0)
            m.next = "T_HDR"

        def frame_timer():
            # Inside a frame: restart on every byte, give up after timeout_cycles quiet clocks.
            with m.If(rx_fire):
                m.d.sync += [timer.eq(0), timer_expired.eq(0)]
            with m.Elif(timer_expired):
                reply(Status.TIMEOUT)
            with m.Else():
                timer_step()

        is_read, is_write = cmd == Cmd.READ, cmd == Cmd.WRITE
        is_rw = is_read | is_write
        assert sorted(Cmd) == list(range(min(Cmd), max(Cmd) + 1)), "command codes must be contiguous"
        known = (cmd >= min(Cmd)) & (cmd < max(Cmd) + 1)
        # CHECK's length, count and range tests are registered, off its long priority chain (for
        # timing): cmd, length, sel, addr, count and ebc are final after the last payload byte (or the
        # header), and CHECK comes at least three clocks later (the two CRC bytes), so the registered
        # tests are valid there.
        end = Signal(max(A, len(count)) + 1)
        m.d.comb += end.eq(addr[:A] + count)
        bad_length, bad_count, out_of_range = Signal(), Signal(), Signal()
        m.d.sync += [
            bad_length.eq((((cmd == Cmd.IDENTIFY) | (cmd == Cmd.RUN)) & (length != 0))
                          | (is_read & (length != READ_PAYLOAD)) | (is_write & (length < WRITE_HEADER))),
            bad_count.eq((is_write & ((ebc != 0) | (count == 0)))
                         | (is_read & ((count == 0) | count_big | (maxcount < count)))),
            out_of_range.eq((addr[A:].any() if A < 32 else 0) | (depth < end)),
        ]

        with m.FSM(init="HUNT") as fsm:
            # One adder each for length and count, shared by the states that step them.
            length_step = (length + Mux(fsm.ongoing("R_LEN"), eb, -1))[:len(length)]
            count_step = (count + Mux(fsm.ongoing("PAYLOAD"), 1, -1))[:len(count)]
            # timer_expired is registered (for timing): set by the step that brings the timer to its
            # limit - 1, i.e. exactly when the timer equals limit - 1 (limits are at least 2)
            def timer_step():
                limit = Mux(fsm.ongoing("RUN_WAIT"), self.run_timeout_cycles, self.timeout_cycles)
                m.d.sync += [timer.eq(timer + 1), timer_expired.eq(timer == limit - 2)]

            # ---- receive ----
            with m.State("HUNT"):
                m.d.comb += rx.ready.eq(1)
                with m.If(rx_fire & (rx.payload == SYNC_REQUEST)):
                    m.d.sync += [crc.eq(CRC16_INIT), cmd.eq(0), seq.eq(0), length.eq(0), hb.eq(0), ptr.eq(0),
                                 count.eq(0), count_big.eq(0), ebc.eq(0), timer.eq(0), timer_expired.eq(0)]
                    m.next = "HEADER"

            with m.State("HEADER"):  # cmd, seq, len (2)
                m.d.comb += [rx.ready.eq(1), crc_in.eq(rx.payload)]
                with m.If(rx_fire):
                    m.d.sync += [crc.eq(crc_upd), hb.eq(hb + 1)]
                    with m.Switch(hb):
                        with m.Case(0):
                            m.d.sync += cmd.eq(rx.payload)
                        with m.Case(1):
                            m.d.sync += seq.eq(rx.payload)
                        with m.Case(2):
                            m.d.sync += length[:8].eq(rx.payload)
                        with m.Default():
                            new_len = Cat(length[:8], rx.payload)
                            m.d.sync += [length[8:].eq(rx.payload), hb.eq(0)]  # fits once checked
                            with m.If(new_len >= mp + 1):  # cannot be buffered: answer now, hunt again
                                reply(Status.BAD_LENGTH)
                            with m.Elif(new_len == 0):
                                m.next = "CRC"
                            with m.Else():
                                m.next = "PAYLOAD"
                frame_timer()

            with m.State("PAYLOAD"):
                m.d.comb += [rx.ready.eq(1), crc_in.eq(rx.payload), wr.en.eq(rx_fire)]
                with m.If(rx_fire):
                    m.d.sync += [crc.eq(crc_upd), ptr.eq(ptr + 1)]
                    # Capture the READ/WRITE header fields as they pass (LE: shift in from the top).
                    with m.If(ptr == 0):
                        m.d.sync += sel_raw.eq(rx.payload)
                    with m.If((ptr >= 1) & (ptr < 5)):
                        m.d.sync += addr.eq(Cat(addr[8:], rx.payload))
                    cw = len(count)
                    with m.If(is_read & (ptr == 5)):
                        m.d.sync += [count[:8].eq(rx.payload), count_big.eq(rx.payload[cw:].any() if cw < 8 else 0)]
                    with m.If(is_read & (ptr == 6)):
                        m.d.sync += [count[8:].eq(rx.payload), count_big.eq(count_big | rx.payload[max(0, cw - 8):].any())]
                    with m.If(is_write & (ptr >= WRITE_HEADER)):  # count whole elements
                        with m.If(last_byte):
                            m.d.sync += [ebc.eq(0), count.eq(count_step)]
                        with m.Else():
                            m.d.sync += ebc.eq(ebc + 1)
                    with m.If(ptr + 1 == length):
                        m.next = "CRC"
                frame_timer()

            with m.State("CRC"):
                m.d.comb += [rx.ready.eq(1), crc_in.eq(rx.payload)]
                with m.If(rx_fire):
                    m.d.sync += [crc.eq(crc_upd), hb.eq(hb + 1)]
                    with m.If(hb == 1):
                        m.d.sync += hb.eq(0)
                        with m.If(crc_upd == 0):  # CRC over the frame including its CRC
                            m.next = "CHECK"
                        with m.Else():
                            reply(Status.BAD_CRC)
                frame_timer()

            # ---- check (the order is part of the protocol: docs/PROTOCOL.md) ----
            with m.State("CHECK"):
                with m.If(~known):
                    reply(Status.UNKNOWN_CMD)
                with m.Elif(bad_length):
                    reply(Status.BAD_LENGTH)
                with m.Elif(cmd == Cmd.IDENTIFY):
                    m.d.sync += [length.eq(IDENTIFY_BYTES), ptr.eq(mp)]
                    reply(Status.OK, with_len=True)
                with m.Elif(cmd == Cmd.ECHO):
                    m.d.sync += ptr.eq(0)
                    reply(Status.OK, with_len=True)
                with m.Elif(is_rw & sel_raw[3:].any()):
                    reply(Status.BAD_ADDRESS)
                with m.Elif(bad_count):
                    reply(Status.BAD_LENGTH)
                with m.Elif((is_rw & out_of_range) | (is_write & ~writable)):
                    reply(Status.BAD_ADDRESS)
                with m.Elif(bus.busy):
                    reply(Status.BUSY)
                with m.Elif(cmd == Cmd.RUN):
                    m.next = "RUN_START"
                with m.Elif(is_write):
                    m.d.sync += [ptr.eq(WRITE_HEADER), ebc.eq(0), wdata.eq(0)]
                    m.next = "W_FETCH"
                with m.Else():
                    m.d.sync += length.eq(0)
                    m.next = "R_LEN"

            # ---- execute ----
            with m.State("R_LEN"):  # reply length = count * elem_bytes by repeated addition (no multiplier)
                with m.If(count == 0):
                    reply(Status.OK, with_len=True)
                with m.Else():
                    m.d.sync += [length.eq(length_step), count.eq(count_step)]

            with m.State("W_FETCH"):  # the buffer's sync read: address now, byte next clock
                m.d.sync += ptr.eq(ptr + 1)
                m.next = "W_BYTE"

            with m.State("W_BYTE"):
                with m.Switch(ebc):  # byte lane enables (a case statement, no shifter)
                    for i in range(ebmax):
                        with m.Case(i):
                            m.d.sync += wdata[8 * i:8 * i + 8].eq(rd.data & byte_mask)
                m.d.sync += ptr.eq(ptr + 1)
                with m.If(last_byte):
                    m.d.sync += ebc.eq(0)
                    m.next = "W_STROBE"
                with m.Else():
                    m.d.sync += ebc.eq(ebc + 1)

            with m.State("W_STROBE"):
                # rd.en low holds the next element's first byte, read in the last W_BYTE clock.
                m.d.comb += [bus.we.eq(1), rd.en.eq(0)]
                m.d.sync += [addr[:A].eq(addr[:A] + 1), count.eq(count_step)]
                with m.If(count == 1):
                    reply(Status.OK)
                with m.Else():
                    m.next = "W_BYTE"

            with m.State("RUN_START"):
                m.d.comb += bus.start.eq(1)
                m.d.sync += [timer.eq(0), timer_expired.eq(0)]
                m.next = "RUN_WAIT"

            # bus.done is registered before use (for timing): it is combinational in the accelerator,
            # from the router's FIFO levels through the core's output handshake and the controller.
            done_q = Signal()
            m.d.sync += done_q.eq(bus.done)
            with m.State("RUN_WAIT"):
                with m.If(done_q):
                    reply(Status.OK)
                with m.Elif(timer_expired):
                    reply(Status.WATCHDOG)
                with m.Else():
                    timer_step()

            # ---- reply: 5A status cmd seq len payload crc ----
            with m.State("T_HDR"):
                # rd.en = 1: prefetch buf[ptr]
                hbyte = Signal(8)
                with m.Switch(hb):
                    with m.Case(0):
                        m.d.comb += hbyte.eq(SYNC_REPLY)
                    with m.Case(1):
                        m.d.comb += hbyte.eq(status)
                    with m.Case(2):
                        m.d.comb += hbyte.eq(cmd)
                    with m.Case(3):
                        m.d.comb += hbyte.eq(seq)
                    with m.Case(4):
                        m.d.comb += hbyte.eq(length[:8])
                    with m.Default():
                        m.d.comb += hbyte.eq(length[8:])
                with m.If(emit_rdy):  # the CRC covers status .. payload: start it at the SYNC byte
                    emit(hbyte, hb != 0)
                    m.d.sync += hb.eq(hb + 1)
                    with m.If(hb == 0):
                        m.d.sync += crc.eq(CRC16_INIT)
                    with m.If(hb == 5):
                        # buf[ptr] is prefetched; T_BUF reads ahead at ptr + 1.
                        m.d.sync += [hb.eq(0), ptr.eq(ptr + 1)]
                        with m.If(length == 0):
                            m.next = "T_CRC"
                        with m.Elif(is_read):
                            m.next = "T_RD_ADDR"
                        with m.Else():
                            m.next = "T_BUF"

            with m.State("T_BUF"):  # IDENTIFY, ECHO: bytes from the buffer, one per clock
                # The read port advances only when a byte is taken (its data holds otherwise).
                m.d.comb += rd.en.eq(emit_rdy)
                with m.If(emit_rdy):
                    emit(rd.data, 1)
                    m.d.sync += [ptr.eq(ptr + 1), length.eq(length_step)]
                    with m.If(length == 1):
                        m.next = "T_CRC"

            # rdata follows the address BUS_READ_LATENCY clocks later (addr holds meanwhile): T_RD_ADDR
            # and BUS_READ_LATENCY - 1 wait states, then T_RD_LATCH
            waits = [f"T_RD_WAIT{i}" for i in range(1, BUS_READ_LATENCY)]
            for state, nxt in zip(["T_RD_ADDR"] + waits, waits + ["T_RD_LATCH"]):
                with m.State(state):
                    m.next = nxt

            # For timing, the element is latched before it is used: bus.rdata comes combinationally
            # through the accelerator's lane and memory selects, too long a path to continue into the
            # byte select, CRC and FSM in the same clock.
            rword = Signal.like(bus.rdata)
            with m.State("T_RD_LATCH"):
                m.d.sync += rword.eq(bus.rdata)
                m.next = "T_RD_BYTE"

            with m.State("T_RD_BYTE"):
                rbyte = Signal(8)
                with m.Switch(ebc):
                    for i in range(ebmax):
                        with m.Case(i):
                            m.d.comb += rbyte.eq(rword[8 * i:8 * i + 8] & byte_mask)
                with m.If(emit_rdy):
                    emit(rbyte, 1)
                    m.d.sync += length.eq(length_step)
                    with m.If(last_byte):
                        m.d.sync += [ebc.eq(0), addr[:A].eq(addr[:A] + 1)]
                        with m.If(length == 1):
                            m.next = "T_CRC"
                        with m.Else():
                            m.next = "T_RD_ADDR"
                    with m.Else():
                        m.d.sync += ebc.eq(ebc + 1)

            with m.State("T_CRC"):
                # Waits for the last covered byte's CRC update (crc_pend).
                with m.If(emit_rdy & ~crc_pend):
                    emit(Mux(hb == 0, crc[8:], crc[:8]), 0)
                    m.d.sync += hb.eq(hb + 1)
                    with m.If(hb == 1):
                        m.d.sync += hb.eq(0)
                        m.next = "HUNT"
        return m
