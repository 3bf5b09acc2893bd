# amaranth: UnusedElaboratable=no
"""Unit tests of the core's pipeline stages around a step boundary (Amaranth simulator): what lets
consecutive layer-steps overlap.

- ``UpdateStage``: a step loaded while the words of the step before are still in D, X, Y, Z
  gives every word exactly the outputs it gets when the steps are apart (each word carries its
  step's config through the stages).
- ``EventInput`` with ``CoreParams.overlap``: events past an end marker are taken only for the
  steps whose config the core holds behind ACCUM's (``steps``, up to ``steps_ahead``), each step's
  events find their index entries from that step's base (``idx_base``, then ``idx_next``), and no
  event is taken past the last held step's end marker.
"""

import random

import pytest

from cssnn.hw.core.events import EventInput
from cssnn.hw.core.update import UpdateStage
from cssnn.hw.params import CoreParams, Mode
from cssnn.verif.pysim import run_testbenches

P = CoreParams(lanes=4, weight_bits=5, membrane_bits=10, output_bits=12, acc_bits=8, bias_bits=8,
               threshold_bits=6, neurons=32, synapse_rows=8)
#: two steps of different layers, configs as different as they can be
STEPS = [
    {"mode": Mode.FIRE, "threshold": 5, "count": 14, "encoder": 0, "base": 0, "groups": 4},
    {"mode": Mode.OUT, "threshold": 17, "count": 6, "encoder": 1, "base": 4, "groups": 2},
    {"mode": Mode.SILENT, "threshold": 9, "count": 8, "encoder": 0, "base": 6, "groups": 2},
]


def _word_inputs(rng):
    """Per (step, group): the state, accumulator and bias words the neuron store would read."""
    out = {}
    for s, st in enumerate(STEPS):
        for g in range(st["groups"]):
            out[s, g] = ([(rng.randrange(-300, 300), rng.randrange(2)) for _ in range(P.lanes)],
                         [rng.randrange(-100, 100) for _ in range(P.lanes)],
                         [rng.randrange(-100, 100) for _ in range(P.lanes)])
    return out


def _run_update(gap: int, seed: int = 3):
    """The steps' words issued one per clock, each step loaded ``gap`` clocks after the last word
    of the one before; returns the state writes, accumulator clears and spike words, each in order."""
    dut = UpdateStage(P)
    inputs = _word_inputs(random.Random(seed))
    log = []

    async def bench(ctx):
        in_flight = []          # (step, group) issued, by clock: the word in X is two clocks old
        schedule = []
        for s, st in enumerate(STEPS):
            schedule.append(("load", s))
            schedule += [("issue", s, g) for g in range(st["groups"])]
            schedule += [("idle",)] * gap
        schedule += [("idle",)] * 8
        for item in schedule:
            for port in ("load", "issue", "update", "last"):
                ctx.set(getattr(dut, port), 0)
            if item[0] == "load":
                st = STEPS[item[1]]
                ctx.set(dut.load, 1)
                for name in ("mode", "threshold", "count", "encoder"):
                    ctx.set(getattr(dut, name), st[name])
            elif item[0] == "issue":
                s, g = item[1], item[2]
                ctx.set(dut.update, 1)
                ctx.set(dut.issue, 1)
                ctx.set(dut.group, g)
                ctx.set(dut.last, g == STEPS[s]["groups"] - 1)
            in_flight.append(item[1:] if item[0] == "issue" else None)
            x = in_flight[-3] if len(in_flight) >= 3 else None    # issued two clocks ago: in X
            if x is not None:
                state, acc, bias = inputs[x]
                ctx.set(dut.x_addr, STEPS[x[0]]["base"] + x[1])
                for k in range(P.lanes):
                    ctx.set(dut.state[k].v, state[k][0])
                    ctx.set(dut.state[k].fired, state[k][1])
                    ctx.set(dut.acc[k], acc[k])
                    ctx.set(dut.bias[k], bias[k])
            if ctx.get(dut.state_write.en):
                log.append(("state", ctx.get(dut.state_write.addr),
                            [(ctx.get(dut.state_write.data[k].v), ctx.get(dut.state_write.data[k].fired))
                             for k in range(P.lanes)]))
            if ctx.get(dut.acc_clear.en):
                log.append(("clear", ctx.get(dut.acc_clear.addr)))
            if ctx.get(dut.words.valid):
                w = dut.words.payload
                log.append(("word", ctx.get(w.group), ctx.get(w.pos), ctx.get(w.neg), ctx.get(w.end)))
            ctx.set(dut.word_taken, ctx.get(dut.words.valid))
            await ctx.tick()

    run_testbenches(dut, bench)
    return {kind: [e[1:] for e in log if e[0] == kind] for kind in ("state", "clear", "word")}


