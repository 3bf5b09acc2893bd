"""ANN-to-SNN conversion: threshold balancing and integer quantisation (docs/SEMANTICS.md section 7)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cssnn.sw.spec.ann import ANN
from cssnn.sw.spec.network import CODINGS, MAX_WEIGHT_BITS, NetworkError, SpikingLayer, SpikingNetwork

__all__ = ["ConversionConfig", "ConversionError", "convert", "activation_scales"]


class ConversionError(NetworkError):
    """The ANN cannot be converted with these settings; the message says why."""


@dataclass(frozen=True)
class ConversionConfig:
    coding: str = "css"
    timesteps: int = 6
    weight_bits: int = 8
    input_bits: int = 8
    percentile: float = 99.9
    output_bits: int | None = 32  # None: the smallest width that never saturates at this T
    membrane_bits: int | None = None  # None: the smallest exact width
    theta_max: int | None = None  # None: 2^15 - 1 for CSS, 2^30 for rate

    def __post_init__(self):
        if self.coding not in CODINGS:
            raise ConversionError(f"coding must be one of {', '.join(CODINGS)}, not {self.coding!r}")
        if not 0 < self.percentile <= 100:
            raise ConversionError(f"percentile must be in (0, 100], not {self.percentile}")
        if not 2 <= self.weight_bits <= MAX_WEIGHT_BITS:
            raise ConversionError(f"weight_bits must be in [2, {MAX_WEIGHT_BITS}], not {self.weight_bits}")
        if int(self.timesteps) != self.timesteps or self.timesteps < 1:
            raise ConversionError(f"timesteps must be a positive integer, not {self.timesteps}")

    @property
    def theta_limit(self) -> int:
        if self.theta_max is not None:
            return self.theta_max
        return 2**15 - 1 if self.coding == "css" else 2**30


def activation_scales(ann: ANN, calibration: np.ndarray, percentile: float) -> list[float]:
    """lambda_l for every hidden layer: the percentile of its ReLU activations (the max if that is 0)."""
    calibration = np.asarray(calibration, dtype=np.float64)
    if calibration.ndim < 2 or calibration.shape[0] == 0:
        raise ConversionError("calibration data is empty: threshold balancing needs samples")
    if not np.all(np.isfinite(calibration)):
        raise ConversionError("calibration data contains NaN or infinite values")
    scales = []
    for i, act in enumerate(ann.activations(calibration)[:-1], start=1):
        lam = float(np.percentile(act, percentile))
        if lam <= 0:
            lam = float(act.max())
        if lam <= 0:
            raise ConversionError(f"layer {i} never activates on the calibration data (all ReLU outputs are 0): "
                                  "it cannot be converted")
        scales.append(lam)
    return scales


def convert(ann: ANN, calibration: np.ndarray, config: ConversionConfig = ConversionConfig()) -> SpikingNetwork:
    """Convert a float ANN into an integer spiking network (CSS or the rate baseline)."""
    lambdas = activation_scales(ann, calibration, config.percentile)
    wq = 2 ** (config.weight_bits - 1) - 1
    top = 2**config.input_bits - 1
    # unit[l]: the ANN value that an output value of theta stands for in spiking layer l (the input
    # for l = 0). The percentile lambda sits at the top of each coding's range: 2*theta for CSS (its
    # digits sum to less than 2), theta for rate (one spike per step).
    if config.coding == "css":
        unit = [2 ** (config.input_bits - 1) / top] + [lam / 2 for lam in lambdas]
    else:
        unit = [1.0 / top] + list(lambdas)  # the analog input: one integer step of x
    layers = []
    thetas = []
    for i, layer in enumerate(ann.layers):
        wmax = float(np.abs(layer.weight).max(initial=0.0))
        if wmax == 0.0:
            raise ConversionError(f"layer {i + 1} has only zero weights: it cannot be converted")
        last = i == len(ann.layers) - 1
        if last:
            scale = wq / (unit[i] * wmax)
            w = layer.weight * unit[i] * scale
            b = layer.bias * scale
            theta = None
        else:
            r = unit[i] / unit[i + 1]
            theta = min(int(np.floor(wq / (r * wmax))), config.theta_limit)
            if theta < 1:
                raise ConversionError(f"layer {i + 1}: one input spike is worth more than {wq} thresholds; "
                                      f"use more weight bits (weight_bits={config.weight_bits})")
            w = layer.weight * r * theta
            b = layer.bias * theta / unit[i + 1]
            thetas.append(theta)
        w_int = np.clip(np.rint(w), -wq, wq).astype(np.int64)
        b_int = np.rint(b).astype(np.int64)
        # a synapse exists iff its integer weight is nonzero (SEMANTICS.md section 1): a zero float
        # weight (a pruned ANN) or one that quantises to 0 adds nothing, so it is no synapse
        mask = None if np.all(w_int != 0) else w_int != 0
        layers.append(SpikingLayer(layer.shape, w_int, b_int, theta, mask))
    meta = {"percentile": config.percentile, "lambdas": lambdas, "thresholds": thetas,
            "calibration_samples": int(np.asarray(calibration).shape[0])}
    try:
        return SpikingNetwork(tuple(layers), coding=config.coding, timesteps=config.timesteps,
                              input_bits=config.input_bits, weight_bits=config.weight_bits,
                              membrane_bits=config.membrane_bits, output_bits=config.output_bits,
                              input_shape=ann.input_shape, meta=meta, ann=ann)
    except ConversionError:
        raise
    except NetworkError as e:
        raise ConversionError(str(e)) from None
