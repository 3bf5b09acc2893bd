# amaranth: UnusedElaboratable=no
"""Board targets: report parsing, PLL settings, sizing and the "does not fit" errors, the SPRAM
synapse memory against the block-RAM one, the board logic over its serial pins, the CLI, and one
real iCEBreaker bitstream build for the digits network (slow, run in CI)."""

import argparse
import json
import random
from dataclasses import replace

import pytest
from amaranth.back import rtlil
from amaranth.hdl import Module
from amaranth.sim import Simulator

from cssnn.boards.commands import register
from cssnn.boards.fit import LOGIC_FILL, board_params, check_estimate, check_synth, estimate, memories, ram_blocks
from cssnn.boards.pll import ecp5_pll, ice40_pll, pll_config
from cssnn.boards.program import ProgrammerMissing, program
from cssnn.boards.report import ReportError, parse_report, parse_yosys_stat
from cssnn.boards.sanity import SerialLineTransport, selftest, tiny_network
from cssnn.boards.targets import BOARDS, get_board
from cssnn.boards.top import BoardLogic, BoardTop, uart_divisor
from cssnn.hw.core.spram import SPRAM, SpramSynapseMemory, spram_count
from cssnn.hw.core.synapse import SynapseMemory
from cssnn.hw.params import CoreParams, spram_words
from cssnn.sw.mapping.requirements import DoesNotFit, check_core, requirements
from cssnn.sw.spec.network import save_network
from cssnn.verif.netgen import digits_network, mlp_784_256_10

# ---- nextpnr report parsing ---------------------------------------------------------------------

#: A trimmed nextpnr-ice40 ``--report`` (the real format: three segments of the critical path kept).
ICE40_REPORT = {
    "critical_paths": [
        {"from": "posedge clk", "to": "posedge clk", "path": [
            {"type": "clk-to-q", "delay": 1.39, "from": {"cell": "core.cfg_DFFLC", "port": "O", "loc": [9, 10]},
             "to": {"cell": "core.cfg_DFFLC", "port": "O", "loc": [9, 10]}},
            {"type": "routing", "delay": 2.85, "net": "logic.system.accelerator.core.cfg[48]",
             "sources": ["/work/main/hw/core/core.py:119"],
             "from": {"cell": "core.cfg_DFFLC", "port": "O", "loc": [9, 10]},
             "to": {"cell": "lane0_LC", "port": "I3", "loc": [5, 10]}},
            {"type": "logic", "delay": 0.87, "from": {"cell": "lane0_LC", "port": "I3", "loc": [5, 10]},
             "to": {"cell": "lane0_LC", "port": "O", "loc": [5, 10]}},
            {"type": "routing", "delay": 3.60, "net": "lane0_mem", "sources": [
                "/work/main/hw/core/neuron.py:74", "/share/ice40/arith_map.v:62.5-70.4"],
             "from": {"cell": "lane0_LC", "port": "O", "loc": [5, 10]},
             "to": {"cell": "argmax_DFFLC", "port": "D", "loc": [7, 15]}},
            {"type": "setup", "delay": 0.10, "from": {"cell": "argmax_DFFLC", "port": "D", "loc": [7, 15]},
             "to": {"cell": "argmax_DFFLC", "port": "D", "loc": [7, 15]}},
        ]},
        {"from": "<async>", "to": "posedge clk", "path": [
            {"type": "routing", "delay": 4.42, "net": "uart_rx", "sources": [],
             "from": {"cell": "io", "port": "D_IN_0", "loc": [0, 1]}, "to": {"cell": "sync", "port": "D", "loc": [1, 1]}},
        ]},
    ],
    "fmax": {"clk": {"achieved": 112.5, "constraint": 30.0}},
    "utilization": {
        "ICESTORM_LC": {"available": 5280, "used": 3651}, "ICESTORM_RAM": {"available": 30, "used": 9},
        "ICESTORM_SPRAM": {"available": 4, "used": 2}, "ICESTORM_DSP": {"available": 8, "used": 0},
        "SB_IO": {"available": 39, "used": 6},
    },
}


