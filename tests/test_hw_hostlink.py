# amaranth: UnusedElaboratable=no
"""HostLink gateware in Amaranth's simulator, driven by the real Client (through sim.bytestream) and
by raw frames compared byte for byte with the pure-Python device model (docs/PROTOCOL.md)."""

import random
import subprocess
import tempfile
from pathlib import Path

import pytest
from amaranth.back import rtlil, verilog
from amaranth.sim import Simulator

from cssnn.hw.link import HostLink, wire
from cssnn.hw.link.wire import Cmd, Identity, Status
from cssnn.hw.memmap import AccelParams, Counter, Sel
from cssnn.hw.params import CoreParams
from cssnn.sim.bytestream import LossyTransport, SimTransport
from cssnn.sw.host import protocol as pr
from cssnn.sw.host.protocol import Client, LinkError, Reply, ReplyParser, encode_request, read_payload, write_payload
from cssnn.verif.bus_model import LinkRig
from cssnn.verif.device_model import DeviceModel, ModelTransport, counter_init

P = AccelParams(CoreParams(lanes=2, neurons=16, synapse_rows=32))
LINK = dict(max_payload=64, timeout_cycles=100, run_timeout_cycles=150)
RUN_CYCLES = 30


def rig(*, hang=False, gap=0.0, stall=0.0, seed=0, ap=P, link=LINK):
    r = LinkRig(ap, link, dict(run_cycles=RUN_CYCLES, hang=hang))
    # The transport's silence (250 clocks) exceeds the link's frame timeout (100) and watchdog (150).
    t = SimTransport(r, r.rx, r.tx, timeout_cycles=250, gap=gap, stall=stall, seed=seed,
                     watch={"writes": r.writes, "runs": r.runs})
    return r, t


def random_values(rng, ap, sel, n):
    return [rng.randrange(2**ap.elem_bits(sel)) for _ in range(n)]


# ---- the Client on the gateware ----

def test_identify_rebuilds_the_exact_params():
    for ap, link in [(P, LINK),
                     (AccelParams(CoreParams(lanes=4, weight_bits=5, membrane_bits=9, output_bits=20, acc_bits=11,
                                             bias_bits=9, threshold_bits=7, neurons=32, synapse_rows=20,
                                             counter_bits=20, synapse_ram="spram"),
                                  max_layers=3, timestep_bits=5, fifo_depth=9, tap_depth=2),
                      dict(max_payload=16, timeout_cycles=77, run_timeout_cycles=2**32 - 1))]:
        _, t = rig(ap=ap, link=link)
        ident = Client(t).identify()
        assert ident == Identity(ap, link["max_payload"], link["timeout_cycles"], link["run_timeout_cycles"])
        assert ident.params == ap


def test_write_then_read_every_selector_over_its_full_depth():
    _, t = rig(gap=0.3, stall=0.3, seed=1)   # random input gaps and output back-pressure
    c = Client(t)
    rng = random.Random(1)
    want = {}
    for s in Sel:
        n = P.depth(s)
        if P.writable(s):
            want[s] = random_values(rng, P, s, n)
            c.write(s, 0, want[s])
        else:
            want[s] = counter_init(P) if s == Sel.COUNTER else [0] * n
    for s in Sel:  # read back after everything was written: the selectors do not alias
        assert c.read(s, 0, P.depth(s)) == want[s], s.name
    # Partial, unaligned, frame-splitting transfers.
    s = Sel.SYNAPSE
    vals = random_values(rng, P, s, 40)
    c.write(s, 17, vals)
    assert c.read(s, 0, P.depth(s)) == want[s][:17] + vals + want[s][57:]
    assert c.echo(bytes(range(64))) == bytes(range(64))
    assert c.stats["retries"] == 0 and t.watched["writes"] == sum(P.depth(x) for x in Sel if P.writable(x)) + 40


def test_run_waits_for_done():
    _, t = rig()
    c = Client(t)
    c.run()
    assert t.watched["runs"] == 1 and c.read(Sel.COUNTER, Counter.RUN_CYCLES, 1) == [1]
    c.run()
    assert c.read(Sel.COUNTER, Counter.RUN_CYCLES, 1) == [2] and c.stats["retries"] == 0


