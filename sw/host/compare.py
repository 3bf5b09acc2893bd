"""Run inferences on an accelerator and compare them with the golden model: the one definition of
"bit-exact" every caller uses (``cssnn sim``/``infer``, the cocotb system test, ``bench.system``,
the board latency simulation and self-test).

A sample matches when its logits, its class, its synaptic operations and its input spike events all
equal the golden model's (:func:`cssnn.sw.spec.golden.run` with the hardware's membrane width). A
hardware result that does not report events or synaptic ops (``None``) is compared on the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cssnn.sw.host.accelerator import Accelerator, BatchInference
from cssnn.sw.spec.golden import SimResult, run
from cssnn.sw.spec.network import SpikingNetwork

__all__ = ["Comparison", "Mismatch", "compare_with_golden", "run_and_compare"]


@dataclass(frozen=True)
class Mismatch:
    sample: int
    field: str        # "logits", "class", "synaptic_ops" or "events"
    hardware: object
    golden: object

    def __str__(self) -> str:
        return f"sample {self.sample}: {self.field} hardware {self.hardware} golden {self.golden}"


@dataclass(frozen=True)
class Comparison:
    """Hardware results beside the golden model's, sample by sample."""

    hardware: BatchInference
    golden: SimResult                       # with its trace (spikes of every layer and step)
    golden_events: np.ndarray               # (B,) input spike events per sample
    mismatches: list[Mismatch] = field(default_factory=list)

    @property
    def bit_exact(self) -> bool:
        return not self.mismatches

    @property
    def mismatched_samples(self) -> np.ndarray:
        return np.unique(np.array([m.sample for m in self.mismatches], np.int64))


def golden_events(gold: SimResult, samples: int) -> np.ndarray:
    """Input spike events per sample (nonzero spikes into every weight layer) of a traced golden run."""
    return sum(np.count_nonzero(s.reshape(samples, -1), axis=1) for s in gold.trace.spikes)


def compare_with_golden(net: SpikingNetwork, xs, hardware: BatchInference, *, membrane_bits: int) -> Comparison:
    """Compare ``hardware`` (the results of integer inputs ``xs``) with the golden model."""
    xs = np.asarray(xs)
    gold = run(net, xs, trace=True, membrane_bits=membrane_bits)
    events = np.asarray(golden_events(gold, len(xs)), np.int64)
    checks = [("logits", hardware.logits, gold.logits), ("class", hardware.classes, gold.classes),
              ("synaptic_ops", hardware.synops, gold.synaptic_ops), ("events", hardware.events, events)]
    bad = []
    for b in range(len(xs)):
        for name, hw, gd in checks:
            if hw is None:
                continue
            h, g = np.asarray(hw[b]), np.asarray(gd[b])
            if not np.array_equal(h, g):
                bad.append(Mismatch(b, name, h.tolist(), g.tolist()))
    return Comparison(hardware, gold, events, bad)


def run_and_compare(acc: Accelerator, xs, *, progress=None) -> Comparison:
    """Run integer inputs ``xs`` on ``acc`` (a network loaded) and compare with the golden model."""
    batch = acc.infer_batch(xs, progress=progress)
    return compare_with_golden(acc.net, xs, batch, membrane_bits=acc.params.core.membrane_bits)
