"""Formal proofs (SymbiYosys + Yices from PyPI; ``pytest -k formal``): each property is proven on the
real design and, once, shown to fail on a planted mutant (a proof that cannot fail is no proof).
The properties are in :mod:`cssnn.verif.proofs`; docs/HARDWARE.md "Formal proofs" says what each
covers, and which are unbounded (k-induction) or bounded (and why that depth)."""

import inspect
import os

import pytest
from amaranth.hdl import Module, Signal

import cssnn.hw.core.neuron as neuron
from cssnn.hw.controller import Controller
from cssnn.hw.core.neuron import TsaLane
from cssnn.hw.core.skid import SkidBuffer
from cssnn.hw.memmap import AccelParams, Route
from cssnn.hw.params import CoreParams, Mode
from cssnn.hw.router import Router
from cssnn.verif.formal import FormalToolsMissing, formal_tools, prove
from cssnn.verif.proofs import (
    ROUTER_TABLE,
    byte_fifo_proof,
    controller_proof,
    crc_proof,
    credit_fifo_proof,
    hazard_proof,
    hostlink_proof,
    lane_walk_proof,
    receiver_proof,
    router_proof,
    skid_buffer_proof,
    tsa_lane_proof,
)

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


# ---- controller: bounded liveness and the schedule, against the router and an abstract core ----

#: Per evaluation order: the loopback FIFO holds what the order needs with one spike per step (chain:
#: a step, 2 events; waves at L = 2: a step of both spiking layers and the running one's, 6).
#: With ``overlap`` the core is a 4-lane one (``CoreParams.overlap``): 6 steps in flight, not 3.
CTRL_APS = {(order, overlap): AccelParams(core=CoreParams(lanes=4, neurons=8, synapse_rows=4) if overlap else P,
                                          max_layers=4, timestep_bits=2, fifo_depth=2 if order == "chain" else 6,
                                          tap_depth=2, order=order)
            for order in ("chain", "waves") for overlap in (False, True)}


def _ctrl_router(ap):
    return Router(ap.core, max_layers=ap.max_layers, depths=(ap.fifo_depth, ap.tap_depth),
                  init=(int(Route.LOOPBACK | Route.TAP),) * ap.max_layers)


class _AlwaysFire(Controller):
    """Mutant: every step is a FIRE step (no silent step, no output modes)."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        m.d.comb += self.step.payload.mode.eq(Mode.FIRE)
        return m


class _IgnoresArgmax(Controller):
    """Mutant: the run ends without waiting for the core's argmax (its ``argmax_idle`` read as 1)."""

    def elaborate(self, platform):
        port, self.argmax_idle = self.argmax_idle, Signal(init=1)
        try:
            return super().elaborate(platform)
        finally:
            self.argmax_idle = port


