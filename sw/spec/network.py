"""The converted (integer) spiking network and its versioned file format.

See docs/SEMANTICS.md for what every field means. A ``SpikingNetwork`` is validated on construction
(shapes, integer ranges, register widths), so any object that exists is one the golden model and
the hardware can run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

import numpy as np

from cssnn.sw.spec.ann import ann_from_arrays, ann_to_arrays
from cssnn.sw.spec.errors import InputError
from cssnn.sw.spec.layers import LayerShape, connectivity, shape_from_dict
from cssnn.sw.spec.npz import read_npz

__all__ = ["SpikingLayer", "SpikingNetwork", "NetworkError", "load_network", "save_network",
           "FORMAT", "FORMAT_VERSION", "CODINGS", "bits_for", "integer_array"]

FORMAT = "cssnn-snn"
FORMAT_VERSION = 1
CODINGS = ("css", "rate")

#: Upper limits on register widths (the golden model computes in int64; hardware is narrower).
MAX_MEMBRANE_BITS = 32
MAX_OUTPUT_BITS = 62
MAX_WEIGHT_BITS = 16
MAX_INPUT_BITS = 16
MAX_THRESHOLD = 2**30  # layer-level sanity bound; the converter's defaults are tighter


class NetworkError(InputError):
    """A network (or network file) that cannot be run: the message says what is wrong."""


def integer_array(a, what: str) -> np.ndarray:
    """``a`` as int64, or :class:`NetworkError` if it is not all integers of at most 62 bits (floats
    must hold integer values; complex, strings, NaN and huge values are rejected, never coerced)."""
    a = np.asarray(a)
    if a.dtype.kind not in "biuf":
        raise NetworkError(f"{what} must be integers, not {a.dtype}")
    if a.size and a.dtype.kind == "f":
        if not np.all(np.isfinite(a)) or not np.all(a == np.round(a)):
            raise NetworkError(f"{what} must be integers")
        if np.abs(a.astype(np.float64)).max() >= 2.0**62:
            raise NetworkError(f"{what} are too large (|value| >= 2^62)")
    if a.size and a.dtype.kind == "u" and a.max() >= 2**62:
        raise NetworkError(f"{what} are too large (|value| >= 2^62)")
    return a.astype(np.int64)


def bits_for(magnitude: int) -> int:
    """Signed two's-complement width that holds every value in [-magnitude, magnitude]."""
    return int(magnitude).bit_length() + 1


@dataclass(frozen=True, eq=False)
class SpikingLayer:
    """One weight layer: integer weights, biases, connection mask and (spiking layers) threshold."""

    shape: LayerShape
    weight: np.ndarray
    bias: np.ndarray
    threshold: int | None  # None for the output integrator
    mask: np.ndarray | None = None  # existence bits; None: every synapse exists

    def __post_init__(self):
        w = np.asarray(self.weight)
        b = np.asarray(self.bias)
        if w.shape != self.shape.weight_shape:
            raise NetworkError(f"{self.shape.kind} weights have shape {w.shape}, expected {self.shape.weight_shape}")
        if b.shape != self.shape.bias_shape:
            raise NetworkError(f"{self.shape.kind} bias has shape {b.shape}, expected {self.shape.bias_shape}")
        object.__setattr__(self, "weight", integer_array(w, "weights of a spiking layer"))
        object.__setattr__(self, "bias", integer_array(b, "bias of a spiking layer"))
        if self.mask is not None:
            m = np.asarray(self.mask)
            if m.shape != w.shape:
                raise NetworkError(f"mask has shape {m.shape}, expected the weight shape {w.shape}")
            object.__setattr__(self, "mask", m.astype(bool))
        if self.threshold is not None:
            if int(self.threshold) != self.threshold or not 1 <= int(self.threshold) <= MAX_THRESHOLD:
                raise NetworkError(f"threshold must be an integer in [1, {MAX_THRESHOLD}], not {self.threshold}")
            object.__setattr__(self, "threshold", int(self.threshold))

    @property
    def effective_weight(self) -> np.ndarray:
        """Weights with masked synapses set to zero."""
        return self.weight if self.mask is None else np.where(self.mask, self.weight, 0)

    @cached_property
    def expanded_bias(self) -> np.ndarray:
        """One bias per output neuron (a convolution shares one per channel)."""
        return self.shape.expand_bias(self.bias).astype(np.int64)

    @cached_property
    def fanout(self) -> np.ndarray:
        """Existing synapses leaving each input neuron: the synaptic operations one spike costs."""
        return connectivity(self.shape, self.mask)

    @property
    def synapses(self) -> int:
        """Existing synapses of the layer (SEMANTICS.md section 1)."""
        return int(self.fanout.sum())

    @cached_property
    def input_bound(self) -> np.ndarray:
        """Per output neuron: sum of |weights| over its synapses, the bound on |I| for ternary input."""
        ones = np.ones((1, self.shape.n_in))
        return np.rint(self.shape.apply(ones, np.abs(self.effective_weight).astype(np.float64))[0]).astype(np.int64)

    def apply(self, spikes: np.ndarray) -> np.ndarray:
        """Exact integer input current A @ s for a batch of integer vectors (B, n_in)."""
        # float64 is exact here: |result| <= input_bound * max|s| < 2^53 is checked by the network.
        out = self.shape.apply(spikes.astype(np.float64), self.effective_weight.astype(np.float64))
        return np.rint(out).astype(np.int64)


