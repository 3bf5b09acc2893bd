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
- :func:`hazard_proof`: the update stage's write-back hazard (a register, computed a clock ahead)
  is high exactly while the word R reads was issued in one of the four clocks before (it is then in
  D, X, Y or Z).
- :func:`byte_fifo_proof`: the host link's byte FIFO keeps every byte, in order, refuses only when
  full and offers a byte inside within its latency.
- :func:`lane_walk_proof`: the event input with the lane walk: every lane issues exactly the rows its
  part of the step's spikes has (``counts[k]`` of each), never more, all of them before the end
  marker shows.
- :func:`hostlink_proof`: the whole host link at its ports (with an :class:`AbstractCrc`): one
  well-formed reply per frame, no bus write or run without a good CRC or outside the request, and
  never a wedge while a reply is owed.
"""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Assert, Assume, Cat, Const, Module, Mux, Signal, Value, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from cssnn.hw.core.output import WORD_FIFO_DEPTH
from cssnn.hw.link.crc import CRC16_INIT, CRC16_POLY, Crc16, crc_signature
from cssnn.hw.link.execute import ADDR_AT, ADDR_BYTES, COUNT_AT, SEL_AT
from cssnn.hw.link.shared import Length, PayloadBuffer, Timer, share
from cssnn.hw.link.wire import (
    CRC_BYTES,
    IDENTIFY_BYTES,
    REPLY_HEADER,
    REQUEST_HEADER,
    SYNC_REPLY,
    SYNC_REQUEST,
    WRITE_HEADER,
    Cmd,
    Status,
)
from cssnn.hw.memmap import Sel
from cssnn.hw.params import CoreParams, Mode
from cssnn.verif.formal import any_const, any_seq, initial

__all__ = ["skid_buffer_proof", "byte_fifo_proof", "hostlink_proof", "AbstractCrc", "tsa_lane_proof", "router_proof",
           "ROUTER_TABLE", "controller_proof", "receiver_proof",
           "crc16_bitwise", "crc_proof", "credit_fifo_proof", "hazard_proof", "lane_walk_proof"]


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


def byte_fifo_proof(factory, *, depth: int, skid: bool) -> Module:
    """``factory(depth, skid=skid)`` makes the :class:`~cssnn.hw.link.fifo.ByteFIFO`: any bytes, any
    gaps, any ``ready``. Asserted: the bytes leave exactly as they entered (no loss, no duplication,
    order kept); it refuses a byte only when it holds at least ``depth``; at most ``depth`` (+2 in
    the skid buffer) are inside; and a byte inside is offered after at most 2 clocks without one (3
    with the skid buffer): the RAM's read and the registers in front of it."""
    m = Module()
    m.submodules.dut = dut = factory(depth, skid=skid)
    _producer(m, dut.w, any_seq(8))
    m.d.comb += dut.r.ready.eq(any_seq(1))
    extra = 2 if skid else 0
    _, _, inside, *_ = _stream_scoreboard(m, dut.w.valid & dut.w.ready, dut.w.payload, dut.r.valid & dut.r.ready,
                                          dut.r.payload, capacity=depth + extra, width=8)
    m.d.comb += Assert(dut.w.ready | (inside >= depth))
    latency = 3 if skid else 2
    starved = Signal(range(latency + 2))
    m.d.sync += starved.eq(Mux((inside != 0) & ~dut.r.valid, starved + 1, 0))
    m.d.comb += Assert(starved < latency)
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
    ``ap.core.max_inflight`` steps' outputs leaving; takes that step's input events up to its end marker;
    then emits up to ``events`` spikes and an end marker for each step, in order, held until taken;
    ``core_done`` as an end marker leaves; its ``argmax_idle`` is free while the controller is busy.
    Every ready/valid choice of the core and of the router's tap consumer, and ``argmax_idle``, may
    stall, at most ``stall`` clocks in a row. Asserted:

    - every step config handed out is the next one of the schedule (modes, and the encoder bit, in
      ``ap.order``'s evaluation order, docs/SEMANTICS.md section 4), none after the last;
    - ``done`` pulses once, after the last step was taken and all outputs have left, with the argmax idle;
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
    pending = Signal(range(ap.core.max_inflight + 1))   # steps whose input is in and whose output is leaving
    take = _fair(m, ctrl.step.valid, stall=stall, name="step")
    m.d.comb += ctrl.step.ready.eq(~in_busy & (pending < ap.core.max_inflight) & take)
    m.d.comb += ctrl.events.ready.eq(in_busy & _fair(m, in_busy & ctrl.events.valid, stall=stall, name="events"))
    step_fire = ctrl.step.valid & ctrl.step.ready
    in_end = ctrl.events.valid & ctrl.events.ready & ctrl.events.payload.end
    m.d.comb += ctrl.argmax_idle.eq(_fair(m, ctrl.busy, stall=stall, name="argmax"))
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

    # ---- the schedule, written from docs/SEMANTICS.md section 4: every layer-step (l, t) with its
    # mode, in the evaluation order (chain: by t; waves: by t + l), layers ascending within a round ----
    order = []
    for l in range(L + 1):
        if l < L:
            steps = [(t, Mode.SILENT if t == l else Mode.FIRE) for t in range(l, l + T + 1)]
        else:
            steps = [(t, Mode.OUT_FIRST if t == L else Mode.OUT) for t in range(L, L + T)]
        order += [((t if ap.order == "chain" else t + l), l, mode) for t, mode in steps]
    order = sorted(order)
    k = Signal(range(len(order) + 1))   # steps handed out so far
    finished = Signal()
    want, want_encoder = Signal(Mode), Signal()
    with m.Switch(k):
        for i, (_, l, mode) in enumerate(order):
            with m.Case(i):
                m.d.comb += [want.eq(mode), want_encoder.eq(l == 0)]
    with m.If(step_fire):
        m.d.comb += [Assert(~finished), Assert(ctrl.step.payload.mode == want),
                     Assert(ctrl.step.payload.encoder == want_encoder)]
        m.d.sync += [k.eq(k + 1), finished.eq(k + 1 == len(order))]
    ran, clock = Signal(), Signal(range(bound + 1))
    m.d.sync += clock.eq(Mux(clock == bound, bound, clock + 1))
    with m.If(ctrl.done):
        m.d.sync += ran.eq(1)
        m.d.comb += [Assert(~ran), Assert(finished & (pending == 0) & ~in_busy & ctrl.argmax_idle)]
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


def _request_frames(m: Module, rx, residue_zero, *, max_payload: int, timeout: int, resume=0, resume_now=0):
    """The request frames, parsed from the bytes ``rx`` takes (docs/PROTOCOL.md: SYNC while hunting,
    cmd, seq, len u16, payload, CRC over all after the SYNC), and the outcome each must get.
    ``residue_zero`` is the CRC unit's verdict on a frame's last byte; after an outcome the parser
    waits for the reply: ``resume`` (hunting from the next clock) or ``resume_now`` (hunting this
    clock). Asserts that nothing is taken while it waits. Returns a namespace: ``due`` (an outcome
    is due this clock), ``good`` (with ``due``: the frame is complete and checks, so ``accept``),
    ``want`` (with ``due`` and not ``good``: the reject status), ``in_frame`` (a byte taken now
    belongs to a frame after its SYNC), ``sync`` (a SYNC starts a frame now), ``pfire``/``pidx``
    (payload byte number ``pidx`` taken now), ``cmd``, ``seq``, ``length`` (the header's fields,
    from the SYNC on), ``quiet`` (quiet clocks inside the frame), ``hunting`` (waiting for a SYNC
    this clock)."""
    HUNT, HEADER, PAYLOAD, CRC, WAIT = range(5)
    state = Signal(range(5), name="req_state")
    st = Signal(range(5), name="req_state_now")   # WAIT ends now with resume_now
    m.d.comb += st.eq(Mux((state == WAIT) & resume_now, HUNT, state))
    hb = Signal(range(REQUEST_HEADER), name="req_hb")
    f = SimpleNamespace(due=Signal(name="req_due"), good=Signal(name="req_good"), want=Signal(Status, name="req_want"),
                        in_frame=Signal(name="req_in_frame"), sync=Signal(name="req_sync"),
                        pfire=Signal(name="req_pfire"), pidx=Signal(16, name="req_pidx"), cmd=Signal(8, name="req_cmd"),
                        seq=Signal(8, name="req_seq"), length=Signal(16, name="req_len"),
                        quiet=Signal(range(timeout + 2), name="req_quiet"))
    count = f.pidx   # payload bytes so far, then CRC bytes so far
    rx_fire = rx.valid & rx.ready
    f.hunting = st == HUNT
    m.d.comb += [f.in_frame.eq((st == HEADER) | (st == PAYLOAD) | (st == CRC)),
                 f.sync.eq(rx_fire & (st == HUNT) & (rx.payload == SYNC_REQUEST)),
                 f.pfire.eq(rx_fire & (st == PAYLOAD))]
    m.d.sync += f.quiet.eq(Mux(rx_fire | ~f.in_frame, 0, Mux(f.quiet == timeout + 1, f.quiet, f.quiet + 1)))
    with m.Switch(st):
        with m.Case(HUNT):
            m.d.sync += state.eq(HUNT)   # (from WAIT, with resume_now)
            with m.If(f.sync):
                m.d.sync += [state.eq(HEADER), hb.eq(0), count.eq(0), f.cmd.eq(0), f.seq.eq(0)]
        with m.Case(HEADER, PAYLOAD, CRC):
            with m.If(rx_fire):
                with m.If(st == HEADER):
                    m.d.sync += hb.eq(hb + 1)
                    with m.If(hb == 0):
                        m.d.sync += f.cmd.eq(rx.payload)
                    with m.If(hb == 1):
                        m.d.sync += f.seq.eq(rx.payload)
                    with m.If(hb == 2):
                        m.d.sync += f.length[:8].eq(rx.payload)
                    with m.If(hb == 3):
                        new_len = Cat(f.length[:8], rx.payload)
                        m.d.sync += [f.length[8:].eq(rx.payload), state.eq(Mux(new_len == 0, CRC, PAYLOAD))]
                        with m.If(new_len > max_payload):
                            m.d.comb += [f.due.eq(1), f.want.eq(Status.BAD_LENGTH)]
                with m.Elif(st == PAYLOAD):
                    m.d.sync += count.eq(count + 1)
                    with m.If(count + 1 == f.length):
                        m.d.sync += [state.eq(CRC), count.eq(0)]
                with m.Else():
                    m.d.sync += count.eq(count + 1)
                    with m.If(count == CRC_BYTES - 1):
                        m.d.comb += [f.due.eq(1), f.good.eq(residue_zero), f.want.eq(Status.BAD_CRC)]
            with m.Elif(f.quiet == timeout - 1):
                m.d.comb += [f.due.eq(1), f.want.eq(Status.TIMEOUT)]
            with m.If(f.due):
                m.d.sync += state.eq(WAIT)
        with m.Case(WAIT):
            m.d.comb += Assert(~rx_fire)     # nothing is taken between a frame's outcome and its reply
            with m.If(resume):
                m.d.sync += state.eq(HUNT)
    return f


def receiver_proof(factory, *, max_payload: int, timeout: int, stall: int) -> Module:
    """``factory(max_payload=..., length_bits=..., delta_max=..., buffer_depth=...)`` makes the
    :class:`~cssnn.hw.link.receive.Receiver`; it gets its own CRC, a ``timeout``-clock timer, the
    length register and a ``max_payload``-byte buffer, shared as in the host link. Any bytes, any
    gaps (the producer holds an offered byte until taken), ``resume`` (the reply has been sent) at
    most ``stall`` clocks after an outcome. The frames are parsed here from the bytes taken
    (:func:`_request_frames`). Asserted, for every frame: exactly one outcome, ``accept`` or one
    reject; ``accept`` if and only if the frame is complete and its CRC checks; BAD_LENGTH if and
    only if ``len > max_payload`` (once the header is in), BAD_CRC for a complete frame that does
    not check, TIMEOUT otherwise; and inside a frame the receiver never waits more than ``timeout``
    quiet clocks."""
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
    crc_port = crc_unit.port
    f = _request_frames(m, rx, crc_port.residue_zero, max_payload=max_payload, timeout=timeout, resume=resume)
    # The CRC verdict is the CRC unit's (crc_proof shows its byte function is the textbook CRC;
    # comparing a second implementation over whole frames would ask the solver to prove two XOR
    # networks equal, which it cannot in reasonable time). Asserted here: the unit is restarted by
    # the SYNC and shifts exactly the frame's bytes after it, each once.
    rx_fire = rx.valid & rx.ready
    m.d.comb += [Assert(crc_port.en == (rx_fire & f.in_frame)), Assert(crc_port.init == f.sync)]
    with m.If(crc_port.en):
        m.d.comb += Assert(crc_port.data == rx.payload)
    # exactly the outcome due, in the clock it is due, and none otherwise
    m.d.comb += [Assert(dut.accept == (f.due & f.good)), Assert(dut.reply.start == (f.due & ~f.good))]
    with m.If(dut.reply.start):
        m.d.comb += Assert(dut.reply.status == f.want)
    m.d.comb += Assert(f.quiet <= timeout)
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
                 upd.word_taken.eq(out.word_taken)]
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



