"""A small NumPy MLP trainer (no torch needed): ReLU hidden layers, softmax cross-entropy, Adam, and
optional gradual magnitude pruning (the pruned weights are exactly 0, absent synapses once converted)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from cssnn.sw.spec.ann import ANN, ANNLayer
from cssnn.sw.spec.layers import Dense

__all__ = ["train_mlp", "pruning_schedule", "PRUNE_WINDOW"]

#: The pruning ramp as fractions of the epochs: dense training before it, fine-tuning at the final
#: sparsity after it.
PRUNE_WINDOW = (0.2, 0.5)


def pruning_schedule(step: int, start: int, end: int, sparsity: float) -> float:
    """Zhu & Gupta's cubic ramp (arXiv:1710.01878): 0 before ``start``, ``sparsity`` from ``end`` on,
    ``sparsity * (1 - (1 - p)^3)`` at fraction ``p`` of the way between (fast first, slow last)."""
    if step < start:
        return 0.0
    if step >= end:
        return sparsity
    p = (step - start) / (end - start)
    return sparsity * (1.0 - (1.0 - p) ** 3)


def train_mlp(x: np.ndarray, y: np.ndarray, hidden: Sequence[int] = (64, 32), *, n_classes: int | None = None,
              epochs: int = 150, batch_size: int = 64, lr: float = 2e-3, weight_decay: float = 1e-4,
              seed: int = 0, sparsity: float = 0.0, prune_window: tuple[float, float] = PRUNE_WINDOW,
              progress: Callable[[int, float], None] | None = None) -> ANN:
    """Train a fully connected ReLU network on features ``x`` (N, F) and labels ``y`` (N,).

    Deterministic for a given seed. ``progress(epoch, loss)`` is called after every epoch.

    ``sparsity`` S in [0, 1): gradual magnitude pruning. Over the epochs in ``prune_window`` (fractions
    of ``epochs``) the target sparsity rises from 0 to S along :func:`pruning_schedule`, updated at
    every optimiser step; each weight matrix (every layer, the last too; not the biases) keeps its
    largest-magnitude weights and the rest are set to exactly 0 and held there (their gradients and
    Adam moments are masked). The remaining epochs fine-tune at S. Every weight matrix of the result
    has exactly ``round(S * size)`` pruned (zero) weights. S = 0 trains exactly as without pruning.
    """
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    y = np.asarray(y, dtype=np.int64)
    if x.shape[0] == 0:
        raise ValueError("no training samples")
    if any(int(h) < 1 for h in hidden):
        raise ValueError(f"hidden layer sizes must be positive, not {list(hidden)}")
    if int(epochs) < 1:
        raise ValueError(f"epochs must be positive, not {epochs}")
    if not 0.0 <= sparsity < 1.0:  # also rejects NaN
        raise ValueError(f"sparsity must be in [0, 1), not {sparsity}")
    lo, hi = prune_window
    if not 0.0 <= lo < hi <= 1.0:
        raise ValueError(f"the pruning window must be fractions 0 <= start < end <= 1 of the epochs, not {prune_window}")
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
    total_steps = epochs * -(-len(x) // batch_size)
    # the ramp ends by the last step at the latest, so that the last update runs at the final sparsity
    prune_end = min(round(hi * total_steps), total_steps - 1)
    prune_start = min(round(lo * total_steps), prune_end)
    keep = [np.ones(p.shape, bool) if i % 2 == 0 else None for i, p in enumerate(params)] if sparsity else None
    for epoch in range(epochs):
        order = rng.permutation(len(x))
        total = 0.0
        for start in range(0, len(x), batch_size):
            if keep is not None:
                _prune(params, m, v, keep, pruning_schedule(step, prune_start, prune_end, sparsity))
            idx = order[start:start + batch_size]
            loss, grads = _loss_and_grads(params, x[idx], onehot[idx])
            total += loss * len(idx)
            step += 1
            for i, g in enumerate(grads):
                if i % 2 == 0:
                    g = g + weight_decay * params[i]
                    if keep is not None:
                        g = g * keep[i]  # a pruned weight gets no update: it stays exactly 0
                m[i] = b1 * m[i] + (1 - b1) * g
                v[i] = b2 * v[i] + (1 - b2) * g * g
                mhat = m[i] / (1 - b1**step)
                vhat = v[i] / (1 - b2**step)
                params[i] -= lr * mhat / (np.sqrt(vhat) + eps)
        if progress is not None:
            progress(epoch, total / len(x))
    layers = [ANNLayer(Dense(w.shape[1], w.shape[0]), w, b) for w, b in zip(params[::2], params[1::2])]
    return ANN(tuple(layers))


def _prune(params, m, v, keep, sparsity: float) -> None:
    """Prune every weight matrix to ``round(sparsity * size)`` zeros by magnitude (in place)."""
    for i in range(0, len(params), 2):
        w = params[i]
        k = round(sparsity * w.size)
        if k <= w.size - int(keep[i].sum()):
            continue  # the mask only grows: already pruned that far
        # the k smallest magnitudes; already pruned weights are 0, so they stay pruned (a stable sort
        # puts them first among equal magnitudes)
        order = np.argsort(np.abs(np.where(keep[i], w, 0.0)), axis=None, kind="stable")
        mask = np.ones(w.size, bool)
        mask[order[:k]] = False
        keep[i] = mask.reshape(w.shape) & keep[i]
        for a in (params, m, v):
            a[i] *= keep[i]


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
