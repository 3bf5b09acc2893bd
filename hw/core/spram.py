"""Synapse memory in iCE40 UltraPlus SPRAM (``SB_SPRAM256KA``), with a bit-exact simulation model.

Amaranth never infers SPRAM, so it is instantiated here. :class:`SPRAM` is one 16k x 16 single-port
RAM: on hardware (an iCE40 UltraPlus platform) an ``SB_SPRAM256KA`` instance, in simulation
(``platform`` is ``None``) a model with the primitive's timing (yosys ``cells_sim.v``):

- a clock with ``cs`` high and ``wren`` low reads: ``rdata`` is ``mem[addr]`` from the next clock on;
- a clock with ``cs`` and ``wren`` high writes the nibbles of ``wdata`` selected by ``maskwren`` and
  leaves ``rdata`` unchanged;
- a clock with ``cs`` low does nothing (``rdata`` holds).

:class:`SpramSynapseMemory` has the ports and timing of
:class:`~cssnn.hw.core.synapse.SynapseMemory` (``CoreParams.synapse_ram = "spram"`` selects it
inside the core): per lane ``spram_words`` SPRAMs side by side (the lane's weight, target word and
mask bit, zero-extended to a multiple of 16 bits) and per 16k rows, so a lane write is a write of
that lane's SPRAMs and the other lanes keep reading. A single port cannot read and write in the same
clock, which is the one difference from the block-RAM version: **in a clock that writes lane k, the
read data of lane k is not updated** (block RAM would return the row's old lane). The core never
uses such data: the host port writes only while the core is idle, and its read data after a write
clock is not a read result. Every other sequence of reads, writes and ``read_en`` gives identical
read data (``tests/test_boards.py`` checks this under random traffic).
"""

from __future__ import annotations

from amaranth.hdl import Cat, ClockSignal, Instance, Module, Mux, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from cssnn.hw.core.synapse import SynapseMemory
from cssnn.hw.params import SPRAM_WIDTH, CoreParams, spram_words, syn_lane_layout

__all__ = ["SPRAM", "SpramSynapseMemory", "SPRAM_DEPTH", "spram_count", "is_ice40_ultraplus"]

SPRAM_DEPTH = 16384
SPRAM_ADDR_BITS = 14


def is_ice40_ultraplus(platform) -> bool:
    """True for an Amaranth platform whose device has SPRAM (iCE40UP3K/UP5K)."""
    return str(getattr(platform, "device", "")).startswith("iCE40UP")


