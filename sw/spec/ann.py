"""Float ANNs: the reference a spiking network is measured against (a network file embeds its ANN).

An ``ANN`` is a list of linear layers (dense, conv2d, pool2d) with ReLU after every layer but the
last. Its arrays are ``W0, b0, W1, b1, ...`` with ``W_k`` of shape (out, in); a network with
convolutions adds a JSON record describing the layer shapes (:func:`ann_to_arrays`,
:func:`ann_from_arrays`). Reading and writing ANN files and importing PyTorch models is
:mod:`cssnn.sw.frontends.importers`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cssnn.sw.spec.errors import InputError
from cssnn.sw.spec.layers import Dense, LayerShape, shape_from_dict

__all__ = ["ANN", "ANNLayer", "ANNError", "ann_to_arrays", "ann_from_arrays"]


class ANNError(InputError):
    """An ANN (or ANN file) that cannot be used: the message says what is wrong."""


@dataclass(frozen=True, eq=False)
class ANNLayer:
    shape: LayerShape
    weight: np.ndarray
    bias: np.ndarray

    def __post_init__(self):
        for name, a in (("weights", self.weight), ("bias", self.bias)):
            kind = np.asarray(a).dtype.kind
            if kind not in "biuf":   # complex, strings, objects: not silently coerced
                raise ANNError(f"{self.shape.kind} {name} must be real numbers, not {np.asarray(a).dtype}")
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
            if not isinstance(meta["layers"], list) or len(meta["layers"]) != n:
                raise ANNError(f"the 'layers' record must describe the {n} weight layers")
            shape = shape_from_dict(meta["layers"][i])
        else:
            if w.ndim != 2:
                raise ANNError(f"W{i} has shape {w.shape}: a dense layer's weights are (out, in)")
            shape = Dense(w.shape[1], w.shape[0])
        layers.append(ANNLayer(shape, w, b))
    input_shape = tuple(meta["input_shape"]) if meta and "input_shape" in meta else None
    return ANN(tuple(layers), input_shape)
