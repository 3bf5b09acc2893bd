"""Sizing an accelerator for a network on a board, and the "does not fit" checks.

- :func:`board_params` chooses the :class:`~cssnn.hw.memmap.AccelParams` for a network on a board:
  the widths and depths of :func:`cssnn.sw.mapping.sizing.params_for` (the narrowest that run the network
  bit-exactly), depths rounded up to what the board's RAM primitives hold for free, the synapse
  memory in SPRAM on the UP5K, and the largest of the board's lane counts whose estimate fits.
- :func:`estimate` counts the RAM primitives the design will use (before any tool runs) and
  estimates its logic; :func:`check_estimate` raises :class:`DoesNotFit` naming the resource that
  runs out ("needs 41 block RAMs (ICESTORM_RAM), the iCE40UP5K has 30").
- :func:`check_synth` does the same from yosys' cell counts after synthesis, before the long
  place-and-route step.
"""

from __future__ import annotations

import dataclasses
import itertools
import math

from amaranth.hdl import Shape

from cssnn.boards.targets import Board, get_board
from cssnn.hw.core.events import LANE_QUEUE
from cssnn.hw.core.output import WORD_FIFO_DEPTH
from cssnn.hw.core.spram import SPRAM_DEPTH, spram_count
from cssnn.hw.learn import LearnMem
from cssnn.hw.memmap import ORDERS, AccelParams, Sel, layer_layout
from cssnn.hw.params import CoreParams, index_lane_layout
from cssnn.sw.mapping.image import place_network
from cssnn.sw.mapping.requirements import DoesNotFit, requirements
from cssnn.sw.mapping.sizing import default_walk, params_for, pow2_at_least
from cssnn.sw.spec.network import SpikingNetwork

__all__ = ["board_params", "estimate", "check_estimate", "check_synth", "memories",
           "ram_blocks", "RESOURCE_NAMES", "LOGIC_FILL"]


#: What each report resource is, in words.
RESOURCE_NAMES = {
    "ICESTORM_LC": "logic cells", "ICESTORM_RAM": "block RAMs", "ICESTORM_SPRAM": "SPRAMs",
    "ICESTORM_DSP": "DSPs", "TRELLIS_COMB": "LUT4s", "TRELLIS_FF": "flip-flops", "DP16KD": "block RAMs",
    "MULT18X18D": "multipliers", "TRELLIS_RAMW": "distributed-RAM write ports", "SB_IO": "I/Os",
}

#: Largest logic fill the automatic lane choice accepts (estimate), leaving room for routing and for
#: later additions; an explicit ``lanes`` is only held to the device's size. 0.85 until the batch link
#: (protocol 4) took the digits network's 2-lane iCEBreaker build to 87.2 % (estimate 86.5 %), which
#: still meets 30 MHz (32.75 MHz post-route); 1 lane would halve its compute.
LOGIC_FILL = 0.87

# RAM primitive geometries: (depth, width) configurations.
_EBR_ICE40 = ((256, 16), (512, 8), (1024, 4), (2048, 2))          # SB_RAM40_4K, 4 kbit
_DP16KD = ((512, 36), (1024, 18), (2048, 9), (4096, 4), (8192, 2), (16384, 1))  # 18 kbit
#: On ECP5, yosys puts memories this shallow into distributed RAM (TRELLIS_DPR16X4), not DP16KD.
ECP5_LUTRAM_MAX_DEPTH = 64
#: Memories this small (bits, or this shallow) become flip-flops rather than a block RAM.
SMALL_MEMORY_BITS = 256
SMALL_MEMORY_DEPTH = 16