def hazard_proof(factory, p: CoreParams) -> Module:
    """``factory(p)`` makes the core's :class:`~cssnn.hw.core.update.UpdateStage` with
    ``p.overlap``. Every input is free except the word addresses, which follow the core's rules: R
    reads ``r_addr``, which steps by one with each word issued (``update & issue``) and takes
    ``load_addr`` (any) with ``load``; ``d_addr`` and ``x_addr`` are it one and two clocks later.
    Asserted: ``hazard`` is high exactly while a word with R's address was issued in one of the
    four clocks before (one in D, X, Y or Z)."""
    assert p.overlap
    m = Module()
    m.submodules.upd = upd = factory(p)
    for name in ("update", "load", "issue", "last", "group", "mode", "threshold", "count", "encoder", "state", "acc",
                 "bias", "word_taken", "load_addr"):
        value = Value.cast(getattr(upd, name))
        m.d.comb += value.eq(any_seq(len(value)))
    r, d, x = Signal(p.group_bits), Signal(p.group_bits), Signal(p.group_bits)
    issued = upd.update & upd.issue
    with m.If(upd.load):
        m.d.sync += r.eq(upd.load_addr)
    with m.Elif(issued):
        m.d.sync += r.eq(r + 1)
    m.d.sync += [d.eq(r), x.eq(d)]
    m.d.comb += [upd.r_addr.eq(r), upd.d_addr.eq(d), upd.x_addr.eq(x)]
    hits = []
    v_prev, a_prev = issued, r
    for i in range(4):   # the words issued 1..4 clocks ago
        v, a = Signal(name=f"issued_{i + 1}"), Signal(p.group_bits, name=f"addr_{i + 1}")
        m.d.sync += [v.eq(v_prev), a.eq(a_prev)]
        hits.append(v & (a == r))
        v_prev, a_prev = v, a
    m.d.comb += Assert(upd.hazard == Cat(*hits).any())
    return m


