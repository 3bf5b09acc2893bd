"""ANN files and PyTorch models in: the float networks users bring.

The plain interchange format is an ``.npz`` of float arrays ``W0, b0, W1, b1, ...`` (``W_k`` of shape
(out, in)); a network with convolutions adds a JSON ``layers`` record describing the layer shapes.
PyTorch ``nn.Sequential`` models are imported when torch is installed (the ``torch`` extra).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from cssnn.extras import MissingExtra, require
from cssnn.sw.spec.ann import ANN, ANNError, ANNLayer, ann_from_arrays, ann_to_arrays
from cssnn.sw.spec.layers import Conv2d, Dense, Pool2d

__all__ = ["load_ann", "save_ann", "ann_from_torch"]


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


def load_ann(path: str | Path) -> ANN:
    """Load an ANN from ``.npz`` (always available) or a PyTorch ``nn.Sequential`` saved whole
    with ``torch.save`` (``.pt``/``.pth``, needs the torch extra)."""
    path = Path(path)
    if not path.exists():
        raise ANNError(f"{path}: no such file")
    if path.suffix in (".pt", ".pth"):
        try:
            torch = require("torch", extra="torch", purpose="loading PyTorch models")
        except MissingExtra as e:
            raise ANNError(f"{path}: {e}") from None
        return ann_from_torch(torch.load(path, weights_only=False))
    try:
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as e:
        raise ANNError(f"{path}: not an .npz file of float arrays ({e})") from None
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

def ann_from_torch(model, input_shape: tuple[int, ...] | None = None) -> ANN:
    """Convert an ``nn.Sequential`` of Linear / Conv2d / AvgPool2d / BatchNorm / ReLU / Flatten.

    ReLU must follow every weight layer but the last (pooling may sit between a ReLU and the next
    layer: average pooling of non-negative values keeps them non-negative). BatchNorm is folded into
    the preceding Linear or Conv2d. ``input_shape`` is needed when the first layer is a Conv2d.
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
                           "BatchNorm1d/2d, ReLU, Flatten, Dropout)")
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