def test_parse_report_fmax_utilisation_and_critical_path(tmp_path):
    path = tmp_path / "report.json"
    path.write_text(json.dumps(ICE40_REPORT))
    r = parse_report(path)
    assert r["fmax_mhz"] == 112.5 and r["constraint_mhz"] == 30.0 and r["timing_met"] is True
    assert r["clock"] == "clk"
    assert r["utilization"]["ICESTORM_LC"] == {"used": 3651, "available": 5280}
    assert r["utilization"]["ICESTORM_SPRAM"] == {"used": 2, "available": 4}
    cp = r["critical_path"]
    assert cp["from"] == cp["to"] == "clk"
    assert cp["delay_ns"] == pytest.approx(1.39 + 2.85 + 0.87 + 3.60 + 0.10, abs=1e-3)
    assert cp["routing_ns"] == pytest.approx(6.45, abs=1e-3) and cp["logic_levels"] == 1
    assert cp["sources"] == ["hw/core/core.py:119", "hw/core/neuron.py:74"]  # techmap files are not design locations
    assert cp["start"] == "core.cfg_DFFLC" and cp["end"] == "argmax_DFFLC"
    assert len(r["critical_paths"]) == 2 and r["critical_paths"][1]["from"] == "<async>"


def test_parse_report_ecp5_clock_names_and_timing_failure():
    rep = json.loads(json.dumps(ICE40_REPORT))
    rep["fmax"] = {"$glbnet$cd_sync.clk": {"achieved": 87.0, "constraint": 100.0},
                   "$glbnet$clk25_0__i": {"achieved": 300.0, "constraint": 25.0}}
    for p in rep["critical_paths"]:
        p["from"] = p["from"].replace("clk", "cd_sync.clk")
        p["to"] = p["to"].replace("clk", "cd_sync.clk")
    r = parse_report(rep)
    assert r["clock"] == "cd_sync.clk" and r["fmax_mhz"] == 87.0 and r["timing_met"] is False
    assert r["critical_path"]["from"] == "cd_sync.clk"
    assert set(r["fmax"]) == {"cd_sync.clk", "clk25_0__i"}


def test_parse_report_errors(tmp_path):
    with pytest.raises(ReportError, match="no nextpnr report"):
        parse_report(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ReportError, match="not a JSON report"):
        parse_report(bad)
    with pytest.raises(ReportError, match="no 'utilization'"):
        parse_report({"fmax": {}})
    with pytest.raises(ReportError, match="malformed fmax"):
        parse_report({"utilization": {}, "fmax": {"clk": {"achieved": "x"}}})
    r = parse_report({"utilization": {"ICESTORM_LC": {"used": 1, "available": 2}}})
    assert r["fmax_mhz"] is None and r["critical_path"] is None


def test_parse_yosys_stat():
    text = "some log line\n" + json.dumps({"modules": {"\\cssnn": {"num_cells_by_type": {"SB_LUT4": 10, "SB_CARRY": 4}}}})
    assert parse_yosys_stat(text) == {"SB_LUT4": 10, "SB_CARRY": 4}
    assert parse_yosys_stat({"design": {"num_cells_by_type": {"LUT4": 3}}}) == {"LUT4": 3}
    with pytest.raises(ReportError):
        parse_yosys_stat("no json here")


# ---- clocks --------------------------------------------------------------------------------------

