"""ANN files and PyTorch models in: the float networks users bring.

The plain interchange format is an ``.npz`` of float arrays ``W0, b0, W1, b1, ...`` (``W_k`` of shape
(out, in)); a network with convolutions adds a JSON ``layers`` record describing the layer shapes.
PyTorch ``nn.Sequential`` models are imported when torch is installed (the ``torch`` extra).

**PyTorch files are read safely by default**: ``torch.load(weights_only=True)`` with only the layer
classes cssnn imports allowed (:data:`TORCH_LAYERS`), so a file can hold a whole ``nn.Sequential`` of
them (``torch.save(model)``) or a ``state_dict`` of a Sequential of Linear (and BatchNorm1d) layers,
and nothing in it runs. Any other object is refused with a one-line error. Unpickling arbitrary
objects (which runs whatever code the file carries) needs ``unsafe_pickle=True`` (``--unsafe-pickle``
on the command line), for files you trust only.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from cssnn.extras import MissingExtra, require
from cssnn.sw.spec.ann import ANN, ANNError, ANNLayer, ann_from_arrays, ann_to_arrays
from cssnn.sw.spec.layers import Conv2d, Dense, Pool2d
from cssnn.sw.spec.npz import read_npz

__all__ = ["load_ann", "save_ann", "ann_from_torch", "ann_to_torch"]


def save_ann(ann: ANN, path: str | Path) -> Path:
    path = Path(path)
    arrays, meta = ann_to_arrays(ann)
    if any(l.shape.kind != "dense" for l in ann.layers) or len(ann.input_shape) > 1:
        arrays["layers"] = np.array(json.dumps(meta))
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    tmp.replace(path)
    return path


#: The torch.nn classes a PyTorch file may hold when it is read safely (the ones :func:`ann_from_torch` converts).
TORCH_LAYERS = ("Sequential", "Linear", "Conv2d", "AvgPool2d", "BatchNorm1d", "BatchNorm2d", "ReLU", "Flatten",
                "Unflatten")


def load_ann(path: str | Path, *, unsafe_pickle: bool = False) -> ANN:
    """Load an ANN from ``.npz`` (always available), a NIR graph (``.nir``, the nir extra:
    :func:`~cssnn.sw.frontends.nir_io.ann_from_nir`) or a PyTorch file (``.pt``/``.pth``, the torch
    extra): a whole ``nn.Sequential`` saved with ``torch.save(model)``, or the ``state_dict`` of a
    Sequential of Linear layers. Read safely (see the module docstring) unless ``unsafe_pickle``."""
    path = Path(path)
    if not path.exists():
        raise ANNError(f"{path}: no such file")
    if path.suffix == ".nir":
        from cssnn.sw.frontends.nir_io import ann_from_nir, read_nir

        try:
            return ann_from_nir(read_nir(path))
        except ANNError as e:
            raise ANNError(e if str(e).startswith(str(path)) else f"{path}: {e}") from None
    if path.suffix in (".pt", ".pth"):
        try:
            torch = require("torch", extra="torch", purpose="loading PyTorch models")
        except MissingExtra as e:
            raise ANNError(f"{path}: {e}") from None
        obj = _torch_load(torch, path, unsafe_pickle)
        if isinstance(obj, dict):
            obj = _sequential_from_state_dict(torch, obj, path)
        try:
            return ann_from_torch(obj)
        except ANNError as e:
            raise ANNError(f"{path}: {e}") from None
        except (AttributeError, TypeError, RuntimeError, KeyError, IndexError) as e:   # a damaged module
            raise ANNError(f"{path}: malformed PyTorch model ({type(e).__name__}: {e})") from None
    arrays = read_npz(path, ANNError, "an .npz file of float arrays")
    if "meta" in arrays:
        raise ANNError(f"{path}: this is a converted spiking network, not an ANN")
    meta = None
    if "layers" in arrays:
        try:
            meta = json.loads(str(arrays.pop("layers")))
        except json.JSONDecodeError as e:
            raise ANNError(f"{path}: malformed 'layers' record ({e})") from None
    try:
        return ann_from_arrays(arrays, meta)
    except ANNError as e:
        raise ANNError(f"{path}: {e}") from None
    except ValueError as e:
        raise ANNError(f"{path}: {e}") from None


# ---- PyTorch import ------------------------------------------------------------------------

def _torch_load(torch, path: Path, unsafe_pickle: bool):
    if unsafe_pickle:
        return torch.load(path, weights_only=False)   # runs whatever the file carries: asked for explicitly
    from torch.nn.utils import prune

    # the layers, and the pruning hooks torch.nn.utils.prune attaches to them (their masks are data)
    allowed = [getattr(torch.nn, name) for name in TORCH_LAYERS] + [
        getattr(prune, name) for name in ("PruningContainer", "Identity", "RandomUnstructured", "L1Unstructured",
                                          "RandomStructured", "LnStructured", "CustomFromMask")]
    try:
        with torch.serialization.safe_globals(allowed):
            return torch.load(path, weights_only=True)
    except Exception as e:
        text = str(e)
        found = re.search(r"Unsupported global: GLOBAL (\S+)", text)
        if found:
            raise ANNError(f"{path}: refused to unpickle an object that is not one of the supported layers "
                           f"({found.group(1)}); if you trust the file, pass --unsafe-pickle (unsafe_pickle=True), "
                           f"which runs any code it carries") from None
        why = re.search(r"Unpickler error: ([^\n]*)", text)
        reason = why.group(1) if why else (text.strip().splitlines() or [type(e).__name__])[0]
        raise ANNError(f"{path}: not a PyTorch model file ({reason})") from None


def _sequential_from_state_dict(torch, state: dict, path: Path):
    """A Sequential of Linear (and BatchNorm1d) layers from its ``state_dict``, ReLU after every
    Linear but the last; anything else needs the whole model."""
    nn = torch.nn
    groups: dict[int, dict] = {}
    for key, value in state.items():
        index, _, name = str(key).partition(".")
        if not index.isdigit() or not isinstance(value, torch.Tensor):
            raise ANNError(f"{path}: a state_dict entry {key!r} is not a layer parameter of an nn.Sequential")
        groups.setdefault(int(index), {})[name] = value
    for g in groups.values():   # torch.nn.utils.prune: the effective weight is weight_orig * weight_mask
        for name in [n[:-5] for n in g if n.endswith("_orig")]:
            if f"{name}_mask" in g:
                g[name] = g.pop(f"{name}_orig") * g.pop(f"{name}_mask")
    layers = []
    for index in sorted(groups):
        g = groups[index]
        w = g.get("weight")
        if w is not None and w.ndim == 2:
            lin = nn.Linear(w.shape[1], w.shape[0], bias="bias" in g, dtype=w.dtype)
            lin.load_state_dict(g)
            layers.append(lin)
        elif w is not None and w.ndim == 1 and "running_mean" in g:
            bn = nn.BatchNorm1d(w.shape[0], dtype=w.dtype)
            bn.load_state_dict(g, strict=False)
            layers.append(bn)
        else:
            raise ANNError(f"{path}: this state_dict is not of a Sequential of Linear layers (layer {index}); "
                           f"save the whole model (torch.save(model)) so that its layers are known")
    if not layers:
        raise ANNError(f"{path}: an empty state_dict")
    out = []
    for i, layer in enumerate(layers):
        out.append(layer)
        nxt = layers[i + 1] if i + 1 < len(layers) else None
        if isinstance(layer, nn.BatchNorm1d) or (isinstance(layer, nn.Linear) and not isinstance(nxt, nn.BatchNorm1d)):
            if any(isinstance(m, nn.Linear) for m in layers[i + 1:]):
                out.append(nn.ReLU())
    return nn.Sequential(*out)


def ann_from_torch(model, input_shape: tuple[int, ...] | None = None) -> ANN:
    """Convert an ``nn.Sequential`` of Linear / Conv2d / AvgPool2d / BatchNorm / ReLU / Flatten / Unflatten.

    ReLU must follow every weight layer but the last (pooling may sit between a ReLU and the next
    layer: average pooling of non-negative values keeps them non-negative). BatchNorm is folded into
    the preceding Linear or Conv2d. ``input_shape`` is needed when the first layer is a Conv2d (unless an
    ``Unflatten`` comes first).
    """
    try:
        import torch.nn as nn
    except ImportError:
        raise ANNError("importing PyTorch models needs torch (pip install 'cssnn[torch]')") from None
    if not isinstance(model, nn.Sequential):
        raise ANNError(f"expected an nn.Sequential, got {type(model).__name__}")
    mods = [m for m in model if not isinstance(m, (nn.Flatten, nn.Identity, nn.Dropout))]
    layers: list[ANNLayer] = []
    relu_after: list[bool] = []
    shape = tuple(input_shape) if input_shape is not None else None
    for m in mods:
        if isinstance(m, nn.Unflatten):  # flat input to (C, H, W): it gives the shape input_shape would
            size = tuple(int(v) for v in m.unflattened_size)
            if m.dim != 1 or (shape is not None and int(np.prod(shape)) != int(np.prod(size))):
                raise ANNError(f"Unflatten to {size} does not fit the activations {shape}")
            if input_shape is None and not layers:
                input_shape = size
            shape = size
            continue
        if isinstance(m, nn.ReLU):
            if not layers:
                raise ANNError("a ReLU must follow a weight layer")
            if layers[-1].shape.kind == "pool2d":
                continue  # pooling of ReLU outputs is non-negative already
            if relu_after[-1]:
                raise ANNError("two ReLUs in a row")
            relu_after[-1] = True
            continue
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            if not layers or relu_after[-1] or layers[-1].shape.kind == "pool2d":
                raise ANNError("BatchNorm must directly follow a Linear or Conv2d layer")
            layers[-1] = _fold_batchnorm(layers[-1], m)
            continue
        if not isinstance(m, (nn.Linear, nn.Conv2d, nn.AvgPool2d)):
            raise ANNError(f"unsupported module {type(m).__name__} (supported: Linear, Conv2d, AvgPool2d, "
                           "BatchNorm1d/2d, ReLU, Flatten, Unflatten, Dropout)")
        if layers and not relu_after[-1]:
            raise ANNError("every Linear/Conv2d but the last must be followed by a ReLU, and AvgPool2d must "
                           "come after a ReLU")
        if isinstance(m, nn.Linear):
            if shape is not None and m.in_features != int(np.prod(shape)):
                raise ANNError(f"Linear expects {m.in_features} inputs but receives {int(np.prod(shape))}")
            w = _weight(m)
            b = m.bias.detach().double().numpy() if m.bias is not None else np.zeros(m.out_features)
            layer = ANNLayer(Dense(m.in_features, m.out_features), w, b)
        elif isinstance(m, nn.Conv2d):
            if shape is None or len(shape) != 3:
                raise ANNError("a Conv2d needs a (channels, height, width) input: pass input_shape")
            if m.groups != 1 or m.dilation != (1, 1) or m.padding_mode != "zeros" or isinstance(m.padding, str):
                raise ANNError("only plain Conv2d is supported (groups=1, dilation=1, numeric zero padding)")
            w = _weight(m)
            b = m.bias.detach().double().numpy() if m.bias is not None else np.zeros(m.out_channels)
            layer = ANNLayer(Conv2d(shape, m.out_channels, m.kernel_size, m.stride, m.padding), w, b)
        else:  # nn.AvgPool2d
            k = m.kernel_size
            stride = m.stride if m.stride is not None else k
            if stride != k or m.padding not in (0, (0, 0)):
                raise ANNError("only non-overlapping AvgPool2d (stride = kernel, no padding) is supported")
            if shape is None or len(shape) != 3:
                raise ANNError("an AvgPool2d needs a (channels, height, width) input: pass input_shape")
            pshape = Pool2d(shape, k)
            layer = ANNLayer(pshape, np.array(1.0 / (pshape.kernel[0] * pshape.kernel[1])), np.zeros(0))
        if shape is None:
            shape = (layer.shape.n_in,)
        layers.append(layer)
        relu_after.append(layer.shape.kind == "pool2d")
        shape = getattr(layer.shape, "out_shape", (layer.shape.n_out,))
    if not layers:
        raise ANNError("the model has no Linear or Conv2d layer")
    if layers[-1].shape.kind == "pool2d" or relu_after[-1]:
        raise ANNError("the model must end in a Linear or Conv2d layer without ReLU (its outputs are the logits)")
    first_shape = tuple(input_shape) if input_shape is not None else (layers[0].shape.n_in,)
    return ANN(tuple(layers), first_shape)


def ann_to_torch(ann: ANN, *, flat_input: bool = True):
    """The ANN as a float64 ``nn.Sequential``, as :func:`ann_from_torch` reads it back: a ReLU after
    every layer but the last (after pooling too, as in :class:`~cssnn.sw.spec.ann.ANN`),
    Unflatten/Flatten where the activations change between flat and (C, H, W). Average pooling becomes
    ``AvgPool2d``; a pooling layer with another weight becomes a per-channel (grouped) convolution.
    The model takes flat inputs, or ``ann.input_shape``-shaped ones with ``flat_input=False``."""
    torch = require("torch", extra="torch", purpose="a PyTorch copy of the ANN")
    nn = torch.nn
    out: list = []
    spatial = not flat_input and len(ann.input_shape) == 3  # are the activations (C, H, W) at this point?
    with torch.no_grad():
        for i, layer in enumerate(ann.layers):
            s = layer.shape
            if s.kind == "dense":
                if spatial:
                    out.append(nn.Flatten())
                    spatial = False
                m = nn.Linear(s.in_features, s.out_features).double()
                m.weight.copy_(torch.from_numpy(layer.weight))
                m.bias.copy_(torch.from_numpy(layer.bias))
            else:
                if not spatial:
                    out.append(nn.Unflatten(1, s.in_shape))
                    spatial = True
                if s.kind == "conv2d":
                    m = nn.Conv2d(s.in_shape[0], s.out_channels, s.kernel, s.stride, s.padding).double()
                    m.weight.copy_(torch.from_numpy(layer.weight))
                    m.bias.copy_(torch.from_numpy(layer.bias))
                elif float(layer.weight) * s.kernel[0] * s.kernel[1] == 1.0:
                    m = nn.AvgPool2d(s.kernel)
                else:
                    c = s.in_shape[0]
                    m = nn.Conv2d(c, c, s.kernel, s.kernel, groups=c, bias=False).double()
                    m.weight.fill_(float(layer.weight))
            out.append(m)
            if i < len(ann.layers) - 1:
                out.append(nn.ReLU())
    if spatial:
        out.append(nn.Flatten())
    return nn.Sequential(*out).eval()


def _weight(m) -> np.ndarray:
    """The weight a Linear/Conv2d computes with. Under ``torch.nn.utils.prune`` that is
    ``weight_orig * weight_mask``: ``m.weight`` is only a copy the forward hook refreshes, stale after
    an optimiser step; the pruned entries are exactly 0 either way (absent synapses once converted)."""
    if hasattr(m, "weight_orig") and hasattr(m, "weight_mask"):
        w = m.weight_orig.detach().double() * m.weight_mask.detach().double()
    else:
        w = m.weight.detach().double()
    return w.numpy()


def _fold_batchnorm(layer: ANNLayer, bn) -> ANNLayer:
    gamma = bn.weight.detach().double().numpy() if bn.affine else np.ones(bn.num_features)
    beta = bn.bias.detach().double().numpy() if bn.affine else np.zeros(bn.num_features)
    mean = bn.running_mean.detach().double().numpy()
    var = bn.running_var.detach().double().numpy()
    scale = gamma / np.sqrt(var + bn.eps)
    w = layer.weight * scale.reshape(-1, *([1] * (layer.weight.ndim - 1)))
    b = (layer.bias - mean) * scale + beta
    return ANNLayer(layer.shape, w, b)
