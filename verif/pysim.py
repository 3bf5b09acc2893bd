"""Run async testbench code against a core in the Amaranth simulator (pysim)."""

from __future__ import annotations

from amaranth.sim import Simulator

from cssnn.hw.core import Core
from cssnn.hw.params import CoreParams
from cssnn.verif.core_tb import AmaranthIO, CoreDriver

__all__ = ["run_testbenches", "run_with_core", "check_cases"]


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


def check_cases(params: CoreParams, cases, **driver_kwargs) -> list[dict]:
    """Run every ``(net, xs, gold)`` of ``cases`` on one core in pysim (one :func:`run_with_core`,
    ``driver_kwargs`` for the driver: seed, input gaps, back-pressure) and compare each whole payload
    with the golden model (:func:`~cssnn.verif.check.run_case`); ``AssertionError`` lists the first
    mismatches. Returns the reports."""
    from cssnn.verif.check import run_case

    async def body(drv):
        return [await run_case(drv, params, net, xs, gold, name=f"net{i}") for i, (net, xs, gold) in enumerate(cases)]

    reports = run_with_core(params, body, **driver_kwargs)
    bad = [m for r in reports for m in r["mismatches"]]
    if bad:
        raise AssertionError("\n".join(bad[:10]))
    return reports
