"""The boards cssnn builds for: what each one has and how the accelerator is mapped onto it.

One :class:`Board` per supported board (:data:`BOARDS`, looked up with :func:`get_board`): the
amaranth-boards platform, the device's resources under the names nextpnr's ``--report`` uses (so
the fit check and the build report speak the same language), the clock input and the default
system clock made by the PLL, the lane counts that suit the device, where synapses go (block RAM or
the UP5K's SPRAM), the LEDs and the programmer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cssnn.extras import require

__all__ = ["Board", "BOARDS", "get_board", "board_names"]


@dataclass(frozen=True)
class Board:
    """A supported board.

    name            the ``--board`` name
    title           human-readable board and device
    platform_path   ``module:Class`` of the amaranth-boards platform
    family          ``"ice40"`` or ``"ecp5"`` (selects the PLL and the resource model)
    device          FPGA device as the platform names it
    clk_in_mhz      the board's oscillator
    default_mhz     system clock the PLL makes by default (a little under the measured Fmax)
    resources       available resources, by nextpnr report name (the ones the fit check uses)
    logic           report name of the logic cells (ICESTORM_LC / TRELLIS_COMB)
    bram            report name of the block RAMs (ICESTORM_RAM / DP16KD)
    lanes           lane counts to try, preferred first (the largest one that fits is used)
    synapse_ram     ``"spram"`` (UP5K) or ``"block"``
    leds            LED resources (name, number) used by the top: heartbeat, busy, then activity
    reset_button    (resource name, number) of a button that resets the design, or None
    programmer      programming tool, and the environment variable that overrides it
    synth_opts      extra options for yosys' ``synth_<family>`` (the iCE40 needs ``-device``: without
                    it abc9 maps for the HX's delays, and the UP5K's are much slower)
    nextpnr_opts    extra options for nextpnr (``--tmg-ripup``: the router also rips up nets for
                    timing, not only for congestion)
    """

    name: str
    title: str
    platform_path: str
    family: str
    device: str
    clk_in_mhz: float
    default_mhz: float
    resources: dict = field(default_factory=dict)
    logic: str = ""
    bram: str = ""
    lanes: tuple = (8,)
    synapse_ram: str = "block"
    leds: tuple = ()
    reset_button: tuple | None = None
    programmer: str = ""
    programmer_env: str = ""
    synth_opts: str = ""
    nextpnr_opts: tuple = ()

    def platform(self):
        """A fresh instance of the board's amaranth-boards platform."""
        module, cls = self.platform_path.split(":")
        return getattr(require(module, extra="boards", purpose=f"the {self.name} board"), cls)()

    @property
    def spram(self) -> int:
        return self.resources.get("ICESTORM_SPRAM", 0)


BOARDS: dict[str, Board] = {
    "icebreaker": Board(
        name="icebreaker", title="1BitSquared iCEBreaker (Lattice iCE40UP5K-SG48)",
        platform_path="amaranth_boards.icebreaker:ICEBreakerPlatform", family="ice40", device="iCE40UP5K",
        clk_in_mhz=12.0, default_mhz=30.0,
        resources={"ICESTORM_LC": 5280, "ICESTORM_RAM": 30, "ICESTORM_SPRAM": 4, "ICESTORM_DSP": 8,
                   "ICESTORM_PLL": 1, "SB_IO": 39, "SB_GB": 8},
        logic="ICESTORM_LC", bram="ICESTORM_RAM", lanes=(4, 2, 1), synapse_ram="spram",
        leds=(("led_g", 0), ("led_r", 0)), reset_button=("button", 0),
        programmer="iceprog", programmer_env="ICEPROG", synth_opts="-device u"),
    "ulx3s-85f": Board(
        name="ulx3s-85f", title="Radiona ULX3S (Lattice ECP5 LFE5U-85F-6BG381C)",
        platform_path="amaranth_boards.ulx3s:ULX3S_85F_Platform", family="ecp5", device="LFE5U-85F",
        clk_in_mhz=25.0, default_mhz=100.0,
        resources={"TRELLIS_COMB": 83640, "TRELLIS_FF": 83640, "DP16KD": 208, "MULT18X18D": 156,
                   "EHXPLLL": 4, "TRELLIS_RAMW": 10455},
        logic="TRELLIS_COMB", bram="DP16KD", lanes=(16, 8, 4, 2, 1), synapse_ram="block",
        leds=tuple(("led", i) for i in range(8)), reset_button=("button_fire", 0),
        programmer="openFPGALoader", programmer_env="OPENFPGALOADER", nextpnr_opts=("--tmg-ripup",)),
}


def board_names() -> list[str]:
    return list(BOARDS)


def get_board(name) -> Board:
    """The :class:`Board` called ``name`` (or ``name`` itself if it is a Board)."""
    if isinstance(name, Board):
        return name
    try:
        return BOARDS[str(name).lower()]
    except KeyError:
        raise ValueError(f"unknown board {name!r}: choose one of {', '.join(BOARDS)}") from None
