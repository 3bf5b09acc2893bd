"""Fuzzing the inputs a user hands over (hypothesis, bounded for CI): the network file, the ANN file,
dataset files, learning-layer files, PyTorch model files and NIR files (when their extras are
installed) and the protocol codec. A malformed input must end in the
documented error type with a one-line message; nothing else may escape (no traceback of another
type), and a loader never leaves a half-written file.

Two kinds of input per file format: the bytes of a valid file, damaged (flipped bytes, truncated,
extended), and well-formed ``.npz`` archives whose records are wrong (random JSON values in the
``meta`` record, arrays of other shapes and dtypes)."""

import io
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cssnn.sw.frontends.datasets import DatasetError, load_dataset
from cssnn.sw.frontends.importers import load_ann
from cssnn.sw.host.protocol import (
    ProtocolError,
    ReplyParser,
    RequestParser,
    decode_identity,
    parse_read_payload,
    parse_write_payload,
)
from cssnn.sw.spec.ann import ANNError
from cssnn.sw.spec.network import NetworkError, load_network, save_network
from cssnn.sw.spec.stdp import init_layer, load_learning, save_learning
from cssnn.verif.netgen import digits_network

# a silent coercion (complex -> real, a float cast out of range) is a finding too
pytestmark = [pytest.mark.filterwarnings("error::RuntimeWarning"),
              pytest.mark.filterwarnings("error::numpy.exceptions.ComplexWarning")]

FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _one_line(err: Exception) -> None:
    msg = str(err)
    assert msg and "\n" not in msg.strip(), f"not one line: {msg!r}"


@pytest.fixture(scope="module")
def valid_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("valid")
    net, _ = digits_network(4)
    files = {"network": save_network(net, d / "snn.npz")}
    from cssnn.sw.spec.ann import ann_to_arrays

    arrays, _ = ann_to_arrays(net.ann)
    np.savez(d / "ann.npz", **arrays)
    files["ann"] = d / "ann.npz"
    rng = np.random.default_rng(0)
    np.savez(d / "data.npz", x_train=rng.random((6, 4)), y_train=np.arange(6) % 2, x_test=rng.random((3, 4)),
             y_test=np.arange(3) % 2)
    files["dataset"] = d / "data.npz"
    files["learning"] = save_learning(init_layer(6, 3), d / "learn.npz")
    try:
        import torch
        from torch import nn

        torch.save(nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)), d / "model.pt")
        files["torch"] = d / "model.pt"
    except ImportError:
        pass
    try:
        from cssnn.sw.frontends.nir_io import write_nir

        files["nir"] = write_nir(net.ann, d / "ann.nir")
    except Exception:   # the nir extra is not installed
        pass
    return {k: v.read_bytes() for k, v in files.items()}


LOADERS = {"network": (load_network, NetworkError), "ann": (load_ann, ANNError),
           "dataset": (load_dataset, DatasetError), "learning": (load_learning, NetworkError),
           "torch": (load_ann, ANNError), "nir": (load_ann, ANNError)}
SUFFIX = {"torch": ".pt", "nir": ".nir"}


@st.composite
def damaged(draw, blob: bytes):
    data = bytearray(blob)
    for _ in range(draw(st.integers(1, 8))):
        i = draw(st.integers(0, len(data) - 1))
        data[i] = draw(st.integers(0, 255))
    cut = draw(st.one_of(st.none(), st.integers(0, len(data))))
    if cut is not None:
        data = data[:cut]
    return bytes(data) + draw(st.binary(max_size=16))


def _load(kind, path):
    loader, error = LOADERS[kind]
    try:
        loader(str(path))
    except error as e:
        _one_line(e)


@pytest.mark.parametrize("kind", list(LOADERS))
def test_fuzz_damaged_files_give_the_documented_error(kind, valid_files, tmp_path, monkeypatch):
    if kind not in valid_files:
        pytest.skip(f"the {kind} extra is not installed: {kind} files are not fuzzed")
    blob = valid_files[kind]
    examples = FUZZ.max_examples
    if kind == "nir":   # each read is a child process; a read that hangs (HDF5) is stopped after 3 s
        from cssnn.sw.frontends import nir_io

        monkeypatch.setattr(nir_io, "READ_TIMEOUT", 3.0)
        examples = 40

    @settings(FUZZ, max_examples=examples)
    @given(data=damaged(blob))
    def run(data):
        path = tmp_path / f"{kind}{SUFFIX.get(kind, '.npz')}"
        path.write_bytes(data)
        _load(kind, path)

    run()


JSON = st.recursive(st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=12)


def _paths(node, prefix=()):
    """Every path into a JSON tree (dict keys and list indices)."""
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, prefix + (i,))


def _replace(node, path, value):
    if not path:
        return value
    node = json.loads(json.dumps(node))
    cur = node
    for p in path[:-1]:
        cur = cur[p]
    cur[path[-1]] = value
    return node


