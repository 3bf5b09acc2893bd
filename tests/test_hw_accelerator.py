# amaranth: UnusedElaboratable=no
"""The accelerator top in pysim, through its bus only: load an image, write an input, pulse start,
wait for done, read the membranes and counters; compare with the golden model. Also: the layer-step
sequence the controller hands the core equals ``NetworkImage.schedule()``, the TAP stream
reproduces every spike of every layer in order (consumed with random ready), bus round trips of
every selector, writes and starts while busy are ignored, empty/invalid registers, the fit checks,
and a Verilator lint of the generated Verilog."""

import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from cssnn.hw.accelerator import AcceleratorGateware
from cssnn.hw.learn import LearnParams
from cssnn.hw.memmap import AccelParams, Counter, Reg, Route, Sel
from cssnn.hw.params import CoreParams, Mode
from cssnn.sim.bus_tb import BusTestbench
from cssnn.sw.mapping.image import place_network, unpack_state
from cssnn.sw.mapping.requirements import check_fits
from cssnn.verif.netgen import digits_network, golden, random_case

#: The digits-capable core of the Verilator tests and the benchmark.
WIDE = CoreParams(lanes=8, weight_bits=8, membrane_bits=13, output_bits=32, acc_bits=16, bias_bits=16,
                  threshold_bits=16, neurons=256, synapse_rows=1024)
#: A small core for the random networks (2 lanes: several words per layer, cheap to simulate).
SMALL = CoreParams(lanes=2, weight_bits=6, membrane_bits=11, output_bits=24, acc_bits=12, bias_bits=12,
                   threshold_bits=10, neurons=128, synapse_rows=512)


def simulate(dut, main, *, tap_ready=1.0, seed=0):
    """Run ``await main(bus, log)`` with background monitors: ``log["steps"]`` (every config the core
    accepts, as (mode, neuron_base)) and ``log["tap"]`` ((source, index, neg, end) of every tap event
    taken, with random ``tap_ready``)."""
    rng = random.Random(seed)
    log = {"steps": [], "tap": []}
    core_step = dut.core.step

    async def tb(ctx):
        log["result"] = await main(BusTestbench(ctx, dut.bus), log)

    async def steps(ctx):
        async for _, _, valid, ready, mode, base in ctx.tick().sample(
                core_step.valid, core_step.ready, core_step.payload.mode, core_step.payload.neuron_base):
            if valid and ready:
                log["steps"].append((int(mode), int(base)))

    async def tap(ctx):
        t = dut.tap
        ctx.set(t.ready, rng.random() < tap_ready)
        async for _, _, valid, ready, src, idx, neg, end in ctx.tick().sample(
                t.valid, t.ready, t.payload.source, t.payload.event.index, t.payload.event.neg, t.payload.event.end):
            if valid and ready:
                log["tap"].append((int(src), int(idx), int(neg), int(end)))
            ctx.set(t.ready, rng.random() < tap_ready)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.add_testbench(steps, background=True)
    sim.add_testbench(tap, background=True)
    sim.run()
    return log


def expected_tap(img, gold, b, order="chain"):
    """Tap events of one inference with TAP on every layer: per non-SILENT layer-step in the
    evaluation ``order``, the layer's spikes (ascending slot: the index they carry) and its end marker."""
    out = []
    T = img.net.timesteps
    for t, l, cfg in img.evaluation_order(order):
        if cfg["mode"] == Mode.SILENT:
            continue
        if cfg["mode"] == Mode.FIRE:
            s = gold.trace.spikes[l][b][t - l - 1]
            slots = img.layers[l].slots
            out += sorted((l, int(slots[j]), int(s[j] < 0), 0) for j in np.flatnonzero(s))
        out.append((l, 0, 0, 1))
    assert len([e for e in out if e[3]]) == (len(img.layers) - 1) * T + T
    return out


async def infer(bus, img, x):
    """Write x, run, read every layer's membranes and the counters."""
    await bus.write_many(img.bus_input_writes(x))
    clocks = await bus.run()
    p = img.params
    mems = []
    for pl in img.layers:
        raws = await bus.read(Sel.STATE, img.state_addrs(pl.layer))
        mems.append(np.array([unpack_state(p, r)[0] for r in raws], np.int64))
    return mems, await bus.counters(), clocks


