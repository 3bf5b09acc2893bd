"""The host protocol in pure Python: codec, parsers, payloads, identity, and the Client against the
pure-Python device model over clean and damaged links (docs/PROTOCOL.md)."""

import random
import struct
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cssnn.hw.learn import LearnParams
from cssnn.hw.link import wire
from cssnn.hw.link.wire import Cmd, Identity, Status, encode_identity
from cssnn.hw.memmap import PROTOCOL_VERSION, AccelParams, Counter, Sel
from cssnn.hw.params import CoreParams
from cssnn.sim.bytestream import LossyTransport
from cssnn.sw.host import protocol as pr
from cssnn.sw.host.protocol import (
    Client,
    LinkError,
    LinkTimeout,
    ProtocolError,
    Reply,
    ReplyParser,
    Request,
    RequestParser,
    crc16,
    decode_identity,
    encode_reply,
    encode_request,
)
from cssnn.verif.device_model import DeviceModel, ModelTransport, counter_init

P = AccelParams(CoreParams(lanes=2, neurons=16, synapse_rows=32))


# ---- CRC and frames ----

def test_crc16_ccitt_false_check_value():
    assert crc16(b"123456789") == 0x29B1
    assert crc16(b"") == 0xFFFF
    # The CRC is sent big-endian: the CRC over a frame including it is zero (the receiver's check).
    body = b"\x02\x07\x05\x00hello"
    assert crc16(body + struct.pack(">H", crc16(body))) == 0


def test_request_and_reply_byte_layout():
    f = encode_request(Cmd.READ, 0x42, b"\x01\x02")
    assert f[:5] == bytes([0xA5, 0x03, 0x42, 0x02, 0x00]) and f[5:7] == b"\x01\x02"
    assert f[7:] == struct.pack(">H", crc16(f[1:7]))
    r = encode_reply(Status.BAD_ADDRESS, Cmd.WRITE, 7)
    assert r == bytes([0x5A, 0x04, 0x02, 0x07, 0x00, 0x00]) + struct.pack(">H", crc16(r[1:6]))
    assert len(encode_request(Cmd.RUN, 0)) == 7 and len(encode_reply(0, 4, 0)) == 8


def test_documented_example_frames():
    # The examples in docs/PROTOCOL.md, byte for byte.
    assert encode_request(Cmd.IDENTIFY, 0).hex(" ") == "a5 01 00 00 00 f2 74"
    w = encode_request(Cmd.WRITE, 1, pr.write_payload(Sel.BIAS, 3, [0x1234, 0xFFFF], 2))
    assert w.hex(" ") == "a5 02 01 09 00 02 03 00 00 00 34 12 ff ff 03 7e"
    assert encode_reply(Status.OK, Cmd.WRITE, 1).hex(" ") == "5a 00 02 01 00 00 cb 54"
    assert encode_request(Cmd.READ, 2, pr.read_payload(Sel.ROUTE, 0, 8)).hex(" ") == "a5 03 02 07 00 06 00 00 00 00 08 00 eb 58"
    assert (encode_reply(Status.OK, Cmd.READ, 2, bytes([1, 1, 1, 3, 0, 0, 0, 0])).hex(" ")
            == "5a 00 03 02 08 00 01 01 01 03 00 00 00 00 93 ab")
    assert encode_request(Cmd.RUN, 3).hex(" ") == "a5 04 03 00 00 17 61"
    assert encode_reply(Status.OK, Cmd.RUN, 3).hex(" ") == "5a 00 04 03 00 00 82 ad"
    assert encode_reply(Status.WATCHDOG, Cmd.RUN, 3).hex(" ") == "5a 07 04 03 00 00 e5 79"
    assert encode_reply(Status.BAD_CRC, Cmd.WRITE, 1).hex(" ") == "5a 01 02 01 00 00 61 05"
    assert encode_request(Cmd.ECHO, 4, b"hi").hex(" ") == "a5 05 04 02 00 68 69 56 73"


