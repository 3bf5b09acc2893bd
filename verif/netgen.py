"""Networks for the hardware tests: the converted digits MLP and seeded random networks that fit a core.

Random networks vary everything the core is parameterised by per step: layer count (1-3 weight
layers), sizes (not multiples of the lane count, and more than one word), weights (full range,
zeros, negative), connection masks, biases, thresholds (from 1 up to the largest the membrane width
allows, so saturation is exercised), timesteps and input width, and occasionally a convolution or a
sum pool instead of a dense layer.
"""

from __future__ import annotations

import numpy as np

from cssnn.hw.params import CoreParams
from cssnn.sw.spec.layers import Conv2d, Dense, Pool2d
from cssnn.sw.spec.network import NetworkError, SpikingLayer, SpikingNetwork

__all__ = ["digits_network", "random_network", "random_inputs", "random_case", "golden", "dense_stress_network"]

_DIGITS = {}


def digits_network(timesteps: int = 6) -> tuple[SpikingNetwork, np.ndarray]:
    """(network, quantised test inputs) of the converted 64-64-32-10 digits MLP (seed 0)."""
    if timesteps not in _DIGITS:
        from cssnn.sw.frontends.convert import ConversionConfig, convert
        from cssnn.sw.frontends.datasets import load_dataset
        from cssnn.sw.frontends.train import train_mlp
        from cssnn.sw.spec.golden import quantize_input

        d = load_dataset("digits")
        ann = train_mlp(d.x_train, d.y_train, (64, 32), seed=0)
        net = convert(ann, d.x_train, ConversionConfig(coding="css", timesteps=timesteps))
        _DIGITS[timesteps] = (net, quantize_input(d.x_test, net.input_bits))
    return _DIGITS[timesteps]


