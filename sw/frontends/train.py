"""A small NumPy MLP trainer (no torch needed): ReLU hidden layers, softmax cross-entropy, Adam."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from cssnn.sw.frontends.ann import ANN, ANNLayer
from cssnn.sw.spec.layers import Dense

__all__ = ["train_mlp"]


def train_mlp(x: np.ndarray, y: np.ndarray, hidden: Sequence[int] = (64, 32), *, n_classes: int | None = None,
              epochs: int = 150, batch_size: int = 64, lr: float = 2e-3, weight_decay: float = 1e-4,
              seed: int = 0, progress: Callable[[int, float], None] | None = None) -> ANN:
    """Train a fully connected ReLU network on features ``x`` (N, F) and labels ``y`` (N,).

    Deterministic for a given seed. ``progress(epoch, loss)`` is called after every epoch.
    """
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    y = np.asarray(y, dtype=np.int64)
    if x.shape[0] == 0:
        raise ValueError("no training samples")
    if any(int(h) < 1 for h in hidden):
        raise ValueError(f"hidden layer sizes must be positive, not {list(hidden)}")
    n_classes = n_classes or int(y.max()) + 1
    sizes = [x.shape[1], *[int(h) for h in hidden], n_classes]
    rng = np.random.default_rng(seed)
    params = []
    for fan_in, fan_out in zip(sizes, sizes[1:]):
        params.append(rng.normal(0.0, np.sqrt(2.0 / fan_in), (fan_out, fan_in)))  # He initialisation
        params.append(np.zeros(fan_out))
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    b1, b2, eps, step = 0.9, 0.999, 1e-8, 0
    onehot = np.eye(n_classes)[y]
    for epoch in range(epochs):
        order = rng.permutation(len(x))
        total = 0.0
        for start in range(0, len(x), batch_size):
            idx = order[start:start + batch_size]
            loss, grads = _loss_and_grads(params, x[idx], onehot[idx])
            total += loss * len(idx)
            step += 1
            for i, g in enumerate(grads):
                if i % 2 == 0:
                    g = g + weight_decay * params[i]
                m[i] = b1 * m[i] + (1 - b1) * g
                v[i] = b2 * v[i] + (1 - b2) * g * g
                mhat = m[i] / (1 - b1**step)
                vhat = v[i] / (1 - b2**step)
                params[i] -= lr * mhat / (np.sqrt(vhat) + eps)
        if progress is not None:
            progress(epoch, total / len(x))
    layers = [ANNLayer(Dense(w.shape[1], w.shape[0]), w, b) for w, b in zip(params[::2], params[1::2])]
    return ANN(tuple(layers))


def _loss_and_grads(params, x, onehot):
    acts = [x]
    n = len(params) // 2
    for i in range(n):
        z = acts[-1] @ params[2 * i].T + params[2 * i + 1]
        acts.append(np.maximum(z, 0.0) if i < n - 1 else z)
    logits = acts[-1]
    logits = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    loss = float(-np.mean(np.sum(onehot * np.log(p + 1e-12), axis=1)))
    grad = (p - onehot) / len(x)
    grads = [None] * len(params)
    for i in reversed(range(n)):
        grads[2 * i] = grad.T @ acts[i]
        grads[2 * i + 1] = grad.sum(axis=0)
        if i > 0:
            grad = (grad @ params[2 * i]) * (acts[i] > 0)
    return loss, grads
