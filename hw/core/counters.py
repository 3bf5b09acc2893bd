"""The core's counters (:data:`COUNTERS`): busy clocks, input spike events, synaptic operations,
output spikes, steps; ``clear`` zeroes them all."""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from cssnn.hw.params import CoreParams, check_params

__all__ = ["Counters", "COUNTERS"]

#: Counter ports of the core, in this order.
COUNTERS = ("cycles", "events", "synops", "spikes", "steps")


class Counters(wiring.Component):
    """In: ``clear``, ``busy`` (a busy clock), ``event`` (an input spike event's last row issues),
    ``synops_valid``/``synops`` (the unmasked lanes of a row being accumulated), ``spike`` (an output
    spike), ``step`` (a step is done). Out: ``cnt_<name>`` for each name of :data:`COUNTERS`."""

    def __init__(self, params: CoreParams):
        check_params(self, params)
        self.params = p = params
        sig = {"clear": In(1), "busy": In(1), "event": In(1), "synops_valid": In(1),
               "synops": In(ceil_log2(p.lanes + 1)), "spike": In(1), "step": In(1)}
        for name in COUNTERS:
            sig[f"cnt_{name}"] = Out(p.counter_bits)
        super().__init__(sig)

    def elaborate(self, platform):
        m = Module()
        cnt = {name: getattr(self, f"cnt_{name}") for name in COUNTERS}
        # a row's synaptic operations are added a clock later, from a register (timing: docs/BOARDS.md,
        # item 9); done comes many clocks after the last ACCUM item
        synops_v = Signal()
        synops_q = Signal.like(self.synops)
        m.d.sync += [synops_v.eq(self.synops_valid), synops_q.eq(self.synops)]
        with m.If(self.clear):
            m.d.sync += [c.eq(0) for c in cnt.values()]
        with m.Else():
            with m.If(self.busy):
                m.d.sync += cnt["cycles"].eq(cnt["cycles"] + 1)
            with m.If(self.event):
                m.d.sync += cnt["events"].eq(cnt["events"] + 1)
            with m.If(synops_v):
                m.d.sync += cnt["synops"].eq(cnt["synops"] + synops_q)
            with m.If(self.spike):
                m.d.sync += cnt["spikes"].eq(cnt["spikes"] + 1)
            with m.If(self.step):
                m.d.sync += cnt["steps"].eq(cnt["steps"] + 1)
        return m
