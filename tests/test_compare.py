"""`cssnn compare` (CSS, cssnn's rate baseline, SpikingJelly side by side) and `cssnn report`."""

import json
import sys

import numpy as np
import pytest

from cssnn.cli import main
from cssnn.sw.analysis import spikingjelly_rate
from cssnn.sw.analysis.comparison import DEFAULT_TIMESTEPS, compare, steps_to_agreement
from cssnn.sw.frontends.datasets import Dataset
from cssnn.sw.frontends.importers import save_ann
from cssnn.sw.frontends.train import train_mlp

SJ_MISSING = spikingjelly_rate.available()
needs_sj = pytest.mark.skipif(SJ_MISSING is not None, reason=f"SpikingJelly part skipped: {SJ_MISSING}")
RUN_KEYS = {"tool", "coding", "timesteps", "steps", "accuracy", "agreement", "synaptic_ops_per_sample",
            "wall_seconds_per_sample"}


@pytest.fixture(scope="module")
def tiny(digits):
    """A small trained MLP and a 120-sample test split: big enough to agree, fast enough for CI."""
    ann = train_mlp(digits.x_train, digits.y_train, (16,), epochs=40, seed=0)
    data = Dataset("digits", digits.x_train, digits.y_train, digits.x_test[:120], digits.y_test[:120], (64,))
    return ann, data


@pytest.fixture(scope="module")
def tiny_result(tiny):
    return compare(*tiny, timesteps=(1, 2, 4, 8, 32))


def test_default_timesteps_cover_the_issue_list():
    assert {1, 2, 4, 6, 8, 16, 32, 64, 128, 256} <= set(DEFAULT_TIMESTEPS)


def test_runs_and_contract(tiny_result):
    r = tiny_result
    assert 0.8 < r["ann_accuracy"] <= 1
    for run in r["runs"]:
        assert RUN_KEYS <= run.keys()
        assert 0 <= run["agreement"] <= 1 and run["synaptic_ops_per_sample"] >= 0
    css = {run["timesteps"]: run for run in r["runs"] if (run["tool"], run["coding"]) == ("cssnn", "css")}
    rate = {run["timesteps"]: run for run in r["runs"] if (run["tool"], run["coding"]) == ("cssnn", "rate")}
    assert sorted(css) == sorted(rate) == [1, 2, 4, 8, 32]
    assert css[4]["steps"] == 4 + 2 and rate[4]["steps"] == 4  # CSS adds one step per layer of latency
    assert css[8]["agreement"] >= 0.99  # the point of CSS: a few steps reach the ANN's answers
    levels = {(s["tool"], s["coding"], s["level"]) for s in r["steps_to_agreement"]}
    assert {("cssnn", "css", 0.995), ("cssnn", "css", 1.0), ("cssnn", "rate", 0.995)} <= levels


def test_steps_to_agreement_is_the_first_run_reaching_the_level():
    runs = [{"tool": "cssnn", "coding": "rate", "timesteps": t, "steps": t, "agreement": a}
            for t, a in ((8, 0.99), (16, 0.995), (32, 0.99), (64, 1.0))]
    got = {s["level"]: (s["timesteps"], s["steps"]) for s in steps_to_agreement(runs)}
    assert got == {0.995: (16, 16), 1.0: (64, 64)}
    never = steps_to_agreement(runs[:1])
    assert [s["steps"] for s in never] == [None, None]


@needs_sj
def test_spikingjelly_is_given_its_best_and_counted_like_cssnn(tiny, tiny_result):
    ann, data = tiny
    sj = [run for run in tiny_result["runs"] if run["tool"] == "spikingjelly"]
    assert [run["timesteps"] for run in sj] == [1, 2, 4, 8, 32]
    assert len(tiny_result["spikingjelly"]["settings"]) == len(spikingjelly_rate.SETTINGS)
    for run in sj:   # the best setting at each T
        assert run["agreement"] == max(s["agreement"][str(run["timesteps"])]
                                       for s in tiny_result["spikingjelly"]["settings"])
    assert sj[-1]["agreement"] >= 0.98  # a working conversion, not a crippled one
    # Every weight of a trained layer is non-zero: each hidden spike reaches all n_out synapses.
    assert all(np.all(layer.weight != 0) for layer in ann.layers)
    for run in sj:
        expected = sum(s * layer.shape.n_out for s, layer in zip(run["spikes_per_layer"], ann.layers[1:]))
        assert run["synaptic_ops_per_sample"] == pytest.approx(expected, rel=1e-9)


@needs_sj
def test_spikingjelly_counts_only_existing_synapses(tiny):
    ann, data = tiny
    from cssnn.sw.spec.ann import ANN, ANNLayer

    w = ann.layers[1].weight.copy()
    w[:5] = 0   # five output neurons lose every synapse: each hidden spike reaches 5 fewer
    pruned = ANN((ann.layers[0], ANNLayer(ann.layers[1].shape, w, ann.layers[1].bias)), ann.input_shape)
    runs, _ = spikingjelly_rate.run_spikingjelly(pruned, data, (4,))
    assert runs[0]["synaptic_ops_per_sample"] == pytest.approx(runs[0]["spikes_per_layer"][0] * 5, rel=1e-9)