def ram_blocks(family: str, width: int, depth: int, *, masked: bool = False, lane: int | None = None) -> int:
    """Block RAMs for a ``width`` x ``depth`` memory (0 if it goes to logic or distributed RAM).
    ``masked``: written a lane at a time (iCE40: only the 256 x 16 mode has a bit mask); ``lane``: the
    width of such a lane. As yosys does, a 16-bit slice of an iCE40 memory that lies within one lane
    needs no mask and takes the best mode; only slices across lanes need the 256 x 16 mode."""
    if width <= 0 or depth <= 0 or width * depth <= SMALL_MEMORY_BITS or depth <= SMALL_MEMORY_DEPTH:
        return 0
    if family == "ice40" and masked and lane:
        total = 0
        for lo in range(0, width, 16):
            hi = min(lo + 16, width)
            if lo // lane == (hi - 1) // lane:     # within one lane: any mode, on this slice alone
                total += min(math.ceil((hi - lo) / w) * math.ceil(depth / d) for d, w in _EBR_ICE40)
            else:
                total += math.ceil(depth / 256)
        return total
    if family == "ice40":
        modes = _EBR_ICE40[:1] if masked else _EBR_ICE40
    elif family == "ecp5":
        if depth <= ECP5_LUTRAM_MAX_DEPTH:
            return 0
        modes = _DP16KD
    else:
        raise ValueError(f"no RAM model for the {family!r} family")
    return min(math.ceil(width / w) * math.ceil(depth / d) for d, w in modes)


#: Bytes the host link queues in each direction on a board (:class:`~cssnn.hw.link.HostLink`'s
#: ``fifo_depth``): a block RAM each, room for six digits INFER requests sent ahead.
LINK_FIFO_DEPTH = 512


#: Logic the batch link added (INFER, SETUP, two :class:`~cssnn.hw.link.fifo.ByteFIFO`): measured on the
#: digits network's iCEBreaker build, 4,250 -> 4,602 LC (yosys alone: 649 -> 925 LUT4 for the link).
LINK_BATCH_LOGIC = 320

#: Logic of the waves order on the iCE40 over the chain order's (the controller's own-step register,
#: the FIFO's wider pointers): measured on the digits network's iCEBreaker build, 4,639 -> 4,675 LC.
#: On the ECP5 it was within the noise (12,423 -> 12,435 LUT4).
WAVES_LOGIC_ICE40 = 36

#: Logic of the lane walk per lane (a walker, an event queue, a bank's row register and read-address
#: select, the sign through the accumulate stage): measured on the digits network's ULX3S build with
#: ``--walk lanes``, 16 lanes: 12,500 -> 14,441 LUT4.
LANE_WALK_LOGIC = 121