def check_inference(img, ap, gold, b, mems, cnt, clocks):
    """Everything the bus shows after one inference against sample ``b`` of the golden trace."""
    net = img.net
    T, L = net.timesteps, net.n_layers
    for l, m in enumerate(gold.trace.membranes):
        assert np.array_equal(mems[l], m[b]), f"layer {l} membranes: hw {mems[l]} golden {m[b]}"
    assert np.array_equal(mems[-1], gold.logits[b])
    assert cnt[Counter.ARGMAX_INDEX] == int(gold.classes[b])
    bits = ap.elem_bits(Sel.COUNTER)
    value = cnt[Counter.ARGMAX_VALUE] - (2**bits if cnt[Counter.ARGMAX_VALUE] >> (bits - 1) else 0)
    assert value == gold.logits[b].max()
    spikes = int(gold.spikes[b].sum())
    assert cnt[Counter.SPIKES] == spikes
    assert cnt[Counter.EVENTS] == spikes       # every spike of layers 0..L-1 is consumed by the next layer
    assert cnt[Counter.SYNOPS] == int(gold.synaptic_ops[b])
    assert cnt[Counter.STEPS] == L * (T + 1) + T
    # the core takes each step while the previous one's spikes still leave, so it is busy from the clock
    # after start to the end: the controller's whole overhead is the start clock and the registered done
    assert cnt[Counter.RUN_CYCLES] == cnt[Counter.CORE_CYCLES] + 2 == clocks


def schedule_of(img, order="chain"):
    return [(int(cfg["mode"]), cfg["neuron_base"]) for _, _, cfg in img.evaluation_order(order)]


def test_digits_network_bit_exact_with_tap():
    net, xs = digits_network()
    ap = AccelParams(core=WIDE, max_layers=4, fifo_depth=65, tap_depth=8)
    img = place_network(net, WIDE)
    samples = [0, 1, 0]                      # the repeat must give the same answer
    gold = golden(net, xs[samples], WIDE.membrane_bits)
    dut = AcceleratorGateware(ap)

    async def main(bus, log):
        await bus.write_many(img.bus_writes(ap, tap=True))
        res = []
        for b, s in enumerate(samples):
            res.append(await infer(bus, img, xs[s]))
            want = sum(len(expected_tap(img, gold, k)) for k in range(b + 1))
            for _ in range(100):                 # let the consumer drain the tap FIFO
                if len(log["tap"]) >= want:
                    break
                await bus.ctx.tick()
        return res

    log = simulate(dut, main, tap_ready=0.7, seed=3)
    for b, (mems, cnt, clocks) in enumerate(log["result"]):
        check_inference(img, ap, gold, b, mems, cnt, clocks)
    # the repeated sample: same answer and counters (cycles differ: the tap's ready is random)
    same = [c for c in Counter if c not in (Counter.RUN_CYCLES, Counter.CORE_CYCLES)]
    assert [log["result"][0][1][c] for c in same] == [log["result"][2][1][c] for c in same]
    assert log["steps"] == schedule_of(img) * len(samples)
    assert log["tap"] == [e for b in range(len(samples)) for e in expected_tap(img, gold, b)]
    assert log["result"][0][1][Counter.SYNOPS] > 10_000


def _random_cases(seed, count, ap, depths):
    rng = np.random.default_rng(seed)
    cases = []
    while len(cases) < count:
        depth = depths[len(cases) % len(depths)]
        net, xs, gold = random_case(rng, ap.core, 2, max_layers=depth, max_size=16)
        if net.n_layers != depth or (depth >= 2 and gold.spikes[:, -1].sum() == 0):
            continue    # the deepest spiking layer must fire: every loopback hop carries spikes
        try:
            check_fits(net, ap)
        except ValueError:
            continue
        cases.append((net, xs, gold))
    return cases


@pytest.mark.parametrize("seed, depths, tap, order", [(101, (1, 2, 3), False, "chain"), (202, (2, 3, 4), True, "chain"),
                                                     (303, (1, 2, 3, 4), True, "waves")])
