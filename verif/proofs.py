"""The hardware's formal properties, each a proof module for :func:`cssnn.verif.formal.prove`
(docs/HARDWARE.md "Formal proofs"). Every builder takes the design under test as a factory, so a test
can hand it a planted mutant and expect a counterexample.

- :func:`skid_buffer_proof`: no loss, no duplication, order kept, one item of latency at most two
  in flight, and ``i.ready`` a register (it does not depend on any input of the same clock).
- :func:`tsa_lane_proof`: for every input in the declared ranges, a TSA lane computes exactly the
  reference expression of docs/SEMANTICS.md sections 2 and 3 (no overflow anywhere).
- :func:`router_proof`: every accepted event leaves each port of its route exactly once, in order,
  and no other event leaves it, under arbitrary stalls on every port.
- :func:`controller_proof`: against the real router and an abstract core (any timing its
  handshakes allow), the controller hands out exactly the schedule of docs/SEMANTICS.md section 4
  and its run ends (``done`` once, after the last step's output) within a bound: no deadlock.
- :func:`receiver_proof`: the host link's receiver, with its shared CRC, timer, length and buffer,
  against request frames parsed independently from the bytes it takes: exactly one outcome per
  frame, ``accept`` exactly for a complete frame whose CRC checks, the reject status the protocol
  gives otherwise, and no byte sequence keeps it inside a frame beyond the frame timeout.
- :func:`credit_fifo_proof`: the core's update stage and output stage: with words issued only on
  a credit, the word FIFO never holds more than its depth (a word can never be lost), and the
  events leaving are the words' spikes and end markers, each once, in order.
"""

from __future__ import annotations

from amaranth.hdl import Assert, Assume, Cat, Const, Module, Mux, Signal, Value, signed

from cssnn.hw.core.core import MAX_INFLIGHT
from cssnn.hw.core.output import WORD_FIFO_DEPTH
from cssnn.hw.link.crc import CRC16_POLY, Crc16
from cssnn.hw.link.shared import Length, PayloadBuffer, Timer, share
from cssnn.hw.link.wire import CRC_BYTES, REQUEST_HEADER, SYNC_REQUEST, Status
from cssnn.hw.params import CoreParams, Mode
from cssnn.verif.formal import any_const, any_seq, initial

__all__ = ["skid_buffer_proof", "tsa_lane_proof", "router_proof", "ROUTER_TABLE", "controller_proof", "receiver_proof",
           "crc16_bitwise", "crc_proof", "credit_fifo_proof"]


def _stream_scoreboard(m: Module, i_fire, i_data, o_fire, o_data, *, capacity: int, width: int, bits: int = 5):
    """Assert that the items leaving (``o_fire``/``o_data``) are exactly the items entering, in order:
    count both; an arbitrary item number ``k`` (any_const) has its data remembered when it enters and
    compared when it leaves; at most ``capacity`` items are inside. Returns the counters ``entered``,
    ``left``, ``inside`` and the tracked item's ``k``, ``seen_k``, ``data_k`` (for invariants)."""
    entered, left = Signal(bits), Signal(bits)
    k = any_const(bits)
    seen_k, data_k = Signal(), Signal(width)
    with m.If(i_fire):
        m.d.sync += entered.eq(entered + 1)
        with m.If(entered == k):
            m.d.sync += [seen_k.eq(1), data_k.eq(i_data)]
    with m.If(o_fire):
        m.d.sync += left.eq(left + 1)
        m.d.comb += Assert(left != entered)                  # nothing leaves that did not enter
        with m.If(left == k):
            m.d.comb += [Assert(seen_k), Assert(o_data == data_k)]
    inside = Signal(bits)
    m.d.comb += [inside.eq(entered - left), Assert(inside <= capacity)]
    # the counters wrap: keep the trace shorter than the wrap (induction needs k ahead of the counters)
    m.d.comb += [Assume(entered != (1 << bits) - 1), Assume(k != (1 << bits) - 1)]
    return entered, left, inside, k, seen_k, data_k