def memories(ap: AccelParams, *, max_payload: int = 256, table_ram: str | None = None,
             fifo_depth: int = LINK_FIFO_DEPTH) -> list[dict]:
    """The design's memories (accelerator and host link with a ``max_payload``-byte buffer and
    ``fifo_depth``-byte queues, the layer table in block RAM if ``table_ram`` is ``"block"``):
    ``name``, ``width``, ``depth``, ``masked``
    (lane writes; ``lane``: their width), ``copies`` (one per extra read port), ``kind`` ("block",
    "spram", "forced": block RAM whatever its size, "small fifo": block RAM on the iCE40 only)."""
    from cssnn.hw.link.wire import IDENTIFY_BYTES

    p = ap.core
    n = p.lanes
    ev = p.index_bits + 2 + ap.layer_bits  # routed event: index, neg, end, source layer
    lane = ap.elem_bits  # a memory word is N lanes
    walk = p.walk == "lanes"   # a synapse bank and an event queue per lane
    out = [
        {"name": "synapse", "width": (1 if walk else n) * lane(Sel.SYNAPSE), "depth": p.synapse_rows,
         "masked": not walk, "copies": n if walk else 1, "kind": p.synapse_ram},
        {"name": "state", "width": n * lane(Sel.STATE), "depth": p.groups, "masked": True, "copies": 1,
         "lane": lane(Sel.STATE)},
        {"name": "accumulator", "width": lane(Sel.ACC), "depth": p.acc_words, "masked": False, "copies": n},  # N banks
        {"name": "bias", "width": n * lane(Sel.BIAS), "depth": p.groups, "masked": True, "copies": 1,
         "lane": lane(Sel.BIAS)},
        *({"name": f"index {name}", "width": Shape.cast(f.shape).width, "depth": p.neurons, "masked": False, "copies": 1,
           "kind": "forced"} for name, f in index_lane_layout(p)),   # one memory per field, block RAM (IndexStore)
        # the router's HeadFIFOs: a register head, then a SyncFIFOBuffered (whose output register holds one)
        {"name": "loopback FIFO", "width": ev, "depth": max(1, ap.fifo_depth - 2), "masked": False, "copies": 1},
        {"name": "tap FIFO", "width": ev, "depth": max(1, ap.tap_depth - 2), "masked": False, "copies": 1},
        {"name": "layer table", "width": layer_layout(p).size, "depth": ap.max_layers, "masked": False,
         "copies": 1, "kind": "forced" if table_ram == "block" else "block"},
        *({"name": "lane queues", "width": p.row_bits + p.count_bits + 1, "depth": LANE_QUEUE - 1, "masked": False,
           "copies": n, "kind": "small fifo"},) * walk,
        # measured: yosys puts the core's 8-word spike-word FIFO into one iCE40 block RAM
        {"name": "word FIFO", "width": p.group_bits + 2 * n + 1, "depth": WORD_FIFO_DEPTH - 1, "masked": False,
         "copies": 1, "kind": "small fifo"},
        {"name": "host link buffer", "width": 8, "depth": max_payload + IDENTIFY_BYTES, "masked": False, "copies": 1},
        *({"name": f"host link {d} FIFO", "width": 8, "depth": fifo_depth - 1, "masked": False, "copies": 1}
          for d in ("rx", "tx") if fifo_depth),   # SyncFIFOBuffered: one entry is its output register
    ]
    if ap.learn is not None:   # the learning engine: one memory per LearnMem, TABLE as two
        lp = ap.learn
        for mem in LearnMem:
            depth = lp.max_weight + 1 if mem == LearnMem.TABLE else lp.depth(mem)
            out.append({"name": f"learning {mem.name.lower()}", "width": lp.elem_bits(mem), "depth": max(2, depth),
                        "masked": False, "copies": 2 if mem == LearnMem.TABLE else 1})
    for mem in out:
        mem.setdefault("kind", "block")
    return out


def _spram_count(p: CoreParams) -> int:
    return spram_count(p) if p.synapse_ram == "spram" else 0


def _blocks(mem: dict, family: str) -> int:
    if mem["kind"] == "forced" or (mem["kind"] == "small fifo" and family == "ice40"):
        modes = _EBR_ICE40 if family == "ice40" else _DP16KD   # block RAM whatever its size, in its best mode
        return min(math.ceil(mem["width"] / w) * math.ceil(mem["depth"] / d) for d, w in modes) * mem["copies"]
    return ram_blocks(family, mem["width"], mem["depth"], masked=mem["masked"], lane=mem.get("lane")) * mem["copies"]


def table_ram(ap: AccelParams, board) -> str | None:
    """Where ``board``'s build puts the layer table (:data:`~cssnn.hw.accelerator.TABLE_RAMS`): on the
    iCE40 block RAM (a few hundred logic cells fewer, docs/BOARDS.md), unless that makes the design
    need more block RAMs than the device has; elsewhere synthesis chooses."""
    board = get_board(board)
    if board.family != "ice40":
        return None
    blocks = estimate(ap, board, table_ram="block")[board.bram]
    return "block" if blocks <= board.resources.get(board.bram, blocks) else "logic"


