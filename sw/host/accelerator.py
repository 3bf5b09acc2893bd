"""The host driver: one API for a board and for the simulators.

    acc = Accelerator(transport)      # SerialTransport, AmaranthTransport, VerilatorTransport, ...
    acc.load(snn)                     # checks the hardware's IDENTIFY reply against the network first
    result = acc.infer(x)             # logits, class, cycles, events, synaptic ops
    batch = acc.infer_batch(xs)

    acc.load_learning(layer)          # a LearningLayer (cssnn.sw.spec.stdp) into the learning engine
    run = acc.learn(xs, epochs=1)     # on-chip STDP with pruning; per-sample winners and cycles
    times = acc.features(xs).times    # every neuron's first-spike time per sample
    layer = acc.weights()             # the layer as the hardware holds it now

Everything goes through :class:`cssnn.sw.host.protocol.Client` (the sans-IO codec of docs/PROTOCOL.md)
and the memory map of :mod:`cssnn.hw.memmap`; the layout of a network in the accelerator's memories
is :func:`cssnn.sw.mapping.image.place_network`, the same one every simulation test uses. A network that
does not fit the hardware is rejected with :class:`DoesNotFit` before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from cssnn.hw.learn import LearnMem
from cssnn.hw.link.wire import Identity
from cssnn.hw.memmap import LEARN_SELS, AccelParams, Counter, Reg, RunMode, Sel
from cssnn.sw.host.protocol import Client
from cssnn.sw.mapping.image import NetworkImage, place_network, unpack_state
from cssnn.sw.mapping.learning import check_learning_fits, layer_from_memories, layer_writes, rule_registers, time_writes
from cssnn.sw.mapping.requirements import DoesNotFit, check_fits
from cssnn.sw.spec.golden import quantize_input
from cssnn.sw.spec.network import SpikingNetwork, load_network
from cssnn.sw.spec.stdp import LearningLayer, load_learning, sample_order, ttfs_encode

#: The learning engine's counters, consecutive in COUNTER.
LEARN_COUNTERS = (Counter.LEARN_CYCLES, Counter.LEARN_SYNOPS, Counter.WINNER, Counter.FIRE_TIME, Counter.PRUNED)
assert list(LEARN_COUNTERS) == list(range(Counter.LEARN_CYCLES, Counter.PRUNED + 1))

__all__ = ["Accelerator", "Inference", "BatchInference", "LearningRun", "Features", "DeviceReset", "runs"]


class DeviceReset(RuntimeError):
    """The accelerator lost the loaded network (it was reset); :meth:`Accelerator.load` it again."""


@dataclass(frozen=True)
class Inference:
    """One sample's answer from the hardware."""

    logits: np.ndarray   # output integrators (int64), the golden model's logits bit for bit
    cls: int             # argmax as computed by the hardware (lowest index on ties)
    cycles: int          # clocks from start to done (RUN_CYCLES)
    core_cycles: int     # clocks the core was busy
    events: int          # input spike events processed
    synops: int          # synaptic operations
    spikes: int          # spikes emitted
    steps: int           # layer-steps run

    def as_dict(self) -> dict:
        return {"class": self.cls, "logits": self.logits.tolist(), "cycles": self.cycles,
                "core_cycles": self.core_cycles, "events": self.events, "synaptic_ops": self.synops,
                "spikes": self.spikes, "steps": self.steps}


@dataclass(frozen=True)
class BatchInference:
    """A batch's answers; what was not read back (:meth:`Accelerator.infer_batch`'s ``counters`` and
    ``logits``) is None."""

    logits: np.ndarray | None   # (B, n_outputs) int64
    classes: np.ndarray         # (B,)
    cycles: np.ndarray | None   # (B,) RUN_CYCLES per sample
    events: np.ndarray | None
    synops: np.ndarray | None

    @classmethod
    def of(cls, results: list[Inference], n_outputs: int) -> BatchInference:
        """The batch of single-sample ``results``."""
        if not results:
            return cls(np.zeros((0, n_outputs), np.int64), *(np.zeros(0, np.int64) for _ in range(4)))
        return cls(np.stack([r.logits for r in results]), np.array([r.cls for r in results]),
                   np.array([r.cycles for r in results]), np.array([r.events for r in results]),
                   np.array([r.synops for r in results]))


