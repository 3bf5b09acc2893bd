"""Host-side memory layout: a converted :class:`~cssnn.sw.spec.network.SpikingNetwork` on one core.

:func:`place_network` places every layer (the encoder, the hidden TSA layers, the output
integrators) in the core's memories and returns a :class:`NetworkImage`: the synapse rows, the
index entries, the biases, the per-layer placement, the per-step configurations in schedule order
(:meth:`NetworkImage.schedule`) and the host-port writes that load it all
(:meth:`NetworkImage.host_writes`, :meth:`NetworkImage.input_writes`). Controllers, drivers and tests
all use this one function, so there is one definition of the memory map.

Memory map (N = lanes, ``groups(n) = ceil(n / N)``):

- neuron words (state, accumulator, bias, index memories): layers one after another, layer ``l`` at
  words ``neuron_base .. neuron_base + groups - 1``; slot ``s`` of the layer is lane ``s % N`` of word
  ``neuron_base + s // N``; neuron ``j`` sits in slot ``slots[j]`` (:mod:`cssnn.sw.mapping.lanes`
  balances the rows; the encoder and the output layer keep ``slots[j] = j``); slots past ``count``
  are padding (bias 0, never emit spikes). A layer's spikes carry slots, not neuron indices
  (:meth:`NetworkImage.neuron_at` maps them back).
- synapse rows: weight layer ``l`` (1..L) at rows ``syn_base ..``: the list of every presynaptic
  neuron (in slot order), one after another. Lane ``k`` of a row of neuron ``i``'s list holds one
  synapse from ``i`` to a neuron of lane ``k``: its weight, its word within the layer (``offset``)
  and a mask bit of 1; rows past the end of lane ``k``'s synapses have mask 0 (offset 0, weight 0).
  Absent synapses have no lane.
- index entries: the entry of the slot of presynaptic neuron ``i`` (layer ``l - 1``) holds the
  first row of its list into layer ``l`` and the number of rows (0: its spikes cost nothing).
- the encoder (layer 0) has no synapses and a zero-initialised bias: :meth:`NetworkImage.input_writes`
  writes each sample's integer input x into its bias words before an inference.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from amaranth.lib import data

from cssnn.hw.memmap import ORDERS, AccelParams, Reg, Route, Sel, layer_layout
from cssnn.hw.params import CoreParams, HostMem, Mode, lane_shape, pack, unpack
from cssnn.sw.mapping.lanes import layer_matrix
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
    rows: int            # synapse rows of the layer's lists (0 for the encoder)
    idx_base: int        # slot of the presynaptic layer's first neuron (weight layers; 0 for the encoder)
    n_in: int            # presynaptic neurons (0 for the encoder)
    threshold: int       # theta (0 for the output integrators)
    slots: np.ndarray = field(compare=False, repr=False)      # slot of each neuron
    neuron_at: np.ndarray = field(compare=False, repr=False)  # neuron in each slot (count entries)

    def config(self, mode: Mode) -> dict:
        """The ``step`` payload (a dict for :func:`~cssnn.hw.params.config_layout`) for one step."""
        return {"mode": int(mode), "encoder": int(self.layer == 0), "neuron_base": self.neuron_base,
                "groups": self.groups, "count": self.count, "idx_base": self.idx_base, "threshold": self.threshold}


@dataclass
class NetworkImage:
    """A network laid out for a core (see the module docstring for the memory map)."""

    params: CoreParams
    net: SpikingNetwork
    layers: list[LayerPlacement]
    syn_weight: np.ndarray   # (rows used, N) int64
    syn_offset: np.ndarray   # (rows used, N) int64: the target's word within its layer
    syn_mask: np.ndarray     # (rows used, N) bool
    bias: np.ndarray         # (words used, N) int64 (encoder words are 0: loaded per sample)
    index_first: np.ndarray  # (words used, N) int64: first row of the slot's list (as a presynaptic neuron)
    index_rows: np.ndarray   # (words used, N) int64: rows of that list
    synops_per_spike: list[np.ndarray] = field(default_factory=list)  # per weight layer: fan-out per presynaptic neuron
    neuron_base: int = 0     # first word this image owns
    syn_base: int = 0        # first synapse row this image owns

    @property
    def rows_used(self) -> int:
        return self.syn_weight.shape[0]

    @property
    def synapses(self) -> int:
        """Synapses that exist (lanes with the mask bit set)."""
        return int(self.syn_mask.sum())

    @property
    def dense_rows(self) -> int:
        """Rows a dense layout of the same layer matrices would need: ``ceil(n_out / N)`` per
        presynaptic neuron (every pair a synapse)."""
        return sum(layer.shape.n_in * -(-layer.shape.n_out // self.params.lanes) for layer in self.net.layers)

    @property
    def synapse_bits(self) -> int:
        """Bits of synapse memory the image uses: rows x N lanes x the lane's width."""
        return (self.rows_used - self.syn_base) * self.params.lanes * lane_shape(self.params, HostMem.SYNAPSE).size

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

    def evaluation_order(self, order: str = "chain") -> list[tuple[int, int, dict]]:
        """The layer-steps in the order an accelerator with ``AccelParams.order == order`` runs them:
        ``(t, layer, config)`` by round (chain: ``t``; waves: ``t + layer``), layers ascending within a
        round (docs/SEMANTICS.md section 4, "Evaluation order")."""
        if order not in ORDERS:
            raise ValueError(f"order must be one of {', '.join(map(repr, ORDERS))}, not {order!r}")
        steps = [(t, l, cfg) for t, todo in enumerate(self.schedule()) for l, cfg in todo]
        return sorted(steps, key=lambda st: (st[0] + st[1] * (order == "waves"), st[1]))

    def host_writes(self):
        """Yield ``(HostMem, addr, lane, raw)`` for every synapse lane, every non-encoder bias lane and
        every index entry (raw = the lane's bits as an unsigned int, :func:`pack_lane`)."""
        p = self.params
        syn = lane_shape(p, HostMem.SYNAPSE)
        for r in range(self.syn_base, self.rows_used):
            for k in range(p.lanes):
                yield HostMem.SYNAPSE, r, k, pack(syn, {"weight": int(self.syn_weight[r, k]),
                                                        "offset": int(self.syn_offset[r, k]),
                                                        "mask": int(self.syn_mask[r, k])})
        enc = self.layers[0]
        for w in range(self.neuron_base, self.words_used):
            if enc.neuron_base <= w < enc.neuron_base + enc.groups:
                continue
            for k in range(p.lanes):
                yield HostMem.BIAS, w, k, pack_lane(p, HostMem.BIAS, int(self.bias[w, k]))
        index = lane_shape(p, HostMem.INDEX)
        for w in range(self.neuron_base, self.words_used):
            for k in range(p.lanes):
                yield HostMem.INDEX, w, k, pack(index, self.index_entry(w, k))

    def index_entry(self, word: int, lane: int) -> dict:
        """The index entry of slot ``word * N + lane`` (:func:`~cssnn.hw.params.index_lane_layout`): its
        list's first row and row count, or (``walk = "lanes"``) each lane's rows of it (a lane's
        synapses are the first rows of its column of the list)."""
        first, rows = int(self.index_first[word, lane]), int(self.index_rows[word, lane])
        if self.params.walk == "lanes":
            return {"first": first, "counts": [int(c) for c in self.syn_mask[first:first + rows].sum(axis=0)]}
        return {"first": first, "rows": rows}

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
        s = int(pl.slots[j])
        return pl.neuron_base + s // self.params.lanes, s % self.params.lanes

    def list_rows(self, layer: int, slots) -> int:
        """Synapse rows that spikes of the previous layer's neurons in ``slots`` cost in ``layer``
        (the rows of their lists: the clocks the core spends on them)."""
        if layer == 0:
            return 0
        prev, n = self.layers[layer - 1], self.params.lanes
        s = prev.neuron_base * n + np.asarray(list(slots), np.int64)
        return int(self.index_rows[s // n, s % n].sum())

    def neuron_at(self, layer: int, slot: int) -> int:
        """The neuron of ``layer`` in ``slot`` (a spike's index); ``ValueError`` for a padding slot."""
        pl = self.layers[layer]
        if not 0 <= slot < pl.count:
            raise ValueError(f"slot {slot} of layer {layer} holds no neuron (the layer has {pl.count})")
        return int(pl.neuron_at[slot])

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
            fields = {name: value for name, value in pl.config(Mode.SILENT).items() if name in lay.members}
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
        return [pl.neuron_base * self.params.lanes + int(s) for s in pl.slots]

    def output_addrs(self) -> list[int]:
        """Flat STATE bus addresses of the output integrators (the logits), in class order; decode the
        raw elements with :func:`unpack_state`."""
        return self.state_addrs(len(self.layers) - 1)


def pack_lane(p: CoreParams, mem: HostMem, value: int, flag: bool = False, **fields) -> int:
    """Raw bits of one memory lane (:func:`~cssnn.hw.params.lane_shape`): a synapse (weight, mask bit;
    ``offset=`` the target's word), a state (v, fired flag), a bias or accumulator (value), an index
    entry (first row, ``rows=``)."""
    shape = lane_shape(p, mem)
    if isinstance(shape, data.StructLayout):
        names = [name for name, _ in shape]
        values = {names[0]: value, **fields}
        if len(names) > 1 and names[-1] not in fields:
            values[names[-1]] = int(bool(flag))
        return pack(shape, values)
    return pack(shape, value)


def unpack_state(p: CoreParams, raw: int) -> tuple[int, bool]:
    """(membrane, fired) from a raw state lane."""
    lane = unpack(lane_shape(p, HostMem.STATE), raw)
    return lane["v"], bool(lane["fired"])


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
    words = neuron_base + req.neuron_words
    bias = np.zeros((words, n), np.int64)
    index_first = np.zeros((words, n), np.int64)
    index_rows = np.zeros((words, n), np.int64)
    rows = syn_base + req.synapse_rows
    syn_w, syn_off, syn_m = np.zeros((rows, n), np.int64), np.zeros((rows, n), np.int64), np.zeros((rows, n), bool)
    placements, fanouts = [], []
    word, row = neuron_base, syn_base
    for g in req.geometry:
        l = g.layer
        kind = "encoder" if l == 0 else "output" if l == L else "hidden"
        neuron_at = np.argsort(g.slots)
        idx_base = placements[-1].neuron_base * n if l > 0 else 0
        if l > 0:
            layer = net.layers[l - 1]
            prev = placements[-1]
            a, conn = layer_matrix(layer)                   # (count, n_in), neuron order
            fanouts.append(conn.sum(axis=0).astype(np.int64))
            a, conn = a[neuron_at][:, prev.neuron_at], conn[neuron_at][:, prev.neuron_at]   # slot order
            first = row
            for i in range(g.n_in):                         # presynaptic slot i: its list
                targets = np.flatnonzero(conn[:, i])        # ascending slots
                lanes = targets % n
                order = np.argsort(lanes, kind="stable")
                counts = np.bincount(lanes, minlength=n)
                depth = np.empty(len(targets), np.int64)    # each synapse's row within the list
                depth[order] = np.arange(len(targets)) - np.repeat(np.cumsum(counts) - counts, counts)
                syn_w[row + depth, lanes] = a[targets, i]
                syn_off[row + depth, lanes] = targets // n
                syn_m[row + depth, lanes] = True
                iw, ik = divmod(prev.neuron_base * n + i, n)
                index_first[iw, ik], index_rows[iw, ik] = row, g.list_rows[i]
                row += int(g.list_rows[i])
            assert row - first == g.rows
            b = np.zeros(g.groups * n, np.int64)
            b[g.slots] = layer.expanded_bias
            bias[word:word + g.groups] = b.reshape(g.groups, n)
        placements.append(LayerPlacement(l, kind, g.count, g.groups, word, first if l > 0 else 0, g.rows, idx_base,
                                         g.n_in, int(thetas[l]), g.slots, neuron_at))
        word += g.groups
    return NetworkImage(p, net, placements, syn_w, syn_off, syn_m, bias, index_first, index_rows, fanouts,
                        neuron_base, syn_base)
