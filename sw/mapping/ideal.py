"""The ideal event-driven cycle count of an inference, the yardstick for measured cycles.

An ideal core with N lanes spends one clock per (input event, word of N postsynaptic neurons) --
one synapse row -- and one clock per word to update a layer at each of its steps, nothing else:

    ideal = sum over layers l >= 1 of events_into(l) * ceil(n_l / N)
          + sum over every layer-step of ceil(n_l / N)

with events_into(l) the nonzero spikes of layer l - 1 over the inference (the golden trace), and
T + 1 steps for the encoder and every hidden layer (SILENT + T FIRE), T for the output integrators.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ideal_cycles"]


def ideal_cycles(net, trace_spikes, lanes: int) -> np.ndarray:
    """Per sample, the ideal cycles of ``net`` on ``lanes`` lanes, from the golden trace's spikes
    (``SimResult.trace.spikes``: per spiking layer (B, T, n))."""
    T, L = net.timesteps, net.n_layers
    sizes = [net.n_inputs] + [layer.shape.n_out for layer in net.layers]
    groups = [-(-n // lanes) for n in sizes]
    update = sum(g * (T if l == L else T + 1) for l, g in enumerate(groups))
    events = sum(np.count_nonzero(trace_spikes[l - 1].reshape(len(trace_spikes[l - 1]), -1), axis=1) * groups[l]
                 for l in range(1, L + 1))
    return np.asarray(events + update, np.int64)