@st.composite
def wrong_array(draw, like: np.ndarray):
    """Another shape or dtype, or the same shape with extreme values."""
    kind = draw(st.sampled_from(["shape", "dtype", "values"]))
    if kind == "shape":
        shape = tuple(draw(st.lists(st.integers(0, 5), max_size=3)))
        return np.zeros(shape, dtype=like.dtype if like.dtype.kind != "U" else "f8")
    if kind == "dtype":
        return np.zeros(like.shape, dtype=draw(st.sampled_from(["f8", "i8", "u1", "b1", "U3", "c16", "f2"])))
    if like.dtype.kind in "biuf" and like.size:
        v = draw(st.sampled_from([np.nan, np.inf, -np.inf, 1e300, -1e300, 2.0**62, -2.0**63, 0.5, -1]))
        out = like.astype(np.float64).copy()
        out.flat[draw(st.integers(0, like.size - 1))] = v
        return out
    return np.array(draw(st.floats(allow_nan=True)))


@pytest.mark.parametrize("kind", [k for k in LOADERS if k not in SUFFIX])
def test_fuzz_wrong_records_give_the_documented_error(kind, valid_files, tmp_path):
    with np.load(io.BytesIO(valid_files[kind]), allow_pickle=False) as z:
        base = {k: z[k] for k in z.files}
    meta = json.loads(str(base["meta"])) if "meta" in base else None
    paths = list(_paths(meta)) if meta is not None else [()]
    keys = sorted(k for k in base if k != "meta")

    @FUZZ
    @given(data=st.data(), which=st.sampled_from(["array", "meta", "drop"]))
    def run(data, which):
        arrays = dict(base)
        if which == "array" or meta is None:
            key = data.draw(st.sampled_from(keys))
            arrays[key] = data.draw(wrong_array(base[key]))
        elif which == "drop":
            arrays.pop(data.draw(st.sampled_from(sorted(base))))
        else:
            path = data.draw(st.sampled_from(paths))
            arrays["meta"] = np.array(json.dumps(_replace(meta, path, data.draw(JSON))))
        path = tmp_path / f"{kind}.npz"
        with open(path, "wb") as f:
            np.savez(f, **arrays)
        _load(kind, path)

    run()


@FUZZ
@given(st.binary(max_size=300))
def test_fuzz_protocol_codec(blob):
    """Byte soup into both frame parsers and the payload decoders: frames or ProtocolError only."""
    for parser in (ReplyParser(), RequestParser()):
        parser.feed(blob)
        parser.flush()
    for decode in (decode_identity, parse_read_payload, lambda b: parse_write_payload(b, 2)):
        try:
            decode(blob)
        except ProtocolError as e:
            _one_line(e)


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(["Affine", "Linear", "IF", "LIF", "Flatten", "Scale", "SumPool2d",
                                           "Conv2d", "Delay", "Threshold"]),
                          st.integers(1, 5), st.integers(1, 5)), min_size=1, max_size=5),
       st.lists(st.integers(1, 6), min_size=1, max_size=3))
def test_fuzz_nir_graphs(layers, input_shape):
    """Random chains of NIR nodes with arbitrary (often inconsistent) shapes: an ANN or ANNError."""
    nir = pytest.importorskip("nir")
    from cssnn.sw.frontends.nir_io import ann_from_nir

    make = {
        "Affine": lambda a, b: nir.Affine(np.ones((a, b)), np.zeros(a)),
        "Linear": lambda a, b: nir.Linear(np.ones((a, b))),
        "IF": lambda a, b: nir.IF(np.ones(a), np.ones(a), np.zeros(a)),
        "LIF": lambda a, b: nir.LIF(np.full(a, 0.5), np.ones(a), np.zeros(a), np.ones(a)),
        "Flatten": lambda a, b: nir.Flatten({"input": np.array([a, b])}, start_dim=0),
        "Scale": lambda a, b: nir.Scale(np.ones(a)),
        "SumPool2d": lambda a, b: nir.SumPool2d(np.array([a, a]), np.array([b, b]), np.array([0, 0])),
        "Conv2d": lambda a, b: nir.Conv2d((b, b), np.ones((a, 1, 3, 3)), 1, 1, 1, 1, np.zeros(a)),
        "Delay": lambda a, b: nir.Delay(np.ones(a)),
        "Threshold": lambda a, b: nir.Threshold(np.ones(a)),
    }
    nodes = {"input": nir.Input({"input": np.array(input_shape)})}
    names = ["input"]
    for i, (kind, a, b) in enumerate(layers):
        nodes[f"n{i}"] = make[kind](a, b)
        names.append(f"n{i}")
    nodes["output"] = nir.Output({"output": np.array([1])})
    names.append("output")
    graph = nir.NIRGraph(nodes=nodes, edges=list(zip(names, names[1:])), type_check=False)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ann_from_nir(graph)
        except ANNError as e:
            _one_line(e)


def test_a_header_claiming_a_huge_array_is_refused_before_any_allocation(tmp_path):
    """A .npy header inside the archive that claims 8 TB: refused from the header alone."""
    import zipfile

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f8", "fortran_order": False, "shape": (10**12,)})
    with zipfile.ZipFile(tmp_path / "huge.npz", "w") as zf:
        zf.writestr("x_train.npy", buf.getvalue() + b"\0" * 64)
    for kind in ("network", "ann", "dataset", "learning"):
        loader, error = LOADERS[kind]
        with pytest.raises(error, match="claims 8000000000000 bytes"):
            loader(str(tmp_path / "huge.npz"))
