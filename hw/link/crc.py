"""CRC-16/CCITT-FALSE in gateware: one byte per clock.

The host protocol (docs/PROTOCOL.md) protects every frame with CRC-16/CCITT-FALSE (poly 0x1021,
init 0xFFFF, MSB first, no final XOR). :data:`CRC16_POLY` and :data:`CRC16_INIT` are the one
definition both ends use; the host computes the same CRC with :func:`binascii.crc_hqx`. The CRC is
sent most significant byte first, so running the CRC over a frame *including* its CRC gives 0: the
receiver checks a frame by comparing the register with zero, and needs no copy of the received CRC.
"""

from __future__ import annotations

from amaranth.hdl import C, Cat, Module, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["crc16_next", "CRC16_POLY", "CRC16_INIT", "crc_signature", "Crc16"]

CRC16_POLY = 0x1021
CRC16_INIT = 0xFFFF


def _taps() -> list[tuple[list[int], list[int]]]:
    """For each bit of the next register: which register bits and which data bits it XORs
    (the CRC is linear over GF(2); tracked symbolically as bit masks, register bits 0-15 and data
    bits 16-23)."""
    x = [(1 << i) for i in range(16)]           # register bit i
    for i in range(8):
        x[8 + i] ^= 1 << (16 + i)                 # crc ^= byte << 8
    for _ in range(8):
        msb = x[15]
        x = [0] + x[:15]
        x = [v ^ msb if CRC16_POLY >> i & 1 else v for i, v in enumerate(x)]
    return [([i for i in range(16) if v >> i & 1], [i - 16 for i in range(16, 24) if v >> i & 1]) for v in x]


def crc16_next(crc: Value, byte: Value) -> Value:
    """The CRC register after shifting in ``byte``: a flat XOR network (each bit XORs at most ~7
    inputs: about 30-40 LUT4s), no state."""
    crc, byte = Value.cast(crc), Value.cast(byte)
    bits = []
    for regs, data in _taps():
        terms = [crc[i] for i in regs] + [byte[i] for i in data]
        bits.append(Cat(*terms).xor() if terms else C(0, 1))
    return Cat(*bits)


def crc_signature() -> wiring.Signature:
    """A user's view of a :class:`Crc16`: ``init`` (restart), ``en`` (shift in ``data``); ``value``
    (the register) and ``residue_zero`` (the register after ``data`` would be 0: a frame whose own CRC
    has just been shifted in checks)."""
    return wiring.Signature({"init": Out(1), "en": Out(1), "data": Out(8), "value": In(16), "residue_zero": In(1)})


class Crc16(wiring.Component):
    """The CRC register and its one XOR network. Port ``port``: In(:func:`crc_signature`)."""

    def __init__(self):
        super().__init__({"port": In(crc_signature())})

    def elaborate(self, platform):
        m = Module()
        p = self.port
        crc = Signal(16, init=CRC16_INIT)
        nxt = crc16_next(crc, p.data)
        m.d.comb += [p.value.eq(crc), p.residue_zero.eq(nxt == 0)]
        with m.If(p.init):
            m.d.sync += crc.eq(CRC16_INIT)
        with m.Elif(p.en):
            m.d.sync += crc.eq(nxt)
        return m