def test_random_networks_bit_exact(seed, depths, tap, order):
    """~20 random networks of 1-4 weight layers, each loaded over the previous one, two samples each;
    the steps in the evaluation ``order``; with TAP on every layer the tap stream must carry every
    spike of every layer in that order. Waves: the loopback FIFO holds what 4 spiking layers of up to
    16 neurons need (4 x 17 + 17 entries)."""
    ap = AccelParams(core=SMALL, max_layers=6, timestep_bits=4, fifo_depth=33 if order == "chain" else 85,
                     tap_depth=4, order=order)
    cases = _random_cases(seed, 10, ap, depths)
    dut = AcceleratorGateware(ap)
    imgs = [place_network(net, SMALL) for net, _, _ in cases]

    async def main(bus, log):
        out = []
        for img, (_net, xs, gold) in zip(imgs, cases):
            await bus.write_many(img.bus_writes(ap, tap=tap))
            for b in range(len(xs)):
                start_steps, start_tap = len(log["steps"]), len(log["tap"])
                res = await infer(bus, img, xs[b])
                want = len(expected_tap(img, gold, b, order)) if tap else 0
                for _ in range(200):
                    if len(log["tap"]) - start_tap >= want:
                        break
                    await bus.ctx.tick()
                out.append((res, log["steps"][start_steps:], log["tap"][start_tap:]))
        return out

    log = simulate(dut, main, tap_ready=0.5, seed=seed)
    results = iter(log["result"])
    for img, (_net, xs, gold) in zip(imgs, cases):
        for b in range(len(xs)):
            (mems, cnt, clocks), steps, tapped = next(results)
            check_inference(img, ap, gold, b, mems, cnt, clocks)
            assert steps == schedule_of(img, order)
            assert tapped == (expected_tap(img, gold, b, order) if tap else [])
    assert {net.n_layers for net, _, _ in cases} == set(depths)
    assert sum(int(g.spikes.sum()) for _, _, g in cases) > 0


def _rand_raw(rng, ap, sel):
    return rng.randrange(2 ** ap.elem_bits(sel))


def test_bus_roundtrip_every_selector():
    ap = AccelParams(core=SMALL, max_layers=5, timestep_bits=4, fifo_depth=9)
    rng = random.Random(7)
    writes = []
    for sel in (Sel.SYNAPSE, Sel.STATE, Sel.BIAS, Sel.ACC, Sel.LAYER, Sel.ROUTE, Sel.REG):
        for _ in range(10):
            writes.append((sel, rng.randrange(ap.depth(sel)), _rand_raw(rng, ap, sel)))
    reg_bits = {Reg.TIMESTEPS: ap.timestep_bits, Reg.LAYERS: ap.layer_bits + 1}
    writes = [(s, a, r & (2 ** reg_bits[Reg(a)] - 1)) if s == Sel.REG else (s, a, r) for s, a, r in writes]
    want = {}
    for s, a, r in writes:
        want[(s, a)] = r
    # out of range (ignored): a layer-table entry past max_layers, a STATE element past the neurons
    # (it would alias to element 3), COUNTER (read-only)
    bad = [(Sel.LAYER, 5, 1), (Sel.LAYER, 7, 1), (Sel.STATE, SMALL.neurons + 3, 1), (Sel.COUNTER, 0, 99),
           (Sel.COUNTER, 3, 99)]
    dut = AcceleratorGateware(ap)

    async def main(bus, log):
        await bus.write_many([(Sel.STATE, 3, 0)] + writes + bad)
        got = {}
        for sel in Sel:
            addrs = sorted(a for s, a in want if s == sel)
            for a, v in zip(addrs, await bus.read(sel, addrs)):
                got[(sel, a)] = v
        extra = {
            "state3": (await bus.read(Sel.STATE, [3]))[0],
            "layers": await bus.read(Sel.LAYER, list(range(5))),
            "counters": await bus.read(Sel.COUNTER, list(range(len(Counter)))),
        }
        return got, extra

    got, extra = simulate(dut, main)["result"]
    assert got == want
    assert extra["state3"] == want.get((Sel.STATE, 3), 0)
    assert extra["layers"] == [want.get((Sel.LAYER, a), 0) for a in range(5)]
    assert extra["counters"] == [0] * len(Counter)


