"""The whole core in the Amaranth simulator: small random networks against the golden model,
with input gaps and output back-pressure, for 1, 2 and 4 lanes; the host port; layout errors."""

import numpy as np
import pytest

from cssnn.hw.params import CoreParams, HostMem, Mode
from cssnn.sw.mapping.image import pack_lane, place_network, unpack_state
from cssnn.sw.mapping.requirements import check_core, requirements
from cssnn.verif.check import compare
from cssnn.verif.netgen import digits_network, random_case
from cssnn.verif.pysim import check_cases, run_with_core


def params(lanes):
    return CoreParams(lanes=lanes, weight_bits=6, membrane_bits=11, output_bits=24, acc_bits=12, bias_bits=12,
                      threshold_bits=10, neurons=64 if lanes < 4 else 128, synapse_rows=512)


@pytest.mark.parametrize("lanes, seed", [(1, 10), (2, 11), (4, 12)])
def test_random_networks_bit_exact(lanes, seed):
    p = params(lanes)
    rng = np.random.default_rng(seed)
    cases = [random_case(rng, p, 2, max_size=20) for _ in range(6)]
    reports = check_cases(p, cases, seed=seed, valid_prob=0.7, ready_prob=0.6)
    assert sum(sum(r["synops"]) for r in reports) > 0


def test_comparison_can_fail():
    """A flipped spike, membrane or counter in the golden result must be reported."""
    p = params(4)
    rng = np.random.default_rng(5)
    net, xs, gold = random_case(rng, p, 1, max_size=12)
    res = {}

    async def body(drv):
        img = place_network(net, p)
        await drv.load(img)
        res["r"] = await drv.infer(img, xs[0])

    run_with_core(p, body)
    r = res["r"]
    assert compare(r, gold, 0, layers=net.n_layers) == []
    gold.trace.spikes[0][0, 0, 0] = 1 - gold.trace.spikes[0][0, 0, 0]
    gold.trace.membranes[-1][0, 0] += 1
    gold.synaptic_ops[0] += 1
    bad = compare(r, gold, 0, layers=net.n_layers)
    assert len(bad) >= 3, bad


def test_host_port_roundtrip_and_idle_only():
    p = params(4)
    rng = np.random.default_rng(3)
    writes = []
    for mem, depth, bits in ((HostMem.SYNAPSE, p.synapse_rows, p.weight_bits), (HostMem.STATE, p.groups, p.store_bits),
                             (HostMem.BIAS, p.groups, p.bias_bits), (HostMem.ACC, p.groups, p.acc_bits),
                             (HostMem.INDEX, p.groups, p.row_bits)):
        for _ in range(12):
            v = int(rng.integers(-(2 ** (bits - 1)), 2 ** (bits - 1)))
            flag = bool(rng.integers(2)) if mem in (HostMem.SYNAPSE, HostMem.STATE) else False
            extra = {"offset": int(rng.integers(p.groups))} if mem == HostMem.SYNAPSE else {}
            if mem == HostMem.INDEX:
                v, extra = v % p.synapse_rows, {"rows": int(rng.integers(p.groups + 1))}
            writes.append((mem, int(rng.integers(depth)), int(rng.integers(p.lanes)), pack_lane(p, mem, v, flag, **extra)))

    async def body(drv):
        for w in writes:
            await drv.host_write(*w)
        return await drv.host_read_many([w[:3] for w in writes])

    got = run_with_core(p, body)
    want = {}
    for mem, a, k, raw in writes:
        want[(mem, a, k)] = raw
    assert got == [want[w[:3]] for w in writes]
    assert unpack_state(p, pack_lane(p, HostMem.STATE, -5, True)) == (-5, True)


