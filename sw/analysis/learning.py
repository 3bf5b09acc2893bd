"""What a learning run learned: the readout classifier on first-spike features, and the plot.

The readout is scikit-learn's logistic regression on ``window - t`` per neuron (0 for a neuron that
did not fire, ``window`` for one that fired in the first bin), trained on the training split's
features and scored on the test split's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["spike_features", "readout_accuracy", "plot_learning"]


def spike_features(times: np.ndarray, window: int) -> np.ndarray:
    """Readout features of first-spike times: earlier is larger, no spike is 0."""
    return (window - np.asarray(times)).astype(np.float64)


def readout_accuracy(f_train, y_train, f_test, y_test, *, seed: int = 0) -> tuple[float, np.ndarray]:
    """Test accuracy of a logistic-regression readout and its predictions."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(f_train)
    clf = LogisticRegression(max_iter=5000, random_state=seed).fit(scaler.transform(f_train), y_train)
    pred = clf.predict(scaler.transform(f_test))
    return float(np.mean(pred == y_test)), pred


def plot_learning(path: Path, layer, input_shape, connectivity: np.ndarray, y_test, pred, accuracy: float,
                  title: str) -> None:
    """Receptive fields (each neuron's incoming weights as an image, pruned synapses black),
    connectivity over the training samples, and the readout's confusion matrix."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = layer.neurons
    shape = _image_shape(input_shape, layer.n_in)
    fig = plt.figure(figsize=(14, 5.2), layout="constrained")
    left, mid, right = fig.subfigures(1, 3, width_ratios=(1.3, 1, 1))
    cols = int(np.ceil(np.sqrt(k)))
    axes = np.atleast_1d(left.subplots(int(np.ceil(k / cols)), cols)).reshape(-1)
    for j, ax in enumerate(axes):
        ax.set_axis_off()
        if j < k:
            img = np.where(layer.mask[:, j], layer.weight[:, j], 0)[:int(np.prod(shape))].reshape(shape)
            ax.imshow(img, cmap="gray", vmin=0, vmax=layer.rule.max_weight)
    left.suptitle("receptive fields (black: pruned)")
    ax = mid.subplots()
    ax.plot(np.arange(1, len(connectivity) + 1), 100 * np.asarray(connectivity))
    ax.set_xlabel("training samples")
    ax.set_ylabel("synapses kept (%)")
    ax.set_ylim(0, 105)
    ax.grid(alpha=0.3)
    ax.set_title(f"connectivity (final {100 * connectivity[-1]:.1f}%)" if len(connectivity) else "connectivity")
    ax = right.subplots()
    classes = int(max(np.max(y_test), np.max(pred))) + 1
    cm = np.zeros((classes, classes), int)
    np.add.at(cm, (np.asarray(y_test), np.asarray(pred)), 1)
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(classes))
    ax.set_yticks(range(classes))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"readout: {100 * accuracy:.1f}% (test split)")
    fig.suptitle(title)
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _image_shape(input_shape, n_in: int) -> tuple[int, int]:
    """How to show one neuron's weights: the input's image (the first channel's), else a square."""
    shape = tuple(int(v) for v in input_shape)
    if len(shape) >= 2:
        return shape[-2], shape[-1]
    side = int(np.ceil(np.sqrt(n_in)))
    return (side, side) if side * side == n_in else (1, n_in)