def lane_walk_proof(factory, p: CoreParams, *, bits: int = 6) -> Module:
    """``factory(p)`` makes the core's :class:`~cssnn.hw.core.events.EventInput` with
    ``p.walk == "lanes"``. Free: the event stream, ``accum``, ``idx_base``, the index memory's data
    (any entry for any event) and the core's row permission ``row_issue`` (only while a walker has a
    row: the core's rule); the handoff ``end_take`` comes only with ``end``. Per lane, the rows
    promised are the ``counts[k]`` of every spike EB hands on (``event``), with the entry EB took
    when it advanced (``index_take``: a read, ``index_en``, may run ahead into an empty EM).
    Asserted: no lane issues more rows than promised, and at the end marker every lane has issued
    all of its rows."""
    assert p.walk == "lanes"
    m = Module()
    m.submodules.ev = ev = factory(p)
    n = p.lanes
    for value in (ev.events.valid, ev.events.payload.as_value(), ev.accum, ev.idx_base, ev.index_data.as_value(),
                  ev.row_issue, ev.end_take):
        m.d.comb += value.eq(any_seq(len(value)))
    m.d.comb += [Assume(~ev.row_issue | ev.pending), Assume(~ev.end_take | ev.end)]
    eb_counts = Signal.like(ev.index_data.counts)     # the entry EB holds (taken when it advances)
    with m.If(ev.index_take):
        m.d.sync += eb_counts.eq(ev.index_data.counts)
    for k in range(n):
        promised, issued = Signal(bits), Signal(bits)
        with m.If(ev.end_take):
            m.d.sync += [promised.eq(0), issued.eq(0)]
        with m.Else():
            m.d.sync += [promised.eq(promised + Mux(ev.event, eb_counts[k], 0)), issued.eq(issued + ev.issues[k])]
        m.d.comb += [Assert(issued <= promised), Assert(~ev.end | (issued == promised)),
                     Assume(promised < (1 << bits) - (1 << p.count_bits))]   # no wrap in the trace
    return m


