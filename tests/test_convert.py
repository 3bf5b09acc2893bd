"""Converter and trainer: the digits targets, quantisation ranges and the errors users see."""

import numpy as np
import pytest

from cssnn.sw.frontends.ann import ANN, ANNError, ANNLayer
from cssnn.sw.frontends.convert import ConversionConfig, ConversionError, convert
from cssnn.sw.analysis.evaluate import evaluate
from cssnn.sw.spec.golden import quantize_input, run
from cssnn.sw.spec.layers import Conv2d, Dense, Pool2d
from cssnn.sw.spec.network import NetworkError


def test_trainer_reaches_96_percent_on_digits(digits, digits_ann):
    assert np.mean(digits_ann.predict(digits.x_test) == digits.y_test) >= 0.96


@pytest.mark.parametrize("timesteps", [5, 6])
def test_css_agrees_with_the_ann_at_small_T(digits, digits_ann, timesteps):
    # The target: >= 99.5% agreement with the ANN at T <= 6 on the digits test set.
    net = convert(digits_ann, digits.x_train, ConversionConfig(coding="css", timesteps=timesteps))
    assert evaluate(net, digits)["agreement"] >= 0.995


def test_css_needs_fewer_steps_and_operations_than_rate_for_full_agreement(digits, digits_ann):
    def first_full(coding, ts):
        for t in ts:
            r = evaluate(convert(digits_ann, digits.x_train, ConversionConfig(coding=coding, timesteps=t,
                                                                               output_bits=None)), digits)
            if r["agreement"] == 1.0:
                return t, r["synaptic_ops_per_sample"]
        raise AssertionError(f"{coding} never reached full agreement")

    t_css, ops_css = first_full("css", range(1, 17))
    t_rate, ops_rate = first_full("rate", [2**k for k in range(1, 9)])
    assert t_css <= 6
    assert t_rate >= 4 * t_css and ops_rate > ops_css


def test_quantised_values_stay_in_range(digits, digits_ann):
    for bits in (4, 8, 12):
        net = convert(digits_ann, digits.x_train, ConversionConfig(weight_bits=bits, timesteps=4))
        for layer in net.layers:
            assert np.abs(layer.weight).max() == 2 ** (bits - 1) - 1  # the full range is used
        assert net.membrane_bits == net.required_membrane_bits
        assert all(t >= 1 for t in net.thresholds)


def test_more_weight_bits_do_not_hurt(digits, digits_ann):
    acc = [evaluate(convert(digits_ann, digits.x_train, ConversionConfig(weight_bits=b, timesteps=8)), digits)
           ["agreement"] for b in (3, 8)]
    assert acc[1] >= acc[0] and acc[1] == 1.0


def _tiny_ann(w0=None):
    rng = np.random.default_rng(0)
    w0 = rng.normal(size=(4, 3)) if w0 is None else w0
    return ANN((ANNLayer(Dense(3, 4), w0, np.zeros(4)), ANNLayer(Dense(4, 2), rng.normal(size=(2, 4)), np.zeros(2))))


def test_errors_name_the_problem():
    x = np.random.default_rng(1).random((20, 3))
    with pytest.raises(ANNError, match="NaN or infinite"):
        _tiny_ann(np.full((4, 3), np.nan))
    with pytest.raises(ANNError, match="shape"):
        ANNLayer(Dense(3, 4), np.zeros((3, 4)), np.zeros(4))
    with pytest.raises(ConversionError, match="empty"):
        convert(_tiny_ann(), np.zeros((0, 3)))
    dead_readout = ANN((_tiny_ann().layers[0], ANNLayer(Dense(4, 2), np.zeros((2, 4)), np.ones(2))))
    with pytest.raises(ConversionError, match="layer 2 has only zero weights"):
        convert(dead_readout, x)
    with pytest.raises(ConversionError, match="never activates"):
        convert(_tiny_ann(-np.abs(np.random.default_rng(2).normal(size=(4, 3))) - 1), x)
    with pytest.raises(ConversionError, match="timesteps"):
        convert(_tiny_ann(), x, ConversionConfig(timesteps=0))
    with pytest.raises(ConversionError, match=r"output integrators need \d+ bits at T=40"):
        convert(_tiny_ann(), x, ConversionConfig(timesteps=40))
    with pytest.raises(ConversionError, match="too narrow"):
        convert(_tiny_ann(), x, ConversionConfig(membrane_bits=4))
    with pytest.raises(ConversionError, match="weight_bits"):
        ConversionConfig(weight_bits=40)


def test_inputs_are_checked(digits, digits_ann):
    net = convert(digits_ann, digits.x_train)
    with pytest.raises(ValueError, match="features"):
        run(net, np.zeros((2, 10), np.int64))
    with pytest.raises(ValueError, match=r"\[0, 255\]"):
        run(net, np.full((1, 64), 256))
    with pytest.raises(ValueError, match="NaN"):
        quantize_input(np.full(64, np.nan), 8)


def test_convolutional_network_converts_and_agrees(digits):
    # A random conv net (conv 3x3 -> ReLU -> avg pool 2x2 -> dense) with a trained-ish readout:
    # what matters here is that the spiking network reproduces the ANN's function, not its accuracy.
    rng = np.random.default_rng(3)
    conv = Conv2d((1, 8, 8), 4, 3, padding=1)
    pool = Pool2d(conv.out_shape, 2)
    dense = Dense(pool.n_out, 10)
    ann = ANN((ANNLayer(conv, rng.normal(0, 0.5, conv.weight_shape), rng.normal(0, 0.05, 4)),
               ANNLayer(pool, np.array(0.25), np.zeros(0)),
               ANNLayer(dense, rng.normal(0, 0.3, dense.weight_shape), np.zeros(10))), (1, 8, 8))
    net = convert(ann, digits.x_train, ConversionConfig(timesteps=10))
    assert [l.shape.kind for l in net.layers] == ["conv2d", "pool2d", "dense"]
    r = evaluate(net, digits)
    assert r["agreement"] >= 0.97
    # A spike of a conv-layer input reaches at most out_channels * kernel area outputs.
    assert net.layers[0].fanout.max() == 4 * 9 and net.layers[0].fanout.min() == 4 * 4
