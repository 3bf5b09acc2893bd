# amaranth: UnusedElaboratable=no
"""Unit tests of the core's components in the Amaranth simulator."""

import random
from dataclasses import replace

import pytest
from amaranth.back import rtlil
from amaranth.hdl import Shape
from amaranth.sim import Simulator

from cssnn.hw.core import Core
from cssnn.hw.core.accumulator import SpikeAccumulator
from cssnn.hw.core.argmax import Argmax
from cssnn.hw.core.serializer import SpikeSerializer
from cssnn.hw.core.skid import SkidBuffer
from cssnn.hw.core.synapse import SynapseMemory
from cssnn.hw.params import WALKS, CoreParams, HostMem, index_lane_layout, lane_shape, pack, unpack
from cssnn.verif.pysim import run_testbenches

P = CoreParams(lanes=4, weight_bits=5, membrane_bits=10, output_bits=12, acc_bits=8, bias_bits=8,
               threshold_bits=6, neurons=16, synapse_rows=8)


def s2u(v, bits):
    return v & (2**bits - 1)


@pytest.mark.parametrize("walk", WALKS)
def test_spike_accumulator_adds_subtracts_and_skips_masked(walk):
    dut = SpikeAccumulator(replace(P, walk=walk))   # lanes: a sign per lane
    rng = random.Random(0)
    wq = 2 ** (P.weight_bits - 1) - 1

    async def tb(ctx):
        for _ in range(300):
            acc = [rng.randint(-100, 100) for _ in range(P.lanes)]
            w = [rng.randint(-wq, wq) for _ in range(P.lanes)]
            mk = [rng.random() < 0.7 for _ in range(P.lanes)]
            neg = [rng.random() < 0.5 for _ in range(P.lanes)] if walk == "lanes" else [rng.random() < 0.5] * P.lanes
            for k in range(P.lanes):
                ctx.set(dut.acc_in[k], acc[k]); ctx.set(dut.row[k].weight, w[k]); ctx.set(dut.row[k].mask, mk[k])
            ctx.set(dut.neg, sum(b << k for k, b in enumerate(neg)) if walk == "lanes" else neg[0])
            want = [a + (-x if s else x) * m for a, x, m, s in zip(acc, w, mk, neg)]
            assert [ctx.get(dut.acc_out[k]) for k in range(P.lanes)] == want
            assert ctx.get(dut.synops) == sum(mk)

    run_testbenches(dut, tb, clock=False)


def test_synapse_memory_lane_writes_sync_read_and_hold():
    dut = SynapseMemory(P)
    rng = random.Random(1)
    ref = [[(0, 0)] * P.lanes for _ in range(P.synapse_rows)]

    async def tb(ctx):
        for _ in range(60):
            r, k = rng.randrange(P.synapse_rows), rng.randrange(P.lanes)
            w, m = rng.randint(-15, 15), rng.randint(0, 1)
            ctx.set(dut.write_addr, r); ctx.set(dut.write_lane, k); ctx.set(dut.write_en, 1)
            ctx.set(dut.write_data.weight, w); ctx.set(dut.write_data.mask, m)
            await ctx.tick()
            ref[r][k] = (w, m)
        ctx.set(dut.write_en, 0)
        for r in range(P.synapse_rows):
            ctx.set(dut.read_addr, r)
            await ctx.tick()   # synchronous read: data one clock after the address
            got = [(ctx.get(dut.read_data[k].weight), ctx.get(dut.read_data[k].mask)) for k in range(P.lanes)]
            assert got == ref[r]
        ctx.set(dut.read_en, 0)            # hold: a new address does not change the data
        ctx.set(dut.read_addr, 0)
        await ctx.tick()
        assert [(ctx.get(dut.read_data[k].weight), ctx.get(dut.read_data[k].mask)) for k in range(P.lanes)] == ref[-1]

    run_testbenches(dut, tb)


def test_synapse_banks_read_each_lane_at_its_own_address():
    """walk = "lanes": a bank per lane, lane k reads row addr[k]; writes stay one lane at a time."""
    p = replace(P, walk="lanes")
    dut = SynapseMemory(p)
    rng = random.Random(2)
    ref = [[rng.randint(-15, 15) for _ in range(p.lanes)] for _ in range(p.synapse_rows)]

    async def tb(ctx):
        for r in range(p.synapse_rows):
            for k in range(p.lanes):
                ctx.set(dut.write_addr, r); ctx.set(dut.write_lane, k); ctx.set(dut.write_en, 1)
                ctx.set(dut.write_data.weight, ref[r][k])
                await ctx.tick()
        ctx.set(dut.write_en, 0)
        for _ in range(40):
            addrs = [rng.randrange(p.synapse_rows) for _ in range(p.lanes)]
            for k, a in enumerate(addrs):
                ctx.set(dut.read_addr[k], a)
            await ctx.tick()
            assert [ctx.get(dut.read_data[k].weight) for k in range(p.lanes)] == [ref[a][k] for k, a in enumerate(addrs)]

    run_testbenches(dut, tb)


