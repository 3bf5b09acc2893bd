"""On-chip learning, the contract: TTFS coding, integrate-and-fire, winner-take-all, integer STDP
with connection pruning, threshold homeostasis (docs/SEMANTICS.md section 8).

Everything is integer and deterministic, so the learning engine in gateware
(:mod:`cssnn.hw.learn`) reproduces every weight after every sample. A :class:`LearningLayer` is
immutable: :func:`learn_step` returns the next one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

import numpy as np

from cssnn.sw.spec.network import NetworkError, integer_array
from cssnn.sw.spec.npz import read_npz

__all__ = ["StdpRule", "LearningLayer", "LearnStep", "init_layer", "default_theta", "default_prune_below",
           "ttfs_encode", "first_spikes",
           "winner", "learn_step", "learn", "sample_order", "save_learning", "load_learning", "RATE_ONE"]

#: STDP rates are fractions of RATE_ONE (16 fractional bits).
RATE_ONE = 1 << 16


def default_prune_below(weight_bits: int) -> int:
    """The default prune threshold, 3/4 of the weight range (measured on digits: docs/LEARNING.md)."""
    return 3 * (1 << weight_bits) // 4


@dataclass(frozen=True)
class StdpRule:
    """The learning rule's integer parameters (SEMANTICS.md section 8).

    window       TTFS time bins per sample: spike times 0 .. window-1, ``window`` means no spike
    weight_bits  unsigned weight width Bw: weights 0 .. M = 2^Bw - 1 (M stands for 1)
    a_plus       LTP rate, a fraction of RATE_ONE: ``ltp[w] = round(a_plus * w * (M - w) / M)``
    a_minus      LTD rate (a magnitude): ``ltd[w] = round(a_minus * w * (M - w) / M)``
    prune_below  a depressed synapse whose new weight is below this is pruned; 0: never prune;
                 default :func:`default_prune_below` (3/4 of the range: 192 for 8-bit weights)
    theta_up     the winner's threshold rises by this after its update
    theta_down   every threshold falls by this after each learning sample, down to ``theta_min``
    """

    window: int = 8
    weight_bits: int = 8
    a_plus: int = RATE_ONE // 4
    a_minus: int = RATE_ONE // 4
    prune_below: int | None = None
    theta_up: int = 64
    theta_down: int = 1
    theta_min: int = 1

    def __post_init__(self):
        def check(name, lo, hi):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or not lo <= v <= hi:
                raise NetworkError(f"learning rule: {name} must be an integer in [{lo}, {hi}], not {v!r}")

        check("weight_bits", 2, 16)   # first: the other bounds depend on it (2^weight_bits)
        if self.prune_below is None:
            object.__setattr__(self, "prune_below", default_prune_below(self.weight_bits))
        for name, lo, hi in (("window", 1, 255), ("a_plus", 0, RATE_ONE), ("a_minus", 0, RATE_ONE),
                             ("prune_below", 0, self.max_weight), ("theta_up", 0, 1 << 16),
                             ("theta_down", 0, 1 << 16), ("theta_min", 1, 1 << 30)):
            check(name, lo, hi)

    @property
    def max_weight(self) -> int:
        return (1 << self.weight_bits) - 1

    @property
    def time_bits(self) -> int:
        """Width of a spike time (0 .. window, window meaning none)."""
        return max(1, int(self.window).bit_length())

    def _table(self, rate: int) -> np.ndarray:
        m = self.max_weight
        w = np.arange(m + 1, dtype=np.int64)
        return (rate * w * (m - w) + (m << 15)) // (m << 16)

    @cached_property
    def ltp(self) -> np.ndarray:
        """Potentiation step of every weight: ``w + ltp[w] <= M`` always."""
        return self._table(self.a_plus)

    @cached_property
    def ltd(self) -> np.ndarray:
        """Depression step of every weight: ``w - ltd[w] >= 0`` always."""
        return self._table(self.a_minus)

    @property
    def pruning(self) -> bool:
        return self.prune_below > 0


@dataclass(frozen=True, eq=False)
class LearningLayer:
    """One fully connected STDP layer: ``weight[i, j]`` from input ``i`` to neuron ``j`` exists iff
    ``mask[i, j]`` (a pruned synapse has mask 0 and weight 0 and never comes back)."""

    weight: np.ndarray
    mask: np.ndarray
    theta: np.ndarray
    rule: StdpRule = field(default_factory=StdpRule)
    input_shape: tuple[int, ...] | None = None

    def __post_init__(self):
        w, t = integer_array(self.weight, "learning weights"), integer_array(self.theta, "learning thresholds")
        m = np.asarray(self.mask)
        if m.dtype.kind not in "biu":
            raise NetworkError(f"the learning mask must be booleans, not {m.dtype}")
        if w.ndim != 2 or w.shape[0] < 1 or w.shape[1] < 1:
            raise NetworkError(f"learning weights must be a non-empty (inputs, neurons) matrix, not shape {w.shape}")
        if m.shape != w.shape:
            raise NetworkError(f"learning mask has shape {m.shape}, expected {w.shape}")
        if t.shape != (w.shape[1],):
            raise NetworkError(f"learning thresholds have shape {t.shape}, expected ({w.shape[1]},)")
        if w.min() < 0 or w.max() > self.rule.max_weight:
            raise NetworkError(f"learning weights must be in [0, {self.rule.max_weight}]")
        if t.min() < self.rule.theta_min or t.max() > self.theta_max:
            raise NetworkError(f"learning thresholds must be in [{self.rule.theta_min}, {self.theta_max}]")
        object.__setattr__(self, "weight", np.where(m, w, 0).astype(np.int64))
        object.__setattr__(self, "mask", m.astype(bool))
        object.__setattr__(self, "theta", t.astype(np.int64))
        if self.input_shape is None:
            object.__setattr__(self, "input_shape", (w.shape[0],))

    @property
    def n_in(self) -> int:
        return self.weight.shape[0]

    @property
    def neurons(self) -> int:
        return self.weight.shape[1]

    @property
    def potential_bits(self) -> int:
        """Unsigned width of a membrane potential: it never exceeds n_in * M."""
        return max(1, (self.n_in * self.rule.max_weight).bit_length())

    @property
    def theta_max(self) -> int:
        return (1 << self.potential_bits) - 1

    @property
    def synapses(self) -> int:
        return int(self.mask.sum())

    @property
    def connectivity(self) -> float:
        """Fraction of the n_in x neurons synapses that still exist."""
        return self.synapses / self.mask.size

    @property
    def fan_in(self) -> np.ndarray:
        return self.mask.sum(axis=0)


def default_theta(n_in: int, max_weight: int) -> int:
    """The default initial threshold: a twentieth of the largest possible potential (measured on
    digits: docs/LEARNING.md)."""
    return max(1, round(n_in * max_weight / 20))


def init_layer(n_in: int, neurons: int, rule: StdpRule | None = None, *, theta: int | None = None, seed: int = 0,
               input_shape=None) -> LearningLayer:
    """Every synapse present, weights uniform in [3M/8, 5M/8], every threshold ``theta`` (default
    :func:`default_theta`)."""
    rule = rule or StdpRule()
    if theta is None:
        theta = max(rule.theta_min, default_theta(n_in, rule.max_weight))
    m = rule.max_weight
    rng = np.random.default_rng(seed)
    w = rng.integers(3 * m // 8, 5 * m // 8 + 1, size=(n_in, neurons))
    layer = LearningLayer(w, np.ones((n_in, neurons), bool), np.full(neurons, rule.theta_min), rule, input_shape)
    if not rule.theta_min <= theta <= layer.theta_max:
        raise NetworkError(f"initial threshold must be in [{rule.theta_min}, {layer.theta_max}], not {theta}")
    return replace(layer, theta=np.full(neurons, theta))


def ttfs_encode(x, window: int) -> np.ndarray:
    """Time-to-first-spike codes of features in [0, 1]: ``t = min(floor((1 - x) * window), window - 1)``,
    the stronger the earlier; a feature <= 0 never spikes (``t = window``). Integer input passes through."""
    x = np.asarray(x)
    if np.issubdtype(x.dtype, np.integer):
        if x.size and (x.min() < 0 or x.max() > window):
            raise ValueError(f"spike times must be in [0, {window}]")
        return x.astype(np.int64)
    x = x.astype(np.float64)
    if x.size and not np.all(np.isfinite(x)):
        raise ValueError("features must be finite")
    t = np.minimum(np.floor((1.0 - np.clip(x, 0.0, 1.0)) * window), window - 1).astype(np.int64)
    return np.where(x <= 0, window, t)


def potentials(layer: LearningLayer, times: np.ndarray) -> np.ndarray:
    """(B, window, neurons): neuron j's potential at the end of bin t, ``sum(w_ij, t_i <= t)``."""
    times = np.atleast_2d(times)
    arrived = (times[:, :, None] <= np.arange(layer.rule.window)[None, None, :]).astype(np.int64)
    return np.einsum("bit,ij->btj", arrived, layer.weight)