class AbstractCrc(wiring.Component):
    """An abstract CRC unit, with the port of :class:`~cssnn.hw.link.crc.Crc16`: ``init`` restarts
    the register at :data:`~cssnn.hw.link.crc.CRC16_INIT`, each ``en`` gives it any new value, and
    ``residue_zero`` is free (any frame may check or not). :func:`crc_proof` covers the byte function
    itself; this keeps the XOR networks out of the host link proof."""

    def __init__(self):
        super().__init__({"port": In(crc_signature())})

    def elaborate(self, platform):
        m = Module()
        p = self.port
        value = Signal(16, init=CRC16_INIT)
        m.d.comb += [p.value.eq(value), p.residue_zero.eq(any_seq(1))]
        with m.If(p.init):
            m.d.sync += value.eq(CRC16_INIT)
        with m.Elif(p.en):
            m.d.sync += value.eq(any_seq(16))
        return m


def _selector_spec(m: Module, ap, sel):
    """What the memory map (:mod:`cssnn.hw.memmap`) says of selector byte ``sel``: ``known``, and
    for a known one its element bytes ``eb`` and bits ``bits``, ``depth`` and ``writable``."""
    s = SimpleNamespace(known=Signal(name="spec_known"), eb=Signal(4, name="spec_eb"), bits=Signal(8, name="spec_bits"),
                        depth=Signal(ap.bus_addr_bits + 1, name="spec_depth"), writable=Signal(name="spec_writable"))
    with m.Switch(sel):
        for sl in Sel:
            with m.Case(sl):
                m.d.comb += [s.known.eq(1), s.eb.eq(ap.elem_bytes(sl)), s.bits.eq(ap.elem_bits(sl)),
                             s.depth.eq(ap.depth(sl)), s.writable.eq(ap.writable(sl))]
    return s


