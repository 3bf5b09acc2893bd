"""The virtual board (``cssnn board-sim``, ``cssnn.boards.virtual``): the board's logic in Verilator behind a
pseudo-terminal, reached through pyserial like a board.

- the host driver over ``SerialTransport`` loads a random network and infers, bit-exact with the golden
  model, at 1 Mbaud and at the board's default rate;
- the command line end to end: ``cssnn board-sim`` serving ``cssnn selftest --port`` and ``cssnn infer
  --port``, with its exit report;
- the reset button and a client that leaves mid-frame, then clients that work again;
- simulated time freezes while the host is silent, and a request's bytes take their real bit time;
- line faults, and user errors as one line before anything is built.

All but the last need Verilator and pyserial. The tests share two Verilator builds (one design per
baud rate), cached across sessions.
"""

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from cssnn.boards.top import DEFAULT_BAUD
from cssnn.boards.virtual import VirtualBoard
from cssnn.cli import main
from cssnn.hw.link.wire import Cmd, Status
from cssnn.hw.memmap import PROTOCOL_VERSION, Counter, Reg, Sel
from cssnn.hw.params import CoreParams
from cssnn.sw.host.accelerator import Accelerator
from cssnn.sw.host.compare import compare_with_golden
from cssnn.sw.host.protocol import SerialTransport, encode_reply, encode_request
from cssnn.sw.spec.network import save_network
from cssnn.verif.netgen import mlp_784_256_10, random_inputs, random_network


def _missing() -> str | None:
    from cssnn.sim.verilator import ensure_verilator

    try:
        import serial  # noqa: F401

        ensure_verilator()
    except Exception as e:
        return str(e)
    return None


MISSING = _missing()
needs_sim = pytest.mark.skipif(MISSING is not None, reason=f"virtual board tools missing: {MISSING}")

#: A second rate besides the default: 30 clocks per bit at the iCEBreaker's 30 MHz.
FAST = 1_000_000


@pytest.fixture(scope="module")
def net():
    """A random 3-layer network (convolution, sum pool, dense; T = 10) sized for the iCEBreaker."""
    return random_network(np.random.default_rng(1), CoreParams(membrane_bits=12), max_layers=3, max_size=24)


@pytest.fixture(scope="module")
def xs(net):
    return random_inputs(np.random.default_rng(2), net, 4)


@pytest.fixture(scope="module")
def board(net):
    with VirtualBoard(net, "icebreaker", baud=FAST) as vb:
        yield vb


def _bit_exact(vb, net, xs, *, timeout: float = 0.5) -> Accelerator:
    """Identify, load ``net`` and infer ``xs`` over the serial port; assert bit-exact results."""
    with Accelerator(SerialTransport(vb.port, baudrate=vb.baud, timeout=timeout)) as acc:
        assert acc.identify().params.core == vb.ap.core
        acc.load(net)
        batch = acc.infer_batch(xs)
    cmp = compare_with_golden(net, xs, batch, membrane_bits=vb.ap.core.membrane_bits)
    assert cmp.bit_exact, [str(m) for m in cmp.mismatches[:3]]
    return acc


def _frozen(vb, deadline: float = 30.0) -> dict:
    t0 = time.perf_counter()
    while not (s := vb.status())["frozen"]:
        assert time.perf_counter() - t0 < deadline, f"the virtual board never went idle: {s}"
        time.sleep(0.02)
    return s


def _echo(port: str, baud: int, payload: bytes, seq: int = 5, timeout: float = 2.0) -> bytes:
    """Send an ECHO with raw pyserial; return the reply's bytes (the expected ones or whatever came)."""
    import serial

    expected = encode_reply(Status.OK, Cmd.ECHO, seq, payload)
    with serial.Serial(port, baud, timeout=timeout) as s:
        s.write(encode_request(Cmd.ECHO, seq, payload))
        return s.read(len(expected))