def test_encode_rejects_bad_fields():
    with pytest.raises(ValueError, match="seq"):
        encode_request(Cmd.ECHO, 256)
    with pytest.raises(ValueError, match="cmd"):
        encode_request(-1, 0)
    with pytest.raises(ValueError, match="u16"):
        encode_request(Cmd.ECHO, 0, bytes(70000))


@pytest.mark.parametrize("cmd", list(Cmd))
def test_every_command_round_trips_through_both_parsers(cmd):
    payload = bytes(range(int(cmd) * 3))
    rq = RequestParser().feed(encode_request(cmd, 200, payload))
    assert rq == [Request(cmd, 200, payload)] and isinstance(rq[0].cmd, Cmd)
    for status in Status:
        rp = ReplyParser().feed(encode_reply(status, cmd, 201, payload))
        assert rp == [Reply(status, cmd, 201, payload)] and isinstance(rp[0].status, Status)


def test_parser_resyncs_over_garbage_and_false_syncs():
    good = [encode_reply(Status.OK, Cmd.ECHO, i, bytes([i]) * i) for i in range(5)]
    # Garbage full of SYNC bytes, a truncated frame and a corrupted one in between.
    bad = encode_reply(Status.OK, Cmd.ECHO, 99, b"xyz")
    corrupted = bytearray(bad)
    corrupted[7] ^= 0x10
    stream = (b"\x5a\x5a\x00\xff" + good[0] + bad[:5] + good[1] + bytes(corrupted) + good[2] + b"\x5a\xff\xff"
              + good[3] + b"\x5a" + good[4])
    p = ReplyParser(max_payload=64)
    got = []
    for i in range(0, len(stream), 3):  # arbitrary chunking
        got += p.feed(stream[i:i + 3])
    got += p.flush()
    assert [r.seq for r in got] == [0, 1, 2, 3, 4]
    assert p.crc_errors >= 1 and p.dropped > 0


def test_parser_flush_finds_a_frame_behind_a_false_sync():
    # A false SYNC whose "length" is long swallows the real frame until the line goes quiet.
    good = encode_reply(Status.OK, Cmd.RUN, 5)
    p = ReplyParser(max_payload=300)
    assert p.feed(b"\x5a\x00\x00\x00\xff\x00" + good) == []
    assert p.flush() == [Reply(Status.OK, Cmd.RUN, 5)]
    assert p.flush() == [] and not p.buf


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([wire.SYNC_REQUEST, wire.SYNC_REPLY]), st.integers(0, 255), st.integers(0, 255),
       st.integers(0, 255), st.binary(max_size=80), st.binary(max_size=20), st.binary(max_size=20))