def hostlink_proof(factory, ap, *, max_payload: int, timeout: int, watchdog: int, stall: int, gap: int,
                   dense: bool = False) -> Module:
    """``factory(ap, max_payload=, timeout_cycles=, run_timeout_cycles=)`` makes the
    :class:`~cssnn.hw.link.hostlink.HostLink` (no FIFOs), whole, with an :class:`AbstractCrc`. Any
    bytes on ``rx`` with any gaps (``dense``: a byte every clock, and only SYNC while hunting, so
    frames come back to back and a bound reaches further into them); the host takes reply bytes with stalls of at most ``stall``
    clocks; the accelerator's ``rdata``, ``busy`` and ``done`` are free. The requests are parsed
    from the bytes taken (:func:`_request_frames`, whose outcomes :func:`receiver_proof` shows the
    receiver gives). Asserted at the ports:

    - **one reply per frame**: after each outcome exactly one reply frame leaves on ``tx``, and
      nothing else: SYNC, the status (a reject's own; never BAD_CRC or TIMEOUT for an accepted
      frame), the request's cmd and seq, ``len`` (0 unless OK; for OK: IDENTIFY's size, ECHO's
      request length, READ's count x element bytes, INFER's class element plus the SETUP window),
      ``len`` payload bytes (ECHO's are the request's, IDENTIFY's the identity image), and the CRC:
      the CRC unit restarted before the SYNC, fed exactly status .. payload, its value sent MSB
      first. ``tx`` keeps an offered byte until it is taken;
    - **nothing without a good CRC**: ``we`` and ``start`` only for an accepted frame, before its
      reply; writes only for WRITE/INFER, at the request's selector (known, writable) and
      consecutive addresses from its own, each inside the selector's depth and the payload, with
      the payload's bytes as data (one arbitrary payload byte followed; bits above the element 0);
      a WRITE either writes every element and answers OK or writes none; ``start`` once, only for
      RUN and for INFER after all its writes;
    - **no wedge**: while a reply is owed the link never goes ``gap`` clocks without progress (a
      byte taken, a write, a start), the host's stalls aside."""
    m = Module()
    dut = factory(ap, max_payload=max_payload, timeout_cycles=timeout, run_timeout_cycles=watchdog)
    crc = AbstractCrc()
    dut.crc_unit = lambda: crc
    m.submodules.dut = dut
    rx, tx, bus, c = dut.rx, dut.tx, dut.bus, crc.port
    _producer(m, rx, any_seq(8))
    m.d.comb += [tx.ready.eq(_fair(m, tx.valid, stall=stall, name="tx")),
                 bus.rdata.eq(any_seq(len(bus.rdata))), bus.busy.eq(any_seq(1)), bus.done.eq(any_seq(1))]

    # ---- the reply on tx: bytes offered (first: the clock a byte is first offered) and taken ----
    held, owed = Signal(), Signal()
    idx, rlen = Signal(16), Signal(16)   # reply bytes taken so far; the reply's len field
    last_payload = Signal(8)
    m.d.sync += [held.eq(tx.valid & ~tx.ready), last_payload.eq(tx.payload)]
    with m.If(held):
        m.d.comb += [Assert(tx.valid), Assert(tx.payload == last_payload)]
    first, taken = tx.valid & ~held, tx.valid & tx.ready
    last = (idx >= REPLY_HEADER) & (idx == REPLY_HEADER + rlen + CRC_BYTES - 1)
    f = _request_frames(m, rx, c.residue_zero, max_payload=max_payload, timeout=timeout,
                        resume_now=owed & first & last)
    m.d.comb += [Assert(~tx.valid | owed), Assert(~(f.due & owed))]
    if dense:   # frames back to back: a byte every clock, and hunting sees only SYNC
        m.d.comb += Assume(rx.valid)
        with m.If(f.hunting):
            m.d.comb += Assume(rx.payload == SYNC_REQUEST)

    # ---- the request, as parsed; latched at its outcome ----
    p_sel, p_addr, p_count = Signal(8), Signal(32), Signal(16)
    pos, pos_byte = any_const(8), Signal(8)      # one payload byte followed into the writes / the echo
    with m.If(f.pfire):
        with m.Switch(f.pidx):
            with m.Case(SEL_AT):
                m.d.sync += p_sel.eq(rx.payload)
            for i in range(ADDR_BYTES):
                with m.Case(ADDR_AT + i):
                    m.d.sync += p_addr[8 * i:8 * i + 8].eq(rx.payload)
            for i in range(2):
                with m.Case(COUNT_AT + i):
                    m.d.sync += p_count[8 * i:8 * i + 8].eq(rx.payload)
        with m.If(f.pidx == pos):
            m.d.sync += pos_byte.eq(rx.payload)
    o = SimpleNamespace(good=Signal(), want=Signal(Status), cmd=Signal(8), seq=Signal(8), len=Signal(16),
                        sel=Signal(8), addr=Signal(32), count=Signal(16), status=Signal(Status))
    with m.If(f.due):
        m.d.sync += [owed.eq(1), idx.eq(0), o.good.eq(f.good), o.want.eq(f.want), o.cmd.eq(f.cmd), o.seq.eq(f.seq),
                     o.len.eq(f.length), o.sel.eq(p_sel), o.addr.eq(p_addr), o.count.eq(p_count)]
    with m.If(taken):
        m.d.sync += idx.eq(idx + 1)
        with m.If(last):
            m.d.sync += owed.eq(0)
    spec = _selector_spec(m, ap, o.sel)
    is_cmd = {cm: o.cmd == cm for cm in Cmd}

    # INFER's window, kept by an accepted SETUP answered OK (reset: the class alone)
    win_sel, win_count = Signal(8, init=Sel.COUNTER), Signal(16)
    with m.If(owed & first & (idx == 1) & is_cmd[Cmd.SETUP] & o.good & (tx.payload == Status.OK)):
        m.d.sync += [win_sel.eq(o.sel), win_count.eq(o.count)]

    r = SimpleNamespace(owed=owed, idx=idx, rlen=rlen, first=first, j=idx - REPLY_HEADER)
    o.is_cmd, o.spec, o.pos, o.pos_byte, o.win_sel, o.win_count = is_cmd, spec, pos, pos_byte, win_sel, win_count
    _check_reply_bytes(m, ap, tx, r, o, c, dut.identity_bytes)
    _check_crc_use(m, rx, tx, r, f, c)
    _check_bus(m, ap, bus, tx, r, o, f, max_payload=max_payload)

    # ---- no wedge ----
    quiet = Signal(range(gap + 2))
    progress = f.due | taken | held | bus.we | bus.start
    m.d.sync += quiet.eq(Mux(progress | ~owed, 0, Mux(quiet == gap + 1, quiet, quiet + 1)))
    m.d.comb += Assert(quiet <= gap)
    return m


