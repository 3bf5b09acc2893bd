"""When the hardware differs from the golden model, ``cssnn sim`` names the first divergence (sample,
time step, layer, neuron, both values, the simulated cycles) and ``--trace`` writes the waveform to
open there. A planted fault (one bias changed in the hardware after loading) checks the report."""

import json

import numpy as np
import pytest

from cssnn.hw.memmap import Sel
from cssnn.hw.params import HostMem
from cssnn.sim.transports import VerilatorTransport
from cssnn.sw.host.accelerator import Accelerator
from cssnn.sw.host.compare import first_divergence, run_and_compare
from cssnn.sw.mapping.image import pack_lane
from cssnn.sw.mapping.sizing import params_for
from cssnn.sw.spec.network import save_network
from cssnn.verif.netgen import digits_network

LAYER, NEURON = 1, 5


def _plant(acc):
    """Change hidden layer 1's neuron 5 bias in the hardware only (the image keeps the right one)."""
    layer = acc.net.layers[LAYER - 1]
    bias = int(layer.expanded_bias[NEURON]) + 37
    addr = acc.image.state_addrs(LAYER)[NEURON]
    acc.client.write(Sel.BIAS, addr, [pack_lane(acc.params.core, HostMem.BIAS, bias)])


def test_first_divergence_names_the_planted_fault():
    net, xs = digits_network(4)
    ap = params_for(net, lanes=2)
    with Accelerator(VerilatorTransport(ap)) as acc:
        acc.load(net)
        assert first_divergence(acc, xs[0], 0) is None          # the real design: nothing departs
        _plant(acc)
        cmp = run_and_compare(acc, xs[:3])
        assert not cmp.bit_exact
        b = int(cmp.mismatched_samples[0])
        d = first_divergence(acc, xs[b], b)
        assert acc.client.read(Sel.REG, 0, 1) == [net.timesteps]  # T restored
    assert d is not None and (d.sample, d.layer, d.neuron, d.what) == (b, LAYER, NEURON, "membrane")
    assert d.timesteps == 1 and d.hardware != d.golden and d.cycles[1] > d.cycles[0]
    assert "first divergence: sample" in str(d) and f"layer {LAYER}, neuron {NEURON}" in str(d)


def test_cli_sim_reports_it_and_writes_the_waveform(capsys, tmp_path, monkeypatch):
    from cssnn.cli import main

    net, _ = digits_network(4)
    path = save_network(net, tmp_path / "snn.npz")
    real_load = Accelerator.load

    def load_then_plant(self, n):
        image = real_load(self, n)
        _plant(self)
        return image

    monkeypatch.setattr(Accelerator, "load", load_then_plant)
    vcd = tmp_path / "run.vcd"
    with pytest.raises(SystemExit) as exit_:   # a mismatch exits 1, after the report
        main(["sim", str(path), "--samples", "2", "--lanes", "2", "--trace", str(vcd), "--json"])
    r = json.loads(capsys.readouterr().out)
    assert exit_.value.code == 1 and r["bit_exact"] is False and r["trace"] == str(vcd)
    d = r["first_divergence"]
    assert (d["layer"], d["neuron"], d["what"], d["timesteps"]) == (LAYER, NEURON, "membrane", 1)
    text = vcd.read_text(errors="replace")[:20000]
    assert "$timescale" in text and "$var" in text and vcd.stat().st_size > 100_000


@pytest.mark.parametrize("argv, message", [
    (["--trace", "x.txt"], "--trace writes .vcd or .fst"),
    (["--trace", "x.vcd", "--samples", "50"], "at most 20 samples"),
])
def test_cli_sim_trace_errors(capsys, tmp_path, argv, message):
    from cssnn.cli import main

    net, _ = digits_network(4)
    path = save_network(net, tmp_path / "snn.npz")
    code = main(["sim", str(path), *[str(tmp_path / a) if a.endswith((".txt", ".vcd")) else a for a in argv]])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1
    np.testing.assert_equal(sorted(p.name for p in tmp_path.iterdir()), ["snn.npz"])
