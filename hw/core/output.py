"""The output stage of the core: spike words -> word FIFO -> serializer -> skid buffer -> ``out``.

The update stage's spike words (always taken: it issues a word only with a credit, a FIFO place)
wait in a buffered FIFO (the serializer takes its next word from a register, not from a LUT-RAM
read); the :class:`~cssnn.hw.core.serializer.SpikeSerializer` turns each into its spike events, one
per clock, and a step's last word (``end``) into its end marker too (it does not wait for the
argmax: the controller's ``done`` does, since only the run's last class is read). The end marker travels
in band, behind the step's spikes, so the core can already run the next step while this one's spikes
are still leaving. Everything leaves through a :class:`~cssnn.hw.core.skid.SkidBuffer`: the
consumer's ``ready`` only drives the enables of its two registers. ``done`` pulses as an end marker
leaves: the core's ``out`` carries exactly one end marker per step, its last item. With
``CoreParams.overlap`` a word passes the FIFO when it is empty and the serializer takes it: the
FIFO's two clocks are in every step's path to the next layer.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from cssnn.hw.core.serializer import SpikeSerializer, word_layout
from cssnn.hw.core.skid import SkidBuffer
from cssnn.hw.params import CoreParams, check_params, event_layout

__all__ = ["OutputStage", "WORD_FIFO_DEPTH"]

#: Words (of N spikes) the update can have in flight between issue and the serializer (the update
#: stage's credits): five stages (R, D, X, Y, Z) to keep one word per clock, the rest absorbs words
#: with several spikes.
WORD_FIFO_DEPTH = 8


class OutputStage(wiring.Component):
    """In: ``words`` (spike words, always taken). Out: ``out``
    (the core's output stream), ``done`` (an end marker leaves on ``out``), ``word_taken`` (the
    serializer takes a word from the FIFO: a credit back), ``spike`` (a spike event leaves the
    serializer)."""

    def __init__(self, params: CoreParams):
        check_params(self, params)
        self.params = p = params
        super().__init__({
            "words": In(stream.Signature(word_layout(p), always_ready=True)),
            "out": Out(stream.Signature(event_layout(p))), "done": Out(1), "word_taken": Out(1), "spike": Out(1),
        })

    def elaborate(self, platform):
        p = self.params
        m = Module()
        # buffered: the serializer takes the FIFO's word from a register (timing: docs/BOARDS.md, item 20)
        m.submodules.word_fifo = word_fifo = SyncFIFOBuffered(width=word_layout(p).size, depth=WORD_FIFO_DEPTH)
        m.submodules.ser = ser = SpikeSerializer(p)
        m.d.comb += [word_fifo.w_data.eq(self.words.payload), word_fifo.r_en.eq(ser.i.ready)]
        if p.overlap:
            # a word passes the FIFO when it is empty and the serializer takes it (the FIFO's two
            # clocks are in every step's path to the next layer: short steps wait for them)
            direct = Signal()
            m.d.comb += [
                direct.eq((word_fifo.level == 0) & self.words.valid),
                ser.i.payload.as_value().eq(Mux(word_fifo.r_rdy, word_fifo.r_data, self.words.payload.as_value())),
                ser.i.valid.eq(word_fifo.r_rdy | direct),
                word_fifo.w_en.eq(self.words.valid & ~(direct & ser.i.ready)),
                self.word_taken.eq(ser.i.valid & ser.i.ready),
            ]
        else:
            m.d.comb += [
                word_fifo.w_en.eq(self.words.valid),
                ser.i.payload.as_value().eq(word_fifo.r_data), ser.i.valid.eq(word_fifo.r_rdy),
                self.word_taken.eq(word_fifo.r_rdy & word_fifo.r_en),
            ]

        # serializer events through a skid buffer (timing: docs/BOARDS.md, item 17)
        m.submodules.out_buf = out_buf = SkidBuffer(event_layout(p))
        wiring.connect(m, wiring.flipped(self.out), out_buf.o)
        wiring.connect(m, ser.o, out_buf.i)
        m.d.comb += [self.spike.eq(ser.o.valid & ser.o.ready & ~ser.o.payload.end),
                     self.done.eq(self.out.valid & self.out.ready & self.out.payload.end)]
        return m
