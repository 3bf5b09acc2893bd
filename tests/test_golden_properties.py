"""Property-based tests of the golden model (sw/spec/golden.py) and the converter against docs/SEMANTICS.md.

The oracle is tests/reference.py, a slow per-neuron Python-int implementation written from the spec.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from reference import build_layer, reference_run, signed_bits

from cssnn.sw.frontends.convert import ConversionConfig, ConversionError, convert
from cssnn.sw.spec import golden
from cssnn.sw.spec.ann import ANN, ANNError, ANNLayer
from cssnn.sw.spec.layers import Conv2d, Dense, Pool2d
from cssnn.sw.spec.network import (
    FORMAT_VERSION,
    MAX_MEMBRANE_BITS,
    NetworkError,
    SpikingLayer,
    SpikingNetwork,
    load_network,
    save_network,
)

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                      HealthCheck.filter_too_much])


# ---- strategies ---------------------------------------------------------------------------------

def _values(draw, n, lo, hi, extremes=()):
    elem = st.one_of(st.integers(lo, hi), st.sampled_from(list(extremes) or [lo, hi]))
    return draw(st.lists(elem, min_size=n, max_size=n))


@st.composite
def layer_stacks(draw, *, spatial=None, max_depth=4, adversarial=False):
    """(layers, input_shape, weight_bits): a random stack of dense / conv2d / pool2d weight layers."""
    weight_bits = draw(st.sampled_from([2, 3, 4, 8]) | st.integers(2, 16))
    wq = 2 ** (weight_bits - 1) - 1
    depth = draw(st.integers(1, max_depth))
    if spatial is None:
        spatial = draw(st.booleans())
    if spatial:
        shape = (draw(st.integers(1, 2)), draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    else:
        shape = (draw(st.integers(1, 12)),)
    input_shape = shape
    if adversarial:
        bias_mag = draw(st.sampled_from([0, 3, 300, 2**12, 2**20]))
        thr = st.integers(1, 6) | st.sampled_from([1, 2])
    else:
        bias_mag = draw(st.sampled_from([0, 5, 50, 300, 3000]))
        thr = st.integers(1, 300) | st.sampled_from([1, 2, 255, 256])
    layers = []
    for idx in range(depth):
        last = idx == depth - 1
        kinds = ["dense"]
        if len(shape) == 3:
            kinds += ["conv2d"]
            c, h, w = shape
            if any(h % a == 0 and w % b == 0 and a * b > 1 for a in (1, 2, 3) for b in (1, 2, 3)):
                kinds += ["pool2d"]
        kind = draw(st.sampled_from(kinds))
        if kind == "dense":
            n_in = int(np.prod(shape))
            n_out = draw(st.integers(1, 12))
            geo = Dense(n_in, n_out)
        elif kind == "conv2d":
            c, h, w = shape
            kh, kw = draw(st.integers(1, min(3, h + 2))), draw(st.integers(1, min(3, w + 2)))
            ph, pw = draw(st.integers(0, 1)), draw(st.integers(0, 1))
            assume(h + 2 * ph >= kh and w + 2 * pw >= kw)
            geo = Conv2d(shape, draw(st.integers(1, 3)), (kh, kw), (draw(st.integers(1, 2)), draw(st.integers(1, 2))),
                         (ph, pw))
        else:
            c, h, w = shape
            options = [(a, b) for a in (1, 2, 3) for b in (1, 2, 3) if h % a == 0 and w % b == 0 and a * b > 1]
            geo = Pool2d(shape, draw(st.sampled_from(options)))
        wshape = geo.weight_shape
        n_w = int(np.prod(wshape)) if wshape else 1
        weight = np.array(_values(draw, n_w, -wq, wq, [wq, -wq, 0]), dtype=np.int64).reshape(wshape)
        n_b = geo.bias_shape[0]
        bias = np.array(_values(draw, n_b, -bias_mag, bias_mag, [bias_mag, -bias_mag, 0]), dtype=np.int64)
        mask = None
        if draw(st.booleans()):
            mask = np.array(draw(st.lists(st.booleans(), min_size=n_w, max_size=n_w)), dtype=bool).reshape(wshape)
        threshold = None if last else draw(thr)
        layers.append(SpikingLayer(geo, weight, bias, threshold, mask))
        shape = geo.out_shape if kind != "dense" else (geo.n_out,)
    return tuple(layers), input_shape, weight_bits


@st.composite
def networks(draw, *, coding=None, spatial=None, max_depth=4, max_t=10, adversarial=False, extra_bits=True):
    coding = coding or draw(st.sampled_from(["css", "rate"]))
    layers, input_shape, weight_bits = draw(layer_stacks(spatial=spatial, max_depth=max_depth, adversarial=adversarial))
    timesteps = draw(st.integers(1, max_t))
    input_bits = draw(st.sampled_from([1, 2, 8]) | st.integers(1, 12))
    probe = SpikingNetwork(layers, coding=coding, timesteps=timesteps, input_bits=input_bits,
                           weight_bits=weight_bits, input_shape=input_shape, output_bits=62)
    need_out = max(2, probe.required_output_bits)
    assume(need_out <= 62)
    output_bits = draw(st.integers(need_out, min(62, need_out + 3))) if extra_bits else need_out
    membrane_bits = None
    if extra_bits and coding == "css" and draw(st.booleans()):
        req = probe.required_membrane_bits
        assume(req <= MAX_MEMBRANE_BITS)
        membrane_bits = draw(st.integers(req, min(MAX_MEMBRANE_BITS, req + 4)))
    return SpikingNetwork(layers, coding=coding, timesteps=timesteps, input_bits=input_bits,
                          weight_bits=weight_bits, membrane_bits=membrane_bits, output_bits=output_bits,
                          input_shape=input_shape)


@st.composite
def inputs_for(draw, net, max_batch=4):
    top = net.input_limit
    batch = draw(st.integers(1, max_batch))
    rows = [_values(draw, net.n_inputs, 0, top, [0, top, top // 2, (top + 1) // 2]) for _ in range(batch)]
    return np.array(rows, dtype=np.int64).reshape(batch, net.n_inputs)


@st.composite
def net_and_inputs(draw, **kw):
    net = draw(networks(**kw))
    return net, draw(inputs_for(net))


# ---- comparison helpers -------------------------------------------------------------------------

def _mk(layers, **kw):
    return SpikingNetwork(tuple(layers), **kw)


def assert_matches_reference(net, x, res, *, membrane_bits=None):
    """Exact equality of the whole golden payload with the reference, sample by sample."""
    assert res.timesteps == (net.timesteps + net.n_layers if net.coding == "css" else net.timesteps)
    assert res.trace is not None
    n_spiking = net.n_layers if net.coding == "css" else net.n_layers - 1
    assert len(res.trace.spikes) == n_spiking
    n_mem = net.n_layers + 1 if net.coding == "css" else net.n_layers
    assert len(res.trace.membranes) == n_mem
    for b in range(x.shape[0]):
        ref = reference_run(net, x[b].tolist(), membrane_bits=membrane_bits)
        where = f"sample {b} (x={x[b].tolist()})"
        assert res.timesteps == ref.timesteps, where
        for l in range(n_spiking):
            got = res.trace.spikes[l][b]
            assert got.shape == (net.timesteps, len(ref.spikes[l][0])), where
            assert got.tolist() == ref.spikes[l], f"spikes of layer {l}, {where}"
        for l in range(n_mem):
            assert res.trace.membranes[l][b].tolist() == ref.membranes[l], f"final membranes of layer {l}, {where}"
        assert res.logits[b].tolist() == ref.logits, f"logits, {where}"
        assert res.spikes[b].tolist() == ref.spike_counts, f"spike counts, {where}"
        assert int(res.synaptic_ops[b]) == ref.synaptic_ops, f"synaptic ops, {where}"
        assert int(res.analog_ops[b]) == ref.analog_ops, f"analog ops, {where}"


# ---- 0. explicit regressions found by this file ---------------------------------------------------

def test_css_layer_whose_predecessor_is_silent_at_a_step():
    """A layer whose predecessor emits no spike at some step (here: every input < theta_0, so the
    encoder emits nothing at firing step 0, which is layer 1's silent step) must integrate I = 0
    (SEMANTICS.md section 2: '0 if layer l-1 emitted nothing at that step')."""
    net = _mk([SpikingLayer(Dense(1, 1), [[1]], [0], 5), SpikingLayer(Dense(1, 1), [[1]], [0], None)],
              timesteps=3)
    x = np.array([[3]])  # 3 < theta_0 = 128: the encoder's first digit is 0
    res = golden.run(net, x, trace=True)
    assert_matches_reference(net, x, res)


def test_css_output_integrator_when_last_hidden_layer_is_silent():
    """Same at the output integrator: a step t > L at which layer L-1 emits nothing."""
    net = _mk([SpikingLayer(Dense(1, 1), [[0]], [40], 16), SpikingLayer(Dense(1, 1), [[3]], [1], None)],
              timesteps=4, input_bits=2)
    x = np.array([[3]])
    res = golden.run(net, x, trace=True)
    assert_matches_reference(net, x, res)


def test_rate_hidden_membranes_are_exact_in_64_bits():
    """SEMANTICS.md section 6: rate arithmetic is exact in 64 bits, so a network whose hidden
    membrane could grow by ~2^51 per step for 2^13 steps (leaving int64) is rejected up front,
    while the same network with a T that fits runs exactly."""
    big = 2**51
    layers = [SpikingLayer(Dense(1, 1), [[0]], [big], 1), SpikingLayer(Dense(1, 1), [[1]], [0], None)]
    with pytest.raises(NetworkError, match="64-bit range within T=8192"):
        _mk(layers, coding="rate", timesteps=2**13, input_bits=1)
    net = _mk(layers, coding="rate", timesteps=2**10, input_bits=1)
    res = golden.run(net, np.array([[0]]), trace=True)
    ref = reference_run(net, [0])
    assert ref.spike_counts == [2**10]
    assert res.spikes[0].tolist() == ref.spike_counts
    assert res.logits[0].tolist() == ref.logits


# ---- 1. golden == reference -----------------------------------------------------------------------

@settings(max_examples=400, **SETTINGS)
@given(net_and_inputs(spatial=False))
def test_golden_matches_reference_dense(case):
    net, x = case
    assert_matches_reference(net, x, golden.run(net, x, trace=True))


@settings(max_examples=200, **SETTINGS)
@given(net_and_inputs(spatial=True, max_depth=3, max_t=6))
def test_golden_matches_reference_conv_pool(case):
    net, x = case
    assert_matches_reference(net, x, golden.run(net, x, trace=True))


@settings(max_examples=120, **SETTINGS)
@given(net_and_inputs(coding="css", adversarial=True))
def test_golden_matches_reference_adversarial(case):
    """Tiny thresholds, huge biases: membranes run away and saturate; final membranes must still be
    exactly sat_Bv of the spec's recurrence at the network's width."""
    net, x = case
    assert_matches_reference(net, x, golden.run(net, x, trace=True))


def test_argmax_tie_goes_to_lowest_index():
    net = _mk([SpikingLayer(Dense(1, 3), [[1], [2], [2]], [0, 0, 0], None)], timesteps=2)
    res = golden.run(net, np.array([[255]]))
    assert res.logits[0].tolist() == [3, 6, 6] and res.classes.tolist() == [1]


def test_golden_matches_reference_batch_of_mixed_samples():
    """Batching must not couple samples: one sample that spikes, one that does not."""
    net = _mk([SpikingLayer(Dense(2, 3), [[5, -3], [1, 1], [-7, 2]], [1, -2, 0], 9),
               SpikingLayer(Dense(3, 2), [[3, -1, 2], [-2, 4, 1]], [0, 1], None)], timesteps=5)
    x = np.array([[255, 200], [0, 0], [1, 254]])
    assert_matches_reference(net, x, golden.run(net, x, trace=True))


def test_inputs_outside_the_input_range_are_rejected():
    net = _mk([SpikingLayer(Dense(2, 1), [[1, 1]], [0], None)], input_bits=4)
    for bad in ([[16, 0]], [[-1, 0]], [[0.5, 1]], [[1, 2, 3]]):
        with pytest.raises(ValueError):
            golden.run(net, np.array(bad))


# ---- 2. saturation never changes a spike ---------------------------------------------------------

def _unbounded_agrees(net, x, res):
    for b in range(x.shape[0]):
        ref = reference_run(net, x[b].tolist(), saturate=False)
        for l in range(net.n_layers):
            assert res.trace.spikes[l][b].tolist() == ref.spikes[l], f"layer {l}, x={x[b].tolist()}"
        assert res.logits[b].tolist() == ref.logits


@settings(max_examples=200, **SETTINGS)
@given(net_and_inputs(coding="css", adversarial=True, extra_bits=False), st.data())
def test_saturation_never_changes_a_spike(case, data):
    net, x = case
    assert net.membrane_bits == net.required_membrane_bits
    res = golden.run(net, x, trace=True)
    _unbounded_agrees(net, x, res)
    # a wider register: identical spikes and logits
    wider = data.draw(st.integers(net.membrane_bits, MAX_MEMBRANE_BITS))
    res2 = golden.run(net, x, trace=True, membrane_bits=wider)
    for l in range(net.n_layers):
        assert np.array_equal(res2.trace.spikes[l], res.trace.spikes[l])
    assert np.array_equal(res2.logits, res.logits)
    assert np.array_equal(res2.spikes, res.spikes) and np.array_equal(res2.synaptic_ops, res.synaptic_ops)
    assert_matches_reference(net, x, res2, membrane_bits=wider)  # saturated membranes differ: at *that* width


@settings(max_examples=100, **SETTINGS)
@given(net_and_inputs(coding="css", extra_bits=False))
def test_saturation_never_changes_a_spike_ordinary(case):
    net, x = case
    _unbounded_agrees(net, x, golden.run(net, x, trace=True))


def test_narrower_membrane_is_rejected():
    net = _mk([SpikingLayer(Dense(2, 2), [[3, -3], [1, 2]], [0, 0], 4), SpikingLayer(Dense(2, 1), [[1, 1]], [0], None)])
    with pytest.raises(NetworkError):
        net.with_(membrane_bits=net.required_membrane_bits - 1)
    with pytest.raises(NetworkError):
        golden.run(net, np.array([[1, 2]]), membrane_bits=net.required_membrane_bits - 1)


def test_required_membrane_bits_formula():
    """Bv is the smallest width with 2^(Bv-1) - 1 >= max(2*theta_0, x_max, 2*theta_l + Imax_l)."""
    rng = np.random.default_rng(0)
    for _ in range(50):
        n = int(rng.integers(1, 6))
        w1 = rng.integers(-127, 128, (4, n))
        th = int(rng.integers(1, 3000))
        ib = int(rng.integers(1, 12))
        net = _mk([SpikingLayer(Dense(n, 4), w1, rng.integers(-9, 9, 4), th),
                   SpikingLayer(Dense(4, 2), rng.integers(-127, 128, (2, 4)), [0, 0], None)], input_bits=ib)
        imax = build_layer(net.layers[0]).imax
        need = max(2 * 2 ** (ib - 1), 2**ib - 1, 2 * th + imax)
        assert net.required_membrane_bits == signed_bits(need)


# ---- 3. no register overflow at the declared widths -----------------------------------------------

@settings(max_examples=150, **SETTINGS)
@given(net_and_inputs(adversarial=True))
def test_declared_widths_hold(case):
    """Unbounded output integrators stay within required_output_bits; the hardware's m (computed from
    the saturated membrane) fits in max(Bv + 1, Bi) + 1 bits; rate hidden membranes fit in int64."""
    net, x = case
    bo = net.required_output_bits
    assert bo <= net.output_bits
    refl = [build_layer(layer) for layer in net.layers]
    out, t = refl[-1], net.timesteps
    if net.coding == "css":  # the widths the network declares are the spec's formulas
        need_v = max([2 * net.encoder_threshold, net.input_limit] + [2 * lay.threshold + lay.imax for lay in refl[:-1]])
        assert net.required_membrane_bits == signed_bits(need_v)
        worst = max((2**t - 1) * sum(abs(a) for a in out.A[j]) + 2 ** (t - 1) * abs(out.bias[j])
                    for j in range(out.n_out))
        assert bo == max(1, signed_bits(worst))
    top = 2 ** (bo - 1) - 1
    for row in x.tolist():
        ref = reference_run(net, row, saturate=False)
        assert all(abs(v) <= top for v in ref.output_values), "output integrator exceeds required_output_bits"
        if net.coding == "css":
            sref = reference_run(net, row)
            bv = net.membrane_bits
            for l in range(net.n_layers):
                if l == 0:
                    bi = signed_bits(net.input_limit)  # the encoder's only input is x
                else:
                    lay = refl[l - 1]
                    bi = signed_bits(lay.imax + max((abs(b) for b in lay.bias), default=0))
                wm = max(bv + 1, bi) + 1
                assert all(-(2 ** (wm - 1)) <= m <= 2 ** (wm - 1) - 1 for m in sref.m_values[l]), f"m, layer {l}"
        else:
            assert all(abs(v) < 2**63 for v in ref.hidden_values)


@settings(max_examples=60, **SETTINGS)
@given(st.integers(1, 4), st.integers(1, 8), st.integers(2, 16), st.integers(1, 20), st.integers(1, 6),
       st.sampled_from([1, -1]), st.integers(0, 1000), st.integers(1, 12))
def test_output_bound_is_attained_and_never_exceeded(n_hidden, n_in, wb, t, n_out, sign, bias, ib):
    """Worst case for the output integrators: every hidden neuron fires +1 at every step (a huge
    positive bias), every output weight at +-Wq, bias at +-max. The spec's bound
    (2^T - 1) Imax + 2^(T-1) |b| is then attained exactly, and fits required_output_bits."""
    wq = 2 ** (wb - 1) - 1
    theta = 3
    hidden = SpikingLayer(Dense(n_in, n_hidden), np.full((n_hidden, n_in), wq), np.full(n_hidden, 2**20), theta)
    out = SpikingLayer(Dense(n_hidden, n_out), np.full((n_out, n_hidden), sign * wq), np.full(n_out, sign * bias), None)
    probe = _mk([hidden, out], timesteps=t, weight_bits=wb, input_bits=ib, output_bits=62)
    assume(probe.required_output_bits <= 62)
    net = probe.with_(output_bits=max(2, probe.required_output_bits))
    x = np.full((1, n_in), net.input_limit)
    ref = reference_run(net, x[0].tolist(), saturate=False)
    assert ref.spikes[1] == [[1] * n_hidden for _ in range(t)]
    bound = (2**t - 1) * n_hidden * wq + 2 ** (t - 1) * bias
    assert ref.logits == [sign * bound] * n_out
    assert all(abs(v) <= 2 ** (net.output_bits - 1) - 1 for v in ref.output_values)
    assert golden.run(net, x).logits[0].tolist() == ref.logits
    # one bit narrower must be rejected whenever the bound is tight for that width
    if bound > 2 ** (net.output_bits - 2) - 1 and net.output_bits > 2:
        with pytest.raises(NetworkError):
            net.with_(output_bits=net.output_bits - 1)


# ---- 4. encoder error bound -------------------------------------------------------------------------

def _encoder_net(ib, t):
    return _mk([SpikingLayer(Dense(1, 1), [[1]], [0], None)], timesteps=t, input_bits=ib, weight_bits=2)


@settings(max_examples=80, **SETTINGS)
@given(st.integers(1, 12), st.integers(1, 24), st.data())
def test_encoder_error_bound(ib, t, data):
    """Encoder residual: r_0 = x, r_(k+1) = 2 r_k - 2 theta s_k, so x = theta sum_k s_k 2^-k + r_T 2^-T.
    |r| <= theta is invariant, and x in (theta, 2 theta) keeps r_k = 2 theta - 2^k (2 theta - x) in
    (theta, 2 theta) until it drops to <= theta. Hence, in integer form e = |x 2^T - theta sum s_k 2^(T-k)|:
      x <= theta:          e <= theta                      (error <= theta 2^-T)
      x <= 2 theta - 1:    e <= max(theta, 2 theta - 2^T)  (< 2 theta: error < theta 2^-(T-1))."""
    theta = 2 ** (ib - 1)
    x = data.draw(st.integers(0, 2 * theta - 1) | st.sampled_from([0, theta, 2 * theta - 1, theta // 2]))
    net = _encoder_net(ib, t)
    res = golden.run(net, np.array([[x]]), trace=True)
    s = res.trace.spikes[0][0, :, 0].tolist()
    e = abs(x * 2**t - theta * sum(sk * 2 ** (t - k) for k, sk in enumerate(s)))
    assert e <= max(theta, 2 * theta - 2**t) < 2 * theta, (x, s)
    if x <= theta:
        assert e <= theta, (x, s)
    # the final encoder membrane is the residual r_T (no saturation for in-range inputs)
    assert res.trace.membranes[0][0, 0] == x * 2**t - theta * sum(
        sk * 2 ** (t - k) for k, sk in enumerate(s))
    # the output integrator (weight 1) reads the digits: sum_k s_k 2^(T-1-k)
    assert res.logits[0, 0] == sum(sk * 2 ** (t - 1 - k) for k, sk in enumerate(s))
    # digits do not depend on T: the T-digit code is a prefix of the (T+3)-digit code
    longer = golden.run(_encoder_net(ib, t + 3), np.array([[x]]), trace=True).trace.spikes[0][0, :, 0].tolist()
    assert longer[:t] == s


@pytest.mark.parametrize("ib", [1, 3, 8])
def test_encoder_error_bound_is_tight(ib):
    """Both bounds are attained while T < input_bits (so neither can be tightened); the worst error
    shrinks as T grows."""
    theta = 2 ** (ib - 1)
    worst_prev = None
    for t in range(1, 12):
        xs = np.arange(2 * theta)
        res = golden.run(_encoder_net(ib, t), xs[:, None], trace=True)
        digits = res.trace.spikes[0][:, :, 0].astype(np.int64)
        num = theta * (digits * (2 ** (t - np.arange(t)))).sum(axis=1)
        e = np.abs(xs * 2**t - num)  # 2^T times the error
        e_in, e_all = int(e[: theta + 1].max()), int(e.max())
        assert e_in <= theta and e_all <= max(theta, 2 * theta - 2**t)
        if t < ib:
            assert e_in == theta and e_all == max(theta, 2 * theta - 2**t)
        worst = e_all / 2**t
        if worst_prev is not None:
            assert worst < worst_prev or worst == 0
        worst_prev = worst


# ---- 5. ReLU guard -------------------------------------------------------------------------------

@settings(max_examples=200, **SETTINGS)
@given(net_and_inputs(coding="css"))
def test_relu_guard(case):
    net, x = case
    res = golden.run(net, x, trace=True)
    t = net.timesteps
    refl = [build_layer(layer) for layer in net.layers]
    for b in range(x.shape[0]):
        for l in range(net.n_layers):
            sp = res.trace.spikes[l][b].astype(np.int64)  # (T, n)
            y = (sp * (2 ** (t - 1 - np.arange(t)))[:, None]).sum(axis=0)  # y * 2^(T-1) / theta
            assert (y >= 0).all(), f"negative output value in layer {l}"
            assert ((y > 0) == (sp != 0).any(axis=0)).all()
            for i in range(sp.shape[1]):
                nz = sp[:, i][sp[:, i] != 0]
                if nz.size:
                    assert nz[0] == 1, f"first spike of neuron {i} of layer {l} is -1"
            # weighted partial input sums from the actual inputs (previous layer's golden spikes)
            if l == 0:
                J = [[int(x[b, i])] + [0] * t for i in range(net.n_inputs)]
            else:
                prev = res.trace.spikes[l - 1][b].astype(np.int64).tolist()
                lay = refl[l - 1]
                zero = [0] * lay.n_in
                steps_in = [prev[k] for k in range(t)] + [zero]  # silent step gets firing step 0 of l-1
                cur = [lay.current(s) for s in steps_in]
                J = [[cur[0][i] + lay.bias[i]] + [cur[k][i] for k in range(1, t + 1)] for i in range(lay.n_out)]
            for i, ji in enumerate(J):
                p, partial = 0, []
                for jk in ji:
                    p = 2 * p + jk
                    partial.append(p)
                if all(q <= 0 for q in partial):
                    assert not sp[:, i].any(), f"neuron {i} of layer {l} spiked with non-positive input sums"


def test_relu_guard_negative_layer_is_silent():
    rng = np.random.default_rng(1)
    for _ in range(20):
        w1 = -rng.integers(0, 128, (6, 5))
        net = _mk([SpikingLayer(Dense(5, 6), w1, -rng.integers(0, 50, 6), int(rng.integers(1, 40))),
                   SpikingLayer(Dense(6, 3), rng.integers(-127, 128, (3, 6)), [0, 0, 0], None)], timesteps=6)
        x = rng.integers(0, 256, (8, 5))
        res = golden.run(net, x, trace=True)
        assert not res.trace.spikes[1].any()
        assert (res.spikes[:, 1] == 0).all()


# ---- 6. converter ----------------------------------------------------------------------------------

def _random_mlp(rng, sizes):
    layers = []
    for a, b in zip(sizes, sizes[1:]):
        layers.append(ANNLayer(Dense(a, b), rng.normal(0, 1 / math.sqrt(a), (b, a)), rng.normal(0, 0.1, b)))
    return ANN(tuple(layers))


@settings(max_examples=25, **SETTINGS)
@given(st.integers(0, 2**31), st.sampled_from(["css", "rate"]), st.integers(3, 12), st.integers(1, 3))
def test_converter_weight_range_and_formulas(seed, coding, wb, depth):
    rng = np.random.default_rng(seed)
    sizes = [int(rng.integers(2, 10)) for _ in range(depth)] + [int(rng.integers(2, 6))]
    ann = _random_mlp(rng, sizes)
    calib = rng.random((64, sizes[0]))
    cfg = ConversionConfig(coding=coding, timesteps=4, weight_bits=wb)
    try:
        net = convert(ann, calib, cfg)
    except ConversionError:
        return  # e.g. a layer that never activates: a documented error is fine
    wq = 2 ** (wb - 1) - 1
    for layer in net.layers:
        assert np.abs(layer.weight).max() <= wq
        # a synapse exists iff its integer weight is nonzero; no mask when every weight is
        assert (layer.mask is None) == bool(np.all(layer.weight != 0))
        if layer.mask is not None:
            assert np.array_equal(layer.mask, layer.weight != 0)
    # the spec's formulas, recomputed independently
    acts, h = [], calib
    for layer in ann.layers[:-1]:
        h = np.maximum(h @ layer.weight.T + layer.bias, 0.0)
        acts.append(h)
    lambdas = []
    for a in acts:
        lam = float(np.percentile(a, 99.9))
        lambdas.append(lam if lam > 0 else float(a.max()))
    top = 2**8 - 1
    units = ([2**7 / top] + [lam / 2 for lam in lambdas]) if coding == "css" else ([1 / top] + lambdas)
    theta_max = 2**15 - 1 if coding == "css" else 2**30
    for i, (al, sl) in enumerate(zip(ann.layers, net.layers)):
        wmax = float(np.abs(al.weight).max())
        if i < len(ann.layers) - 1:
            r = units[i] / units[i + 1]
            theta = min(math.floor(wq / (r * wmax)), theta_max)
            assert sl.threshold == theta
            assert np.array_equal(sl.weight, np.clip(np.rint(al.weight * r * theta), -wq, wq))
            assert np.array_equal(sl.bias, np.rint(al.bias * theta / units[i + 1]))
        else:
            scale = wq / (units[i] * wmax)
            assert sl.threshold is None
            assert np.array_equal(sl.weight, np.rint(al.weight * units[i] * scale))
            assert np.array_equal(sl.bias, np.rint(al.bias * scale))
            assert np.abs(sl.weight).max() == wq  # the largest weight maps to exactly Wq


@settings(max_examples=15, **SETTINGS)
@given(st.integers(0, 2**31), st.sampled_from(["css", "rate"]), st.integers(4, 10))
def test_converter_conv_pool_weight_range(seed, coding, wb):
    rng = np.random.default_rng(seed)
    conv = Conv2d((1, 6, 6), 2, (3, 3), (1, 1), (1, 1))
    pool = Pool2d(conv.out_shape, (2, 2))
    dense = Dense(pool.n_out, 3)
    ann = ANN((ANNLayer(conv, rng.normal(0, 0.5, conv.weight_shape), rng.normal(0, 0.1, 2)),
               ANNLayer(pool, np.array(0.25), np.zeros(0)),
               ANNLayer(dense, rng.normal(0, 0.3, dense.weight_shape), rng.normal(0, 0.1, 3))), (1, 6, 6))
    x = rng.random((50, 36))
    try:
        net = convert(ann, x, ConversionConfig(coding=coding, timesteps=4, weight_bits=wb))
    except ConversionError:
        return
    wq = 2 ** (wb - 1) - 1
    assert all(np.abs(layer.weight).max() <= wq for layer in net.layers)
    assert net.input_shape == (1, 6, 6)
    xq = golden.quantize_input(x[:3], net.input_bits)
    assert_matches_reference(net, xq, golden.run(net, xq, trace=True))


def _teacher_task(seed):
    rng = np.random.default_rng(seed)
    ann = _random_mlp(rng, [10, 16, 12, 4])
    x = rng.random((400, 10))
    return ann, x


@pytest.mark.parametrize("coding,timesteps,floor", [("css", 12, 0.95), ("rate", 512, 0.9)])
@pytest.mark.parametrize("seed", [0, 1])
def test_converted_network_agrees_with_ann(coding, timesteps, floor, seed):
    ann, x = _teacher_task(seed)
    net = convert(ann, x[:200], ConversionConfig(coding=coding, timesteps=timesteps, weight_bits=12,
                                                 output_bits=62 if coding == "css" else 32))
    xq = golden.quantize_input(x[200:], net.input_bits)
    res = golden.run(net, xq)
    agree = float(np.mean(res.classes == ann.predict(x[200:])))
    assert agree >= floor, f"{coding} T={timesteps}: agreement {agree:.3f}"


def test_quantize_input_is_round_half_even_and_clipped():
    for ib in (1, 4, 8):
        top = 2**ib - 1
        xs = np.array([0.0, 1.0, 0.5, 1.5 / top, 2.5 / top, 0.5 / top, -0.3, 1.7, 0.999])
        got = golden.quantize_input(xs, ib)
        want = [min(max(round(float(v) * top), 0), top) for v in xs]  # Python round: half to even
        assert got.tolist() == want


def test_converter_errors_are_documented_types():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(4, 3))
    with pytest.raises(ANNError):  # NaN weights are rejected when the ANN is built
        ANNLayer(Dense(3, 4), np.where(w > 0, np.nan, w), np.zeros(4))
    with pytest.raises(ANNError):
        ANNLayer(Dense(3, 4), w, np.array([np.inf, 0, 0, 0]))
    ann = _random_mlp(rng, [3, 4, 2])
    with pytest.raises(ConversionError):
        convert(ann, np.zeros((0, 3)))
    with pytest.raises(ConversionError):
        convert(ann, np.full((5, 3), np.nan))
    zero = ANN((ANNLayer(Dense(3, 4), np.zeros((4, 3)), np.ones(4)), ann.layers[1]))
    with pytest.raises(ConversionError):
        convert(zero, rng.random((10, 3)))
    dead = ANN((ANNLayer(Dense(3, 4), -np.abs(w), -np.ones(4)), ann.layers[1]))
    with pytest.raises(ConversionError):
        convert(dead, rng.random((10, 3)))
    with pytest.raises(ConversionError):  # output bits too narrow for T
        convert(ann, rng.random((10, 3)), ConversionConfig(timesteps=40, output_bits=16))
    with pytest.raises(ConversionError):
        ConversionConfig(percentile=0)
    with pytest.raises(ConversionError):
        ConversionConfig(weight_bits=1)
    with pytest.raises((ANNError, ConversionError)):  # wrong feature count in calibration
        convert(ann, rng.random((10, 5)))


# ---- 7. file round trip ------------------------------------------------------------------------------

def _assert_same_network(a, b):
    assert a.coding == b.coding and a.timesteps == b.timesteps and a.input_bits == b.input_bits
    assert a.weight_bits == b.weight_bits and a.membrane_bits == b.membrane_bits and a.output_bits == b.output_bits
    assert a.input_shape == b.input_shape and a.meta == b.meta
    assert len(a.layers) == len(b.layers)
    for la, lb in zip(a.layers, b.layers):
        assert la.shape == lb.shape and la.threshold == lb.threshold
        assert la.weight.dtype == lb.weight.dtype and np.array_equal(la.weight, lb.weight)
        assert la.bias.dtype == lb.bias.dtype and np.array_equal(la.bias, lb.bias)
        assert (la.mask is None) == (lb.mask is None)
        if la.mask is not None:
            assert la.mask.dtype == lb.mask.dtype and np.array_equal(la.mask, lb.mask)
    assert (a.ann is None) == (b.ann is None)
    if a.ann is not None:
        assert a.ann.input_shape == b.ann.input_shape
        for la, lb in zip(a.ann.layers, b.ann.layers):
            assert la.shape == lb.shape
            assert np.array_equal(la.weight, lb.weight) and np.array_equal(la.bias, lb.bias)


@settings(max_examples=30, **SETTINGS)
@given(networks())
def test_save_load_round_trip(tmp_path_factory, net):
    path = tmp_path_factory.mktemp("rt") / "net.npz"
    save_network(net, path)
    back = load_network(path)
    _assert_same_network(net, back)
    x = np.full((1, net.n_inputs), net.input_limit)
    assert np.array_equal(golden.run(back, x).logits, golden.run(net, x).logits)


def test_save_load_round_trip_converted(tmp_path):
    ann, x = _teacher_task(3)
    net = convert(ann, x[:100], ConversionConfig(timesteps=5))
    save_network(net, tmp_path / "c.npz")
    _assert_same_network(net, load_network(tmp_path / "c.npz"))


def _rewrite_meta(src, dst, edit):
    with np.load(src, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays["meta"]))
    arrays["meta"] = np.array(json.dumps(edit(meta)))
    with open(dst, "wb") as f:
        np.savez(f, **arrays)


def _small_net():
    return _mk([SpikingLayer(Dense(2, 3), [[1, -2], [3, 4], [0, 1]], [1, 0, -1], 7),
                SpikingLayer(Dense(3, 2), [[1, 1, 1], [-1, 2, 0]], [0, 0], None)])


def test_load_rejects_other_format_version(tmp_path):
    save_network(_small_net(), tmp_path / "a.npz")
    for v in (FORMAT_VERSION + 1, 0, None, "1"):
        _rewrite_meta(tmp_path / "a.npz", tmp_path / "b.npz", lambda m, v=v: {**m, "format_version": v})
        with pytest.raises(NetworkError, match="version"):
            load_network(tmp_path / "b.npz")


def test_load_rejects_truncated_and_garbage_files(tmp_path):
    p = save_network(_small_net(), tmp_path / "a.npz")
    data = p.read_bytes()
    for n in (0, 10, len(data) // 2, len(data) - 1):
        (tmp_path / "t.npz").write_bytes(data[:n])
        with pytest.raises(NetworkError, match="t.npz"):
            load_network(tmp_path / "t.npz")
    (tmp_path / "g.npz").write_bytes(b"\x00garbage" * 100)
    with pytest.raises(NetworkError, match="not a cssnn network file"):
        load_network(tmp_path / "g.npz")
    with pytest.raises(NetworkError, match="no such file"):
        load_network(tmp_path / "missing.npz")
    np.savez(tmp_path / "ann.npz", W0=np.ones((2, 2)), b0=np.zeros(2))
    with pytest.raises(NetworkError):
        load_network(tmp_path / "ann.npz")


@pytest.mark.parametrize("meta_json", ["[1, 2]", "\"a string\"", "42", "null", "{not json"])
def test_load_rejects_non_object_meta(tmp_path, meta_json):
    """A meta record that is valid JSON but not an object must raise NetworkError, not AttributeError."""
    with open(tmp_path / "m.npz", "wb") as f:
        np.savez(f, meta=np.array(meta_json), weight0=np.ones((1, 1), np.int64))
    with pytest.raises(NetworkError):
        load_network(tmp_path / "m.npz")


@pytest.mark.parametrize("edit", [
    lambda m: {k: v for k, v in m.items() if k != "layers"},
    lambda m: {**m, "layers": [1]},
    lambda m: {**m, "timesteps": "4"},
    lambda m: {**m, "input_shape": None},
    lambda m: {**m, "layers": [{**m["layers"][0], "shape": {"kind": "dense", "in_features": 9, "out_features": 3}},
                               m["layers"][1]]},
    lambda m: {**m, "membrane_bits": 3},
    lambda m: {**m, "coding": "morse"},
    lambda m: {**m, "format": "something-else"},
])
def test_load_rejects_malformed_meta(tmp_path, edit):
    save_network(_small_net(), tmp_path / "a.npz")
    _rewrite_meta(tmp_path / "a.npz", tmp_path / "b.npz", edit)
    with pytest.raises(NetworkError):
        load_network(tmp_path / "b.npz")


def test_load_rejects_pickled_arrays(tmp_path):
    p = save_network(_small_net(), tmp_path / "a.npz")
    with np.load(p, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["weight0"] = np.array([[object()]], dtype=object)
    with open(tmp_path / "p.npz", "wb") as f:
        np.savez(f, **arrays)
    with pytest.raises(NetworkError):
        load_network(tmp_path / "p.npz")