def test_pll_settings():
    c = ice40_pll(12, 30)
    assert c.f_out_mhz == 30.0 and c.params == {"DIVR": 0, "DIVF": 79, "DIVQ": 5, "FILTER_RANGE": 1}
    assert ice40_pll(12, 96).params == {"DIVR": 0, "DIVF": 63, "DIVQ": 3, "FILTER_RANGE": 1}  # icepll's answer
    for f in (17, 25, 33.3, 48, 100, 200):  # never above the request, f = fin (F+1) / ((R+1) 2^Q)
        p = ice40_pll(12, f).params
        got = 12 * (p["DIVF"] + 1) / ((p["DIVR"] + 1) * 2 ** p["DIVQ"])
        assert got == ice40_pll(12, f).f_out_mhz <= f + 1e-9 and got > 0.9 * f
    e = ecp5_pll(25, 100)
    assert e.f_out_mhz == 100.0 and 400 <= e.params["VCO_MHZ"] <= 800
    assert 25 / e.params["CLKI_DIV"] * e.params["CLKFB_DIV"] == 100.0
    assert pll_config("ecp5", 25, 125).f_out_mhz == 125.0
    assert ice40_pll(12, 13).params == {"BYPASS": True} and ice40_pll(12, 13).f_out_mhz == 12  # no PLL
    with pytest.raises(ValueError, match="16-275 MHz"):
        ice40_pll(12, 5)
    with pytest.raises(ValueError, match="no PLL model"):
        pll_config("gowin", 27, 50)


def test_uart_divisor_and_constructor_errors():
    assert uart_divisor(30e6, 115200) == 260
    with pytest.raises(ValueError):
        uart_divisor(1e6, 921600)  # divisor 1
    with pytest.raises(ValueError, match="baud"):
        uart_divisor(30e6, 0)
    ap = board_params(tiny_network(), "icebreaker", free_depths=False)
    with pytest.raises(TypeError, match="PLLConfig"):
        BoardTop("icebreaker", ap, ecp5_pll(25, 100))
    with pytest.raises(ValueError, match="unknown board"):
        get_board("arty")
    with pytest.raises(TypeError, match="AccelParams"):
        BoardLogic(ap.core, clk_hz=30e6)


# ---- sizing and "does not fit" ---------------------------------------------------------------

def test_ram_blocks_geometry():
    assert ram_blocks("ice40", 16, 256) == 1 and ram_blocks("ice40", 17, 256) == 2
    assert ram_blocks("ice40", 8, 512) == 1 and ram_blocks("ice40", 8, 512, masked=True) == 2
    assert ram_blocks("ice40", 4, 8) == 0  # tiny memories are flip-flops
    assert ram_blocks("ecp5", 144, 12800) == 100  # 512 x 36 mode: 4 wide, 25 deep
    assert ram_blocks("ecp5", 300, 32) == 0  # distributed RAM


def test_digits_fits_icebreaker_with_room_and_spram():
    net, _ = digits_network(6)
    ap = board_params(net, "icebreaker")
    b = get_board("icebreaker")
    assert ap.core.synapse_ram == "spram" and ap.core.synapse_rows % 16384 == 0 and spram_count(ap.core) <= 4
    assert ap.core.membrane_bits >= net.required_membrane_bits and ap.core.output_bits == net.required_output_bits
    est = estimate(ap, b)
    assert est["ICESTORM_RAM"] <= 0.6 * 30 and est["ICESTORM_LC"] <= LOGIC_FILL * 5280   # 2 RAMs: the link FIFOs
    ecp = board_params(net, "ulx3s-85f")
    assert ecp.core.lanes == 16 and ecp.core.synapse_ram == "block"
    # the evaluation order: waves where they fit (the ECP5), chain where their logic would pass the
    # iCE40's fill; forced, either
    assert (ap.order, ecp.order) == ("chain", "waves")
    assert ecp.fifo_depth == ecp.loopback_entries([64, 64, 32]) == 65 + 65 + 33 + 65
    assert board_params(net, "icebreaker", order="waves").order == "waves"
    assert estimate(replace(ap, order="waves"), b)["ICESTORM_LC"] > LOGIC_FILL * 5280
    # the list walk: rows on both (the iCE40's SPRAM holds whole rows; the dense network's lanes are
    # even, so on the ECP5 a bank and a queue per lane would cost logic for nothing); where a pruned
    # network's lanes are uneven, the ECP5 walks lanes; forced, either, or a one-line reason
    assert (ap.core.walk, ecp.core.walk) == ("rows", "rows")
    assert board_params(mlp_784_256_10(density=0.1), "ulx3s-85f").core.walk == "lanes"
    lanes = board_params(net, "ulx3s-85f", walk="lanes")
    assert lanes.core.walk == "lanes" and lanes.core.lanes == 16
    with pytest.raises(DoesNotFit, match="walk='lanes' needs synapse_ram='block'"):
        board_params(net, "icebreaker", walk="lanes", lanes=2)
    banks = {m["name"]: m for m in memories(lanes)}
    assert banks["synapse"]["copies"] == 16 and banks["lane queues"]["copies"] == 16


