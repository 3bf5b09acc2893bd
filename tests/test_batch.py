"""Batch inference (protocol version 4): every sample one INFER request, sent ahead of the replies.

- on the Verilator System, bit-exact with the golden model and with the per-sample path, in the
  bytes and requests the protocol promises;
- a reset of the device during or before a batch is noticed (the INFER reply window, the T and L
  registers) and the network is never used half-loaded;
- ``cssnn infer --samples N --json``: its contract and its errors.
"""

import json

import numpy as np
import pytest

from cssnn.cli import main
from cssnn.hw.memmap import Sel
from cssnn.sim.transports import VerilatorTransport
from cssnn.sw.host.accelerator import Accelerator, DeviceReset
from cssnn.sw.host.compare import compare_with_golden
from cssnn.sw.mapping.sizing import params_for
from cssnn.sw.spec.network import save_network
from cssnn.verif.device_model import DeviceModel, ModelTransport
from cssnn.verif.netgen import digits_network


@pytest.fixture(scope="module")
def digits():
    net, xs = digits_network(6)
    return net, xs[:40]


def test_batch_on_verilator_is_bit_exact_in_one_stream(digits):
    net, xs = digits
    ap = params_for(net, lanes=8)
    with Accelerator(VerilatorTransport(ap)) as acc:
        acc.load(net)
        assert acc.batchable()
        before = dict(acc.client.stats)
        fast = acc.infer_batch(xs, counters=False)
        delta = {k: acc.client.stats[k] - before[k] for k in before}
        slow = acc.infer_batch(xs[:6])
        classes = acc.infer_batch(xs[:6], counters=False, logits=False)
    assert compare_with_golden(net, xs, fast, membrane_bits=ap.core.membrane_bits).bit_exact
    assert np.array_equal(fast.logits[:6], slow.logits) and np.array_equal(fast.classes[:6], slow.classes)
    assert np.array_equal(classes.classes, slow.classes) and classes.logits is None and fast.cycles is None
    # the window was set when the network was loaded: the batch is the INFER stream alone
    assert delta["requests"] == len(xs) and delta["retries"] == 0
    assert delta["bytes_sent"] == len(xs) * (7 + 5 + net.n_inputs)
    assert delta["bytes_received"] == len(xs) * (8 + ap.elem_bytes(Sel.COUNTER) + 10 * ap.elem_bytes(Sel.STATE))


def _model_accelerator(net):
    dev = DeviceModel(params_for(net, lanes=8), fifo_depth=512)
    acc = Accelerator(ModelTransport(dev))
    acc.load(net)
    return dev, acc


def test_a_reset_during_a_batch_is_noticed_and_the_network_is_not_used(digits):
    net, xs = digits
    dev, acc = _model_accelerator(net)
    acc.infer_batch(xs[:3], counters=False)
    dev.reset()   # the window and the registers return to their reset values
    with pytest.raises(DeviceReset, match="reset during the batch"):
        acc.infer_batch(xs[:3], counters=False)
    with pytest.raises(RuntimeError, match="no network loaded"):
        acc.infer_batch(xs[:3], counters=False)
    acc.load(net)
    assert len(acc.infer_batch(xs[:3], counters=False).classes) == 3


def test_a_reset_before_a_batch_with_another_window_is_noticed(digits):
    net, xs = digits
    dev, acc = _model_accelerator(net)
    dev.reset()
    with pytest.raises(DeviceReset, match="since the network was loaded"):
        acc.infer_batch(xs[:3], counters=False, logits=False)   # a new window: SETUP, then T and L checked
    assert acc.image is None


def test_infer_samples_cli(tmp_path, capsys, digits):
    net, _ = digits
    path = tmp_path / "snn.npz"
    save_network(net, path)
    assert main(["infer", str(path), "--samples", "12", "--backend", "verilator", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["samples"] == 12 and out["bit_exact"] is True and out["compared"] == ["class", "logits"]
    assert out["pipelined"] is True and out["requests"] == 12 and out["bytes_sent_per_inference"] == 7 + 5 + 64
    assert 0.8 <= out["accuracy"] <= 1 and out["inferences_per_second"] > 0 and out["bytes_per_inference"] > 76
    for argv, msg in [(["--samples", "0"], "at least 1"), (["--samples", "2", "--input", str(path)], "exclude")]:
        assert main(["infer", str(path), *argv]) == 2
        assert msg in capsys.readouterr().err


def test_a_batch_of_inputs_that_do_not_fill_the_last_lane_word():
    """9 inputs on 8 lanes: the encoder's padding lane is written (0) with every sample, on Verilator
    bit-exact with the golden model and with the per-sample path."""
    from cssnn.hw.params import CoreParams
    from cssnn.verif.netgen import random_inputs, random_network

    net = random_network(np.random.default_rng(2), CoreParams(membrane_bits=12), max_layers=2, max_size=20)
    assert net.n_inputs % 8
    xs = random_inputs(np.random.default_rng(3), net, 6)
    ap = params_for(net, lanes=8)
    with Accelerator(VerilatorTransport(ap)) as acc:
        acc.load(net)
        assert acc.batchable()
        fast, slow = acc.infer_batch(xs, counters=False), acc.infer_batch(xs)
    assert np.array_equal(fast.logits, slow.logits) and np.array_equal(fast.classes, slow.classes)
    assert compare_with_golden(net, xs, fast, membrane_bits=ap.core.membrane_bits).bit_exact