def test_index_entries_with_lane_counts_pack_and_unpack():
    p = CoreParams(lanes=4, neurons=32, synapse_rows=64, walk="lanes")
    layout = index_lane_layout(p)
    entry = {"first": 37, "counts": [0, 3, 8, 1]}
    raw = pack(layout, entry)
    assert unpack(layout, raw) == entry and raw == 37 | (0 | 3 << 4 | 8 << 8 | 1 << 12) << p.row_bits
    assert Shape.cast(lane_shape(p, HostMem.INDEX)).width == p.row_bits + 4 * p.count_bits
    with pytest.raises(ValueError, match=r"counts must be a sequence of 4, not \[1, 2\]"):
        pack(layout, {"first": 0, "counts": [1, 2]})
    with pytest.raises(ValueError, match=r"counts\[2\] = 16 does not fit its 4-bit field"):
        pack(layout, {"first": 0, "counts": [1, 2, 16, 0]})
    with pytest.raises(ValueError, match="walk must be one of 'rows', 'lanes', not 'both'"):
        CoreParams(walk="both")
    with pytest.raises(ValueError, match="walk='lanes' needs synapse_ram='block'"):
        CoreParams(walk="lanes", synapse_ram="spram")


def _serializer_words(rng, count):
    """``count`` random words (group, pos, neg; at least one spike) and the events they make, in order."""
    words = []
    for _ in range(count):
        pos = rng.randrange(1, 2**P.lanes)
        neg = rng.randrange(2**P.lanes) & ~pos
        words.append((rng.randrange(P.groups), pos, neg))
    events = [((g << P.lane_bits) | k, (neg >> k) & 1) for g, pos, neg in words for k in range(P.lanes)
              if (pos | neg) >> k & 1]
    return words, events


def test_serializer_under_backpressure():
    dut = SpikeSerializer(P)
    rng = random.Random(2)
    words, want = _serializer_words(rng, 40)
    got = []

    async def producer(ctx):
        for g, pos, neg in words:
            ctx.set(dut.i.payload.group, g); ctx.set(dut.i.payload.pos, pos); ctx.set(dut.i.payload.neg, neg)
            ctx.set(dut.i.valid, 1)
            await ctx.tick().until(dut.i.ready)
            ctx.set(dut.i.valid, 0)
            for _ in range(rng.choice([0, 0, 1])):
                await ctx.tick()

    async def consumer(ctx):
        while len(got) < len(want):
            ready = rng.random() < 0.6
            ctx.set(dut.o.ready, ready)
            await ctx.tick()
        ctx.set(dut.o.ready, 0)

    async def monitor(ctx):
        async for _clk, _rst, valid, ready, payload in ctx.tick().sample(dut.o.valid, dut.o.ready, dut.o.payload):
            if valid and ready:
                got.append((payload.index, payload.neg))
                assert payload.end == 0

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.add_process(monitor)
    sim.run_until(1e-8 * 2000)
    assert got == want


def test_serializer_emits_one_event_per_clock_across_words():
    """With a word always waiting and the consumer always ready, the events of consecutive words leave
    on consecutive clocks: the next word is taken in the clock its predecessor's last event leaves."""
    words, want = _serializer_words(random.Random(5), 30)
    dut = SpikeSerializer(P)
    got = []

    async def tb(ctx):
        ctx.set(dut.o.ready, 1)
        ctx.set(dut.i.valid, 1)
        first = None
        for cycle in range(4 * len(want)):
            if words:
                g, pos, neg = words[0]
                ctx.set(dut.i.payload.group, g); ctx.set(dut.i.payload.pos, pos); ctx.set(dut.i.payload.neg, neg)
            else:
                ctx.set(dut.i.valid, 0)
            _, _, i_ready, o_valid, payload = await ctx.tick().sample(dut.i.ready, dut.o.valid, dut.o.payload)
            if words and i_ready:
                words.pop(0)
            if o_valid:
                first = cycle if first is None else first
                got.append((payload.index, payload.neg))
                assert cycle - first == len(got) - 1, "a bubble between events"
            if len(got) == len(want):
                break

    run_testbenches(dut, tb)
    assert got == want


