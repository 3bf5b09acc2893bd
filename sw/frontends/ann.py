"""Float ANNs: the networks users bring, and the reference the spiking network is measured against.

An ``ANN`` is a list of linear layers (dense, conv2d, pool2d) with ReLU after every layer but the
last. The plain interchange format is an ``.npz`` of float arrays ``W0, b0, W1, b1, ...`` with
``W_k`` of shape (out, in); a network with convolutions adds a JSON ``layers`` record describing
the layer shapes. PyTorch ``nn.Sequential`` models are imported when torch is installed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cssnn.sw.spec.layers import Conv2d, Dense, LayerShape, Pool2d, shape_from_dict

__all__ = ["ANN", "ANNLayer", "ANNError", "load_ann", "save_ann", "ann_from_torch",
           "ann_to_arrays", "ann_from_arrays"]


class ANNError(ValueError):
    """An ANN (or ANN file) that cannot be used: the message says what is wrong."""


@dataclass(frozen=True, eq=False)
class ANNLayer:
    shape: LayerShape
    weight: np.ndarray
    bias: np.ndarray

    def __post_init__(self):
        w = np.asarray(self.weight, dtype=np.float64)
        b = np.asarray(self.bias, dtype=np.float64)
        if w.shape != self.shape.weight_shape:
            raise ANNError(f"{self.shape.kind} weights have shape {w.shape}, expected {self.shape.weight_shape}")
        if b.shape != self.shape.bias_shape:
            raise ANNError(f"{self.shape.kind} bias has shape {b.shape}, expected {self.shape.bias_shape}")
        if not (np.all(np.isfinite(w)) and np.all(np.isfinite(b))):
            raise ANNError(f"{self.shape.kind} layer has NaN or infinite weights or biases")
        object.__setattr__(self, "weight", w)
        object.__setattr__(self, "bias", b)

    def forward(self, x: np.ndarray) -> np.ndarray:
        return self.shape.apply(x, self.weight) + self.shape.expand_bias(self.bias)


@dataclass(frozen=True, eq=False)
class ANN:
    layers: tuple[ANNLayer, ...]
    input_shape: tuple[int, ...] | None = None

    def __post_init__(self):
        object.__setattr__(self, "layers", tuple(self.layers))
        if not self.layers:
            raise ANNError("an ANN needs at least one layer")
        if self.input_shape is None:
            object.__setattr__(self, "input_shape", (self.layers[0].shape.n_in,))
        object.__setattr__(self, "input_shape", tuple(int(v) for v in self.input_shape))
        if int(np.prod(self.input_shape)) != self.layers[0].shape.n_in:
            raise ANNError(f"input shape {self.input_shape} does not match the first layer's {self.layers[0].shape.n_in} inputs")
        for i, (a, b) in enumerate(zip(self.layers, self.layers[1:])):
            if a.shape.n_out != b.shape.n_in:
                raise ANNError(f"layer {i} has {a.shape.n_out} outputs but layer {i + 1} expects {b.shape.n_in} inputs")

    @property
    def n_inputs(self) -> int:
        return self.layers[0].shape.n_in

    @property
    def n_outputs(self) -> int:
        return self.layers[-1].shape.n_out

    def activations(self, x: np.ndarray) -> list[np.ndarray]:
        """Outputs of every layer (ReLU applied to all but the last) for a batch (B, n_inputs)."""
        x = self._check_input(x)
        outs = []
        for i, layer in enumerate(self.layers):
            x = layer.forward(x)
            if i < len(self.layers) - 1:
                x = np.maximum(x, 0.0)
            outs.append(x)
        return outs

    def forward(self, x: np.ndarray) -> np.ndarray:
        return self.activations(x)[-1]

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.argmax(self.forward(x), axis=1)

    def _check_input(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        x = x.reshape(x.shape[0], -1) if x.ndim > 1 else x.reshape(1, -1)
        if x.shape[1] != self.n_inputs:
            raise ANNError(f"input has {x.shape[1]} features, the ANN expects {self.n_inputs}")
        return x


# ---- interchange format -------------------------------------------------------------------

def ann_to_arrays(ann: ANN) -> tuple[dict[str, np.ndarray], dict]:
    arrays = {}
    for i, layer in enumerate(ann.layers):
        arrays[f"W{i}"] = layer.weight
        arrays[f"b{i}"] = layer.bias
    meta = {"input_shape": list(ann.input_shape), "layers": [l.shape.to_dict() for l in ann.layers]}
    return arrays, meta


def ann_from_arrays(arrays: dict[str, np.ndarray], meta: dict | None = None) -> ANN:
    """Build an ANN from ``W0, b0, ...`` (dense) or with a ``layers`` description (any kind)."""
    n = 0
    while f"W{n}" in arrays:
        n += 1
    if n == 0:
        raise ANNError("no weights found: expected arrays W0, b0, W1, b1, ...")
    layers = []
    for i in range(n):
        if f"b{i}" not in arrays:
            raise ANNError(f"W{i} has no matching bias b{i}")
        w, b = np.asarray(arrays[f"W{i}"]), np.asarray(arrays[f"b{i}"])
        if not (np.issubdtype(w.dtype, np.number) and np.issubdtype(b.dtype, np.number)):
            raise ANNError(f"W{i} and b{i} must be numeric arrays")
        if meta and "layers" in meta:
            shape = shape_from_dict(meta["layers"][i])
        else:
            if w.ndim != 2:
                raise ANNError(f"W{i} has shape {w.shape}: a dense layer's weights are (out, in)")
            shape = Dense(w.shape[1], w.shape[0])
        layers.append(ANNLayer(shape, w, b))
    input_shape = tuple(meta["input_shape"]) if meta and "input_shape" in meta else None
    return ANN(tuple(layers), input_shape)


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
            import torch
        except ImportError:
            raise ANNError(f"{path}: loading PyTorch models needs torch (pip install 'cssnn[torch]')") from None
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
            w = m.weight.detach().double().numpy()
            b = m.bias.detach().double().numpy() if m.bias is not None else np.zeros(m.out_features)
            layer = ANNLayer(Dense(m.in_features, m.out_features), w, b)
        elif isinstance(m, nn.Conv2d):
            if shape is None or len(shape) != 3:
                raise ANNError("a Conv2d needs a (channels, height, width) input: pass input_shape")
            if m.groups != 1 or m.dilation != (1, 1) or m.padding_mode != "zeros" or isinstance(m.padding, str):
                raise ANNError("only plain Conv2d is supported (groups=1, dilation=1, numeric zero padding)")
            w = m.weight.detach().double().numpy()
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


def _fold_batchnorm(layer: ANNLayer, bn) -> ANNLayer:
    gamma = bn.weight.detach().double().numpy() if bn.affine else np.ones(bn.num_features)
    beta = bn.bias.detach().double().numpy() if bn.affine else np.zeros(bn.num_features)
    mean = bn.running_mean.detach().double().numpy()
    var = bn.running_var.detach().double().numpy()
    scale = gamma / np.sqrt(var + bn.eps)
    w = layer.weight * scale.reshape(-1, *([1] * (layer.weight.ndim - 1)))
    b = (layer.bias - mean) * scale + beta
    return ANNLayer(layer.shape, w, b)
