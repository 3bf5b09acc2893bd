"""What a network needs of the hardware, and the one place where "does it fit?" is decided.

:func:`requirements` reads a :class:`~cssnn.sw.spec.network.SpikingNetwork` once and says what any
accelerator needs to run it bit-exactly with ``lanes`` lanes: the narrowest register widths, the
neuron words and synapse rows of its placement, the layer-table entries, the T register, the
loopback FIFO. Both consumers use it:

- :func:`check_core` / :func:`check_fits` compare it with given hardware (a
  :class:`~cssnn.hw.params.CoreParams` / :class:`~cssnn.hw.memmap.AccelParams`) and raise
  :class:`DoesNotFit` naming the first thing that is too small;
- :func:`cssnn.sw.mapping.sizing.params_for` builds the narrowest hardware from it.

:func:`layer_geometry` is the placement's arithmetic (words per layer, the slot of every neuron, the
synapse rows of every presynaptic neuron's list: :mod:`cssnn.sw.mapping.lanes`), shared with
:func:`cssnn.sw.mapping.image.place_network`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cssnn.hw.memmap import AccelParams
from cssnn.hw.params import CoreParams
from cssnn.sw.mapping.lanes import assign_slots, channels_minor_slots, identity_slots, layer_matrix, list_rows
from cssnn.sw.spec.network import SpikingNetwork, bits_for

__all__ = ["DoesNotFit", "LayerGeometry", "Requirements", "layer_geometry", "requirements", "check_core",
           "check_depths", "check_fits"]


class DoesNotFit(ValueError):
    """The network cannot run on this hardware; the message names the first reason."""


@dataclass(frozen=True)
class LayerGeometry:
    """Layer ``layer`` (0 = encoder, 1..L-1 hidden, L = output) placed on ``lanes`` lanes."""

    layer: int
    count: int        # neurons
    groups: int       # words = ceil(count / lanes)
    n_in: int         # presynaptic neurons (0 for the encoder)
    synapses: int     # synapses that exist into this layer (0 for the encoder)
    #: slot of each neuron (``word * N + lane`` within the layer); the encoder and the output layer
    #: keep neuron j in slot j (inputs and logits keep their order)
    slots: np.ndarray = field(compare=False, repr=False)
    #: synapse rows of each presynaptic neuron's list into this layer (empty for the encoder)
    list_rows: np.ndarray = field(compare=False, repr=False)
    #: synapses into the neurons of each lane (what that lane walks when every neuron spikes once)
    lane_synapses: np.ndarray = field(compare=False, repr=False, default_factory=lambda: np.zeros(0, np.int64))

    @property
    def rows(self) -> int:
        """Synapse rows of the layer: the lists of all its presynaptic neurons."""
        return int(self.list_rows.sum())

    @property
    def max_list_rows(self) -> int:
        return int(self.list_rows.max(initial=0))


def layer_geometry(net: SpikingNetwork, lanes: int) -> list[LayerGeometry]:
    """Every layer's size in words, its neurons' slots and its synapse rows on ``lanes`` lanes."""
    sizes = [net.n_inputs] + [layer.shape.n_out for layer in net.layers]
    L = net.n_layers
    out = [LayerGeometry(0, sizes[0], -(-sizes[0] // lanes), 0, 0, identity_slots(sizes[0]), np.zeros(0, np.int64))]
    for l in range(1, L + 1):
        _, conn = layer_matrix(net.layers[l - 1])
        conn = conn[:, np.argsort(out[-1].slots)]     # columns in the presynaptic layer's slot order
        shape = net.layers[l - 1].shape
        extra = [channels_minor_slots(shape.out_shape)] if shape.kind != "dense" else []
        slots = identity_slots(sizes[l]) if l == L else assign_slots(conn, lanes, extra)
        out.append(LayerGeometry(l, sizes[l], -(-sizes[l] // lanes), conn.shape[1], int(conn.sum()), slots,
                                 list_rows(conn, slots, lanes),
                                 np.bincount(slots % lanes, weights=conn.sum(axis=1), minlength=lanes).astype(np.int64)))
    return out


@dataclass(frozen=True)
class Requirements:
    """What ``net`` needs of an accelerator with ``lanes`` lanes (see the module docstring)."""

    lanes: int
    weight_bits: int
    membrane_bits: int            # the network's TSA membrane width (SEMANTICS.md section 2)
    output_bits: int              # the output integrators at this T
    input_bias_bits: int          # the encoder's input x, loaded as its bias
    input_bits: int
    thresholds: list[int]         # per spiking layer
    layer_input_bounds: list[int]  # per weight layer: max_j sum_i |A[j, i]|, what the accumulator holds
    layer_bias_bounds: list[int]  # per weight layer: max |bias|
    geometry: list[LayerGeometry]
    timesteps: int

    @property
    def n_layers(self) -> int:
        return len(self.geometry) - 1

    @property
    def neuron_words(self) -> int:
        return sum(g.groups for g in self.geometry)

    @property
    def synapse_rows(self) -> int:
        return sum(g.rows for g in self.geometry)

    @property
    def weight_layer_words(self) -> int:
        """Words of the weight layers (all but the encoder): what the accumulator banks hold."""
        return sum(g.groups for g in self.geometry[1:])

    @property
    def layer_words(self) -> int:
        """Words of the largest weight layer (what a synapse's target word must address)."""
        return max(g.groups for g in self.geometry[1:])

    @property
    def list_rows(self) -> int:
        """Rows of the longest presynaptic neuron's list (at least 1: what the index's row count holds)."""
        return max(1, max(g.max_list_rows for g in self.geometry))

    @property
    def synapses(self) -> int:
        """Synapses that exist (each one lane of one synapse row)."""
        return sum(g.synapses for g in self.geometry)

    @property
    def busiest_lane_synapses(self) -> int:
        """Per weight layer the synapses of its busiest lane, summed: the rows the lanes walk when they
        walk their own lists (``walk = "lanes"``) and every neuron spikes once; ``synapse_rows`` is
        the same walking rows together."""
        return sum(int(g.lane_synapses.max(initial=0)) for g in self.geometry[1:])

    @property
    def largest_layer(self) -> int:
        """Neurons of the largest layer (layer sizes chain: a layer's inputs are the previous one's neurons)."""
        return max(g.count for g in self.geometry)

    @property
    def spiking_layers(self) -> list[int]:
        """Neurons of the layers whose spikes go through the loopback FIFO (all but the output)."""
        return [g.count for g in self.geometry[:-1]]

    @property
    def acc_bits(self) -> int:
        return bits_for(max(self.layer_input_bounds))

    @property
    def bias_bits(self) -> int:
        return max(self.input_bias_bits, bits_for(max(self.layer_bias_bounds)))

    @property
    def threshold_bits(self) -> int:
        return max(1, max(self.thresholds).bit_length())


def requirements(net: SpikingNetwork, lanes: int) -> Requirements:
    """What ``net`` needs on ``lanes`` lanes; :class:`DoesNotFit` if no accelerator can run it."""
    if net.coding != "css":
        raise DoesNotFit(f"the accelerator runs CSS networks, not {net.coding!r} (the rate baseline is host-side "
                         "only)")
    return Requirements(
        lanes=lanes, weight_bits=net.weight_bits, membrane_bits=net.required_membrane_bits,
        output_bits=net.required_output_bits, input_bias_bits=bits_for(net.input_limit), input_bits=net.input_bits,
        thresholds=list(net.thresholds),
        layer_input_bounds=[int(layer.input_bound.max(initial=0)) for layer in net.layers],
        layer_bias_bounds=[int(np.abs(layer.bias).max(initial=0)) for layer in net.layers],
        geometry=layer_geometry(net, lanes), timesteps=net.timesteps)


def check_core(req: Requirements, p: CoreParams) -> None:
    """Raise :class:`DoesNotFit` naming the first reason a core with ``p`` cannot run what ``req``
    describes bit-exactly (widths, then depths)."""
    if req.lanes != p.lanes:
        raise DoesNotFit(f"the requirements are for {req.lanes} lanes, the core has {p.lanes}")
    if req.weight_bits > p.weight_bits:
        raise DoesNotFit(f"the network has {req.weight_bits}-bit weights, the core {p.weight_bits}-bit")
    if p.membrane_bits < req.membrane_bits:
        raise DoesNotFit(f"the core's membrane_bits={p.membrane_bits} is too small for this network: it needs "
                         f"{req.membrane_bits} (SEMANTICS.md section 2)")
    if p.output_bits < req.output_bits:
        raise DoesNotFit(f"the core's output_bits={p.output_bits} is too small: the output integrators need "
                         f"{req.output_bits} bits at T={req.timesteps}")
    if req.input_bias_bits > p.bias_bits:
        raise DoesNotFit(f"bias_bits={p.bias_bits} cannot hold the {req.input_bits}-bit input loaded as the "
                         f"encoder's bias (needs {req.input_bias_bits})")
    for i, th in enumerate(req.thresholds):
        if th > p.max_threshold:
            raise DoesNotFit(f"layer {i} has threshold {th}, more than threshold_bits={p.threshold_bits} hold")
    for i, (imax, bmax) in enumerate(zip(req.layer_input_bounds, req.layer_bias_bounds), start=1):
        if bits_for(imax) > p.acc_bits:
            raise DoesNotFit(f"layer {i} sums up to {imax} per step: acc_bits={p.acc_bits} is too small "
                             f"(needs {bits_for(imax)})")
        if bits_for(bmax) > p.bias_bits:
            raise DoesNotFit(f"layer {i} has a bias of magnitude {bmax}: bias_bits={p.bias_bits} is too small")
    if req.weight_layer_words > p.acc_words:
        raise DoesNotFit(f"the weight layers need {req.weight_layer_words} accumulator words, the core's banks hold "
                         f"acc_words={p.acc_words}")
    if req.layer_words > p.layer_words:
        raise DoesNotFit(f"a weight layer of {req.layer_words} words is larger than the core's layer_words="
                         f"{p.layer_words}")
    if req.list_rows > p.list_rows:
        raise DoesNotFit(f"a presynaptic neuron's synapse list has {req.list_rows} rows, more than the core's "
                         f"list_rows={p.list_rows}")
    if req.largest_layer > 2**p.index_bits:
        raise DoesNotFit(f"a layer of {req.largest_layer} neurons is larger than the core's {p.neurons} neurons")


def check_depths(req: Requirements, p: CoreParams, *, neuron_base: int = 0, syn_base: int = 0) -> None:
    """Raise :class:`DoesNotFit` if the placement (from word ``neuron_base``, row ``syn_base``) runs past
    the core's memories."""
    words, rows = neuron_base + req.neuron_words, syn_base + req.synapse_rows
    if words > p.groups:
        raise DoesNotFit(f"the network needs {words} neuron words ({words * p.lanes} neurons incl. padding), the "
                         f"core has {p.groups} (neurons={p.neurons})")
    if rows > p.synapse_rows:
        raise DoesNotFit(f"the network needs {rows} synapse rows, the core has {p.synapse_rows}")


def check_fits(net: SpikingNetwork, ap: AccelParams) -> Requirements:
    """Raise :class:`DoesNotFit` naming the first reason ``net`` cannot run on an accelerator with ``ap``:
    the core (:func:`check_core`, :func:`check_depths`), then the layer table (L <= max_layers - 1), the
    T register (T <= 2**timestep_bits - 1) and the loopback FIFO (what the evaluation order keeps in it,
    :meth:`AccelParams.loopback_entries`). Returns the requirements."""
    if not isinstance(ap, AccelParams):
        raise TypeError(f"ap must be an AccelParams, not {ap!r}")
    req = requirements(net, ap.core.lanes)
    check_core(req, ap.core)
    check_depths(req, ap.core)
    L, T = req.n_layers, req.timesteps
    if L > ap.max_layers - 1:
        raise DoesNotFit(f"the network has {L} weight layers ({L + 1} table entries with the encoder), the "
                         f"accelerator's layer table holds max_layers={ap.max_layers}: at most {ap.max_layers - 1}")
    if T > 2**ap.timestep_bits - 1:
        raise DoesNotFit(f"T={T} time steps do not fit the {ap.timestep_bits}-bit T register "
                         f"(at most {2**ap.timestep_bits - 1})")
    need = ap.loopback_entries(req.spiking_layers)
    if need > ap.fifo_depth:
        if ap.order == "chain":
            g = max(req.geometry[:-1], key=lambda g: g.count)
            raise DoesNotFit(f"layer {g.layer} has {g.count} neurons: the loopback FIFO (fifo_depth={ap.fifo_depth}) "
                             f"holds one step of at most {ap.fifo_depth - 1} spikes plus the end marker")
        raise DoesNotFit(f"the loopback FIFO (fifo_depth={ap.fifo_depth}) must hold {need} events in waves: a step of "
                         f"every spiking layer ({', '.join(map(str, req.spiking_layers))} neurons) with an end marker "
                         "each, and of the largest again (order='chain' needs one step)")
    return req