def test_mlp_784_does_not_fit_icebreaker_but_fits_ulx3s(tmp_path):
    net = mlp_784_256_10()
    with pytest.raises(DoesNotFit, match=r"26 SPRAMs \(ICESTORM_SPRAM\), the iCE40UP5K has 4"):
        board_params(net, "icebreaker")
    with pytest.raises(DoesNotFit, match=r"block RAMs \(ICESTORM_RAM\), the iCE40UP5K has 30"):
        board_params(net, "icebreaker", synapse_ram="block")
    ap = board_params(net, "ulx3s-85f")
    est = estimate(ap, "ulx3s-85f")
    assert est["DP16KD"] <= 208 and est["TRELLIS_COMB"] < 83640
    # a bank per lane fills the DP16KDs less well (13 of 18 bits): the dense layer walks rows
    assert ap.core.walk == "rows" and ap.core.lanes == 16
    with pytest.raises(DoesNotFit, match="block RAMs"):
        board_params(net, "ulx3s-85f", walk="lanes", lanes=16)
    # the build stops at the sizing step: no tool runs, no build directory
    from cssnn.boards.build import build

    with pytest.raises(DoesNotFit, match="SPRAM"):
        build(net, "icebreaker", tmp_path / "never")
    assert not (tmp_path / "never").exists()


def test_pruned_mlp_784_fits_icebreaker_with_short_lists():
    # issue 13: memory grows with the synapses that exist. 90% pruned, the 784-256-10 fits the UP5K's
    # 4 SPRAMs, and its index's row counts are as wide as its longest list needs (6 bits, not 9): with
    # dense-width counts it needs 32 of the 30 block RAMs.
    net = mlp_784_256_10(density=0.1)
    ap = board_params(net, "icebreaker")
    req = requirements(net, ap.core.lanes)
    assert ap.core.lanes == 1 and spram_count(ap.core) <= 4 and ap.order == "chain"   # waves: 8 more EBR
    assert ap.core.list_rows == req.list_rows < ap.core.layer_words and ap.core.count_bits == 6
    assert estimate(ap, "icebreaker")["ICESTORM_RAM"] == 30
    dense_counts = replace(ap, core=replace(ap.core, list_rows=ap.core.layer_words))
    assert estimate(dense_counts, "icebreaker")["ICESTORM_RAM"] == 32
    with pytest.raises(DoesNotFit, match="synapse list has 42 rows, more than the core's list_rows=41"):
        check_core(req, replace(ap.core, list_rows=41))


def test_check_estimate_and_check_synth_name_the_resource():
    b = get_board("icebreaker")
    with pytest.raises(DoesNotFit, match=r"needs 41 block RAMs \(ICESTORM_RAM\), the iCE40UP5K has 30 \(state 41\)"):
        check_estimate({"ICESTORM_RAM": 41, "ICESTORM_LC": 100, "detail": {"state": {"BRAM": 41}}}, b)
    with pytest.raises(DoesNotFit, match=r"about 5000 logic cells .* at most 85%"):
        check_estimate({"ICESTORM_LC": 5000}, b, logic_fill=0.85)
    check_estimate({"ICESTORM_LC": 5000}, b)  # fits the device itself
    with pytest.raises(DoesNotFit, match=r"after synthesis the design needs about 5600 logic cells"):
        check_synth({"SB_LUT4": 4600, "SB_CARRY": 1000, "SB_DFF": 100}, b)
    with pytest.raises(DoesNotFit, match=r"after synthesis the design needs 209 block RAMs \(DP16KD\)"):
        check_synth({"DP16KD": 209, "LUT4": 10}, "ulx3s-85f")
    assert check_synth({"SB_LUT4": 10, "SB_RAM40_4K": 3, "SB_SPRAM256KA": 2}, b) == {
        "ICESTORM_RAM": 3, "ICESTORM_SPRAM": 2, "ICESTORM_LC": 10}