def test_preloaded_state_fire_step_clamps():
    """Write membranes/flags through the host port, run one FIRE step with events, check the update."""
    p = CoreParams(lanes=2, weight_bits=4, membrane_bits=6, output_bits=8, acc_bits=6, bias_bits=6,
                   threshold_bits=4, neurons=4, synapse_rows=4)
    V = 2 ** (p.membrane_bits - 1) - 1
    init = [(V, 0), (-V - 1, 1), (3, 1), (-2, 0)]          # (v, fired) of neurons 0..3
    w = [[7, -7, 7, 0], [0, 7, -7, 5]]                     # w[pre][post]
    theta = 5
    cfg = {"mode": int(Mode.FIRE), "neuron_base": 0, "groups": 2, "count": 4, "idx_base": 0, "threshold": theta}

    async def body(drv):
        for j, (v, f) in enumerate(init):
            await drv.host_write(HostMem.STATE, j // 2, j % 2, pack_lane(p, HostMem.STATE, v, f))
        for i in range(2):         # presynaptic i: rows 2i, 2i + 1; lane k of row 2i + g: neuron 2g + k (word g)
            await drv.host_write(HostMem.INDEX, 0, i, pack_lane(p, HostMem.INDEX, 2 * i, rows=2))
            for j in range(4):
                await drv.host_write(HostMem.SYNAPSE, (i << 1) + j // 2, j % 2,
                                     pack_lane(p, HostMem.SYNAPSE, w[i][j], True, offset=j // 2))
        res = await drv.run_step(cfg, [(0, 1), (1, -1), (0, 1)])
        raws = await drv.host_read_many([(HostMem.STATE, j // 2, j % 2) for j in range(4)])
        accs = await drv.host_read_many([(HostMem.ACC, j // 2, j % 2) for j in range(4)])
        return res, [unpack_state(p, r) for r in raws], accs

    res, state, accs = run_with_core(p, body, ready_prob=0.5)
    want_s, want_state = [], []
    for j, (v, f) in enumerate(init):
        i_in = 2 * w[0][j] - w[1][j]
        m = 2 * v + i_in
        s = 1 if m >= theta else (-1 if m <= -theta and f else 0)
        want_state.append((max(-V - 1, min(V, m - 2 * theta * s)), bool(f or s == 1)))
        if s:
            want_s.append((j, s))
    assert res.events == want_s
    assert state == want_state
    assert accs == [0, 0, 0, 0]    # the update phase clears the accumulators


def test_layout_rejects_what_does_not_fit():
    net, _ = digits_network()
    ok = CoreParams(lanes=8, membrane_bits=13, neurons=256, synapse_rows=1024)
    img = place_network(net, ok)
    assert [pl.kind for pl in img.layers] == ["encoder", "hidden", "hidden", "output"]
    ideal = sum(int(np.ceil(layer.fanout / 8).sum()) for layer in net.layers)   # dense: 64*8 + 64*4 + 32*2 = 832
    assert ideal <= img.rows_used <= ideal + 4 and img.words_used == 8 + 8 + 4 + 2
    with pytest.raises(ValueError, match="membrane_bits=12 is too small"):
        check_core(requirements(net, 8), CoreParams(lanes=8, membrane_bits=12, neurons=256, synapse_rows=1024))
    with pytest.raises(ValueError, match="acc_bits=9 is too small"):
        check_core(requirements(net, 8), CoreParams(lanes=8, membrane_bits=13, acc_bits=9, neurons=256, synapse_rows=1024))
    with pytest.raises(ValueError, match="synapse rows"):
        place_network(net, CoreParams(lanes=8, membrane_bits=13, neurons=256, synapse_rows=512))
    with pytest.raises(ValueError, match="neuron words"):
        place_network(net, CoreParams(lanes=8, membrane_bits=13, neurons=128, synapse_rows=1024))
    with pytest.raises(ValueError, match="output_bits=16 is too small"):
        check_core(requirements(net, 8), CoreParams(lanes=8, membrane_bits=13, output_bits=16, neurons=256, synapse_rows=1024))
    sched = img.schedule()
    assert len(sched) == net.timesteps + net.n_layers
    assert [l for l, _ in sched[3]] == [0, 1, 2, 3] and sched[3][3][1]["mode"] == Mode.OUT_FIRST
    assert sched[0] == [(0, img.layers[0].config(Mode.SILENT))]


def test_two_networks_side_by_side():
    """Two images at different neuron/synapse bases in one core, run interleaved: both bit-exact."""
    p = params(4)
    rng = np.random.default_rng(21)
    net_a, xs_a, gold_a = random_case(rng, p, 2, max_size=10)
    img_a = place_network(net_a, p)
    net_b, xs_b, gold_b = None, None, None
    while True:
        net_b, xs_b, gold_b = random_case(rng, p, 2, max_size=10)
        try:
            img_b = place_network(net_b, p, neuron_base=img_a.words_used, syn_base=img_a.rows_used)
            break
        except ValueError:
            continue
    assert img_b.layers[0].neuron_base == img_a.words_used and img_b.layers[-1].syn_base >= img_a.rows_used

    async def body(drv):
        await drv.load(img_a)
        await drv.load(img_b)
        out = []
        for b in range(2):
            for img, xs, gold, net in ((img_a, xs_a, gold_a, net_a), (img_b, xs_b, gold_b, net_b)):
                res = await drv.infer(img, xs[b])
                out += compare(res, gold, b, layers=net.n_layers)
        return out

    bad = run_with_core(p, body, seed=4, valid_prob=0.8, ready_prob=0.8)
    assert not bad, "\n".join(bad[:10])
