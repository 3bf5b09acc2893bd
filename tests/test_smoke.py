from cssnn.sw.datasets import load_dataset


def test_digits_split_is_fixed():
    d = load_dataset("digits")
    assert d.x_train.shape == (1437, 64) and d.x_test.shape == (360, 64)