def estimate(ap: AccelParams, board, *, max_payload: int = 256, table_ram: str | None = "auto") -> dict:
    """Resources the accelerator ``ap`` needs on ``board``, by report name, before synthesis:
    block RAMs and SPRAMs as the memory geometry dictates, logic from a per-lane model (calibrated on
    yosys/nextpnr results for these boards; see docs/BOARDS.md). Also ``detail``: the block RAMs per
    memory. ``table_ram``: where the layer table goes (default: where the board's build puts it,
    :func:`table_ram`)."""
    board = get_board(board)
    if table_ram == "auto":
        table_ram = globals()["table_ram"](ap, board)
    p = ap.core
    detail = {}
    for mem in memories(ap, max_payload=max_payload, table_ram=table_ram):
        if mem["kind"] == "spram":
            detail[mem["name"]] = {"SPRAM": _spram_count(p)}
            continue
        detail[mem["name"]] = {"BRAM": _blocks(mem, board.family)}
    needs = {board.bram: sum(d.get("BRAM", 0) for d in detail.values())}
    if board.spram:
        needs["ICESTORM_SPRAM"] = _spram_count(p)
    needs[board.logic] = estimate_logic(ap, board) + (_table_logic(ap) if table_ram == "logic" else 0)
    needs["detail"] = detail
    return needs


def _table_logic(ap: AccelParams) -> int:
    """Logic cells of the layer table in flip-flops and read muxes (iCE40; measured 322 LC for the
    digits network's 4 x 45-bit table)."""
    return int(1.8 * layer_layout(ap.core).size * ap.max_layers)


def estimate_logic(ap: AccelParams, board) -> int:
    """Logic estimate (LCs on iCE40, LUT4s on ECP5): a fixed part (host link, UART, controller, router,
    counters, step control) plus a per-lane datapath that grows with the lane's widths. Calibrated on
    the digits network (iCE40UP5K: 3090 / 3651 / 4889 LCs for 1 / 2 / 4 lanes after packing; ECP5:
    14170 LUT4s for 16 lanes), and on the iCE40 again for the sparse lists (the digits network and a
    784-256-10, within 2%); the ECP5 part is now ~15% above the result (12,205 LUT4). Protocol 4's
    batch link (SETUP/INFER and the two FIFOs) added :data:`LINK_BATCH_LOGIC`, the waves order
    :data:`WAVES_LOGIC_ICE40` on the iCE40, the lane walk :data:`LANE_WALK_LOGIC` per lane."""
    board = get_board(board)
    p = ap.core
    lane = ap.elem_bits
    lane_bits = lane(Sel.SYNAPSE) + 2 * lane(Sel.ACC) + 2 * lane(Sel.STATE) + lane(Sel.BIAS)
    per_lane = 7.0 * lane_bits + 30
    fixed = 1900 + LINK_BATCH_LOGIC + 12 * p.counter_bits + 4 * (p.row_bits + p.index_bits + p.group_bits)
    if board.family == "ecp5":
        per_lane *= 1.2
    else:   # the sparse event path, the index and the overlapping steps (session 7 builds, 2 lanes: the
        # digits network 4,250 LC, a 784-256-10 5,100 LC with its layer table in logic)
        fixed += 35 * (p.index_bits + p.slot_bits + p.group_bits) - 235
        fixed += WAVES_LOGIC_ICE40 if ap.order == "waves" else 0
    if p.walk == "lanes":
        per_lane += LANE_WALK_LOGIC
    return int(fixed + p.lanes * per_lane)


def _what(board: Board, resource: str) -> str:
    return f"{RESOURCE_NAMES.get(resource, resource)} ({resource})"


def check_estimate(needs: dict, board, *, what: str = "the network", logic_fill: float = 1.0) -> None:
    """Raise :class:`DoesNotFit` if a RAM resource in ``needs`` (:func:`estimate`) exceeds the board's,
    or the logic estimate exceeds ``logic_fill`` of the device's logic. The message names every
    resource that runs out, RAMs first, with what uses them."""
    board = get_board(board)
    over = []
    for res in (board.bram, "ICESTORM_SPRAM"):
        used, have = needs.get(res, 0), board.resources.get(res, 0)
        if used > have:
            key = "SPRAM" if res == "ICESTORM_SPRAM" else "BRAM"
            users = ", ".join(f"{name} {d[key]}" for name, d in needs.get("detail", {}).items() if d.get(key))
            over.append((used, res, have, f" ({users})" if users else ""))
    used, have = needs.get(board.logic, 0), board.resources.get(board.logic, 0)
    if used > have * logic_fill:
        limit = "" if logic_fill >= 1 else f", of which the automatic lane choice uses at most {logic_fill:.0%}"
        over.append((used, board.logic, have, limit))
    if over:
        parts = [f"{'about ' * (res == board.logic)}{used} {_what(board, res)}, the {board.device} has {have}{extra}"
                 for used, res, have, extra in over]
        raise DoesNotFit(f"{what} needs " + "; and ".join(parts) + f" (board {board.name})")


