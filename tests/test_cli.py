"""The CLI contract: subcommand names, JSON keys, files written, one-line errors with exit code 2."""

import json
import subprocess
import sys

import numpy as np
import pytest

from cssnn.cli import main


def cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("cli")


def test_train_convert_eval(capsys, workdir):
    ann, snn = workdir / "ann.npz", workdir / "snn.npz"
    code, out, _ = cli(capsys, "train", "--dataset", "digits", "--out", ann, "--hidden", "64,32", "--seed", "0", "--json")
    assert code == 0 and json.loads(out)["ann_accuracy"] >= 0.96
    with np.load(ann) as z:  # the plain interchange format
        assert sorted(z.files) == ["W0", "W1", "W2", "b0", "b1", "b2"] and z["W0"].shape == (64, 64)
    code, out, _ = cli(capsys, "convert", ann, "--dataset", "digits", "--out", snn, "--timesteps", "6", "--json")
    assert code == 0 and json.loads(out)["timesteps"] == 6
    code, out, _ = cli(capsys, "eval", snn, "--dataset", "digits", "--json")
    r = json.loads(out)
    assert code == 0
    assert {"ann_accuracy", "snn_accuracy", "agreement", "timesteps", "coding", "synaptic_ops_per_sample"} <= r.keys()
    assert r["coding"] == "css" and r["timesteps"] == 6 and r["agreement"] >= 0.995
    code, out, _ = cli(capsys, "eval", snn)
    assert code == 0 and "agreement" in out and "css" in out
    code, out, _ = cli(capsys, "info", snn, "--json")
    assert code == 0 and json.loads(out)["thresholds"][0] == 128


def test_sweep_table_json_and_plot(capsys, workdir):
    ann = workdir / "ann.npz"
    if not ann.exists():
        cli(capsys, "train", "--out", ann)
    png = workdir / "sweep.png"
    code, out, _ = cli(capsys, "sweep", ann, "--dataset", "digits", "--codings", "css,rate", "--timesteps",
                       "1,4,64", "--plot", png, "--json")
    rows = json.loads(out)
    assert code == 0 and [(r["coding"], r["timesteps"]) for r in rows] == [
        ("css", 1), ("css", 4), ("css", 64), ("rate", 1), ("rate", 4), ("rate", 64)]
    assert "skipped" in rows[2] and "62" in rows[2]["skipped"]  # T=64 CSS logits would need > 62 bits
    assert all("agreement" in r for i, r in enumerate(rows) if i != 2)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, out, _ = cli(capsys, "sweep", ann, "--codings", "css", "--timesteps", "2,4", "--plot", workdir / "s2.png")
    assert code == 0 and "agreement" in out and out.count("\ncss") == 2


@pytest.mark.parametrize("argv, message", [
    (["convert", "missing.npz", "--out", "x.npz"], "missing.npz: no such file"),
    (["eval", "missing.npz"], "no such file"),
    (["convert", "{ann}", "--out", "{out}", "--timesteps", "0"], "timesteps must be a positive integer"),
    (["convert", "{ann}", "--out", "{out}", "--timesteps", "40"], "output integrators need"),
    (["convert", "{ann}", "--out", "{out}", "--dataset", "{other}"], "3 features but the ANN expects 64"),
    (["eval", "{ann}"], "is this an ANN file"),
    (["sweep", "{ann}", "--codings", "morse"], "unknown coding 'morse'"),
])
def test_errors_are_one_line_and_write_nothing(capsys, workdir, tmp_path, argv, message):
    ann = workdir / "ann.npz"
    if not ann.exists():
        cli(capsys, "train", "--out", ann, "--epochs", "5")
    other = tmp_path / "other.npz"
    np.savez(other, x_train=np.zeros((4, 3)), y_train=np.zeros(4, int), x_test=np.zeros((2, 3)), y_test=np.zeros(2, int))
    out = tmp_path / "out.npz"
    argv = [a.format(ann=ann, out=out, other=other) for a in argv]
    code, stdout, err = cli(capsys, *argv)
    assert code == 2 and message in err and err.count("\n") == 1 and stdout == ""
    assert not out.exists() and not list(tmp_path.glob("*.tmp"))


def test_console_script_help():
    for args in ([], ["train"], ["convert"], ["eval"], ["sweep"], ["info"]):
        r = subprocess.run([sys.executable, "-m", "cssnn", *args, "--help"], capture_output=True, text=True)
        assert r.returncode == 0 and "usage: cssnn" in r.stdout


def test_serial_commands_without_pyserial_say_how_to_install(capsys, workdir, monkeypatch):
    """`--port` without the serial extra: the one-line install hint, not a traceback."""
    from cssnn.boards.sanity import tiny_network
    from cssnn.sw.spec.network import save_network

    monkeypatch.setitem(sys.modules, "serial", None)   # import serial -> ImportError
    net = tiny_network()
    snn = save_network(net, workdir / "tiny.npz")
    (workdir / "x.txt").write_text(" ".join(["0.5"] * net.n_inputs))
    for argv in (("infer", snn, "--input", workdir / "x.txt", "--port", "/dev/ttyUSB9"),
                 ("selftest", "--port", "/dev/ttyUSB9")):
        code, out, err = cli(capsys, *argv)
        assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
        assert "pip install 'cssnn[serial]'" in err