@dataclass(frozen=True)
class LearningRun:
    """What :meth:`Accelerator.learn` measured, per sample in the order streamed (hardware counters)."""

    winners: np.ndarray    #: winner per sample (-1: none fired)
    cycles: np.ndarray     #: learning-engine clocks per sample
    synops: np.ndarray     #: synapse entries read per sample
    pruned: np.ndarray     #: synapses pruned per sample

    @property
    def total_cycles(self) -> int:
        return int(self.cycles.sum())


@dataclass(frozen=True)
class Features:
    times: np.ndarray      #: (B, neurons) first-spike times (window: none)
    cycles: np.ndarray     #: learning-engine clocks per sample


def runs(writes) -> list[tuple[Sel, int, list[int]]]:
    """Group ``(sel, addr, raw)`` writes into runs of consecutive addresses: one WRITE command each
    (the client splits runs longer than a frame)."""
    out: list[tuple[Sel, int, list[int]]] = []
    for sel, addr, raw in writes:
        if out and out[-1][0] == sel and out[-1][1] + len(out[-1][2]) == addr:
            out[-1][2].append(raw)
        else:
            out.append((Sel(sel), addr, [raw]))
    return out


class Accelerator:
    """A cssnn accelerator behind ``transport`` (see the module docstring)."""

    def __init__(self, transport, *, retries: int = 3):
        self.client = Client(transport, retries=retries)
        self._identity: Identity | None = None
        self.image: NetworkImage | None = None
        self.learning: LearningLayer | None = None
        self._mode: RunMode | None = None  # Reg.MODE as last written (None: unknown, write it)
        self._window: tuple | None = None  # INFER's reply window as last SETUP (None: unknown)

    # ---- hardware ----
    def identify(self) -> Identity:
        """The hardware's IDENTIFY reply (protocol version, parameters); asked once, then cached."""
        if self._identity is None:
            self._identity = self.client.identify()
        return self._identity

    @property
    def params(self) -> AccelParams:
        return self.identify().params

    # ---- network ----
    def check(self, net: SpikingNetwork) -> None:
        """Raise :class:`DoesNotFit` naming the first reason ``net`` cannot run on this hardware."""
        try:
            check_fits(net, self.params)
        except DoesNotFit as e:
            raise DoesNotFit(f"the network does not fit this accelerator: {e}") from None

    def load(self, net: SpikingNetwork | str | Path) -> NetworkImage:
        """Check ``net`` (or a network file) against the hardware, then write it: synapses, biases,
        layer and route tables, T and L. Nothing is written if it does not fit."""
        if not isinstance(net, SpikingNetwork):
            net = load_network(net)
        self.check(net)
        image = place_network(net, self.params.core)
        self.image = None  # a half-loaded network must not be used if a write fails
        if self.identify().pipelined:
            # SETUP first: a reset from here on clears the window, and the next INFER's reply shows it
            self._window = self._reply_window(image, logits=True)
            self.client.setup(*self._window)
        self.client.write_many(runs(image.bus_writes(self.params)))
        self.image = image
        return image

    def _reply_window(self, image: NetworkImage, *, logits: bool) -> tuple[Sel, int, int]:
        """INFER's reply window: the output layer's states, or ARGMAX_VALUE alone. Never empty, so that
        it differs from the window after a reset (the class alone)."""
        out = image.layers[-1]
        if logits:
            return Sel.STATE, out.neuron_base * self.params.core.lanes, out.count
        return Sel.COUNTER, int(Counter.ARGMAX_VALUE), 1

    @property
    def net(self) -> SpikingNetwork:
        if self.image is None:
            raise RuntimeError("no network loaded: call load() first")
        return self.image.net

    # ---- inference ----
    def encode(self, x) -> np.ndarray:
        """Integer input codes for one sample: integers pass through (range-checked by the layout),
        floats are features in [0, 1], quantised exactly as the golden model does."""
        x = np.asarray(x)
        if x.ndim != 1:
            x = x.reshape(-1)
        if not np.issubdtype(x.dtype, np.integer):
            x = quantize_input(x, self.net.input_bits)
        if x.size != self.net.n_inputs:
            raise ValueError(f"input has {x.size} values, the network takes {self.net.n_inputs}")
        return x.astype(np.int64)

    def infer(self, x) -> Inference:
        """Run one sample (integer codes or [0, 1] features) and read its answer back."""
        if self.image is None:
            raise RuntimeError("no network loaded: call load() first")
        image, x = self.image, self.encode(x)
        if self.params.learn:
            self._set_mode(RunMode.INFER)
        for sel, addr, values in runs(image.bus_input_writes(x)):
            self.client.write(sel, addr, values)
        self.client.run()
        c = self.client.read(Sel.COUNTER, 0, len(Counter))
        out = image.layers[-1]
        n = self.params.core.lanes
        raws = self.client.read(Sel.STATE, out.neuron_base * n, out.count)
        logits = np.array([unpack_state(self.params.core, r)[0] for r in raws], np.int64)
        return Inference(logits, int(c[Counter.ARGMAX_INDEX]), int(c[Counter.RUN_CYCLES]), int(c[Counter.CORE_CYCLES]),
                         int(c[Counter.EVENTS]), int(c[Counter.SYNOPS]), int(c[Counter.SPIKES]), int(c[Counter.STEPS]))

    def infer_batch(self, xs, *, counters: bool = True, logits: bool = True, progress=None) -> BatchInference:
        """Run every sample of ``xs`` (B, n_inputs); ``progress`` (e.g. a tqdm bar) is updated per sample.

        ``counters``: also read each sample's counters (cycles, events, synaptic ops): four round
        trips per sample. Without them, on a protocol-4 device, every sample is an INFER request
        sent ahead of the replies (:meth:`Client.infer <cssnn.sw.host.protocol.Client.infer>`), so
        the line stays busy and the host waits once whatever the batch size. Its reply window (the
        logits, or ``ARGMAX_VALUE`` with ``logits=False``) was set by :meth:`load`; a batch that
        changes it first sends SETUP and reads T and L back (two round trips more)."""
        if counters or not self.batchable():
            results = []
            for x in xs:
                results.append(self.infer(x))
                if progress is not None:
                    progress.update(1)
            batch = BatchInference.of(results, self.net.n_outputs)
            return batch if logits else replace(batch, logits=None)
        image, p = self.image, self.params
        if p.learn:
            self._set_mode(RunMode.INFER)
        writes = [image.bus_input_writes(self.encode(x)) for x in xs]
        if not writes:
            return BatchInference(np.zeros((0, self.net.n_outputs), np.int64) if logits else None,
                                  np.zeros(0, np.int64), None, None, None)
        window = self._reply_window(image, logits=logits)
        if window != self._window:   # another window: SETUP, and check the network is still there
            self._window = None
            self.client.setup(*window)
            self._check_loaded()
            self._window = window
        ((sel, addr, _),) = runs(writes[0])
        payloads = self.client.infer(sel, addr, [[raw for _s, _a, raw in w] for w in writes], progress=progress)
        cb, wb = p.elem_bytes(Sel.COUNTER), p.elem_bytes(window[0])
        if any(len(r) != cb + window[2] * wb for r in payloads):
            self.image = self._window = None
            raise DeviceReset("the accelerator was reset during the batch (an INFER reply came without its window): "
                              "load the network again")
        classes = np.array([int.from_bytes(r[:cb], "little") for r in payloads], np.int64)
        lg = None
        if logits:
            lg = np.array([[unpack_state(p.core, int.from_bytes(r[cb + j * wb:cb + (j + 1) * wb], "little"))[0]
                            for j in range(window[2])] for r in payloads], np.int64).reshape(len(payloads), window[2])
        return BatchInference(lg, classes, None, None, None)

    def _check_loaded(self) -> None:
        """Raise :class:`DeviceReset` if the network's T and L registers no longer hold what was loaded."""
        regs = {a: v for sel, a, v in self.image.bus_writes(self.params) if sel == Sel.REG}
        if self.client.read(Sel.REG, int(Reg.TIMESTEPS), 2) != [regs[Reg.TIMESTEPS], regs[Reg.LAYERS]]:
            self.image = None
            raise DeviceReset("the accelerator was reset since the network was loaded: load it again")

    def batchable(self) -> bool:
        """Whether :meth:`infer_batch` can send the loaded network's inputs as INFER requests: a
        protocol-4 device, inputs of one byte (the INFER element) written to consecutive addresses."""
        if self.image is None:
            raise RuntimeError("no network loaded: call load() first")
        return (self.identify().pipelined and self.net.input_limit <= 0xFF
                and len(runs(self.image.bus_input_writes(np.zeros(self.net.n_inputs, np.int64)))) == 1)

    # ---- on-chip learning ----
    def load_learning(self, layer: LearningLayer | str | Path) -> None:
        """Check ``layer`` (or a learning-layer file) against the learning engine, then write it: synapse
        lists, thresholds, the rule's tables and registers. Nothing is written if it does not fit."""
        if not isinstance(layer, LearningLayer):
            layer = load_learning(layer)
        try:
            check_learning_fits(layer, self.params.learn)
        except DoesNotFit as e:
            raise DoesNotFit(f"the learning layer does not fit this accelerator: {e}") from None
        self.learning = None
        for mem, addr, values in layer_writes(layer, self.params.learn):
            self.client.write(LEARN_SELS + mem, addr, values)
        for name, v in rule_registers(layer.rule).items():
            self.client.write(Sel.REG, Reg[name.upper()], [v])
        self.learning = layer

    def _learning_pass(self, mode: RunMode, times) -> dict:
        """Write the sample's spike times, run ``mode``, return the engine's counters by name."""
        for mem, addr, values in time_writes(times, self.params.learn):
            self.client.write(LEARN_SELS + mem, addr, values)
        self._set_mode(mode)
        self.client.run()
        raws = self.client.read(Sel.COUNTER, LEARN_COUNTERS[0], len(LEARN_COUNTERS))
        return dict(zip(LEARN_COUNTERS, raws))

    def _set_mode(self, mode: RunMode) -> None:
        if self._mode != mode:
            self.client.write(Sel.REG, Reg.MODE, [int(mode)])
            self._mode = mode

    def _times(self, xs) -> np.ndarray:
        if self.learning is None:
            raise RuntimeError("no learning layer loaded: call load_learning() first")
        t = ttfs_encode(np.asarray(xs).reshape(len(xs), -1), self.learning.rule.window)
        if t.shape[1] != self.learning.n_in:
            raise ValueError(f"samples have {t.shape[1]} values, the learning layer takes {self.learning.n_in}")
        return t

    def learn(self, xs, *, epochs: int = 1, seed: int = 0, progress=None) -> LearningRun:
        """Learn from ``xs`` (features in [0, 1], or integer spike times) on chip for ``epochs`` passes
        in :func:`~cssnn.sw.spec.stdp.sample_order` (the golden model's order for the same seed)."""
        times = self._times(xs)
        rows = []
        for order in sample_order(len(times), epochs, seed):
            for s in order:
                c = self._learning_pass(RunMode.LEARN, times[s])
                rows.append(c)
                if progress is not None:
                    progress.update(1)
        n = self.params.learn.neurons
        col = {k: np.array([r[k] for r in rows], np.int64) for k in LEARN_COUNTERS}
        return LearningRun(np.where(col[Counter.WINNER] == n, -1, col[Counter.WINNER]), col[Counter.LEARN_CYCLES],
                           col[Counter.LEARN_SYNOPS], col[Counter.PRUNED])

    def features(self, xs, *, progress=None) -> Features:
        """Every neuron's first-spike time for each sample (no learning, no WTA)."""
        times, out, cycles = self._times(xs), [], []
        n = self.params.learn.neurons
        for t in times:
            c = self._learning_pass(RunMode.FEATURES, t)
            out.append(self.client.read(Sel.LEARN_RESULT, 0, n))
            cycles.append(c[Counter.LEARN_CYCLES])
            if progress is not None:
                progress.update(1)
        return Features(np.array(out, np.int64).reshape(-1, n), np.array(cycles, np.int64))

    def weights(self) -> LearningLayer:
        """The learning layer as the engine holds it now (weights, existence mask, thresholds)."""
        if self.learning is None:
            raise RuntimeError("no learning layer loaded: call load_learning() first")
        lp = self.params.learn
        syn = self.client.read(Sel.LEARN_SYN, 0, lp.depth(LearnMem.SYN))
        lens = self.client.read(Sel.LEARN_LEN, 0, lp.neurons)
        theta = self.client.read(Sel.LEARN_THETA, 0, lp.neurons)
        return layer_from_memories(lp, syn, lens, theta, self.learning)

    def close(self) -> None:
        self.client.transport.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