def _check_reply_bytes(m: Module, ap, tx, r, o, c, identity: bytes) -> None:
    """The host link proof's reply bytes, each checked the clock it is first offered: SYNC, status,
    cmd, seq, ``len`` against what the request asks, ECHO's and IDENTIFY's payload, the CRC value."""
    is_cmd, pos, pos_byte, win_sel, win_count = o.is_cmd, o.pos, o.pos_byte, o.win_sel, o.win_count
    want_len = Signal(16)
    with m.If(o.status == Status.OK):
        with m.If(is_cmd[Cmd.IDENTIFY]):
            m.d.comb += want_len.eq(IDENTIFY_BYTES)
        with m.Elif(is_cmd[Cmd.ECHO]):
            m.d.comb += want_len.eq(o.len)
        with m.Elif(is_cmd[Cmd.READ]):
            with m.Switch(o.sel):
                for sl in Sel:
                    with m.Case(sl):
                        m.d.comb += want_len.eq(o.count * ap.elem_bytes(sl))
        with m.Elif(is_cmd[Cmd.INFER]):
            with m.Switch(win_sel):
                for sl in Sel:
                    with m.Case(sl):
                        m.d.comb += want_len.eq(ap.elem_bytes(Sel.COUNTER) + win_count * ap.elem_bytes(sl))
    owed, idx, rlen, first, j = r.owed, r.idx, r.rlen, r.first, r.j
    with m.If(owed & first):
        with m.Switch(idx):
            with m.Case(0):
                m.d.comb += Assert(tx.payload == SYNC_REPLY)
            with m.Case(1):
                m.d.sync += o.status.eq(tx.payload)
                with m.If(o.good):
                    m.d.comb += [Assert(tx.payload <= max(Status)), Assert(tx.payload != Status.BAD_CRC),
                                 Assert(tx.payload != Status.TIMEOUT)]
                with m.Else():
                    m.d.comb += Assert(tx.payload == o.want)
            with m.Case(2):
                m.d.comb += Assert(tx.payload == o.cmd)
            with m.Case(3):
                m.d.comb += Assert(tx.payload == o.seq)
            with m.Case(4):
                m.d.sync += rlen[:8].eq(tx.payload)
                m.d.comb += Assert(tx.payload == want_len[:8])
            with m.Case(5):
                m.d.sync += rlen[8:].eq(tx.payload)
                m.d.comb += Assert(tx.payload == want_len[8:])
        in_payload = (idx >= REPLY_HEADER) & (j < rlen)
        with m.If(in_payload & is_cmd[Cmd.ECHO] & (j == pos)):
            m.d.comb += Assert(tx.payload == pos_byte)
        with m.If(in_payload & is_cmd[Cmd.IDENTIFY] & (o.status == Status.OK)):
            with m.Switch(j):
                for n, b in enumerate(identity):
                    with m.Case(n):
                        m.d.comb += Assert(tx.payload == b)
        with m.If((idx >= REPLY_HEADER) & (j == rlen)):
            m.d.comb += Assert(tx.payload == c.value[8:])
        with m.If((idx >= REPLY_HEADER) & (j == rlen + 1)):
            m.d.comb += Assert(tx.payload == c.value[:8])