def test_without_spikingjelly_it_says_how_to_install(monkeypatch, tiny):
    monkeypatch.setitem(sys.modules, "spikingjelly", None)   # import spikingjelly -> ImportError
    monkeypatch.setitem(sys.modules, "spikingjelly.activation_based", None)
    monkeypatch.setitem(sys.modules, "spikingjelly.activation_based.ann2snn", None)
    reason = spikingjelly_rate.available()
    assert "pip install 'cssnn[spikingjelly]'" in reason
    r = compare(*tiny, timesteps=(2,))
    assert r["skipped_tools"] == [{"tool": "spikingjelly", "reason": reason}]
    assert {run["tool"] for run in r["runs"]} == {"cssnn"}


def test_cli_compare_json_plot_and_text(tmp_path, tiny, capsys):
    ann, _ = tiny
    save_ann(ann, tmp_path / "ann.npz")
    png = tmp_path / "cmp.png"
    assert main(["compare", str(tmp_path / "ann.npz"), "--timesteps", "1,4", "--json", "--plot", str(png)]) == 0
    r = json.loads(capsys.readouterr().out)
    assert {"ann_accuracy", "runs", "steps_to_agreement"} <= r.keys()
    assert r["command"].startswith("cssnn compare ") and png.stat().st_size > 10_000
    assert main(["compare", str(tmp_path / "ann.npz"), "--timesteps", "4", "--no-spikingjelly"]) == 0
    text = capsys.readouterr().out
    assert "steps to 99.5%" in text and "not run: spikingjelly: left out" in text


def test_cli_compare_errors(tmp_path, tiny, capsys):
    ann, _ = tiny
    save_ann(ann, tmp_path / "ann.npz")
    np.savez(tmp_path / "data.npz", x_train=np.zeros((4, 3)), y_train=np.zeros(4, int), x_test=np.zeros((2, 3)),
             y_test=np.zeros(2, int))
    for argv, msg in ((["compare", str(tmp_path / "nope.npz")], "no such file"),
                      (["compare", str(tmp_path / "ann.npz"), "--dataset", str(tmp_path / "data.npz")], "3 features")):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert msg in err and len(err.strip().splitlines()) == 1


def _build_json(tmp_path):
    b = {"board": "icebreaker", "device": "iCE40UP5K", "clock_mhz": 30.0, "fmax_mhz": 32.9, "timing_met": True,
         "utilization": {"ICESTORM_LC": {"used": 4250, "available": 5280}},
         "cycles_per_inference": 6288, "latency_us_per_inference": 209.6, "bit_exact": True,
         "command": "cssnn build snn.npz --board icebreaker --out b --json"}
    (tmp_path / "build.json").write_text(json.dumps(b))
    return tmp_path / "build.json"


def test_report(tmp_path, tiny_result, capsys):
    (tmp_path / "cmp.json").write_text(json.dumps({**tiny_result, "command": "cssnn compare ann.npz --json"}))
    sim = {"backend": "verilator", "samples": 20, "bit_exact": True, "cycles_per_inference": 2063.1,
           "ideal_cycles_per_inference": 1754.2, "synaptic_ops_per_inference": 11544.4, "accuracy": 0.95,
           "command": "cssnn sim snn.npz --samples 20 --json"}
    (tmp_path / "sim.json").write_text(json.dumps(sim))
    out = tmp_path / "rep"
    assert main(["report", "--out", str(out), "--compare", str(tmp_path / "cmp.json"), "--build",
                 str(_build_json(tmp_path)), "--sim", str(tmp_path / "sim.json"), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    md = (out / "report.md").read_text()
    for png in ("agreement.png", "spikes.png"):
        assert (out / png).stat().st_size > 10_000 and f"]({png})" in md
    assert "| cssnn | css | " in md and "### Steps to agreement" in md
    assert "`cssnn compare ann.npz --plot agreement.png`" in md            # how to regenerate the figure
    assert "`cssnn build snn.npz --board icebreaker --out b --json`" in md and "32.9 MHz" in md
    assert "`cssnn sim snn.npz --samples 20 --json`" in md and "| 1.18 |" in md
    assert r["report"] == str(out / "report.md") and len(r["files"]) == 3


def test_report_errors_write_nothing(tmp_path, capsys):
    out = tmp_path / "rep"
    build = _build_json(tmp_path)
    (tmp_path / "bad.json").write_text("{not json")
    cases = ((["--compare", str(build)], "not the output of `cssnn compare ANN --json`"),
             (["--sim", str(tmp_path / "bad.json")], "not a JSON file"),
             (["--build", str(tmp_path / "missing.json")], "no such file"),
             ([], "nothing to report"))
    for extra, msg in cases:
        assert main(["report", "--out", str(out), *extra]) == 2
        err = capsys.readouterr().err
        assert msg in err and len(err.strip().splitlines()) == 1
        assert not out.exists()


def test_report_compares_an_ann_itself(tmp_path, tiny, capsys):
    ann, _ = tiny
    save_ann(ann, tmp_path / "ann.npz")
    out = tmp_path / "rep"
    assert main(["report", "--out", str(out), "--ann", str(tmp_path / "ann.npz"), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    md = (out / "report.md").read_text()
    data = json.loads((out / "compare.json").read_text())
    assert {"runs", "steps_to_agreement", "command"} <= data.keys() and "](compare.json)" in md
    assert f"`cssnn compare {tmp_path / 'ann.npz'} --dataset digits --plot agreement.png`" in md
    assert data["command"] in md and sorted(r["files"]) == sorted(str(out / f) for f in
                                                                ("report.md", "agreement.png", "spikes.png", "compare.json"))