def test_run_watchdog_then_busy_and_the_link_keeps_working():
    _, t = rig(hang=True)
    c = Client(t, retries=1)
    with pytest.raises(LinkError) as e:
        c.run()
    assert e.value.status == Status.WATCHDOG and c.stats["attempts"] == 1
    for call in (lambda: c.write(Sel.BIAS, 0, [1]), lambda: c.read(Sel.BIAS, 0, 1), c.run):
        with pytest.raises(LinkError) as e:
            call()
        assert e.value.status == Status.BUSY
    assert t.watched["writes"] == 0
    assert c.identify().params == P and c.echo(b"still here") == b"still here"


def test_client_over_a_damaged_line_into_the_gateware():
    _, t = rig(gap=0.1, stall=0.1, seed=5)
    line = LossyTransport(t, drop=0.003, corrupt=0.003, garbage=0.003, seed=5)
    c = Client(line, retries=8)
    assert c.identify().params == P
    rng = random.Random(5)
    for s in (Sel.SYNAPSE, Sel.STATE, Sel.LAYER):
        vals = random_values(rng, P, s, P.depth(s))
        c.write(s, 0, vals)
        assert c.read(s, 0, len(vals)) == vals
    assert line.damaged > 0 and c.stats["retries"] > 0


# ---- raw frames: every reply byte for byte as the model's ----

