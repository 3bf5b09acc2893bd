r"""The board top: the accelerator behind a UART, with a PLL clock, a clean reset and status LEDs.

::

     clk pin --> PLL (SB_PLL40_PAD / EHXPLLL) --> sync clock  ----------------------------+
                          | LOCK                                                          |
     reset button --> [2-FF sync] --> power-on/reset timer --> sync reset (released      |
                                                               synchronously, >= 20 us    |
                                                               after lock: iCE40 BRAMs)   |
     uart rx pin --> UARTRx --bytes--> System (HostLink + AcceleratorGateware) --bytes--> UARTTx --> uart tx pin
                                          | busy
     LEDs: heartbeat (~1 Hz) | busy | rx activity | tx activity | PLL locked   (as many as the board has)

:class:`BoardLogic` is everything inside the clock domain (UARTs, the System, the LEDs) and has no
platform dependency, so it simulates as is (``tests/test_boards.py`` talks to it over its serial
pins). :class:`BoardTop` adds the platform part: pins, PLL and reset.
"""

from __future__ import annotations

from amaranth.hdl import ClockDomain, ClockSignal, Elaboratable, Instance, Module, ResetSignal, Signal
from amaranth.lib import io, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from cssnn.boards.fit import LINK_FIFO_DEPTH, table_ram
from cssnn.boards.pll import PLLConfig
from cssnn.boards.targets import get_board
from cssnn.hw.memmap import AccelParams
from cssnn.sw.host.protocol import DEFAULT_BAUD

__all__ = ["BoardLogic", "BoardTop", "uart_divisor", "DEFAULT_BAUD"]


#: Largest baud-rate error the UART tolerates (the receiver samples mid-bit over 10 bits).
MAX_BAUD_ERROR = 0.02
#: Reset is held this long after the PLL locks (iCE40 block RAMs read zeros for ~3 us after configuration).
RESET_DELAY_S = 20e-6
#: LED activity pulses are stretched to this long, so that single bytes are visible.
ACTIVITY_S = 0.03


def uart_divisor(clk_hz: float, baud: int) -> int:
    """Clocks per UART bit (:func:`cssnn.hw.link.uart.divisor_for`); ``ValueError`` if the baud rate cannot
    be made within 2%."""
    from cssnn.hw.link.uart import divisor_for

    if not isinstance(baud, int) or isinstance(baud, bool) or baud <= 0:
        raise ValueError(f"baud must be a positive int, not {baud!r}")
    return divisor_for(clk_hz, baud, tolerance=MAX_BAUD_ERROR)


class _Stretch(Elaboratable):
    """``o`` is high for ``cycles`` clocks after any clock with ``i`` high (from one clock later)."""

    def __init__(self, cycles: int):
        self.cycles = max(1, int(cycles))
        self.i = Signal()
        self.o = Signal()

    def elaborate(self, platform):
        m = Module()
        count = Signal(range(self.cycles + 1))
        # ``i`` is registered first: it is a handshake deep in the UART/link logic, and the counter's
        # reset is far from there (on the ECP5 that route was the critical path)
        i_q = Signal()
        m.d.sync += i_q.eq(self.i)
        with m.If(i_q):
            m.d.sync += count.eq(self.cycles)
        with m.Elif(count != 0):
            m.d.sync += count.eq(count - 1)
        m.d.comb += self.o.eq(count != 0)
        return m