def _random_layer(rng, shape, wq, threshold, masked):
    lo = -wq if rng.random() < 0.5 else -(wq // 2)  # half of the layers lean positive (more spikes)
    w = rng.integers(lo, wq + 1, size=shape.weight_shape)
    if shape.weight_shape and rng.random() < 0.5:
        w = np.where(rng.random(shape.weight_shape) < rng.uniform(0.1, 0.6), 0, w)
    bias = rng.integers(-3 * wq, 3 * wq + 1, size=shape.bias_shape) if shape.bias_shape != (0,) else np.zeros(0, int)
    mask = (rng.random(shape.weight_shape) < 0.8) if masked and shape.weight_shape else None
    return SpikingLayer(shape, w, bias, threshold, mask)


def random_network(rng: np.random.Generator, p: CoreParams, *, max_layers: int = 3, max_size: int = 40,
                   allow_conv: bool = True) -> SpikingNetwork:
    """A random CSS network that runs bit-exactly on a core with ``p`` (membrane_bits = p.membrane_bits)."""
    from cssnn.sw.mapping.image import place_network

    v_max = 2 ** (p.membrane_bits - 1) - 1
    for _ in range(1000):
        wb = int(rng.integers(2, p.weight_bits + 1))
        wq = 2 ** (wb - 1) - 1
        ib = int(rng.integers(1, min(8, p.bias_bits - 1, p.threshold_bits + 1, p.membrane_bits - 2) + 1))
        n_layers = int(rng.integers(1, max_layers + 1))
        T = int(rng.integers(1, 11))
        layers = []
        conv = allow_conv and n_layers >= 2 and rng.random() < 0.25
        if conv:
            c, h = int(rng.integers(1, 3)), int(rng.choice([2, 4]))
            in_shape = (c, h, h)
            n_in = c * h * h
        else:
            n_in = int(rng.integers(1, max_size + 1))
        prev = n_in
        ok = True
        for i in range(n_layers):
            last = i == n_layers - 1
            if conv and i == 0:
                shape = Conv2d(in_shape, int(rng.integers(1, 3)), (3, 3), (1, 1), (1, 1))
            elif conv and i == 1 and not last and in_shape[1] % 2 == 0:
                shape = Pool2d((layers[0].shape.out_channels, in_shape[1], in_shape[2]), (2, 2))
            else:
                shape = Dense(prev, int(rng.integers(1, (12 if last else max_size) + 1)))
            layer = _random_layer(rng, shape, wq, None if last else 1, rng.random() < 0.3)
            if not last:
                imax = int(layer.input_bound.max(initial=0))
                room = (v_max - imax) // 2
                if room < 1:
                    ok = False
                    break
                hi = int(min(room, p.max_threshold))
                theta = int(rng.integers(1, hi + 1)) if rng.random() < 0.7 else hi
                layer = SpikingLayer(layer.shape, layer.weight, layer.bias, theta, layer.mask)
            layers.append(layer)
            prev = shape.n_out
        if not ok:
            continue
        try:
            net = SpikingNetwork(tuple(layers), timesteps=T, input_bits=ib, weight_bits=wb,
                                 membrane_bits=p.membrane_bits, output_bits=p.output_bits,
                                 input_shape=in_shape if conv else None)
            place_network(net, p)  # widths and memory depths
        except (NetworkError, ValueError):
            continue
        return net
    raise RuntimeError("could not draw a random network for these core parameters")


def random_inputs(rng: np.random.Generator, net: SpikingNetwork, count: int) -> np.ndarray:
    """Integer inputs: uniform, plus all-max and sparse samples mixed in."""
    top = net.input_limit
    x = rng.integers(0, top + 1, size=(count, net.n_inputs))
    for i in range(count):
        r = rng.random() if i else 0.0  # the first sample is all-max: the encoder fires at once
        if r < 0.2:
            x[i] = top
        elif r < 0.4:
            x[i] = np.where(rng.random(net.n_inputs) < 0.7, 0, x[i])
    return x


def golden(net: SpikingNetwork, x: np.ndarray, membrane_bits: int):
    """The golden model's trace for a batch, at the core's membrane width."""
    from cssnn.sw.spec.golden import run

    return run(net, x, trace=True, membrane_bits=membrane_bits)


def random_case(rng: np.random.Generator, p: CoreParams, samples: int, **kwargs):
    """(network, inputs, golden SimResult): a random network for a core with ``p`` and ``samples``
    random inputs (the first all-max)."""
    net = random_network(rng, p, **kwargs)
    xs = random_inputs(rng, net, samples)
    return net, xs, golden(net, xs, p.membrane_bits)


def sparsify(rng: np.random.Generator, net: SpikingNetwork, lanes: int, *, density: float | None = None) -> SpikingNetwork:
    """``net`` with new existence masks: per layer a density (``density``, or log-uniform in [0.01, 1]),
    plus the corner cases of sparse synapse lists, each drawn now and then: presynaptic neurons without
    any synapse (an empty list), and an output layer whose synapses all go to neurons of lane 0 (the
    output layer keeps its neurons' order: the worst imbalance, one synapse per row)."""
    layers = []
    for i, layer in enumerate(net.layers):
        shape = layer.shape
        if not shape.weight_shape or shape.kind == "pool2d":
            layers.append(layer)
            continue
        d = density if density is not None else float(np.exp(rng.uniform(np.log(0.01), 0.0)))
        mask = rng.random(shape.weight_shape) < d
        if shape.kind == "dense":
            if rng.random() < 0.3:                 # some presynaptic neurons lose every synapse
                mask[:, rng.random(shape.n_in) < 0.3] = False
            if i == len(net.layers) - 1 and rng.random() < 0.3:
                mask[np.arange(shape.n_out) % lanes != 0] = False
        layers.append(SpikingLayer(shape, layer.weight, layer.bias, layer.threshold, mask))
    return SpikingNetwork(tuple(layers), timesteps=net.timesteps, input_bits=net.input_bits,
                          weight_bits=net.weight_bits, membrane_bits=net.membrane_bits, output_bits=net.output_bits,
                          input_shape=net.input_shape)


def sparse_case(rng: np.random.Generator, p: CoreParams, samples: int, **kwargs):
    """:func:`random_case` with the masks of :func:`sparsify`: random densities (1% to 100%), empty
    fan-outs, the worst lane imbalance."""
    net = sparsify(rng, random_network(rng, p, **kwargs), p.lanes)
    xs = random_inputs(rng, net, samples)
    return net, xs, golden(net, xs, p.membrane_bits)


def mlp_784_256_10(seed: int = 0, *, density: float = 1.0) -> SpikingNetwork:
    """A 784-256-10 CSS network with random 8-bit weights (its size matters, not its training), a
    fraction ``density`` of its synapses kept at random (the rest absent)."""
    rng = np.random.default_rng(seed)
    w1 = rng.integers(-40, 41, size=(256, 784))
    w2 = rng.integers(-127, 128, size=(10, 256))
    layers = []
    for shape, w, b, theta in ((Dense(784, 256), w1, rng.integers(-200, 200, size=256), 2000),
                               (Dense(256, 10), w2, np.zeros(10, int), None)):
        mask = None
        if density < 1.0:
            mask = (rng.random(w.shape) < density) & (w != 0)
            w = np.where(mask, w, 0)
        layers.append(SpikingLayer(shape, w, b, theta, mask))
    return SpikingNetwork(tuple(layers), timesteps=6, input_bits=8, weight_bits=8, output_bits=None)


def dense_stress_network(n_in: int = 128, n_hidden: int = 8, n_out: int = 8, timesteps: int = 6,
                         weight_bits: int = 8, membrane_bits: int = 13) -> SpikingNetwork:
    """A deterministic network for throughput measurements: small positive/negative weights, so that
    a saturated input makes every encoder neuron spike at every step (many events per step) into a
    hidden layer of one word (one synapse row per event: the steady-state one-event-per-clock case)."""
    rng = np.random.default_rng(1234)
    w1 = rng.integers(-2, 4, size=(n_hidden, n_in))
    w2 = rng.integers(-3, 4, size=(n_out, n_hidden))
    layers = (SpikingLayer(Dense(n_in, n_hidden), w1, np.zeros(n_hidden, int), 64),
              SpikingLayer(Dense(n_hidden, n_out), w2, np.zeros(n_out, int), None))
    return SpikingNetwork(layers, timesteps=timesteps, weight_bits=weight_bits, membrane_bits=membrane_bits)