def first_spikes(layer: LearningLayer, times) -> tuple[np.ndarray, np.ndarray]:
    """Every neuron's first-spike time (``window``: none) and its potential then (0 if none), no WTA:
    the features. Shapes (B, neurons)."""
    v = potentials(layer, times)
    fired = v >= layer.theta[None, None, :]
    any_ = fired.any(axis=1)
    tf = np.where(any_, fired.argmax(axis=1), layer.rule.window)
    vf = np.where(any_, np.take_along_axis(v, np.minimum(tf, layer.rule.window - 1)[:, None, :], 1)[:, 0], 0)
    return tf, vf


def winner(tf: np.ndarray, vf: np.ndarray, window: int) -> int:
    """The first neuron to fire; ties go to the highest potential, then the lowest index; -1 if none fired."""
    if tf.min() >= window:
        return -1
    cand = np.flatnonzero(tf == tf.min())
    return int(cand[np.argmax(vf[cand])])  # argmax: the first (lowest index) of equal potentials


@dataclass(frozen=True)
class LearnStep:
    winner: int        #: -1: no neuron fired, nothing learned
    fire_time: int     #: the winner's first-spike time (window if none)
    updated: int       #: synapses the winner had (each one updated)
    pruned: int        #: of those, pruned by this update


def learn_step(layer: LearningLayer, times) -> tuple[LearningLayer, LearnStep]:
    """One training sample: integrate, pick the winner, update its existing synapses (LTP if the
    input spiked no later than the winner, LTD otherwise, including inputs that never spiked), prune,
    then homeostasis (every threshold ``max(theta - down, min)``, the winner's then ``min(+ up, max)``)."""
    r = layer.rule
    times = np.asarray(times, np.int64).reshape(-1)
    tf, vf = first_spikes(layer, times[None])
    win = winner(tf[0], vf[0], r.window)
    theta = np.maximum(layer.theta - r.theta_down, r.theta_min)
    if win < 0:
        return replace(layer, theta=theta), LearnStep(-1, r.window, 0, 0)
    t_post = int(tf[0, win])
    w, m = layer.weight[:, win], layer.mask[:, win]
    potentiate = times <= t_post
    new = np.where(potentiate, w + r.ltp[w], w - r.ltd[w])
    pruned = m & ~potentiate & (new < r.prune_below) if r.pruning else np.zeros_like(m)
    weight, mask = layer.weight.copy(), layer.mask.copy()
    mask[:, win] = m & ~pruned
    weight[:, win] = np.where(mask[:, win], new, 0)
    theta[win] = min(theta[win] + r.theta_up, layer.theta_max)
    return (replace(layer, weight=weight, mask=mask, theta=theta),
            LearnStep(win, t_post, int(m.sum()), int(pruned.sum())))


