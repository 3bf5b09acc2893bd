import numpy as np
import pytest

from cssnn.sw.frontends.datasets import load_dataset
from cssnn.sw.frontends.train import train_mlp


@pytest.fixture(scope="session")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="session")
def digits_ann(digits):
    """The reference digits MLP (64-64-32-10), trained once per test session (under a second)."""
    return train_mlp(digits.x_train, digits.y_train, (64, 32), seed=0)