def _producer(m: Module, stream, payload, *also) -> None:
    """Drive ``stream`` with a free ``valid`` and ``payload`` under the stream rules: an offered item
    stays offered, unchanged, until it is taken; so do the signals in ``also`` (pairs of a signal
    and the free value driving it, e.g. a router's ``enable``, which belongs to the offered item)."""
    valid = any_seq(1)
    m.d.comb += [stream.valid.eq(valid), stream.payload.eq(payload)]
    m.d.comb += [sig.eq(value) for sig, value in also]
    waiting = Signal()
    m.d.sync += waiting.eq(stream.valid & ~stream.ready)
    for sig, value in ((stream.payload, payload), *also):
        held = Signal(len(Value.cast(sig)))
        m.d.sync += held.eq(sig)
        with m.If(waiting):
            m.d.comb += Assume(Value.cast(value) == held)
    with m.If(waiting):
        m.d.comb += Assume(valid)


def skid_buffer_proof(factory, *, width: int = 4) -> Module:
    """``factory(width)`` makes the buffer (``i``/``o`` streams of ``width`` bits): arbitrary valid,
    payload and ready every clock (the producer holds an offered item until taken, as the stream
    rules require)."""
    m = Module()
    m.submodules.dut = dut = factory(width)
    m.submodules.twin = twin = factory(width)
    data, ready = any_seq(width), any_seq(1)
    _producer(m, dut.i, data)
    m.d.comb += dut.o.ready.eq(ready)
    valid = dut.i.valid
    entered, left, inside, *_tracked = _stream_scoreboard(m, dut.i.valid & dut.i.ready, dut.i.payload,
                                                          dut.o.valid & dut.o.ready, dut.o.payload, capacity=2,
                                                          width=width)
    m.d.comb += Assert(dut.o.valid == (inside != 0))   # an item inside is offered (no bubble)
    # invariants over the two registers (what makes the induction close): the out register holds the
    # oldest item inside, the skid register the next one
    k, seen_k, data_k = _tracked
    m.d.comb += [Assert(inside == dut.o_valid + dut.s_valid), Assert(~dut.s_valid | dut.o_valid),
                 Assert(seen_k == (entered > k)), Assert(left <= entered)]
    with m.If(seen_k & (left == k)):
        m.d.comb += [Assert(dut.o_valid), Assert(dut.o_data == data_k)]
    with m.If(seen_k & (left + 1 == k) & dut.s_valid):
        m.d.comb += Assert(dut.s_data == data_k)
    # i.ready is a register: a twin fed the same inputs but different ones in one clock (cycle n,
    # any_const) has the same i.ready in that clock
    n, cycle = any_const(5), Signal(5)
    m.d.sync += cycle.eq(Mux(cycle == 31, 31, cycle + 1))
    now = cycle == n
    m.d.comb += [twin.i.valid.eq(Mux(now, any_seq(1), valid)), twin.i.payload.eq(Mux(now, any_seq(width), data)),
                 twin.o.ready.eq(Mux(now, any_seq(1), ready))]
    after = Signal()
    m.d.sync += after.eq(after | now)
    m.d.comb += [Assume(n != 31), Assert(after == (cycle > n))]
    with m.If(~after):   # up to clock n both saw the same inputs: the same registers, the same ready
        m.d.comb += [Assert(twin.i.ready == dut.i.ready)]
        m.d.comb += [Assert(getattr(twin, r) == getattr(dut, r)) for r in ("o_valid", "o_data", "s_valid", "s_data")]
    return m


def _saturate_ref(value, bits: int, width: int):
    """Saturation by comparisons (not the hardware's bit test)."""
    hi, lo = (1 << (bits - 1)) - 1, -(1 << (bits - 1))
    return Mux(value > hi, Const(hi, signed(width)), Mux(value < lo, Const(lo, signed(width)), value))