@dataclass(frozen=True, eq=False)
class SpikingNetwork:
    """A converted network. ``layers[-1]`` is the output integrator; the encoder is implicit."""

    layers: tuple[SpikingLayer, ...]
    coding: str = "css"
    timesteps: int = 4
    input_bits: int = 8
    weight_bits: int = 8
    membrane_bits: int | None = None  # None: the smallest exact width (see SEMANTICS.md section 2)
    output_bits: int | None = 32  # None: the smallest width that never saturates at this T
    input_shape: tuple[int, ...] | None = None
    meta: dict = field(default_factory=dict)  # conversion record (percentile, lambdas, ...)
    ann: object | None = None  # the source float ANN, kept for agreement measurements

    def __post_init__(self):
        object.__setattr__(self, "layers", tuple(self.layers))
        if not self.layers:
            raise NetworkError("a network needs at least one weight layer")
        if self.coding not in CODINGS:
            raise NetworkError(f"coding must be one of {', '.join(CODINGS)}, not {self.coding!r}")
        if int(self.timesteps) != self.timesteps or self.timesteps < 1:
            raise NetworkError(f"timesteps must be a positive integer, not {self.timesteps}")
        if not 1 <= self.input_bits <= MAX_INPUT_BITS:
            raise NetworkError(f"input_bits must be in [1, {MAX_INPUT_BITS}], not {self.input_bits}")
        if not 2 <= self.weight_bits <= MAX_WEIGHT_BITS:
            raise NetworkError(f"weight_bits must be in [2, {MAX_WEIGHT_BITS}], not {self.weight_bits}")
        if self.input_shape is None:
            object.__setattr__(self, "input_shape", (self.layers[0].shape.n_in,))
        object.__setattr__(self, "input_shape", tuple(int(v) for v in self.input_shape))
        if int(np.prod(self.input_shape)) != self.layers[0].shape.n_in:
            raise NetworkError(f"input shape {self.input_shape} does not match the first layer's "
                               f"{self.layers[0].shape.n_in} inputs")
        for i, (a, b) in enumerate(zip(self.layers, self.layers[1:]), start=1):
            if a.shape.n_out != b.shape.n_in:
                raise NetworkError(f"layer {i} has {a.shape.n_out} outputs but layer {i + 1} expects {b.shape.n_in} inputs")
        for i, layer in enumerate(self.layers, start=1):
            last = i == len(self.layers)
            if last and layer.threshold is not None:
                raise NetworkError("the last layer is the output integrator and has no threshold")
            if not last and layer.threshold is None:
                raise NetworkError(f"layer {i} is a spiking layer and needs a threshold")
            wmax = int(np.abs(layer.weight).max(initial=0))
            if wmax > self.weight_limit:
                raise NetworkError(f"layer {i} has a weight of magnitude {wmax}, more than {self.weight_bits}-bit "
                                   f"weights allow ({self.weight_limit})")
            bound = int(layer.input_bound.max(initial=0)) + int(np.abs(layer.bias).max(initial=0))
            if bound * self.input_limit >= 2**52:
                raise NetworkError(f"layer {i} can sum to {bound}, too large for exact evaluation")
        if self.coding == "rate":
            self._check_rate_range()
        if self.membrane_bits is None:
            object.__setattr__(self, "membrane_bits", self.required_membrane_bits)
        if self.output_bits is None:
            object.__setattr__(self, "output_bits", min(max(2, self.required_output_bits), MAX_OUTPUT_BITS))
        self._check_widths()

    # ---- derived quantities ---------------------------------------------------------------

    @property
    def n_layers(self) -> int:
        """L: the number of weight layers (the output integrator included, the encoder not)."""
        return len(self.layers)

    @property
    def n_inputs(self) -> int:
        return self.layers[0].shape.n_in

    @property
    def n_outputs(self) -> int:
        return self.layers[-1].shape.n_out

    @property
    def weight_limit(self) -> int:
        return 2 ** (self.weight_bits - 1) - 1

    @property
    def input_limit(self) -> int:
        """Largest input value: the encoder threshold (CSS) or the analog input maximum (rate)."""
        return 2**self.input_bits - 1

    @property
    def encoder_threshold(self) -> int:
        """theta_0 = 2^(input_bits-1): the largest input, 2^input_bits - 1, is just under 2*theta_0."""
        return 2 ** (self.input_bits - 1)

    @property
    def thresholds(self) -> list[int]:
        """Thresholds of the spiking layers 0 .. L-1 (the encoder first, for CSS)."""
        hidden = [layer.threshold for layer in self.layers[:-1]]
        return ([self.encoder_threshold] if self.coding == "css" else []) + hidden

    @property
    def total_steps(self) -> int:
        return self.timesteps + self.n_layers if self.coding == "css" else self.timesteps

    @property
    def required_membrane_bits(self) -> int:
        """Smallest width with which saturation never changes a spike (SEMANTICS.md section 2)."""
        need = [2 * self.encoder_threshold, self.input_limit]  # encoder: x at its silent step, no input after
        for layer in self.layers[:-1]:
            need.append(2 * layer.threshold + int(layer.input_bound.max(initial=0)))
        return bits_for(max(need))

    @property
    def required_output_bits(self) -> int:
        """Width the output integrators need so they never saturate, for this T."""
        out = self.layers[-1]
        bound_i = out.input_bound
        bias = np.abs(out.expanded_bias)
        if self.coding == "css":
            t = self.timesteps
            worst = (2**t - 1) * bound_i.astype(object) + 2 ** (t - 1) * bias.astype(object)
        else:  # one step adds at most Imax (times the largest input, for an analog first layer) + |b|
            scale = self.input_limit if len(self.layers) == 1 else 1
            worst = self.timesteps * (bound_i.astype(object) * scale + bias.astype(object))
        return bits_for(int(max(worst, default=0)))

    def _check_widths(self) -> None:
        if not 2 <= self.membrane_bits <= MAX_MEMBRANE_BITS:
            raise NetworkError(f"membrane_bits must be in [2, {MAX_MEMBRANE_BITS}], not {self.membrane_bits}")
        if self.coding == "css" and self.membrane_bits < self.required_membrane_bits:
            raise NetworkError(f"membrane_bits={self.membrane_bits} is too narrow: this network needs at least "
                               f"{self.required_membrane_bits} bits so that saturation never changes a spike")
        if not 2 <= self.output_bits <= MAX_OUTPUT_BITS:
            raise NetworkError(f"output_bits must be in [2, {MAX_OUTPUT_BITS}], not {self.output_bits}")
        need = self.required_output_bits
        if need > self.output_bits:
            hint = (f"lower T (timesteps={self.timesteps}) or raise output_bits (at most {MAX_OUTPUT_BITS})"
                    if need <= MAX_OUTPUT_BITS else f"lower T (timesteps={self.timesteps})")
            raise NetworkError(f"the output integrators need {need} bits at T={self.timesteps} but output_bits="
                               f"{self.output_bits}: {hint}")

    def _check_rate_range(self) -> None:
        """The rate baseline is exact in int64: a hidden membrane moves by at most Imax + |b| a step."""
        for i, layer in enumerate(self.layers[:-1], start=1):
            per_step = int(layer.input_bound.max(initial=0)) * (self.input_limit if i == 1 else 1)
            per_step += int(np.abs(layer.expanded_bias).max(initial=0))
            if self.timesteps * per_step + layer.threshold >= 2**62:
                raise NetworkError(f"layer {i}'s membrane could leave 64-bit range within T={self.timesteps} steps: "
                                   "lower T or the biases")

    def with_(self, **changes) -> SpikingNetwork:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)


