"""The host link's executor: a checked frame becomes bus accesses.

While a frame arrives it captures the READ/WRITE payload header (``sel``, ``addr``, ``count``) and
counts WRITE elements from the payload bytes the receiver passes on. When the receiver ``accept``-s
the frame it checks it (in the order docs/PROTOCOL.md gives: command, payload length, selector,
element count, range and writability against the memory map of :mod:`cssnn.hw.memmap`, busy) and
executes it: IDENTIFY and ECHO point the reply at the buffer; WRITE moves one element per
``elem_bytes + 1`` clocks from the buffer to ``bus``; RUN pulses ``start`` and waits for ``done``
under the watchdog (the shared :class:`~.shared.Timer`); READ computes its reply length by repeated
addition (no multiplier), then, once the reply header is out, streams the elements byte by byte to
the reply emitter (``read``). SETUP is checked like a READ and keeps its window; INFER is a WRITE of
one byte per element (zero-extended), a RUN, then a READ of the class (COUNTER ``ARGMAX_INDEX``)
followed by the SETUP window. Every outcome ends in a reply request.
"""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Cat, Module, Mux, Shape, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from cssnn.hw.link.reply import reply_request_signature
from cssnn.hw.link.shared import buffer_signature, length_signature, timer_signature
from cssnn.hw.link.wire import IDENTIFY_BYTES, NO_CMD, READ_PAYLOAD, READ_PAYLOAD_LAYOUT, WRITE_HEADER, Cmd, Status, byte_offset
from cssnn.hw.memmap import AccelParams, Counter, Sel, bus_signature
from cssnn.hw.params import READ_LATENCY

__all__ = ["Executor"]

SEL_BITS = Shape.cast(Sel).width   #: the selector bits the bus carries (the byte's others must be 0)
SEL_AT, ADDR_AT, COUNT_AT = (byte_offset(READ_PAYLOAD_LAYOUT, n) for n in ("sel", "addr", "count"))
ADDR_BYTES = READ_PAYLOAD_LAYOUT["addr"].width // 8