def test_reset_state_routes_loopback_and_empty_run():
    """After reset every route is LOOPBACK; T = L = 0 (or L >= max_layers) runs nothing: done at once."""
    ap = AccelParams(core=SMALL, max_layers=4, timestep_bits=4, fifo_depth=9)
    dut = AcceleratorGateware(ap)

    async def main(bus, log):
        routes = await bus.read(Sel.ROUTE, list(range(4)))
        regs = await bus.read(Sel.REG, [Reg.TIMESTEPS, Reg.LAYERS])
        c0 = await bus.run()
        cnt0 = await bus.counters()
        await bus.write(Sel.REG, Reg.TIMESTEPS, 3)
        await bus.write(Sel.REG, Reg.LAYERS, 4)          # L = max_layers: no room for L + 1 entries
        c1 = await bus.run()
        return routes, regs, c0, cnt0, c1

    routes, regs, c0, cnt0, c1 = simulate(dut, main)["result"]
    assert routes == [int(Route.LOOPBACK)] * 4 and regs == [0, 0]
    assert c0 == c1 == 1 and cnt0[Counter.RUN_CYCLES] == 1 and cnt0[Counter.STEPS] == 0


def test_output_layer_loopback_is_masked():
    """A LOOPBACK route on the output layer (the reset state of the route table) must not leave its
    end markers in the loopback FIFO: routes left at reset, two samples, bit-exact."""
    ap = AccelParams(core=SMALL, max_layers=4, timestep_bits=4, fifo_depth=33)
    (net, xs, gold), = _random_cases(41, 1, ap, (2,))
    img = place_network(net, SMALL)
    dut = AcceleratorGateware(ap)

    async def main(bus, log):
        await bus.write_many([w for w in img.bus_writes(ap) if w[0] != Sel.ROUTE])
        return [await infer(bus, img, x) for x in xs]

    for b, res in enumerate(simulate(dut, main)["result"]):
        check_inference(img, ap, gold, b, *res)


def test_writes_and_start_ignored_while_busy():
    ap = AccelParams(core=SMALL, max_layers=4, timestep_bits=4, fifo_depth=33)
    (net, xs, gold), = _random_cases(12, 1, ap, (2,))
    img = place_network(net, SMALL)
    writes = img.bus_writes(ap) + img.bus_input_writes(xs[0])
    r = random.Random(5)
    dut = AcceleratorGateware(ap)

    async def main(bus, log):
        await bus.write_many(img.bus_writes(ap))
        ref = await infer(bus, img, xs[0])
        await bus.write_many(img.bus_input_writes(xs[0]))
        ctx = bus.ctx

        async def meddle(n):
            # a bus write of garbage to a loaded address every clock, and a second start now and then
            sel, addr, raw = writes[r.randrange(len(writes))]
            ctx.set(bus.b.sel, int(sel))
            ctx.set(bus.b.addr, addr)
            ctx.set(bus.b.wdata, (raw + 1 + r.randrange(5)) % 2 ** ap.elem_bits(sel))
            ctx.set(bus.b.we, 1)
            ctx.set(bus.b.start, int(n % 17 == 0))

        clocks = await bus.run(during=meddle)
        ctx.set(bus.b.we, 0)
        ctx.set(bus.b.start, 0)
        cnt = await bus.counters()
        back = {}
        for sel in (Sel.SYNAPSE, Sel.BIAS, Sel.INDEX, Sel.LAYER, Sel.ROUTE, Sel.REG):
            addrs = [a for s, a, _ in writes if s == sel]
            back.update({(sel, a): v for a, v in zip(addrs, await bus.read(sel, addrs))})
        again = await infer(bus, img, xs[0])
        return ref, clocks, cnt, back, again

    ref, clocks, cnt, back, again = simulate(dut, main)["result"]
    assert clocks == ref[2] and cnt == ref[1]
    assert back == {(s, a): v for s, a, v in writes}
    check_inference(img, ap, gold, 0, *ref)
    check_inference(img, ap, gold, 0, *again)


