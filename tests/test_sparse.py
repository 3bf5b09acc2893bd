"""Sparse synapses on the host side (issue 13): a synapse exists iff its integer weight is nonzero,
the golden model counts existing synapses only, magnitude pruning in the trainer, ``cssnn info``."""

from __future__ import annotations

import json

import numpy as np
import pytest
from reference import reference_run

from cssnn.bench import sparsity as bench_sparsity
from cssnn.cli import main
from cssnn.sw.frontends.convert import ConversionConfig, convert
from cssnn.sw.frontends.train import pruning_schedule, train_mlp
from cssnn.sw.spec.ann import ANN, ANNLayer
from cssnn.sw.spec.golden import quantize_input, run
from cssnn.sw.spec.layers import Conv2d, Dense, Pool2d
from cssnn.sw.spec.network import load_network, save_network


def _pruned_mlp(rng, sizes, density):
    """A random MLP whose weights are exactly 0 with probability 1 - density (biases kept)."""
    layers = []
    for a, b in zip(sizes, sizes[1:]):
        w = rng.normal(0, 1 / np.sqrt(a), (b, a)) * (rng.random((b, a)) < density)
        layers.append(ANNLayer(Dense(a, b), w, rng.normal(0.05, 0.05, b)))
    return ANN(tuple(layers))


def _pruned_conv(rng):
    conv = Conv2d((1, 8, 8), 4, 3, padding=1)
    pool = Pool2d(conv.out_shape, 2)
    dense = Dense(pool.n_out, 10)
    wc = rng.normal(0, 0.5, conv.weight_shape) * (rng.random(conv.weight_shape) < 0.5)
    wd = rng.normal(0, 0.3, dense.weight_shape) * (rng.random(dense.weight_shape) < 0.3)
    return ANN((ANNLayer(conv, wc, rng.normal(0.05, 0.05, 4)), ANNLayer(pool, np.array(0.25), np.zeros(0)),
                ANNLayer(dense, wd, np.zeros(10))), (1, 8, 8))


def _brute_fanout(layer) -> list[int]:
    """Per input neuron: outputs j it reaches through a nonzero integer weight, by explicit loops over
    the layer geometry (no mask, no fanout, no apply)."""
    shape, w = layer.shape, layer.weight.tolist()
    if shape.kind == "dense":
        return [sum(1 for j in range(shape.n_out) if w[j][i] != 0) for i in range(shape.n_in)]
    if shape.kind == "pool2d":
        return [1 if w != 0 else 0] * shape.n_in
    c, h, wd = shape.in_shape
    kh, kw = shape.kernel
    (sh, sw), (ph, pw) = shape.stride, shape.padding
    _, oh, ow = shape.out_shape
    fan = [0] * shape.n_in
    for oc in range(shape.out_channels):
        for oy in range(oh):
            for ox in range(ow):
                for ic in range(c):
                    for ky in range(kh):
                        for kx in range(kw):
                            iy, ix = oy * sh + ky - ph, ox * sw + kx - pw
                            if 0 <= iy < h and 0 <= ix < wd and w[oc][ic][ky][kx] != 0:
                                fan[(ic * h + iy) * wd + ix] += 1
    return fan


def _brute_synops(net, trace) -> np.ndarray:
    """Sum over every nonzero spike of layer l-1 of its fan-out of nonzero weights into layer l."""
    fans = [np.array(_brute_fanout(layer)) for layer in net.layers]
    # trace.spikes[l] is layer l's (B, T, n_l) spike train: the encoder first (CSS)
    return sum((np.abs(trace.spikes[l]).sum(axis=1) * fans[l]).sum(axis=1) for l in range(net.n_layers))


# ---- semantics: which synapses exist --------------------------------------------------------

def test_converter_masks_exactly_the_zero_integer_weights(digits, tmp_path):
    rng = np.random.default_rng(0)
    ann = _pruned_mlp(rng, [64, 24, 16, 10], 0.4)
    tiny = ann.layers[0].weight.copy()
    tiny[0, :5] = 1e-9  # nonzero floats that quantise to 0: no synapse either
    ann = ANN((ANNLayer(ann.layers[0].shape, tiny, ann.layers[0].bias), *ann.layers[1:]))
    net = convert(ann, digits.x_train)
    for al, sl in zip(ann.layers, net.layers):
        assert sl.mask is not None and np.array_equal(sl.mask, sl.weight != 0)
        assert not sl.mask[al.weight == 0].any()  # every pruned weight is absent
        assert sl.synapses == np.count_nonzero(sl.weight) <= np.count_nonzero(al.weight)
    assert not net.layers[0].mask[0, :5].any()
    assert net.layers[0].synapses <= np.count_nonzero(tiny) - 5
    # the masks survive the file format
    back = load_network(save_network(net, tmp_path / "n.npz"))
    assert all(np.array_equal(a.mask, b.mask) for a, b in zip(net.layers, back.layers))


