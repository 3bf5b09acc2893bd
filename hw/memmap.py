"""The accelerator's memory map: what the host link can read and write, and how wide each element is.

One idea: *the address space seen from the host*. The accelerator top (:mod:`cssnn.hw.accelerator`)
implements it on its ``bus`` port, the host link (:mod:`cssnn.hw.link`) range-checks commands
against it, and the driver (:mod:`cssnn.sw.host.accelerator`) loads networks through it, so every width and
depth below is defined here once.

Address space: a selector :class:`Sel` picks a memory; ``addr`` is a flat element index in it.
For the neuron memories (STATE, BIAS, ACC, INDEX) element ``word * N + lane`` is neuron lane
``lane`` of word ``word`` (its slot); for the synapse memory element ``row * N + lane`` is lane ``lane`` of row ``row``.
Every element is ``elem_bits(sel)`` raw bits (two's complement for signed values), carried over the
link as ``elem_bytes(sel)`` little-endian bytes.

Bus timing (one element per clock): ``rdata`` is the element addressed (``sel``, ``addr``)
``READ_LATENCY`` (:mod:`cssnn.hw.params`, four) clocks earlier: block-RAM outputs are registered before any select;
``we`` writes ``wdata`` (in this clock; the core's memories a clock later). Memory accesses act only while ``busy`` is
low. ``start`` (one clock, while idle) runs one inference: the schedule of SEMANTICS.md, T + L steps;
``done`` pulses once when it is finished.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from amaranth.hdl import Shape
from amaranth.lib import data, enum, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from cssnn.hw.learn import LearnMem, LearnParams
from cssnn.hw.params import CoreParams, HostMem, config_layout, lane_shape

__all__ = ["Sel", "Reg", "RunMode", "Counter", "Route", "AccelParams", "layer_layout", "bus_signature",
           "PROTOCOL_VERSION", "ORDERS", "CORE_SELS", "LEARN_SELS", "learn_mem", "MODE_BITS"]

#: Version of the memory map and the host protocol built on it (reported by IDENTIFY).
PROTOCOL_VERSION = 6

#: Evaluation orders of the controller (:attr:`AccelParams.order`).
ORDERS = ("chain", "waves")



class Sel(enum.IntEnum, shape=4):
    """Memories on the bus (the shape of its ``sel``). The core's five memories keep their host-port
    selector (:class:`~cssnn.hw.params.HostMem`): a selector below :data:`CORE_SELS` is the core's."""

    SYNAPSE = HostMem.SYNAPSE.value  #: rows x N elements: weight (signed Bw), target word, mask bit above them
    STATE = HostMem.STATE.value      #: words x N: membrane (signed Bm), fired flag above it
    BIAS = HostMem.BIAS.value        #: words x N: bias (signed Bb); the encoder's bias is the sample's input x
    ACC = HostMem.ACC.value          #: words x N: per-step accumulator (signed Bi)
    INDEX = HostMem.INDEX.value      #: words x N: a presynaptic neuron's synapse rows (first row, row count or counts)
    LAYER = 5    #: max_layers entries of :func:`layer_layout` (layer 0 = encoder ... layer L = output)
    ROUTE = 6    #: max_layers entries: :class:`Route` destination mask of each layer's output spikes
    REG = 7      #: registers, :class:`Reg`
    COUNTER = 8  #: read-only counters of the last run, :class:`Counter`
    # The learning engine's memories (:class:`~cssnn.hw.learn.LearnMem`, selector LEARN_SELS + mem);
    # depth 0 when the accelerator has none.
    LEARN_SYN = 9      #: neurons x stride: (pre, weight) entries of each neuron's synapse list
    LEARN_LEN = 10     #: neurons: synapses in each list
    LEARN_THETA = 11   #: neurons: thresholds
    LEARN_TIME = 12    #: inputs: the sample's spike times
    LEARN_TABLE = 13   #: 2 (M + 1): LTP then LTD steps
    LEARN_RESULT = 14  #: neurons: first-spike times of the last pass (read-only)


#: Selectors of the core's memories: 0 .. CORE_SELS - 1.
CORE_SELS = len(HostMem)
#: The first learning-engine selector: LearnMem ``m`` is selector ``LEARN_SELS + m``.
LEARN_SELS = Sel.LEARN_SYN.value
assert all(Sel(LEARN_SELS + m).name == f"LEARN_{m.name}" for m in LearnMem)