# ---- SPRAM synapse memory ---------------------------------------------------------------------

def _compare_memories(p: CoreParams, cycles: int, seed: int, *, corrupt: bool = False) -> int:
    """Drive a block-RAM and an SPRAM synapse memory with the same random reads, writes and read
    enables; return the number of clocks compared. Read data are compared lane by lane except for a
    lane written in the clock of the last enabled read (the SPRAM's documented difference)."""
    m = Module()
    m.submodules.block = a = SynapseMemory(CoreParams(**{**p.__dict__, "synapse_ram": "block"}))
    m.submodules.spram = b = SynapseMemory(p)
    rng = random.Random(seed)
    wq = 2 ** (p.weight_bits - 1)
    hot = [rng.randrange(p.synapse_rows) for _ in range(6)]
    compared = [0]

    async def tb(ctx):
        defined = [True] * p.lanes
        for c in range(cycles):
            ra = rng.choice(hot) if rng.random() < 0.4 else rng.randrange(p.synapse_rows)
            wa = rng.choice(hot) if rng.random() < 0.6 else rng.randrange(p.synapse_rows)
            ren, we, wl = rng.random() < 0.7, rng.random() < 0.4, rng.randrange(p.lanes)
            w, mk = rng.randrange(-wq, wq), rng.randrange(2)
            for d in (a, b):
                ctx.set(d.read_addr, ra); ctx.set(d.read_en, ren); ctx.set(d.write_en, we)
                ctx.set(d.write_addr, wa); ctx.set(d.write_lane, wl)
                ctx.set(d.write_data.weight, w); ctx.set(d.write_data.mask, mk)
            if corrupt and c >= cycles // 2:  # a broken memory: from half-way on, writes flip a bit
                ctx.set(b.write_data.weight, w ^ 1)
            await ctx.tick()
            if ren:
                defined = [not (we and wl == k) for k in range(p.lanes)]
            for k in range(p.lanes):
                if defined[k]:
                    got_a = (ctx.get(a.read_data[k].weight), ctx.get(a.read_data[k].mask))
                    got_b = (ctx.get(b.read_data[k].weight), ctx.get(b.read_data[k].mask))
                    assert got_a == got_b, f"clock {c}, lane {k}: block RAM {got_a}, SPRAM {got_b}"
                    compared[0] += 1

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    return compared[0]


@pytest.mark.parametrize("p", [
    CoreParams(lanes=4, weight_bits=8, neurons=16, synapse_rows=64, synapse_ram="spram"),
    CoreParams(lanes=2, weight_bits=15, membrane_bits=20, acc_bits=16, neurons=16, synapse_rows=20000,
               synapse_ram="spram"),  # two SPRAMs deep and two wide per lane (15 + 3 + 1 = 19-bit lanes)
], ids=["4lanes-1bank", "2lanes-2banks-2words"])
def test_spram_synapse_memory_equals_block_ram(p):
    assert _compare_memories(p, 2500, seed=p.lanes) > 2500


def test_spram_comparison_can_fail():
    p = CoreParams(lanes=2, weight_bits=6, neurons=16, synapse_rows=8, synapse_ram="spram")
    with pytest.raises(AssertionError, match="block RAM"):
        _compare_memories(p, 400, seed=3, corrupt=True)


class _FakePlatform:
    def __init__(self, device):
        self.device = device


