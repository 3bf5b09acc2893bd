# amaranth: UnusedElaboratable=no
"""The spike router in pysim: random input gaps and random ready on every output against a Python
model (exact per-port sequences), multicast all-or-nothing under FIFO-full back-pressure, mask 0
drops, the table's read/write ports, and constructor validation; its port FIFO (``HeadFIFO``) alone:
order, capacity and the one clock from an empty FIFO's write to its head."""

import random

import pytest

from cssnn.hw.params import CoreParams
from cssnn.hw.router import HeadFIFO, Router
from cssnn.verif.pysim import run_testbenches

P = CoreParams(lanes=2, neurons=16, synapse_rows=4)


def _event(rng, layer_bits):
    return {"event": {"index": rng.randrange(16), "neg": rng.randrange(2), "end": int(rng.random() < 0.2)},
            "source": rng.randrange(2**layer_bits)}


async def _write_table(ctx, dut, table):
    for addr, mask in enumerate(table):
        ctx.set(dut.table_addr, addr)
        ctx.set(dut.table_wdata, mask)
        ctx.set(dut.table_we, 1)
        await ctx.tick()
    ctx.set(dut.table_we, 0)


@pytest.mark.parametrize("seed, depths, max_layers, valid_prob, ready_prob",
                         [(1, (3, 2, 5), 4, 0.7, 0.5), (2, (1, 4), 3, 1.0, 0.3), (3, (2,), 2, 0.6, 0.9),
                          (4, (6, 1, 2, 3), 5, 0.9, 0.6)])
def test_random_traffic_matches_model(seed, depths, max_layers, valid_prob, ready_prob):
    rng = random.Random(seed)
    dut = Router(P, max_layers=max_layers, depths=depths)
    lb, ports = dut.layer_bits, dut.ports
    table = [rng.randrange(2**ports) for _ in range(max_layers)]
    table[0] = 2**ports - 1          # multicast to every port
    table[-1] = 0                    # dropped
    events = [_event(rng, lb) for _ in range(400)]
    got = [[] for _ in range(ports)]
    want = [[] for _ in range(ports)]
    stats = {"accepted": 0, "stalled": 0}

    async def tb(ctx):
        await _write_table(ctx, dut, table)
        k, offering, idle = 0, False, 0
        while idle < 40:
            if not offering and k < len(events) and rng.random() < valid_prob:
                offering = True
                ctx.set(dut.i.payload, events[k])
            ctx.set(dut.i.valid, offering)
            readies = [rng.random() < ready_prob for _ in range(ports)]
            for o, r in zip(dut.o, readies):
                ctx.set(o.ready, r)
            if offering:
                if ctx.get(dut.i.ready):
                    ev = events[k]
                    src = ev["source"]
                    mask = table[src] if src < max_layers else 0
                    for p in range(ports):
                        if mask >> p & 1:
                            want[p].append(ev)
                    stats["accepted"] += 1
                    offering = False
                    k += 1
                else:
                    stats["stalled"] += 1
            for p, (o, r) in enumerate(zip(dut.o, readies)):
                if r and ctx.get(o.valid):
                    pl = ctx.get(o.payload)
                    got[p].append({"event": {"index": pl.event.index, "neg": pl.event.neg, "end": pl.event.end},
                                   "source": pl.source})
            idle = idle + 1 if k == len(events) else 0
            await ctx.tick()

    run_testbenches(dut, tb)
    assert stats["accepted"] == len(events)
    assert stats["stalled"] > 0          # back-pressure happened
    for p in range(ports):
        assert got[p] == want[p], f"port {p}"
    assert sum(map(len, want)) > 0


