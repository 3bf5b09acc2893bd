"""Spike router: events tagged with their source layer, fanned out to per-destination FIFOs.

One idea: *where a layer's spikes go*. Every event carries the index of the layer that emitted it;
a routing table (``max_layers`` entries x ``ports`` bits, written by the host) maps that source to a
destination mask, and each destination port has its own FIFO::

      i: {event, source} --> [table: source -> mask] & enable
                                      |  accept only if every masked FIFO has room
                 +--------------------+--------------------+
                 v                    v                    v
            [FIFO port 0]        [FIFO port 1]   ...  [FIFO port P-1]
                 v                    v                    v
                o[0]                 o[1]                 o[P-1]

Multicast without loss or duplication: an input event is accepted only in a clock in which every
destination in its mask can take it, and then it is written to all of them in that same clock; so
each port sees exactly the events routed to it, in input order. A mask of 0 (after ``enable``)
means the event is consumed and dropped.
"""

from __future__ import annotations

from collections.abc import Sequence

from amaranth.hdl import Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.fifo import SyncFIFO, SyncFIFOBuffered
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from cssnn.hw.params import CoreParams, check_params, event_layout

__all__ = ["Router", "HeadFIFO", "routed_layout", "MAX_PORTS"]

MAX_PORTS = 16


def routed_layout(p: CoreParams, layer_bits: int) -> data.StructLayout:
    """An event with the index of the layer that emitted it (router input and output payload)."""
    return data.StructLayout({"event": event_layout(p), "source": unsigned(layer_bits)})


class HeadFIFO(wiring.Component):
    """A FIFO of ``depth`` items of ``width`` bits whose head is a register: an item written while the
    FIFO is empty is offered in the next clock (a block-RAM FIFO offers it in the second), and the
    consumer reads a register, not the RAM's output. Behind the head, ``depth - 1`` items wait in a
    :class:`SyncFIFOBuffered` (block RAM; a :class:`SyncFIFO` of registers for 2 or fewer, never one
    of 1 entry, whose memory would have a zero-width address: a Verilator lint warning). The ports of Amaranth's FIFOs:
    ``w_data``, ``w_en``, ``w_rdy`` (room behind the head), ``r_data``, ``r_rdy``, ``r_en``, ``level``."""

    def __init__(self, *, width: int, depth: int):
        if not isinstance(depth, int) or isinstance(depth, bool) or depth < 1:
            raise ValueError(f"depth must be an int of at least 1, not {depth!r}")
        self.width, self.depth = width, depth
        super().__init__({"w_data": In(width), "w_en": In(1), "w_rdy": Out(1),
                          "r_data": Out(width), "r_rdy": Out(1), "r_en": In(1), "level": Out(range(depth + 1))})

    def elaborate(self, platform):
        m = Module()
        head_v = Signal()
        head_free = Signal()       # the head is empty or read this clock: it takes the next item
        direct = Signal()          # an item written while nothing waits behind the head goes to the head
        if self.depth > 1:
            # one item behind the head: a 2-entry SyncFIFO that takes one (a 1-entry one has a zero-width address)
            behind_depth = max(2, self.depth - 1)
            kind = SyncFIFO if behind_depth == 2 else SyncFIFOBuffered
            m.submodules.inner = inner = kind(width=self.width, depth=behind_depth)
            room = inner.w_rdy if behind_depth == self.depth - 1 else inner.level == 0
            m.d.comb += [inner.w_data.eq(self.w_data), inner.w_en.eq(self.w_en & ~direct), inner.r_en.eq(head_free),
                         self.w_rdy.eq(room)]
            behind, behind_data, behind_n = inner.r_rdy, inner.r_data, inner.level
        else:
            m.d.comb += self.w_rdy.eq(~head_v)
            behind, behind_data, behind_n = Const(0), Const(0, self.width), Const(0)
        m.d.comb += [head_free.eq(~head_v | self.r_en), direct.eq(self.w_en & head_free & (behind_n == 0)),
                     self.level.eq(behind_n + head_v), self.r_rdy.eq(head_v)]
        with m.If(head_free):
            m.d.sync += head_v.eq(behind | direct)
            with m.If(behind | direct):
                m.d.sync += self.r_data.eq(Mux(behind, behind_data, self.w_data))
        return m


