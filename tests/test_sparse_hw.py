"""Sparse synapse lists in the mapping and in the core (docs/HARDWARE.md, "Memory layout"): every
presynaptic neuron's list holds only the synapses that exist, a spike costs one clock per row of
its list, and the results stay bit-exact."""

from dataclasses import replace

import numpy as np
import pytest

from cssnn.hw.memmap import AccelParams
from cssnn.hw.params import CoreParams, Mode
from cssnn.sw.mapping.image import place_network
from cssnn.sw.mapping.lanes import assign_slots, channels_minor_slots, identity_slots, layer_matrix, list_rows
from cssnn.sw.mapping.requirements import DoesNotFit, check_fits, requirements
from cssnn.sw.mapping.sizing import params_for
from cssnn.sw.spec.layers import Conv2d, Dense
from cssnn.sw.spec.network import SpikingLayer, SpikingNetwork
from cssnn.verif.netgen import golden, sparse_case, sparsify
from cssnn.verif.pysim import check_cases, run_with_core


def params(lanes):
    return CoreParams(lanes=lanes, weight_bits=6, membrane_bits=11, output_bits=24, acc_bits=12, bias_bits=12,
                      threshold_bits=10, neurons=64 if lanes < 4 else 128, synapse_rows=512)


@pytest.mark.parametrize("lanes, seed, walk", [(1, 20, "rows"), (2, 21, "rows"), (4, 22, "rows"),
                                              (2, 23, "lanes"), (4, 25, "lanes")])
def test_sparse_random_networks_bit_exact(lanes, seed, walk):
    """Densities 1% to 100%, empty fan-outs, a one-lane output layer, conv and pool layers; input gaps
    and output back-pressure; both list walks. Spikes, membranes, logits and every counter (synaptic
    ops: existing synapses only) equal the golden model's."""
    p = replace(params(lanes), walk=walk)
    rng = np.random.default_rng(seed)
    cases = [sparse_case(rng, p, 2, max_size=20) for _ in range(8)]
    reports = check_cases(p, cases, seed=seed, valid_prob=0.7, ready_prob=0.6)
    assert sum(sum(r["synops"]) for r in reports) > 0


def _net(layers, **kw):
    return SpikingNetwork(tuple(layers), timesteps=kw.pop("timesteps", 3), input_bits=4, weight_bits=6, **kw)


def test_a_spike_costs_the_rows_of_its_list():
    """One step, measured: an event costs one clock per row of its presynaptic neuron's list; an
    event with an empty list issues no row (alone it costs the clock the event input takes it in,
    behind other events nothing); the step's fixed cost does not depend on the rows."""
    rng = np.random.default_rng(3)
    p = params(4)
    w = rng.integers(1, 20, size=(32, 6))
    mask = np.zeros((32, 6), bool)
    mask[:, 0] = True                       # neuron 0: 32 synapses, 8 per lane -> 8 rows
    mask[::4, 1] = True                     # neuron 1: 8 synapses, all in lane 0 of the identity ...
    mask[:3, 2] = True                      # neuron 2: 3 synapses -> 1 row; neurons 3..5: none
    net = _net([SpikingLayer(Dense(6, 32), w, np.zeros(32, int), 50, mask),
                SpikingLayer(Dense(32, 2), np.ones((2, 32), int), np.zeros(2, int), None)])
    img = place_network(net, p)
    hidden = img.layers[1]
    rows = {i: int(img.index_rows[divmod(int(img.layers[0].slots[i]), 4)]) for i in range(6)}
    assert rows[0] == 8 and rows[2] == 1 and rows[3] == rows[4] == rows[5] == 0
    assert rows[1] == 2                     # ... which the lane assignment spreads over the lanes
    cfg = hidden.config(Mode.SILENT)

    async def body(drv):
        await drv.load(img)
        cycles = {}
        for name, evs in {"none": [], "empty": [(3, 1), (4, 1), (5, -1)], "one": [(2, 1)], "big": [(0, 1)],
                          "all": [(i, 1) for i in range(6)]}.items():
            cycles[name] = (await drv.run_step(cfg, evs)).cycles
        return cycles

    c = run_with_core(p, body)
    assert p.overlap   # a 4-lane core: a lone end marker goes straight to EB, skipping the index read
    assert c["empty"] == c["none"] + 3 + 1  # one event per clock into the event input, no row; the
    #                                         marker behind them reads no entry but waits its turn (EM)
    # a step with rows also waits once for the accumulate stage to drain before its first word (its
    # D, A, B: 2 more; D2 and X are forwarded) and its marker comes behind the event (EM: 1)
    assert c["one"] == c["none"] + 1 + 2 + 1 and c["big"] == c["one"] + 7
    assert c["all"] == c["one"] + 7 + 2 + 2    # the empty ones pass while neuron 0's rows issue


