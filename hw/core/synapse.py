"""Synapse memory: rows of N lanes (signed weight, target word, mask bit), in block RAM.

A presynaptic neuron's synapses into a layer are a list of consecutive rows (its index-memory
entry gives the first and how many, :class:`~cssnn.hw.core.stores.IndexStore`). Lane ``k`` of a row
holds one synapse to a postsynaptic neuron that sits in lane ``k``: its weight and its word in the
neuron memories (``offset``). A mask bit of 0 marks a lane without a synapse (a row has fewer
synapses for some lanes than for others): it adds nothing and is not a synaptic operation. Absent
synapses (pruned, zero, outside a convolution's footprint) have no lane at all: they cost no row.

The read port is synchronous (data one clock after the address, held while ``read_en`` is low), so
synthesis maps the memory to block RAM (iCE40 EBR, ECP5 DP16KD). The write port writes one lane at
a time (lane-granular enables), which is what a host link or a learning engine needs.

With ``CoreParams.synapse_ram = "spram"`` the memory is built from iCE40 UltraPlus SPRAM instead
(:class:`~cssnn.hw.core.spram.SpramSynapseMemory`: same ports and timing, a simulation model off-chip).

With ``CoreParams.walk = "lanes"`` each lane is a memory of its own (a bank), read at its own
address: ``read_addr`` is then one address per lane.
"""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from cssnn.hw.params import CoreParams, check_params, syn_lane_layout

__all__ = ["SynapseMemory"]


class SynapseMemory(wiring.Component):
    """Ports: ``read_addr`` (per lane with ``walk = "lanes"``), ``read_en`` (hold when 0) -> ``read_data``
    (N lanes, one clock later);
    ``write_addr``, ``write_lane``, ``write_data`` (one lane: weight, offset, mask), ``write_en``."""

    def __init__(self, params: CoreParams):
        check_params(self, params)
        self.params = p = params
        self.lane = syn_lane_layout(p)
        super().__init__({
            "read_addr": In(data.ArrayLayout(p.row_bits, p.lanes) if p.walk == "lanes" else p.row_bits),
            "read_en": In(1, init=1),
            "read_data": Out(data.ArrayLayout(self.lane, p.lanes)),
            "write_addr": In(p.row_bits), "write_lane": In(max(1, p.lane_bits)),
            "write_data": In(self.lane), "write_en": In(1),
        })

    def elaborate(self, platform):
        p = self.params
        m = Module()
        if p.synapse_ram == "spram":
            from cssnn.hw.core.spram import SpramSynapseMemory

            m.submodules.spram = inner = SpramSynapseMemory(p)
            for name in ("read_addr", "read_en", "write_addr", "write_lane", "write_data", "write_en"):
                m.d.comb += getattr(inner, name).eq(getattr(self, name))
            m.d.comb += self.read_data.eq(inner.read_data)
            return m
        if p.walk == "lanes":
            for k in range(p.lanes):
                m.submodules[f"bank{k}"] = bank = memory.Memory(shape=self.lane, depth=p.synapse_rows, init=[])
                wr, rd = bank.write_port(), bank.read_port(domain="sync")
                m.d.comb += [rd.addr.eq(self.read_addr[k]), rd.en.eq(self.read_en), self.read_data[k].eq(rd.data),
                             wr.addr.eq(self.write_addr), wr.data.eq(self.write_data),
                             wr.en.eq(self.write_en & (self.write_lane == k))]
            return m
        m.submodules.mem = mem = memory.Memory(shape=data.ArrayLayout(self.lane, p.lanes), depth=p.synapse_rows,
                                               init=[])
        wr = mem.write_port(granularity=1)
        rd = mem.read_port(domain="sync")
        m.d.comb += [
            rd.addr.eq(self.read_addr), rd.en.eq(self.read_en), self.read_data.eq(rd.data),
            wr.addr.eq(self.write_addr),
            wr.data.as_value().eq(self.write_data.as_value().replicate(p.lanes)),
        ]
        for k in range(p.lanes):
            m.d.comb += wr.en[k].eq(self.write_en & (self.write_lane == k if p.lanes > 1 else 1))
        return m
