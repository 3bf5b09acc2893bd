r"""The learning engine: one fully connected STDP layer learning on chip, with connection pruning
(docs/SEMANTICS.md section 8 is the rule, :mod:`cssnn.sw.spec.stdp` the golden model).

One idea: *a training sample in, the winner's synapses updated and pruned, all in gateware*. The
host writes the sample's spike times (TIME), pulses ``start`` and reads the counters; with
``learn`` low the same pass only extracts the features (RESULT, every neuron's first-spike time).

Synapse store, by postsynaptic neuron: neuron ``j``'s existing synapses are entries
``j * stride .. j * stride + len[j] - 1`` of SYN, each (``pre``: the input, ``weight``: unsigned Bw),
in ascending ``pre`` order. A pruned synapse is removed from the list (the update pass compacts it
in place), so it costs no clock again, neither in integration nor in learning::

    per neuron j:  LEN[j], THETA[j] -> SCAN: SYN[j*stride + k] -> TIME[pre] -> acc[b] += w for every bin b >= t
                   DETECT: first bin with acc >= theta (registered); FIRE: RESULT[j]; WTA (earliest, highest, lowest j)
    the winner:    SYN -> TIME, LTP/LTD tables -> new weight; kept ones written back at the write pointer
                   LEN[win] = kept; THETA homeostasis

Cycles (``cycles``, exactly :func:`pass_cycles`): ``len[j] + 6`` per neuron, ``len[win] + 7`` for the
winner's update, one to finish. ``synops`` counts the synapse entries read (integration and update).

Host port (``host``): ``sel`` (:class:`LearnMem`), ``addr``, ``wdata``, ``we``; ``rdata`` is the
element addressed two clocks earlier. It acts only while ``busy`` is low.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import data, enum, memory, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

__all__ = ["LearnParams", "LearnMem", "LearningEngine", "syn_entry_layout", "pass_cycles", "HOST_LATENCY"]

#: Clocks from a host-port read address to its data.
HOST_LATENCY = 2


class LearnMem(enum.IntEnum, shape=3):
    """The engine's memories on its host port."""

    SYN = 0     #: neurons x stride entries: (pre, weight)
    LEN = 1     #: neurons: existing synapses of each neuron
    THETA = 2   #: neurons: thresholds (unsigned, potential width)
    TIME = 3    #: inputs: the sample's spike times (window = no spike)
    TABLE = 4   #: 2 (M + 1): LTP steps of weights 0 .. M, then LTD steps
    RESULT = 5  #: neurons: first-spike time of the last pass (window = none); read-only


@dataclass(frozen=True)
class LearnParams:
    """The learning layer's shape. inputs, neurons: the layer; window: TTFS bins per sample;
    weight_bits: unsigned weight width Bw."""

    inputs: int = 64
    neurons: int = 64
    window: int = 8
    weight_bits: int = 8

    def __post_init__(self):
        for name, lo, hi in (("inputs", 1, 1 << 14), ("neurons", 1, 1 << 12), ("window", 1, 255),
                             ("weight_bits", 2, 16)):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
                raise ValueError(f"learning engine: {name} must be an int in [{lo}, {hi}], not {v!r}")

    @property
    def max_weight(self) -> int:
        return (1 << self.weight_bits) - 1

    @property
    def pre_bits(self) -> int:
        return max(1, ceil_log2(self.inputs))

    @property
    def stride(self) -> int:
        """SYN entries per neuron (room for all its inputs)."""
        return 1 << self.pre_bits

    @property
    def len_bits(self) -> int:
        return self.inputs.bit_length()

    @property
    def neuron_bits(self) -> int:
        """Width of a neuron index or ``neurons`` (no winner)."""
        return max(1, self.neurons.bit_length())

    @property
    def time_bits(self) -> int:
        return max(1, self.window.bit_length())

    @property
    def potential_bits(self) -> int:
        return max(1, (self.inputs * self.max_weight).bit_length())

    def depth(self, mem: LearnMem) -> int:
        return {LearnMem.SYN: self.neurons * self.stride, LearnMem.LEN: self.neurons, LearnMem.THETA: self.neurons,
                LearnMem.TIME: self.inputs, LearnMem.TABLE: 2 * (self.max_weight + 1),
                LearnMem.RESULT: self.neurons}[LearnMem(mem)]

    def elem_bits(self, mem: LearnMem) -> int:
        return {LearnMem.SYN: syn_entry_layout(self).size, LearnMem.LEN: self.len_bits,
                LearnMem.THETA: self.potential_bits, LearnMem.TIME: self.time_bits,
                LearnMem.TABLE: self.weight_bits, LearnMem.RESULT: self.time_bits}[LearnMem(mem)]

    @property
    def addr_bits(self) -> int:
        return max(1, max(ceil_log2(self.depth(s)) for s in LearnMem))

    @property
    def data_bits(self) -> int:
        return max(self.elem_bits(s) for s in LearnMem)


