"""Layer geometry shared by the float ANN and the integer SNN.

A layer here is only its *shape* (dense, 2-D convolution, 2-D sum pool) and the linear map it
applies to a batch of flattened activations; the values (float or integer weights) are passed in.
Both the ANN forward pass and the golden model use the same code, so the two can never disagree
about what a convolution means.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Dense", "Conv2d", "Pool2d", "LayerShape", "shape_from_dict"]


def _pair(v) -> tuple[int, int]:
    if isinstance(v, (int, np.integer)):
        return (int(v), int(v))
    a, b = v
    return (int(a), int(b))


def _check_positive(name: str, *values: int) -> None:
    for v in values:
        if int(v) < 1:
            raise ValueError(f"{name} must be positive, not {v}")


@dataclass(frozen=True)
class Dense:
    """Fully connected: weights (out_features, in_features), bias (out_features,)."""

    in_features: int
    out_features: int
    kind = "dense"

    def __post_init__(self):
        _check_positive("dense layer sizes", self.in_features, self.out_features)

    @property
    def n_in(self) -> int:
        return self.in_features

    @property
    def n_out(self) -> int:
        return self.out_features

    @property
    def weight_shape(self) -> tuple[int, ...]:
        return (self.out_features, self.in_features)

    @property
    def bias_shape(self) -> tuple[int, ...]:
        return (self.out_features,)

    def apply(self, x: np.ndarray, weight: np.ndarray) -> np.ndarray:
        return x @ weight.T

    def expand_bias(self, bias: np.ndarray) -> np.ndarray:
        return bias

    def to_dict(self) -> dict:
        return {"kind": self.kind, "in_features": self.in_features, "out_features": self.out_features}


@dataclass(frozen=True)
class Conv2d:
    """2-D convolution over (C, H, W) activations: weights (out_c, in_c, kh, kw), bias (out_c,)."""

    in_shape: tuple[int, int, int]
    out_channels: int
    kernel: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    kind = "conv2d"

    def __post_init__(self):
        object.__setattr__(self, "in_shape", tuple(int(v) for v in self.in_shape))
        object.__setattr__(self, "kernel", _pair(self.kernel))
        object.__setattr__(self, "stride", _pair(self.stride))
        object.__setattr__(self, "padding", _pair(self.padding))
        if len(self.in_shape) != 3:
            raise ValueError(f"conv2d input shape must be (channels, height, width), not {self.in_shape}")
        _check_positive("conv2d input shape", *self.in_shape)
        _check_positive("conv2d out_channels/kernel/stride", self.out_channels, *self.kernel, *self.stride)
        if min(self.padding) < 0:
            raise ValueError(f"conv2d padding must not be negative, not {self.padding}")
        if min(self.out_shape[1:]) < 1:
            raise ValueError(f"conv2d kernel {self.kernel} does not fit input {self.in_shape}")

    @property
    def out_shape(self) -> tuple[int, int, int]:
        _, h, w = self.in_shape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel, self.stride, self.padding
        return (self.out_channels, (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1)

    @property
    def n_in(self) -> int:
        return int(np.prod(self.in_shape))

    @property
    def n_out(self) -> int:
        return int(np.prod(self.out_shape))

    @property
    def weight_shape(self) -> tuple[int, ...]:
        return (self.out_channels, self.in_shape[0], *self.kernel)

    @property
    def bias_shape(self) -> tuple[int, ...]:
        return (self.out_channels,)

    def _windows(self, x: np.ndarray) -> np.ndarray:
        """(B, n_in) -> (B, out_h, out_w, in_c, kh, kw) windows (a view where possible)."""
        c, h, w = self.in_shape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel, self.stride, self.padding
        img = x.reshape(-1, c, h, w)
        if ph or pw:
            img = np.pad(img, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        win = np.lib.stride_tricks.sliding_window_view(img, (kh, kw), axis=(2, 3))
        win = win[:, :, ::sh, ::sw]  # (B, C, oh, ow, kh, kw)
        return win.transpose(0, 2, 3, 1, 4, 5)

    def apply(self, x: np.ndarray, weight: np.ndarray) -> np.ndarray:
        win = self._windows(x)
        b, oh, ow = win.shape[:3]
        cols = win.reshape(b * oh * ow, -1)
        out = cols @ weight.reshape(self.out_channels, -1).T  # (B*oh*ow, out_c)
        return out.reshape(b, oh, ow, self.out_channels).transpose(0, 3, 1, 2).reshape(b, -1)

    def expand_bias(self, bias: np.ndarray) -> np.ndarray:
        _, oh, ow = self.out_shape
        return np.repeat(np.asarray(bias), oh * ow)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "in_shape": list(self.in_shape), "out_channels": self.out_channels,
                "kernel": list(self.kernel), "stride": list(self.stride), "padding": list(self.padding)}


@dataclass(frozen=True)
class Pool2d:
    """Non-overlapping 2-D pooling window (kernel = stride) with one weight shared by every element.

    With weight 1/k^2 this is average pooling; the integer network stores the quantised weight.
    Weights: shape (), no bias.
    """

    in_shape: tuple[int, int, int]
    kernel: tuple[int, int]
    kind = "pool2d"

    def __post_init__(self):
        object.__setattr__(self, "in_shape", tuple(int(v) for v in self.in_shape))
        object.__setattr__(self, "kernel", _pair(self.kernel))
        if len(self.in_shape) != 3:
            raise ValueError(f"pool2d input shape must be (channels, height, width), not {self.in_shape}")
        _check_positive("pool2d input shape/kernel", *self.in_shape, *self.kernel)
        c, h, w = self.in_shape
        kh, kw = self.kernel
        if h % kh or w % kw:
            raise ValueError(f"pool2d kernel {self.kernel} must divide the input size {(h, w)}")

    @property
    def out_shape(self) -> tuple[int, int, int]:
        c, h, w = self.in_shape
        return (c, h // self.kernel[0], w // self.kernel[1])

    @property
    def n_in(self) -> int:
        return int(np.prod(self.in_shape))

    @property
    def n_out(self) -> int:
        return int(np.prod(self.out_shape))

    @property
    def weight_shape(self) -> tuple[int, ...]:
        return ()

    @property
    def bias_shape(self) -> tuple[int, ...]:
        return (0,)

    def apply(self, x: np.ndarray, weight: np.ndarray) -> np.ndarray:
        c, h, w = self.in_shape
        kh, kw = self.kernel
        s = x.reshape(-1, c, h // kh, kh, w // kw, kw).sum(axis=(3, 5))
        return (s * weight).reshape(x.shape[0], -1)

    def expand_bias(self, bias: np.ndarray) -> np.ndarray:
        return np.zeros(self.n_out, dtype=np.asarray(bias).dtype)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "in_shape": list(self.in_shape), "kernel": list(self.kernel)}


LayerShape = Dense | Conv2d | Pool2d


def shape_from_dict(d: dict) -> LayerShape:
    """Inverse of ``to_dict``; raises ValueError naming what is wrong."""
    try:
        kind = d["kind"]
        if kind == "dense":
            return Dense(int(d["in_features"]), int(d["out_features"]))
        if kind == "conv2d":
            return Conv2d(tuple(d["in_shape"]), int(d["out_channels"]), tuple(d["kernel"]),
                          tuple(d.get("stride", (1, 1))), tuple(d.get("padding", (0, 0))))
        if kind == "pool2d":
            return Pool2d(tuple(d["in_shape"]), tuple(d["kernel"]))
    except (KeyError, TypeError) as e:
        raise ValueError(f"malformed layer description {d!r}: {e}") from None
    raise ValueError(f"unknown layer kind {d.get('kind')!r} (expected dense, conv2d or pool2d)")


def connectivity(shape: LayerShape, mask: np.ndarray | None = None) -> np.ndarray:
    """Fan-out of every input neuron: how many existing synapses (mask bit 1) leave it into this layer."""
    if isinstance(shape, Dense):
        if mask is None:
            return np.full(shape.n_in, shape.n_out, dtype=np.int64)
        return mask.astype(np.int64).sum(axis=0)
    ones = np.ones(shape.weight_shape) if mask is None else mask.astype(np.float64)
    eye = np.eye(shape.n_in)
    return (shape.apply(eye, ones) != 0).sum(axis=1).astype(np.int64)