# ---- file format ----------------------------------------------------------------------------

def save_network(net: SpikingNetwork, path: str | Path) -> Path:
    """Write a network as ``.npz``: integer arrays plus a JSON ``meta`` record (format + version)."""
    path = Path(path)
    arrays: dict[str, np.ndarray] = {}
    layers = []
    for i, layer in enumerate(net.layers):
        arrays[f"weight{i}"] = layer.weight
        arrays[f"bias{i}"] = layer.bias
        if layer.mask is not None:
            arrays[f"mask{i}"] = layer.mask
        layers.append({"shape": layer.shape.to_dict(), "threshold": layer.threshold, "masked": layer.mask is not None})
    meta = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "coding": net.coding, "timesteps": net.timesteps,
        "input_bits": net.input_bits, "weight_bits": net.weight_bits, "membrane_bits": net.membrane_bits,
        "output_bits": net.output_bits, "input_shape": list(net.input_shape), "layers": layers,
        "conversion": net.meta,
    }
    if net.ann is not None:
        ann_arrays, ann_meta = ann_to_arrays(net.ann)
        arrays.update({f"ann_{k}": v for k, v in ann_arrays.items()})
        meta["ann"] = ann_meta
    arrays["meta"] = np.array(json.dumps(meta))
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:  # write then rename: an interrupted save leaves no half-written file
        np.savez_compressed(f, **arrays)
    tmp.replace(path)
    return path


