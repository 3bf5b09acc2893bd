"""Run async testbench code against a core in the Amaranth simulator (pysim)."""

from __future__ import annotations

from amaranth.sim import Simulator

from ..hw.core import Core
from ..hw.params import CoreParams
from .driver import AmaranthIO, CoreDriver

__all__ = ["run_with_core"]


def run_with_core(params: CoreParams, body, *, vcd: str | None = None, **driver_kwargs):
    """Build a :class:`Core`, run ``await body(driver)`` as a testbench, return what it returned."""
    dut = Core(params)
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    result = {}

    async def tb(ctx):
        drv = CoreDriver(AmaranthIO(ctx, dut), params, **driver_kwargs)
        result["value"] = await body(drv)

    sim.add_testbench(tb)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()
    return result.get("value")
