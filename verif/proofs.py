"""The hardware's formal properties, each a proof module for :func:`cssnn.verif.formal.prove`
(docs/HARDWARE.md "Formal proofs"). Every builder takes the design under test as a factory, so a test
can hand it a planted mutant and expect a counterexample.

- :func:`skid_buffer_proof`: no loss, no duplication, order kept, one item of latency at most two
  in flight, and ``i.ready`` a register (it does not depend on any input of the same clock).
- :func:`tsa_lane_proof`: for every input in the declared ranges, a TSA lane computes exactly the
  reference expression of docs/SEMANTICS.md sections 2 and 3 (no overflow anywhere).
- :func:`router_proof`: every accepted event leaves each port of its route exactly once, in order,
  and no other event leaves it, under arbitrary stalls on every port.
"""

from __future__ import annotations

from amaranth.hdl import Assert, Assume, Const, Module, Mux, Signal, signed

from cssnn.hw.params import CoreParams, Mode
from cssnn.verif.formal import any_const, any_seq

__all__ = ["skid_buffer_proof", "tsa_lane_proof", "router_proof", "ROUTER_TABLE"]


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


def skid_buffer_proof(factory, *, width: int = 4) -> Module:
    """``factory(width)`` makes the buffer (``i``/``o`` streams of ``width`` bits): arbitrary valid,
    payload and ready every clock (the producer holds an offered item until taken, as the stream
    rules require)."""
    m = Module()
    m.submodules.dut = dut = factory(width)
    m.submodules.twin = twin = factory(width)
    valid, data, ready = any_seq(1), any_seq(width), any_seq(1)
    # stream rules for the producer: an offered item stays offered, unchanged, until it is taken
    held_valid, held_data = Signal(), Signal(width)
    m.d.sync += [held_valid.eq(dut.i.valid & ~dut.i.ready), held_data.eq(dut.i.payload)]
    m.d.comb += [dut.i.valid.eq(valid), dut.i.payload.eq(data), dut.o.ready.eq(ready)]
    with m.If(held_valid):
        m.d.comb += [Assume(valid), Assume(data == held_data)]
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
    valid, src, low, enable = any_seq(1), any_seq(2), any_seq(width), any_seq(len(depths))
    payload = Signal(lay)
    m.d.comb += [payload.source.eq(src), payload.event.as_value()[:width].eq(low)]
    held_valid, held_payload, held_enable = Signal(), Signal(lay), Signal(len(depths))
    m.d.sync += [held_valid.eq(dut.i.valid & ~dut.i.ready), held_payload.eq(dut.i.payload),
                 held_enable.eq(dut.enable)]
    m.d.comb += [dut.i.valid.eq(valid), dut.i.payload.eq(payload), dut.enable.eq(enable), dut.table_we.eq(0)]
    with m.If(held_valid):
        m.d.comb += [Assume(valid), Assume(payload.as_value() == held_payload.as_value()), Assume(enable == held_enable)]
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