def _check_crc_use(m: Module, rx, tx, r, f, c) -> None:
    """The CRC unit: restarted before a reply's SYNC and fed exactly its status .. payload, each
    byte once; otherwise only the receiver's frame bytes."""
    owed, idx, rlen, first, j = r.owed, r.idx, r.rlen, r.first, r.j
    # the CRC unit: the receiver's bytes, then the reply's status .. payload, each once
    covered = owed & first & (idx >= 1) & ((idx < REPLY_HEADER) | (j < rlen))
    rx_fire = rx.valid & rx.ready
    m.d.comb += Assert(c.en == ((rx_fire & f.in_frame) | covered))
    with m.If(covered):
        m.d.comb += Assert(c.data == tx.payload)
    fresh = Signal()   # restarted and nothing shifted in since
    m.d.sync += fresh.eq(Mux(c.init, 1, Mux(c.en, 0, fresh)))
    m.d.comb += Assert(~c.init | f.sync | (owed & (idx == 0) & ~tx.valid))
    with m.If(owed & first & (idx == 0)):
        m.d.comb += Assert(fresh)


def _check_bus(m: Module, ap, bus, tx, r, o, f, *, max_payload: int) -> None:
    """Nothing on the bus without a good CRC: ``we`` and ``start`` only for an accepted request
    before its reply, writes inside the request (selector, addresses, payload bytes as data), a
    WRITE all or nothing, ``start`` once for RUN and for INFER after its writes."""
    owed, idx, first = r.owed, r.idx, r.first
    is_cmd, spec, pos, pos_byte = o.is_cmd, o.spec, o.pos, o.pos_byte
    before_reply = owed & o.good & (idx == 0) & ~tx.valid
    writes = Signal(range(max_payload + 1))
    offset = Signal(range(2 * max_payload + 1))   # payload bytes written so far
    started = Signal()
    with m.If(f.due):
        m.d.sync += [writes.eq(0), offset.eq(0), started.eq(0)]
    ebw = Mux(is_cmd[Cmd.INFER], 1, spec.eb)              # payload bytes per element
    bits_w = Mux(is_cmd[Cmd.INFER] & (spec.bits > 8), 8, spec.bits)   # the element bits carried
    A = ap.bus_addr_bits
    with m.If(bus.we):
        m.d.sync += [writes.eq(writes + 1), offset.eq(offset + ebw)]
        m.d.comb += [Assert(before_reply), Assert(is_cmd[Cmd.WRITE] | is_cmd[Cmd.INFER]),
                     Assert(spec.known), Assert(spec.writable), Assert(Value.cast(bus.sel) == o.sel),
                     Assert(o.addr[A:] == 0 if A < 32 else 1), Assert(bus.addr == (o.addr[:A] + writes)[:A]),
                     Assert(o.addr[:A] + writes < spec.depth), Assert(WRITE_HEADER + offset + ebw <= o.len),
                     Assert((bus.wdata >> bits_w) == 0)]
        lane = pos - WRITE_HEADER - offset
        with m.If((pos >= WRITE_HEADER + offset) & (lane < ebw)):
            with m.Switch(lane):
                for i in range(max(1, (len(bus.wdata) + 7) // 8)):
                    with m.Case(i):
                        keep = Signal(8, name=f"keep{i}")   # the payload byte's bits that the element has
                        partial = (Const(1, 9) << (bits_w - 8 * i).as_unsigned()[:4]) - 1
                        lane_bits = bus.wdata[8 * i:8 * i + 8]
                        m.d.comb += [keep.eq(Mux(bits_w >= 8 * (i + 1), 0xFF, partial)),
                                     Assert(lane_bits == (pos_byte & keep)[:len(lane_bits)])]
    all_written = WRITE_HEADER + offset == o.len
    with m.If(bus.start):
        m.d.sync += started.eq(1)
        m.d.comb += [Assert(before_reply), Assert(~started),
                     Assert(is_cmd[Cmd.RUN] | (is_cmd[Cmd.INFER] & all_written))]
    with m.If(owed & first & (idx == 1)):   # the status: a WRITE writes all or nothing
        with m.If(is_cmd[Cmd.WRITE]):
            m.d.comb += Assert(Mux(tx.payload == Status.OK, all_written, writes == 0))
        with m.If(is_cmd[Cmd.INFER]):
            m.d.comb += Assert((writes == 0) | all_written)
        with m.If((tx.payload == Status.OK) & (is_cmd[Cmd.RUN] | is_cmd[Cmd.INFER])):
            m.d.comb += Assert(started)