def _one_lane_lists(lanes=4, outputs=32):
    """Inputs 0, 1, 2 connect to the output neurons of lane 0, 1, 2 only (an output layer keeps its
    neurons in slot order: neuron j in lane j % N), so each of their lists has all its synapses in one
    lane: ``outputs / N`` rows; inputs 3..5 have none."""
    rng = np.random.default_rng(4)
    mask = np.zeros((outputs, 6), bool)
    for i in range(3):
        mask[i::lanes, i] = True
    return _net([SpikingLayer(Dense(6, outputs), rng.integers(-20, 20, size=(outputs, 6)), np.zeros(outputs, int),
                              None, mask)])


def test_lanes_walk_their_own_lists():
    """The worst-case imbalance, measured: three spikes whose lists each fill one lane (8 rows). Walking
    rows, the step issues 24 rows; with each lane walking its own part, the three lists run side by
    side (the second and third spike enter a clock apart) and an empty list still costs nothing.
    Bit-exact on both walks (results, every counter)."""
    net = _one_lane_lists()
    cycles = {}
    for walk in ("rows", "lanes"):
        p = replace(params(4), walk=walk)
        img = place_network(net, p)
        assert [img.index_entry(0, i) for i in range(4)] == (
            [{"first": 8 * i, "rows": 8} for i in range(3)] + [{"first": 24, "rows": 0}] if walk == "rows" else
            [{"first": 8 * i, "counts": [8 * (k == i) for k in range(4)]} for i in range(3)]
            + [{"first": 24, "counts": [0] * 4}])
        cfg = img.layers[1].config(Mode.OUT_FIRST)

        async def body(drv, img=img, cfg=cfg):
            await drv.load(img)
            return {name: (await drv.run_step(cfg, evs)).cycles
                    for name, evs in {"one": [(0, 1)], "three": [(0, 1), (1, -1), (2, 1)],
                                      "three+empty": [(0, 1), (3, 1), (1, -1), (4, 1), (2, 1)]}.items()}

        cycles[walk] = run_with_core(p, body)
        xs = np.random.default_rng(6).integers(0, net.input_limit + 1, size=(3, 6))
        check_cases(p, [(net, xs, golden(net, xs, p.membrane_bits))], seed=2, valid_prob=0.7, ready_prob=0.6)
    assert cycles["rows"]["three"] == cycles["rows"]["one"] + 16
    assert cycles["lanes"]["one"] == cycles["rows"]["one"]
    assert cycles["lanes"]["three"] == cycles["lanes"]["one"] + 2
    assert cycles["lanes"]["three+empty"] == cycles["lanes"]["one"] + 4   # one clock per event into the input


def test_default_walk_follows_the_lanes_imbalance():
    """params_for has the lanes walk apart from 4 lanes on where walking rows would issue at least
    LANE_WALK_GAIN times the busiest lanes' synapses: one-lane lists yes, a dense layer no."""
    from cssnn.sw.mapping.sizing import LANE_WALK_GAIN, default_walk

    one_lane = requirements(_one_lane_lists(), 4)
    assert one_lane.synapse_rows == 24 and one_lane.busiest_lane_synapses == 8    # 3 lists of 8 in 3 lanes
    dense = _net([SpikingLayer(Dense(6, 32), np.ones((32, 6), int), np.zeros(32, int), None)])
    req = requirements(dense, 4)
    assert req.synapse_rows == req.busiest_lane_synapses == 48 < LANE_WALK_GAIN * 48
    assert [default_walk(4, one_lane), default_walk(4, req), default_walk(2, one_lane), default_walk(4)] == [
        "lanes", "rows", "rows", "lanes"]
    assert params_for(_one_lane_lists(), lanes=4).core.walk == "lanes"
    assert params_for(dense, lanes=8).core.walk == "rows" and params_for(dense, lanes=8, walk="lanes").core.walk == "lanes"