def test_random_frames_round_trip_among_noise(kind, a, b, c, payload, before, after):
    if kind == wire.SYNC_REQUEST:
        frame, parser, want = encode_request(a, b, payload), RequestParser(max_payload=80), Request(a, b, payload)
    else:
        frame, parser, want = encode_reply(a, b, c, payload), ReplyParser(max_payload=80), Reply(a, b, c, payload)
    got = parser.feed(before + frame + after) + parser.flush()
    assert want in got


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=0, max_size=60), st.data())
def test_random_corruption_is_rejected(payload, data):
    good = encode_reply(Status.OK, Cmd.ECHO, 3, payload)
    frame = bytearray(good)
    # 1 to 3 bit flips anywhere: CRC-16/CCITT detects every error of up to 3 bits in frames this short.
    n = data.draw(st.integers(1, 3))
    positions = data.draw(st.lists(st.integers(0, 8 * len(frame) - 1), min_size=n, max_size=n, unique=True))
    for pos in positions:
        frame[pos // 8] ^= 1 << (pos % 8)
    p = ReplyParser(max_payload=60)
    got = p.feed(bytes(frame)) + p.flush()
    assert Reply(Status.OK, Cmd.ECHO, 3, payload) not in got
    p = ReplyParser(max_payload=60)
    assert p.feed(good[:-1]) + p.flush() == []  # a truncated frame is never accepted


# ---- payloads and identity ----

def test_write_read_payloads_round_trip():
    p = pr.write_payload(Sel.STATE, 0x01020304, [1, 2**33 - 1], 5)
    assert len(p) == 5 + 10
    assert pr.parse_write_payload(p, 5) == (Sel.STATE, 0x01020304, [1, 2**33 - 1])
    assert pr.read_payload(Sel.LAYER, 7, 300) == bytes([5, 7, 0, 0, 0, 0x2C, 0x01])
    assert pr.parse_read_payload(pr.read_payload(Sel.LAYER, 7, 300)) == (Sel.LAYER, 7, 300)
    with pytest.raises(ProtocolError):
        pr.decode_elements(b"\x00" * 3, 2)
    with pytest.raises(ProtocolError):
        pr.parse_read_payload(b"\x00" * 6)


@pytest.mark.parametrize("ap", [
    AccelParams(),
    P,
    AccelParams(CoreParams(lanes=4, weight_bits=6, membrane_bits=13, output_bits=40, acc_bits=20, bias_bits=11,
                           threshold_bits=9, neurons=64, synapse_rows=300, counter_bits=24, synapse_ram="spram",
                                list_rows=7),
                max_layers=5, timestep_bits=6, fifo_depth=33, tap_depth=3),
    AccelParams(learn=LearnParams(inputs=12, neurons=5, window=4, weight_bits=6)),
])
def test_identity_rebuilds_accel_params_exactly(ap):
    ident = Identity(ap, max_payload=384, timeout_cycles=123456, run_timeout_cycles=2**32 - 1)
    blob = encode_identity(ident)
    assert len(blob) == wire.IDENTIFY_BYTES and blob[:4] == b"CSNN"
    back = decode_identity(blob)
    assert back == ident and back.params == ap and back.protocol_version == PROTOCOL_VERSION
    assert decode_identity(blob + b"future fields") == ident  # later versions may append


def test_identity_block_is_the_documented_byte_layout():
    # docs/PROTOCOL.md: magic, u16 version, u16 max_payload, u32 timeouts, then a u32 per field.
    ap = AccelParams(CoreParams(lanes=4, weight_bits=6, membrane_bits=13, output_bits=40, acc_bits=20, bias_bits=11,
                                threshold_bits=9, neurons=64, synapse_rows=300, counter_bits=24, synapse_ram="spram",
                                list_rows=7),
                     max_layers=5, timestep_bits=6, fifo_depth=33, tap_depth=3, order="waves")
    c = ap.core
    want = struct.pack("<4sHHII" + "I" * 25, b"CSNN", PROTOCOL_VERSION, 384, 123456, 2**32 - 1,
                       c.lanes, c.weight_bits, c.membrane_bits, c.output_bits, c.acc_bits, c.bias_bits,
                       c.threshold_bits, c.neurons, c.synapse_rows, c.counter_bits, 1, c.layer_words, c.acc_words, 7, 0,
                       ap.max_layers, ap.timestep_bits, ap.fifo_depth, ap.tap_depth, 1, 0, 0, 0, 0, 512)
    ident = Identity(ap, 384, 123456, 2**32 - 1, fifo_depth=512)
    assert encode_identity(ident) == want and len(want) == wire.IDENTIFY_BYTES == 116
    assert decode_identity(want) == ident
    learning = replace(ap, learn=LearnParams(inputs=64, neurons=32, window=8, weight_bits=8))
    assert encode_identity(Identity(learning, 384, 123456, 2**32 - 1))[-20:-4] == struct.pack("<IIII", 64, 32, 8, 8)
    with pytest.raises(ValueError, match="does not fit"):
        encode_identity(Identity(ap, 2**16, 1, 1))


def test_identity_covers_every_params_field():
    from dataclasses import fields
    assert set(wire.CORE_FIELDS) == {f.name for f in fields(CoreParams)}
    assert set(wire.ACCEL_FIELDS) | {"core", "learn"} == {f.name for f in fields(AccelParams)}
    assert set(wire.LEARN_FIELDS) == {f.name for f in fields(LearnParams)}


def test_identity_rejects_foreign_or_broken_blocks():
    blob = bytearray(encode_identity(Identity(P, 64, 100, 100)))
    with pytest.raises(ProtocolError, match="magic"):
        decode_identity(b"XXXX" + bytes(blob[4:]))
    with pytest.raises(ProtocolError, match="version"):
        decode_identity(bytes(blob[:4]) + struct.pack("<H", PROTOCOL_VERSION + 1) + bytes(blob[6:]))
    # older devices (version 3: a 100-byte block; 4: 104; 5: 112) are named by their version, not by the length
    for version, size in ((3, 100), (4, 104), (5, 112)):
        with pytest.raises(ProtocolError, match=f"protocol version {version}, this host version {PROTOCOL_VERSION}: "
                                                "rebuild"):
            decode_identity(bytes(blob[:4]) + struct.pack("<H", version) + bytes(blob[6:size]))
    with pytest.raises(ProtocolError, match="at least"):
        decode_identity(bytes(blob[:-1]))
    blob[16:20] = struct.pack("<I", 3)  # lanes = 3
    with pytest.raises(ProtocolError, match="invalid parameters"):
        decode_identity(bytes(blob))


# ---- the device model answers like the gateware ----

def model(**kw):
    return DeviceModel(P, max_payload=64, **kw)


def reply_of(dev, frame: bytes) -> list[Reply]:
    return ReplyParser().feed(dev.feed(frame) + dev.idle())


def test_model_error_replies():
    dev = model()
    eb = P.elem_bytes(Sel.BIAS)
    cases = [
        (encode_request(0x00, 1), Status.UNKNOWN_CMD),
        (encode_request(0x08, 1), Status.UNKNOWN_CMD),
        (encode_request(Cmd.IDENTIFY, 1, b"\x00"), Status.BAD_LENGTH),
        (encode_request(Cmd.SETUP, 1, b"\x00" * 6), Status.BAD_LENGTH),
        (encode_request(Cmd.SETUP, 1, pr.read_payload(Sel.BIAS, 0, 64 // eb + 1)), Status.BAD_LENGTH),
        (encode_request(Cmd.SETUP, 1, pr.read_payload(Sel.BIAS, 15, 2)), Status.BAD_ADDRESS),
        (encode_request(Cmd.INFER, 1, b"\x00" * 4), Status.BAD_LENGTH),
        (encode_request(Cmd.INFER, 1, pr.write_payload(Sel.BIAS, 0, [], 1)), Status.BAD_LENGTH),
        (encode_request(Cmd.INFER, 1, pr.write_payload(Sel.BIAS, 15, [1, 2], 1)), Status.BAD_ADDRESS),
        (encode_request(Cmd.INFER, 1, pr.write_payload(Sel.COUNTER, 0, [1], 1)), Status.BAD_ADDRESS),
        (encode_request(Cmd.RUN, 1, b"\x00"), Status.BAD_LENGTH),
        (encode_request(Cmd.READ, 1, b"\x00" * 6), Status.BAD_LENGTH),
        (encode_request(Cmd.WRITE, 1, b"\x00" * 4), Status.BAD_LENGTH),
        (encode_request(Cmd.WRITE, 1, pr.write_payload(Sel.BIAS, 0, [], eb)), Status.BAD_LENGTH),
        (encode_request(Cmd.WRITE, 1, pr.write_payload(Sel.BIAS, 0, [1], eb) + b"\x00"), Status.BAD_LENGTH),
        (encode_request(Cmd.READ, 1, pr.read_payload(Sel.BIAS, 0, 0)), Status.BAD_LENGTH),
        (encode_request(Cmd.READ, 1, pr.read_payload(Sel.BIAS, 0, 64 // eb + 1)), Status.BAD_LENGTH),
        (encode_request(Cmd.READ, 1, pr.read_payload(len(Sel), 0, 1)), Status.BAD_ADDRESS),
        (encode_request(Cmd.READ, 1, pr.read_payload(Sel.BIAS, 16, 1)), Status.BAD_ADDRESS),
        (encode_request(Cmd.READ, 1, pr.read_payload(Sel.BIAS, 15, 2)), Status.BAD_ADDRESS),
        (encode_request(Cmd.READ, 1, pr.read_payload(Sel.BIAS, 2**32 - 1, 2)), Status.BAD_ADDRESS),
        (encode_request(Cmd.WRITE, 1, pr.write_payload(Sel.COUNTER, 0, [1], 4)), Status.BAD_ADDRESS),
        (bytes([0xA5, 2, 1, 65, 0]), Status.BAD_LENGTH),   # len > max_payload: answered at the header
        (encode_request(Cmd.ECHO, 1, b"abc")[:-1], Status.TIMEOUT),
    ]
    for frame, status in cases:
        assert reply_of(dev, frame) == [Reply(status, frame[1], 1)], (frame.hex(), status)
    bad = bytearray(encode_request(Cmd.WRITE, 1, pr.write_payload(Sel.BIAS, 0, [7], eb)))
    bad[-3] ^= 1
    n = len(dev.executed)
    assert reply_of(dev, bytes(bad)) == [Reply(Status.BAD_CRC, Cmd.WRITE, 1)]
    assert dev.mem[Sel.BIAS][0] == 0 and len(dev.executed) == n
    assert reply_of(dev, b"\x00\x13garbage") == []
    assert reply_of(dev, encode_request(Cmd.ECHO, 9, b"ok")) == [Reply(Status.OK, Cmd.ECHO, 9, b"ok")]


# ---- the client ----

def test_client_commands_against_the_model():
    dev = model()
    c = Client(ModelTransport(dev))
    ident = c.identify()
    assert ident == Identity(P, 64, 1 << 20, 1 << 24)
    rng = random.Random(3)
    for s in Sel:
        n = P.depth(s)
        if n == 0:  # the learning engine's memories: P has none
            continue
        if P.writable(s):
            vals = [rng.randrange(2**P.elem_bits(s)) for _ in range(n)]
            c.write(s, 0, vals)
        else:
            vals = counter_init(P)
        assert c.read(s, 0, n) == vals
        assert c.read(s, n - 1, 1) == vals[-1:]
    assert c.echo(b"hello") == b"hello"
    c.run()
    assert c.read(Sel.COUNTER, Counter.RUN_CYCLES, 1) == [1]
    # Frames are split to max_payload: 64 synapse elements of 2 bytes need 3 WRITEs (29 per frame).
    writes = [p for cmd, p in dev.executed if cmd == Cmd.WRITE and p[0] == Sel.SYNAPSE]
    assert len(writes) == 3 and max(len(p) for p in writes) <= 64
    assert c.stats["retries"] == 0 and c.read(Sel.BIAS, 0, 0) == []


def test_client_checks_arguments_locally():
    dev = model()
    c = Client(ModelTransport(dev))
    n = len(dev.executed)
    with pytest.raises(ValueError, match="read-only"):
        c.write(Sel.COUNTER, 0, [1])
    with pytest.raises(ValueError, match="beyond"):
        c.write(Sel.BIAS, 15, [1, 2])
    with pytest.raises(ValueError, match="16-bit"):
        c.write(Sel.BIAS, 0, [2**16])
    with pytest.raises(ValueError, match="16-bit"):
        c.write(Sel.BIAS, 0, [-1])
    with pytest.raises(ValueError, match="selector"):
        c.read(len(Sel), 0, 1)
    with pytest.raises(ValueError, match="beyond"):
        c.read(Sel.REG, 0, P.depth(Sel.REG) + 1)
    with pytest.raises(ValueError, match="beyond its depth 0"):  # P has no learning engine
        c.read(Sel.LEARN_SYN, 0, 1)
    assert [cmd for cmd, _ in dev.executed[n:]] == [Cmd.IDENTIFY]
    with pytest.raises(ValueError, match="retries"):
        Client(ModelTransport(dev), retries=-1)


def test_client_raises_final_errors_at_once_and_retries_transient_ones():
    dev = model(hang=True)
    c = Client(ModelTransport(dev), retries=2)
    with pytest.raises(LinkError) as e:
        c.run()
    assert e.value.status == Status.WATCHDOG and c.stats["attempts"] == 1 and not isinstance(e.value, LinkTimeout)
    with pytest.raises(LinkError) as e:   # still busy: retried, then reported
        c.read(Sel.BIAS, 0, 1)
    assert e.value.status == Status.BUSY and c.stats["retries"] == 2
    assert c.echo(b"x") == b"x"            # the link itself is fine
    dev.finish_run()
    assert c.read(Sel.COUNTER, 0, 1) == [1]
    with pytest.raises(LinkError) as e:
        c.transact(0x7F)
    assert e.value.status == Status.UNKNOWN_CMD


class Silent:
    def __init__(self):
        self.sent = []

    def send(self, data):
        self.sent.append(data)

    def recv(self):
        return b""

    def close(self):
        pass


def test_client_times_out_on_silence_after_retries():
    t = Silent()
    c = Client(t, retries=2)
    with pytest.raises(LinkTimeout, match="3 attempts"):
        c.identify()
    assert len(t.sent) == 3 and len({f[2] for f in t.sent}) == 3  # a fresh seq per attempt
    assert isinstance(t, pr.Transport)


class Replay:
    """Answers every request with a canned stale reply first, then the real one."""

    def __init__(self, dev):
        self.inner = ModelTransport(dev)
        self.extra = b""

    def send(self, data):
        self.extra = encode_reply(Status.OK, data[1], (data[2] - 1) & 0xFF, b"stale") + b"\x5a\x5a"
        self.inner.send(data)

    def recv(self):
        out, self.extra = self.extra + self.inner.recv(), b""
        return out

    def close(self):
        pass


def test_client_discards_stale_and_duplicate_replies():
    c = Client(Replay(model()))
    assert c.echo(b"fresh") == b"fresh"
    assert c.stats["stale"] == 1 and c.stats["retries"] == 0


@pytest.mark.parametrize("seed", range(4))
def test_client_gets_right_answers_over_a_damaged_link(seed):
    dev = model()
    link = LossyTransport(ModelTransport(dev), drop=0.004, corrupt=0.004, garbage=0.004, seed=seed)
    # a full 64-byte frame is damaged about half the time here: 16 retries make a give-up (0.5^17) rare
    c = Client(link, retries=16)
    c.identify()
    rng = random.Random(seed)
    want = {}
    for _ in range(30):
        s = rng.choice([x for x in Sel if P.writable(x) and P.depth(x)])
        n = rng.randrange(1, P.depth(s) + 1)
        a = rng.randrange(P.depth(s) - n + 1)
        vals = [rng.randrange(2**P.elem_bits(s)) for _ in range(n)]
        c.write(s, a, vals)
        for i, v in enumerate(vals):
            want[s, a + i] = v
        assert c.read(s, a, n) == vals
    for (s, a), v in want.items():
        assert dev.mem[s][a] == v
    assert link.damaged > 0 and c.stats["retries"] > 0


def test_serial_transport_needs_pyserial_or_works_on_a_loopback():
    try:
        import serial  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match=r"pip install cssnn\[serial\]"):
            pr.SerialTransport("loop://")
        return
    with pr.SerialTransport("loop://", timeout=0.01) as t:
        t.send(b"\xa5hello")
        assert t.recv() == b"\xa5hello" and t.recv() == b""


# ---- INFER requests sent ahead (Client.pipeline) ----

class SlowDevice:
    """A device that takes in ``rate`` request bytes per ``recv()``: requests the host sends ahead wait in
    its receive queue, whose size is checked against the device's FIFO on every send."""

    def __init__(self, dev: DeviceModel, rate: int = 9):
        self.dev, self.rate, self.queue, self.peak = dev, rate, bytearray(), 0

    def send(self, data: bytes) -> None:
        self.queue += data
        self.peak = max(self.peak, len(self.queue))

    def recv(self) -> bytes:
        if not self.queue:
            return self.dev.idle()
        chunk, self.queue = bytes(self.queue[:self.rate]), self.queue[self.rate:]
        return self.dev.feed(chunk)

    def close(self) -> None:
        pass


def _infer_expected(dev: DeviceModel, samples, addr: int) -> list[bytes]:
    """What each INFER of ``samples`` (to BIAS at ``addr``) returns on a model with the BIAS[0:8] window."""
    cb = P.elem_bytes(Sel.COUNTER)
    bias, out = list(dev.mem[Sel.BIAS]), []
    for x in samples:
        bias[addr:addr + len(x)] = x
        out.append(dev.mem[Sel.COUNTER][Counter.ARGMAX_INDEX].to_bytes(cb, "little")
                   + b"".join(v.to_bytes(P.elem_bytes(Sel.BIAS), "little") for v in bias[:8]))
    return out


@pytest.mark.parametrize("fifo_depth", [0, 64, 256])
def test_infer_requests_go_ahead_as_far_as_the_device_queues(fifo_depth):
    dev = model(fifo_depth=fifo_depth)
    line = SlowDevice(dev)
    c = Client(line)
    c.setup(Sel.BIAS, 0, 8)
    rng = random.Random(fifo_depth)
    samples = [[rng.randrange(256) for _ in range(rng.randrange(1, 9))] for _ in range(40)]
    want = _infer_expected(dev, samples, 2)
    line.peak = 0
    assert c.infer(Sel.BIAS, 2, samples) == want and dev.runs == 40
    frame = len(encode_request(Cmd.INFER, 0, pr.write_payload(Sel.BIAS, 2, [0] * 8, 1)))
    # one request at a time without a FIFO; otherwise up to the FIFO, and well beyond one frame
    assert line.peak <= max(fifo_depth, frame) and (fifo_depth < 2 * frame or line.peak > 2 * frame)


@pytest.mark.parametrize("seed", range(3))
def test_infer_requests_sent_ahead_survive_a_damaged_line(seed):
    dev = model(fifo_depth=128)
    link = LossyTransport(ModelTransport(dev), drop=0.004, corrupt=0.004, garbage=0.004, seed=seed)
    c = Client(link, retries=16)
    c.setup(Sel.BIAS, 0, 8)
    rng = random.Random(seed)
    samples = [[rng.randrange(256) for _ in range(8)] for _ in range(60)]
    got = c.infer(Sel.BIAS, 0, samples)
    # every sample writes the whole window, so its reply does not depend on the order of retries
    assert got == [_infer_expected(dev, [x], 0)[0] for x in samples]
    assert link.damaged > 0 and c.stats["retries"] > 0


def test_infer_checks_its_samples_and_the_device():
    c = Client(ModelTransport(model(fifo_depth=64)))
    for bad in ([[]], [[256]], [[-1]], [[1] * 60]):
        with pytest.raises(ValueError):
            c.infer(Sel.BIAS, 0, bad)
    with pytest.raises(ValueError, match="beyond"):
        c.infer(Sel.BIAS, 15, [[1, 2]])
    with pytest.raises(ValueError, match="at most"):
        c.setup(Sel.STATE, 0, 64 // P.elem_bytes(Sel.STATE) + 1)
    old = Client(ModelTransport(model()))
    old.identity = replace(old._ident(), protocol_version=3)
    with pytest.raises(ProtocolError, match="no INFER"):
        old.infer(Sel.BIAS, 0, [[1]])
