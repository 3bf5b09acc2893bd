"""The host port of the core: one lane of one memory per clock, only while the core is idle.

Writes are registered and land one clock after they are presented (so a read in the very next
clock of the element just written returns its old value). Reads come from the stores' D registers
(the memory outputs registered) through two registered selects, memory and lane within a group of
``2**READ_GROUP_BITS`` lanes, then the group: ``rdata`` is the lane addressed
:data:`~cssnn.hw.params.READ_LATENCY` clocks earlier.
"""

from __future__ import annotations

from amaranth.hdl import Module, Shape, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from cssnn.hw.core.stores import (
    index_read_signature,
    index_write_signature,
    neuron_read_signature,
    neuron_write_signature,
    synapse_read_signature,
    synapse_write_signature,
)
from cssnn.hw.params import CoreParams, HostMem, check_params, index_lane_layout, lane_shape, syn_lane_layout

__all__ = ["HostPort", "host_signature", "READ_GROUP_BITS"]

#: The read's first select takes one lane of a group of 2**READ_GROUP_BITS lanes, the second one
#: group: one select over all lanes is too long a path (docs/BOARDS.md, item 11).
READ_GROUP_BITS = 2


def host_signature(p: CoreParams) -> wiring.Signature:
    """Memory access from the host's side: one lane per clock; ``rdata`` is the lane addressed READ_LATENCY
    clocks earlier (``sel``, ``addr``, ``lane``); a write (``we``) lands a clock later. Writes and reads
    act only while idle."""
    return wiring.Signature({
        "sel": Out(HostMem), "addr": Out(p.host_addr_bits), "lane": Out(max(1, p.lane_bits)),
        "wdata": Out(p.host_data_bits), "we": Out(1), "rdata": In(p.host_data_bits),
    })


def _select(m, index, choices, target):
    """``target <= choices[index]`` (registered), by a case statement (``word_select`` with a
    variable index would be a multiply)."""
    if len(choices) == 1:
        m.d.sync += target.eq(choices[0])
        return
    with m.Switch(index):
        for k, choice in enumerate(choices):
            with m.Case(k):
                m.d.sync += target.eq(choice)


class HostPort(wiring.Component):
    """``bus``: In :func:`host_signature` (the core's ``host`` port); ``idle``: writes are taken only
    while high. The random-access ports of the stores: ``syn_read``, ``syn_write``
    (:class:`~cssnn.hw.core.stores.SynapseStore`), ``neuron_read``, ``neuron_write``
    (:class:`~cssnn.hw.core.stores.NeuronStore`), ``index_read``, ``index_write``
    (:class:`~cssnn.hw.core.stores.IndexStore`: one entry per ``addr``, ``lane``)."""

    def __init__(self, params: CoreParams):
        check_params(self, params)
        self.params = p = params
        super().__init__({
            "bus": In(host_signature(p)), "idle": In(1),
            "syn_read": Out(synapse_read_signature(p)), "syn_write": Out(synapse_write_signature(p)),
            "neuron_read": Out(neuron_read_signature(p)), "neuron_write": Out(neuron_write_signature(p)),
            "index_read": Out(index_read_signature(p)), "index_write": Out(index_write_signature(p)),
        })

    def elaborate(self, platform):
        p = self.params
        n = p.lanes
        m = Module()
        h = self.bus

        # writes, registered: no address decode in front of the memories' write enables (timing:
        # docs/BOARDS.md, item 6)
        h_we, h_wsel = Signal(), Signal(HostMem)
        h_waddr, h_wlane, h_wdata = Signal.like(h.addr), Signal.like(h.lane), Signal.like(h.wdata)
        m.d.sync += [h_we.eq(self.idle & h.we), h_wsel.eq(h.sel), h_waddr.eq(h.addr), h_wlane.eq(h.lane),
                     h_wdata.eq(h.wdata)]
        lane_en = Signal(n)
        for k in range(n):
            m.d.comb += lane_en[k].eq(h_wlane == k if n > 1 else 1)
        sw, nw, iw = self.syn_write, self.neuron_write, self.index_write
        m.d.comb += [
            iw.addr.eq(h_waddr), iw.lane.eq(h_wlane), iw.data.eq(h_wdata[:index_lane_layout(p).size]),
            iw.en.eq(h_we & (h_wsel == HostMem.INDEX)),
            sw.addr.eq(h_waddr), sw.lane.eq(h_wlane), sw.data.eq(h_wdata[:syn_lane_layout(p).size]),
            sw.en.eq(h_we & (h_wsel == HostMem.SYNAPSE)),
            nw.addr.eq(h_waddr), nw.lanes.eq(lane_en), nw.data.eq(h_wdata),
            nw.state.eq(h_we & (h_wsel == HostMem.STATE)), nw.bias.eq(h_we & (h_wsel == HostMem.BIAS)),
            nw.acc.eq(h_we & (h_wsel == HostMem.ACC)),
        ]

        # reads: the address goes to the stores; their D registers, then two registered selects
        m.d.comb += [self.syn_read.addr.eq(h.addr), self.neuron_read.addr.eq(h.addr), self.index_read.addr.eq(h.addr),
                     self.index_read.lane.eq(h.lane)]
        h_sel_r, h_sel_r2 = Signal(HostMem), Signal(HostMem)
        h_lane_r, h_lane_r2, h_lane_r3 = Signal.like(h.lane), Signal.like(h.lane), Signal.like(h.lane)
        m.d.sync += [h_sel_r.eq(h.sel), h_lane_r.eq(h.lane), h_sel_r2.eq(h_sel_r), h_lane_r2.eq(h_lane_r),
                     h_lane_r3.eq(h_lane_r2)]
        nr = self.neuron_read
        # an index entry is read alone (its lane is part of the address): it stands in every lane here
        index = self.index_read.data.as_value().replicate(n)
        views = {HostMem.SYNAPSE: self.syn_read.data, HostMem.STATE: nr.state, HostMem.BIAS: nr.bias, HostMem.ACC: nr.acc,
                 HostMem.INDEX: index}
        sources = {mem: (view, Shape.cast(lane_shape(p, mem)).width) for mem, view in views.items()}
        gb = min(p.lane_bits, READ_GROUP_BITS)
        groups = [Signal.like(h.rdata, name=f"h_read_group{j}") for j in range(n >> gb)]
        for j, group in enumerate(groups):
            with m.Switch(h_sel_r2):
                for sel, (view, width) in sources.items():
                    with m.Case(sel):
                        lanes = Value.cast(view)[j * width << gb:(j + 1) * width << gb]
                        _select(m, h_lane_r2[:gb], [lanes[k * width:(k + 1) * width] for k in range(1 << gb)], group)
        _select(m, h_lane_r3[gb:], groups, h.rdata)
        return m