def test_spram_instance_on_ultraplus_only():
    p = CoreParams(lanes=2, weight_bits=8, neurons=16, synapse_rows=20000, synapse_ram="spram")
    assert spram_count(p) == 4 and spram_words(p) == 1            # 8 + 3 + 1 bits: one SPRAM word per lane
    text = rtlil.convert(SpramSynapseMemory(p), platform=_FakePlatform("iCE40UP5K"))
    assert text.count("SB_SPRAM256KA") >= 4 and "$mem" not in text
    with pytest.raises(ValueError, match="only on iCE40 UltraPlus"):
        rtlil.convert(SpramSynapseMemory(p), platform=_FakePlatform("LFE5U-85F"))
    wide = CoreParams(lanes=2, weight_bits=8, neurons=2048, synapse_rows=100, synapse_ram="spram")
    assert spram_words(wide) == 2 and spram_count(wide) == 4       # 8 + 10 + 1 bits: two SPRAM words per lane
    with pytest.raises(ValueError, match="synapse_ram must be one of"):
        CoreParams(synapse_ram="dram")
    with pytest.raises(TypeError, match="model"):
        SPRAM(model="yes")


# ---- the board logic over its serial pins --------------------------------------------------------

def test_board_logic_selftest_over_uart_pins():
    """The UARTs, the System and the LEDs of a board, in simulation, reached bit by bit through the
    serial pins: ECHO, IDENTIFY, load the tiny network, four inferences equal to the golden model."""
    ap = board_params(tiny_network(), "icebreaker", free_depths=False)
    r = selftest(SerialLineTransport(ap, divisor=4))
    assert r["ok"] and r["echo"] and not r["mismatches"], r
    assert r["identity"]["lanes"] == ap.core.lanes and r["identity"]["synapse_ram"] == "spram"
    assert all(c > 0 for c in r["cycles"])


def test_board_tops_elaborate_with_pll_and_pins(tmp_path):
    """Both boards' tops elaborate on their amaranth-boards platforms (PLL primitive with the computed
    dividers, UART and LED pins, the clock constraint) without running any tool."""
    net = tiny_network()
    for name, prim, pins in (("icebreaker", "SB_PLL40_PAD", ("uart_0__rx", "led_g_0")),
                             ("ulx3s-85f", "EHXPLLL", ("uart_0__rx", "led_7"))):
        board = get_board(name)
        ap = board_params(net, board, free_depths=False)
        pll = pll_config(board.family, board.clk_in_mhz, board.default_mhz)
        plan = board.platform().build(BoardTop(board, ap, pll), name="cssnn", build_dir=str(tmp_path / name),
                                      do_build=False)
        il = plan.files["cssnn.il"]
        assert prim in il
        constraints = plan.files["cssnn.pcf" if board.family == "ice40" else "cssnn.lpf"]
        assert all(pin in constraints for pin in pins)
        assert str(int(pll.f_out_mhz)) in constraints  # the system clock's frequency constraint


# ---- programming, CLI ------------------------------------------------------------------------------

def test_program_without_programmer_says_so(tmp_path, monkeypatch):
    (tmp_path / "cssnn.bin").write_bytes(b"\0" * 16)
    monkeypatch.setenv("ICEPROG", "cssnn-no-such-iceprog")
    with pytest.raises(ProgrammerMissing, match="programmer 'cssnn-no-such-iceprog' is not installed"):
        program("icebreaker", tmp_path)
    with pytest.raises(FileNotFoundError, match="build it first"):
        program("ulx3s-85f", tmp_path)


def _parser():
    parser = argparse.ArgumentParser(prog="cssnn")
    register(parser.add_subparsers(dest="command", required=True))
    return parser


def test_cli_build_does_not_fit_is_one_line_before_any_tool(tmp_path):
    path = tmp_path / "mlp.npz"
    save_network(mlp_784_256_10(), path)
    args = _parser().parse_args(["build", str(path), "--board", "icebreaker", "--out", str(tmp_path / "b"), "--json"])
    with pytest.raises(DoesNotFit) as e:  # a ValueError: cssnn's main prints it as one line, exit 2
        args.func(args)
    assert "\n" not in str(e.value) and "iCE40UP5K has 4" in str(e.value)
    assert not (tmp_path / "b").exists()
    assert set(BOARDS) == {"icebreaker", "ulx3s-85f"}
    with pytest.raises(SystemExit):
        _parser().parse_args(["build", str(path), "--board", "arty"])