#: yosys cell types -> report resources, per family.
_SYNTH_CELLS = {
    "ice40": {"SB_RAM40_4K": "ICESTORM_RAM", "SB_SPRAM256KA": "ICESTORM_SPRAM", "SB_MAC16": "ICESTORM_DSP"},
    "ecp5": {"DP16KD": "DP16KD", "PDPW16KD": "DP16KD", "MULT18X18D": "MULT18X18D"},
}


def synth_needs(cells: dict, board) -> dict:
    """Resources implied by yosys cell counts: RAM primitives one to one; on iCE40 logic cells about
    LUT4s + carries (nextpnr packs a LUT, a carry and a flip-flop per LC, but a carry whose LUT does
    something else needs its own: within ~3% of the packed count on these designs), at least the
    flip-flops; on ECP5 LUT4s + 2 per CCU2C carry cell + 4 per distributed-RAM cell."""
    board = get_board(board)
    needs = {}
    for cell, res in _SYNTH_CELLS[board.family].items():
        if cells.get(cell):
            needs[res] = needs.get(res, 0) + cells[cell]
    if board.family == "ice40":
        luts = cells.get("SB_LUT4", 0) + cells.get("SB_CARRY", 0)
        ffs = sum(v for k, v in cells.items() if k.startswith("SB_DFF"))
        needs["ICESTORM_LC"] = max(luts, ffs)
    else:
        needs["TRELLIS_COMB"] = cells.get("LUT4", 0) + 2 * cells.get("CCU2C", 0) + 4 * cells.get("TRELLIS_DPR16X4", 0)
        needs["TRELLIS_FF"] = cells.get("TRELLIS_FF", 0)
    return needs


def check_synth(cells: dict, board) -> dict:
    """After synthesis: raise :class:`DoesNotFit` if the cells (yosys ``stat``) need more of a resource
    than the board has (:func:`synth_needs`); return the needs."""
    board = get_board(board)
    needs = synth_needs(cells, board)
    for res, used in needs.items():
        have = board.resources.get(res)
        if have is not None and used > have:
            raise DoesNotFit(f"after synthesis the design needs {'about ' * (res == board.logic)}{used} "
                             f"{_what(board, res)}, the {board.device} has {have}")
    return needs