@needs_sim
@pytest.mark.parametrize("baud", [FAST, None], ids=["1Mbaud", "default-baud"])
def test_accelerator_over_the_serial_port_is_bit_exact(net, xs, board, baud):
    if baud is None:   # the board's own rate
        with VirtualBoard(net, "icebreaker") as vb:
            assert vb.baud == DEFAULT_BAUD and vb.divisor == round(30e6 / vb.baud)
            acc = _bit_exact(vb, net, xs)
            s = vb.status()
    else:
        acc = _bit_exact(board, net, xs)
        s = board.status()
    assert acc.client.stats["retries"] == 0, acc.client.stats
    assert s["rx_bytes"] > 0 and s["tx_bytes"] > 0 and s["tx_framing_errors"] == 0
    assert s["leds"][1]["role"] == "busy" and s["leds"][1]["toggles"] >= 2   # on and off for every inference


@needs_sim
def test_cli_board_sim_serves_selftest_and_infer(net, xs, tmp_path, capsys):
    path = tmp_path / "net.npz"
    save_network(net, path)
    (tmp_path / "x.txt").write_text(" ".join(map(str, xs[0])))
    proc = subprocess.Popen([sys.executable, "-m", "cssnn", "board-sim", str(path), "--board", "icebreaker",
                             "--baud", str(FAST), "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready = json.loads(proc.stdout.readline() or "null")
        assert ready is not None, proc.stderr.read()
        assert ready["board"] == "icebreaker" and ready["baud"] == FAST and ready["divisor"] == 30
        assert ready["clock_hz"] == 30e6 and ready["port"].startswith("/dev/")
        port = ready["port"]

        assert main(["selftest", "--port", port, "--baud", str(FAST), "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["ok"]
        assert main(["infer", str(path), "--port", port, "--baud", str(FAST), "--input", str(tmp_path / "x.txt"),
                     "--json"]) == 0
        r = json.loads(capsys.readouterr().out)
        assert r["matches_golden"] and r["device"] == port
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    final = json.loads(out.strip().splitlines()[-1])
    assert final["cycles"] > 0 and final["seconds"] == pytest.approx(final["cycles"] / 30e6)
    assert final["rx_bytes"] > 0 and final["tx_bytes"] > 0 and len(final["leds"]) == 2


@needs_sim
def test_reset_button_and_a_client_that_leaves_mid_frame(net, xs, board):
    import serial

    acc = _bit_exact(board, net, xs[:1])
    assert acc.client.stats["retries"] == 0
    before = board.status()
    after = board.reset(1000)   # no request outstanding
    assert after["cycles"] >= before["cycles"] + 1000
    with Accelerator(SerialTransport(board.port, baudrate=board.baud)) as fresh:
        fresh.identify()   # answers again; the registers and counters were reset with the board
        assert fresh.client.read(Sel.REG, Reg.TIMESTEPS, 1) == [0]
        assert fresh.client.read(Sel.COUNTER, Counter.RUN_CYCLES, 1) == [0]
    _bit_exact(board, net, xs[:2])

    # half a frame, and the client is gone: the link times out on it and replies TIMEOUT to nobody
    frame = encode_request(Cmd.ECHO, 9, bytes(range(40)))
    with serial.Serial(board.port, board.baud) as s:
        s.write(frame[:len(frame) // 2])
        s.flush()
    sent = board.status()["tx_bytes"]
    assert _frozen(board)["tx_bytes"] == sent + len(encode_reply(Status.TIMEOUT, Cmd.ECHO, 9))
    acc = _bit_exact(board, net, xs[:1])   # a fresh client on a link that is hunting for a frame again
    assert acc.client.stats["retries"] == 0 and acc.client.stats["errors"] == 0, acc.client.stats


@needs_sim
def test_time_freezes_while_the_host_is_silent_and_bits_take_their_time(board):
    s = _frozen(board)
    assert s["cycles"] - max(s["last_tx_end"], s["rx_start"]) >= board.idle_cycles - board.divisor
    time.sleep(0.5)
    assert board.status()["cycles"] == s["cycles"]

    payload = bytes(range(32))
    reply = _echo(board.port, board.baud, payload)
    assert reply == encode_reply(Status.OK, Cmd.ECHO, 5, payload)
    t = board.status()
    assert t["rx_start"] >= s["cycles"]   # time ran again from where it stood
    # one request, one reply, each byte 10 bits of `divisor` clocks (the link takes the request's last byte
    # in the middle of its stop bit), and a few clocks of the link's own
    line = (len(encode_request(Cmd.ECHO, 5, payload)) + len(reply)) * 10 * board.divisor
    assert line - board.divisor <= t["last_tx_end"] - t["rx_start"] < line + 10 * board.divisor


@needs_sim
def test_line_faults_drop_and_flip_bytes_to_the_board(board):
    payload = b"faults"
    _frozen(board)
    frame_bytes = len(encode_request(Cmd.ECHO, 5, payload))
    s0 = board.faults(drop=1.0)
    assert _echo(board.port, board.baud, payload, timeout=0.5) == b""   # every byte lost: silence
    s1 = board.faults(flip=1.0, seed=3)
    assert s1["rx_dropped"] - s0["rx_dropped"] == frame_bytes and s1["rx_bytes"] == s0["rx_bytes"]
    assert _echo(board.port, board.baud, payload, timeout=0.5) != encode_reply(Status.OK, Cmd.ECHO, 5, payload)
    s2 = board.faults()
    assert s2["rx_flipped"] - s1["rx_flipped"] == frame_bytes
    _frozen(board)   # the damaged frame timed out
    assert _echo(board.port, board.baud, payload) == encode_reply(Status.OK, Cmd.ECHO, 5, payload)


def test_user_errors_are_one_line_before_any_build(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CSSNN_SIM_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "net.npz"
    save_network(random_network(np.random.default_rng(1), CoreParams(membrane_bits=12), max_layers=3, max_size=24),
                 path)
    big = tmp_path / "big.npz"
    save_network(mlp_784_256_10(), big)
    for argv, what in (([path, "--baud", "10000000"], "minimum"), ([path, "--baud", "1818182"], "off"),
                       ([path, "--baud", "0"], "positive"), ([big], "needs")):
        assert main(["board-sim", *map(str, argv), "--board", "icebreaker"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("cssnn board-sim: error:") and err.count("\n") == 1, err
        assert what in err, err
    with pytest.raises(ValueError, match="unknown board"):
        VirtualBoard(path, "de10-nano")
    assert not (tmp_path / "cache").exists()


# ---- faults a board user meets, through the virtual board ----

#: A short frame timeout (2 ms of board time) for the fault tests: in wall time the virtual board is ~25x
#: slower than the board, and the client's resync must outlast the link's frame timeout.
SHORT_TIMEOUT = dict(timeout_cycles=1 << 16)


@pytest.fixture(scope="module")
def faulty(net):
    with VirtualBoard(net, "icebreaker", baud=FAST, **SHORT_TIMEOUT) as vb:
        yield vb


@needs_sim
def test_a_batch_over_a_line_that_flips_and_drops_bytes_is_bit_exact(net, faulty):
    xs = random_inputs(np.random.default_rng(7), net, 60)
    with Accelerator(SerialTransport(faulty.port, baudrate=faulty.baud, timeout=0.3), retries=8) as acc:
        acc.load(net)
        assert acc.batchable()
        faulty.faults(flip=0.002, drop=0.002, seed=4)
        try:
            batch = acc.infer_batch(xs, counters=False)
        finally:
            s = faulty.faults()
    assert s["rx_flipped"] + s["rx_dropped"] > 0 and acc.client.stats["retries"] > 0
    assert compare_with_golden(net, xs, batch, membrane_bits=faulty.ap.core.membrane_bits).bit_exact


@needs_sim
def test_a_reset_during_a_batch_is_an_error_and_the_network_must_be_loaded_again(net, faulty):
    import threading

    from cssnn.sw.host.accelerator import DeviceReset

    xs = random_inputs(np.random.default_rng(8), net, 400)
    _frozen(faulty)
    with Accelerator(SerialTransport(faulty.port, baudrate=faulty.baud, timeout=0.3)) as acc:
        acc.load(net)
        start = faulty.status()["tx_bytes"]

        def press():   # once some replies are out, mid-batch
            while faulty.status()["tx_bytes"] < start + 2000:
                time.sleep(0.01)
            faulty.reset()

        t = threading.Thread(target=press)
        t.start()
        with pytest.raises(DeviceReset, match="reset during the batch"):
            acc.infer_batch(xs, counters=False)
        t.join()
        with pytest.raises(RuntimeError, match="no network loaded"):   # the half-lost network is not used
            acc.infer_batch(xs[:2], counters=False)
        acc.load(net)
        batch = acc.infer_batch(xs[:20], counters=False)
    assert compare_with_golden(net, xs[:20], batch, membrane_bits=faulty.ap.core.membrane_bits).bit_exact


@needs_sim
def test_a_network_too_big_for_the_bitstream_is_one_line_and_writes_nothing(faulty, tmp_path, capsys):
    big = tmp_path / "big.npz"
    save_network(mlp_784_256_10(), big)
    _frozen(faulty)
    before = faulty.status()["rx_bytes"]
    (tmp_path / "x.txt").write_text(" ".join(["0"] * 784))
    assert main(["infer", str(big), "--port", faulty.port, "--baud", str(FAST), "--input", str(tmp_path / "x.txt")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cssnn infer: error: the network does not fit this accelerator") and err.count("\n") == 1
    assert faulty.status()["rx_bytes"] - before == len(encode_request(Cmd.IDENTIFY, 0))   # IDENTIFY alone


def test_a_device_of_another_protocol_version_is_one_line(net, tmp_path, capsys):
    """A fake board on a pseudo-terminal answers IDENTIFY as a protocol-3 bitstream would."""
    import os
    import threading
    import tty

    pytest.importorskip("serial")
    from cssnn.sw.mapping.sizing import params_for
    from cssnn.verif.device_model import DeviceModel

    dev = DeviceModel(params_for(net))
    old = bytearray(dev.ident_bytes[:100])
    old[4:6] = (3).to_bytes(2, "little")
    dev.ident_bytes = bytes(old)
    master, slave = os.openpty()
    tty.setraw(slave)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                data = os.read(master, 4096)
            except OSError:
                return
            os.write(master, dev.feed(data))

    threading.Thread(target=serve, daemon=True).start()
    path = tmp_path / "net.npz"
    save_network(net, path)
    try:
        (tmp_path / "x.txt").write_text(" ".join(["0"] * net.n_inputs))
        assert main(["infer", str(path), "--port", os.ttyname(slave), "--input", str(tmp_path / "x.txt")]) == 2
    finally:
        stop.set()
        os.close(slave)
        os.close(master)
    err = capsys.readouterr().err
    assert f"protocol version 3, this host version {PROTOCOL_VERSION}: rebuild the bitstream" in err and err.count("\n") == 1


@needs_sim
def test_the_link_benchmark_measures_a_batch_at_the_link_limit():
    """``python -m cssnn.bench.link`` on a short digits batch: bit-exact, one request per sample, and at
    least 85 % of the lower limit even for 24 samples (the first request's and last reply's line time
    are the overhead)."""
    from cssnn.bench.link import TARGET, measure

    r = measure("icebreaker", DEFAULT_BAUD, 24)
    assert r["bit_exact"] and r["requests"] == 24 and r["retries"] == 0
    assert r["bytes_sent_per_inference"] == 7 + 5 + 64 and r["link_limit"] < r["compute_limit"]
    assert TARGET <= r["efficiency"] <= 1.0, r
