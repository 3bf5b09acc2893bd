"""Run async testbench code against a core in the Amaranth simulator (pysim)."""

from __future__ import annotations

from amaranth.sim import Simulator

from cssnn.hw.core import Core
from cssnn.hw.params import CoreParams
from cssnn.verif.core_tb import AmaranthIO, CoreDriver

__all__ = ["run_testbenches", "run_with_core"]


def run_testbenches(dut, *benches, clock: bool = True, vcd: str | None = None) -> None:
    """Simulate ``dut`` with the given async testbenches (and a clock unless it is combinational)."""
    sim = Simulator(dut)
    if clock:
        sim.add_clock(1e-8)
    for bench in benches:
        sim.add_testbench(bench)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()


def run_with_core(params: CoreParams, body, *, vcd: str | None = None, **driver_kwargs):
    """Build a :class:`Core`, run ``await body(driver)`` as a testbench, return what it returned."""
    dut = Core(params)
    result = {}

    async def tb(ctx):
        drv = CoreDriver(AmaranthIO(ctx, dut), params, **driver_kwargs)
        result["value"] = await body(drv)

    run_testbenches(dut, tb, vcd=vcd)
    return result.get("value")
