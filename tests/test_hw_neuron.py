# amaranth: UnusedElaboratable=no
"""TSA lane update against SEMANTICS.md sections 2-3, in the Amaranth simulator (edge cases + random)."""

import random

import pytest

from cssnn.hw.core.neuron import TsaLane
from cssnn.hw.params import CoreParams, Mode
from cssnn.sw.spec.golden import saturate
from cssnn.verif.pysim import run_testbenches


def reference(mode, v, f, acc, bias, theta, bv, bo):
    """SEMANTICS.md, literally: (v_next, f_next, spike)."""
    sat = lambda x, b: int(saturate(x, b))  # noqa: E731
    if mode == Mode.SILENT:
        return sat(acc + bias, bv), False, 0
    if mode == Mode.FIRE:
        m = 2 * v + acc
        s = 1 if m >= theta else (-1 if m <= -theta and f else 0)
        return sat(m - 2 * theta * s, bv), bool(f or s == 1), s
    if mode == Mode.OUT_FIRST:
        return sat(acc + bias, bo), False, 0
    return sat(2 * v + acc, bo), False, 0


def run_lane(p: CoreParams, vectors):
    """Apply (mode, v, f, acc, bias, theta) vectors; return [(v_next, f_next, spike)]."""
    dut = TsaLane(p)
    out = []

    async def tb(ctx):
        for mode, v, f, acc, bias, theta in vectors:
            ctx.set(dut.mode, int(mode)); ctx.set(dut.v, v); ctx.set(dut.fired, int(f)); ctx.set(dut.acc, acc)
            ctx.set(dut.bias, bias); ctx.set(dut.threshold, theta)
            pos, neg = ctx.get(dut.pos), ctx.get(dut.neg)
            assert not (pos and neg)
            out.append((ctx.get(dut.v_next), bool(ctx.get(dut.fired_next)), pos - neg))

    run_testbenches(dut, tb, clock=False)
    return out


def check(p, vectors):
    got = run_lane(p, vectors)
    for vec, g in zip(vectors, got):
        want = reference(*vec, p.membrane_bits, p.output_bits)
        assert g == want, f"{Mode(vec[0]).name} v={vec[1]} f={vec[2]} I={vec[3]} b={vec[4]} theta={vec[5]}: hw {g} != {want}"


SMALL = CoreParams(lanes=1, weight_bits=4, membrane_bits=8, output_bits=10, acc_bits=8, bias_bits=8,
                   threshold_bits=6, neurons=1, synapse_rows=1)


