"""Datasets: scikit-learn's digits (built in, ships inside the wheel) or a user's ``.npz``.

Features are floats in [0, 1]; labels are integers from 0. Nothing is ever downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cssnn.sw.spec.errors import InputError
from cssnn.sw.spec.npz import read_npz

__all__ = ["Dataset", "DatasetError", "load_dataset", "DIGITS_TEST_FRACTION"]

DIGITS_TEST_FRACTION = 0.2  # 1,437 training and 360 test samples, stratified, fixed seed


class DatasetError(InputError):
    """A dataset that cannot be used: the message says what is wrong."""


@dataclass(frozen=True, eq=False)
class Dataset:
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    input_shape: tuple[int, ...]

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def n_classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max())) + 1


def load_dataset(name_or_path: str) -> Dataset:
    """``"digits"`` or the path of an ``.npz`` with ``x_train, y_train, x_test, y_test``."""
    if name_or_path == "digits":
        return _digits()
    path = Path(name_or_path)
    if not path.exists():
        raise DatasetError(f"unknown dataset {name_or_path!r}: use 'digits' or the path of an .npz file")
    arrays = read_npz(path, DatasetError)
    missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in arrays]
    if missing:
        raise DatasetError(f"{path}: missing arrays {', '.join(missing)} (need x_train, y_train, x_test, y_test)")
    xs = {}
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim < 2 or x.shape[0] == 0 or x[0].size == 0:
            raise DatasetError(f"{path}: x_{split} must have shape (samples, features...) with samples > 0 and features > 0")
        if y.shape != (x.shape[0],):
            raise DatasetError(f"{path}: y_{split} has shape {y.shape}, expected ({x.shape[0]},)")
        if x.dtype.kind not in "biuf" or not np.all(np.isfinite(x)):
            raise DatasetError(f"{path}: x_{split} must be finite real numbers")
        yf = y.astype(np.float64) if y.dtype.kind in "biuf" else None
        if yf is None or (y.size and not (np.all(np.isfinite(yf)) and np.abs(yf).max() < 2.0**62)):
            raise DatasetError(f"{path}: y_{split} must be integer class labels")
        if x.min() < 0 or x.max() > 1:
            raise DatasetError(f"{path}: x_{split} must be scaled to [0, 1] (found [{x.min():g}, {x.max():g}])")
        if not np.issubdtype(y.dtype, np.integer) and not np.all(y == np.round(y)):
            raise DatasetError(f"{path}: y_{split} must be integer class labels")
        if y.min() < 0:
            raise DatasetError(f"{path}: y_{split} has negative labels")
        xs[split] = (x.astype(np.float64), y.astype(np.int64))
    shape = xs["train"][0].shape[1:]
    if xs["test"][0].shape[1:] != shape:
        raise DatasetError(f"{path}: x_train samples have shape {shape} but x_test samples {xs['test'][0].shape[1:]}")
    flat = {k: (x.reshape(x.shape[0], -1), y) for k, (x, y) in xs.items()}
    return Dataset(path.stem, *flat["train"], *flat["test"], tuple(int(v) for v in shape))


def _digits() -> Dataset:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = d.data.astype(np.float64) / 16.0
    x_train, x_test, y_train, y_test = train_test_split(
        x, d.target.astype(np.int64), test_size=DIGITS_TEST_FRACTION, random_state=0, stratify=d.target)
    return Dataset("digits", x_train, y_train, x_test, y_test, (1, 8, 8))