class BoardLogic(wiring.Component):
    """UART receiver and transmitter, the :class:`~cssnn.hw.system.System`, and the status LEDs.

    Ports: ``uart_rx`` (serial line in, idle high), ``uart_tx`` (serial line out), ``locked`` (shown
    on an LED), ``leds`` (``n_leds`` bits: heartbeat, busy, rx activity, tx activity, locked).
    ``clk_hz``: the sync clock; ``baud``: the serial rate (the divisor is ``round(clk_hz / baud)``).
    ``table_ram``: where the layer table goes (:data:`~cssnn.hw.accelerator.TABLE_RAMS`). Extra keywords
    go to the host link (:class:`~cssnn.hw.link.HostLink`); its ``fifo_depth`` defaults to
    :data:`~cssnn.boards.fit.LINK_FIFO_DEPTH` (full duplex: bytes arriving while it executes or
    replies are queued, not dropped)."""

    def __init__(self, ap: AccelParams, *, clk_hz: float, baud: int = DEFAULT_BAUD, n_leds: int = 2,
                 table_ram: str | None = None, **link_kwargs):
        if not isinstance(ap, AccelParams):
            raise TypeError(f"ap must be an AccelParams, not {ap!r}")
        if not isinstance(n_leds, int) or n_leds < 0:
            raise ValueError(f"n_leds must be a non-negative int, not {n_leds!r}")
        if not clk_hz > 0:
            raise ValueError(f"clk_hz must be positive, not {clk_hz!r}")
        self.ap, self.clk_hz, self.baud = ap, float(clk_hz), baud
        self.divisor = uart_divisor(self.clk_hz, baud)
        self.n_leds = n_leds
        self.table_ram = table_ram
        self.link_kwargs = {"fifo_depth": LINK_FIFO_DEPTH, **link_kwargs}
        super().__init__({"uart_rx": In(1, init=1), "uart_tx": Out(1, init=1), "locked": In(1, init=1),
                          "leds": Out(max(1, n_leds))})

    def elaborate(self, platform):
        from cssnn.hw.link.uart import UARTRx, UARTTx
        from cssnn.hw.system import System

        m = Module()
        m.submodules.system = system = System(self.ap, table_ram=self.table_ram, **self.link_kwargs)
        m.submodules.uart_rx = urx = UARTRx(self.divisor)
        m.submodules.uart_tx = utx = UARTTx(self.divisor)
        m.d.comb += [urx.rx.eq(self.uart_rx), self.uart_tx.eq(utx.tx)]  # UARTRx synchronises the pin
        wiring.connect(m, urx.o, system.rx)
        wiring.connect(m, system.tx, utx.i)

        heartbeat = Signal(max(1, int(self.clk_hz).bit_length() - 1))  # MSB period ~1-2 s
        m.d.sync += heartbeat.eq(heartbeat + 1)
        m.submodules.rx_act = rx_act = _Stretch(ACTIVITY_S * self.clk_hz)
        m.submodules.tx_act = tx_act = _Stretch(ACTIVITY_S * self.clk_hz)
        m.d.comb += [rx_act.i.eq(urx.o.valid & urx.o.ready), tx_act.i.eq(utx.i.valid & utx.i.ready)]
        status = [heartbeat[-1], system.busy, rx_act.o, tx_act.o, self.locked]
        for k in range(min(self.n_leds, len(status))):
            m.d.comb += self.leds[k].eq(status[k])
        return m


