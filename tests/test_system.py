"""End to end: the host driver, the protocol, the host link, the controller, the router and the core,
against the golden model, on every simulator backend.

- cocotb on Verilator: the converted digits network on 200 test samples and random networks of depth
  1-4 through the real driver (``verif/cocotb_system.py``);
- the direct Verilator harness and Amaranth's simulator through ``cssnn sim`` / ``cssnn infer``;
- random networks in waves order on an overlapping 8-lane core, both list walks: consecutive layer-steps
  meet in every way the schedule gives (one-word steps back to back, a word reading what the step before
  writes back, sums forwarded from the accumulate stage), bit-exact with every counter;
- the driver rejects a network that does not fit before writing anything; a corrupted frame on the
  real gateware gets an error reply and the link keeps working.
"""

import dataclasses
import json

import numpy as np
import pytest

from cssnn.cli import main
from cssnn.hw.memmap import AccelParams, Sel
from cssnn.hw.params import CoreParams
from cssnn.sim.transports import AmaranthTransport, VerilatorTransport, system_verilog
from cssnn.sim.verilator import lint, run_cocotb_module
from cssnn.sw.host.accelerator import Accelerator
from cssnn.sw.host.compare import compare_with_golden
from cssnn.sw.mapping.image import place_network
from cssnn.sw.mapping.requirements import DoesNotFit
from cssnn.sw.mapping.sizing import params_for
from cssnn.sw.spec.golden import run
from cssnn.sw.spec.network import save_network
from cssnn.verif.netgen import digits_network, random_inputs, random_network

#: Room for the digits network (Bv = 13) and random networks of up to 4 weight layers.
E2E = AccelParams(core=CoreParams(lanes=8, weight_bits=8, membrane_bits=13, output_bits=32, acc_bits=16,
                                  bias_bits=16, threshold_bits=16, neurons=256, synapse_rows=1024),
                  max_layers=8, timestep_bits=4, fifo_depth=65)


def cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def digits_file(tmp_path_factory):
    net, _ = digits_network(6)
    path = tmp_path_factory.mktemp("system") / "digits.npz"
    save_network(net, path)
    return path


def test_system_verilog_lint_clean():
    _, path = system_verilog(E2E)
    res = lint(path, toplevel="cssnn_system")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "%Warning" not in res.stderr and "%Error" not in res.stderr, res.stderr


def test_cocotb_end_to_end_digits_200_and_random_depth_1_to_4():
    _, vpath = system_verilog(E2E)
    spec = {"ap": dataclasses.asdict(E2E),
            "cases": [{"kind": "digits", "timesteps": 6, "samples": 200},
                      {"kind": "random", "seed": 2026, "networks": 24, "samples": 2, "max_layers": 4}]}
    report = run_cocotb_module(vpath, "cssnn_system", "cssnn.verif.cocotb_system", spec)
    cases = report["cases"]
    bad = [m for c in cases for m in c["mismatches"]]
    assert not bad, f"{len(bad)} mismatches, first:\n" + "\n".join(bad[:10])
    assert cases[0]["name"] == "digits" and cases[0]["samples"] == 200
    depths = {c["n_layers"] for c in cases[1:]}
    assert depths == {1, 2, 3, 4}, depths
    assert sum(c["neg_spikes"] for c in cases) > 0


def test_cli_sim_verilator_bit_exact(capsys, digits_file):
    code, out, _ = cli(capsys, "sim", digits_file, "--dataset", "digits", "--samples", "60", "--backend",
                       "verilator", "--json")
    r = json.loads(out)
    assert code == 0, r
    assert r["bit_exact"] is True and r["mismatches"] == 0 and r["samples"] == 60
    assert r["cycles_per_inference"] >= r["ideal_cycles_per_inference"] > 0
    assert r["sim_cycles_per_second"] > 0 and r["accuracy"] == r["golden_accuracy"]


def test_cli_sim_amaranth_and_dataset_file(capsys, tmp_path, digits_file, digits):
    data = tmp_path / "few.npz"
    np.savez(data, x_train=digits.x_train[:20], y_train=digits.y_train[:20], x_test=digits.x_test[5:8],
             y_test=digits.y_test[5:8])
    code, out, _ = cli(capsys, "sim", digits_file, "--dataset", data, "--samples", "3", "--backend", "amaranth",
                       "--lanes", "4", "--json")
    r = json.loads(out)
    assert code == 0 and r["bit_exact"] and r["samples"] == 3 and r["hardware"]["lanes"] == 4
    assert r["hardware"]["walk"] == "rows"   # the dense network's lanes are even: no lane walk
    net, _ = digits_network(6)
    img = place_network(net, params_for(net, lanes=4).core)
    assert r["synapses"] == img.synapses == sum(layer.synapses for layer in net.layers)
    assert r["synapse_rows_used"] == img.rows_used < img.dense_rows
    assert r["synapse_memory_bits"] == img.rows_used * 4 * params_for(net, lanes=4).elem_bits(Sel.SYNAPSE)


