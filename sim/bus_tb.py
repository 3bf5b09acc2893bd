"""The accelerator's bus driven from an Amaranth async testbench (pysim): one element per clock,
read data :data:`~cssnn.hw.params.READ_LATENCY` clocks after the address, ``start`` .. ``done``.

Used by the accelerator tests and by the board flow's latency simulation (``boards/latency.py``)."""

from __future__ import annotations

from cssnn.hw.memmap import Counter, Sel
from cssnn.hw.params import READ_LATENCY

__all__ = ["BusTestbench"]


class BusTestbench:
    """``ctx``: the testbench context; ``bus``: the accelerator's ``bus`` port."""

    def __init__(self, ctx, bus):
        self.ctx, self.b = ctx, bus

    async def write(self, sel, addr, raw):
        ctx, b = self.ctx, self.b
        ctx.set(b.sel, int(sel))
        ctx.set(b.addr, addr)
        ctx.set(b.wdata, raw)
        ctx.set(b.we, 1)
        await ctx.tick()
        ctx.set(b.we, 0)

    async def write_many(self, writes):
        for w in writes:
            await self.write(*w)

    async def read(self, sel, addrs) -> list[int]:
        """The raw elements at ``addrs`` of ``sel``, pipelined (one address per clock)."""
        ctx, b, out = self.ctx, self.b, []
        ctx.set(b.we, 0)
        ctx.set(b.sel, int(sel))
        for i in range(len(addrs) + READ_LATENCY):
            if i < len(addrs):
                ctx.set(b.addr, addrs[i])
            if i >= READ_LATENCY:
                out.append(ctx.get(b.rdata))
            await ctx.tick()
        return out

    async def counters(self) -> dict:
        return dict(zip(Counter, await self.read(Sel.COUNTER, list(range(len(Counter))))))

    async def run(self, timeout: int = 30_000, during=None) -> int:
        """Pulse start, wait for done (``await during(clock)`` each clock while busy); return the
        clocks from start to done. ``busy`` must be high in every one of them."""
        ctx, b = self.ctx, self.b
        assert not ctx.get(b.busy)
        ctx.set(b.start, 1)
        await ctx.tick()
        ctx.set(b.start, 0)
        for n in range(1, timeout):
            assert ctx.get(b.busy)
            if ctx.get(b.done):
                await ctx.tick()
                assert not ctx.get(b.busy)
                return n
            if during is not None:
                await during(n)
            await ctx.tick()
        raise TimeoutError(f"no done within {timeout} clocks")