def spram_count(p: CoreParams) -> int:
    """SPRAMs a synapse memory with parameters ``p`` uses: lanes x words per lane x ceil(rows / 16384)."""
    return p.lanes * spram_words(p) * -(-p.synapse_rows // SPRAM_DEPTH)


class SPRAM(wiring.Component):
    """One 16k x 16 single-port RAM (see the module docstring for its timing).

    ``model``: ``None`` (default) elaborates the primitive on an iCE40 UltraPlus platform and the
    simulation model when there is no platform; ``True`` forces the model.
    """

    def __init__(self, *, model: bool | None = None):
        if model not in (None, True, False):
            raise TypeError(f"model must be None, True or False, not {model!r}")
        self.model = model
        super().__init__({
            "addr": In(SPRAM_ADDR_BITS), "wdata": In(SPRAM_WIDTH), "maskwren": In(4, init=0b1111),
            "wren": In(1), "cs": In(1), "rdata": Out(SPRAM_WIDTH),
        })

    def elaborate(self, platform):
        use_model = self.model if self.model is not None else platform is None
        if not use_model and not is_ice40_ultraplus(platform):
            raise ValueError(f"SB_SPRAM256KA exists only on iCE40 UltraPlus devices, not on "
                             f"{getattr(platform, 'device', type(platform).__name__)}: use synapse_ram='block'")
        m = Module()
        if not use_model:
            m.submodules.spram = Instance(
                "SB_SPRAM256KA",
                i_ADDRESS=self.addr, i_DATAIN=self.wdata, i_MASKWREN=self.maskwren, i_WREN=self.wren,
                i_CHIPSELECT=self.cs, i_CLOCK=ClockSignal("sync"),
                i_STANDBY=0, i_SLEEP=0, i_POWEROFF=1,  # POWEROFF is active low
                o_DATAOUT=self.rdata)
            return m
        m.submodules.mem = mem = memory.Memory(shape=SPRAM_WIDTH, depth=SPRAM_DEPTH, init=[])
        rd = mem.read_port(domain="sync")
        wr = mem.write_port(granularity=4)
        m.d.comb += [
            rd.addr.eq(self.addr), rd.en.eq(self.cs & ~self.wren), self.rdata.eq(rd.data),
            wr.addr.eq(self.addr), wr.data.eq(self.wdata), wr.en.eq(Mux(self.cs & self.wren, self.maskwren, 0)),
        ]
        return m


class SpramSynapseMemory(SynapseMemory):
    """:class:`~cssnn.hw.core.synapse.SynapseMemory` (same ports, same read timing) in SPRAM:
    ``spram_words(params)`` ``SB_SPRAM256KA`` per lane and per 16k rows (``spram_count(params)`` in all).

    ``model`` is passed to every :class:`SPRAM` (``True`` forces the simulation model)."""

    def __init__(self, params: CoreParams, *, model: bool | None = None):
        super().__init__(params)
        if model not in (None, True, False):
            raise TypeError(f"model must be None, True or False, not {model!r}")
        self.model = model

    def elaborate(self, platform):
        p = self.params
        if not self.model and platform is not None and not is_ice40_ultraplus(platform):
            raise ValueError(f"SB_SPRAM256KA exists only on iCE40 UltraPlus devices, not on "
                             f"{getattr(platform, 'device', type(platform).__name__)}: use synapse_ram='block'")
        m = Module()
        banks = -(-p.synapse_rows // SPRAM_DEPTH)
        lane_w = syn_lane_layout(p).size
        lo_bits = min(p.row_bits, SPRAM_ADDR_BITS)
        bank_bits = max(0, ceil_log2(banks))
        r_lo, w_lo = self.read_addr[:lo_bits], self.write_addr[:lo_bits]
        r_bank = self.read_addr[lo_bits:lo_bits + bank_bits] if bank_bits else 0
        w_bank = self.write_addr[lo_bits:lo_bits + bank_bits] if bank_bits else 0
        bank_q = Signal(max(1, bank_bits))  # bank of the last read: selects the output
        if bank_bits:
            with m.If(self.read_en):
                m.d.sync += bank_q.eq(r_bank)
        words = spram_words(p)
        wdata = self.write_data.as_value()
        for k in range(p.lanes):
            outs = []
            for b in range(banks):
                w_sel = Signal(name=f"wsel_l{k}_b{b}")
                m.d.comb += w_sel.eq(self.write_en & ((self.write_lane == k) if p.lanes > 1 else 1)
                                     & ((w_bank == b) if bank_bits else 1))
                parts = []
                for j in range(words):
                    m.submodules[f"spram_l{k}_b{b}" + (f"_w{j}" if words > 1 else "")] = ram = SPRAM(model=self.model)
                    m.d.comb += [
                        ram.addr.eq(Mux(w_sel, w_lo, r_lo)), ram.wren.eq(w_sel), ram.maskwren.eq(0b1111),
                        ram.wdata.eq(wdata[j * SPRAM_WIDTH:(j + 1) * SPRAM_WIDTH]),
                        ram.cs.eq(w_sel | (self.read_en & ((r_bank == b) if bank_bits else 1))),
                    ]
                    parts.append(ram.rdata)
                outs.append(Cat(*parts)[:lane_w])
            lane = self.read_data[k].as_value()
            if banks == 1:
                m.d.comb += lane.eq(outs[0])
            else:
                with m.Switch(bank_q):
                    for b, o in enumerate(outs):
                        with m.Case(b):
                            m.d.comb += lane.eq(o)
        return m