class _LosesOutput(Controller):
    """Mutant: the core's output is taken but never offered to the router (the next layer waits forever)."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        m.d.comb += self.routed.valid.eq(0)
        return m


#: (order, T, L, longest stall, spikes per step, bound): the clocks a run may take, each tight (one
#: clock less has a counterexample): T = L = 1 (3 layer-steps) with stalls of up to one clock on every
#: handshake and on the core's argmax (26 with an argmax always idle), and T = L = 2 (8 layer-steps,
#: every mode, steps in flight) without stalls.
#: The same bounds hold, and are as tight, with 6 steps in flight (an overlapping core: "-overlap").
CTRL_CASES = {"stalls": ("chain", 1, 1, 1, 1, 27), "no-stalls-T2-L2": ("chain", 2, 2, 0, 1, 24),
              "waves-stalls": ("waves", 1, 1, 1, 1, 27), "waves-T2-L2": ("waves", 2, 2, 0, 1, 24)}
CTRL_CASES |= {f"{name}-overlap": case for name, case in CTRL_CASES.items() if "T2" in name}


@pytest.mark.parametrize("factory, case, passes", [
    (Controller, "stalls", True), (Controller, "no-stalls-T2-L2", True),
    (Controller, "waves-stalls", True), (Controller, "waves-T2-L2", True),
    (Controller, "no-stalls-T2-L2-overlap", True), (Controller, "waves-T2-L2-overlap", True),
    (_AlwaysFire, "no-stalls-T2-L2", False), (_LosesOutput, "no-stalls-T2-L2", False),
    (_AlwaysFire, "waves-T2-L2", False), (_LosesOutput, "waves-T2-L2", False), (_IgnoresArgmax, "stalls", False)],
    ids=["design-stalls", "design-T2-L2", "waves-stalls", "waves-T2-L2", "design-T2-L2-overlap", "waves-T2-L2-overlap",
         "mutant-always-fire",
         "mutant-loses-output", "waves-mutant-always-fire", "waves-mutant-loses-output", "mutant-ignores-argmax"])
def test_formal_controller_runs_the_schedule_and_finishes(factory, case, passes, tmp_path):
    order, t, l, stall, events, bound = CTRL_CASES[case]
    proof = controller_proof(factory, _ctrl_router, CTRL_APS[order, case.endswith("overlap")], timesteps=t, layers=l,
                             stall=stall, events=events, bound=bound)
    _check(prove(proof, "controller", mode="bmc", depth=bound + 1, workdir=tmp_path), passes=passes)


# ---- host link: the CRC step, and the receiver's outcomes (bounded) ----

def test_formal_crc_step_is_the_textbook_crc(tmp_path):
    from cssnn.hw.link.crc import crc16_next

    _check(prove(crc_proof(crc16_next), "crc", mode="prove", depth=1, workdir=tmp_path), passes=True)
    _check(prove(crc_proof(lambda c, b: crc16_next(c, b) ^ 0x0100), "crc-mutant", mode="prove", depth=1,
                 workdir=tmp_path / "mutant"), passes=False)


def _mutant(module, old: str, new: str):
    """``module`` with one source edit (a planted bug), as a fresh namespace."""
    source = inspect.getsource(module)
    assert source.count(old) == 1, old
    namespace = {"__name__": f"{module.__name__}_mutant"}
    exec(compile(source.replace(old, new), module.__file__, "exec"), namespace)
    return namespace


RECEIVER_MUTANTS = {
    "accepts-bad-crc": ("with m.If(crc.residue_zero):", "with m.If(1):"),
    "no-timeout": ("with m.Elif(timer.expired):", "with m.Elif(0):"),
    "length-off-by-one": ("new_len >= self.max_payload + 1", "new_len >= self.max_payload + 2"),
}
#: BMC depth of the receiver proof: a longest frame (SYNC, 4 header bytes, max_payload = 4 payload
#: bytes, 2 CRC bytes: 11 clocks), its outcome, the reply's resume and the next frame's SYNC fit in it.
RECEIVER_DEPTH = 14


@pytest.mark.parametrize("mutant", [None, *RECEIVER_MUTANTS], ids=["design", *(f"mutant-{k}" for k in RECEIVER_MUTANTS)])
def test_formal_receiver_one_outcome_per_frame(mutant, tmp_path):
    import cssnn.hw.link.receive as receive

    factory = receive.Receiver if mutant is None else _mutant(receive, *RECEIVER_MUTANTS[mutant])["Receiver"]
    proof = receiver_proof(factory, max_payload=4, timeout=2, stall=1)
    _check(prove(proof, "receiver", mode="bmc", depth=RECEIVER_DEPTH, workdir=tmp_path), passes=mutant is None)


# ---- the host link's byte FIFOs (bounded) ----

FIFO_MUTANTS = {
    "valid-from-the-old-pointer": ("r.valid.eq(wptr != rnext)", "r.valid.eq(wptr != rptr)"),
    "ready-when-full": ("self.w.ready.eq(~full)", "self.w.ready.eq(1)"),
}
#: BMC depth of the FIFO proof: a 4-byte FIFO fills, stalls, drains and wraps its pointers within it.
FIFO_DEPTH = 14


@pytest.mark.parametrize("skid", [False, True], ids=["plain", "skid"])
@pytest.mark.parametrize("mutant", [None, *FIFO_MUTANTS], ids=["design", *(f"mutant-{k}" for k in FIFO_MUTANTS)])
def test_formal_byte_fifo_keeps_every_byte_in_order(mutant, skid, tmp_path):
    import cssnn.hw.link.fifo as fifo

    factory = fifo.ByteFIFO if mutant is None else _mutant(fifo, *FIFO_MUTANTS[mutant])["ByteFIFO"]
    proof = byte_fifo_proof(factory, depth=4, skid=skid)
    _check(prove(proof, "fifo", mode="bmc", depth=FIFO_DEPTH, workdir=tmp_path), passes=mutant is None)


# ---- the whole host link: a reply per frame, nothing without a good CRC, no wedge (bounded) ----

LINK_AP = CTRL_APS["chain", False]
#: The host link proof's bounds. "back-to-back": frames come a byte every clock (only SYNC while
#: hunting), so in 24 clocks a RUN, SETUP, ECHO and one-element WRITE each complete with their
#: reply, and a READ or INFER gets through its checks, writes and run. "gaps": any bytes with any
#: gaps (garbage, timeouts), 16 clocks (18 took 133 s, measured): rejects (TIMEOUT, BAD_LENGTH,
#: BAD_CRC) complete with their replies and short frames reach their execution.
#: LINK_GAP: the longest stretch without progress while a reply is owed (a READ's length sum, at
#: most 4 elements here, between the check and the header); tight: 7 has a counterexample.
LINK_CASES = {"back-to-back": (24, True), "gaps": (16, False)}
LINK_GAP = 8
LINK_MUTANTS = {   # module, old, new
    "executes-rejected-frames": ("hostlink", "exe.accept.eq(rcv.accept)", "exe.accept.eq(rcv.accept | rcv.reply.start)"),
    "range-check-off-by-one": ("execute", "(k.depth < end)", "(k.depth + 1 < end)"),
    "no-watchdog": ("execute", "with m.Elif(self.timer.expired):", "with m.Elif(0):"),
    "crc-skips-the-status": ("reply", "emit(hbyte, hb != 0)", "emit(hbyte, hb > 1)"),
}


@pytest.mark.parametrize("mutant, case", [(None, "back-to-back"), (None, "gaps"),
                                           *((k, "back-to-back") for k in LINK_MUTANTS)],
                         ids=["design-back-to-back", "design-gaps", *(f"mutant-{k}" for k in LINK_MUTANTS)])
def test_formal_hostlink_one_reply_per_frame_and_no_write_without_crc(mutant, case, monkeypatch, tmp_path):
    import importlib

    import cssnn.hw.link.hostlink as hostlink

    factory = hostlink.HostLink
    if mutant is not None:
        name, old, new = LINK_MUTANTS[mutant]
        module = importlib.import_module(f"cssnn.hw.link.{name}")
        if name == "hostlink":
            factory = _mutant(module, old, new)["HostLink"]
        else:   # the real HostLink, built with the mutant phase
            cls = {"execute": "Executor", "reply": "ReplyEmitter"}[name]
            monkeypatch.setattr(hostlink, cls, _mutant(module, old, new)[cls])
    depth, dense = LINK_CASES[case]
    proof = hostlink_proof(factory, LINK_AP, max_payload=16, timeout=2, watchdog=2, stall=1, gap=LINK_GAP, dense=dense)
    _check(prove(proof, "hostlink", mode="bmc", depth=depth, workdir=tmp_path, map_memories=False),
           passes=mutant is None)


# ---- the core's credit-based word FIFO (bounded) ----

#: BMC depths. The FIFO can be full from clock 12 (eight words issued from clock 0 reach it from
#: clock 4); with one credit too many it overflows at clock 14, so 16 clocks show the design does
#: not. The event scoreboard is far costlier for the solver (16 clocks: 260 s, measured), so it runs
#: 12 clocks: several words through the FIFO, the serializer and the skid buffer, with stalls.
CREDIT_DEPTH, CREDIT_SCOREBOARD_DEPTH = 16, 12


@pytest.mark.parametrize("mutant, scoreboard, passes", [
    (None, False, True), (None, True, True), ("one-credit-too-many", False, False),
    ("reads-past-the-serializer", True, False)],
    ids=["design-fill", "design-events", "mutant-one-credit-too-many", "mutant-reads-past-the-serializer"])
def test_formal_credit_fifo_never_overflows_and_keeps_the_events(mutant, scoreboard, passes, monkeypatch, tmp_path):
    import cssnn.hw.core.output as output
    import cssnn.hw.core.update as update

    output_stage = output.OutputStage
    if mutant == "one-credit-too-many":
        monkeypatch.setattr(update, "WORD_FIFO_DEPTH", output.WORD_FIFO_DEPTH + 1)
    if mutant == "reads-past-the-serializer":
        output_stage = _mutant(output, "word_fifo.r_en.eq(ser.i.ready)", "word_fifo.r_en.eq(1)")["OutputStage"]
    proof = credit_fifo_proof(update.UpdateStage, output_stage, P, scoreboard=scoreboard)
    depth = CREDIT_SCOREBOARD_DEPTH if scoreboard else CREDIT_DEPTH
    _check(prove(proof, "credit", mode="bmc", depth=depth, workdir=tmp_path), passes=passes)


# ---- the update stage's write-back hazard: exact, though computed a clock ahead (bounded) ----

#: BMC depth: a step's words through D, X, Y, Z, a load behind them and its words, twice.
HAZARD_DEPTH = 12
HAZARD_MUTANTS = {
    # the next word's compares replaced by the current word's while words issue back to back
    "next-word-not-compared": ("Mux(issued, ahead(r_next), ahead(self.r_addr))", "ahead(self.r_addr)"),
    "loaded-word-misses-d": (" | (issued & (self.r_addr == self.load_addr))", ""),
}


@pytest.mark.parametrize("mutant", [None, *HAZARD_MUTANTS], ids=["design", *(f"mutant-{k}" for k in HAZARD_MUTANTS)])
def test_formal_update_hazard_is_exactly_a_word_in_the_stage_with_rs_address(mutant, tmp_path):
    import cssnn.hw.core.update as update

    p = CoreParams(lanes=4, neurons=16, synapse_rows=16)
    namespace = vars(update) if mutant is None else _mutant(update, *HAZARD_MUTANTS[mutant])
    proof = hazard_proof(namespace["UpdateStage"], p)
    _check(prove(proof, "hazard", mode="bmc", depth=HAZARD_DEPTH, workdir=tmp_path), passes=mutant is None)


# ---- the lane walk: every lane issues exactly its rows before the end marker (bounded) ----

#: BMC depth: events through the index read and EB into a walker and a queue of 2, their rows
#: (up to 3 each) and the end marker's handoff, twice.
LANE_WALK_DEPTH = 14
LANE_WALK_MUTANTS = {
    # the end register forgets the event EB hands on in the same clock
    "end-misses-the-last-event": ("idle.eq(~busy.any() & ~eb_take)", "idle.eq(~busy.any())"),
    "a-row-too-few": ("last.eq(nxt.count == 1)", "last.eq(nxt.count == 2)"),
}


@pytest.mark.parametrize("mutant", [None, *LANE_WALK_MUTANTS], ids=["design", *(f"mutant-{k}" for k in LANE_WALK_MUTANTS)])
def test_formal_lane_walk_issues_every_lanes_rows_before_the_end(mutant, monkeypatch, tmp_path):
    import cssnn.hw.core.events as events

    p = CoreParams(lanes=2, neurons=8, synapse_rows=16, list_rows=3, walk="lanes")
    namespace = vars(events) if mutant is None else _mutant(events, *LANE_WALK_MUTANTS[mutant])
    monkeypatch.setitem(namespace, "LANE_QUEUE", 2)     # small queues: full and empty within the depth
    proof = lane_walk_proof(namespace["EventInput"], p)
    _check(prove(proof, "lane_walk", mode="bmc", depth=LANE_WALK_DEPTH, workdir=tmp_path), passes=mutant is None)
