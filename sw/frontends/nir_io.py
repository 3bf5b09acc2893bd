"""NIR in and out (the ``nir`` extra; NIR reads and writes HDF5 through h5py).

**Export** (:func:`network_to_nir`, :func:`ann_to_nir`, :func:`write_nir`): the closest standard form.
A converted network becomes ``Input -> [Affine | Conv2d | SumPool2d + Scale] -> IF -> ... -> Affine ->
Output``: its integer weights and biases, IF neurons (``r = 1``, ``v_reset = 0``) with the layer
thresholds, and the CSS parameters (coding, T, every width, the layer records, the format version)
in the graph's metadata (``cssnn``, a JSON string; each weight layer's existence mask and source ANN
weights in its node's metadata). **Another tool will simulate IF rate neurons, not TSA neurons**: the
integers are the same, the dynamics are not (no ternary spikes, no halving weights). A float ANN
exports the same way, with IF neurons of threshold 1 standing for its ReLUs (NIR has no ReLU node).
cssnn -> NIR -> cssnn gives an identical network (:func:`network_from_nir`).

**Import** (:func:`ann_from_nir`): a chain of Affine / Linear / Conv2d / SumPool2d / AvgPool2d /
Flatten / Scale layers whose activations are IF, LIF, CubaLIF or Threshold nodes is read as the ReLU
network those rate neurons approximate (the usual conversion equivalence); a leaky LIF gets a warning
saying so. Anything else (another node type, a branch, a cycle) is a one-line :class:`ANNError`
naming the node's id and type, and nothing is written.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from cssnn.extras import MissingExtra, require
from cssnn.sw.spec.ann import ANN, ANNError, ANNLayer
from cssnn.sw.spec.layers import Conv2d, Dense, Pool2d, shape_from_dict
from cssnn.sw.spec.network import FORMAT, FORMAT_VERSION, NetworkError, SpikingLayer, SpikingNetwork

__all__ = ["network_to_nir", "ann_to_nir", "network_from_nir", "ann_from_nir", "write_nir", "read_nir",
           "NIR_META_KEY"]

#: The graph metadata entry that holds cssnn's record (a JSON string).
NIR_META_KEY = "cssnn"
_ACTIVATIONS = ("IF", "LIF", "CubaLIF", "Threshold")


def _nir():
    try:
        return require("nir", extra="nir", purpose="reading and writing NIR graphs")
    except MissingExtra as e:
        raise ANNError(str(e)) from None


# ---------------------------------------------------------------------------------------------
# export
# ---------------------------------------------------------------------------------------------

def _weight_nodes(nir, shape, weight, bias, name: str, metadata: dict) -> list[tuple[str, object]]:
    """The NIR node(s) of one weight layer (a flattening first where a dense layer follows an image)."""
    if shape.kind == "dense":
        return [(name, nir.Affine(np.asarray(weight), np.asarray(bias), metadata=metadata))]
    if shape.kind == "conv2d":
        c, h, w = shape.in_shape
        return [(name, nir.Conv2d(input_shape=(h, w), weight=np.asarray(weight), stride=shape.stride,
                                  padding=shape.padding, dilation=1, groups=1, bias=np.asarray(bias),
                                  metadata=metadata))]
    k = np.array(shape.kernel)
    return [(f"{name}_sum", nir.SumPool2d(kernel_size=k, stride=k, padding=np.zeros(2, int))),
            (name, nir.Scale(np.full(shape.out_shape, float(np.asarray(weight))), metadata=metadata))]


def _graph(nir, layers, input_shape, thresholds, metadata: dict, node_meta) -> object:
    """Input -> (weight layer -> IF)* -> weight layer -> Output, flattening where a dense layer follows an image."""
    nodes = [("input", nir.Input({"input": np.array(input_shape)}))]
    prev_shape = tuple(input_shape)
    for i, (shape, weight, bias) in enumerate(layers):
        if shape.kind == "dense" and len(prev_shape) > 1:
            nodes.append((f"flatten{i}", nir.Flatten({"input": np.array(prev_shape)}, start_dim=0)))
        nodes += _weight_nodes(nir, shape, weight, bias, f"layer{i}", node_meta(i))
        out = shape.out_shape if shape.kind != "dense" else (shape.n_out,)
        if thresholds[i] is not None:
            nodes.append((f"neuron{i}", nir.IF(r=np.ones(out), v_threshold=np.full(out, float(thresholds[i])),
                                               v_reset=np.zeros(out))))
        prev_shape = out
    nodes.append(("output", nir.Output({"output": np.array(prev_shape)})))
    edges = [(a, b) for (a, _), (b, _) in zip(nodes, nodes[1:])]
    return nir.NIRGraph(nodes=dict(nodes), edges=edges, metadata={NIR_META_KEY: json.dumps(metadata)},
                        type_check=False)


def network_to_nir(net: SpikingNetwork):
    """A converted network as a NIR graph (see the module docstring)."""
    nir = _nir()
    record = {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": "network", "coding": net.coding,
              "timesteps": net.timesteps, "input_bits": net.input_bits, "weight_bits": net.weight_bits,
              "membrane_bits": net.membrane_bits, "output_bits": net.output_bits,
              "input_shape": list(net.input_shape), "conversion": net.meta,
              "layers": [{"shape": l.shape.to_dict(), "threshold": l.threshold, "masked": l.mask is not None}
                         for l in net.layers],
              "note": "integer weights and thresholds of CSS (TSA) neurons; simulated as IF neurons elsewhere"}
    ann = net.ann if net.ann is not None and len(net.ann.layers) == len(net.layers) else None

    def node_meta(i):
        meta = {}
        if net.layers[i].mask is not None:
            meta["mask"] = net.layers[i].mask.astype(np.int8)
        if ann is not None:
            meta["ann_weight"], meta["ann_bias"] = ann.layers[i].weight, ann.layers[i].bias
        return meta

    record["ann"] = ann is not None
    return _graph(nir, [(l.shape, l.weight, l.bias) for l in net.layers], net.input_shape,
                  [l.threshold for l in net.layers], record, node_meta)


def ann_to_nir(ann: ANN):
    """A float ANN as a NIR graph: IF neurons of threshold 1 stand for its ReLUs."""
    nir = _nir()
    record = {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": "ann",
              "input_shape": list(ann.input_shape), "layers": [{"shape": l.shape.to_dict()} for l in ann.layers],
              "note": "a float ReLU network; its IF neurons (threshold 1) stand for the ReLUs"}
    last = len(ann.layers) - 1
    return _graph(nir, [(l.shape, l.weight, l.bias) for l in ann.layers], ann.input_shape,
                  [None if i == last else 1.0 for i in range(len(ann.layers))], record, lambda i: {})


def write_nir(obj, path) -> Path:
    """Write a :class:`SpikingNetwork` or an :class:`ANN` as a NIR file (write then rename)."""
    nir = _nir()
    graph = network_to_nir(obj) if isinstance(obj, SpikingNetwork) else ann_to_nir(obj)
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        nir.write(str(tmp), graph)
        tmp.replace(path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


# ---------------------------------------------------------------------------------------------
# import
# ---------------------------------------------------------------------------------------------

#: Seconds a NIR file may take to read (HDF5 can loop forever on some damaged files: the read runs in
#: a child process that is stopped after this long).
READ_TIMEOUT = 60.0


def _read_child(path: str, conn) -> None:
    try:
        import nir

        _check_sizes(Path(path))
        conn.send(("ok", nir.read(path)))
    except Exception as e:
        conn.send(("error", f"{type(e).__name__}: {e}"))
    finally:
        conn.close()


def read_nir(path, *, timeout: float | None = None):
    """Read a NIR file (``ANNError`` naming the problem). The read runs in a child process, so a
    damaged file that makes HDF5 hang or crash ends in an error after ``timeout`` (:data:`READ_TIMEOUT`)."""
    import multiprocessing as mp

    _nir()
    path = Path(path)
    if not path.exists():
        raise ANNError(f"{path}: no such file")
    timeout = READ_TIMEOUT if timeout is None else timeout
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    recv, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_read_child, args=(str(path), send), daemon=True)
    child.start()
    send.close()
    try:
        if not recv.poll(timeout):
            raise ANNError(f"{path}: reading the NIR file did not finish within {timeout:g} s (a damaged file?)")
        try:
            status, value = recv.recv()
        except EOFError:
            raise ANNError(f"{path}: not a NIR file (the reader stopped, exit code {child.exitcode})") from None
    finally:
        if child.is_alive():
            child.kill()
        child.join()
        recv.close()
    if status != "ok":
        raise ANNError(f"{path}: not a NIR file ({value})")
    return value


def _check_sizes(path: Path) -> None:
    """Refuse a dataset that claims more bytes than the file could hold (a damaged header), before
    reading any data."""
    import h5py

    limit = path.stat().st_size
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                need = int(obj.size) * obj.dtype.itemsize
                if need > limit * (100 if obj.compression else 1):
                    raise ValueError(f"dataset {name!r} claims {need} bytes, the file has {limit}")

        f.visititems(visit)


def _chain(graph) -> list[tuple[str, object]]:
    """The nodes from Input to Output, if the graph is a chain."""
    nodes, edges = dict(graph.nodes), list(graph.edges)
    succ: dict[str, list[str]] = {}
    pred: dict[str, list[str]] = {}
    for a, b in edges:
        succ.setdefault(a, []).append(b)
        pred.setdefault(b, []).append(a)
    starts = [k for k, n in nodes.items() if type(n).__name__ == "Input"]
    if len(starts) != 1:
        raise ANNError(f"the graph needs exactly one Input node, it has {len(starts)}")
    chain, cur, seen = [], starts[0], set()
    while True:
        if cur in seen:
            raise ANNError(f"node {cur!r} ({type(nodes[cur]).__name__}) is on a cycle: only chains are supported")
        seen.add(cur)
        chain.append((cur, nodes[cur]))
        nxt = succ.get(cur, [])
        if len(nxt) > 1 or len(pred.get(cur, [])) > 1:
            raise ANNError(f"node {cur!r} ({type(nodes[cur]).__name__}) branches: only chains are supported")
        if not nxt:
            break
        cur = nxt[0]
    if type(chain[-1][1]).__name__ != "Output":
        raise ANNError(f"the chain from the Input ends at node {chain[-1][0]!r} ({type(chain[-1][1]).__name__}), "
                       f"not an Output")
    left = set(nodes) - seen
    if left:
        k = sorted(left)[0]
        raise ANNError(f"node {k!r} ({type(nodes[k]).__name__}) is not on the Input-Output chain")
    return chain


def _shape_of(node_type: dict, key: str):
    v = node_type.get(key) if isinstance(node_type, dict) else None
    return tuple(int(x) for x in np.asarray(v).reshape(-1)) if v is not None else None


def ann_from_nir(graph, *, input_shape=None) -> ANN:
    """The ReLU network a NIR graph of rate neurons approximates (see the module docstring)."""
    chain = _chain(graph)
    shape = input_shape or _shape_of(chain[0][1].input_type, "input")
    if not shape:
        raise ANNError("the Input node has no shape: pass input_shape")
    shape = tuple(shape)
    layers: list[list] = []   # [LayerShape, weight, bias, activation seen]
    for name, node in chain[1:-1]:
        kind = type(node).__name__
        try:
            if kind in ("Affine", "Linear"):
                w = np.asarray(node.weight, np.float64)
                b = np.asarray(node.bias, np.float64) if kind == "Affine" else np.zeros(w.shape[0])
                layers.append([Dense(w.shape[1], w.shape[0]), w, b, False])
                shape = (w.shape[0],)
            elif kind == "Conv2d":
                w = np.asarray(node.weight, np.float64)
                if np.any(np.asarray(node.dilation) != 1) or int(node.groups) != 1 or isinstance(node.padding, str):
                    raise ANNError("only plain convolutions (dilation 1, groups 1, numeric padding)")
                conv = Conv2d(shape, w.shape[0], w.shape[2:], tuple(np.broadcast_to(node.stride, 2)),
                              tuple(np.broadcast_to(node.padding, 2)))
                layers.append([conv, w, np.asarray(node.bias, np.float64), False])
                shape = conv.out_shape
            elif kind in ("SumPool2d", "AvgPool2d"):
                k = tuple(int(v) for v in np.broadcast_to(node.kernel_size, 2))
                if tuple(np.broadcast_to(node.stride, 2)) != k or np.any(np.asarray(node.padding) != 0):
                    raise ANNError("only non-overlapping pooling (stride = kernel, no padding)")
                pool = Pool2d(shape, k)
                layers.append([pool, np.array(1.0 if kind == "SumPool2d" else 1.0 / (k[0] * k[1])), np.zeros(0),
                               False])
                shape = pool.out_shape
            elif kind == "Flatten":
                shape = (int(np.prod(shape)),)
            elif kind == "Scale":
                if not layers or layers[-1][3]:
                    raise ANNError("a Scale must directly follow a weight layer")
                s = np.asarray(node.scale, np.float64).reshape(-1)
                layer = layers[-1]
                if layer[0].kind == "pool2d":
                    if not np.all(s == s[0]):
                        raise ANNError("a Scale after pooling must be the same for every channel")
                    layer[1] = layer[1] * s[0]
                elif layer[0].kind == "dense":
                    s = np.broadcast_to(s, layer[0].n_out)
                    layer[1], layer[2] = layer[1] * s[:, None], layer[2] * s
                else:   # one factor per output channel
                    per = np.broadcast_to(s.reshape(-1, 1) if s.size == layer[0].out_channels else s,
                                          (layer[0].out_channels, int(np.prod(layer[0].out_shape[1:])))) \
                        if s.size in (1, layer[0].out_channels) else s.reshape(layer[0].out_channels, -1)
                    if not np.all(per == per[:, :1]):
                        raise ANNError("a Scale after a convolution must be the same within each channel")
                    layer[1], layer[2] = layer[1] * per[:, 0, None, None, None], layer[2] * per[:, 0]
            elif kind in _ACTIVATIONS:
                if not layers or layers[-1][3]:
                    raise ANNError("an activation must follow a weight layer")
                if kind in ("LIF", "CubaLIF") and np.any(np.asarray(getattr(node, "tau", np.inf)) < 1e6):
                    warnings.warn(f"node {name!r} ({kind}) is leaky: read as the ReLU of an integrate-and-fire "
                                  f"neuron (its leak is ignored)", stacklevel=2)
                layers[-1][3] = True
            else:
                raise ANNError("unsupported node type (supported: Affine, Linear, Conv2d, SumPool2d, AvgPool2d, "
                               "Flatten, Scale, IF, LIF, CubaLIF, Threshold)")
        except ANNError as e:
            raise ANNError(f"node {name!r} ({kind}): {e}") from None
        except (ValueError, TypeError, AttributeError) as e:
            raise ANNError(f"node {name!r} ({kind}): {e}") from None
    weight_layers = [l for l in layers if l[0].kind != "pool2d"]
    if not weight_layers:
        raise ANNError("the graph has no weight layer (Affine, Linear or Conv2d)")
    if weight_layers[-1][3]:
        warnings.warn("the last weight layer is followed by a spiking neuron: read as the logits before it",
                      stacklevel=2)
    first = tuple(input_shape) if input_shape else _shape_of(chain[0][1].input_type, "input")
    try:
        return ANN(tuple(ANNLayer(s, w, b) for s, w, b, _ in layers), first)
    except (ValueError, TypeError) as e:
        raise ANNError(str(e)) from None


def network_from_nir(graph) -> SpikingNetwork:
    """The converted network of a graph written by :func:`network_to_nir` (``NetworkError`` otherwise)."""
    meta = graph.metadata.get(NIR_META_KEY) if isinstance(graph.metadata, dict) else None
    try:
        record = json.loads(meta if isinstance(meta, str) else bytes(meta).decode())
    except Exception:
        raise NetworkError("this NIR graph was not written by cssnn (no cssnn record): convert it from an "
                           "ANN instead (cssnn convert model.nir ...)") from None
    if record.get("format") != FORMAT or record.get("kind") != "network":
        raise NetworkError("this NIR graph holds no cssnn spiking network")
    if record.get("format_version") != FORMAT_VERSION:
        raise NetworkError(f"cssnn record format version {record.get('format_version')} is not supported")
    nodes = dict(graph.nodes)
    layers, ann_layers = [], []
    for i, ld in enumerate(record["layers"]):
        node = nodes[f"layer{i}"]
        shape = shape_from_dict(ld["shape"])
        kind = type(node).__name__
        if kind == "Scale":
            weight, bias = np.asarray(node.scale).reshape(-1)[0], np.zeros(0)
        else:
            weight, bias = np.asarray(node.weight), np.asarray(node.bias)
        meta = node.metadata or {}
        mask = np.asarray(meta["mask"]).astype(bool) if ld.get("masked") else None
        layers.append(SpikingLayer(shape, np.rint(weight).astype(np.int64), np.rint(bias).astype(np.int64),
                                   ld["threshold"], mask))
        if record.get("ann"):
            ann_layers.append(ANNLayer(shape, np.asarray(meta["ann_weight"]), np.asarray(meta["ann_bias"])))
    ann = ANN(tuple(ann_layers), tuple(record["input_shape"])) if ann_layers else None
    return SpikingNetwork(tuple(layers), coding=record["coding"], timesteps=record["timesteps"],
                          input_bits=record["input_bits"], weight_bits=record["weight_bits"],
                          membrane_bits=record["membrane_bits"], output_bits=record["output_bits"],
                          input_shape=tuple(record["input_shape"]), meta=record.get("conversion", {}), ann=ann)
