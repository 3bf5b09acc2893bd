"""The integer golden model: docs/SEMANTICS.md, executed on a batch of samples at once.

This is the bit-exact contract for the hardware. ``run`` returns the logits, the predicted classes
and the counters; with ``trace=True`` it also returns every spike of every layer and the final
membranes, which is what the hardware tests compare against.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cssnn.sw.spec.network import SpikingNetwork

__all__ = ["SimResult", "Trace", "run", "quantize_input", "saturate"]


def saturate(v: np.ndarray, bits: int) -> np.ndarray:
    """Two's-complement saturation to ``bits`` bits."""
    return np.clip(v, -(2 ** (bits - 1)), 2 ** (bits - 1) - 1)


@dataclass
class Trace:
    """Everything the hardware must reproduce, per sample.

    ``spikes[l]`` has shape (B, T, n_l) (int8 in {-1, 0, 1}): layer l's spike at firing step k
    (CSS: layer 0 is the encoder; rate: layer 0 is the first hidden layer and k is the time step).
    ``membranes[l]`` has shape (B, n_l): the final membranes of every layer, output integrators last.
    """

    spikes: list[np.ndarray]
    membranes: list[np.ndarray]


@dataclass
class SimResult:
    logits: np.ndarray  # (B, n_out) int64
    spikes: np.ndarray  # (B, spiking layers) nonzero spikes emitted by each spiking layer
    synaptic_ops: np.ndarray  # (B,) weight additions caused by spikes
    analog_ops: np.ndarray  # (B,) rate baseline only: multiply-accumulates of the analog first layer
    timesteps: int  # global time steps of one inference
    trace: Trace | None = None

    @property
    def classes(self) -> np.ndarray:
        return np.argmax(self.logits, axis=1)  # lowest index wins a tie


def quantize_input(x: np.ndarray, input_bits: int) -> np.ndarray:
    """Map features in [0, 1] to unsigned ``input_bits`` integers (round half to even, clipped)."""
    x = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(x)):
        raise ValueError("input contains NaN or infinite values")
    top = 2**input_bits - 1
    return np.clip(np.rint(x * top), 0, top).astype(np.int64)


def run(net: SpikingNetwork, x: np.ndarray, *, trace: bool = False, membrane_bits: int | None = None) -> SimResult:
    """Run the network on integer inputs ``x`` of shape (B, n_inputs) (or one sample (n_inputs,)).

    ``membrane_bits`` overrides the network's membrane width (spikes and logits do not change as long
    as it is at least ``net.required_membrane_bits``; saturated membranes do).
    """
    x = _check_input(net, x)
    if membrane_bits is not None and net.coding == "css":
        net.with_(membrane_bits=membrane_bits)  # validates the width for this network
    if net.coding == "css":
        return _run_css(net, x, trace, membrane_bits or net.membrane_bits)
    return _run_rate(net, x, trace)


def _check_input(net: SpikingNetwork, x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim == 1:
        x = x[None, :]
    x = x.reshape(x.shape[0], -1)
    if x.shape[1] != net.n_inputs:
        raise ValueError(f"input has {x.shape[1]} features, the network expects {net.n_inputs}")
    if x.size and not np.issubdtype(x.dtype, np.integer):
        if not np.all(x == np.round(x)):
            raise ValueError("inputs must be integers (use quantize_input for features in [0, 1])")
    x = x.astype(np.int64)
    top = net.input_limit
    if x.size and (x.min() < 0 or x.max() > top):
        raise ValueError(f"inputs must lie in [0, {top}] for {net.input_bits}-bit input, "
                         f"got [{x.min()}, {x.max()}]")
    return x


def _run_css(net: SpikingNetwork, x: np.ndarray, want_trace: bool, bv: int) -> SimResult:
    batch, n_layers, steps = x.shape[0], net.n_layers, net.timesteps
    bo = net.output_bits
    thetas = net.thresholds  # encoder first, then hidden layers
    sizes = [net.n_inputs] + [layer.shape.n_out for layer in net.layers]
    v = [np.zeros((batch, n), np.int64) for n in sizes]
    fired = [np.zeros((batch, n), bool) for n in sizes[:-1]]
    spike_counts = np.zeros((batch, n_layers), np.int64)
    synops = np.zeros(batch, np.int64)
    trains = [np.zeros((batch, steps, n), np.int8) for n in sizes[:-1]] if want_trace else None

    for t in range(steps + n_layers):
        s_prev = x if t == 0 else None  # what feeds layer l at this step (the input, for the encoder)
        for l in range(n_layers + 1):
            if s_prev is None:  # nothing arrived: the input is 0
                current = np.zeros((batch, sizes[l]), np.int64)
            elif l == 0:
                current = s_prev  # the encoder's input x at t = 0
            else:
                layer = net.layers[l - 1]
                current = layer.apply(s_prev)
                synops += np.abs(s_prev) @ layer.fanout
            s_prev = None
            bias = net.layers[l - 1].expanded_bias if l > 0 else 0
            if l == n_layers:  # output integrator
                if t == n_layers:
                    v[l] = saturate(current + bias, bo)
                elif n_layers < t < n_layers + steps:
                    v[l] = saturate(2 * v[l] + current, bo)
            elif t == l:  # silent step: integrate only
                v[l] = saturate(current + bias, bv)
            elif l < t <= l + steps:  # firing step k = t - l - 1
                m = 2 * v[l] + current
                theta = thetas[l]
                s = (m >= theta).astype(np.int8) - ((m <= -theta) & fired[l]).astype(np.int8)
                fired[l] |= s > 0
                v[l] = saturate(m - 2 * theta * s.astype(np.int64), bv)
                spike_counts[:, l] += np.count_nonzero(s, axis=1)
                if want_trace:
                    trains[l][:, t - l - 1] = s
                s_prev = s if s.any() else None  # an all-zero step costs nothing downstream
    tr = Trace(trains, [m.copy() for m in v]) if want_trace else None
    return SimResult(v[-1], spike_counts, synops, np.zeros(batch, np.int64), steps + n_layers, tr)


def _run_rate(net: SpikingNetwork, x: np.ndarray, want_trace: bool) -> SimResult:
    batch, n_layers, steps = x.shape[0], net.n_layers, net.timesteps
    hidden = net.layers[:-1]
    v = [np.zeros((batch, layer.shape.n_out), np.int64) for layer in net.layers]
    spike_counts = np.zeros((batch, n_layers - 1), np.int64)
    synops = np.zeros(batch, np.int64)
    first = net.layers[0]
    analog = first.apply(x)  # the constant analog current of layer 1 (exact: bounds checked by the network)
    analog_ops = steps * ((x != 0) @ first.fanout)
    trains = [np.zeros((batch, steps, layer.shape.n_out), np.int8) for layer in hidden] if want_trace else None

    for t in range(steps):
        s = None
        for l, layer in enumerate(net.layers):
            if l == 0:
                current = analog
            elif s is not None:
                current = layer.apply(s)
                synops += s.astype(np.int64) @ layer.fanout
            else:
                current = 0
            v[l] += current + layer.expanded_bias
            if l < n_layers - 1:
                fire = v[l] >= layer.threshold
                v[l] -= layer.threshold * fire
                spike_counts[:, l] += fire.sum(axis=1)
                if want_trace:
                    trains[l][:, t] = fire
                s = fire.astype(np.int8) if fire.any() else None
    tr = Trace(trains, [m.copy() for m in v]) if want_trace else None
    return SimResult(v[-1], spike_counts, synops, analog_ops, steps, tr)
