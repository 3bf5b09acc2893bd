"""The ideal event-driven cycle count of an inference, the yardstick for measured cycles.

An ideal core with N lanes spends, for every input spike of neuron ``i``, one clock per N of the
synapses that exist out of ``i`` (``ceil(fanout_i / N)`` rows: pruned, zero and out-of-footprint
synapses cost nothing), and one clock per word of N neurons to update a layer at each of its steps,
nothing else:

    ideal = sum over layers l >= 1, over input spikes of neuron i of ceil(fanout_l[i] / N)
          + sum over every layer-step of ceil(n_l / N)

with the spikes those of layer l - 1 over the inference (the golden trace), and T + 1 steps for the
encoder and every hidden layer (SILENT + T FIRE), T for the output integrators. (A dense layer's
events cost ``ceil(n_l / N)`` each.)
"""

from __future__ import annotations

import numpy as np

__all__ = ["ideal_cycles"]


def ideal_cycles(net, trace_spikes, lanes: int) -> np.ndarray:
    """Per sample, the ideal cycles of ``net`` on ``lanes`` lanes, from the golden trace's spikes
    (``SimResult.trace.spikes``: per spiking layer (B, T, n))."""
    T, L = net.timesteps, net.n_layers
    sizes = [net.n_inputs] + [layer.shape.n_out for layer in net.layers]
    update = sum(-(-n // lanes) * (T if l == L else T + 1) for l, n in enumerate(sizes))
    events = 0
    for l in range(1, L + 1):
        rows = -(-np.asarray(net.layers[l - 1].fanout, np.int64) // lanes)       # per presynaptic neuron
        s = np.asarray(trace_spikes[l - 1])
        events = events + (s != 0).reshape(len(s), -1, s.shape[-1]).sum(axis=1) @ rows
    return np.asarray(events + update, np.int64)
