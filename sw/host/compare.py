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

__all__ = ["Comparison", "Mismatch", "Divergence", "compare_with_golden", "run_and_compare", "first_divergence"]


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


@dataclass(frozen=True)
class Divergence:
    """Where a sample's hardware run first departs from the golden model (:func:`first_divergence`)."""

    sample: int
    timesteps: int       #: the fewest time steps T' whose run already differs (the run truncated to T')
    of: int              #: the network's T
    layer: int           #: 0 the encoder ... L the output layer
    neuron: int
    what: str            #: "membrane" (a TSA layer, the encoder included) or "logit" (the output layer)
    hardware: int
    golden: int
    cycles: tuple[int, int] | None  #: the simulated clocks of that truncated run (start, end), if the transport counts them

    def __str__(self) -> str:
        where = f", simulated cycles {self.cycles[0]:,}..{self.cycles[1]:,}" if self.cycles else ""
        return (f"first divergence: sample {self.sample}, within the first {self.timesteps} of {self.of} time steps, "
                f"layer {self.layer}, neuron {self.neuron}: {self.what} hardware {self.hardware} golden "
                f"{self.golden}{where}")

    def as_dict(self) -> dict:
        return {"sample": self.sample, "timesteps": self.timesteps, "of": self.of, "layer": self.layer,
                "neuron": self.neuron, "what": self.what, "hardware": self.hardware, "golden": self.golden,
                "cycles": list(self.cycles) if self.cycles else None}


def first_divergence(acc: Accelerator, x, sample: int) -> Divergence | None:
    """Re-run integer input ``x`` with T' = 1, 2, ... T time steps (the T register) and compare every
    layer's final membranes with the golden model's run of the same T'; the first
    difference (smallest T', then the lowest layer, then the lowest neuron) is the divergence. None if
    every truncated run matches. T is restored afterwards."""
    from dataclasses import replace

    from cssnn.hw.memmap import Reg, Sel
    from cssnn.sw.mapping.image import unpack_state

    net, image, p = acc.net, acc.image, acc.params.core
    x = np.asarray(x)
    transport = acc.client.transport
    try:
        for t in range(1, net.timesteps + 1):
            gold = run(replace(net, timesteps=t), x[None], trace=True, membrane_bits=p.membrane_bits)
            acc.client.write(Sel.REG, Reg.TIMESTEPS, [t])
            start = getattr(transport, "cycles", None)
            inference = acc.infer(x)
            cycles = (start, start + inference.cycles) if start is not None else None
            for layer in range(len(image.layers)):
                addrs = image.state_addrs(layer)
                lo = min(addrs)
                raws = acc.client.read(Sel.STATE, lo, max(addrs) - lo + 1)
                output = layer == len(image.layers) - 1
                for j, a in enumerate(addrs):
                    v = unpack_state(p, raws[a - lo])[0]
                    want_v = int(gold.trace.membranes[layer][0, j])
                    if v != want_v:
                        return Divergence(sample, t, net.timesteps, layer, j, "logit" if output else "membrane",
                                          v, want_v, cycles)
    finally:
        acc.client.write(Sel.REG, Reg.TIMESTEPS, [net.timesteps])
    return None
