"""A simulator-agnostic controller for one :class:`~cssnn.hw.core.Core`, used by the tests and the benchmark.

It plays the part the router/controller of the next issue will play in hardware: it loads a
:class:`~cssnn.sw.mapping.image.NetworkImage` through the host port, then runs an inference by walking
:meth:`NetworkImage.schedule`, feeding each layer-step the spikes the previous layer emitted in the
same step (plus an end marker), and reads back the membranes and counters.

The same async code drives the Amaranth simulator (:class:`AmaranthIO`) and cocotb on Verilator
(``cssnn.verif.cocotb_core.CocotbIO``): an *IO* object provides ``set(name, int)``, ``get(name) -> int``
(raw, unsigned bits of a flattened port such as ``"step__payload"``), ``await settle()`` (comb
outputs now reflect this cycle's inputs) and ``await tick()`` (one clock edge).

Stream rules are honoured: a valid payload is held until accepted; optional random gaps on the
input stream and random back-pressure on the output stream (``valid_prob``, ``ready_prob``) test that
nothing is dropped or duplicated.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np
from amaranth.lib import data

from cssnn.hw.core import COUNTERS
from cssnn.hw.params import READ_LATENCY, CoreParams, HostMem, Mode, config_layout, event_layout, pack, unpack
from cssnn.sw.mapping.image import NetworkImage, unpack_state

__all__ = ["CoreDriver", "InferenceResult", "AmaranthIO", "StepResult"]


@dataclass
class StepResult:
    events: list[tuple[int, int]]  # (index, sign in {-1, +1}) in emission order
    cycles: int                    # clocks from the accepted step config to done (inclusive)


@dataclass
class InferenceResult:
    spikes: list[np.ndarray]        # per spiking layer (T, n) int8
    membranes: list[np.ndarray]     # per layer, final membranes (encoder first, output last)
    fired: list[np.ndarray]         # per spiking layer, final fired flags
    logits: np.ndarray
    argmax: int
    counters: dict
    #: per layer-step (t, layer, events in, cycles, spikes out, synapse rows of the events' lists)
    step_cycles: list[tuple[int, int, int, int, int, int]] = field(default_factory=list)


class CoreDriver:
    """Drives a core through an IO adapter (see the module docstring)."""

    def __init__(self, io, params: CoreParams, *, seed: int | None = None, valid_prob: float = 1.0,
                 ready_prob: float = 1.0, timeout: int = 1_000_000):
        self.io, self.p = io, params
        self.rng = random.Random(seed)
        self.valid_prob, self.ready_prob, self.timeout = valid_prob, ready_prob, timeout
        self.cfg_layout = config_layout(params)
        self.ev_layout = event_layout(params)

    # ---- host port ----
    async def host_write(self, mem: HostMem, addr: int, lane: int, raw: int) -> None:
        io = self.io
        io.set("host__sel", int(mem)); io.set("host__addr", addr); io.set("host__lane", lane)
        io.set("host__wdata", raw); io.set("host__we", 1)
        await io.tick()
        io.set("host__we", 0)

    async def host_read(self, mem: HostMem, addr: int, lane: int) -> int:
        return (await self.host_read_many([(mem, addr, lane)]))[0]

    async def host_read_many(self, reqs) -> list[int]:
        """Pipelined reads: one request per clock, data ``READ_LATENCY`` clocks later.

        Every clock follows set -> settle -> get -> tick (cocotb forbids writes after a read-only
        settle within the same clock)."""
        io, out = self.io, []
        reqs = list(reqs)
        io.set("host__we", 0)
        for i in range(len(reqs) + READ_LATENCY):
            if i < len(reqs):
                mem, addr, lane = reqs[i]
                io.set("host__sel", int(mem)); io.set("host__addr", addr); io.set("host__lane", lane)
            if i >= READ_LATENCY:
                await io.settle()
                out.append(io.get("host__rdata"))
            await io.tick()
        return out

    async def load(self, image: NetworkImage) -> None:
        for w in image.host_writes():
            await self.host_write(*w)

    async def clear_counters(self) -> None:
        self.io.set("clear", 1)
        await self.io.tick()
        self.io.set("clear", 0)

    async def counters(self) -> dict:
        """Counters and argmax (``argmax_index``), sampled once the argmax has drained; ends with a
        clock edge."""
        await self.io.settle()
        while not self.io.get("argmax_idle"):
            await self.io.tick()
            await self.io.settle()
        out = {name: self.io.get(f"cnt_{name}") for name in COUNTERS}
        out["argmax_index"] = self.io.get("argmax_index")
        await self.io.tick()
        return out

    # ---- one layer-step ----
    async def run_step(self, config: dict, events: list[tuple[int, int]]) -> StepResult:
        """Hand ``config`` to the core, stream ``events`` ((index, sign) pairs) and an end marker,
        collect the output events until ``done``."""
        io, rng = self.io, self.rng
        evs = [pack(self.ev_layout, {"index": i, "neg": int(s < 0)}) for i, s in events]
        evs.append(pack(self.ev_layout, {"end": 1}))
        cfg_pending = True
        io.set("step__payload", pack(self.cfg_layout, config))
        io.set("step__valid", 1)
        k, offering, outs, cycles, started = 0, False, [], 0, False
        for _ in range(self.timeout):
            if not offering and k < len(evs) and started and (self.valid_prob >= 1 or rng.random() < self.valid_prob):
                offering = True
                io.set("events__payload", evs[k])
            io.set("events__valid", int(offering))
            ready = int(self.ready_prob >= 1 or rng.random() < self.ready_prob)
            io.set("out__ready", ready)
            await io.settle()
            if cfg_pending and io.get("step__ready"):
                cfg_pending = False
                accepted_now = True
            else:
                accepted_now = False
            if offering and io.get("events__ready"):
                offering = False
                k += 1
            if ready and io.get("out__valid"):
                ev = unpack(self.ev_layout, io.get("out__payload"))
                if not ev["end"]:
                    outs.append((ev["index"], -1 if ev["neg"] else 1))
            done = io.get("done")
            await io.tick()
            if started:
                cycles += 1
            if accepted_now:
                started = True
                io.set("step__valid", 0)
            if done:
                io.set("events__valid", 0)
                io.set("out__ready", 0)
                if k != len(evs):
                    raise AssertionError(f"core finished the step after {k} of {len(evs)} input events")
                return StepResult(outs, cycles)
        raise TimeoutError(f"core did not finish a step within {self.timeout} cycles")

    # ---- one inference ----
    async def infer(self, image: NetworkImage, x) -> InferenceResult:
        """Run one sample (integer input ``x``) through the loaded ``image``; return spikes, membranes,
        logits, argmax and counters."""
        p, net = self.p, image.net
        T = net.timesteps
        for w in image.input_writes(x):
            await self.host_write(*w)
        await self.clear_counters()
        spikes = [np.zeros((T, pl.count), np.int8) for pl in image.layers[:-1]]
        step_cycles = []
        for t, todo in enumerate(image.schedule()):
            outs: dict[int, list] = {}
            for l, cfg in todo:
                evs = outs.get(l - 1, []) if l > 0 else []
                res = await self.run_step(cfg, evs)
                outs[l] = res.events
                step_cycles.append((t, l, len(evs), res.cycles, len(res.events), image.list_rows(l, [i for i, _ in evs])))
                if cfg["mode"] == Mode.FIRE:
                    last = -1
                    for idx, s in res.events:
                        if idx <= last or idx >= image.layers[l].count:
                            raise AssertionError(f"layer {l} step {t}: spike index {idx} out of order or range")
                        spikes[l][t - l - 1, image.neuron_at(l, idx)] = s
                        last = idx
                elif res.events:
                    raise AssertionError(f"layer {l} emitted spikes in mode {Mode(cfg['mode']).name}")
        counters = await self.counters()
        reqs = [(HostMem.STATE, *image.neuron_addr(pl.layer, j)) for pl in image.layers for j in range(pl.count)]
        raws = await self.host_read_many(reqs)
        membranes, fired, i = [], [], 0
        for pl in image.layers:
            st = [unpack_state(p, r) for r in raws[i:i + pl.count]]
            i += pl.count
            membranes.append(np.array([v for v, _ in st], np.int64))
            fired.append(np.array([f for _, f in st], bool))
        return InferenceResult(spikes, membranes, fired[:-1], membranes[-1].copy(), counters["argmax_index"],
                               counters, step_cycles)


class AmaranthIO:
    """IO adapter for an Amaranth simulator testbench (``ctx`` from ``sim.add_testbench``)."""

    def __init__(self, ctx, dut):
        self.ctx = ctx
        self.ports = {"__".join(path): (value.as_value() if isinstance(value, data.View) else value)
                      for path, _flow, value in dut.signature.flatten(dut)}

    def set(self, name: str, value: int) -> None:
        self.ctx.set(self.ports[name], value)

    def get(self, name: str) -> int:
        sig = self.ports[name]
        v = self.ctx.get(sig)
        return v & (2 ** len(sig) - 1)

    async def settle(self) -> None:
        return None

    async def tick(self) -> None:
        await self.ctx.tick()