def tsa_lane_proof(factory, p: CoreParams) -> Module:
    """``factory(p)`` makes a combinational :class:`~cssnn.hw.core.neuron.TsaLane`. Every mode, any
    threshold >= 1, any accumulator and bias value, a membrane within its layer's range (Bv bits for
    SILENT/FIRE: it was saturated to Bv when stored; Bo for the output modes), any fired flag."""
    m = Module()
    m.submodules.dut = dut = factory(p)
    mode, theta = any_seq(2), any_seq(p.threshold_bits)
    v, fired = any_seq(signed(p.store_bits)), any_seq(1)
    acc, bias = any_seq(signed(p.acc_bits)), any_seq(signed(p.bias_bits))
    m.d.comb += [dut.mode.eq(mode), dut.threshold.eq(theta), dut.v.eq(v), dut.fired.eq(fired),
                 dut.acc.eq(acc), dut.bias.eq(bias), Assume(theta >= 1)]
    out_mode = (mode == Mode.OUT_FIRST) | (mode == Mode.OUT)
    for bits, cond in ((p.membrane_bits, ~out_mode), (p.output_bits, out_mode)):
        with m.If(cond):
            m.d.comb += Assume((v <= (1 << (bits - 1)) - 1) & (v >= -(1 << (bits - 1))))
    # the reference, in 48-bit arithmetic (wider than any sum here: nothing can overflow)
    w = 48
    v48, i48, b48, t48 = (Signal(signed(w), name=n) for n in ("ref_v", "ref_i", "ref_b", "ref_theta"))
    m.d.comb += [v48.eq(v), i48.eq(acc), b48.eq(bias), t48.eq(theta)]
    mem = Signal(signed(w))
    m.d.comb += mem.eq(2 * v48 + i48)
    s_pos = mem >= t48
    s_neg = (mem <= -t48) & fired & ~s_pos
    reset = Signal(signed(w))
    m.d.comb += reset.eq(Mux(s_pos, mem - 2 * t48, Mux(s_neg, mem + 2 * t48, mem)))
    want_v, want_f = Signal(signed(w)), Signal()
    with m.Switch(mode):
        with m.Case(Mode.SILENT):
            m.d.comb += [want_v.eq(_saturate_ref(i48 + b48, p.membrane_bits, w)), want_f.eq(0)]
        with m.Case(Mode.FIRE):
            m.d.comb += [want_v.eq(_saturate_ref(reset, p.membrane_bits, w)), want_f.eq(fired | s_pos)]
        with m.Case(Mode.OUT_FIRST):
            m.d.comb += [want_v.eq(_saturate_ref(i48 + b48, p.output_bits, w)), want_f.eq(0)]
        with m.Case(Mode.OUT):
            m.d.comb += [want_v.eq(_saturate_ref(mem, p.output_bits, w)), want_f.eq(0)]
    is_fire = mode == Mode.FIRE
    m.d.comb += [
        Assert(dut.v_next == want_v), Assert(dut.fired_next == want_f),
        Assert(dut.pos == (is_fire & s_pos)), Assert(dut.neg == (is_fire & s_neg)),
        Assert(~(dut.pos & dut.neg)),
    ]
    return m



#: Destination masks of the router proof's table (source 0: port 0, 1: port 1, 2: both, 3: none).
ROUTER_TABLE = (0b01, 0b10, 0b11, 0b00)


def router_proof(factory, *, depths=(2, 3), width: int = 3) -> Module:
    """``factory(depths)`` makes a :class:`~cssnn.hw.router.Router` with the table :data:`ROUTER_TABLE`
    (``init``) and the given FIFO depths. Arbitrary events (source, payload), valid, ``enable`` and
    ``ready`` on every port every clock; the producer holds an offered event until it is taken. Per
    port: exactly the accepted events whose ``table[source] & enable`` has the port's bit leave it, in
    order, each once (a scoreboard per port)."""
    m = Module()
    m.submodules.dut = dut = factory(depths)
    lay = dut.i.payload.shape()
    src, low, enable = any_seq(2), any_seq(width), any_seq(len(depths))
    payload = Signal(lay)
    m.d.comb += [payload.source.eq(src), payload.event.as_value()[:width].eq(low), dut.table_we.eq(0)]
    _producer(m, dut.i, payload, (dut.enable, enable))
    mask = Signal(len(depths))
    m.d.comb += mask.eq(Mux(src == 0, ROUTER_TABLE[0], Mux(src == 1, ROUTER_TABLE[1],
                                                            Mux(src == 2, ROUTER_TABLE[2], ROUTER_TABLE[3]))) & enable)
    accepted = dut.i.valid & dut.i.ready
    for k, depth in enumerate(depths):
        o = dut.o[k]
        m.d.comb += o.ready.eq(any_seq(1))
        _stream_scoreboard(m, accepted & mask[k], dut.i.payload.as_value(), o.valid & o.ready, o.payload.as_value(),
                           capacity=depth, width=len(dut.i.payload.as_value()))
    return m