def test_skid_buffer_random_traffic_in_order_full_rate_and_registered_ready():
    """Random valid/ready on both sides: every item comes out once, in order. ``i.ready`` never
    follows ``o.ready`` within a clock (it is a register). With both sides always on, one item per
    clock (second bench)."""
    rng = random.Random(7)
    items = [rng.randrange(256) for _ in range(300)]
    dut = SkidBuffer(8)
    got = []

    async def tb(ctx):
        pending = list(items)
        for _ in range(3000):
            valid = bool(pending) and rng.random() < 0.7
            ctx.set(dut.i.valid, valid)
            ctx.set(dut.i.payload, pending[0] if pending else 0)
            ctx.set(dut.o.ready, 0)
            ready_when_stalled = ctx.get(dut.i.ready)
            ctx.set(dut.o.ready, 1)
            assert ctx.get(dut.i.ready) == ready_when_stalled, "i.ready depends on o.ready"
            ctx.set(dut.o.ready, rng.random() < 0.6)
            _, _, i_ready, o_valid, o_ready, payload = await ctx.tick().sample(
                dut.i.ready, dut.o.valid, dut.o.ready, dut.o.payload)
            if valid and i_ready:
                pending.pop(0)
            if o_valid and o_ready:
                got.append(payload)
            if len(got) == len(items):
                break

    run_testbenches(dut, tb)
    assert got == items

    # full rate: 50 items straight through take 50 clocks after the first
    dut = SkidBuffer(8)
    times = []

    async def tb_rate(ctx):
        ctx.set(dut.o.ready, 1)
        ctx.set(dut.i.valid, 1)
        for cycle in range(60):
            ctx.set(dut.i.payload, cycle)
            _, _, o_valid, payload = await ctx.tick().sample(dut.o.valid, dut.o.payload)
            if o_valid:
                times.append((cycle, payload))

    run_testbenches(dut, tb_rate)
    assert times[:50] == [(c + 1, c) for c in range(50)]


def test_skid_buffer_rejects_a_non_shape():
    with pytest.raises(TypeError):
        SkidBuffer("eight")


def test_argmax_lowest_index_wins_ties():
    dut = Argmax(P)
    rng = random.Random(3)
    lo, hi = -(2 ** (P.store_bits - 1)), 2 ** (P.store_bits - 1) - 1

    async def tb(ctx):
        for trial in range(40):
            count = rng.randint(1, P.neurons)
            pool = [rng.randint(lo, hi) for _ in range(3)] if trial % 2 else None  # many ties
            vals = [rng.choice(pool) if pool else rng.randint(lo, hi) for _ in range(count)]
            groups = -(-count // P.lanes)
            for g in range(groups):
                ctx.set(dut.en, 1); ctx.set(dut.first, g == 0); ctx.set(dut.group, g)
                valid = 0
                for k in range(P.lanes):
                    j = g * P.lanes + k
                    ctx.set(dut.values[k], vals[j] if j < count else hi)   # padding lanes must be ignored
                    valid |= (j < count) << k
                ctx.set(dut.valid, valid)
                await ctx.tick()
            ctx.set(dut.en, 0)
            await ctx.tick().repeat(dut.latency - 1)   # the last word's result is ``latency`` clocks later
            assert not ctx.get(dut.busy)
            best = max(range(count), key=lambda j: (vals[j], -j))
            assert (ctx.get(dut.index), ctx.get(dut.value)) == (best, vals[best])

    run_testbenches(dut, tb)


@pytest.mark.parametrize("walk", WALKS)
def test_core_has_no_multiplier_and_no_slow_compares(walk):
    text = rtlil.convert(Core(CoreParams(lanes=4, neurons=32, synapse_rows=64, walk=walk)), name="core")
    assert "$mul" not in text and "$div" not in text and "$mod" not in text
    # yosys maps > and <= with a zero detect after the carry chain (several LUT levels; it was on the
    # ECP5's critical path); < and >= are the carry chain alone. So the gateware only writes those.
    assert "cell $gt " not in text and "cell $le " not in text


# ---- the host link's byte FIFO ----

@pytest.mark.parametrize("skid", [True, False])
@pytest.mark.parametrize("depth", [2, 4, 16])
def test_byte_fifo_keeps_every_byte_in_order_under_random_handshakes(depth, skid):
    """Random writes (offered whatever ``ready`` says, as a UART does) and random reads: the bytes read
    are exactly the bytes accepted, in order; ``ready`` falls only when ``depth`` bytes are queued."""
    from cssnn.hw.link.fifo import ByteFIFO

    dut = ByteFIFO(depth, skid=skid)
    rng = random.Random(depth)
    got, sent = [], []

    async def tb(ctx):
        queued = 0
        for _ in range(600):
            v, r, b = rng.random() < 0.6, rng.random() < 0.5, rng.randrange(256)
            ctx.set(dut.w.valid, v)
            ctx.set(dut.w.payload, b)
            ctx.set(dut.r.ready, r)
            assert ctx.get(dut.w.ready) or queued >= depth   # ready until the RAM holds depth bytes
            assert queued <= depth + 2 * skid                    # and two more in the skid buffer
            took_w = v and ctx.get(dut.w.ready)
            took_r = r and ctx.get(dut.r.valid)
            if took_r:
                got.append(ctx.get(dut.r.payload))
            await ctx.tick()
            if took_w:
                sent.append(b)
            queued += took_w - took_r

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    assert got == sent[:len(got)] and len(sent) - len(got) <= depth + 2 * skid and len(got) > 200