def test_converter_stores_no_mask_when_every_weight_is_nonzero(digits):
    rng = np.random.default_rng(1)
    layers = []
    for a, b in zip([64, 16], [16, 10]):  # |w| in [0.5, 1]: nothing quantises to 0 at 8 bits
        w = rng.uniform(0.5, 1.0, (b, a)) * rng.choice([-1, 1], (b, a))
        layers.append(ANNLayer(Dense(a, b), w, np.full(b, 0.1)))
    net = convert(ANN(tuple(layers)), digits.x_train)
    assert all(l.mask is None for l in net.layers)
    assert net.layers[1].synapses == 16 * 10


@pytest.mark.parametrize("kind", ["mlp", "conv"])
def test_golden_synaptic_ops_count_existing_synapses_only(digits, kind):
    rng = np.random.default_rng(2)
    ann = _pruned_mlp(rng, [64, 32, 16, 10], 0.3) if kind == "mlp" else _pruned_conv(rng)
    net = convert(ann, digits.x_train, ConversionConfig(timesteps=5))
    x = quantize_input(digits.x_test[:40], net.input_bits)
    r = run(net, x, trace=True)
    assert r.synaptic_ops.min() > 0
    np.testing.assert_array_equal(r.synaptic_ops, _brute_synops(net, r.trace))
    # and a pruned network costs less than the same weights counted densely
    dense = net.with_(layers=tuple(l.__class__(l.shape, l.weight, l.bias, l.threshold, None) for l in net.layers))
    r_dense = run(dense, x)
    np.testing.assert_array_equal(r.logits, r_dense.logits)  # absent synapses had weight 0: same function
    assert (r.synaptic_ops < r_dense.synaptic_ops).all()


def test_neurons_without_synapses(digits):
    # input 0 and hidden neuron 3 have no outgoing synapse, hidden neuron 5 and output 2 no incoming one
    rng = np.random.default_rng(3)
    ann = _pruned_mlp(rng, [64, 16, 10], 0.6)
    w1, w2 = ann.layers[0].weight.copy(), ann.layers[1].weight.copy()
    w1[:, 0] = 0
    w1[5, :] = 0
    w2[:, 3] = 0
    w2[2, :] = 0
    b1 = ann.layers[0].bias.copy()
    b1[5] = 0.5  # a neuron driven by its bias only still fires
    ann = ANN((ANNLayer(ann.layers[0].shape, w1, b1), ANNLayer(ann.layers[1].shape, w2, ann.layers[1].bias)))
    net = convert(ann, digits.x_train, ConversionConfig(timesteps=4))
    l1, l2 = net.layers
    assert l1.fanout[0] == 0 and l2.fanout[3] == 0 and not l1.mask[5].any() and not l2.mask[2].any()
    x = quantize_input(digits.x_test[:12], net.input_bits)
    x[:, 0] = 255  # input 0 spikes, at no cost
    r = run(net, x, trace=True)
    assert r.trace.spikes[0][:, :, 0].any() and r.trace.spikes[1][:, :, 5].any()
    for b in range(len(x)):  # the spec's slow reference, which reads the masks itself
        ref = reference_run(net, x[b].tolist())
        assert r.logits[b].tolist() == ref.logits and int(r.synaptic_ops[b]) == ref.synaptic_ops
    np.testing.assert_array_equal(r.synaptic_ops, _brute_synops(net, r.trace))


# ---- training with magnitude pruning ---------------------------------------------------------

def test_pruning_schedule_is_cubic_from_zero_to_the_target():
    s = [pruning_schedule(t, 10, 50, 0.8) for t in range(60)]
    assert s[:11] == [0.0] * 11 and s[50:] == [0.8] * 10
    assert all(a <= b for a, b in zip(s, s[1:]))
    assert s[30] == pytest.approx(0.8 * (1 - 0.5**3))


@pytest.mark.parametrize("sparsity", [0.5, 0.8])
def test_trainer_prunes_every_weight_matrix_to_exactly_round_s_size(digits, sparsity):
    ann = train_mlp(digits.x_train, digits.y_train, (32, 16), epochs=20, seed=1, sparsity=sparsity)
    for layer in ann.layers:
        # exactly 0 (held there through fine-tuning, not merely small), the biases untouched
        assert np.count_nonzero(layer.weight == 0) == round(sparsity * layer.weight.size)
        assert np.count_nonzero(layer.bias) == layer.bias.size
    assert np.mean(ann.predict(digits.x_test) == digits.y_test) > 0.8  # still a classifier


def test_sparsity_zero_trains_exactly_as_before(digits, digits_ann):
    ann = train_mlp(digits.x_train, digits.y_train, (64, 32), seed=0, sparsity=0.0)
    for a, b in zip(ann.layers, digits_ann.layers):
        assert np.array_equal(a.weight, b.weight) and np.array_equal(a.bias, b.bias)


