"""Drive a :class:`~cssnn.hw.learn.LearningEngine` in an Amaranth testbench through its host port."""

from __future__ import annotations

from dataclasses import dataclass

from cssnn.hw.learn import HOST_LATENCY, LearningEngine, LearnMem
from cssnn.sw.mapping.learning import layer_from_memories, layer_writes, rule_registers, time_writes
from cssnn.sw.spec.stdp import LearningLayer

__all__ = ["EngineDriver", "EnginePass"]


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

    def __init__(self, ctx, engine: LearningEngine):
        self.ctx, self.dut, self.lp = ctx, engine, engine.lp

    async def write(self, mem: LearnMem, addr: int, values) -> None:
        h = self.dut.host
        self.ctx.set(h.sel, mem)
        self.ctx.set(h.we, 1)
        for i, v in enumerate(values):
            self.ctx.set(h.addr, addr + i)
            self.ctx.set(h.wdata, int(v))
            await self.ctx.tick()
        self.ctx.set(h.we, 0)

    async def read(self, mem: LearnMem, addr: int, count: int) -> list[int]:
        h = self.dut.host
        self.ctx.set(h.sel, mem)
        out = []
        for i in range(count + HOST_LATENCY):
            if i < count:
                self.ctx.set(h.addr, addr + i)
            await self.ctx.tick()
            if i + 1 >= HOST_LATENCY and len(out) < count:
                out.append(self.ctx.get(h.rdata))
        return out

    async def load(self, layer: LearningLayer) -> None:
        for mem, addr, values in layer_writes(layer, self.lp):
            await self.write(mem, addr, values)
        for name, v in rule_registers(layer.rule).items():
            self.ctx.set(getattr(self.dut, name), v)

    async def run(self, times, *, learn: bool, result: bool = False, noise=None) -> EnginePass:
        """One pass; ``noise`` (a ``random.Random``): random host writes while it runs, which the engine
        must ignore."""
        for mem, addr, values in time_writes(times, self.lp):
            await self.write(mem, addr, values)
        d = self.dut
        self.ctx.set(d.learn, int(learn))
        self.ctx.set(d.start, 1)
        await self.ctx.tick()
        self.ctx.set(d.start, 0)
        h = d.host
        while not self.ctx.get(d.done):
            if noise is not None:
                self.ctx.set(h.we, noise.random() < 0.5)
                self.ctx.set(h.sel, noise.randrange(len(LearnMem)))
                self.ctx.set(h.addr, noise.randrange(2 ** len(h.addr)))
                self.ctx.set(h.wdata, noise.randrange(2 ** len(h.wdata)))
            await self.ctx.tick()
        self.ctx.set(h.we, 0)
        await self.ctx.tick()
        winner = self.ctx.get(d.winner)
        res = await self.read(LearnMem.RESULT, 0, self.lp.neurons) if result else None
        return EnginePass(self.ctx.get(d.cycles), self.ctx.get(d.synops),
                          -1 if winner == self.lp.neurons else winner, self.ctx.get(d.fire_time),
                          self.ctx.get(d.pruned), res)

    async def layer(self, like: LearningLayer) -> LearningLayer:
        lp = self.lp
        syn = await self.read(LearnMem.SYN, 0, lp.depth(LearnMem.SYN))
        lens = await self.read(LearnMem.LEN, 0, lp.neurons)
        theta = await self.read(LearnMem.THETA, 0, lp.neurons)
        return layer_from_memories(lp, syn, lens, theta, like)