def _fair(m: Module, waiting, *, stall: int, name: str):
    """A free choice (1: go ahead) that is 0 for at most ``stall`` clocks in a row while ``waiting``:
    arbitrary stalls, but none forever (the fairness a bounded liveness check needs)."""
    stalled = Signal(range(stall + 1), name=f"{name}_stalled")
    go = any_seq(1)
    m.d.sync += stalled.eq(Mux(waiting & ~go, stalled + 1, 0))
    with m.If(stalled == stall):
        m.d.comb += Assume(go)
    return go


def controller_proof(factory, router_factory, ap, *, timesteps: int, layers: int, stall: int, events: int,
                     bound: int) -> Module:
    """``factory(ap)`` makes the :class:`~cssnn.hw.controller.Controller`, ``router_factory(ap)`` the
    :class:`~cssnn.hw.router.Router` between its output and its loopback input (as in the
    accelerator). T = ``timesteps`` and L = ``layers`` are set, one run is started in the first clock.

    The core is abstract: it takes a step config when it has no step's input pending and fewer than
    ``MAX_INFLIGHT`` steps' outputs leaving; takes that step's input events up to its end marker;
    then emits up to ``events`` spikes and an end marker for each step, in order, held until taken;
    ``core_done`` as an end marker leaves. Every ready/valid choice of the core and of the router's
    tap consumer may stall, at most ``stall`` clocks in a row. Asserted:

    - every step config handed out is the next one of the schedule (modes in the order of
      docs/SEMANTICS.md section 4), none after the last;
    - ``done`` pulses once, after the last step was taken and all outputs have left;
    - ``done`` comes within ``bound`` clocks of the start: the handshakes never deadlock.
    """
    m = Module()
    m.submodules.ctrl = ctrl = factory(ap)
    m.submodules.router = router = router_factory(ap)
    T, L = timesteps, layers
    m.d.comb += [ctrl.timesteps.eq(T), ctrl.layers.eq(L), ctrl.start.eq(initial()), ctrl.table_data.eq(0)]
    m.d.comb += [router.i.valid.eq(ctrl.routed.valid), router.i.payload.eq(ctrl.routed.payload),
                 ctrl.routed.ready.eq(router.i.ready), router.enable.eq(ctrl.route_enable),
                 router.query_addr.eq(ctrl.route_addr), ctrl.route_mask.eq(router.query_mask), router.table_we.eq(0)]
    loop, tap = router.o
    m.d.comb += [ctrl.loopback.valid.eq(loop.valid), ctrl.loopback.payload.eq(loop.payload),
                 loop.ready.eq(ctrl.loopback.ready), tap.ready.eq(_fair(m, tap.valid, stall=stall, name="tap"))]

    # ---- the abstract core ----
    in_busy = Signal()                          # a step taken, its input's end marker not yet
    pending = Signal(range(MAX_INFLIGHT + 1))   # steps whose input is in and whose output is leaving
    take = _fair(m, ctrl.step.valid, stall=stall, name="step")
    m.d.comb += ctrl.step.ready.eq(~in_busy & (pending < MAX_INFLIGHT) & take)
    m.d.comb += ctrl.events.ready.eq(in_busy & _fair(m, in_busy & ctrl.events.valid, stall=stall, name="events"))
    step_fire = ctrl.step.valid & ctrl.step.ready
    in_end = ctrl.events.valid & ctrl.events.ready & ctrl.events.payload.end
    out = ctrl.core_out
    n_out = Signal(range(events + 1))          # spikes of the output step leaving now, gone so far
    o_valid, o_end, o_index = Signal(), Signal(), Signal(out.payload.index.shape())
    m.d.comb += [out.valid.eq(o_valid), out.payload.end.eq(o_end), out.payload.index.eq(o_index)]
    out_fire = out.valid & out.ready
    out_end = out_fire & out.payload.end
    n_after, pending_after = Signal.like(n_out), Signal.like(pending)
    m.d.comb += [n_after.eq(Mux(out_fire, Mux(out.payload.end, 0, n_out + 1), n_out)),
                 pending_after.eq(pending + in_end - out_end), ctrl.core_done.eq(out_end)]
    offer = _fair(m, (pending != 0) & ~o_valid, stall=stall, name="offer")
    with m.If(out_fire | ~o_valid):
        m.d.sync += o_valid.eq(0)
        with m.If((pending_after != 0) & offer):
            m.d.sync += [o_valid.eq(1), o_end.eq(any_seq(1) | (n_after == events)), o_index.eq(any_seq(o_index.shape()))]
    m.d.sync += [n_out.eq(n_after), in_busy.eq(Mux(step_fire, 1, Mux(in_end, 0, in_busy))), pending.eq(pending_after)]

    # ---- the schedule, written from docs/SEMANTICS.md section 4 ----
    rt, rl = Signal(ctrl.t.shape()), Signal(ctrl.layer.shape())   # the next (t, l) it must hand out
    finished = Signal()
    hi = Mux(rt < L, rt, L)
    want = Mux(rl == L, Mux(rt == L, Mode.OUT_FIRST, Mode.OUT), Mux(rt == rl, Mode.SILENT, Mode.FIRE))
    with m.If(step_fire):
        m.d.comb += [Assert(~finished), Assert(ctrl.step.payload.mode == want)]
        with m.If(rl == hi):
            m.d.sync += [rt.eq(rt + 1), rl.eq(Mux(rt + 1 >= T, rt + 1 - T, 0)), finished.eq(rt + 1 == T + L)]
        with m.Else():
            m.d.sync += rl.eq(rl + 1)
    ran, clock = Signal(), Signal(range(bound + 1))
    m.d.sync += clock.eq(Mux(clock == bound, bound, clock + 1))
    with m.If(ctrl.done):
        m.d.sync += ran.eq(1)
        m.d.comb += [Assert(~ran), Assert(finished & (pending == 0) & ~in_busy)]
    m.d.comb += Assert((clock < bound) | ran)
    return m


