"""Sparse synapse lists: which lane each postsynaptic neuron sits in, and how many synapse rows each
presynaptic neuron's list needs.

A spike of presynaptic neuron ``i`` costs one clock per row of its list, and a row holds at most one
synapse per lane (lane ``k``'s accumulator bank is addressed by lane ``k`` alone), so the list of
``i`` has ``rows_i = max_k (synapses from i to neurons in lane k)`` rows. A layer's neurons may sit
in any of its slots (slot ``s`` is lane ``s % N`` of the layer's word ``s // N``): :func:`assign_slots`
chooses the slots so that the rows are balanced (a dense layer: ``ceil(n_out / N)`` rows each; a
convolution spreads its output channels over the lanes), and :func:`list_rows` counts them.
"""

from __future__ import annotations

import numpy as np

__all__ = ["assign_slots", "list_rows", "identity_slots", "channels_minor_slots", "layer_matrix"]


def identity_slots(count: int) -> np.ndarray:
    """Neuron ``j`` in slot ``j``."""
    return np.arange(count, dtype=np.int64)


def list_rows(conn: np.ndarray, slots: np.ndarray, lanes: int) -> np.ndarray:
    """Rows of every presynaptic neuron's list: ``conn`` (n_out, n_in) says which synapses exist,
    ``slots[j]`` is the slot of postsynaptic neuron ``j``."""
    conn = np.asarray(conn, bool)
    n_out, n_in = conn.shape
    load = np.zeros((n_in, lanes), np.int64)
    lane = np.asarray(slots, np.int64) % lanes
    for k in range(lanes):
        load[:, k] = conn[lane == k].sum(axis=0)
    return load.max(axis=1, initial=0)


def channels_minor_slots(out_shape) -> np.ndarray:
    """Slots of a (C, H, W) layer's neurons in position-major order (neuron ``c*H*W + p`` in slot
    ``p*C + c``): consecutive slots, and so the lanes, take the channels of one position. A
    convolution's neighbouring positions then spread over the lanes evenly."""
    c, *rest = out_shape
    positions = int(np.prod(rest)) if rest else 1
    j = np.arange(c * positions)
    return (j % positions) * c + j // positions


def assign_slots(conn: np.ndarray, lanes: int, candidates=()) -> np.ndarray:
    """Slots for the ``n_out`` postsynaptic neurons of a layer with connections ``conn`` (n_out, n_in)
    that keep the total rows low: greedy, the neurons with the most synapses first, each into the lane
    (with a slot left) where it adds the fewest rows (ties: the emptiest lane). Returns whichever of
    that, the identity and the ``candidates`` (slot arrays, e.g. :func:`channels_minor_slots`) needs
    the fewest rows (the first of them on a tie). Deterministic."""
    conn = np.asarray(conn, bool)
    n_out, n_in = conn.shape
    ident = identity_slots(n_out)
    if lanes == 1 or n_out == 0:
        return ident
    for c in candidates:
        if sorted(c) != list(range(n_out)):
            raise ValueError("a candidate must put every neuron in its own slot")
    capacity = np.array([len(range(k, n_out, lanes)) for k in range(lanes)])
    fill = np.zeros(lanes, np.int64)
    load = np.zeros((n_in, lanes), np.int64)
    top = np.zeros(n_in, np.int64)
    lane_of = np.zeros(n_out, np.int64)
    c = conn.astype(np.int64)
    for j in np.argsort(-c.sum(axis=1), kind="stable"):
        added = c[j] @ (load == top[:, None])           # rows each lane would add
        free = fill < capacity
        key = np.where(free, added * (n_out + 1) + fill, np.iinfo(np.int64).max)
        k = int(np.argmin(key))
        lane_of[j] = k
        fill[k] += 1
        load[:, k] += c[j]
        np.maximum(top, load[:, k], out=top)
    slots = np.zeros(n_out, np.int64)
    for k in range(lanes):
        members = np.flatnonzero(lane_of == k)          # ascending neuron order within a lane
        slots[members] = k + lanes * np.arange(len(members))
    options = [ident, *[np.asarray(c, np.int64) for c in candidates], slots]
    return min(options, key=lambda s: int(list_rows(conn, s, lanes).sum()))


def layer_matrix(layer) -> tuple[np.ndarray, np.ndarray]:
    """The layer's integer matrix ``A`` (n_out, n_in) with masked entries zero, and its connection
    matrix (True where an unmasked synapse exists), for any layer kind."""
    shape = layer.shape
    if shape.kind == "dense":
        conn = np.ones(shape.weight_shape, bool) if layer.mask is None else layer.mask.astype(bool)
        return layer.effective_weight.astype(np.int64), conn
    eye = np.eye(shape.n_in)
    a = np.rint(shape.apply(eye, layer.effective_weight.astype(np.float64))).astype(np.int64).T
    ones = np.ones(shape.weight_shape) if layer.mask is None else layer.mask.astype(np.float64)
    conn = (shape.apply(eye, ones) != 0).T
    return a, conn
