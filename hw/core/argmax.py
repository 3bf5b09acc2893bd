"""Argmax over the output integrators, N lanes per clock (lowest index wins a tie, like numpy).

The core feeds it every word (group) of output membranes it writes in an output-layer step, in
ascending group order; ``first`` marks group 0 (restarts the search). ``latency`` clocks after the
step's last word the registered ``index``/``value`` hold the argmax of the layer's ``count`` neurons
(lanes at index >= count are excluded by ``valid``); ``busy`` is high while a word enters (``en``)
or is still in the pipeline: the core counts as busy, and the controller's run ends, only once it
is low (an output step's end marker may leave in the clock its last word enters).

Pipeline (for timing: every stage is one comparator and a mux deep)::

    inputs -> [tree level 1] -> ... -> [tree level log2 N] -> [running best]

The inputs come from registers already (the update stage's Z), so the first level compares them directly
(an input register of its own cost every run a clock at its end).
Each tree level halves the candidates (pairs of adjacent candidates: the right one wins only if it
is strictly greater or the left one is invalid, so the lowest lane wins ties); the last stage
compares the word's best with the running best (strict ``>``: an earlier word wins ties). The
group number and ``first`` travel along with the word. ``latency = ceil(log2 N) + 1``.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from cssnn.hw.params import CoreParams, check_params

__all__ = ["Argmax"]


class Argmax(wiring.Component):
    """In: ``en`` (a word this clock), ``first``, ``group``, ``values`` (N x signed Bm), ``valid`` (N
    bits). Out (registered, ``latency`` clocks after the word): ``index``, ``value``; ``busy``."""

    def __init__(self, params: CoreParams):
        check_params(self, params)
        self.params = p = params
        self.levels = ceil_log2(p.lanes)
        self.latency = self.levels + 1
        super().__init__({
            "en": In(1), "first": In(1), "group": In(p.group_bits),
            "values": In(data.ArrayLayout(signed(p.store_bits), p.lanes)), "valid": In(p.lanes),
            "index": Out(p.index_bits), "value": Out(signed(p.store_bits)), "busy": Out(1),
        })

    def elaborate(self, platform):
        p = self.params
        kb = max(1, p.lane_bits)
        m = Module()

        def offset(v):
            """``v`` in offset binary (sign bit inverted, unsigned): same order as the signed values, and
            an unsigned compare is the carry chain alone, without the sign/overflow logic after it."""
            return Cat(v[:-1], ~v[-1])

        def stage(name):
            """Registers of one pipeline stage: the word's valid bit, first, group."""
            return (Signal(name=f"{name}_en"), Signal(name=f"{name}_first"), Signal(p.group_bits, name=f"{name}_group"))

        # the inputs (registers: the update stage's Z) are the first level's candidates
        en, first, group = self.en, self.first, self.group
        cands = [(self.values[k], k, self.valid[k]) for k in range(p.lanes)]   # (value, lane, ok)
        busy = [en]

        # tree levels, each registered
        for lvl in range(self.levels):
            nen, nfirst, ngroup = stage(f"l{lvl}")
            m.d.sync += [nen.eq(en), nfirst.eq(first), ngroup.eq(group)]
            nxt = []
            for j in range(0, len(cands), 2):
                if j + 1 == len(cands):        # odd one out: passes through
                    (v, k, ok), take = cands[j], None
                else:
                    (lv, lk, lok), (rv, rk, rok) = cands[j], cands[j + 1]
                    take = Signal(name=f"l{lvl}_take{j // 2}")
                    m.d.comb += take.eq(rok & (~lok | (offset(lv) < offset(rv))))
                    v, k, ok = Mux(take, rv, lv), Mux(take, rk, lk), lok | rok
                bv = Signal(signed(p.store_bits), name=f"l{lvl}_v{j // 2}")
                bk = Signal(kb, name=f"l{lvl}_k{j // 2}")
                bok = Signal(name=f"l{lvl}_ok{j // 2}")
                m.d.sync += [bv.eq(v), bk.eq(k), bok.eq(ok)]
                nxt.append((bv, bk, bok))
            cands, en, first, group = nxt, nen, nfirst, ngroup
            busy.append(en)

        # running best over the words of the step
        (best_v, best_k, best_ok), = cands
        index = Signal(p.index_bits)
        m.d.comb += index.eq((group << p.lane_bits) | best_k if p.lane_bits else group)
        with m.If(en & best_ok & (first | (offset(self.value) < offset(best_v)))):
            m.d.sync += [self.index.eq(index), self.value.eq(best_v)]
        m.d.comb += self.busy.eq(Cat(*busy).any())
        return m