def test_trainer_rejects_bad_sparsity(digits):
    for bad in (-0.1, 1.0, float("nan")):
        with pytest.raises(ValueError, match=r"sparsity must be in \[0, 1\)"):
            train_mlp(digits.x_train, digits.y_train, (8,), epochs=1, sparsity=bad)


def test_pruned_digits_ann_meets_the_issue_targets(digits, digits_ann):
    """Issue 13: --sparsity 0.8 keeps the accuracy within 0.5 points, synaptic ops <= 0.35x dense."""
    sparse = train_mlp(digits.x_train, digits.y_train, (64, 32), seed=0, sparsity=0.8)
    acc = {k: np.mean(a.predict(digits.x_test) == digits.y_test) for k, a in (("dense", digits_ann), ("sparse", sparse))}
    assert acc["sparse"] >= acc["dense"] - 0.005
    ops = {}
    for k, a in (("dense", digits_ann), ("sparse", sparse)):
        net = convert(a, digits.x_train)
        ops[k] = run(net, quantize_input(digits.x_test, net.input_bits)).synaptic_ops.mean()
    assert ops["sparse"] <= 0.35 * ops["dense"]


# ---- CLI -------------------------------------------------------------------------------------

def cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_train_sparsity_json_and_info_synapses(capsys, tmp_path):
    ann, snn = tmp_path / "ann.npz", tmp_path / "snn.npz"
    code, out, _ = cli(capsys, "train", "--out", ann, "--hidden", "32,16", "--epochs", "20", "--sparsity", "0.75",
                       "--json")
    r = json.loads(out)
    sizes = [64 * 32, 32 * 16, 16 * 10]
    assert code == 0 and r["sparsity"] == sum(round(0.75 * s) for s in sizes) / sum(sizes)
    with np.load(ann) as z:
        assert np.count_nonzero(z["W1"] == 0) == round(0.75 * 32 * 16)
    assert cli(capsys, "convert", ann, "--out", snn)[0] == 0
    net = load_network(snn)
    code, out, _ = cli(capsys, "info", snn, "--json")
    info = json.loads(out)
    assert code == 0
    for entry, layer, dense in zip(info["layers"], net.layers, sizes):
        assert entry["synapses"] == np.count_nonzero(layer.weight) <= dense - round(0.75 * dense)
        assert entry["dense_synapses"] == dense and entry["density"] == entry["synapses"] / dense
    assert info["synapses"] == sum(e["synapses"] for e in info["layers"])
    assert info["density"] == info["synapses"] / sum(sizes)
    code, out, _ = cli(capsys, "info", snn)
    assert code == 0 and f"total {info['synapses']:,} of {sum(sizes):,}" in out


def test_info_counts_convolution_synapses(capsys, tmp_path, digits):
    net = convert(_pruned_conv(np.random.default_rng(4)), digits.x_train)
    save_network(net, tmp_path / "c.npz")
    code, out, _ = cli(capsys, "info", tmp_path / "c.npz", "--json")
    info = json.loads(out)
    assert code == 0
    assert [e["synapses"] for e in info["layers"]] == [sum(_brute_fanout(l)) for l in net.layers]
    assert info["layers"][1]["synapses"] == net.layers[1].shape.n_in  # pooling: one synapse per input


@pytest.mark.parametrize("value", ["1", "-0.5", "nan", "1.5"])
def test_train_rejects_bad_sparsity_in_one_line(capsys, tmp_path, value):
    out = tmp_path / "a.npz"
    code, stdout, err = cli(capsys, "train", "--out", out, "--epochs", "1", "--sparsity", value)
    assert code == 2 and "--sparsity must be in [0, 1)" in err and err.count("\n") == 1 and stdout == ""
    assert not out.exists()


# ---- benchmark -------------------------------------------------------------------------------

def test_sparsity_benchmark_rows_and_table(digits):
    rows = [bench_sparsity.measure(s, digits, hidden=(16,), epochs=10) for s in (0.0, 0.8)]
    for r in rows:
        r["ops_ratio"] = r["synaptic_ops"] / rows[0]["synaptic_ops"]
    assert rows[1]["zero_weights"] == pytest.approx(0.8, abs=1e-3) and rows[1]["density"] <= 0.2
    assert rows[1]["ops_ratio"] < 0.5
    text = bench_sparsity.table(rows)
    assert text.count("\n") == 3 and "| 0.8 | 80.0% |" in text


def test_sparsity_benchmark_rejects_bad_arguments(capsys):
    with pytest.raises(SystemExit):
        bench_sparsity.main(["--sparsities", "0.5,1"])
    assert "sparsities must be in [0, 1)" in capsys.readouterr().err