def test_route_without_loopback_starves_the_next_layer():
    """A spiking layer routed to TAP only: its spikes leave on the tap, the next layer runs on an
    injected end marker (input 0, as if its synapses were all masked) and nothing hangs."""
    from cssnn.sw.spec.network import SpikingLayer

    ap = AccelParams(core=SMALL, max_layers=4, timestep_bits=4, fifo_depth=33, tap_depth=4)
    (net, xs, gold), = _random_cases(31, 1, ap, (2,))
    img = place_network(net, SMALL)
    first = net.layers[0]
    starved = net.with_(layers=(SpikingLayer(first.shape, first.weight, first.bias, first.threshold,
                                             np.zeros(first.shape.weight_shape, bool)),) + net.layers[1:])
    gold_s = golden(starved, xs, SMALL.membrane_bits)
    dut = AcceleratorGateware(ap)

    async def main(bus, log):
        await bus.write_many(img.bus_writes(ap))
        await bus.write(Sel.ROUTE, 0, int(Route.TAP))
        return await infer(bus, img, xs[0])

    log = simulate(dut, main, tap_ready=0.6, seed=2)
    mems, cnt, clocks = log["result"]
    for l, m in enumerate(gold_s.trace.membranes):
        assert np.array_equal(mems[l], m[0]), f"layer {l}"
    assert int(gold.spikes[0, 0]) > 0
    assert cnt[Counter.SPIKES] == int(gold_s.spikes[0].sum())
    assert cnt[Counter.EVENTS] == int(gold_s.spikes[0, 1:].sum())      # the encoder's spikes were not consumed
    assert [e for e in log["tap"] if not e[3]] == [e for e in expected_tap(img, gold, 0) if e[0] == 0 and not e[3]]


def test_fit_checks_name_the_problem():
    net, _ = digits_network()       # 4 table entries, layers of 64, 64, 32 (+ 10 outputs), T = 6
    ok = AccelParams(core=WIDE, max_layers=4, timestep_bits=3, fifo_depth=65)
    check_fits(net, ok)
    img = place_network(net, WIDE)
    # synapse rows: the lists hold only the synapses that exist (dense lists would be 832 rows), at most
    # a row or so per layer above ceil(fanout / 8) each; index entries: every slot of the 22 words
    ideal = sum(int(np.ceil(layer.fanout / 8).sum()) for layer in net.layers)
    assert ideal <= img.rows_used <= ideal + 4 < 832
    assert len(img.bus_writes(ok)) == img.rows_used * 8 + (64 + 32 + 16) + 22 * 8 + 4 + 4 + 2
    assert img.output_addrs() == [20 * 8 + j for j in range(10)]
    with pytest.raises(ValueError, match="max_layers=3"):
        check_fits(net, AccelParams(core=WIDE, max_layers=3))
    with pytest.raises(ValueError, match="T=6 .* 2-bit T register"):
        check_fits(net, AccelParams(core=WIDE, timestep_bits=2))
    with pytest.raises(ValueError, match="layer 0 has 64 neurons.*fifo_depth=64"):
        check_fits(net, AccelParams(core=WIDE, fifo_depth=64))
    # waves: a step of every spiking layer and the running one's, (65 + 65 + 33) + 65 events
    check_fits(net, AccelParams(core=WIDE, max_layers=4, timestep_bits=3, fifo_depth=228, order="waves"))
    with pytest.raises(ValueError, match=r"fifo_depth=227\) must hold 228 events in waves.*64, 64, 32 neurons"):
        check_fits(net, AccelParams(core=WIDE, max_layers=4, timestep_bits=3, fifo_depth=227, order="waves"))
    with pytest.raises(ValueError, match="order must be one of 'chain', 'waves', not 'zigzag'"):
        AccelParams(core=WIDE, order="zigzag")
    with pytest.raises(ValueError, match="membrane_bits=12 is too small"):
        check_fits(net, AccelParams(core=CoreParams(lanes=8, membrane_bits=12, neurons=256, synapse_rows=1024)))
    with pytest.raises(ValueError, match="different core parameters"):
        img.bus_writes(AccelParams(core=SMALL))
    with pytest.raises(TypeError, match="AccelParams"):
        check_fits(net, WIDE)
    with pytest.raises(TypeError, match="AccelParams"):
        AcceleratorGateware(WIDE)
    with pytest.raises(ValueError, match="input has 3 values"):
        img.bus_input_writes([1, 2, 3])


def test_verilator_lint_clean():
    from cssnn.sim.verilator import lint_accelerator

    for ap in (AccelParams(core=WIDE, max_layers=8), AccelParams(core=CoreParams(lanes=1, neurons=4, synapse_rows=4),
                                                                 max_layers=3, fifo_depth=2, tap_depth=2),
               AccelParams(core=WIDE, learn=LearnParams(inputs=12, neurons=5, window=4))):
        res = lint_accelerator(ap)
        assert res.returncode == 0, res.stdout + res.stderr
        assert "%Warning" not in res.stderr and "%Error" not in res.stderr, res.stderr