def crc16_bitwise(crc, byte):
    """CRC-16/CCITT-FALSE after ``byte``, by its textbook definition, one bit at a time (the
    reference: the gateware computes it with a flat XOR network derived differently)."""
    for i in range(8):
        shifted = Cat(Const(0, 1), crc[:15])
        crc = Mux(crc[15] ^ byte[7 - i], shifted ^ CRC16_POLY, shifted)
    return crc


def crc_proof(byte_function) -> Module:
    """``byte_function(crc, byte)`` (the gateware's :func:`~cssnn.hw.link.crc.crc16_next`) equals the
    textbook CRC-16/CCITT-FALSE step for every register value and byte."""
    m = Module()
    crc, byte = any_seq(16), any_seq(8)
    got, want = Signal(16), Signal(16)
    m.d.comb += [got.eq(byte_function(crc, byte)), want.eq(crc16_bitwise(crc, byte)), Assert(got == want)]
    return m


def receiver_proof(factory, *, max_payload: int, timeout: int, stall: int) -> Module:
    """``factory(max_payload=..., length_bits=..., delta_max=..., buffer_depth=...)`` makes the
    :class:`~cssnn.hw.link.receive.Receiver`; it gets its own CRC, a ``timeout``-clock timer, the
    length register and a ``max_payload``-byte buffer, shared as in the host link. Any bytes, any
    gaps (the producer holds an offered byte until taken), ``resume`` (the reply has been sent) at
    most ``stall`` clocks after an outcome. The frames are parsed here from the bytes taken
    (docs/PROTOCOL.md: SYNC while hunting, cmd, seq, len u16, payload, CRC over all after the SYNC).
    Asserted, for every frame: exactly one outcome, ``accept`` or one reject; ``accept`` if and only
    if the frame is complete and its CRC checks; BAD_LENGTH if and only if ``len > max_payload``
    (once the header is in), BAD_CRC for a complete frame that does not check, TIMEOUT otherwise;
    and inside a frame the receiver never waits more than ``timeout`` quiet clocks."""
    length_bits, delta_max = 8, 5
    m = Module()
    m.submodules.dut = dut = factory(max_payload=max_payload, length_bits=length_bits, delta_max=delta_max,
                                     buffer_depth=max_payload)
    m.submodules.buffer = buffer = PayloadBuffer(max_payload, b"")
    m.submodules.crc = crc_unit = Crc16()
    m.submodules.timer = timer = Timer(timeout, timeout)
    m.submodules.length = length_unit = Length(length_bits, delta_max)
    for unit, port in ((buffer, dut.buf), (crc_unit, dut.crc), (timer, dut.timer), (length_unit, dut.length)):
        share(m, unit.port, port)
    rx = dut.rx
    _producer(m, rx, any_seq(8))
    # the reply: resume some clocks after an outcome
    replying = Signal()
    outcome = dut.accept | dut.reply.start
    resume = replying & _fair(m, replying, stall=stall, name="reply")
    m.d.comb += dut.resume.eq(resume)
    m.d.sync += replying.eq(Mux(outcome, 1, Mux(resume, 0, replying)))
    m.d.comb += Assert(~(outcome & replying))

    # ---- the frames, parsed from the bytes taken ----
    HUNT, HEADER, PAYLOAD, CRC, WAIT = range(5)
    state = Signal(range(5))
    hb = Signal(range(REQUEST_HEADER))
    length, count = Signal(16), Signal(16)
    rx_fire = rx.valid & rx.ready
    in_frame_now = (state == HEADER) | (state == PAYLOAD) | (state == CRC)
    # The CRC verdict is the CRC unit's (crc_proof shows its byte function is the textbook CRC;
    # comparing a second implementation over whole frames would ask the solver to prove two XOR
    # networks equal, which it cannot in reasonable time). Asserted here: the unit is restarted by
    # the SYNC and shifts exactly the frame's bytes after it, each once.
    crc_port = crc_unit.port
    m.d.comb += Assert(crc_port.en == (rx_fire & in_frame_now))
    with m.If(crc_port.en):
        m.d.comb += Assert(crc_port.data == rx.payload)
    m.d.comb += Assert(crc_port.init == (rx_fire & (state == HUNT) & (rx.payload == SYNC_REQUEST)))
    complete_good = Signal()
    quiet = Signal(range(timeout + 2))
    m.d.sync += quiet.eq(Mux(rx_fire | ~in_frame_now, 0, Mux(quiet == timeout + 1, quiet, quiet + 1)))
    want = Signal(Status)   # the outcome this clock's byte (or quiet) must give, when `due`
    due = Signal()
    with m.Switch(state):
        with m.Case(HUNT):
            with m.If(rx_fire & (rx.payload == SYNC_REQUEST)):
                m.d.sync += [state.eq(HEADER), hb.eq(0), count.eq(0)]
        with m.Case(HEADER, PAYLOAD, CRC):
            with m.If(rx_fire):
                with m.If(state == HEADER):
                    m.d.sync += hb.eq(hb + 1)
                    with m.If(hb == 2):
                        m.d.sync += length[:8].eq(rx.payload)
                    with m.If(hb == 3):
                        new_len = Cat(length[:8], rx.payload)
                        m.d.sync += [length[8:].eq(rx.payload),
                                     state.eq(Mux(new_len == 0, CRC, PAYLOAD))]
                        with m.If(new_len > max_payload):
                            m.d.comb += [due.eq(1), want.eq(Status.BAD_LENGTH)]
                with m.Elif(state == PAYLOAD):
                    m.d.sync += count.eq(count + 1)
                    with m.If(count + 1 == length):
                        m.d.sync += [state.eq(CRC), count.eq(0)]
                with m.Else():
                    m.d.sync += count.eq(count + 1)
                    with m.If(count == CRC_BYTES - 1):
                        m.d.comb += [due.eq(1), complete_good.eq(crc_port.residue_zero), want.eq(Status.BAD_CRC)]
            with m.Elif(quiet == timeout - 1):
                m.d.comb += [due.eq(1), want.eq(Status.TIMEOUT)]
            with m.If(due):
                m.d.sync += state.eq(WAIT)
        with m.Case(WAIT):
            m.d.comb += Assert(~rx_fire)     # nothing is taken between a frame's outcome and its reply
            with m.If(resume):
                m.d.sync += state.eq(HUNT)
    # exactly the outcome due, in the clock it is due, and none otherwise
    m.d.comb += [Assert(dut.accept == (due & complete_good)),
                 Assert(dut.reply.start == (due & ~complete_good))]
    with m.If(dut.reply.start):
        m.d.comb += Assert(dut.reply.status == want)
    m.d.comb += Assert(quiet <= timeout)
    return m


