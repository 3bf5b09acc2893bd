"""Parameters of one cssnn core, their validation, and the data layouts its ports carry.

One idea: *what a core is* (widths, lanes, memory depths) and the shapes of the words that cross
its boundary (spike events, per-step configuration, memory lanes). Every hardware component takes
a :class:`CoreParams`, so a width is chosen in exactly one place. The accelerator around the core is
parameterised by :class:`~cssnn.hw.memmap.AccelParams`, defined with the memory map it describes.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

from amaranth.hdl import Shape, signed, unsigned
from amaranth.lib import data, enum
from amaranth.utils import bits_for, ceil_log2, exact_log2

__all__ = ["CoreParams", "Mode", "HostMem", "READ_LATENCY", "SYNAPSE_RAMS", "WALKS", "SPRAM_WIDTH", "OVERLAP_LANES",
           "check_params", "spram_words", "width_floors", "event_layout", "config_layout", "syn_lane_layout", "index_lane_layout",
           "state_lane_layout", "lane_shape", "pack", "unpack"]

#: Clocks from a read address to its data: on the core's host port, and (the accelerator aligns its
#: other sources to it) on the accelerator's bus. Block-RAM outputs are registered before any select,
#: then two registered selects (docs/HARDWARE.md).
READ_LATENCY = 4


class Mode(enum.IntEnum, shape=2):
    """What one layer-step does (SEMANTICS.md sections 2 and 3). An Amaranth enum (the shape of the
    ``mode`` ports and fields) and a plain ``IntEnum`` on the host side."""

    SILENT = 0     #: v <- sat_Bv(I + b), f <- 0 (first step of a TSA layer in an inference; encoder: b = x)
    FIRE = 1       #: m = 2v + I, ternary spike with ReLU guard, v <- sat_Bv(m - 2*theta*s)
    OUT_FIRST = 2  #: output integrator, first step: v <- sat_Bo(I + b)
    OUT = 3        #: output integrator, later steps: v <- sat_Bo(2v + I)


class HostMem(enum.IntEnum, shape=3):
    """Memory selected on the host port (the shape of its ``sel``; a plain ``IntEnum`` on the host side)."""

    SYNAPSE = 0  #: lane = (weight: signed Bw, offset: the target's word, mask: 1 bit above them)
    STATE = 1    #: lane = (membrane: signed Bm, fired flag: 1 bit above it)
    BIAS = 2     #: lane = signed Bb
    ACC = 3      #: lane = signed Bi
    INDEX = 4    #: lane = (first: a synapse row, rows: how many; walk = "lanes": counts, per lane), per presynaptic neuron slot


MAX_LANES = 256

#: Synapse memory implementations (:attr:`CoreParams.synapse_ram`).
SYNAPSE_RAMS = ("block", "spram")

#: How a spike's synapse list is walked (:attr:`CoreParams.walk`).
WALKS = ("rows", "lanes")

#: Bits of an iCE40 UltraPlus SPRAM word (SB_SPRAM256KA, :mod:`cssnn.hw.core.spram`): a synapse
#: lane takes ``ceil(lane bits / 16)`` of them side by side.
SPRAM_WIDTH = 16

#: Lanes from which a core overlaps its layer-steps (:attr:`CoreParams.overlap`).
OVERLAP_LANES = 4


@dataclass(frozen=True)
class CoreParams:
    """Every width and depth of a core. Validated on construction (``ValueError`` naming the problem).

    lanes           N physical neuron lanes (power of two); one synapse row feeds N postsynaptic neurons
    weight_bits     Bw, signed synapse weights (the most negative code is never used by the converter)
    membrane_bits   Bv, TSA membrane width: must equal the network's (SEMANTICS.md section 2)
    output_bits     Bo, output integrator width
    acc_bits        Bi, per-step input accumulator (must hold Imax = max_j sum_i |A[j, i]|)
    bias_bits       Bb, biases (and the encoder's input x, loaded as its bias: needs input_bits + 1)
    threshold_bits  Bt, unsigned per-step threshold
    neurons         virtual neurons in the state/accumulator/bias memories (a multiple of lanes)
    synapse_rows    rows of the synapse memory (N lanes of (weight, target word, mask bit) per row)
    layer_words     the most words a weight layer may have (default: all ``neurons / lanes``): a
                    synapse's target word within its layer takes ``offset_bits`` of its lane
    list_rows       the most synapse rows one presynaptic neuron's list may have (default:
                    ``layer_words``, a dense list): the index memory's row count takes
                    ``count_bits``; a sparse network's lists are shorter (fewer index block RAMs)
    acc_words       words of each accumulator bank (default: all ``neurons / lanes``; else a power of
                    two, and word ``w`` uses bank word ``w mod acc_words``): the encoder has no
                    synapses, so the weight layers' words are enough (docs/HARDWARE.md)
    counter_bits    width of the cycle/event/synaptic-op counters
    synapse_ram     where the synapse memory lives: "block" (block RAM, any device) or "spram"
                    (iCE40 UltraPlus single-port RAM, SB_SPRAM256KA: 16 bits of a lane and 16k rows each,
                    :mod:`cssnn.hw.core.spram`; simulates bit-exactly through its model)
    walk            how a spike's list is walked: "rows" (all lanes together, one row per clock: a
                    list costs its fullest lane) or "lanes" (each lane walks its own part of the
                    list, from its own queue of events: a step costs its busiest lane; the index
                    entry holds a count per lane, the synapse memory is a bank per lane;
                    docs/HARDWARE.md, "Lane walk")
    """

    lanes: int = 8
    weight_bits: int = 8
    membrane_bits: int = 16
    output_bits: int = 32
    acc_bits: int = 16
    bias_bits: int = 16
    threshold_bits: int = 16
    neurons: int = 256
    synapse_rows: int = 1024
    counter_bits: int = 32
    synapse_ram: str = "block"
    layer_words: int | None = None
    acc_words: int | None = None
    list_rows: int | None = None
    walk: str = "rows"

    def __post_init__(self):
        def need(cond, msg):
            if not cond:
                raise ValueError(msg)

        for name in ("lanes", "weight_bits", "membrane_bits", "output_bits", "acc_bits", "bias_bits",
                     "threshold_bits", "neurons", "synapse_rows", "counter_bits"):
            v = getattr(self, name)
            need(isinstance(v, int) and not isinstance(v, bool), f"{name} must be an int, not {v!r}")
        need(1 <= self.lanes <= MAX_LANES and self.lanes & (self.lanes - 1) == 0,
             f"lanes must be a power of two in [1, {MAX_LANES}], not {self.lanes}")
        need(2 <= self.weight_bits <= 16, f"weight_bits must be in [2, 16], not {self.weight_bits}")
        need(2 <= self.membrane_bits <= 32, f"membrane_bits must be in [2, 32], not {self.membrane_bits}")
        need(2 <= self.output_bits <= 62, f"output_bits must be in [2, 62], not {self.output_bits}")
        need(1 <= self.threshold_bits <= 30, f"threshold_bits must be in [1, 30], not {self.threshold_bits}")
        floor = width_floors(self.weight_bits)
        need(floor["acc_bits"] <= self.acc_bits <= 48,
             f"acc_bits must be in [weight_bits={self.weight_bits}, 48] (it must hold one weight), not {self.acc_bits}")
        need(floor["bias_bits"] <= self.bias_bits <= 48, f"bias_bits must be in [2, 48], not {self.bias_bits}")
        need(self.membrane_bits >= floor["membrane_bits"],
             f"membrane_bits={self.membrane_bits} is too small for {self.weight_bits}-bit weights: a membrane "
             f"must hold 2*theta + |w| (at least {floor['membrane_bits']} bits)")
        need(self.output_bits >= floor["output_bits"],
             f"output_bits={self.output_bits} cannot hold one {self.weight_bits}-bit weight")
        need(self.neurons >= self.lanes and self.neurons % self.lanes == 0,
             f"neurons must be a positive multiple of lanes={self.lanes}, not {self.neurons}")
        need(self.neurons <= 2**20, f"neurons must be at most 2^20, not {self.neurons}")
        need(1 <= self.synapse_rows <= 2**22, f"synapse_rows must be in [1, 2^22], not {self.synapse_rows}")
        need(8 <= self.counter_bits <= 64, f"counter_bits must be in [8, 64], not {self.counter_bits}")
        if self.layer_words is None:
            object.__setattr__(self, "layer_words", self.neurons // self.lanes)
        need(isinstance(self.layer_words, int) and not isinstance(self.layer_words, bool)
             and 1 <= self.layer_words <= self.neurons // self.lanes,
             f"layer_words must be an int in [1, neurons / lanes = {self.neurons // self.lanes}], not {self.layer_words!r}")
        if self.list_rows is None:
            object.__setattr__(self, "list_rows", self.layer_words)
        need(isinstance(self.list_rows, int) and not isinstance(self.list_rows, bool)
             and 1 <= self.list_rows <= self.layer_words,
             f"list_rows must be an int in [1, layer_words = {self.layer_words}], not {self.list_rows!r}")
        groups = self.neurons // self.lanes
        if self.acc_words is None:
            object.__setattr__(self, "acc_words", groups)
        a = self.acc_words
        need(isinstance(a, int) and not isinstance(a, bool) and 1 <= a <= groups and (a == groups or a & (a - 1) == 0),
             f"acc_words must be neurons / lanes = {groups} or a power of two below it, not {a!r}")
        need(self.synapse_ram in SYNAPSE_RAMS,
             f"synapse_ram must be one of {', '.join(map(repr, SYNAPSE_RAMS))}, not {self.synapse_ram!r}")
        need(self.walk in WALKS, f"walk must be one of {', '.join(map(repr, WALKS))}, not {self.walk!r}")
        need(self.walk == "rows" or self.synapse_ram == "block",
             f"walk='lanes' needs synapse_ram='block' (a bank per lane), not {self.synapse_ram!r}")

    # ---- derived widths ----
    @property
    def lane_bits(self) -> int:
        """Bits of a lane index (0 for one lane)."""
        return exact_log2(self.lanes)

    @property
    def groups(self) -> int:
        """Words of the state/accumulator/bias memories (N neurons each)."""
        return self.neurons // self.lanes

    @property
    def group_bits(self) -> int:
        return max(1, ceil_log2(self.groups))

    @property
    def offset_bits(self) -> int:
        """A synapse's target word within its layer (0 .. layer_words - 1)."""
        return max(1, ceil_log2(self.layer_words))

    @property
    def row_bits(self) -> int:
        return max(1, ceil_log2(self.synapse_rows))

    @property
    def index_bits(self) -> int:
        """Neuron index in an event (presynaptic or postsynaptic, within its layer)."""
        return max(1, ceil_log2(self.neurons))

    @property
    def slot_bits(self) -> int:
        """A neuron slot (``word * N + lane``) of the state/accumulator/bias/index memories."""
        return max(1, ceil_log2(self.neurons))

    @property
    def count_bits(self) -> int:
        """Rows of one presynaptic neuron's list: 0 .. list_rows (at most layer_words: a row holds a
        synapse to each lane, so a list has at most as many rows as its layer has words)."""
        return bits_for(self.list_rows)

    @property
    def store_bits(self) -> int:
        """Bm: membrane storage width, shared by TSA layers (Bv) and output integrators (Bo)."""
        return max(self.membrane_bits, self.output_bits)

    @property
    def host_data_bits(self) -> int:
        """The widest lane of the five memories (:func:`lane_shape`)."""
        return max(Shape.cast(lane_shape(self, mem)).width for mem in HostMem)

    @property
    def host_addr_bits(self) -> int:
        return max(self.row_bits, self.group_bits)

    @property
    def overlap(self) -> bool:
        """The core takes the next step's config and events while ACCUM still holds a step (behind its
        end marker), and hands a step to UPDATE while the step before's last words are still in the
        update stage (docs/HARDWARE.md, "Overlapped steps"). From :data:`OVERLAP_LANES` lanes on:
        wide cores run short steps, where the refill counts; on 2 lanes it is not worth its logic."""
        return self.lanes >= OVERLAP_LANES

    @property
    def steps_ahead(self) -> int:
        """With :attr:`overlap`, the steps whose config (and events) the core takes behind ACCUM's:
        two, so that the events of a step come in while a step without events (the encoder's) is
        between it and ACCUM's."""
        return 2 if self.overlap else 0

    @property
    def max_inflight(self) -> int:
        """Steps in flight in the core at once: one whose spikes (and end marker) are still leaving,
        one updating, one accumulating; with :attr:`overlap`, also one handed to UPDATE while the
        step before's last words are in the update stage, and the :attr:`steps_ahead` behind ACCUM's."""
        return 4 + self.steps_ahead if self.overlap else 3

    @property
    def max_threshold(self) -> int:
        return 2**self.threshold_bits - 1


