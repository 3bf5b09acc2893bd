"""Whole-payload comparison of a core's inference with the golden model, shared by all simulators."""

from __future__ import annotations

import numpy as np

from cssnn.sw.mapping.image import place_network
from cssnn.hw.params import CoreParams
from cssnn.verif.core_tb import CoreDriver, InferenceResult

__all__ = ["compare", "run_case"]


def compare(res: InferenceResult, gold, b: int, *, layers: int) -> list[str]:
    """Every difference between the core's result and sample ``b`` of the golden ``SimResult``:
    every spike of every layer and step, every final membrane, the logits, the class and the
    counters (synaptic ops, spikes, events)."""
    bad = []
    tr = gold.trace
    for l in range(layers):
        if not np.array_equal(res.spikes[l], tr.spikes[l][b]):
            where = np.argwhere(res.spikes[l] != tr.spikes[l][b])[:5].tolist()
            bad.append(f"spikes of layer {l} differ at (k, neuron) {where}: "
                       f"hw {[int(res.spikes[l][k, j]) for k, j in where]} "
                       f"golden {[int(tr.spikes[l][b][k, j]) for k, j in where]}")
    for l, m in enumerate(tr.membranes):
        if not np.array_equal(res.membranes[l], m[b]):
            where = np.flatnonzero(res.membranes[l] != m[b])[:5]
            bad.append(f"membranes of layer {l} differ at {where.tolist()}: hw {res.membranes[l][where].tolist()} "
                       f"golden {m[b][where].tolist()}")
    if not np.array_equal(res.logits, gold.logits[b]):
        bad.append(f"logits differ: hw {res.logits.tolist()} golden {gold.logits[b].tolist()}")
    if res.argmax != int(gold.classes[b]):
        bad.append(f"argmax differs: hw {res.argmax} golden {int(gold.classes[b])}")
    c = res.counters
    if c["synops"] != int(gold.synaptic_ops[b]):
        bad.append(f"synaptic ops differ: hw {c['synops']} golden {int(gold.synaptic_ops[b])}")
    spikes = int(gold.spikes[b].sum())
    if c["spikes"] != spikes:
        bad.append(f"spike counter differs: hw {c['spikes']} golden {spikes}")
    consumed = int(gold.spikes[b].sum())  # every spike of layers 0..L-1 is consumed by the next layer
    if c["events"] != consumed:
        bad.append(f"event counter differs: hw {c['events']} golden {consumed}")
    return bad


async def run_case(drv: CoreDriver, p: CoreParams, net, xs, gold, *, name: str = "") -> dict:
    """Load ``net`` into the core behind ``drv``, run every sample of ``xs``, compare with ``gold``
    (``run(net, xs, trace=True, membrane_bits=p.membrane_bits)``). Returns a report dict with
    ``mismatches`` (a list of strings, empty when bit-exact) and per-sample cycle counts."""
    image = place_network(net, p)
    await drv.load(image)
    report = {"name": name, "mismatches": [], "samples": len(xs), "cycles": [], "events": [], "synops": []}
    # What the case exercised (so tests can require clamping and -1 spikes to have happened).
    k = len(xs)
    lo, hi = -(2 ** (p.membrane_bits - 1)), 2 ** (p.membrane_bits - 1) - 1
    report["saturated"] = int(sum(((m[:k] == lo) | (m[:k] == hi)).sum() for m in gold.trace.membranes[:-1]))
    report["neg_spikes"] = int(sum((s[:k] < 0).sum() for s in gold.trace.spikes))
    report["pos_spikes"] = int(sum((s[:k] > 0).sum() for s in gold.trace.spikes))
    for b, x in enumerate(xs):
        res = await drv.infer(image, x)
        for msg in compare(res, gold, b, layers=net.n_layers):
            report["mismatches"].append(f"{name} sample {b}: {msg}")
        report["cycles"].append(res.counters["cycles"])
        report["events"].append(res.counters["events"])
        report["synops"].append(res.counters["synops"])
        report.setdefault("step_cycles", []).append(res.step_cycles)
    return report
