"""What a learning run learned: the readout classifier on first-spike features, and the plot.

The readout is scikit-learn's logistic regression on ``window - t`` per neuron (0 for a neuron that
did not fire, ``window`` for one that fired in the first bin), trained on the training split's
features and scored on the test split's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["spike_features", "readout_accuracy", "plot_learning", "default_theta"]


def default_theta(n_in: int, max_weight: int) -> int:
    """The initial threshold: a twentieth of the largest possible potential (measured on digits:
    docs/LEARNING.md)."""
    return max(1, round(n_in * max_weight / 20))


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
    cols = int(np.ceil(np.sqrt(k)))
    rows = int(np.ceil(k / cols))
    fig = plt.figure(figsize=(13, 5.5))
    grid = fig.add_gridspec(rows, cols + 8)
    shape = tuple(input_shape) if len(input_shape) == 2 else (1, layer.n_in)
    for j in range(k):
        ax = fig.add_subplot(grid[j // cols, j % cols])
        ax.imshow(layer.weight[:, j].reshape(shape), cmap="gray", vmin=0, vmax=layer.rule.max_weight)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.text(0.02 + 0.4 * cols / (cols + 8) / 2, 0.95, "receptive fields (black: pruned or 0)", ha="center")
    ax = fig.add_subplot(grid[:, cols + 1:cols + 4])
    ax.plot(np.arange(1, len(connectivity) + 1), 100 * np.asarray(connectivity))
    ax.set_xlabel("training samples")
    ax.set_ylabel("synapses kept (%)")
    ax.set_ylim(0, 105)
    ax.grid(alpha=0.3)
    ax.set_title("connectivity")
    ax = fig.add_subplot(grid[:, cols + 5:])
    classes = int(max(np.max(y_test), np.max(pred))) + 1
    cm = np.zeros((classes, classes), int)
    np.add.at(cm, (np.asarray(y_test), np.asarray(pred)), 1)
    ax.imshow(cm, cmap="Blues")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"readout: {100 * accuracy:.1f}% on the test split")
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
