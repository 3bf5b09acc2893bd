"""Hardware parameters sized for a network: the narrowest widths and smallest memories that run it
bit-exactly (docs/SEMANTICS.md, docs/HARDWARE.md).

One idea: from a :class:`~cssnn.sw.spec.network.SpikingNetwork` and a lane count, derive the
:class:`~cssnn.hw.memmap.AccelParams` of an accelerator built for it. Simulation backends and board
builds use the same function, so a simulated run and a bitstream are the same hardware.
"""

from __future__ import annotations

import dataclasses

from cssnn.hw.memmap import AccelParams
from cssnn.hw.params import CoreParams, width_floors
from cssnn.sw.mapping.requirements import Requirements, requirements
from cssnn.sw.spec.network import SpikingNetwork

__all__ = ["params_for", "pow2_at_least", "synapse_memory", "LANE_WALK_LANES", "LANE_WALK_GAIN", "default_walk"]


def pow2_at_least(n: int) -> int:
    return 1 << max(0, int(n - 1).bit_length())


#: Lanes from which :func:`params_for` may have the lanes walk their lists apart (``CoreParams.walk =
#: "lanes"``): with few lanes a list's lanes are nearly even anyway, and the queues and the wider
#: index entries cost logic the iCEBreaker does not have (measured: docs/HARDWARE.md, "Lane walk").
LANE_WALK_LANES = 4
#: ... and only if walking rows would issue this many times the rows the busiest lanes walk
#: (:attr:`~cssnn.sw.mapping.requirements.Requirements.busiest_lane_synapses`): a dense network's
#: lanes are even (the digits MLP: 1.01 on 8 lanes; random 5% masks on a 784-256-10: 1.93), and
#: there the banks and queues would only cost logic and Fmax (ULX3S: 12.4k -> 14.4k LUT4).
LANE_WALK_GAIN = 1.1


def default_walk(lanes: int, req: Requirements | None = None) -> str:
    """The list walk :func:`params_for` chooses for ``lanes`` lanes and a network's requirements
    (:data:`LANE_WALK_LANES`, :data:`LANE_WALK_GAIN`; without ``req``, by the lanes alone)."""
    if lanes < LANE_WALK_LANES:
        return "rows"
    if req is not None and req.synapse_rows < LANE_WALK_GAIN * req.busiest_lane_synapses:
        return "rows"
    return "lanes"


def params_for(net: SpikingNetwork, *, lanes: int = 8, counter_bits: int = 32, pow2_depths: bool = True,
               order: str = "waves", walk: str | None = None, **accel_kwargs) -> AccelParams:
    """The accelerator parameters sized for ``net`` with ``lanes`` lanes, the evaluation ``order``
    (default waves, the faster; its loopback FIFO holds more: :meth:`AccelParams.loopback_entries`)
    and the list ``walk`` (default: :func:`default_walk`: ``"lanes"`` from :data:`LANE_WALK_LANES`
    lanes on where the network's lanes are uneven, else ``"rows"``),
    memory depths rounded up to powers of two unless ``pow2_depths`` is false; extra keywords go to
    :class:`AccelParams`.

    Raises :class:`~cssnn.sw.mapping.requirements.DoesNotFit` if the network cannot run on any core
    (e.g. rate coding)."""
    req = requirements(net, lanes)
    wb = req.weight_bits
    floor = width_floors(wb)  # what CoreParams accepts at all
    words, rows = req.neuron_words, req.synapse_rows
    if pow2_depths:
        words, rows = pow2_at_least(words), pow2_at_least(rows)
    core = CoreParams(lanes=lanes, weight_bits=wb, membrane_bits=max(req.membrane_bits, floor["membrane_bits"]),
                      output_bits=max(req.output_bits, floor["output_bits"]),
                      acc_bits=max(req.acc_bits, floor["acc_bits"]), bias_bits=max(req.bias_bits, floor["bias_bits"]),
                      threshold_bits=req.threshold_bits, counter_bits=counter_bits, neurons=words * lanes,
                      synapse_rows=rows, layer_words=req.layer_words, list_rows=req.list_rows,
                      acc_words=min(words, pow2_at_least(req.weight_layer_words)),
                      walk=walk or default_walk(lanes, req))
    kw = dict(max_layers=max(2, pow2_at_least(req.n_layers + 1)), timestep_bits=max(1, req.timesteps.bit_length()),
              order=order)
    kw.update(accel_kwargs)
    ap = AccelParams(core=core, **kw)
    if "fifo_depth" in accel_kwargs:
        return ap
    return dataclasses.replace(ap, fifo_depth=ap.loopback_entries(req.spiking_layers))


def synapse_memory(net: SpikingNetwork, lanes: int) -> dict:
    """The synapse memory ``net`` uses on the accelerator :func:`params_for` sizes with ``lanes``
    lanes: existing synapses, rows of the sparse lists and their bits (rows x lanes x lane bits), the
    index entries, and the rows a dense layout of the same matrices would need (``ceil(n_out / N)``
    per presynaptic neuron)."""
    from cssnn.sw.mapping.image import place_network

    ap = params_for(net, lanes=lanes)
    img = place_network(net, ap.core)
    return {"lanes": lanes, "synapses": img.synapses, "synapse_rows": img.rows_used, "synapse_bits": img.synapse_bits,
            "lane_bits": img.synapse_bits // max(1, img.rows_used * lanes), "index_entries": ap.core.neurons,
            "dense_rows": img.dense_rows}
