"""The event input of the core: the ``events`` stream through the index memory into the event
register, which issues the event's synapse rows.

Stages (one clock each; EM and EB advance together, ``adv``, so a stall holds them and the index
memory's read data)::

    events -> slot = idx_base + index -> [index memory] EM -> EB: (first row, rows) registered
           -> event register: loads the synapse store's row register with the first row, then one row
              per clock in which the core issues one (``row_issue``), until the last

The event taken addresses the index memory in the clock it is taken: its slot is added in front of
the memory's address, from the event's register (the router's FIFO head) and the step's base (no
register in front of the memory: one there cost every crossing from one layer to the next a clock).
An event whose neuron has no synapses into this layer (0 rows) leaves EB without entering the
event register: it costs no row. Events are taken only while ``accum`` and never past the end
marker, which stays in the event register until the core takes it (``end_take``): the next step's
input (or this step's own output, on a loopback) stays out.

With ``CoreParams.walk = "lanes"`` the event register is one walker per lane, each fed by a queue of
its own (:data:`LANE_QUEUE` events): EB hands an event to the queue of every lane that has synapses
of it (``counts[k] > 0``; a full queue holds EB), and walker ``k`` issues its ``counts[k]`` rows at its
own pace, so a step costs its busiest lane instead of the sum of every list's fullest lane. The end
marker stays in EB; it is ``end`` once every queue and walker is empty (seen a clock late: timing).

With ``CoreParams.overlap`` the events of the steps whose config the core holds behind ACCUM's
(``steps``: ACCUM's and up to ``steps_ahead`` more) follow the end markers before them in (``ends``
counts the markers in): the events after ``ends`` markers are step ``ends``'s, their slots from its
base (``idx_base``, then ``idx_next``), and they wait behind the markers, in the stages after them,
for the handoffs; an end marker taken while EM is empty goes straight to EB (it reads no index
entry). On every core an event is taken into an empty EM while EB waits (bubbles close up).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from cssnn.hw.params import CoreParams, check_params, event_layout, index_lane_layout

__all__ = ["EventInput", "LANE_QUEUE"]

#: Events each lane's queue holds (``walk = "lanes"``): how far the lanes may walk apart.
LANE_QUEUE = 8


class EventInput(wiring.Component):
    """In: ``events`` (the core's input stream), ``accum`` (the core holds a step in ACCUM),
    ``idx_base`` (the step's), ``index_data`` (the index memory's read data), ``row_issue`` (the row
    of ``pending`` issues this clock), ``end_take`` (the end marker leaves the event register).

    Out: ``index_addr``/``index_en`` (the index memory's pipeline read), ``index_take`` (EB takes
    the read's data: a read may run ahead into an empty EM while EB waits), ``pending`` (a spike event
    is in the event register: its next row may issue), ``neg`` (its sign), ``end`` (the end marker is
    in the event register: ACCUM may end), ``load`` (the event register takes an event this clock) and
    ``first_row`` (that event's first row), ``event`` (an input spike event is taken from EB: the
    event counter). With ``overlap``: In ``steps`` (the configs held, ACCUM's first: events are taken
    until all their end markers are in) and ``idx_next`` (the ``idx_base`` of those behind ACCUM's),
    Out ``ends`` (end markers in, not yet taken by the core). With ``walk = "lanes"``: ``pending``
    is any walker's, ``issues`` says which lanes issue a row when ``row_issue`` is high, and
    ``neg``, ``load`` and ``first_row`` are per lane."""

    def __init__(self, params: CoreParams):
        check_params(self, params)
        self.params = p = params
        n = p.lanes if p.walk == "lanes" else 1
        super().__init__({
            "events": In(stream.Signature(event_layout(p))),
            "accum": In(1), "idx_base": In(p.slot_bits), "index_data": In(index_lane_layout(p)),
            "row_issue": In(1), "end_take": In(1),
            "index_addr": Out(p.slot_bits), "index_en": Out(1), "index_take": Out(1),
            "pending": Out(1), "issues": Out(n), "neg": Out(n), "end": Out(1), "load": Out(n),
            "first_row": Out(data.ArrayLayout(p.row_bits, n) if p.walk == "lanes" else p.row_bits), "event": Out(1),
            **({"steps": In(range(p.steps_ahead + 2)), "idx_next": In(data.ArrayLayout(p.slot_bits, p.steps_ahead)),
                "ends": Out(range(p.steps_ahead + 2))} if p.overlap else {}),
        })

    def elaborate(self, platform):
        p = self.params
        m = Module()
        ev = self.events.payload
        adv = Signal()             # EB takes the index memory's read (EM): EB is empty or its event leaves
        adv_em = Signal()          # the index memory reads: EM is empty or advances (bubbles close up)
        end_in = Signal()          # an end marker has been taken (into EM) and not yet by the core
        em_v, em_neg, em_end = Signal(), Signal(), Signal()   # the index memory's read in flight
        eb_v, eb_neg, eb_end = Signal(), Signal(), Signal()
        eb = Signal(index_lane_layout(p))
        eb_take = Signal()         # EB's event leaves (to the event register, a queue, or nowhere)
        take, open_ = Signal(), Signal()   # an event is taken; events may come (past any end marker)
        base = Signal(p.slot_bits)         # the slot of index 0 for the event taken
        m.d.comb += [
            adv.eq(~eb_v | eb_take), adv_em.eq(~em_v | adv),
            self.events.ready.eq(self.accum & open_ & adv_em), take.eq(self.events.valid & self.events.ready),
            # the event taken addresses the index memory in the same clock (its slot is not registered)
            self.index_addr.eq(base + ev.index), self.index_en.eq(adv_em), self.index_take.eq(adv),
        ]
        if p.overlap:
            # the events of the steps held behind ACCUM's follow the end markers before them: those
            # after `ends` markers are the events of step `ends` (0: ACCUM's)
            ends = Signal(range(p.steps_ahead + 2))
            bases = Signal(data.ArrayLayout(p.slot_bits, p.steps_ahead + 1))
            m.d.sync += ends.eq(ends + (take & ev.end) - self.end_take)
            m.d.comb += [bases[0].eq(self.idx_base), open_.eq(ends < self.steps), self.ends.eq(ends)]
            with m.Switch(ends):   # the base of step `ends` (a mux, not an indexed view: that multiplies)
                for i in range(p.steps_ahead + 1):
                    with m.Case(i):
                        m.d.comb += base.eq(bases[i])
            for i in range(p.steps_ahead):
                m.d.comb += bases[i + 1].eq(self.idx_next[i])
        else:
            with m.If(take):
                m.d.sync += end_in.eq(ev.end)
            with m.If(self.end_take):
                m.d.sync += end_in.eq(0)
            m.d.comb += [open_.eq(~end_in), base.eq(self.idx_base)]
        with m.If(adv_em):
            m.d.sync += [em_v.eq(take), em_neg.eq(ev.neg), em_end.eq(ev.end)]
        with m.If(adv):
            m.d.sync += [eb_v.eq(em_v), eb_neg.eq(em_neg), eb_end.eq(em_end), eb.eq(self.index_data)]
        if p.overlap:
            # an end marker taken while EM is empty goes straight to EB: it reads no index entry
            # (a step without events, like the encoder's, then ends a clock sooner)
            with m.If(take & ev.end & ~em_v & adv):
                m.d.sync += [em_v.eq(0), eb_v.eq(1), eb_end.eq(1)]
        if p.walk == "lanes":
            self._walkers(m, adv, eb_v, eb_neg, eb_end, eb, eb_take)
        else:
            self._register(m, adv, eb_v, eb_neg, eb_end, eb, eb_take)
        return m

    def _register(self, m, adv, eb_v, eb_neg, eb_end, eb, eb_take):
        """The event register: EB's event, its rows issued one per ``row_issue``."""
        eb_empty = Signal()        # the event in EB has no synapse rows
        evq_v, evq_neg, evq_end = Signal(), Signal(), Signal()
        rem = Signal(self.params.count_bits)  # rows of the event register's event still to issue
        last = Signal()             # rem == 1, as a register
        evq_take, evq_load = Signal(), Signal()
        with m.If(adv):
            m.d.sync += eb_empty.eq(self.index_data.rows == 0)
        m.d.comb += [
            evq_take.eq(self.row_issue & last),   # the event's last row issues
            # the end marker waits in the event register until the core takes it (the handoff)
            evq_load.eq(self.accum & eb_v & ~(eb_empty & ~eb_end) & (~evq_v | evq_take)),
            eb_take.eq(evq_load | (self.accum & eb_v & eb_empty & ~eb_end)),
        ]
        with m.If(evq_load):
            m.d.sync += [evq_v.eq(1), evq_neg.eq(eb_neg), evq_end.eq(eb_end), rem.eq(eb.rows), last.eq(eb.rows == 1)]
        with m.Elif(self.row_issue):
            m.d.sync += [rem.eq(rem - 1), last.eq(rem == 2)]
            with m.If(last):
                m.d.sync += evq_v.eq(0)
        with m.If(self.end_take):
            m.d.sync += evq_v.eq(0)
        m.d.comb += [
            self.pending.eq(evq_v & ~evq_end), self.issues.eq(self.row_issue), self.end.eq(evq_v & evq_end),
            self.neg.eq(evq_neg), self.load.eq(evq_load), self.first_row.eq(eb.first),
            self.event.eq(eb_take & ~eb_end),
        ]

    def _walkers(self, m, adv, eb_v, eb_neg, eb_end, eb, eb_take):
        """A queue and a walker per lane; EB's spike goes to the queues of the lanes it has synapses in."""
        p = self.params
        n = p.lanes
        want = Signal(n)           # lanes with synapses of EB's event
        with m.If(adv):
            m.d.sync += want.eq(Cat(c != 0 for c in self.index_data.counts))
        entry = data.StructLayout({"first": p.row_bits, "count": p.count_bits, "neg": 1})
        space, busy, walking = Signal(n), Signal(n), Signal(n)
        for k in range(n):
            m.submodules[f"queue{k}"] = q = fifo.SyncFIFOBuffered(width=entry.size, depth=LANE_QUEUE)
            head, nxt = entry(q.r_data), Signal(entry)
            v, neg, last = Signal(), Signal(), Signal()
            rem = Signal(p.count_bits)
            issue, free, direct, load = Signal(), Signal(), Signal(), Signal()
            m.d.comb += [
                space[k].eq(q.w_rdy | ~want[k]), busy[k].eq((q.level != 0) | v), walking[k].eq(v),
                issue.eq(self.row_issue & v), free.eq(~v | (issue & last)),
                # an empty queue and a free walker: EB's event goes straight into the walker
                direct.eq(eb_take & want[k] & (q.level == 0) & free),
                q.w_data.eq(Cat(eb.first, eb.counts[k], eb_neg)), q.w_en.eq(eb_take & want[k] & ~direct),
                q.r_en.eq(self.accum & q.r_rdy & free),
                load.eq(direct | q.r_en), nxt.eq(Mux(direct, q.w_data, head)),
                self.issues[k].eq(issue), self.load[k].eq(load), self.first_row[k].eq(nxt.first),
                self.neg[k].eq(neg),
            ]
            with m.If(load):
                m.d.sync += [v.eq(1), neg.eq(nxt.neg), rem.eq(nxt.count), last.eq(nxt.count == 1)]
            with m.Elif(issue):
                m.d.sync += [rem.eq(rem - 1), last.eq(rem == 2)]
                with m.If(last):
                    m.d.sync += v.eq(0)
        # every queue and walker idle, as a register: no event entered in the last clock and all were
        # idle then (nothing else fills them), so they still are; the end marker waits for it (from
        # the N queues' levels to the handoff was the ECP5's critical path: 87.8 MHz on 16 lanes).
        # The clock it costs mostly hides behind the accumulate stage's drain, which UPDATE's first word
        # waits for anyway (the 80%-pruned digits MLP on 8 lanes: 774 -> 780 cycles)
        idle = Signal()
        m.d.sync += idle.eq(~busy.any() & ~eb_take)
        m.d.comb += [
            eb_take.eq(self.accum & eb_v & ~eb_end & space.all()),
            self.pending.eq(walking.any()), self.end.eq(eb_v & eb_end & idle),
            self.event.eq(eb_take),
        ]
        with m.If(self.end_take):   # the end marker waits in EB until the core takes it
            m.d.sync += eb_v.eq(0)
