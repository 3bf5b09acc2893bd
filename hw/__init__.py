"""cssnn.hw: the Amaranth gateware (see docs/HARDWARE.md).

The core (:class:`~cssnn.hw.core.Core`) runs one layer-step at a time; :func:`~cssnn.sw.mapping.image.place_network`
lays a converted network out in its memories.
"""