def pass_cycles(lens, winner_len: int | None = None) -> int:
    """Clocks of one pass of the engine (its ``cycles`` counter): every neuron's list (``lens``) is
    integrated; ``winner_len``: the winner's list length before a learning update (None: no update)."""
    return sum(int(n) + 6 for n in lens) + (0 if winner_len is None else int(winner_len) + 7) + 1


def syn_entry_layout(lp: LearnParams) -> data.StructLayout:
    """A SYN entry: the presynaptic input (low bits) and the weight above it."""
    return data.StructLayout({"pre": lp.pre_bits, "weight": lp.weight_bits})


class LearningEngine(wiring.Component):
    """Ports: ``host`` (see the module docstring); ``start`` (one clock, idle only), ``learn`` (with
    start: 1 learn the sample, 0 features only); the rule's registers ``prune_below``, ``theta_up``,
    ``theta_down``, ``theta_min``; ``busy``, ``done`` (one clock); the last pass's counters
    ``cycles``, ``synops``, ``winner`` (``neurons``: none fired), ``fire_time``, ``pruned``."""

    def __init__(self, lp: LearnParams, *, counter_bits: int = 32):
        if not isinstance(lp, LearnParams):
            raise TypeError(f"lp must be a LearnParams, not {lp!r}")
        self.lp = lp
        self.counter_bits = counter_bits
        pb = lp.potential_bits
        super().__init__({
            "host": In(wiring.Signature({
                "sel": Out(LearnMem), "addr": Out(lp.addr_bits), "wdata": Out(lp.data_bits), "we": Out(1),
                "rdata": In(lp.data_bits)})),
            "start": In(1), "learn": In(1),
            "prune_below": In(lp.weight_bits), "theta_up": In(pb), "theta_down": In(pb), "theta_min": In(pb),
            "busy": Out(1), "done": Out(1),
            "cycles": Out(counter_bits), "synops": Out(counter_bits), "winner": Out(lp.neuron_bits),
            "fire_time": Out(lp.time_bits), "pruned": Out(lp.len_bits),
        })

    def elaborate(self, platform):
        lp = self.lp
        m = Module()
        mems = {}
        for mem in (LearnMem.SYN, LearnMem.LEN, LearnMem.THETA, LearnMem.TIME, LearnMem.RESULT):
            shape = syn_entry_layout(lp) if mem == LearnMem.SYN else lp.elem_bits(mem)
            # (at least 2 words: a 1-word memory has a 0-bit address, which Verilog cannot declare)
            m.submodules[f"{mem.name.lower()}_mem"] = mm = memory.Memory(shape=shape, depth=max(2, lp.depth(mem)),
                                                                         init=[])
            mems[mem] = (mm.write_port(), mm.read_port())
        tables = []
        for name in ("ltp", "ltd"):
            m.submodules[f"{name}_mem"] = mm = memory.Memory(shape=lp.weight_bits, depth=lp.max_weight + 1, init=[])
            tables.append((mm.write_port(), mm.read_port()))
        ports = self._engine(m, mems, tables)
        self._host(m, mems, tables, ports)
        return m

    def _host(self, m, mems, tables, engine_ports) -> None:
        """While idle the host drives every port (the engine's otherwise); reads are registered."""
        lp, h = self.lp, self.host
        busy = self.busy
        wr = Signal()
        m.d.comb += wr.eq(h.we & ~busy)
        table_hi = h.addr[lp.weight_bits]  # TABLE: LTD half
        for mem, (w, r) in mems.items():
            ew, er = engine_ports[mem]
            m.d.comb += [
                w.addr.eq(Mux(busy, ew["addr"], h.addr)), w.data.eq(Mux(busy, ew["data"], h.wdata)),
                w.en.eq(Mux(busy, ew["en"], wr & (h.sel == mem) & (mem != LearnMem.RESULT))),
                r.addr.eq(Mux(busy, er, h.addr)),
            ]
        for half, (w, r) in enumerate(tables):
            m.d.comb += [w.addr.eq(h.addr), w.data.eq(h.wdata),
                         w.en.eq(wr & (h.sel == LearnMem.TABLE) & (table_hi == half)),
                         r.addr.eq(Mux(busy, engine_ports["table"], h.addr))]
        sel_d, hi_d = Signal(LearnMem), Signal()
        m.d.sync += [sel_d.eq(h.sel), hi_d.eq(table_hi)]
        with m.Switch(sel_d):
            for mem, (_, r) in mems.items():
                with m.Case(mem):
                    m.d.sync += h.rdata.eq(Value.cast(r.data))
            with m.Case(LearnMem.TABLE):
                m.d.sync += h.rdata.eq(Mux(hi_d, tables[1][1].data, tables[0][1].data))

    def _engine(self, m, mems, tables) -> dict:
        """The FSM and its two pipelines; returns the engine's side of every memory port."""
        lp = self.lp
        pb, tb, W = lp.potential_bits, lp.time_bits, lp.window
        syn_w, syn_r = mems[LearnMem.SYN]
        len_r, theta_r, time_r = mems[LearnMem.LEN][1], mems[LearnMem.THETA][1], mems[LearnMem.TIME][1]
        (ltp_r, ltd_r) = (tables[0][1], tables[1][1])
        ports = {mem: ({"addr": Signal(lp.addr_bits, name=f"e_{mem.name.lower()}_waddr"),
                        "data": Signal(lp.elem_bits(mem), name=f"e_{mem.name.lower()}_wdata"),
                        "en": Signal(name=f"e_{mem.name.lower()}_we")},
                       Signal(lp.addr_bits, name=f"e_{mem.name.lower()}_raddr")) for mem in mems}
        ports["table"] = Signal(lp.weight_bits, name="e_table_raddr")

        learn = Signal()                                 # this pass learns
        j = Signal(lp.neuron_bits)                       # neuron being integrated
        k = Signal(lp.len_bits)                          # next list entry to read
        n_len = Signal(lp.len_bits)
        n_theta = Signal(pb)
        acc = [Signal(pb, name=f"acc{b}") for b in range(W)]
        best_j, best_t, best_v = Signal(lp.neuron_bits), Signal(tb), Signal(pb)
        wp = Signal(lp.len_bits)                         # update pass: write pointer
        s1, s2 = Signal(), Signal()                      # pipeline valid bits (stage 1: SYN data, 2: TIME data)
        w2, pre2 = Signal(lp.weight_bits), Signal(lp.pre_bits)
        upd = Signal()                                   # the pipeline carries the update pass
        cycles, synops, pruned = self.cycles, self.synops, self.pruned

        def base(n):
            return Cat(Const(0, lp.pre_bits), n)

        # ---- shared pipeline: stage 1 has SYN data (read TIME[pre] and the tables), stage 2 TIME data ----
        e1 = syn_r.data
        m.d.comb += [ports[LearnMem.TIME][1].eq(e1.pre), ports["table"].eq(e1.weight)]
        m.d.sync += [s2.eq(s1), w2.eq(e1.weight), pre2.eq(e1.pre)]
        t2 = time_r.data
        with m.If(s2 & ~upd):
            for b in range(W):
                with m.If(t2 <= b):
                    m.d.sync += acc[b].eq(acc[b] + w2)
        # update pass, stage 2: the new weight (table read -> add) into stage 3's registers; stage 3: the
        # prune decision and the write-back (a register between them: the table's read data is late)
        potentiate, new_w = Signal(), Signal(lp.weight_bits)
        m.d.comb += [potentiate.eq(t2 <= best_t), new_w.eq(Mux(potentiate, w2 + ltp_r.data, w2 - ltd_r.data))]
        s3, pot3, w3, pre3 = Signal(), Signal(), Signal(lp.weight_bits), Signal(lp.pre_bits)
        m.d.sync += [s3.eq(s2 & upd), pot3.eq(potentiate), w3.eq(new_w), pre3.eq(pre2)]
        drop = Signal()
        m.d.comb += drop.eq(~pot3 & (w3 < self.prune_below))
        sw = ports[LearnMem.SYN][0]
        m.d.comb += [sw["addr"].eq(base(best_j) | wp), sw["data"].eq(Cat(pre3, w3)),
                     sw["en"].eq(s3 & ~drop)]
        with m.If(s3):
            with m.If(drop):
                m.d.sync += pruned.eq(pruned + 1)
            with m.Else():
                m.d.sync += wp.eq(wp + 1)

        # fire detection over the accumulators (combinational; used in FIRE)
        tf, vf = Signal(tb), Signal(pb)
        tf_r, vf_r = Signal(tb), Signal(pb)   # registered in DETECT, used in FIRE
        m.d.comb += [tf.eq(W), vf.eq(0)]
        for b in reversed(range(W)):
            with m.If(acc[b] >= n_theta):
                m.d.comb += [tf.eq(b), vf.eq(acc[b])]
        none = Signal()
        m.d.comb += none.eq(best_t == W)
        theta_dec = Signal(pb)
        m.d.comb += theta_dec.eq(Mux(n_theta >= self.theta_min + self.theta_down, n_theta - self.theta_down,
                                     self.theta_min))
        theta_sum = Signal(pb + 1)
        m.d.comb += theta_sum.eq(theta_r.data + self.theta_up)

        rp = {mem: ports[mem][1] for mem in (LearnMem.SYN, LearnMem.LEN, LearnMem.THETA)}
        with m.If(self.busy):
            m.d.sync += cycles.eq(cycles + 1)
        m.d.sync += s1.eq(0)
        m.d.comb += [self.winner.eq(Mux(none, lp.neurons, best_j)), self.fire_time.eq(best_t)]

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [learn.eq(self.learn), j.eq(0), best_t.eq(W), best_j.eq(0), best_v.eq(0),
                                 cycles.eq(0), synops.eq(0), pruned.eq(0), upd.eq(0)]
                    m.next = "NEURON"
            with m.State("NEURON"):                          # address LEN[j], THETA[j]
                m.d.comb += [self.busy.eq(1), rp[LearnMem.LEN].eq(j), rp[LearnMem.THETA].eq(j)]
                m.next = "LOAD"
            with m.State("LOAD"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += [n_len.eq(len_r.data), n_theta.eq(theta_r.data), k.eq(0)]
                m.d.sync += [a.eq(0) for a in acc]
                m.next = "SCAN"
            with m.State("SCAN"):                            # one SYN entry a clock
                m.d.comb += [self.busy.eq(1), rp[LearnMem.SYN].eq(base(j) | k)]
                with m.If(k < n_len):
                    m.d.sync += [s1.eq(1), k.eq(k + 1), synops.eq(synops + 1)]
                with m.Else():
                    m.next = "DRAIN"
            with m.State("DRAIN"):                           # the last entry reaches the accumulators
                m.d.comb += self.busy.eq(1)
                with m.If(~s1):
                    m.next = "DETECT"
            with m.State("DETECT"):                          # the first spike, registered (timing)
                m.d.comb += self.busy.eq(1)
                m.d.sync += [tf_r.eq(tf), vf_r.eq(vf)]
                m.next = "FIRE"
            with m.State("FIRE"):                            # RESULT, homeostasis, winner-take-all
                m.d.comb += self.busy.eq(1)
                rw, tw = ports[LearnMem.RESULT][0], ports[LearnMem.THETA][0]
                m.d.comb += [rw["addr"].eq(j), rw["data"].eq(tf_r), rw["en"].eq(1),
                             tw["addr"].eq(j), tw["data"].eq(theta_dec), tw["en"].eq(learn)]
                with m.If((tf_r < W) & (none | (tf_r < best_t) | ((tf_r == best_t) & (vf_r > best_v)))):
                    m.d.sync += [best_j.eq(j), best_t.eq(tf_r), best_v.eq(vf_r)]
                m.d.sync += j.eq(j + 1)
                with m.If(j != lp.neurons - 1):
                    m.next = "NEURON"
                with m.Elif(learn & ((tf_r < W) | ~none)):
                    m.next = "UNEURON"
                with m.Else():
                    m.next = "DONE"
            with m.State("UNEURON"):                         # the winner's list: address LEN
                m.d.comb += [self.busy.eq(1), rp[LearnMem.LEN].eq(best_j)]
                m.d.sync += upd.eq(1)
                m.next = "ULOAD"
            with m.State("ULOAD"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += [n_len.eq(len_r.data), k.eq(0), wp.eq(0)]
                m.next = "USCAN"
            with m.State("USCAN"):
                m.d.comb += [self.busy.eq(1), rp[LearnMem.SYN].eq(base(best_j) | k)]
                with m.If(k < n_len):
                    m.d.sync += [s1.eq(1), k.eq(k + 1), synops.eq(synops + 1)]
                with m.Else():
                    m.next = "UDRAIN"
            with m.State("UDRAIN"):                          # then LEN[win] = kept, address THETA[win]
                m.d.comb += [self.busy.eq(1), rp[LearnMem.THETA].eq(best_j)]
                with m.If(~s1 & ~s2 & ~s3):
                    lw = ports[LearnMem.LEN][0]
                    m.d.comb += [lw["addr"].eq(best_j), lw["data"].eq(wp), lw["en"].eq(1)]
                    m.next = "UTHETA"
            with m.State("UTHETA"):                          # the winner's homeostasis
                m.d.comb += self.busy.eq(1)
                tw = ports[LearnMem.THETA][0]
                m.d.comb += [tw["addr"].eq(best_j), tw["en"].eq(1),
                             tw["data"].eq(Mux(theta_sum >> pb, (1 << pb) - 1, theta_sum))]
                m.next = "DONE"
            with m.State("DONE"):
                m.d.comb += [self.busy.eq(1), self.done.eq(1)]
                m.d.sync += upd.eq(0)
                m.next = "IDLE"
        return ports