def test_cli_infer_backend(capsys, digits_file, tmp_path):
    net, xs = digits_network(6)
    code, out, _ = cli(capsys, "infer", digits_file, "--backend", "verilator", "--index", "7", "--json")
    r = json.loads(out)
    gold = run(net, xs[7:8], membrane_bits=params_for(net).core.membrane_bits)
    assert code == 0 and r["matches_golden"] and r["logits"] == gold.logits[0].tolist()
    assert r["class"] == int(gold.classes[0]) and r["cycles"] > 0
    sample = tmp_path / "x.txt"
    sample.write_text(" ".join(str(int(v)) for v in xs[3]))
    code, out, _ = cli(capsys, "infer", digits_file, "--backend", "verilator", "--input", sample)
    assert code == 0 and "class" in out and "matches" in out
    code, _, err = cli(capsys, "infer", digits_file, "--index", "100000")
    assert code == 2 and "--index" in err


def test_driver_rejects_what_does_not_fit_before_writing():
    small = AccelParams(core=CoreParams(lanes=2, weight_bits=8, membrane_bits=13, output_bits=32, acc_bits=16,
                                        bias_bits=16, threshold_bits=16, neurons=32, synapse_rows=64),
                        max_layers=4, timestep_bits=4, fifo_depth=17)
    net, _ = digits_network(6)
    transport = AmaranthTransport(small)
    acc = Accelerator(transport)
    sent = []
    send = transport.send
    transport.send = lambda data: (sent.append(bytes(data)), send(data))[1]
    acc.identify()
    n_identify = len(sent)
    with pytest.raises(DoesNotFit, match="does not fit"):
        acc.load(net)
    assert len(sent) == n_identify  # nothing but IDENTIFY went out


def test_corrupted_frames_on_the_real_link_then_inference_still_works():
    from cssnn.hw.link.wire import Cmd
    from cssnn.sw.host.protocol import encode_request

    rng = np.random.default_rng(7)
    p = AccelParams(core=CoreParams(lanes=2, weight_bits=6, membrane_bits=12, output_bits=24, acc_bits=12,
                                    bias_bits=10, threshold_bits=8, neurons=32, synapse_rows=128),
                    max_layers=4, timestep_bits=4, fifo_depth=17)
    net = random_network(rng, p.core, max_layers=2, max_size=12)
    t = VerilatorTransport(p)
    try:
        acc = Accelerator(t)
        acc.load(net)
        x = rng.integers(0, net.input_limit + 1, size=net.n_inputs)
        want = run(net, x[None, :], membrane_bits=p.core.membrane_bits).logits[0]
        assert np.array_equal(acc.infer(x).logits, want)
        good = encode_request(Cmd.READ, 9, bytes([Sel.COUNTER]) + (0).to_bytes(4, "little") + (1).to_bytes(2, "little"))
        for trial in range(20):
            frame = bytearray(good)
            if trial % 3 == 0:
                frame[rng.integers(1, len(frame))] ^= 1 << int(rng.integers(8))  # flipped bit
            elif trial % 3 == 1:
                frame = frame[: rng.integers(1, len(frame))]                     # truncated
            else:
                frame = bytes(rng.integers(0, 256, size=int(rng.integers(1, 40)), dtype=np.uint8))  # noise
            t.send(bytes(frame))
            t.recv()  # an error reply (or nothing, for noise without a sync byte)
            assert np.array_equal(acc.infer(x).logits, want), f"trial {trial}"
    finally:
        t.close()


@pytest.mark.parametrize("walk", ["rows", "lanes"])
def test_random_networks_in_waves_on_an_overlapping_core_are_bit_exact(walk):
    core = dataclasses.replace(E2E.core, walk=walk)
    assert core.overlap
    ap = AccelParams(core=core, max_layers=4, timestep_bits=4, order="waves", fifo_depth=4 * 65)
    rng = np.random.default_rng(2026)
    done = 0
    with Accelerator(VerilatorTransport(ap)) as acc:
        while done < 24:
            net = random_network(rng, core, max_layers=3, max_size=40)
            if max([net.n_inputs] + [x.shape.n_out for x in net.layers]) > 64:
                continue
            xs = random_inputs(rng, net, 3)
            acc.load(net)
            cmp = compare_with_golden(net, xs, acc.infer_batch(xs), membrane_bits=core.membrane_bits)
            assert cmp.bit_exact, f"network {done} ({[net.n_inputs] + [x.shape.n_out for x in net.layers]}, " \
                                  f"T = {net.timesteps}): {cmp.mismatches[:2]}"
            done += 1
