"""Formal proofs (SymbiYosys + z3 from PyPI; ``pytest -k formal``): each property is proven on the
real design and, once, shown to fail on a planted mutant (a proof that cannot fail is no proof).
The properties are in :mod:`cssnn.verif.proofs`; docs/HARDWARE.md "Formal proofs" says what each
covers, and which are unbounded (k-induction) or bounded (and why that depth)."""

import os

import pytest
from amaranth.hdl import Module

import cssnn.hw.core.neuron as neuron
from cssnn.hw.core.neuron import TsaLane
from cssnn.hw.core.skid import SkidBuffer
from cssnn.hw.params import CoreParams
from cssnn.hw.router import Router
from cssnn.verif.formal import FormalToolsMissing, formal_tools, prove
from cssnn.verif.proofs import ROUTER_TABLE, router_proof, skid_buffer_proof, tsa_lane_proof

try:
    formal_tools()
    MISSING = None
except FormalToolsMissing as e:
    if os.environ.get("CI"):   # CI installs the dev extra: a missing tool there is a failure, not a skip
        raise
    MISSING = str(e)
pytestmark = pytest.mark.skipif(MISSING is not None, reason=f"formal tools missing: {MISSING}")


def _check(result, *, passes: bool):
    if passes:
        assert result.passed, f"{result.summary()}\n{result.log[-3000:]}"
    else:
        assert result.status == "FAIL" and result.trace is not None and result.trace.exists(), result.summary()


# ---- skid buffer: unbounded ----

class _LosesSkidItem(SkidBuffer):
    """Mutant: the item taken while the consumer stalls is not kept."""

    def elaborate(self, platform):
        m = Module()
        m.d.comb += [self.o.valid.eq(self.o_valid), self.o.payload.eq(self.o_data), self.i.ready.eq(~self.s_valid)]
        with m.If(self.o.ready | ~self.o_valid):
            m.d.sync += [self.o_data.eq(self.i.payload), self.o_valid.eq(self.i.valid)]
        return m


class _CombinationalReady(SkidBuffer):
    """Mutant: i.ready also passes o.ready through (a combinational path)."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        m.d.comb += self.i.ready.eq(~self.s_valid | self.o.ready)
        return m


@pytest.mark.parametrize("factory, passes", [(SkidBuffer, True), (_LosesSkidItem, False), (_CombinationalReady, False)],
                         ids=["design", "mutant-loses-item", "mutant-comb-ready"])
def test_formal_skid_buffer(factory, passes, tmp_path):
    _check(prove(skid_buffer_proof(factory), "skid", mode="prove", depth=8, workdir=tmp_path), passes=passes)


# ---- TSA lane: every input (combinational, so one step is all of them) ----

NARROW = CoreParams(lanes=1, weight_bits=5, membrane_bits=10, output_bits=20, acc_bits=10, bias_bits=10,
                    threshold_bits=8, neurons=4, synapse_rows=4)


@pytest.mark.parametrize("p", [CoreParams(lanes=1, neurons=4, synapse_rows=4), NARROW], ids=["default", "narrow"])
def test_formal_tsa_lane_equals_the_spec(p, tmp_path):
    _check(prove(tsa_lane_proof(TsaLane, p), "lane", mode="prove", depth=1, workdir=tmp_path), passes=True)


def test_formal_tsa_lane_mutant_saturation_off_by_one(monkeypatch, tmp_path):
    real = neuron.saturate

    def off_by_one(value, bits):
        out = real(value, bits)
        return out if value.shape().width <= bits else out - (out == 2 ** (bits - 1) - 1)

    monkeypatch.setattr(neuron, "saturate", off_by_one)
    _check(prove(tsa_lane_proof(TsaLane, NARROW), "lane-mutant", mode="prove", depth=1, workdir=tmp_path),
           passes=False)


# ---- router: bounded ----

P = CoreParams(lanes=1, neurons=4, synapse_rows=4)


def _router(depths):
    return Router(P, max_layers=4, depths=depths, init=ROUTER_TABLE)


class _DropsWhenFull(Router):
    """Mutant: accepts an event whose second destination is full (and loses it there)."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        m.d.comb += self.i.ready.eq(1)
        return m


#: BMC depth of the router proof: its FIFOs (2 and 3 entries) fill, stall, drain and wrap within it.
ROUTER_DEPTH = 10


@pytest.mark.parametrize("factory, passes", [(_router, True),
                                             (lambda d: _DropsWhenFull(P, max_layers=4, depths=d, init=ROUTER_TABLE),
                                              False)], ids=["design", "mutant-drops-when-full"])
def test_formal_router_delivers_every_event_once_in_order(factory, passes, tmp_path):
    _check(prove(router_proof(factory), "router", mode="bmc", depth=ROUTER_DEPTH, workdir=tmp_path), passes=passes)