class Router(wiring.Component):
    """A spike router with ``len(depths)`` output ports. Ports:

    ``i``            In stream of :func:`routed_layout` (``event``, ``source``)
    ``o[k]``         Out stream of :func:`routed_layout`, behind a FIFO of ``depths[k]`` entries
    ``enable``       In, one bit per port (default all ones): destinations allowed for the event
                     offered this clock (the mask used is ``table[source] & enable``)
    ``table_addr``, ``table_wdata``, ``table_we``  table write (ignored for addr >= max_layers)
    ``table_rdata``  the entry addressed by ``table_addr`` in the previous clock
    ``query_addr``, ``query_mask``  a second read port: the entry addressed the previous clock
                     (both read ports are transparent: a write shows up in the next clock's data)

    ``max_layers``: table entries; ``depths``: FIFO depth of each port (>= 1); ``init``: initial
    table masks (entry i = ``init[i]``, missing entries 0).
    """

    def __init__(self, params: CoreParams, *, max_layers: int, depths: Sequence[int], init: Sequence[int] = ()):
        check_params(self, params)
        self.params = p = params

        def reject(exc, msg):
            raise exc(msg)

        if not isinstance(max_layers, int) or isinstance(max_layers, bool) or not 1 <= max_layers <= 256:
            reject(ValueError, f"max_layers must be an int in [1, 256], not {max_layers!r}")
        if isinstance(depths, (str, bytes)) or not isinstance(depths, Sequence):
            reject(TypeError, f"depths must be a sequence of FIFO depths (one per port), not {depths!r}")
        depths = tuple(depths)
        if not 1 <= len(depths) <= MAX_PORTS:
            reject(ValueError, f"the router needs 1 to {MAX_PORTS} ports (depths), not {len(depths)}")
        for k, d in enumerate(depths):
            if not isinstance(d, int) or isinstance(d, bool) or d < 1:
                reject(ValueError, f"depths[{k}] must be an int of at least 1, not {d!r}")
        init = tuple(init)
        if len(init) > max_layers:
            reject(ValueError, f"init has {len(init)} entries, the table only {max_layers}")
        for i, v in enumerate(init):
            if not isinstance(v, int) or not 0 <= v < 2 ** len(depths):
                reject(ValueError, f"init[{i}]={v!r} is not a {len(depths)}-bit destination mask")
        self.max_layers, self.depths, self.init = max_layers, depths, init
        self.ports = len(depths)
        self.layer_bits = max(1, ceil_log2(max_layers))
        lay = routed_layout(p, self.layer_bits)
        super().__init__({
            "i": In(stream.Signature(lay)),
            "o": Out(stream.Signature(lay)).array(self.ports),
            "enable": In(self.ports, init=2**self.ports - 1),
            "table_addr": In(self.layer_bits), "table_wdata": In(self.ports), "table_we": In(1),
            "table_rdata": Out(self.ports),
            "query_addr": In(self.layer_bits), "query_mask": Out(self.ports),
        })

    def elaborate(self, platform):
        m = Module()
        P = self.ports
        pow2 = self.max_layers == 2**self.layer_bits

        # The table is tiny (max_layers x P bits): a comb read port for the per-event lookup (the
        # source may change every clock), synchronous ports for the host and the controller.
        m.submodules.table = table = memory.Memory(shape=unsigned(P), depth=self.max_layers, init=self.init)
        wp = table.write_port()
        look = table.read_port(domain="comb")
        host_rp = table.read_port(transparent_for=(wp,))
        query_rp = table.read_port(transparent_for=(wp,))
        in_range = Const(1) if pow2 else self.table_addr < self.max_layers
        m.d.comb += [
            wp.addr.eq(self.table_addr), wp.data.eq(self.table_wdata), wp.en.eq(self.table_we & in_range),
            host_rp.addr.eq(self.table_addr), self.table_rdata.eq(host_rp.data),
            query_rp.addr.eq(self.query_addr), self.query_mask.eq(query_rp.data),
            look.addr.eq(self.i.payload.source),
        ]
        mask = Signal(P)
        src_ok = Const(1) if pow2 else self.i.payload.source < self.max_layers
        m.d.comb += mask.eq(Mux(src_ok, look.data, 0) & self.enable)

        fifos = []
        for k, depth in enumerate(self.depths):
            fifo = HeadFIFO(width=len(self.i.payload.as_value()), depth=depth)
            m.submodules[f"fifo{k}"] = fifo
            fifos.append(fifo)
        # Accept only when every destination has room: all-or-nothing, so no loss and no duplicate.
        room = Signal(P)
        m.d.comb += [room[k].eq(~mask[k] | f.w_rdy) for k, f in enumerate(fifos)]
        m.d.comb += self.i.ready.eq(room.all())
        for k, f in enumerate(fifos):
            o = self.o[k]
            m.d.comb += [
                f.w_data.eq(self.i.payload.as_value()), f.w_en.eq(self.i.valid & self.i.ready & mask[k]),
                o.valid.eq(f.r_rdy), o.payload.eq(f.r_data), f.r_en.eq(o.ready),
            ]
        return m