def frames_under_test(rng):
    eb = {s: P.elem_bytes(s) for s in Sel}
    good_write = encode_request(Cmd.WRITE, 10, write_payload(Sel.BIAS, 2, [0xBEEF, 0x1234], eb[Sel.BIAS]))
    cases = [
        ("identify", encode_request(Cmd.IDENTIFY, 1)),
        ("echo empty", encode_request(Cmd.ECHO, 2)),
        ("write", good_write),
        ("read back", encode_request(Cmd.READ, 11, read_payload(Sel.BIAS, 1, 4))),
        ("read max", encode_request(Cmd.READ, 12, read_payload(Sel.ROUTE, 0, P.depth(Sel.ROUTE)))),
        ("run", encode_request(Cmd.RUN, 13)),
        ("unknown 0x00", encode_request(0x00, 3)),
        ("unknown 0x08", encode_request(0x08, 4, b"xyz")),
        ("infer before setup: the class alone", encode_request(Cmd.INFER, 30, write_payload(Sel.BIAS, 3, [7, 0xFF], 1))),
        ("setup", encode_request(Cmd.SETUP, 31, read_payload(Sel.BIAS, 2, 3))),
        ("infer", encode_request(Cmd.INFER, 32, write_payload(Sel.BIAS, 2, [1, 2, 0x80], 1))),
        ("infer to the last element", encode_request(Cmd.INFER, 33, write_payload(Sel.BIAS, P.depth(Sel.BIAS) - 1, [9], 1))),
        ("infer beyond", encode_request(Cmd.INFER, 33, write_payload(Sel.BIAS, P.depth(Sel.BIAS) - 1, [9, 9], 1))),
        ("infer no element", encode_request(Cmd.INFER, 34, write_payload(Sel.BIAS, 0, [], 1))),
        ("infer to COUNTER", encode_request(Cmd.INFER, 35, write_payload(Sel.COUNTER, 0, [1], 1))),
        ("infer sel 9", encode_request(Cmd.INFER, 35, write_payload(len(Sel), 0, [1], 1))),
        ("infer short", encode_request(Cmd.INFER, 35, b"\x02\x00")),
        ("setup count 0", encode_request(Cmd.SETUP, 36, read_payload(Sel.BIAS, 0, 0))),
        ("infer, the class alone again", encode_request(Cmd.INFER, 36, write_payload(Sel.BIAS, 0, [3], 1))),
        ("setup count 0 beyond", encode_request(Cmd.SETUP, 36, read_payload(Sel.BIAS, P.depth(Sel.BIAS) + 1, 0))),
        ("setup over max_payload", encode_request(Cmd.SETUP, 36, read_payload(Sel.STATE, 0, 64 // 5 + 1))),
        ("setup at max_payload", encode_request(Cmd.SETUP, 37, read_payload(Sel.STATE, 0, 64 // 5))),
        ("infer with the longest reply", encode_request(Cmd.INFER, 38, write_payload(Sel.ACC, 0, [5] * 20, 1))),
        ("setup beyond", encode_request(Cmd.SETUP, 39, read_payload(Sel.SYNAPSE, 60, 5))),
        ("setup sel 0xff", encode_request(Cmd.SETUP, 39, read_payload(0xFF, 0, 1))),
        ("setup long", encode_request(Cmd.SETUP, 39, read_payload(Sel.BIAS, 0, 1) + b"\x00")),
        ("setup a counter window", encode_request(Cmd.SETUP, 40, read_payload(Sel.COUNTER, 0, 6))),
        ("infer after", encode_request(Cmd.INFER, 41, write_payload(Sel.SYNAPSE, 5, list(range(30)), 1))),
        ("unknown 0xff", encode_request(0xFF, 5)),
        ("identify with payload", encode_request(Cmd.IDENTIFY, 6, b"\x00")),
        ("run with payload", encode_request(Cmd.RUN, 6, b"\x00\x01")),
        ("read short", encode_request(Cmd.READ, 7, read_payload(Sel.BIAS, 0, 1)[:-1])),
        ("read long", encode_request(Cmd.READ, 7, read_payload(Sel.BIAS, 0, 1) + b"\x00")),
        ("write no header", encode_request(Cmd.WRITE, 8, b"\x02\x00\x00\x00")),
        ("write no element", encode_request(Cmd.WRITE, 8, write_payload(Sel.BIAS, 0, [], 2))),
        ("write partial element", encode_request(Cmd.WRITE, 8, write_payload(Sel.STATE, 0, [5], 5)[:-1])),
        ("read count 0", encode_request(Cmd.READ, 9, read_payload(Sel.BIAS, 0, 0))),
        ("read over max_payload", encode_request(Cmd.READ, 9, read_payload(Sel.STATE, 0, 64 // 5 + 1))),
        ("read count 65535", encode_request(Cmd.READ, 9, read_payload(Sel.STATE, 0, 0xFFFF))),
        ("sel 9", encode_request(Cmd.READ, 14, read_payload(len(Sel), 0, 1))),
        ("sel 0xff write", encode_request(Cmd.WRITE, 14, write_payload(0xFF, 0, [1], 1))),
        ("addr at depth", encode_request(Cmd.READ, 15, read_payload(Sel.REG, 2, 1))),
        ("addr + count beyond", encode_request(Cmd.READ, 15, read_payload(Sel.SYNAPSE, 60, 5))),
        ("addr high bits", encode_request(Cmd.WRITE, 15, write_payload(Sel.SYNAPSE, 1 << 31, [1], 2))),
        ("addr 2^32-1", encode_request(Cmd.READ, 15, read_payload(Sel.SYNAPSE, 2**32 - 1, 2))),
        ("write counter", encode_request(Cmd.WRITE, 16, write_payload(Sel.COUNTER, 0, [1], 4))),
        ("len > max_payload", bytes([0xA5, Cmd.WRITE, 17, 65, 0]) + bytes(70)),
        ("len 0xffff", bytes([0xA5, Cmd.ECHO, 17, 0xFF, 0xFF])),
        ("truncated header", bytes([0xA5, Cmd.READ, 18])),
        ("truncated payload", good_write[:9]),
        ("truncated crc", good_write[:-1]),
        ("sync only", b"\xa5"),
        ("garbage without sync", bytes(rng.choice([b for b in range(256) if b != 0xA5]) for _ in range(40))),
    ]
    for pos in (1, 2, 3, 6, 10, len(good_write) - 1):  # bad CRC: header, payload and CRC bytes
        bad = bytearray(good_write)
        bad[pos] ^= 1 << rng.randrange(8)
        cases.append((f"bit flip at {pos}", bytes(bad)))
    for i in range(12):  # garbage with SYNC bytes in it
        cases.append((f"noise {i}", bytes(rng.choice([0xA5, rng.randrange(256)]) for _ in range(rng.randrange(1, 30)))))
    for i in range(12):  # random CRC-valid frames: random commands, selectors, addresses, lengths
        cmd = rng.choice([Cmd.WRITE, Cmd.READ, Cmd.ECHO, Cmd.IDENTIFY, Cmd.SETUP, Cmd.INFER, rng.randrange(256)])
        sel = rng.choice([rng.randrange(8), rng.randrange(256)])
        payload = bytes([sel]) + rng.randrange(80).to_bytes(4, "little")
        payload += bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 2, 5, 13, 40])))
        cases.append((f"random frame {i}", encode_request(cmd, 20 + i, payload[:rng.randrange(len(payload) + 1)])))
    return cases


def test_every_frame_gets_the_models_reply_and_bad_frames_write_nothing():
    rng = random.Random(7)
    _, t = rig(gap=0.2, stall=0.2, seed=7)
    dev = DeviceModel(P, **LINK)
    for name, frame in frames_under_test(rng):
        writes = t.watched["writes"]
        t.send(frame)
        got = t.drain()   # the line goes quiet: the link has answered (or timed out) and hunts again
        want = dev.feed(frame) + dev.idle()
        assert got == want, f"{name}: {got.hex(' ')} != {want.hex(' ')}"
        replies = ReplyParser().feed(got)
        if any(r.status != Status.OK for r in replies) or not replies:
            assert t.watched["writes"] == writes, name  # an error (or no reply) wrote nothing
        # The link keeps working after every frame.
        t.send(encode_request(Cmd.ECHO, 0x77, name.encode()[:8]))
        assert ReplyParser().feed(t.drain()) == [Reply(Status.OK, Cmd.ECHO, 0x77, name.encode()[:8])], name
        dev.feed(encode_request(Cmd.ECHO, 0x77, b""))
    # Memory contents match the model after all that.
    c = Client(t)
    for s in Sel:
        assert c.read(s, 0, P.depth(s)) == dev.mem[s], s.name


def test_bad_crc_never_writes():
    _, t = rig()
    c = Client(t)
    frame = encode_request(Cmd.WRITE, 1, write_payload(Sel.SYNAPSE, 0, list(range(1, 30)), 2))
    rng = random.Random(2)
    for _ in range(8):
        bad = bytearray(frame)
        bad[rng.randrange(5, len(frame))] ^= 1 << rng.randrange(8)  # payload or CRC
        t.send(bytes(bad))
        assert [r.status for r in ReplyParser().feed(t.drain())] == [Status.BAD_CRC]
    assert t.watched["writes"] == 0 and c.read(Sel.SYNAPSE, 0, 29) == [0] * 29


def test_pipelined_requests_are_answered_in_order():
    # rx is back-pressured while the link executes, so a lossless byte source may send ahead.
    _, t = rig(stall=0.5, seed=3)
    frames = [encode_request(Cmd.WRITE, 1, write_payload(Sel.ACC, 0, [11, 22, 33], 2)),
              encode_request(Cmd.READ, 2, read_payload(Sel.ACC, 0, 3)),
              encode_request(Cmd.RUN, 3),
              encode_request(Cmd.READ, 4, read_payload(Sel.COUNTER, 0, 1)),
              encode_request(Cmd.ECHO, 5, b"end")]
    t.send(b"".join(frames))
    got = ReplyParser().feed(t.drain())
    assert [(r.status, r.seq) for r in got] == [(Status.OK, i) for i in range(1, 6)]
    assert got[1].payload == bytes([11, 0, 22, 0, 33, 0]) and got[3].payload == (1).to_bytes(4, "little")
    assert got[4].payload == b"end"


# ---- construction, structure, lint ----

def test_crc_gateware_matches_the_reference():
    from amaranth.hdl import Module, Signal

    from cssnn.hw.link.crc import CRC16_INIT, crc16_next
    from cssnn.verif.pysim import run_testbenches

    m = Module()
    crc, byte, out = Signal(16), Signal(8), Signal(16)
    m.d.comb += out.eq(crc16_next(crc, byte))
    rng = random.Random(4)

    def gateware_crc(ctx, data):
        c = CRC16_INIT
        for b in data:
            ctx.set(crc, c)
            ctx.set(byte, b)
            c = ctx.get(out)
        return c

    async def tb(ctx):
        for _ in range(500):
            c, b = rng.randrange(2**16), rng.randrange(256)
            ctx.set(crc, c)
            ctx.set(byte, b)
            assert ctx.get(out) == pr.crc16_update(c, [b])
        # The standard check value, and whole random messages, against the host's (binascii) CRC.
        assert gateware_crc(ctx, b"123456789") == pr.crc16(b"123456789") == 0x29B1
        for _ in range(20):
            data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40)))
            assert gateware_crc(ctx, data) == pr.crc16(data)

    run_testbenches(m, tb, clock=False)


def test_constructor_validates():
    with pytest.raises(TypeError, match="AccelParams"):
        HostLink(P.core)
    with pytest.raises(ValueError, match="max_payload"):
        HostLink(P, max_payload=8)
    with pytest.raises(ValueError, match="max_payload"):
        HostLink(P, max_payload=10**6)
    with pytest.raises(ValueError, match="timeout_cycles"):
        HostLink(P, timeout_cycles=1)
    with pytest.raises(ValueError, match="run_timeout_cycles"):
        HostLink(P, run_timeout_cycles=2**32)
    link = HostLink(P, max_payload=64)
    assert link.identity == Identity(P, 64, 1 << 20, 1 << 24)
    assert set(link.signature.members) == {"rx", "tx", "bus"}
    rtlil.convert(link)


def test_no_multiplier_and_one_buffer_memory():
    text = rtlil.convert(HostLink(AccelParams()), name="hostlink")
    assert "$mul" not in text and "$div" not in text and "$mod" not in text
    assert "cell $gt " not in text and "cell $le " not in text   # slow compares, see test_hw_components
    assert text.count("cell $memrd_v2 ") == 1 and text.count("cell $memwr_v2 ") == 1


def test_verilator_lint():
    from cssnn.sim.verilator import LINT_WAIVERS, ensure_verilator

    try:
        exe = ensure_verilator()
    except Exception as e:  # pragma: no cover - verilator is a project dependency
        pytest.skip(f"no verilator: {e}")
    with tempfile.TemporaryDirectory() as d:
        for i, (ap, kw) in enumerate([(AccelParams(), {}), (P, LINK)]):
            path = Path(d) / f"hostlink{i}.v"
            path.write_text(verilog.convert(HostLink(ap, **kw), name="hostlink", emit_src=False))
            res = subprocess.run([exe, "--lint-only", *LINT_WAIVERS,
                                  "--top-module", "hostlink", str(path)], capture_output=True, text=True)
            assert res.returncode == 0, res.stderr[-3000:]


def _clocks_to_reply(link, request: bytes) -> int:
    """Clocks from the last request byte taken to the first reply byte offered (the model hangs
    every RUN, so a RUN is answered only by the watchdog)."""
    r = LinkRig(P, link, dict(hang=True))
    out = {}

    async def tb(ctx):
        ctx.set(r.tx.ready, 0)
        for b in request:
            ctx.set(r.rx.payload, b)
            ctx.set(r.rx.valid, 1)
            while not ctx.get(r.rx.ready):
                await ctx.tick()
            await ctx.tick()
        ctx.set(r.rx.valid, 0)
        n = 0
        while not ctx.get(r.tx.valid):
            await ctx.tick()
            n += 1
        out["n"] = n

    sim = Simulator(r)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    return out["n"]


@pytest.mark.parametrize("timeout", [40, 41, 77])
def test_frame_timeout_and_watchdog_fire_on_the_exact_clock(timeout):
    """The shared timer's expiry is registered (for timing); it must still fire exactly as a direct
    compare would: TIMEOUT timeout_cycles + 1 clocks after a partial frame's last byte, WATCHDOG
    run_timeout_cycles + 3 clocks after a RUN request's last byte."""
    partial = bytes([wire.SYNC_REQUEST, int(Cmd.READ)])
    assert _clocks_to_reply(dict(max_payload=64, timeout_cycles=timeout, run_timeout_cycles=500), partial) \
        == timeout + 1
    run = encode_request(Cmd.RUN, 0, b"")
    assert _clocks_to_reply(dict(max_payload=64, timeout_cycles=500, run_timeout_cycles=timeout), run) == timeout + 3


# ---- full duplex: the link's FIFOs ----

@pytest.mark.parametrize("fifo_depth", [0, 128])
def test_with_fifos_the_link_takes_requests_while_it_replies(fifo_depth):
    """A long READ's reply is held up (tx not ready); the next requests arrive meanwhile, a byte per
    clock with no regard for ready, as from a UART: with FIFOs none is lost, and all are answered in order."""
    r = LinkRig(P, dict(LINK, fifo_depth=fifo_depth), dict(run_cycles=RUN_CYCLES))
    frames = [encode_request(Cmd.READ, 1, read_payload(Sel.BIAS, 0, 16)),
              encode_request(Cmd.WRITE, 2, write_payload(Sel.ACC, 0, [5, 6], 2)),
              encode_request(Cmd.SETUP, 3, read_payload(Sel.ACC, 0, 2)),
              encode_request(Cmd.INFER, 4, write_payload(Sel.ACC, 1, [9], 1)),
              encode_request(Cmd.ECHO, 5, b"last")]
    stream = b"".join(frames)
    assert len(stream) < fifo_depth or not fifo_depth
    out = {"dropped": 0, "tx": bytearray()}

    async def tb(ctx):
        ctx.set(r.tx.ready, 0)
        for b in stream:            # one byte per clock, taken or not (a UART's overrun)
            ctx.set(r.rx.payload, b)
            ctx.set(r.rx.valid, 1)
            out["dropped"] += not ctx.get(r.rx.ready)
            await ctx.tick()
        ctx.set(r.rx.valid, 0)
        ctx.set(r.tx.ready, 1)
        for _ in range(3000):
            if ctx.get(r.tx.valid):
                out["tx"].append(ctx.get(r.tx.payload))
            await ctx.tick()

    sim = Simulator(r)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    replies = ReplyParser().feed(bytes(out["tx"]))
    if not fifo_depth:   # without FIFOs the link drops what arrives while it works: the reason they exist
        assert out["dropped"] > 0 and len(replies) < len(frames)
        return
    assert out["dropped"] == 0
    cb = P.elem_bytes(Sel.COUNTER)
    assert [(x.status, x.seq) for x in replies] == [(Status.OK, i) for i in range(1, 6)]
    assert replies[3].payload == counter_init(P)[Counter.ARGMAX_INDEX].to_bytes(cb, "little") + bytes([5, 0, 9, 0])
    assert replies[4].payload == b"last"


def test_the_client_pipelines_infer_into_the_gateware():
    """Client.infer on the link with FIFOs: requests sent ahead, each reply the model's, under gaps and stalls."""
    _, t = rig(gap=0.2, stall=0.3, seed=5, link=dict(LINK, fifo_depth=64))
    dev = DeviceModel(P, **LINK, fifo_depth=64)
    c, cm = Client(t), Client(ModelTransport(dev))
    rng = random.Random(5)
    samples = [[rng.randrange(256) for _ in range(rng.randrange(1, 9))] for _ in range(12)]
    for cl in (c, cm):
        assert cl.identify().send_ahead() == 64
        cl.setup(Sel.BIAS, 0, 8)
    assert c.infer(Sel.BIAS, 3, samples) == cm.infer(Sel.BIAS, 3, samples)
    assert c.read(Sel.BIAS, 0, 16) == dev.mem[Sel.BIAS]
    assert t.watched["runs"] == dev.runs == 12