def learn_mem(sel: Sel) -> LearnMem | None:
    """The learning-engine memory a selector picks (None: not one of the engine's)."""
    return LearnMem(sel - LEARN_SELS) if sel >= LEARN_SELS else None


class Reg(enum.IntEnum):
    """The registers; MODE and the rule's exist only with a learning engine (REG's depth says)."""

    TIMESTEPS = 0    #: T, time steps per inference (1 .. 2**timestep_bits - 1)
    LAYERS = 1       #: L, weight layers (1 .. max_layers - 1); layer table entries 0 .. L are used
    MODE = 2         #: what ``start`` runs: :class:`RunMode`
    PRUNE_BELOW = 3  #: learning rule (SEMANTICS.md section 8): prune a depressed weight below this; 0 never
    THETA_UP = 4     #: learning rule: the winner's threshold rise
    THETA_DOWN = 5   #: learning rule: every threshold's fall per learning sample
    THETA_MIN = 6    #: learning rule: the lowest threshold


class RunMode(enum.IntEnum):
    """Reg.MODE: what one ``start`` (the link's RUN) does."""

    INFER = 0     #: one inference on the core (T + L steps)
    LEARN = 1     #: the learning engine learns the sample in LEARN_TIME
    FEATURES = 2  #: the learning engine only writes the sample's first-spike times (LEARN_RESULT)


#: Reg.MODE's width.
MODE_BITS = 2


class Counter(enum.IntEnum):
    RUN_CYCLES = 0    #: clocks from start to done (the inference latency)
    CORE_CYCLES = 1   #: clocks the core was busy
    EVENTS = 2        #: input spike events processed
    SYNOPS = 3        #: synaptic operations (unmasked synapses touched)
    SPIKES = 4        #: spikes emitted
    STEPS = 5         #: layer-steps run
    ARGMAX_INDEX = 6  #: class: index of the largest output integrator (lowest index on ties)
    ARGMAX_VALUE = 7  #: its value (signed Bm, raw)
    LEARN_CYCLES = 8  #: learning engine: clocks of the last pass
    LEARN_SYNOPS = 9  #: learning engine: synapse entries read in the last pass (integration and update)
    WINNER = 10       #: learning engine: the last pass's winner (``neurons``: none fired)
    FIRE_TIME = 11    #: learning engine: the winner's first-spike time
    PRUNED = 12       #: learning engine: synapses the last pass pruned


class Route(enum.IntFlag):
    """Destinations of the spike router (bit k = router port k)."""

    LOOPBACK = 1  #: back into the core as the next layer's input (the same step)
    TAP = 2       #: the top's ``tap`` stream (debugging, simulation)


ROUTE_PORTS = 2


def layer_layout(p: CoreParams) -> data.StructLayout:
    """One layer-table entry: the layer's placement (the step config without ``mode`` and
    ``encoder``, which the controller chooses per step)."""
    fields = {name: f.shape for name, f in config_layout(p) if name not in ("mode", "encoder")}
    return data.StructLayout(fields)