def test_dense_and_conv_lists_are_balanced():
    # dense: every presynaptic neuron has ceil(n_out / N) rows
    conn = np.ones((20, 7), bool)
    assert list(list_rows(conn, assign_slots(conn, 8), 8)) == [3] * 7
    # a 3x3 convolution with 8 output channels on 8 lanes: the lists hold exactly ceil(fanout / 8) rows,
    # where the identity order (lane = position within a channel) needs about twice as many
    conv = SpikingLayer(Conv2d((1, 8, 8), 8, (3, 3), (1, 1), (1, 1)), np.ones((8, 1, 3, 3), int), np.zeros(8, int), 4)
    _, conn = layer_matrix(conv)
    ideal = -(-conn.sum(axis=0) // 8)
    slots = assign_slots(conn, 8, [channels_minor_slots(conv.shape.out_shape)])
    assert sorted(slots) == list(range(conn.shape[0]))
    assert np.array_equal(list_rows(conn, slots, 8), ideal)
    assert list_rows(conn, identity_slots(conn.shape[0]), 8).sum() >= 1.5 * ideal.sum()
    assert list_rows(conn, assign_slots(conn, 8), 8).sum() > ideal.sum()    # greedy alone: close, not exact
    net = _net([conv, SpikingLayer(Dense(512, 4), np.ones((4, 512), int), np.zeros(4, int), None)],
               input_shape=(1, 8, 8))
    assert requirements(net, 8).geometry[1].rows == ideal.sum()             # the mapping finds it
    # random masks: never worse than the identity, deterministic
    rng = np.random.default_rng(0)
    for d in (0.5, 0.1, 0.02):
        conn = rng.random((64, 40)) < d
        s = assign_slots(conn, 8)
        assert list_rows(conn, s, 8).sum() <= list_rows(conn, identity_slots(64), 8).sum()
        assert np.array_equal(s, assign_slots(conn, 8))


def test_image_lists_and_index_entries():
    """The image holds every existing synapse exactly once, in its neuron's lane and word; index
    entries tile the rows in slot order; padding slots and the output layer have empty lists."""
    rng = np.random.default_rng(5)
    p = params(4)
    net, _, _ = sparse_case(rng, p, 1, max_size=20)
    img = place_network(net, p)
    n = p.lanes
    row = 0
    for l in range(1, net.n_layers + 1):
        pl, prev = img.layers[l], img.layers[l - 1]
        a, conn = layer_matrix(net.layers[l - 1])
        got = np.zeros_like(a)
        seen = np.zeros(conn.shape, int)
        for i in range(prev.count):          # presynaptic neurons, in slot order
            s = prev.neuron_base * n + i
            first, rows = img.index_first[s // n, s % n], img.index_rows[s // n, s % n]
            assert first == row
            row += rows
            j_pre = prev.neuron_at[i]
            for r in range(first, first + rows):
                for k in range(n):
                    if img.syn_mask[r, k]:
                        j = pl.neuron_at[img.syn_offset[r, k] * n + k]
                        got[j, j_pre] += img.syn_weight[r, k]
                        seen[j, j_pre] += 1
        assert np.array_equal(got, np.where(conn, a, 0)) and np.array_equal(seen, conn.astype(int))
        assert pl.rows == requirements(net, n).geometry[l].rows
    assert row == img.rows_used and img.synapses == sum(int(layer_matrix(x)[1].sum()) for x in net.layers)
    out = img.layers[-1]
    assert not img.index_rows[out.neuron_base:out.neuron_base + out.groups].any()
    assert list(out.slots) == list(range(out.count))


def test_fit_counts_existing_synapses():
    """A pruned network needs rows for its synapses only: it fits where the dense one does not, and
    the error names the rows needed."""
    rng = np.random.default_rng(1)
    w = rng.integers(-20, 21, size=(64, 128))
    dense = _net([SpikingLayer(Dense(128, 64), w, np.zeros(64, int), 500),
                  SpikingLayer(Dense(64, 10), rng.integers(-20, 21, size=(10, 64)), np.zeros(10, int), None)])
    pruned = sparsify(rng, dense, 8, density=0.1)
    core = CoreParams(lanes=8, weight_bits=6, membrane_bits=16, output_bits=32, neurons=256, synapse_rows=512)
    check_fits(pruned, AccelParams(core=core, fifo_depth=129))
    with pytest.raises(DoesNotFit, match=r"needs 1152 synapse rows, the core has 512"):   # 128*8 + 64*2
        check_fits(dense, AccelParams(core=core, fifo_depth=129))
    small, big = params_for(pruned, lanes=8), params_for(dense, lanes=8)
    assert small.core.synapse_rows * 4 <= big.core.synapse_rows
    assert small.core.offset_bits == big.core.offset_bits == 3      # 64 neurons: 8 words of 8 lanes


def test_cli_info_reports_synapse_memory(capsys, tmp_path):
    import json

    from cssnn.cli import main
    from cssnn.sw.spec.network import save_network
    from cssnn.verif.netgen import digits_network

    net, _ = digits_network(6)
    path = tmp_path / "snn.npz"
    save_network(net, path)
    assert main(["info", str(path), "--json", "--lanes", "4"]) == 0
    info = json.loads(capsys.readouterr().out)
    img = place_network(net, params_for(net, lanes=4).core)
    mem = info["synapse_memory"]
    assert mem["lanes"] == 4 and mem["synapses"] == info["synapses"] == img.synapses
    assert mem["synapse_rows"] == img.rows_used < mem["dense_rows"] == 64 * 16 + 64 * 8 + 32 * 3
    assert mem["synapse_bits"] == img.rows_used * 4 * mem["lane_bits"]
    assert main(["info", str(path)]) == 0 and "synapse memory on 8 lanes" in capsys.readouterr().out
    assert main(["info", str(path), "--lanes", "6"]) == 2
    assert "--lanes must be a power of two" in capsys.readouterr().err


def test_small_accumulator_banks_bit_exact():
    """acc_words below the core's words: the weight layers' words are distinct modulo acc_words, the
    encoder's alias them and must read zeros (every accumulator word is zero outside its own step)."""
    p = CoreParams(lanes=2, weight_bits=6, membrane_bits=11, output_bits=24, acc_bits=12, bias_bits=12,
                   threshold_bits=10, neurons=64, synapse_rows=512, acc_words=8)
    rng = np.random.default_rng(31)
    cases = [sparse_case(rng, p, 2, max_layers=2, max_size=12) for _ in range(6)]
    check_cases(p, cases, seed=5, valid_prob=0.8, ready_prob=0.7)
    too_big = sparsify(rng, _net([SpikingLayer(Dense(4, 20), np.ones((20, 4), int), np.zeros(20, int), 9),
                                  SpikingLayer(Dense(20, 2), np.ones((2, 20), int), np.zeros(2, int), None)]), 2)
    with pytest.raises(DoesNotFit, match="11 accumulator words, the core's banks hold acc_words=8"):
        place_network(too_big, p)


def test_pruned_digits_bit_exact_and_cheaper():
    """The digits MLP trained with --sparsity 0.8, on a 4-lane core: bit-exact, and its spikes cost
    fewer synapse rows than the dense network's."""
    from cssnn.sw.frontends.convert import ConversionConfig, convert
    from cssnn.sw.frontends.datasets import load_dataset
    from cssnn.sw.frontends.train import train_mlp
    from cssnn.sw.spec.golden import quantize_input
    from cssnn.verif.netgen import digits_network, golden

    d = load_dataset("digits")
    pruned = convert(train_mlp(d.x_train, d.y_train, (64, 32), seed=0, sparsity=0.8), d.x_train, ConversionConfig())
    dense, _ = digits_network(6)
    xs = quantize_input(d.x_test[:2], pruned.input_bits)
    p = params_for(dense, lanes=4).core
    reports = check_cases(p, [(net, xs, golden(net, xs, p.membrane_bits)) for net in (dense, pruned)], seed=1)
    dense_cycles, pruned_cycles = (sum(r["cycles"]) for r in reports)
    assert place_network(pruned, p).rows_used < 0.4 * place_network(dense, p).rows_used
    assert pruned_cycles < 0.6 * dense_cycles


def test_pruned_digits_on_verilator_through_the_driver():
    """The 80%-pruned digits MLP on the accelerator sized for the dense one (Verilator, the host
    driver and protocol): every logit, class, event and synaptic-op count of 40 test samples equals
    the golden model's."""
    from cssnn.sim.transports import VerilatorTransport
    from cssnn.sw.frontends.convert import ConversionConfig, convert
    from cssnn.sw.frontends.datasets import load_dataset
    from cssnn.sw.frontends.train import train_mlp
    from cssnn.sw.host.accelerator import Accelerator
    from cssnn.sw.host.compare import compare_with_golden
    from cssnn.sw.spec.golden import quantize_input
    from cssnn.verif.netgen import digits_network

    d = load_dataset("digits")
    pruned = convert(train_mlp(d.x_train, d.y_train, (64, 32), seed=0, sparsity=0.8), d.x_train, ConversionConfig())
    ap = params_for(digits_network(6)[0])
    xs = quantize_input(d.x_test[:40], pruned.input_bits)
    with Accelerator(VerilatorTransport(ap)) as acc:
        acc.load(pruned)
        batch = acc.infer_batch(xs)
    cmp = compare_with_golden(pruned, xs, batch, membrane_bits=ap.core.membrane_bits)
    assert cmp.bit_exact and int(batch.synops.sum()) == int(cmp.golden.synaptic_ops.sum()) > 0