def test_update_stage_words_keep_their_steps_config_back_to_back():
    apart = _run_update(gap=6)
    assert len(apart["state"]) == sum(st["groups"] for st in STEPS)
    assert any(pos or neg for _, pos, neg, _ in apart["word"]), "no spikes: the test would not see a mode mix-up"
    back_to_back = _run_update(gap=0)
    for kind in apart:
        assert back_to_back[kind] == apart[kind], f"{kind}: a word used the config of another step"


@pytest.mark.parametrize("behind", [0, 1, 2])
def test_event_input_takes_the_events_of_the_steps_held_behind_the_end_markers_only(behind):
    p = CoreParams(lanes=4, neurons=32, synapse_rows=8, walk="rows")
    assert p.overlap and p.steps_ahead == 2
    dut = EventInput(p)
    bases = [3, 12, 23]   # ACCUM's idx_base, then those of the steps held behind it
    stream = [(2, 0), (5, 1), (None, 0), (1, 0), (4, 1), (None, 0), (6, 0), (0, 1), (None, 0), (7, 0)]
    ends = [k for k, (i, _) in enumerate(stream) if i is None]
    taken, slots = [], []

    async def bench(ctx):
        # the core's part: the configs held (ACCUM's first) and, when ACCUM's end marker is in, the
        # handoff: that marker taken, the configs move up (the index entries here have no rows: the
        # events leave EB at once)
        held = bases[:1 + behind]
        ctx.set(dut.accum, 1)
        k = 0
        for _ in range(30):
            ctx.set(dut.steps, len(held))
            ctx.set(dut.idx_base, held[0] if held else 0)
            for i in range(2):
                ctx.set(dut.idx_next[i], held[i + 1] if i + 1 < len(held) else 0)
            handoff = bool(ctx.get(dut.end)) and len(held) > 1
            ctx.set(dut.end_take, handoff)
            if k < len(stream):
                i, neg = stream[k]
                ctx.set(dut.events.valid, 1)
                ctx.set(dut.events.payload.end, i is None)
                ctx.set(dut.events.payload.index, i or 0)
                ctx.set(dut.events.payload.neg, neg)
            else:
                ctx.set(dut.events.valid, 0)
            took = bool(ctx.get(dut.events.valid) and ctx.get(dut.events.ready))
            if took:
                taken.append(stream[k])
                k += 1
                if taken[-1][0] is not None:
                    slots.append(ctx.get(dut.index_addr))   # the slot the event taken reads
            await ctx.tick()
            if handoff:
                held = held[1:]
        assert ctx.get(dut.ends) == 1 and ctx.get(dut.end), "the last held step's end marker is in"

    run_testbenches(dut, bench)
    assert taken == stream[:ends[behind] + 1], "events were taken past the end marker of the last step held"
    # the slot each event reads: its own step's idx_base + its index
    step, want = 0, []
    for i, _ in taken:
        if i is None:
            step += 1
        else:
            want.append(bases[step] + i)
    assert slots == want, "an event found its index entry from another step's idx_base"
