"""The peer baseline: SpikingJelly's rate-coded ``ann2snn`` conversion of the same ANN.

SpikingJelly (2.0) replaces every ReLU by an IF neuron with soft reset whose threshold comes from
activation statistics of a calibration set, and feeds the analog input every time step; the logits
are the output layer's sum over T steps. It gets its best settings: every statistics mode and
threshold variant of :data:`SETTINGS` is converted and simulated, and for each T the setting with
the highest agreement with the ANN is reported (chosen on the same test split the agreement is
measured on, which favours the baseline, never the other way round).

One simulation of max(T) steps gives every T on the way: the output sum after t steps is the
T = t answer, since an IF network run for T steps is the first T steps of a longer run.

Operations are counted as cssnn counts its own: one synaptic operation per spike per existing
synapse it reaches (weights that are exactly zero are absent synapses), and the analog input's
multiply-accumulates separately.
"""

from __future__ import annotations

import contextlib
import io
import time
import warnings
from collections.abc import Callable, Sequence

import numpy as np

from cssnn.extras import require
from cssnn.sw.frontends.datasets import Dataset
from cssnn.sw.frontends.importers import ann_to_torch
from cssnn.sw.spec.ann import ANN
from cssnn.sw.spec.layers import connectivity

__all__ = ["SETTINGS", "VERSION", "NotConverted", "available", "run_spikingjelly"]

#: The SpikingJelly release the call below is written for (its conversion API changed in 2.0).
VERSION = "2.0.0"
#: ``RateCodingRecipe`` keyword sets tried: layer-wise and channel-wise thresholds from the maximum or
#: a percentile of the activations, and channel-wise with the membrane started at half threshold.
SETTINGS = tuple({"mode": mode, **variant}
                 for variant in ({}, {"channel_wise": True}, {"channel_wise": True, "half_threshold": True})
                 for mode in ("Max", "99.9%", "99.99%"))
PURPOSE = "the SpikingJelly baseline"


class NotConverted(Exception):
    """SpikingJelly refused the network (e.g. a layer its tracer does not support)."""


def available() -> str | None:
    """None when SpikingJelly and torch import, else the one-line reason and how to install them."""
    try:
        _import()
    except ImportError as e:
        return str(e)
    except Exception as e:  # noqa: BLE001 -- e.g. a torch build its dependencies do not match
        return (f"spikingjelly is installed but does not import ({type(e).__name__}: {str(e).splitlines()[0]}): "
                "pip install 'cssnn[spikingjelly]'")
    return None


def _import():
    with _quiet():
        require("torch", extra="spikingjelly", purpose=PURPOSE)
        return require("spikingjelly.activation_based.ann2snn", extra="spikingjelly", purpose=PURPOSE)


@contextlib.contextmanager
def _quiet():
    """SpikingJelly prints a progress bar while it calibrates and warns that Triton is missing on a CPU."""
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def run_spikingjelly(ann: ANN, data: Dataset, timesteps: Sequence[int], *, batch_size: int = 256,
                     progress: Callable[[dict], None] | None = None) -> tuple[list[dict], list[dict]]:
    """Convert ``ann`` with every setting, simulate max(timesteps) steps on the test split.

    Returns (runs, settings): one run per T (the best setting's, named in ``settings``), and per
    setting its agreement at every T.
    """
    ann2snn = _import()
    import torch
    from spikingjelly.activation_based import functional, neuron
    ts = sorted(set(int(t) for t in timesteps))
    ann_classes = ann.predict(data.x_test)
    shape = (-1, *ann.input_shape)  # SpikingJelly cannot trace an Unflatten: images go in as images
    x_test = torch.from_numpy(np.asarray(data.x_test, np.float64).reshape(shape))
    x_train = torch.from_numpy(np.asarray(data.x_train, np.float64).reshape(shape))
    calib = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x_train, torch.zeros(len(x_train))),
                                        batch_size=batch_size)
    # Fan-out of each hidden layer's neurons into the next layer (existing synapses only).
    fanout = [torch.from_numpy(connectivity(l.shape, None if l.shape.kind == "pool2d" else l.weight != 0)
                               .astype(np.float64)) for l in ann.layers]
    analog_ops = float(np.mean((data.x_test != 0) @ fanout[0].numpy()))
    n_hidden = len(ann.layers) - 1
    per_setting = []
    for setting in SETTINGS:
        try:
            with _quiet():
                recipe = ann2snn.RateCodingRecipe(dataloader=calib, **setting)
                snn = ann2snn.Converter(recipe=recipe).convert(ann_to_torch(ann, flat_input=False))
        except Exception as e:  # noqa: BLE001 -- whatever SpikingJelly raises, the comparison goes on without it
            raise NotConverted(f"SpikingJelly {VERSION} cannot convert this network: {str(e).splitlines()[0]}") from e
        spikes: list = []
        hooks = [m.register_forward_hook(lambda _m, _i, out, spikes=spikes: spikes.append(out.flatten(1)))
                 for m in snn.modules() if isinstance(m, neuron.BaseNode)]
        if len(hooks) != n_hidden:
            raise NotConverted(f"SpikingJelly made {len(hooks)} spiking layers of an ANN with {n_hidden} hidden layers")
        with torch.no_grad():  # a first call allocates and dispatches: not part of the timing
            snn(x_test[:1])
        functional.reset_net(snn)
        logits = torch.zeros(len(x_test), ann.n_outputs, dtype=torch.float64)
        layer_spikes = torch.zeros(n_hidden, dtype=torch.float64)
        synops = 0.0
        rows = {}
        start = time.perf_counter()
        with torch.no_grad():
            for t in range(1, ts[-1] + 1):
                spikes.clear()
                logits += snn(x_test)
                for k, s in enumerate(spikes):
                    layer_spikes[k] += s.sum()
                    synops += float((s @ fanout[k + 1]).sum())
                if t in ts:
                    classes = logits.argmax(dim=1).numpy()
                    rows[t] = {
                        "tool": "spikingjelly", "coding": "rate", "timesteps": t, "steps": t,
                        "accuracy": float(np.mean(classes == data.y_test)),
                        "agreement": float(np.mean(classes == ann_classes)),
                        "synaptic_ops_per_sample": synops / len(x_test),
                        "analog_ops_per_sample": analog_ops * t,
                        "spikes_per_layer": [float(v) / len(x_test) for v in layer_spikes],
                        "wall_seconds_per_sample": (time.perf_counter() - start) / len(x_test),
                        "settings": dict(setting),
                    }
        for h in hooks:
            h.remove()
        per_setting.append(rows)
        if progress:
            progress(setting)
    best = [max((rows[t] for rows in per_setting), key=lambda r: (r["agreement"], r["accuracy"])) for t in ts]
    settings = [{"settings": dict(s), "agreement": {str(t): rows[t]["agreement"] for t in ts}}
                for s, rows in zip(SETTINGS, per_setting)]
    return best, settings
