import numpy as np
import pytest

from cssnn.sw.frontends.datasets import DatasetError, load_dataset


def test_digits_is_built_in_and_scaled(digits):
    assert digits.x_train.shape == (1437, 64) and digits.x_test.shape == (360, 64)
    assert digits.x_train.min() == 0 and digits.x_train.max() == 1
    assert digits.n_classes == 10 and digits.input_shape == (1, 8, 8)


def test_user_npz(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "mine.npz"
    np.savez(path, x_train=rng.random((20, 2, 3)), y_train=rng.integers(0, 3, 20),
             x_test=rng.random((5, 2, 3)), y_test=rng.integers(0, 3, 5))
    d = load_dataset(str(path))
    assert d.x_train.shape == (20, 6) and d.input_shape == (2, 3) and d.name == "mine"


@pytest.mark.parametrize("arrays, message", [
    (dict(x_train=np.zeros((3, 2)), y_train=np.zeros(3)), "missing arrays x_test, y_test"),
    (dict(x_train=np.full((3, 2), 2.0), y_train=np.zeros(3), x_test=np.zeros((1, 2)), y_test=np.zeros(1)),
     r"scaled to \[0, 1\]"),
    (dict(x_train=np.zeros((3, 2)), y_train=np.zeros(4), x_test=np.zeros((1, 2)), y_test=np.zeros(1)),
     "y_train has shape"),
    (dict(x_train=np.zeros((3, 2)), y_train=np.zeros(3), x_test=np.zeros((1, 5)), y_test=np.zeros(1)),
     "x_test samples"),
    (dict(x_train=np.zeros((0, 2)), y_train=np.zeros(0), x_test=np.zeros((1, 2)), y_test=np.zeros(1)),
     "samples > 0"),
])
def test_bad_npz_is_rejected(tmp_path, arrays, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(DatasetError, match=message):
        load_dataset(str(path))


def test_unknown_name():
    with pytest.raises(DatasetError, match="unknown dataset 'mnist'"):
        load_dataset("mnist")
