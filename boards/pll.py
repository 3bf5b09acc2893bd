"""PLL settings for the boards' system clock: iCE40 ``SB_PLL40`` and ECP5 ``EHXPLLL``.

:func:`pll_config` searches the divider space the way icestorm's ``icepll`` and nextpnr's
``ecppll`` do and returns the highest output frequency that does not exceed the request (a clock
above the request could miss timing). The frequency limits are the data-sheet ranges those tools use.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["PLLConfig", "pll_config", "ice40_pll", "ecp5_pll"]


@dataclass(frozen=True)
class PLLConfig:
    """A PLL setting: ``f_in_mhz`` -> ``f_out_mhz`` (achieved), ``params`` the primitive's dividers."""

    family: str
    f_in_mhz: float
    f_out_mhz: float
    params: dict = field(default_factory=dict)


def ice40_pll(f_in: float, f_req: float) -> PLLConfig:
    """``SB_PLL40_*`` with SIMPLE feedback: f_out = f_in * (DIVF+1) / ((DIVR+1) * 2^DIVQ), with
    f_pfd = f_in/(DIVR+1) in [10, 133] MHz, f_vco in [533, 1066] MHz, f_out in [16, 275] MHz.
    Below 16 MHz the PLL is bypassed (``params == {"BYPASS": True}``): the board clock itself, if it is
    not above the request."""
    if not 10 <= f_in <= 133:
        raise ValueError(f"an iCE40 PLL needs a 10-133 MHz input, not {f_in} MHz")
    if f_in <= f_req < 16:
        return PLLConfig("ice40", f_in, f_in, {"BYPASS": True})
    if not 16 <= f_req <= 275:
        raise ValueError(f"an iCE40 PLL makes 16-275 MHz (or the {f_in:g} MHz board clock without it), not "
                         f"{f_req:g} MHz")
    best = None
    for divr in range(16):
        f_pfd = f_in / (divr + 1)
        if not 10 <= f_pfd <= 133:
            continue
        for divf in range(128):
            f_vco = f_pfd * (divf + 1)
            if not 533 <= f_vco <= 1066:
                continue
            for divq in range(1, 7):
                f_out = f_vco / 2**divq
                if f_out > f_req + 1e-9 or f_out < 16:
                    continue
                if best is None or f_out > best[0] + 1e-9:
                    best = (f_out, divr, divf, divq, f_pfd)
    if best is None:
        raise ValueError(f"no iCE40 PLL setting makes at most {f_req} MHz from {f_in} MHz")
    f_out, divr, divf, divq, f_pfd = best
    filt = next(i for i, lim in enumerate((17, 26, 44, 66, 101), start=1) if f_pfd < lim) if f_pfd < 101 else 6
    return PLLConfig("ice40", f_in, f_out, {"DIVR": divr, "DIVF": divf, "DIVQ": divq, "FILTER_RANGE": filt})


def ecp5_pll(f_in: float, f_req: float) -> PLLConfig:
    """``EHXPLLL`` with CLKOP feedback: f_out = f_in / CLKI_DIV * CLKFB_DIV, f_vco = f_out * CLKOP_DIV
    in [400, 800] MHz, f_pfd >= 3.125 MHz, f_out in [3.125, 400] MHz."""
    if not 8 <= f_in <= 400:
        raise ValueError(f"an ECP5 PLL needs an 8-400 MHz input, not {f_in} MHz")
    if not 3.125 <= f_req <= 400:
        raise ValueError(f"an ECP5 PLL makes 3.125-400 MHz, not {f_req} MHz")
    best = None
    for clki_div in range(1, 129):
        f_pfd = f_in / clki_div
        if f_pfd < 3.125:
            break
        for clkfb_div in range(1, 81):
            f_out = f_pfd * clkfb_div
            if f_out > f_req + 1e-9:
                break
            for clkop_div in range(1, 129):
                f_vco = f_out * clkop_div
                if 400 <= f_vco <= 800:  # highest f_out first; then the VCO nearest mid-range
                    key = (round(f_out, 6), -abs(f_vco - 600))
                    if best is None or key > best[0]:
                        best = (key, f_out, clki_div, clkfb_div, clkop_div, f_vco)
    if best is None:
        raise ValueError(f"no ECP5 PLL setting makes at most {f_req} MHz from {f_in} MHz")
    _, f_out, clki_div, clkfb_div, clkop_div, f_vco = best
    return PLLConfig("ecp5", f_in, f_out, {"CLKI_DIV": clki_div, "CLKFB_DIV": clkfb_div, "CLKOP_DIV": clkop_div,
                                          "CLKOP_CPHASE": clkop_div // 2, "CLKOP_FPHASE": 0, "VCO_MHZ": f_vco})


def pll_config(family: str, f_in: float, f_req: float) -> PLLConfig:
    if family == "ice40":
        return ice40_pll(f_in, f_req)
    if family == "ecp5":
        return ecp5_pll(f_in, f_req)
    raise ValueError(f"no PLL model for the {family!r} family")