class BoardTop(Elaboratable):
    """The whole design for ``board``: :class:`BoardLogic` plus PLL, reset and pins.

    ``pll``: the :class:`~cssnn.boards.pll.PLLConfig` of the system clock (its ``f_out_mhz`` is the
    clock the UART divisor and the timing constraint use)."""

    def __init__(self, board, ap: AccelParams, pll: PLLConfig, *, baud: int = DEFAULT_BAUD, **link_kwargs):
        self.board = board = get_board(board)
        if not isinstance(pll, PLLConfig) or pll.family != board.family:
            raise TypeError(f"pll must be a PLLConfig for the {board.family} family, not {pll!r}")
        self.ap, self.pll, self.baud = ap, pll, baud
        self.clk_hz = pll.f_out_mhz * 1e6
        self.logic = BoardLogic(ap, clk_hz=self.clk_hz, baud=baud, n_leds=len(board.leds),
                                table_ram=table_ram(ap, board), **link_kwargs)

    # ---- clock and reset ----
    def _pll(self, m: Module, platform, clk_out: Signal, lock: Signal) -> None:
        board, pll = self.board, self.pll
        clk_res = platform.request(platform.default_clk, dir="-")
        if pll.params.get("BYPASS"):  # the board clock as it is (a global buffer is inserted by the tools)
            m.submodules.clk_buf = clk_buf = io.Buffer("i", clk_res)
            m.d.comb += [clk_out.eq(clk_buf.i), lock.eq(1)]
        elif board.family == "ice40":
            p = pll.params
            m.submodules.pll = Instance(
                "SB_PLL40_PAD",
                p_FEEDBACK_PATH="SIMPLE", p_PLLOUT_SELECT="GENCLK",
                p_DIVR=p["DIVR"], p_DIVF=p["DIVF"], p_DIVQ=p["DIVQ"], p_FILTER_RANGE=p["FILTER_RANGE"],
                i_PACKAGEPIN=clk_res.io, i_RESETB=1, i_BYPASS=0,
                o_PLLOUTGLOBAL=clk_out, o_LOCK=lock)
        elif board.family == "ecp5":
            p = pll.params
            m.submodules.clk_buf = clk_buf = io.Buffer("i", clk_res)
            m.submodules.pll = Instance(
                "EHXPLLL",
                a_FREQUENCY_PIN_CLKI=f"{pll.f_in_mhz:g}", a_FREQUENCY_PIN_CLKOP=f"{pll.f_out_mhz:g}",
                a_ICP_CURRENT="12", a_LPF_RESISTOR="8", a_MFG_ENABLE_FILTEROPAMP="1", a_MFG_GMCREF_SEL="2",
                p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
                p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA", p_OUTDIVIDER_MUXB="DIVB",
                p_OUTDIVIDER_MUXC="DIVC", p_OUTDIVIDER_MUXD="DIVD",
                p_CLKI_DIV=p["CLKI_DIV"], p_CLKOP_ENABLE="ENABLED", p_CLKOP_DIV=p["CLKOP_DIV"],
                p_CLKOP_CPHASE=p["CLKOP_CPHASE"], p_CLKOP_FPHASE=p["CLKOP_FPHASE"],
                p_FEEDBK_PATH="CLKOP", p_CLKFB_DIV=p["CLKFB_DIV"],
                i_RST=0, i_STDBY=0, i_CLKI=clk_buf.i, o_CLKOP=clk_out, i_CLKFB=clk_out,
                i_PHASESEL0=0, i_PHASESEL1=0, i_PHASEDIR=1, i_PHASESTEP=1, i_PHASELOADREG=1,
                i_PLLWAKESYNC=0, i_ENCLKOP=0, o_LOCK=lock)
        else:  # pragma: no cover - targets only name the two families
            raise ValueError(f"no PLL for the {board.family!r} family")

    def elaborate(self, platform):
        if platform is None:
            raise ValueError("BoardTop needs a platform (simulate BoardLogic instead)")
        board = self.board
        m = Module()
        clk = Signal()
        lock = Signal()
        self._pll(m, platform, clk, lock)
        platform.add_clock_constraint(clk, self.clk_hz)

        # Reset: a timer in a reset-less domain on the same clock releases the sync reset RESET_DELAY_S
        # after the PLL locks (and after the reset button is let go); release is synchronous.
        m.domains.por = ClockDomain("por", reset_less=True, local=True)
        m.domains.sync = ClockDomain("sync")
        m.d.comb += [ClockSignal("por").eq(clk), ClockSignal("sync").eq(clk)]
        lock_s = Signal()
        m.submodules.lock_sync = FFSynchronizer(lock, lock_s, o_domain="por")
        hold = ~lock_s
        if board.reset_button is not None:
            m.submodules.btn_buf = btn = io.Buffer("i", platform.request(*board.reset_button, dir="-"))
            btn_s = Signal()
            m.submodules.btn_sync = FFSynchronizer(btn.i, btn_s, o_domain="por")
            hold = hold | btn_s
        delay = max(2, int(RESET_DELAY_S * self.clk_hz))
        timer = Signal(range(delay + 1))
        ready = Signal()
        with m.If(hold):
            m.d.por += [timer.eq(0), ready.eq(0)]
        with m.Elif(timer == delay):
            m.d.por += ready.eq(1)
        with m.Else():
            m.d.por += timer.eq(timer + 1)
        m.d.comb += ResetSignal("sync").eq(~ready)

        m.submodules.logic = logic = self.logic
        uart = platform.request("uart", 0, dir="-")
        m.submodules.uart_rx_buf = rx_buf = io.Buffer("i", uart.rx)
        m.submodules.uart_tx_buf = tx_buf = io.Buffer("o", uart.tx)
        m.d.comb += [logic.uart_rx.eq(rx_buf.i), tx_buf.o.eq(logic.uart_tx), logic.locked.eq(lock_s)]
        for k, (name, number) in enumerate(board.leds):
            m.submodules[f"led_buf{k}"] = led = io.Buffer("o", platform.request(name, number, dir="-"))
            m.d.comb += led.o.eq(logic.leds[k])
        return m
