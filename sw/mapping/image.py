"""Host-side memory layout: a converted :class:`~cssnn.sw.spec.network.SpikingNetwork` on one core.

:func:`place_network` places every layer (the encoder, the hidden TSA layers, the output
integrators) in the core's memories and returns a :class:`NetworkImage`: the synapse rows (weights +
mask bits), the biases, the per-layer placement, the per-step configurations in schedule order
(:meth:`NetworkImage.schedule`) and the host-port writes that load it all
(:meth:`NetworkImage.host_writes`, :meth:`NetworkImage.input_writes`). Controllers, drivers and tests
all use this one function, so there is one definition of the memory map.

Memory map (N = lanes, ``groups(n) = ceil(n / N)``):

- neuron words (state, accumulator, bias memories): layers one after another, layer ``l`` at words
  ``neuron_base .. neuron_base + groups - 1``; neuron ``j`` is lane ``j % N`` of word
  ``neuron_base + j // N``; lanes past ``count`` are padding (bias 0, never emit spikes).
- synapse rows: weight layer ``l`` (1..L) at rows ``syn_base ..``; presynaptic neuron ``i`` owns
  ``2**stride_log2 >= groups`` consecutive rows (a power of two, so the row address is a shift, not a
  multiply); row ``syn_base + (i << stride_log2) + g`` lane ``k`` holds the weight from ``i`` to
  neuron ``g*N + k`` and its mask bit (1 = an unmasked synapse that exists; padding lanes, masked
  synapses and pairs a convolution/pool does not connect are 0).
- the encoder (layer 0) has no synapses and a zero-initialised bias: :meth:`NetworkImage.input_writes`
  writes each sample's integer input x into its bias words before an inference.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from amaranth.lib import data

from cssnn.hw.memmap import AccelParams, Reg, Route, Sel, layer_layout
from cssnn.hw.params import CoreParams, HostMem, Mode, lane_shape, pack, unpack
from cssnn.sw.mapping.requirements import check_core, check_depths, check_fits, requirements
from cssnn.sw.spec.network import SpikingNetwork

__all__ = ["LayerPlacement", "NetworkImage", "place_network", "layer_matrix", "pack_lane", "unpack_state"]


@dataclass(frozen=True)
class LayerPlacement:
    """Where layer ``layer`` (0 = encoder, 1..L-1 hidden, L = output) lives in the core."""

    layer: int
    kind: str            # "encoder", "hidden" or "output"
    count: int           # neurons
    groups: int          # words = ceil(count / N)
    neuron_base: int     # first word
    syn_base: int        # first synapse row (weight layers; 0 for the encoder)
    stride_log2: int     # log2 rows per presynaptic neuron (weight layers)
    n_in: int            # presynaptic neurons (0 for the encoder)
    threshold: int       # theta (0 for the output integrators)

    def config(self, mode: Mode) -> dict:
        """The ``step`` payload (a dict for :func:`~cssnn.hw.params.config_layout`) for one step."""
        return {"mode": int(mode), "neuron_base": self.neuron_base, "groups": self.groups, "count": self.count,
                "syn_base": self.syn_base, "stride_log2": self.stride_log2, "threshold": self.threshold}


@dataclass
class NetworkImage:
    """A network laid out for a core (see the module docstring for the memory map)."""

    params: CoreParams
    net: SpikingNetwork
    layers: list[LayerPlacement]
    syn_weight: np.ndarray   # (rows used, N) int64
    syn_mask: np.ndarray     # (rows used, N) bool
    bias: np.ndarray         # (words used, N) int64 (encoder words are 0: loaded per sample)
    synops_per_spike: list[np.ndarray] = field(default_factory=list)  # per weight layer: fan-out per presynaptic neuron
    neuron_base: int = 0     # first word this image owns
    syn_base: int = 0        # first synapse row this image owns

    @property
    def rows_used(self) -> int:
        return self.syn_weight.shape[0]

    @property
    def words_used(self) -> int:
        return self.bias.shape[0]

    def schedule(self) -> list[list[tuple[int, dict]]]:
        """Per global step t = 0 .. T+L-1, the layer-steps in evaluation order: ``(layer, config)``.

        Layer ``l``'s input events at step t are the spikes layer ``l-1`` emitted in the same step (none
        for the encoder, and none when layer ``l-1`` is not active at t): feed them, then an end marker.
        """
        T, L = self.net.timesteps, self.net.n_layers
        steps = []
        for t in range(T + L):
            todo = []
            for pl in self.layers:
                l = pl.layer
                if l < L:
                    if t == l:
                        todo.append((l, pl.config(Mode.SILENT)))
                    elif l < t <= l + T:
                        todo.append((l, pl.config(Mode.FIRE)))
                elif t == L:
                    todo.append((l, pl.config(Mode.OUT_FIRST)))
                elif L < t < L + T:
                    todo.append((l, pl.config(Mode.OUT)))
            steps.append(todo)
        return steps

    def host_writes(self):
        """Yield ``(HostMem, addr, lane, raw)`` for every synapse lane and every non-encoder bias lane
        (raw = the lane's bits as an unsigned int, :func:`pack_lane`)."""
        p = self.params
        for r in range(self.syn_base, self.rows_used):
            for k in range(p.lanes):
                yield HostMem.SYNAPSE, r, k, pack_lane(p, HostMem.SYNAPSE, int(self.syn_weight[r, k]),
                                                       bool(self.syn_mask[r, k]))
        enc = self.layers[0]
        for w in range(self.neuron_base, self.words_used):
            if enc.neuron_base <= w < enc.neuron_base + enc.groups:
                continue
            for k in range(p.lanes):
                yield HostMem.BIAS, w, k, pack_lane(p, HostMem.BIAS, int(self.bias[w, k]))

    def input_writes(self, x) -> list[tuple[HostMem, int, int, int]]:
        """Host writes that load one sample's integer input ``x`` (n_inputs values) as the encoder's bias
        (padding lanes of the last encoder word get 0)."""
        x = np.asarray(x).reshape(-1)
        enc, p = self.layers[0], self.params
        if x.size != enc.count:
            raise ValueError(f"input has {x.size} values, the encoder has {enc.count} neurons")
        if x.min(initial=0) < 0 or x.max(initial=0) > self.net.input_limit:
            raise ValueError(f"inputs must lie in [0, {self.net.input_limit}]")
        values = list(x) + [0] * (enc.groups * p.lanes - enc.count)  # padding lanes: 0
        return [(HostMem.BIAS, enc.neuron_base + j // p.lanes, j % p.lanes, pack_lane(p, HostMem.BIAS, int(v)))
                for j, v in enumerate(values)]

    def neuron_addr(self, layer: int, j: int) -> tuple[int, int]:
        """(word, lane) of neuron ``j`` of ``layer``."""
        pl = self.layers[layer]
        return pl.neuron_base + j // self.params.lanes, j % self.params.lanes

    # ---- the accelerator's bus (hw/memmap.py) ----
    def _check_ap(self, ap):
        if not isinstance(ap, AccelParams):
            raise TypeError(f"ap must be an AccelParams, not {ap!r}")
        if ap.core != self.params:
            raise ValueError("the image was laid out for different core parameters than ap.core")
        check_fits(self.net, ap)

    def bus_writes(self, ap, *, tap: bool = False) -> list[tuple]:
        """``(Sel, addr, raw)`` bus writes that load everything but the input: synapse lanes, the
        non-encoder biases, layer-table entries 0..L (:func:`~cssnn.hw.memmap.layer_layout`), route
        entries (LOOPBACK for layers 0..L-1, nothing for the output layer L; with ``tap`` every entry
        also has TAP) and the registers T and L. Raises
        :class:`~cssnn.sw.mapping.requirements.DoesNotFit` if the network does not fit the accelerator."""
        self._check_ap(ap)
        n = self.params.lanes
        out = [(Sel(mem), addr * n + lane, raw) for mem, addr, lane, raw in self.host_writes()]
        lay = layer_layout(self.params)
        L = self.net.n_layers
        for pl in self.layers:
            fields = {name: value for name, value in pl.config(Mode.SILENT).items() if name != "mode"}
            out.append((Sel.LAYER, pl.layer, pack(lay, fields)))
        extra = Route.TAP if tap else 0
        for pl in self.layers:
            out.append((Sel.ROUTE, pl.layer, int((Route.LOOPBACK if pl.layer < L else 0) | extra)))
        out += [(Sel.REG, int(Reg.TIMESTEPS), self.net.timesteps), (Sel.REG, int(Reg.LAYERS), L)]
        return out

    def bus_input_writes(self, x) -> list[tuple]:
        """``(Sel.BIAS, addr, raw)`` bus writes of one sample's integer input ``x`` (the encoder's bias,
        :meth:`input_writes`)."""
        n = self.params.lanes
        return [(Sel.BIAS, addr * n + lane, raw) for _mem, addr, lane, raw in self.input_writes(x)]

    def state_addrs(self, layer: int) -> list[int]:
        """Flat STATE bus addresses (``word * N + lane``) of the neurons of ``layer``, in index order."""
        pl = self.layers[layer]
        return [pl.neuron_base * self.params.lanes + j for j in range(pl.count)]

    def output_addrs(self) -> list[int]:
        """Flat STATE bus addresses of the output integrators (the logits), in class order; decode the
        raw elements with :func:`unpack_state`."""
        return self.state_addrs(len(self.layers) - 1)


def pack_lane(p: CoreParams, mem: HostMem, value: int, flag: bool = False) -> int:
    """Raw bits of one memory lane (:func:`~cssnn.hw.params.lane_shape`): synapse (weight, mask bit),
    state (v, fired flag), bias or accumulator (value)."""
    shape = lane_shape(p, mem)
    if isinstance(shape, data.StructLayout):
        (value_field, _), (flag_field, _) = shape
        return pack(shape, {value_field: value, flag_field: int(bool(flag))})
    return pack(shape, value)


def unpack_state(p: CoreParams, raw: int) -> tuple[int, bool]:
    """(membrane, fired) from a raw state lane."""
    lane = unpack(lane_shape(p, HostMem.STATE), raw)
    return lane["v"], bool(lane["fired"])


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


def place_network(net: SpikingNetwork, p: CoreParams, *, neuron_base: int = 0, syn_base: int = 0) -> NetworkImage:
    """Place ``net`` in a core with parameters ``p`` starting at word ``neuron_base`` and synapse row
    ``syn_base``; raise :class:`~cssnn.sw.mapping.requirements.DoesNotFit` if it does not fit (widths:
    :func:`~cssnn.sw.mapping.requirements.check_core`; depths)."""
    req = requirements(net, p.lanes)
    check_core(req, p)
    check_depths(req, p, neuron_base=neuron_base, syn_base=syn_base)
    n = p.lanes
    thetas = net.thresholds + [0]
    L = net.n_layers
    placements = []
    word, row = neuron_base, syn_base
    weights, masks, biases, fanouts = [], [], [], []
    for g in req.geometry:
        l, count, groups = g.layer, g.count, g.groups
        kind = "encoder" if l == 0 else "output" if l == L else "hidden"
        b = np.zeros((groups * n,), np.int64)
        if l > 0:
            layer = net.layers[l - 1]
            per = 2**g.stride_log2
            a, conn = layer_matrix(layer)                   # (count, n_in)
            w = np.zeros((g.n_in, per * n), np.int64)
            mk = np.zeros((g.n_in, per * n), bool)
            w[:, :count] = np.where(conn, a, 0).T
            mk[:, :count] = conn.T
            weights.append(w.reshape(g.rows, n))
            masks.append(mk.reshape(g.rows, n))
            fanouts.append(conn.sum(axis=0).astype(np.int64))
            b[:count] = layer.expanded_bias
        placements.append(LayerPlacement(l, kind, count, groups, word, row if l > 0 else 0, g.stride_log2, g.n_in,
                                         int(thetas[l])))
        biases.append(b.reshape(groups, n))
        word += groups
        row += g.rows
    syn_w = np.concatenate(weights) if weights else np.zeros((0, n), np.int64)
    syn_m = np.concatenate(masks) if masks else np.zeros((0, n), bool)
    pad_w = np.zeros((syn_base, n), np.int64)
    bias = np.concatenate([np.zeros((neuron_base, n), np.int64)] + biases)
    return NetworkImage(p, net, placements, np.concatenate([pad_w, syn_w]),
                        np.concatenate([pad_w.astype(bool), syn_m]), bias, fanouts, neuron_base, syn_base)