def _free_depth(board: Board, width: int, depth: int, *, spram: bool = False, masked: bool = True) -> int:
    """``depth`` rounded up to what the memory's RAM primitives hold anyway: whole SPRAMs, or whole
    block RAMs in the configuration that needs the fewest (memories that go to logic or distributed
    RAM are rounded to a power of two)."""
    if spram:
        return -(-depth // SPRAM_DEPTH) * SPRAM_DEPTH
    blocks = ram_blocks(board.family, width, depth, masked=masked)
    if not blocks:
        return pow2_at_least(depth)
    modes = (_EBR_ICE40[:1] if masked else _EBR_ICE40) if board.family == "ice40" else _DP16KD
    best = min(modes, key=lambda m: (math.ceil(width / m[1]) * math.ceil(depth / m[0]), -m[0]))
    return math.ceil(depth / best[0]) * best[0]


def board_params(net: SpikingNetwork, board, *, lanes: int | None = None, synapse_ram: str | None = None,
                 free_depths: bool = True, order: str | None = None, walk: str | None = None) -> AccelParams:
    """The :class:`AccelParams` to build for ``net`` on ``board`` (see the module docstring).

    ``lanes``: force a lane count (default: the largest of ``board.lanes`` whose estimate fits);
    ``order``: force the evaluation order (default: ``"waves"`` if it fits with that lane count, else
    ``"chain"``); ``walk``: force the list walk (default: with block RAM
    :func:`~cssnn.sw.mapping.sizing.default_walk`'s choice if it fits: banks of one lane fill block
    RAMs less well, else ``"rows"``); ``synapse_ram``: force ``"block"`` or
    ``"spram"`` (default: the board's); ``free_depths``: round
    depths up to the RAM primitives' free depth. Raises :class:`DoesNotFit` naming the resource
    that runs out (for the smallest lane count tried) or the reason the network cannot run at all."""
    board = get_board(board)
    ram = synapse_ram or board.synapse_ram
    if ram == "spram" and not board.spram:
        raise DoesNotFit(f"the {board.device} has no SPRAM: use synapse_ram='block'")
    candidates = [lanes] if lanes is not None else list(board.lanes)
    orders = ORDERS[::-1] if order is None else (order,)   # waves first: faster, when it fits
    error = None
    for n in candidates:
        if walk:
            walks = (walk,)
        elif ram == "block":   # the lanes walk where they gain, else rows; rows where the banks do not fit
            walks = tuple(dict.fromkeys((_default_walk(net, n), "rows")))
        else:
            walks = ("rows",)
        for w, o in itertools.product(walks, orders):
            try:
                ap = _sized(net, board, n, ram, free_depths, o, w)
                last = w == walks[-1] and o == orders[-1]
                fill = 1.0 if (lanes is not None or n == candidates[-1]) and last else LOGIC_FILL
                check_estimate(estimate(ap, board), board, what=f"the network with {n} lane{'s' * (n > 1)}",
                               logic_fill=fill)
                return ap
            except DoesNotFit as e:
                error = e
    raise error


def _default_walk(net: SpikingNetwork, lanes: int) -> str:
    try:
        return default_walk(lanes, requirements(net, lanes))
    except ValueError:   # DoesNotFit: _sized names it
        return "rows"


def _sized(net: SpikingNetwork, board: Board, lanes: int, ram: str, free_depths: bool, order: str,
           walk: str) -> AccelParams:
    try:
        ap = params_for(net, lanes=lanes, pow2_depths=False, order=order, walk=walk)
    except ValueError as e:  # DoesNotFit, or parameters no core can have
        raise DoesNotFit(str(e)) from None
    core = ap.core
    rows, words = core.synapse_rows, core.groups
    if free_depths:
        banks = 1 if core.walk == "lanes" else lanes   # lanes per synapse memory
        rows = _free_depth(board, banks * ap.elem_bits(Sel.SYNAPSE), rows, spram=ram == "spram")
        words = _free_depth(board, lanes * ap.elem_bits(Sel.STATE), words)

    def sized(words):
        try:
            c = dataclasses.replace(core, synapse_rows=rows, neurons=words * lanes, synapse_ram=ram,
                                    acc_words=min(pow2_at_least(core.acc_words), words))
        except ValueError as e:
            raise DoesNotFit(str(e)) from None
        # Room for the self-test's tiny network (cssnn.boards.sanity) in every bitstream: T up to 7,
        # 4 layer-table entries, its 8-6-3 layers in the loopback FIFO. A few flip-flops.
        return dataclasses.replace(ap, core=c, timestep_bits=max(ap.timestep_bits, 3), max_layers=max(ap.max_layers, 4),
                                   fifo_depth=max(ap.fifo_depth, ap.loopback_entries([8, 6])))

    # more words are free in the state memory's blocks, but not always in the index memory's: keep
    # them only if they cost no block RAM
    out = sized(words)
    exact = sized(core.groups)
    if estimate(out, board)[board.bram] > estimate(exact, board)[board.bram]:
        out = exact
    place_network(net, out.core)  # the widths and depths must hold the network
    return out
