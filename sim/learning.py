"""A learning run: STDP with (or without) pruning on the simulated accelerator, checked against the
golden model, then a readout classifier on the learned features (``cssnn learn``, ``bench.learning``).

The golden model always runs. With a hardware backend the accelerator learns the same samples in the
same order; ``bit_exact`` says whether its weights, existence masks, thresholds, winners and features
all equal the golden model's, and the cycles come from its counters. With ``backend="golden"`` the
cycles are :func:`~cssnn.hw.learn.pass_cycles` of the golden run (the engine's exact count).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cssnn.hw.learn import pass_cycles
from cssnn.hw.memmap import AccelParams
from cssnn.hw.params import CoreParams
from cssnn.sim.transports import open_backend
from cssnn.sw.analysis.learning import readout_accuracy, spike_features
from cssnn.sw.host.accelerator import Accelerator
from cssnn.sw.mapping.learning import learn_params_for
from cssnn.sw.spec.stdp import LearningLayer, StdpRule, first_spikes, init_layer, learn, ttfs_encode

__all__ = ["LearningResult", "run_learning", "learning_layer", "learning_accel_params", "LEARNING_CORE"]

#: The inference core beside the learning engine in a learning accelerator (the smallest one: the
#: learning runs do not use it).
LEARNING_CORE = CoreParams(lanes=1, neurons=4, synapse_rows=4)


def learning_layer(n_in: int, neurons: int, *, prune: bool, seed: int = 0, input_shape=None) -> LearningLayer:
    """The default learning layer: the default rule (pruning below M/2 unless ``prune`` is off), every
    synapse present, weights around M/2, the default thresholds."""
    rule = StdpRule() if prune else StdpRule(prune_below=0)
    return init_layer(n_in, neurons, rule, seed=seed, input_shape=input_shape)


def learning_accel_params(layer: LearningLayer) -> AccelParams:
    return AccelParams(core=LEARNING_CORE, max_layers=2, learn=learn_params_for(layer))


@dataclass
class LearningResult:
    summary: dict              #: the JSON of ``cssnn learn``
    layer: LearningLayer       #: the learned layer (the hardware's with a hardware backend)
    connectivity: np.ndarray   #: fraction of synapses kept after each training sample
    y_test: np.ndarray
    predictions: np.ndarray


def run_learning(ds, *, neurons: int = 64, prune: bool = True, epochs: int = 1, samples: int | None = None,
                 backend: str = "verilator", seed: int = 0, progress=None) -> LearningResult:
    """Learn on ``samples`` training samples of dataset ``ds`` (all by default) for ``epochs``, then
    score a readout on the test split. ``progress(total, desc)`` makes a progress bar (or None)."""
    if neurons < 1 or epochs < 1 or (samples is not None and samples < 1):
        raise ValueError("neurons, epochs and samples must be at least 1")
    xs, ys = ds.x_train[:samples], ds.y_train[:samples]
    layer = learning_layer(ds.n_features, neurons, prune=prune, seed=seed, input_shape=ds.input_shape)
    window = layer.rule.window
    t_train, t_test = ttfs_encode(xs.reshape(len(xs), -1), window), ttfs_encode(ds.x_test.reshape(len(ds.x_test), -1), window)

    golden, steps = learn(layer, t_train, epochs=epochs, seed=seed)
    fan_in, model_cycles, kept = layer.fan_in.copy(), [], []
    synapses, synops = layer.synapses, 0
    for s in steps:
        model_cycles.append(pass_cycles(fan_in, fan_in[s.winner] if s.winner >= 0 else None))
        synops += synapses + s.updated
        if s.winner >= 0:
            fan_in[s.winner] -= s.pruned
        synapses -= s.pruned
        kept.append(synapses / layer.mask.size)
    g_train, g_test = first_spikes(golden, t_train)[0], first_spikes(golden, t_test)[0]

    bit_exact = None
    learned, f_train, f_test = golden, g_train, g_test
    learning_cycles = int(sum(model_cycles))
    inference_cycles = pass_cycles(golden.fan_in)
    if backend != "golden":
        bar = progress(len(steps) + len(xs) + len(ds.x_test), f"learning on {backend}") if progress else None
        with Accelerator(open_backend(backend, learning_accel_params(layer))) as acc:
            acc.load_learning(layer)
            run = acc.learn(xs, epochs=epochs, seed=seed, progress=bar)
            learned = acc.weights()
            feats_train = acc.features(xs, progress=bar)
            feats_test = acc.features(ds.x_test, progress=bar)
        if bar is not None:
            bar.close()
        f_train, f_test = feats_train.times, feats_test.times
        bit_exact = bool(np.array_equal(learned.weight, golden.weight) and np.array_equal(learned.mask, golden.mask)
                         and np.array_equal(learned.theta, golden.theta)
                         and list(run.winners) == [s.winner for s in steps]
                         and np.array_equal(f_train, g_train) and np.array_equal(f_test, g_test)
                         and list(run.cycles) == model_cycles)
        learning_cycles = run.total_cycles
        inference_cycles = float(np.mean(feats_test.cycles))

    accuracy, pred = readout_accuracy(spike_features(f_train, window), ys, spike_features(f_test, window), ds.y_test,
                                      seed=seed)
    summary = {
        "accuracy": accuracy, "connectivity": learned.connectivity,
        "learning_cycles": learning_cycles, "inference_cycles_per_sample": inference_cycles,
        "bit_exact": bit_exact, "samples": len(xs), "epochs": epochs, "neurons": neurons,
        "prune": prune, "backend": backend, "dataset": ds.name,
        "synapses": learned.synapses, "synapses_initial": layer.synapses,
        "learning_samples": len(steps), "no_winner_samples": sum(s.winner < 0 for s in steps),
        "learning_synops": int(synops),
        "cycles_source": "hardware counters" if bit_exact is not None else "pass_cycles of the golden run",
        "rule": {k: getattr(layer.rule, k) for k in ("window", "weight_bits", "a_plus", "a_minus", "prune_below",
                                                      "theta_up", "theta_down", "theta_min")},
        "theta_initial": int(layer.theta[0]),
    }
    return LearningResult(summary, learned, np.array(kept), ds.y_test, pred)
