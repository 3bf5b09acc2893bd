"""A learning layer in the learning engine's memories, and back (:mod:`cssnn.hw.learn`).

One idea: *where a :class:`~cssnn.sw.spec.stdp.LearningLayer` lives in hardware*: neuron ``j``'s
existing synapses as SYN entries ``j * stride + k`` in ascending input order, their count in LEN,
thresholds in THETA, the rule's LTP/LTD steps in TABLE, a sample's spike times in TIME; the rule's
scalars in registers. :func:`layer_from_memories` reads a layer back from the same memories.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from cssnn.hw.learn import LearnMem, LearnParams, syn_entry_layout
from cssnn.hw.params import pack, unpack
from cssnn.sw.mapping.requirements import DoesNotFit
from cssnn.sw.spec.stdp import LearningLayer, StdpRule

__all__ = ["learn_params_for", "check_learning_fits", "layer_writes", "time_writes", "rule_registers",
           "layer_from_memories"]


def learn_params_for(layer: LearningLayer) -> LearnParams:
    """The learning engine that holds exactly this layer."""
    return LearnParams(inputs=layer.n_in, neurons=layer.neurons, window=layer.rule.window,
                       weight_bits=layer.rule.weight_bits)


def check_learning_fits(layer: LearningLayer, lp: LearnParams | None) -> None:
    """Raise :class:`DoesNotFit` naming the first reason ``layer`` cannot learn on engine ``lp``."""
    if lp is None:
        raise DoesNotFit("this accelerator has no learning engine (build it with one: LearnParams)")
    want = learn_params_for(layer)
    for name in ("inputs", "neurons", "window", "weight_bits"):
        if getattr(want, name) != getattr(lp, name):
            raise DoesNotFit(f"the learning layer has {name} = {getattr(want, name)}, the engine {getattr(lp, name)}")
    r = layer.rule
    for name in ("theta_up", "theta_down", "theta_min"):
        if getattr(r, name) >= 1 << lp.potential_bits:
            raise DoesNotFit(f"the rule's {name} = {getattr(r, name)} does not fit the engine's "
                             f"{lp.potential_bits}-bit thresholds")


def rule_registers(rule: StdpRule) -> dict[str, int]:
    """The engine's rule registers (port names of :class:`~cssnn.hw.learn.LearningEngine`)."""
    return {"prune_below": rule.prune_below, "theta_up": rule.theta_up, "theta_down": rule.theta_down,
            "theta_min": rule.theta_min}


def layer_writes(layer: LearningLayer, lp: LearnParams) -> list[tuple[LearnMem, int, list[int]]]:
    """(memory, first element, raw values) runs that load ``layer`` (SYN lists, LEN, THETA, TABLE)."""
    check_learning_fits(layer, lp)
    entry = syn_entry_layout(lp)
    writes = []
    for j in range(layer.neurons):
        pre = np.flatnonzero(layer.mask[:, j])
        if pre.size:
            writes.append((LearnMem.SYN, j * lp.stride,
                           [pack(entry, {"pre": int(i), "weight": int(layer.weight[i, j])}) for i in pre]))
    writes.append((LearnMem.LEN, 0, [int(v) for v in layer.fan_in]))
    writes.append((LearnMem.THETA, 0, [int(v) for v in layer.theta]))
    writes.append((LearnMem.TABLE, 0, [int(v) for v in np.concatenate([layer.rule.ltp, layer.rule.ltd])]))
    return writes


def time_writes(times, lp: LearnParams) -> list[tuple[LearnMem, int, list[int]]]:
    """The TIME write of one sample's spike times (integers in 0 .. window)."""
    t = np.asarray(times).reshape(-1)
    if t.size != lp.inputs or t.min() < 0 or t.max() > lp.window:
        raise ValueError(f"a sample needs {lp.inputs} spike times in [0, {lp.window}]")
    return [(LearnMem.TIME, 0, [int(v) for v in t])]


def layer_from_memories(lp: LearnParams, syn: list[int], lens: list[int], theta: list[int],
                        like: LearningLayer) -> LearningLayer:
    """The layer the memories hold (SYN raw entries of all neurons, LEN, THETA), with ``like``'s rule
    and input shape. ``ValueError`` if the lists are not ascending inputs (a corrupt store)."""
    entry = syn_entry_layout(lp)
    weight = np.zeros((lp.inputs, lp.neurons), np.int64)
    mask = np.zeros((lp.inputs, lp.neurons), bool)
    for j in range(lp.neurons):
        n = int(lens[j])
        if n > lp.inputs:
            raise ValueError(f"neuron {j} has {n} synapses in LEN, more than its {lp.inputs} inputs")
        vals = [unpack(entry, raw) for raw in syn[j * lp.stride:j * lp.stride + n]]
        pre = [v["pre"] for v in vals]
        if any(b <= a for a, b in zip(pre, pre[1:])) or any(p >= lp.inputs for p in pre):
            raise ValueError(f"neuron {j}'s synapse list is not in ascending input order")
        mask[pre, j] = True
        weight[pre, j] = [v["weight"] for v in vals]
    return replace(like, weight=weight, mask=mask, theta=np.asarray(theta, np.int64))