def test_threshold_edges_and_guard():
    th = 10
    vecs = []
    for f in (0, 1):
        for m in (th - 1, th, th + 1, -th - 1, -th, -th + 1, 0, 2 * th, -2 * th):
            for v in (m // 2, (m - 1) // 2):         # m = 2v + I with two splits
                vecs.append((Mode.FIRE, v, f, m - 2 * v, 0, th))
    check(SMALL, vecs)
    got = run_lane(SMALL, [(Mode.FIRE, 0, 1, -th, 0, th), (Mode.FIRE, 0, 0, -th, 0, th),
                           (Mode.FIRE, 0, 0, th, 0, th), (Mode.FIRE, 0, 0, th - 1, 0, th)])
    assert [s for _, _, s in got] == [-1, 0, 1, 0]   # -1 only after a +1 (ReLU guard); exactly +-theta fires
    assert [f for _, f, _ in got] == [True, False, True, False]


def test_clamping_all_modes():
    V = 2 ** (SMALL.membrane_bits - 1) - 1
    O = 2 ** (SMALL.output_bits - 1) - 1
    vecs = [
        (Mode.SILENT, 0, 1, 127, 127, 1), (Mode.SILENT, 0, 0, -128, -128, 1), (Mode.SILENT, 0, 0, 100, 27, 1),
        (Mode.FIRE, V, 0, 127, 0, 1), (Mode.FIRE, -V - 1, 1, -128, 0, 1), (Mode.FIRE, -V - 1, 0, -128, 0, 63),
        (Mode.FIRE, V, 1, 127, 0, 63), (Mode.FIRE, -100, 0, 0, 0, 5),     # guard: negative doubling clamps
        (Mode.OUT_FIRST, 0, 0, 127, 127, 1), (Mode.OUT_FIRST, 0, 0, -128, -128, 1),
        (Mode.OUT, O, 0, 127, 0, 1), (Mode.OUT, -O - 1, 0, -128, 0, 1), (Mode.OUT, 300, 0, -100, 0, 1),
    ]
    check(SMALL, vecs)


def test_negative_inputs_and_flag_kept():
    vecs = [(Mode.FIRE, v, f, acc, 0, th) for v, f, acc, th in
            [(5, 1, -20, 3), (-3, 1, -7, 4), (-3, 0, -7, 4), (2, 1, -100, 1), (30, 1, -1, 60), (-1, 1, 0, 1)]]
    check(SMALL, vecs)


def test_random_small():
    rng = random.Random(1)
    p = SMALL
    vecs = []
    for _ in range(600):
        mode = rng.choice(list(Mode))
        vb = p.membrane_bits if mode in (Mode.SILENT, Mode.FIRE) else p.output_bits
        vecs.append((mode, rng.randint(-2 ** (vb - 1), 2 ** (vb - 1) - 1), rng.randint(0, 1),
                     rng.randint(-128, 127), rng.randint(-128, 127), rng.randint(1, 63)))
    check(p, vecs)


def test_max_widths():
    p = CoreParams(lanes=1, weight_bits=16, membrane_bits=32, output_bits=62, acc_bits=48, bias_bits=48,
                   threshold_bits=30, neurons=1, synapse_rows=1)
    V, O = 2**31 - 1, 2**61 - 1
    A, B, TH = 2**47 - 1, 2**47 - 1, 2**30 - 1
    vecs = [
        (Mode.FIRE, V, 1, A, 0, 1), (Mode.FIRE, -V - 1, 1, -A - 1, 0, 1), (Mode.FIRE, V, 1, -A - 1, 0, TH),
        (Mode.FIRE, -V - 1, 0, A, 0, TH), (Mode.FIRE, TH // 2, 0, 1, 0, TH), (Mode.FIRE, -TH // 2, 1, -1, 0, TH),
        (Mode.SILENT, 0, 1, A, B, 1), (Mode.SILENT, 0, 0, -A - 1, -B - 1, 1), (Mode.SILENT, 0, 0, 5, -7, 1),
        (Mode.OUT_FIRST, 0, 0, A, B, 1), (Mode.OUT, O, 0, A, 0, 1), (Mode.OUT, -O - 1, 0, -A - 1, 0, 1),
        (Mode.OUT, 2**59, 0, -A - 1, 0, 1), (Mode.OUT, -(2**59), 0, 12345, 0, 1),
    ]
    check(p, vecs)
    rng = random.Random(2)
    vecs = [(m, rng.randint(-V - 1, V) if m < 2 else rng.randint(-O - 1, O), rng.randint(0, 1),
             rng.randint(-A - 1, A), rng.randint(-B - 1, B), rng.randint(1, TH))
            for m in (rng.choice(list(Mode)) for _ in range(200))]
    check(p, vecs)


@pytest.mark.parametrize("kw, msg", [
    (dict(lanes=3), "lanes must be a power of two"),
    (dict(membrane_bits=33), "membrane_bits must be in"),
    (dict(membrane_bits=8, weight_bits=8), "too small for 8-bit weights"),
    (dict(acc_bits=4, weight_bits=8), "acc_bits must be in"),
    (dict(output_bits=63), "output_bits must be in"),
    (dict(neurons=12, lanes=8), "multiple of lanes"),
    (dict(threshold_bits=0), "threshold_bits"),
    (dict(synapse_rows=0), "synapse_rows"),
    (dict(lanes=8.0), "lanes must be an int"),
])
def test_params_validation(kw, msg):
    with pytest.raises(ValueError, match=msg):
        CoreParams(**kw)


def test_components_reject_non_params():
    with pytest.raises(TypeError):
        TsaLane({"lanes": 4})