# ---- the real build (CI: one iCEBreaker bitstream) ---------------------------------------------

@pytest.fixture(scope="module")
def icebreaker_digits(tmp_path_factory):
    from cssnn.boards.build import build

    net, _ = digits_network(6)
    out = tmp_path_factory.mktemp("icebreaker")
    return build(net, "icebreaker", out, samples=3, retime=False)


@pytest.mark.slow
def test_icebreaker_digits_bitstream_and_report(icebreaker_digits):
    r = icebreaker_digits
    from pathlib import Path

    bit = Path(r["bitstream"])
    assert bit.suffix == ".bin" and bit.stat().st_size == 104090  # an iCE40UP5K image
    stored = json.loads((bit.parent / "build.json").read_text())
    assert stored["fmax_mhz"] == r["fmax_mhz"]
    util = r["utilization"]
    for res in ("ICESTORM_LC", "ICESTORM_RAM", "ICESTORM_SPRAM", "SB_IO"):
        assert 0 < util[res]["used"] <= util[res]["available"], (res, util[res])
    # room to spare: the estimate is 1-2 % low, and yosys' technology mapping of the flattened design
    # moves by about +-10 LC with unrelated changes (protocol 6: core and link synthesised alone
    # unchanged, -2 LUT4; the whole design 4,639 -> 4,647 LC)
    assert util["ICESTORM_LC"]["used"] <= (LOGIC_FILL + 0.015) * 5280
    assert util["ICESTORM_SPRAM"]["used"] == r["params"]["core"]["lanes"]  # synapses in SPRAM
    assert util["ICESTORM_PLL"]["used"] == 1
    assert r["fmax_mhz"] > 0 and r["timing_met"] == (r["fmax_mhz"] >= r["clock_mhz"])
    # the path is named by its nets; HDL source lines only when its nets carry them (a path through
    # LUTs that ABC merged and renamed, e.g. inside the host link's FSM, has none)
    cp = r["critical_path"]
    assert cp["nets"] and isinstance(cp["sources"], list) and cp["delay_ns"] > 0
    assert r["bit_exact"] is True and r["cycles_per_inference"] > 0
    f_run = min(r["clock_mhz"], r["fmax_mhz"])  # the bitstream's clock, or Fmax if that misses timing
    assert r["latency_us_per_inference"] == pytest.approx(r["cycles_per_inference"] / f_run, rel=1e-3)


@pytest.mark.slow
def test_icebreaker_digits_fmax_target(icebreaker_digits):
    """The issue's UP5K target (seed 1; seeds 2 and 3 give 30.8 and 30.2 MHz, docs/BOARDS.md)."""
    assert icebreaker_digits["fmax_mhz"] >= 30


def test_nextpnr_packing_overflow_is_does_not_fit():
    from cssnn.boards.build import _does_not_fit

    msg = _does_not_fit("Failed to expand region (0, 0) |_> (25, 31) of 5639 ICESTORM_LCs")
    assert msg == "the design needs 5639 ICESTORM_LCs after packing, more than the device has"
    assert _does_not_fit("Unable to place cell 'x'") and _does_not_fit("timing failed") is None


def test_learning_engine_memories_are_in_the_estimate():
    from dataclasses import replace

    from cssnn.boards.fit import estimate, memories
    from cssnn.hw.learn import LearnParams
    from cssnn.hw.memmap import AccelParams

    ap = AccelParams()
    with_engine = replace(ap, learn=LearnParams(inputs=64, neurons=64))
    names = {m["name"] for m in memories(with_engine)} - {m["name"] for m in memories(ap)}
    assert names == {"learning syn", "learning len", "learning theta", "learning time", "learning table",
                     "learning result"}
    assert estimate(with_engine, "ulx3s-85f")["DP16KD"] > estimate(ap, "ulx3s-85f")["DP16KD"]
