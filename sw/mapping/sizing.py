"""Hardware parameters sized for a network: the narrowest widths and smallest memories that run it
bit-exactly (docs/SEMANTICS.md, docs/HARDWARE.md).

One idea: from a :class:`~cssnn.sw.spec.network.SpikingNetwork` and a lane count, derive the
:class:`~cssnn.hw.memmap.AccelParams` of an accelerator built for it. Simulation backends and board
builds use the same function, so a simulated run and a bitstream are the same hardware.
"""

from __future__ import annotations

import numpy as np

from cssnn.sw.spec.network import SpikingNetwork
from cssnn.sw.mapping.image import place_network
from cssnn.hw.memmap import AccelParams
from cssnn.hw.params import CoreParams, bits_for

__all__ = ["params_for", "pow2_at_least"]


def pow2_at_least(n: int) -> int:
    return 1 << max(0, int(n - 1).bit_length())


def params_for(net: SpikingNetwork, *, lanes: int = 8, counter_bits: int = 32, pow2_depths: bool = True,
               **accel_kwargs) -> AccelParams:
    """The accelerator parameters sized for ``net`` with ``lanes`` lanes (memory depths rounded up to
    powers of two unless ``pow2_depths`` is false; extra keywords go to :class:`AccelParams`).

    Raises ``ValueError`` if the network cannot run on any core (e.g. rate coding)."""
    if net.coding != "css":
        raise ValueError(f"the accelerator runs CSS networks, not {net.coding!r} (the rate baseline is host-side only)")
    wb = net.weight_bits
    imax = max(int(layer.input_bound.max(initial=0)) for layer in net.layers)
    bmax = max(int(np.abs(layer.bias).max(initial=0)) for layer in net.layers)
    # The core's own floor for a membrane: 2*theta_min + one weight (CoreParams validation).
    membrane = max(net.required_membrane_bits, bits_for(2 + 2 ** (wb - 1) - 1))
    widths = dict(
        lanes=lanes, weight_bits=wb, membrane_bits=membrane,
        output_bits=max(net.required_output_bits, wb),
        acc_bits=max(bits_for(imax), wb),
        bias_bits=max(bits_for(net.input_limit), bits_for(bmax), 2),
        threshold_bits=max(1, max(net.thresholds).bit_length()),
        counter_bits=counter_bits,
    )
    sizes = [net.n_inputs] + [layer.shape.n_out for layer in net.layers]
    # Lay the network out in a roomy core of these widths to learn its depths, then shrink.
    roomy = CoreParams(**widths, neurons=lanes * pow2_at_least(sum(-(-n // lanes) for n in sizes)), synapse_rows=2**22)
    image = place_network(net, roomy)
    words, rows = image.words_used, image.rows_used
    if pow2_depths:
        words, rows = pow2_at_least(words), pow2_at_least(rows)
    core = CoreParams(**widths, neurons=words * lanes, synapse_rows=rows)
    kw = dict(max_layers=max(2, pow2_at_least(net.n_layers + 1)), timestep_bits=max(1, net.timesteps.bit_length()),
              fifo_depth=max(sizes) + 1)
    kw.update(accel_kwargs)
    return AccelParams(core=core, **kw)