def learn(layer: LearningLayer, times, *, epochs: int = 1, seed: int = 0, trace: bool = False, progress=None):
    """Learn from every sample of ``times`` (B, n_in) for ``epochs`` passes, each in the order of
    :func:`sample_order`. Returns the last layer and the list of :class:`LearnStep` (with ``trace``,
    also the layer after every sample)."""
    times = np.asarray(times, np.int64)
    steps, layers = [], []
    for order in sample_order(len(times), epochs, seed):
        for s in order:
            layer, res = learn_step(layer, times[s])
            steps.append(res)
            if trace:
                layers.append(layer)
            if progress is not None:
                progress.update(1)
    return (layer, steps, layers) if trace else (layer, steps)


def sample_order(samples: int, epochs: int, seed: int) -> list[np.ndarray]:
    """The sample order of each epoch: a permutation from ``seed`` (the host streams samples in it)."""
    rng = np.random.default_rng(seed)
    return [rng.permutation(samples) for _ in range(epochs)]


#: The learning-layer file format (an ``.npz``: weight, mask, theta arrays and a JSON ``meta``).
LEARN_FORMAT = "cssnn-learn"
LEARN_FORMAT_VERSION = 1
_RULE_FIELDS = ("window", "weight_bits", "a_plus", "a_minus", "prune_below", "theta_up", "theta_down", "theta_min")


def save_learning(layer: LearningLayer, path) -> Path:
    """Write a learning layer (weights, existence mask, thresholds, rule); write-then-rename."""
    path = Path(path)
    meta = {"format": LEARN_FORMAT, "format_version": LEARN_FORMAT_VERSION,
            "rule": {k: int(getattr(layer.rule, k)) for k in _RULE_FIELDS}, "input_shape": list(layer.input_shape)}
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.savez_compressed(f, weight=layer.weight, mask=layer.mask, theta=layer.theta, meta=np.array(json.dumps(meta)))
    tmp.replace(path)
    return path


def load_learning(path) -> LearningLayer:
    """Read a layer written by :func:`save_learning`; ``NetworkError`` names any problem."""
    path = Path(path)
    try:
        arrays = read_npz(path, NetworkError, "a cssnn learning-layer file")
        meta = json.loads(str(arrays["meta"]))
    except FileNotFoundError:
        raise NetworkError(f"{path}: no such file") from None
    except NetworkError:
        raise
    except Exception as e:
        raise NetworkError(f"{path}: not a cssnn learning-layer file ({type(e).__name__}: {e})") from None
    if not isinstance(meta, dict) or meta.get("format") != LEARN_FORMAT:
        raise NetworkError(f"{path}: not a cssnn learning-layer file")
    if meta.get("format_version") != LEARN_FORMAT_VERSION:
        raise NetworkError(f"{path}: learning-layer format version {meta.get('format_version')} is not supported "
                           f"(this cssnn reads version {LEARN_FORMAT_VERSION})")
    try:
        rule = StdpRule(**{k: int(meta["rule"][k]) for k in _RULE_FIELDS})
        return LearningLayer(arrays["weight"], arrays["mask"], arrays["theta"], rule, tuple(meta["input_shape"]))
    except KeyError as e:
        raise NetworkError(f"{path}: malformed learning-layer file (missing {e})") from None
    except (TypeError, ValueError, OverflowError) as e:
        raise NetworkError(f"{path}: {e}") from None