def width_floors(weight_bits: int) -> dict[str, int]:
    """The narrowest widths any core with ``weight_bits``-bit weights may have, whatever the network:
    the accumulator and the output integrators hold one weight, a TSA membrane holds 2*theta + one
    weight for the smallest threshold (theta = 1; otherwise no layer could satisfy
    V >= 2*theta + Imax, SEMANTICS.md section 2), a bias is at least 2 bits."""
    w = 2 ** (weight_bits - 1) - 1
    return {"acc_bits": weight_bits, "bias_bits": 2, "output_bits": weight_bits,
            "membrane_bits": bits_for(2 + w, require_sign_bit=True)}


def spram_words(p: CoreParams) -> int:
    """SPRAM words (16 bits each) side by side that hold one synapse lane."""
    return -(-syn_lane_layout(p).size // SPRAM_WIDTH)


def check_params(component, params) -> None:
    """Raise ``TypeError`` unless ``params`` is a :class:`CoreParams`. (The rejected ``component`` was
    created: a test that does this on purpose silences Amaranth's "created but never used" warning
    with ``# amaranth: UnusedElaboratable=no`` on its file's first line.)"""
    if not isinstance(params, CoreParams):
        raise TypeError(f"params must be a CoreParams, not {params!r}")


def event_layout(p: CoreParams) -> data.StructLayout:
    """A spike event (AER), the same layout in and out of a core.

    ``index``: presynaptic (in) or postsynaptic (out) neuron index within its layer; ``neg``: 1 for a
    -1 spike, 0 for +1; ``end``: end-of-step marker (carries no spike; ``index``/``neg`` ignored). A
    core's output for one step is its spikes in ascending neuron order followed by one end marker,
    which is exactly a valid input for the next layer's step.
    """
    return data.StructLayout({"index": unsigned(p.index_bits), "neg": unsigned(1), "end": unsigned(1)})


def config_layout(p: CoreParams) -> data.StructLayout:
    """Per layer-step configuration, the payload of the core's ``step`` stream.

    mode         :class:`Mode`
    neuron_base  first word (group of N neurons) of the layer in the state/accumulator/bias memories
    groups       words of the layer: ceil(count / N) (1 or more)
    count        neurons in the layer (spikes of slots at index >= count are never emitted)
    idx_base     the slot of the presynaptic layer's first neuron: an input event ``i`` finds its synapse
                 rows in index-memory entry ``idx_base + i`` (weight layers)
    threshold    theta (FIRE mode only)
    encoder      the step is the encoder's (layer 0: no synaptic input): its update neither reads nor
                 clears the accumulator words, which it shares with weight layers (they alias), so
                 it may run while a weight layer accumulates
    """
    return data.StructLayout({
        "mode": Mode,
        "encoder": unsigned(1),
        "neuron_base": unsigned(p.group_bits),
        "groups": unsigned(p.group_bits + 1),
        "count": unsigned(p.index_bits + 1),
        "idx_base": unsigned(p.slot_bits),
        "threshold": unsigned(p.threshold_bits),
    })


def syn_lane_layout(p: CoreParams) -> data.StructLayout:
    """One synapse lane of a row: the weight, the word of its postsynaptic neuron (which sits in this
    lane) within its layer, and the mask bit above them (1 = the synapse exists)."""
    return data.StructLayout({"weight": signed(p.weight_bits), "offset": unsigned(p.offset_bits), "mask": unsigned(1)})


def index_lane_layout(p: CoreParams) -> data.StructLayout:
    """One index-memory entry: the first synapse row of a presynaptic neuron's list and its row count
    (``walk = "rows"``), or the rows of each lane's part of it (``walk = "lanes"``: ``counts[k]``,
    lane ``k``'s synapses, in rows ``first .. first + counts[k] - 1`` of its bank)."""
    if p.walk == "lanes":
        return data.StructLayout({"first": unsigned(p.row_bits),
                                  "counts": data.ArrayLayout(unsigned(p.count_bits), p.lanes)})
    return data.StructLayout({"first": unsigned(p.row_bits), "rows": unsigned(p.count_bits)})


def state_lane_layout(p: CoreParams) -> data.StructLayout:
    """One neuron-state lane: the membrane (TSA) or output integrator, the fired flag above it."""
    return data.StructLayout({"v": signed(p.store_bits), "fired": unsigned(1)})


def lane_shape(p: CoreParams, mem: HostMem) -> data.StructLayout | Shape:
    """The shape of one lane of memory ``mem``: what a host-port element (and a bus element of that
    memory) carries, bit for bit."""
    return {HostMem.SYNAPSE: syn_lane_layout(p), HostMem.STATE: state_lane_layout(p), HostMem.BIAS: signed(p.bias_bits),
            HostMem.ACC: signed(p.acc_bits), HostMem.INDEX: index_lane_layout(p)}[HostMem(mem)]


def _checked(shape, value, name: str):
    """``value`` as ints for ``Layout.const``, after checking every field fits (``const`` would
    truncate it silently)."""
    if isinstance(shape, data.StructLayout):
        if not isinstance(value, dict):
            raise ValueError(f"{name or 'value'} must be a dict of fields, not {value!r}")
        unknown = set(value) - {field for field, _ in shape}
        if unknown:
            raise ValueError(f"no field {name}{sorted(unknown)[0]!r}")
        return {field: _checked(f.shape, value[field], f"{name}{field}.") for field, f in shape if field in value}
    if isinstance(shape, data.ArrayLayout):
        if isinstance(value, (str, bytes, dict)) or not hasattr(value, "__len__") or len(value) != shape.length:
            raise ValueError(f"{name.rstrip('.') or 'value'} must be a sequence of {shape.length}, not {value!r}")
        return [_checked(shape.elem_shape, v, f"{name.rstrip('.')}[{i}].") for i, v in enumerate(value)]
    name = name.rstrip(".") or "value"
    try:
        value = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an int, not {value!r}") from None
    s = Shape.cast(shape)
    lo, hi = (-(2 ** (s.width - 1)), 2 ** (s.width - 1)) if s.signed else (0, 2**s.width)
    if not lo <= value < hi:
        raise ValueError(f"{name} = {value} does not fit its {s.width}-bit field ({s})")
    return value


def pack(shape, value) -> int:
    """The raw bits (an unsigned int) of ``value`` in ``shape``, as the hardware holds them: a dict of
    field values (nested for nested layouts; fields left out are 0) for a
    :class:`~amaranth.lib.data.StructLayout`, a sequence for an ``ArrayLayout``, an int for a plain
    shape; two's complement for signed ones. ``ValueError`` names a value that does not fit."""
    value = _checked(shape, value, "")
    if isinstance(shape, (data.StructLayout, data.ArrayLayout)):
        return shape.const(value).as_value().value
    return value & (2 ** Shape.cast(shape).width - 1)


def unpack(shape, raw: int):
    """The inverse of :func:`pack`: a dict for a StructLayout, a list for an ArrayLayout, an int otherwise."""
    if isinstance(shape, data.StructLayout):
        return {name: unpack(f.shape, raw >> f.offset) for name, f in shape}
    if isinstance(shape, data.ArrayLayout):
        w = Shape.cast(shape.elem_shape).width
        return [unpack(shape.elem_shape, raw >> (i * w)) for i in range(shape.length)]
    s = Shape.cast(shape)
    raw &= 2**s.width - 1
    return raw - (raw >> (s.width - 1) << s.width) if s.signed else raw