def test_fifo_full_backpressure_and_multicast_all_or_nothing():
    dut = Router(P, max_layers=4, depths=(4, 2))
    seen = {}

    async def tb(ctx):
        await _write_table(ctx, dut, [0b01, 0b10, 0b11, 0b00])
        for o in dut.o:
            ctx.set(o.ready, 0)

        async def push(source, index, limit=12):
            """Offer (index, source) for up to ``limit`` clocks; return the clock it was taken or None."""
            ctx.set(dut.i.payload, {"event": {"index": index, "neg": 0, "end": 0}, "source": source})
            ctx.set(dut.i.valid, 1)
            for c in range(limit):
                if ctx.get(dut.i.ready):
                    await ctx.tick()
                    ctx.set(dut.i.valid, 0)
                    return c
                await ctx.tick()
            ctx.set(dut.i.valid, 0)
            return None

        # port 1 (depth 2) fills after two events routed to it; a third one waits
        assert await push(1, 0) is not None and await push(1, 1) is not None
        for _ in range(4):
            await ctx.tick()
        seen["full1"] = await push(1, 2)
        # multicast to ports 0 and 1 must wait too, and port 0 (which has room) must not get a copy
        seen["multi_blocked"] = await push(2, 3)
        for _ in range(4):
            await ctx.tick()
        seen["level0_before"] = ctx.get(dut.o[0].valid)
        # mask 0: consumed at once even though a FIFO is full
        seen["drop"] = await push(3, 4)
        # port 0 alone still has room
        seen["only0"] = await push(0, 5)
        # drain port 1 by one entry: the multicast goes through now
        ctx.set(dut.o[1].ready, 1)
        await ctx.tick()
        ctx.set(dut.o[1].ready, 0)
        seen["multi_after"] = await push(2, 6)
        for _ in range(4):
            await ctx.tick()
        outs = [[], []]
        for p in (0, 1):
            ctx.set(dut.o[p].ready, 1)
            for _ in range(10):
                if ctx.get(dut.o[p].valid):
                    outs[p].append(ctx.get(dut.o[p].payload).event.index)
                await ctx.tick()
            ctx.set(dut.o[p].ready, 0)
        seen["outs"] = outs

    run_testbenches(dut, tb)
    assert seen["full1"] is None and seen["multi_blocked"] is None
    assert not seen["level0_before"]                 # the blocked multicast left no copy on port 0
    assert seen["drop"] == 0 and seen["only0"] == 0
    assert seen["multi_after"] is not None
    assert seen["outs"] == [[5, 6], [1, 6]]          # port 1 drained 0 before, so 1, then the multicast 6


def test_enable_masks_destinations():
    dut = Router(P, max_layers=2, depths=(2, 2))
    out = {}

    async def tb(ctx):
        await _write_table(ctx, dut, [0b11, 0b11])
        for idx, en in ((1, 0b01), (2, 0b10), (3, 0b00), (4, 0b11)):
            ctx.set(dut.enable, en)
            ctx.set(dut.i.payload, {"event": {"index": idx, "neg": 0, "end": 0}, "source": 0})
            ctx.set(dut.i.valid, 1)
            assert ctx.get(dut.i.ready)
            await ctx.tick()
        ctx.set(dut.i.valid, 0)
        for o in dut.o:
            ctx.set(o.ready, 1)
        got = [[], []]
        for _ in range(6):
            for p in (0, 1):
                if ctx.get(dut.o[p].valid):
                    got[p].append(ctx.get(dut.o[p].payload).event.index)
            await ctx.tick()
        out["got"] = got

    run_testbenches(dut, tb)
    assert out["got"] == [[1, 4], [2, 4]]