class Executor(wiring.Component):
    """Parameters: ``ap`` (:class:`AccelParams`), ``max_payload``, ``length_bits``, ``buffer_depth``.

    Ports: ``bus`` Out(:func:`bus_signature`); from the receiver ``cmd``, ``sof``, ``pvalid``,
    ``pbyte``, ``in_payload``, ``accept``; to the reply emitter ``reply``
    Out(:func:`~.reply.reply_request_signature`), ``read`` Out(stream.Signature(8)) (READ's
    payload), and back ``hdr_done`` (the reply header is out), ``reply_last`` (one payload byte
    left); the shared units ``buf``, ``timer`` and ``length`` (the request's, then the reply's).
    """

    def __init__(self, ap: AccelParams, *, max_payload: int, length_bits: int, buffer_depth: int):
        self.ap, self.max_payload = ap, max_payload
        self.ebmax = max(ap.elem_bytes(s) for s in Sel)
        super().__init__({
            "bus": Out(bus_signature(ap)),
            "cmd": In(Cmd, init=NO_CMD),
            "sof": In(1), "pvalid": In(1), "pbyte": In(8), "in_payload": In(1), "accept": In(1),
            "reply": Out(reply_request_signature()),
            "read": Out(stream.Signature(8)),
            "hdr_done": In(1), "reply_last": In(1),
            "buf": Out(buffer_signature(buffer_depth)),
            "timer": Out(timer_signature()),
            "length": Out(length_signature(length_bits, self.ebmax)),
        })

    def elaborate(self, platform):
        m = Module()
        mp, ebmax = self.max_payload, self.ebmax
        f = SimpleNamespace(
            sel_raw=Signal(8),
            addr=Signal(32),                 # the bus address register (low A bits) once executing
            count=Signal(range(mp + 1)),     # READ: requested count; WRITE: elements received; then a down counter
            count_big=Signal(),              # READ count >= 2**len(count)
            ebc=Signal(range(max(2, ebmax))),  # byte within an element
            wdata=Signal(8 * ebmax),
            # INFER: the SETUP window (a checked READ payload; after reset the empty window), whether
            # the reply is being assembled, and whether the class element is being read (then the window)
            win_sel=Signal(8, init=Sel.COUNTER), win_addr=Signal(self.ap.bus_addr_bits), win_count=Signal(range(mp + 1)),
            reading=Signal(), first=Signal(),
        )
        cmd = self.cmd
        # The command decoded into registers (timing: an 8-bit compare off the critical paths): ``cmd``
        # is set with the header's first byte, two bytes before the payload's first.
        is_cmd = {c: Signal(name=f"is_{c.name.lower()}") for c in Cmd}
        for c, flag in is_cmd.items():
            m.d.sync += flag.eq(cmd == c)
        f.is_read, f.is_write, f.is_setup, f.is_infer, f.is_identify, f.is_run, f.is_echo = (
            is_cmd[c] for c in (Cmd.READ, Cmd.WRITE, Cmd.SETUP, Cmd.INFER, Cmd.IDENTIFY, Cmd.RUN, Cmd.ECHO))
        f.is_rlike, f.is_wlike = f.is_read | f.is_setup, f.is_write | f.is_infer   # checked as a READ / a WRITE
        f.count_step = (f.count + Mux(self.in_payload, 1, -1))[:len(f.count)]  # one adder, both directions
        k = self._selector_constants(m, f.sel_raw[:SEL_BITS])
        narrow = f.is_infer & ~f.reading     # INFER's input: one byte per element, zero-extended
        f.last_byte = narrow | (f.ebc == k.eb - 1)
        f.byte_mask = Mux(f.last_byte, Mux(narrow & (k.eb != 1), 0xFF, k.lastmask), 0xFF)
        m.d.comb += [self.bus.sel.eq(f.sel_raw[:SEL_BITS]), self.bus.addr.eq(f.addr[:self.ap.bus_addr_bits]),
                     self.bus.wdata.eq(f.wdata[:self.ap.bus_data_bits])]
        self._capture(m, f)
        self._sequence(m, f, k, self._checks(m, f, k))
        return m

    def _selector_constants(self, m, sel):
        """Per-selector constants: one small case statement (a few LUTs per output bit)."""
        ap, mp = self.ap, self.max_payload
        k = SimpleNamespace(eb=Signal(range(self.ebmax + 1)), depth=Signal(ap.bus_addr_bits + 1),
                            maxcount=Signal(range(mp + 1)),
                            lastmask=Signal(8),   # bits of the element's last byte that exist (elem_bits mod 8)
                            writable=Signal(), known=Signal())   # known: sel is a selector
        with m.Switch(sel):
            for s in Sel:
                with m.Case(s):
                    ebs, bits = ap.elem_bytes(s), ap.elem_bits(s)
                    m.d.comb += [k.eb.eq(ebs), k.depth.eq(ap.depth(s)), k.maxcount.eq(mp // ebs),
                                 k.lastmask.eq((1 << (bits - 8 * (ebs - 1))) - 1), k.writable.eq(ap.writable(s)), k.known.eq(1)]
        return k

    def _capture(self, m, f):
        """The READ/WRITE payload header as it passes (LE: shift in from the top), WRITE elements counted."""
        ptr, byte, cw = self.buf.ptr, self.pbyte, len(f.count)
        with m.If(self.sof):
            m.d.sync += [f.count.eq(0), f.count_big.eq(0), f.ebc.eq(0), f.reading.eq(0), f.first.eq(0)]
        with m.If(self.pvalid):
            with m.If(ptr == SEL_AT):
                m.d.sync += f.sel_raw.eq(byte)
            with m.If((ptr >= ADDR_AT) & (ptr < ADDR_AT + ADDR_BYTES)):
                m.d.sync += f.addr.eq(Cat(f.addr[8:], byte))
            with m.If(f.is_rlike & (ptr == COUNT_AT)):
                m.d.sync += [f.count[:8].eq(byte), f.count_big.eq(byte[cw:].any() if cw < 8 else 0)]
            with m.If(f.is_rlike & (ptr == COUNT_AT + 1)):
                m.d.sync += [f.count[8:].eq(byte), f.count_big.eq(f.count_big | byte[max(0, cw - 8):].any())]
            with m.If(f.is_wlike & (ptr >= WRITE_HEADER)):  # count whole elements
                with m.If(f.last_byte):
                    m.d.sync += [f.ebc.eq(0), f.count.eq(f.count_step)]
                with m.Else():
                    m.d.sync += f.ebc.eq(f.ebc + 1)

    def _checks(self, m, f, k):
        """The length, count and range tests, registered (timing, docs/BOARDS.md): their inputs are
        final after the last payload byte, and CHECK comes at least three clocks later."""
        A, cmd, length = self.ap.bus_addr_bits, self.cmd, self.length.value
        end = Signal(max(A, len(f.count)) + 1)
        m.d.comb += end.eq(f.addr[:A] + f.count)
        c = SimpleNamespace(bad_length=Signal(), bad_count=Signal(), out_of_range=Signal())
        m.d.sync += [
            c.bad_length.eq(((f.is_identify | f.is_run) & (length != 0))
                            | (f.is_rlike & (length != READ_PAYLOAD)) | (f.is_wlike & (length < WRITE_HEADER))),
            c.bad_count.eq((f.is_wlike & ((f.ebc != 0) | (f.count == 0))) | (f.is_read & (f.count == 0))
                           | (f.is_rlike & (f.count_big | (k.maxcount < f.count)))),   # SETUP: count 0 is the class alone
            c.out_of_range.eq((f.addr[A:].any() if A < 32 else 0) | (k.depth < end)),
        ]
        assert sorted(Cmd) == list(range(min(Cmd), max(Cmd) + 1)), "command codes must be contiguous"
        c.known = Signal()
        m.d.sync += c.known.eq((cmd >= min(Cmd)) & (cmd < max(Cmd) + 1))
        return c

    def _sequence(self, m, f, k, c):
        bus, buf = self.bus, self.buf
        is_rw = f.is_rlike | f.is_wlike

        def reply(status, then="IDLE", *, payload=False):   # without payload: length 0
            m.d.comb += [self.reply.start.eq(1), self.reply.status.eq(status)]
            if not payload:
                m.d.comb += self.length.clear.eq(1)
            m.next = then

        def reply_from_buffer(at):   # OK, with ``length`` bytes from the buffer at ``at``
            m.d.comb += [buf.seek.eq(1), buf.seek_to.eq(at)]
            reply(Status.OK, payload=True)

        with m.FSM(init="IDLE"):
            with m.State("IDLE"):
                with m.If(self.accept):
                    m.next = "CHECK"

            with m.State("CHECK"):  # the order is part of the protocol (docs/PROTOCOL.md)
                with m.If(~c.known):
                    reply(Status.UNKNOWN_CMD)
                with m.Elif(c.bad_length):
                    reply(Status.BAD_LENGTH)
                with m.Elif(f.is_identify):   # the identity image, above the payload
                    m.d.comb += [self.length.set.eq(1), self.length.set_to.eq(IDENTIFY_BYTES)]
                    reply_from_buffer(self.max_payload)
                with m.Elif(f.is_echo):   # the payload, as long as the request's
                    reply_from_buffer(0)
                with m.Elif(is_rw & (f.sel_raw[SEL_BITS:].any() | ~k.known)):
                    reply(Status.BAD_ADDRESS)
                with m.Elif(c.bad_count):
                    reply(Status.BAD_LENGTH)
                with m.Elif((is_rw & c.out_of_range) | (f.is_wlike & ~k.writable)):
                    reply(Status.BAD_ADDRESS)
                with m.Elif(bus.busy):
                    reply(Status.BUSY)
                with m.Elif(f.is_run):
                    m.next = "RUN_START"
                with m.Elif(f.is_wlike):
                    m.d.comb += [buf.seek.eq(1), buf.seek_to.eq(WRITE_HEADER)]
                    m.d.sync += [f.ebc.eq(0), f.wdata.eq(0)]
                    m.next = "W_FETCH"
                with m.Elif(f.is_setup):   # keep the checked window for INFER's replies
                    m.d.sync += [f.win_sel.eq(f.sel_raw), f.win_addr.eq(f.addr), f.win_count.eq(f.count)]
                    reply(Status.OK)
                with m.Else():
                    m.d.comb += self.length.clear.eq(1)
                    m.next = "R_LEN"

            self._read_states(m, f, k, reply)
            self._write_states(m, f, k, reply)

            with m.State("RUN_START"):
                m.d.comb += [bus.start.eq(1), self.timer.clear.eq(1)]
                m.next = "RUN_WAIT"

            # bus.done is registered before use (timing, docs/BOARDS.md).
            done_q = Signal()
            m.d.sync += done_q.eq(bus.done)
            with m.State("RUN_WAIT"):
                m.d.comb += self.timer.watchdog.eq(1)
                with m.If(done_q & f.is_infer):   # the reply: the window's length first, then the class's
                    m.d.sync += [f.reading.eq(1), f.sel_raw.eq(f.win_sel), f.addr.eq(f.win_addr),
                                 f.count.eq(f.win_count)]
                    m.d.comb += self.length.clear.eq(1)
                    m.next = "R_LEN"
                with m.Elif(done_q):
                    reply(Status.OK)
                with m.Elif(self.timer.expired):
                    reply(Status.WATCHDOG)
                with m.Else():
                    m.d.comb += self.timer.step.eq(1)

    def _read_states(self, m, f, k, reply):
        A, bus = self.ap.bus_addr_bits, self.bus
        with m.State("R_LEN"):  # reply length = count * elem_bytes by repeated addition (no multiplier)
            with m.If((f.count == 0) & f.reading):   # INFER: the class element goes first
                m.d.sync += [f.sel_raw.eq(Sel.COUNTER), f.addr.eq(Counter.ARGMAX_INDEX), f.first.eq(1)]
                m.next = "R_CLASS"
            with m.Elif(f.count == 0):
                reply(Status.OK, then="R_HOLD", payload=True)
            with m.Else():
                m.d.comb += [self.length.up.eq(1), self.length.delta.eq(k.eb)]
                m.d.sync += f.count.eq(f.count_step)

        with m.State("R_CLASS"):   # k is COUNTER's now
            m.d.comb += [self.length.up.eq(1), self.length.delta.eq(k.eb)]
            reply(Status.OK, then="R_HOLD", payload=True)

        with m.State("R_HOLD"):  # while the reply header goes out
            with m.If(self.hdr_done):
                m.next = "RD_ADDR"

        # rdata follows the address READ_LATENCY clocks later (addr holds meanwhile): RD_ADDR
        # and READ_LATENCY - 1 wait states, then RD_LATCH
        waits = [f"RD_WAIT{i}" for i in range(1, READ_LATENCY)]
        for state, nxt in zip(["RD_ADDR"] + waits, waits + ["RD_LATCH"]):
            with m.State(state):
                m.next = nxt

        rword = Signal.like(bus.rdata)   # registered (timing, docs/BOARDS.md)
        with m.State("RD_LATCH"):
            m.d.sync += rword.eq(bus.rdata)
            m.next = "RD_BYTE"

        with m.State("RD_BYTE"):
            with m.Switch(f.ebc):
                for i in range(self.ebmax):
                    with m.Case(i):
                        m.d.comb += self.read.payload.eq(rword[8 * i:8 * i + 8] & f.byte_mask)
            m.d.comb += self.read.valid.eq(1)
            with m.If(self.read.ready):
                with m.If(f.last_byte):
                    m.d.sync += [f.ebc.eq(0), f.addr[:A].eq(f.addr[:A] + 1)]
                    with m.If(f.first):   # INFER: the class is out, the window follows
                        m.d.sync += [f.first.eq(0), f.sel_raw.eq(f.win_sel), f.addr.eq(f.win_addr)]
                    with m.If(self.reply_last):
                        m.next = "IDLE"
                    with m.Else():
                        m.next = "RD_ADDR"
                with m.Else():
                    m.d.sync += f.ebc.eq(f.ebc + 1)

    def _write_states(self, m, f, k, reply):
        A, buf = self.ap.bus_addr_bits, self.buf
        with m.State("W_FETCH"):  # the buffer's sync read: address now, byte next clock
            m.d.comb += buf.step.eq(1)
            m.next = "W_BYTE"

        with m.State("W_BYTE"):
            with m.Switch(f.ebc):  # byte lane enables (a case statement, no shifter)
                for i in range(self.ebmax):
                    with m.Case(i):
                        m.d.sync += f.wdata[8 * i:8 * i + 8].eq(buf.rdata & f.byte_mask)
            m.d.comb += buf.step.eq(1)
            with m.If(f.last_byte):
                m.d.sync += f.ebc.eq(0)
                m.next = "W_STROBE"
            with m.Else():
                m.d.sync += f.ebc.eq(f.ebc + 1)

        with m.State("W_STROBE"):
            # hold: the read port keeps the next element's first byte, read in the last W_BYTE clock.
            m.d.comb += [self.bus.we.eq(1), buf.hold.eq(1)]
            m.d.sync += [f.addr[:A].eq(f.addr[:A] + 1), f.count.eq(f.count_step)]
            with m.If((f.count == 1) & f.is_infer):
                m.next = "RUN_START"
            with m.Elif(f.count == 1):
                reply(Status.OK)
            with m.Else():
                m.next = "W_BYTE"