@dataclass(frozen=True)
class AccelParams:
    """Parameters of the accelerator top: a core plus the controller's tables and the router FIFOs.

    core           the :class:`CoreParams`
    max_layers     entries of the layer and route tables (encoder + hidden + output layers)
    timestep_bits  width of the T register
    fifo_depth     loopback FIFO depth: must hold what the evaluation order keeps in it
                   (:meth:`loopback_entries`); default enough for any network the core holds
    tap_depth      depth of the tap FIFO
    learn          the learning engine's :class:`~cssnn.hw.learn.LearnParams` (None: no engine)
    order          the controller's evaluation order (:data:`ORDERS`, docs/SEMANTICS.md section 4):
                   ``"chain"``, global step by global step, or ``"waves"``, layer-step ``(l, t)`` in
                   wave ``t + l`` (no step waits for the spikes of the one before it; a larger FIFO)
    """

    core: CoreParams = field(default_factory=CoreParams)
    max_layers: int = 8
    timestep_bits: int = 8
    fifo_depth: int | None = None
    tap_depth: int = 16
    learn: LearnParams | None = None
    order: str = "chain"

    def __post_init__(self):
        if self.learn is not None and not isinstance(self.learn, LearnParams):
            raise TypeError(f"learn must be a LearnParams or None, not {self.learn!r}")
        if not isinstance(self.core, CoreParams):
            raise TypeError(f"core must be a CoreParams, not {self.core!r}")
        for name in ("max_layers", "timestep_bits", "tap_depth"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool):
                raise ValueError(f"{name} must be an int, not {v!r}")
        if not 2 <= self.max_layers <= 256:
            raise ValueError(f"max_layers must be in [2, 256], not {self.max_layers}")
        if not 1 <= self.timestep_bits <= 16:
            raise ValueError(f"timestep_bits must be in [1, 16], not {self.timestep_bits}")
        if self.tap_depth < 1:
            raise ValueError(f"tap_depth must be at least 1, not {self.tap_depth}")
        if self.order not in ORDERS:
            raise ValueError(f"order must be one of {', '.join(map(repr, ORDERS))}, not {self.order!r}")
        if self.fifo_depth is None:
            # the most any network the core holds needs: its spiking layers have at most `neurons`
            # neurons and max_layers - 1 end markers together
            n = self.core.neurons
            object.__setattr__(self, "fifo_depth", n + 1 if self.order == "chain" else 2 * n + self.max_layers)
        if not isinstance(self.fifo_depth, int) or self.fifo_depth < 2:
            raise ValueError(f"fifo_depth must be an int of at least 2, not {self.fifo_depth!r}")

    @property
    def layer_bits(self) -> int:
        return max(1, ceil_log2(self.max_layers))

    def loopback_entries(self, layer_sizes) -> int:
        """Loopback FIFO entries an inference needs, from the neurons of its spiking layers (all but
        the output layer). A step's output is its spikes (at most one per neuron) and its end marker.
        ``"chain"`` holds one step's output at a time; ``"waves"`` (layers ascending within a wave) the
        output of every spiking layer's step of the previous wave, and on top the running step's own."""
        one = max(int(n) + 1 for n in layer_sizes)
        return one if self.order == "chain" else sum(int(n) + 1 for n in layer_sizes) + one

    def elem_bits(self, sel: Sel) -> int:
        p = self.core
        if sel < CORE_SELS:
            return Shape.cast(lane_shape(p, HostMem(sel))).width
        if learn_mem(sel) is not None:
            return 1 if self.learn is None else self.learn.elem_bits(learn_mem(sel))
        lb = (self.learn.potential_bits, self.learn.weight_bits) if self.learn else ()
        return {
            Sel.LAYER: layer_layout(p).size,
            Sel.ROUTE: ROUTE_PORTS,
            Sel.REG: max(self.timestep_bits, self.layer_bits + 1, MODE_BITS, *lb),
            Sel.COUNTER: max(p.counter_bits, p.store_bits, p.index_bits),
        }[Sel(sel)]

    def elem_bytes(self, sel: Sel) -> int:
        return -(-self.elem_bits(sel) // 8)

    def depth(self, sel: Sel) -> int:
        """Elements of memory ``sel``."""
        p = self.core
        if learn_mem(sel) is not None:
            return 0 if self.learn is None else self.learn.depth(learn_mem(sel))
        return {
            Sel.SYNAPSE: p.synapse_rows * p.lanes,
            Sel.STATE: p.neurons, Sel.BIAS: p.neurons, Sel.ACC: p.acc_words * p.lanes, Sel.INDEX: p.neurons,
            Sel.LAYER: self.max_layers, Sel.ROUTE: self.max_layers,
            Sel.REG: len(Reg) if self.learn else Reg.MODE, Sel.COUNTER: len(Counter),
        }[Sel(sel)]

    @staticmethod
    def writable(sel: Sel) -> bool:
        return Sel(sel) not in (Sel.COUNTER, Sel.LEARN_RESULT)

    @property
    def bus_addr_bits(self) -> int:
        return max(1, max(ceil_log2(max(1, self.depth(s))) for s in Sel))

    @property
    def bus_data_bits(self) -> int:
        return max(self.elem_bits(s) for s in Sel)


def bus_signature(ap: AccelParams) -> wiring.Signature:
    """The accelerator's bus, from the host link's side (see the module docstring for timing)."""
    return wiring.Signature({
        "sel": Out(Sel), "addr": Out(ap.bus_addr_bits), "wdata": Out(ap.bus_data_bits), "we": Out(1),
        "rdata": In(ap.bus_data_bits),
        "start": Out(1), "busy": In(1), "done": In(1),
    })