def test_table_ports_and_init():
    dut = Router(P, max_layers=3, depths=(2, 2, 2), init=[5, 7])
    out = {}

    async def tb(ctx):
        reads = []
        for a in range(4):
            ctx.set(dut.table_addr, a)
            ctx.set(dut.query_addr, 3 - a)
            await ctx.tick()
            reads.append((ctx.get(dut.table_rdata), ctx.get(dut.query_mask)))
        out["init"] = reads
        await _write_table(ctx, dut, [1, 2, 3, 6])   # entry 3 does not exist: ignored
        ctx.set(dut.query_addr, 2)
        vals = []
        for a in range(3):
            ctx.set(dut.table_addr, a)
            await ctx.tick()
            vals.append(ctx.get(dut.table_rdata))
        out["vals"], out["query"] = vals, ctx.get(dut.query_mask)
        # transparency: a write is visible in the next clock's read data
        ctx.set(dut.table_addr, 1)
        ctx.set(dut.table_wdata, 4)
        ctx.set(dut.table_we, 1)
        ctx.set(dut.query_addr, 1)
        await ctx.tick()
        ctx.set(dut.table_we, 0)
        out["transparent"] = (ctx.get(dut.table_rdata), ctx.get(dut.query_mask))

    run_testbenches(dut, tb)
    assert [r for r, _ in out["init"][:3]] == [5, 7, 0]
    assert [q for _, q in out["init"][1:]] == [0, 7, 5]
    assert out["vals"] == [1, 2, 3] and out["query"] == 3
    assert out["transparent"] == (4, 4)


def test_constructor_validation():
    with pytest.raises(TypeError, match="CoreParams"):
        Router("nope", max_layers=2, depths=(2,))
    with pytest.raises(ValueError, match="max_layers"):
        Router(P, max_layers=0, depths=(2,))
    with pytest.raises(ValueError, match="ports"):
        Router(P, max_layers=2, depths=())
    with pytest.raises(ValueError, match=r"depths\[1\]"):
        Router(P, max_layers=2, depths=(2, 0))
    with pytest.raises(TypeError, match="sequence"):
        Router(P, max_layers=2, depths=4)
    with pytest.raises(ValueError, match="init"):
        Router(P, max_layers=2, depths=(2,), init=[2])
    with pytest.raises(ValueError, match="init"):
        Router(P, max_layers=1, depths=(2,), init=[1, 1])


# ---- the port FIFO: a register head in front of a block-RAM FIFO ----

@pytest.mark.parametrize("depth", [1, 2, 3, 4, 9])
@pytest.mark.parametrize("seed, w_prob, r_prob", [(1, 0.7, 0.5), (2, 0.4, 0.9), (3, 0.9, 0.2)])
def test_head_fifo_order_capacity_and_latency(depth, seed, w_prob, r_prob):
    """Random writes and reads against a Python queue, clock by clock: whatever is offered is the
    queue's head; an item written into an empty FIFO is offered in the next clock; an item behind the
    head waits at most two clocks once it is at the front (the block RAM's read); ``w_rdy`` holds only
    while fewer than ``depth`` items are in; ``level`` is the queue's length."""
    rng = random.Random(seed)
    dut = HeadFIFO(width=8, depth=depth)
    queue, seen = [], {"full": 0, "direct": 0}

    async def tb(ctx):
        n, direct, absent = 0, False, 0
        for c in range(600):
            r_rdy = ctx.get(dut.r_rdy)
            if r_rdy:
                assert queue and ctx.get(dut.r_data) == queue[0], "offered an item that is not the head"
            assert r_rdy or not direct, "an item written into an empty FIFO is not offered in the next clock"
            absent = absent + 1 if queue and not r_rdy else 0
            assert absent <= 2, "the head waited more than two clocks"
            assert ctx.get(dut.level) == len(queue)
            w_rdy = ctx.get(dut.w_rdy)
            assert not w_rdy or len(queue) < depth, "room claimed in a full FIFO"
            seen["full"] += len(queue) == depth
            write = w_rdy and rng.random() < w_prob
            read = r_rdy and rng.random() < (0 if 200 <= c < 240 else r_prob)   # a phase without reads fills it
            ctx.set(dut.w_en, write)
            ctx.set(dut.w_data, n & 0xFF)
            ctx.set(dut.r_en, read)
            await ctx.tick()
            if read:
                queue.pop(0)
            direct = write and not queue
            if write:
                seen["direct"] += direct
                queue.append(n & 0xFF)
                n += 1

    run_testbenches(dut, tb)
    assert seen["full"] > 0 and seen["direct"] > 0, seen


def test_head_fifo_rejects_a_bad_depth():
    with pytest.raises(ValueError, match="depth must be an int of at least 1"):
        HeadFIFO(width=4, depth=0)