def load_network(path: str | Path) -> SpikingNetwork:
    """Read a network written by :func:`save_network`; raise NetworkError naming any problem."""
    path = Path(path)
    try:  # zip errors, pickled content, truncated files, headers claiming more than the file holds
        arrays = read_npz(path, NetworkError, "a cssnn network file")
    except FileNotFoundError:
        raise NetworkError(f"{path}: no such file") from None
    if "meta" not in arrays:
        raise NetworkError(f"{path}: not a cssnn network file (no 'meta' record; is this an ANN file?)")
    try:
        meta = json.loads(str(arrays["meta"]))
    except json.JSONDecodeError as e:
        raise NetworkError(f"{path}: malformed meta record ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise NetworkError(f"{path}: not a cssnn network file (format {found!r})")
    if meta.get("format_version") != FORMAT_VERSION:
        raise NetworkError(f"{path}: file format version {meta.get('format_version')} is not supported "
                           f"(this cssnn reads version {FORMAT_VERSION}); convert the ANN again")
    try:
        layers = []
        for i, ld in enumerate(meta["layers"]):
            layers.append(SpikingLayer(shape_from_dict(ld["shape"]), arrays[f"weight{i}"], arrays[f"bias{i}"],
                                       ld["threshold"], arrays[f"mask{i}"] if ld.get("masked") else None))
        ann = None
        if "ann" in meta:
            ann = ann_from_arrays({k[4:]: v for k, v in arrays.items() if k.startswith("ann_")}, meta["ann"])
        return SpikingNetwork(tuple(layers), coding=meta["coding"], timesteps=meta["timesteps"],
                              input_bits=meta["input_bits"], weight_bits=meta["weight_bits"],
                              membrane_bits=meta["membrane_bits"], output_bits=meta["output_bits"],
                              input_shape=tuple(meta["input_shape"]), meta=meta.get("conversion", {}), ann=ann)
    except KeyError as e:
        raise NetworkError(f"{path}: malformed network file (missing {e})") from None
    except (ValueError, TypeError, OverflowError) as e:
        raise NetworkError(f"{path}: {e}") from None
    except (IndexError, AttributeError) as e:   # a record of the wrong kind deep inside
        raise NetworkError(f"{path}: malformed network file ({type(e).__name__}: {e})") from None