def credit_fifo_proof(update_factory, output_factory, p: CoreParams, *, scoreboard: bool, bits: int = 6) -> Module:
    """``update_factory(p)`` / ``output_factory(p)`` make the core's
    :class:`~cssnn.hw.core.update.UpdateStage` and :class:`~cssnn.hw.core.output.OutputStage`,
    connected as in the core (``p.lanes`` must be 1: a word holds at most one spike). Every input
    of the update stage is free, except that a word is issued only with a ``credit`` (the core's
    rule); the consumer's ``ready`` is free. Asserted: the words in the FIFO (words entering minus
    words the serializer takes) never exceed its depth; with ``scoreboard``, the events leaving are
    exactly the words' spikes (index, sign) and end markers, in order, each once."""
    assert p.lanes == 1
    m = Module()
    m.submodules.upd = upd = update_factory(p)
    m.submodules.out = out = output_factory(p)
    m.d.comb += [out.words.valid.eq(upd.words.valid), out.words.payload.eq(upd.words.payload),
                 upd.word_taken.eq(out.word_taken), out.end_ok.eq(upd.argmax_idle)]
    for name in ("update", "load", "issue", "last", "group", "x_addr", "mode", "threshold", "count", "state", "acc",
                 "bias"):
        value = Value.cast(getattr(upd, name))
        m.d.comb += value.eq(any_seq(len(value)))
    m.d.comb += [Assume(~(upd.update & upd.issue) | upd.credit), out.out.ready.eq(any_seq(1))]
    w, o = upd.words, out.out
    inside = Signal(range(WORD_FIFO_DEPTH + 2))
    m.d.sync += inside.eq(inside + w.valid - out.word_taken)
    m.d.comb += Assert(inside <= WORD_FIFO_DEPTH)
    if not scoreboard:
        return m
    # events numbered in the order their words enter (a word: its spike, then its end marker)
    entered, left, k = Signal(bits), Signal(bits), any_const(bits)
    seen, r_end, r_index, r_neg = Signal(), Signal(), Signal(len(o.payload.index)), Signal()
    spike = w.payload.pos[0] | w.payload.neg[0]
    with m.If(w.valid):
        m.d.sync += entered.eq(entered + spike + w.payload.end)
        with m.If(spike & (entered == k)):
            m.d.sync += [seen.eq(1), r_end.eq(0), r_index.eq(w.payload.group), r_neg.eq(w.payload.neg[0])]
        with m.If(w.payload.end & (entered + spike == k)):
            m.d.sync += [seen.eq(1), r_end.eq(1)]
    with m.If(o.valid & o.ready):
        m.d.sync += left.eq(left + 1)
        m.d.comb += Assert(left != entered)                 # nothing leaves that did not enter
        with m.If(left == k):
            m.d.comb += [Assert(seen), Assert(o.payload.end == r_end)]
            with m.If(~r_end):
                m.d.comb += [Assert(o.payload.index == r_index), Assert(o.payload.neg == r_neg)]
    m.d.comb += [Assume(entered < (1 << bits) - 2), Assume(k < (1 << bits) - 2)]   # no wrap in the trace
    return m

