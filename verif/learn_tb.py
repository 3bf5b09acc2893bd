"""A simulator-agnostic driver of one :class:`~cssnn.hw.learn.LearningEngine` through its host port,
for the tests: the same async code drives the Amaranth simulator (:class:`~cssnn.verif.core_tb.AmaranthIO`)
and cocotb on Verilator (:class:`~cssnn.verif.cocotb_core.CocotbIO`); see :mod:`cssnn.verif.core_tb`
for the IO adapter (``set``/``get`` of flattened port names, ``tick``)."""

from __future__ import annotations

from dataclasses import dataclass

from cssnn.hw.learn import HOST_LATENCY, LearnMem, LearnParams
from cssnn.sw.mapping.learning import layer_from_memories, layer_writes, rule_registers, time_writes
from cssnn.sw.spec.stdp import LearningLayer

__all__ = ["EngineDriver", "EnginePass", "random_layer", "check_learning"]


@dataclass(frozen=True)
class EnginePass:
    cycles: int
    synops: int
    winner: int   #: -1: none fired
    fire_time: int
    pruned: int
    result: list[int] | None = None


class EngineDriver:
    """Host-port writes and reads, a pass (``start`` .. ``done``), whole layers in and out."""

    def __init__(self, io, lp: LearnParams):
        self.io, self.lp = io, lp
        self.widths = {"sel": 3, "addr": lp.addr_bits, "wdata": lp.data_bits}

    async def write(self, mem: LearnMem, addr: int, values) -> None:
        io = self.io
        io.set("host__sel", int(mem))
        io.set("host__we", 1)
        for i, v in enumerate(values):
            io.set("host__addr", addr + i)
            io.set("host__wdata", int(v))
            await io.tick()
        io.set("host__we", 0)

    async def read(self, mem: LearnMem, addr: int, count: int) -> list[int]:
        """Pipelined: an address a clock, its data HOST_LATENCY clocks later (set, settle, get, tick)."""
        io = self.io
        io.set("host__we", 0)
        io.set("host__sel", int(mem))
        out = []
        for i in range(count + HOST_LATENCY):
            if i < count:
                io.set("host__addr", addr + i)
            if i >= HOST_LATENCY:
                await io.settle()
                out.append(io.get("host__rdata"))
            await io.tick()
        return out

    async def load(self, layer: LearningLayer) -> None:
        for mem, addr, values in layer_writes(layer, self.lp):
            await self.write(mem, addr, values)
        for name, v in rule_registers(layer.rule).items():
            self.io.set(name, v)

    async def run(self, times, *, learn: bool, result: bool = False, noise=None) -> EnginePass:
        """One pass; ``noise`` (a ``random.Random``): random host writes while it runs, which the engine
        must ignore."""
        io = self.io
        for mem, addr, values in time_writes(times, self.lp):
            await self.write(mem, addr, values)
        io.set("learn", int(learn))
        io.set("start", 1)
        await io.tick()
        io.set("start", 0)
        while True:
            if noise is not None:
                io.set("host__we", int(noise.random() < 0.5))
                for name, bits in self.widths.items():
                    io.set(f"host__{name}", noise.randrange(2 ** bits))
            await io.settle()
            if io.get("done"):
                break
            await io.tick()
        await io.tick()                   # the done clock's edge (still busy: a noise write is ignored)
        io.set("host__we", 0)
        await io.settle()
        winner = io.get("winner")
        counters = [io.get(n) for n in ("cycles", "synops", "fire_time", "pruned")]
        await io.tick()
        res = await self.read(LearnMem.RESULT, 0, self.lp.neurons) if result else None
        return EnginePass(counters[0], counters[1], -1 if winner == self.lp.neurons else winner, counters[2],
                          counters[3], res)

    async def layer(self, like: LearningLayer) -> LearningLayer:
        lp = self.lp
        syn = await self.read(LearnMem.SYN, 0, lp.depth(LearnMem.SYN))
        lens = await self.read(LearnMem.LEN, 0, lp.neurons)
        theta = await self.read(LearnMem.THETA, 0, lp.neurons)
        return layer_from_memories(lp, syn, lens, theta, like)


def random_layer(rng, lp: LearnParams, samples: int):
    """A random learning layer for engine ``lp`` (random rule, thresholds, some synapses already
    absent) and ``samples`` random spike-time vectors."""
    from dataclasses import replace

    from cssnn.sw.spec.stdp import RATE_ONE, StdpRule, init_layer

    m = lp.max_weight
    rule = StdpRule(window=lp.window, weight_bits=lp.weight_bits,
                    a_plus=int(rng.integers(RATE_ONE // 8, RATE_ONE)), a_minus=int(rng.integers(RATE_ONE // 8, RATE_ONE)),
                    prune_below=int(rng.integers(0, m // 2)), theta_up=int(rng.integers(0, 50)),
                    theta_down=int(rng.integers(0, 5)), theta_min=int(rng.integers(1, 9)))
    theta = int(rng.integers(rule.theta_min, lp.inputs * m // 3 + rule.theta_min + 1))
    layer = init_layer(lp.inputs, lp.neurons, rule, theta=theta, seed=int(rng.integers(1 << 30)))
    layer = replace(layer, mask=rng.random(layer.mask.shape) < rng.uniform(0.3, 1.0))
    return layer, rng.integers(0, lp.window + 1, size=(samples, lp.inputs))


async def check_learning(drv: EngineDriver, layer: LearningLayer, times, *, learn: bool = True, noise=None,
                         name: str = "") -> dict:
    """Load ``layer``, run every sample of ``times`` and compare, after every sample, the hardware's
    weights, masks, thresholds, winner, fire time, pruned count, features (RESULT), cycles
    (:func:`~cssnn.hw.learn.pass_cycles`) and synaptic ops with the golden model's. Returns a report
    with the mismatches (as strings) and the passes."""
    import numpy as np

    from cssnn.hw.learn import pass_cycles
    from cssnn.sw.spec.stdp import first_spikes, learn_step

    await drv.load(layer)
    g, bad, passes = layer, [], []
    for s, t in enumerate(np.asarray(times)):
        p = await drv.run(t, learn=learn, result=True, noise=noise)
        hw = await drv.layer(layer)
        tf, _ = first_spikes(g, t[None])
        before = g
        if learn:
            g, res = learn_step(g, t)
            win, fire, upd, pruned = res.winner, res.fire_time, res.updated, res.pruned
        else:
            win, fire, upd, pruned = None, None, 0, 0
        want = {"result": list(map(int, tf[0])), "pruned": pruned,
                "cycles": pass_cycles(before.fan_in, before.fan_in[win] if learn and win >= 0 else None),
                "synops": before.synapses + (upd if learn and win >= 0 else 0)}
        got = {"result": p.result, "pruned": p.pruned, "cycles": p.cycles, "synops": p.synops}
        if learn:
            want.update(winner=win, fire_time=fire)
            got.update(winner=p.winner, fire_time=p.fire_time if p.winner >= 0 else layer.rule.window)
        for key in want:
            if want[key] != got[key]:
                bad.append(f"{name} sample {s}: {key} hardware {got[key]} golden {want[key]}")
        for key in ("weight", "mask", "theta"):
            a, b = getattr(hw, key), getattr(g, key)
            if not np.array_equal(a, b):
                where = tuple(int(v) for v in np.argwhere(a != b)[0])
                bad.append(f"{name} sample {s}: {key}{list(where)} hardware {a[where]} golden {b[where]}")
        passes.append(p)
    return {"name": name, "mismatches": bad, "samples": len(passes), "winners": [p.winner for p in passes],
            "cycles": [p.cycles for p in passes], "synapses": [int(g.synapses)], "final": g}
