"""Batch inference at the link's limit: ``python -m cssnn.bench.link [--samples 200] [--json]``.

Each board (iCEBreaker, ULX3S) runs as a virtual board (:class:`~cssnn.boards.virtual.VirtualBoard`:
the board's logic in Verilator with its UART at the real bit timing, behind a pseudo-terminal), at
its default baud rate and at 115200. The host is the real driver over pyserial's ``SerialTransport``:
``Accelerator.infer_batch(xs, counters=False)``, the digits network's test samples as INFER
requests sent ahead of their replies, every class and logit checked against the golden model.

Figures are in **simulated board time** (clock cycles / the board's clock): from the first start bit
of the batch (the board waits, its clock frozen, until it arrives) to the last stop bit of the last
reply. Against two limits:

- **link**: the line's byte rate (the UART's real bit rate, clock / divisor, over 10 bits per byte:
  8N1) over the bytes per inference of the busier direction (the UART is full duplex);
- **compute**: the board's clock over the cycles one inference takes (RUN_CYCLES, start to done).

``efficiency`` is inferences/s over the lower limit (the target is 85 %). Round trips per batch are
counted from the driver's requests: one stream of INFER requests (the reply window was set when the
network was loaded), i.e. the host waits once, whatever the batch size.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from cssnn.bench import run
from cssnn.boards.virtual import VirtualBoard
from cssnn.sw.host.accelerator import Accelerator
from cssnn.sw.host.compare import compare_with_golden
from cssnn.sw.host.protocol import DEFAULT_BAUD, SerialTransport
from cssnn.verif.netgen import digits_network

__all__ = ["measure", "main", "BOARDS", "BAUDS", "TARGET"]

BOARDS = ("icebreaker", "ulx3s-85f")
BAUDS = (DEFAULT_BAUD, 115200)
TARGET = 0.85
#: Bits on the line per byte (8N1).
BITS_PER_BYTE = 10


def _wait_frozen(vb: VirtualBoard, timeout_s: float = 120.0) -> dict:
    """The board's status once its clock stands still (nothing in flight)."""
    t0 = time.monotonic()
    while True:
        s = vb.status()
        if s["frozen"] or time.monotonic() - t0 > timeout_s:
            return s
        time.sleep(0.05)


def measure(board: str, baud: int, samples: int, *, logits: bool = True) -> dict:
    """One board at one baud rate: the digits batch of ``samples`` test samples (see the module docstring)."""
    net, xs = digits_network(6)
    xs = xs[:samples]
    with VirtualBoard(net, board, baud=baud) as vb:
        # the serial timeout must exceed the board's frame timeout in wall time: the simulation is slower
        with Accelerator(SerialTransport(vb.port, baudrate=vb.baud, timeout=2.0)) as acc:
            s0 = _wait_frozen(vb)
            load_before = dict(acc.client.stats)
            acc.load(net)
            s1 = _wait_frozen(vb)
            load_bytes = sum(acc.client.stats[k] - load_before[k] for k in ("bytes_sent", "bytes_received"))
            cycles = statistics.median(acc.infer(x).cycles for x in xs[:3])
            s2 = _wait_frozen(vb)
            before = dict(acc.client.stats)
            batch = acc.infer_batch(xs, counters=False, logits=logits)
            s3 = vb.status()
            delta = {k: acc.client.stats[k] - before[k] for k in before}
            exact = compare_with_golden(net, xs, batch, membrane_bits=acc.params.core.membrane_bits).bit_exact
    seconds = (s3["last_tx_end"] - s2["cycles"]) / vb.clk_hz
    sent, received = delta["bytes_sent"] / len(xs), delta["bytes_received"] / len(xs)
    line_baud = vb.clk_hz / vb.divisor   # the rate the divisor makes (ULX3S at 3 Mbaud: 33 clocks, +1.0 %)
    link_limit = line_baud / BITS_PER_BYTE / max(sent, received)
    compute_limit = vb.clk_hz / cycles
    ips = len(xs) / seconds
    return {
        "board": board, "baud": baud, "line_baud": line_baud, "clock_hz": vb.clk_hz, "divisor": vb.divisor,
        "samples": len(xs),
        "logits": logits, "bit_exact": exact, "inferences_per_second": ips,
        "bytes_per_inference": sent + received, "bytes_sent_per_inference": sent,
        "bytes_received_per_inference": received, "cycles_per_inference": cycles,
        "link_limit": link_limit, "compute_limit": compute_limit,
        "efficiency": ips / min(link_limit, compute_limit), "board_seconds": seconds,
        "requests": delta["requests"], "retries": delta["retries"], "round_trips": 1,
        "load_board_seconds": (s1["last_tx_end"] - s0["cycles"]) / vb.clk_hz, "load_bytes": load_bytes,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--samples", type=int, default=200, help="digits test samples at the default baud (default 200)")
    ap.add_argument("--slow-samples", type=int, default=40, help="samples at 115200 baud (default 40)")
    ap.add_argument("--boards", default=",".join(BOARDS), help=f"comma-separated (default {','.join(BOARDS)})")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    rows = [measure(b, baud, args.samples if baud == DEFAULT_BAUD else args.slow_samples)
            for b in args.boards.split(",") for baud in BAUDS]
    report = {"rows": rows, "target": TARGET, "seconds": time.perf_counter() - t0}
    ok = all(r["bit_exact"] and r["efficiency"] >= TARGET for r in rows)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0 if ok else 1
    print("| board | baud | inferences/s | bytes / inference (sent + received) | link limit | compute limit | "
          "efficiency | bit-exact | network load |")
    print("|---|---:|---:|---:|---:|---:|---:|---|---:|")
    for r in rows:
        print(f"| {r['board']} | {r['baud']:,} | {r['inferences_per_second']:,.0f} | {r['bytes_per_inference']:.0f} "
              f"({r['bytes_sent_per_inference']:.0f} + {r['bytes_received_per_inference']:.0f}) | "
              f"{r['link_limit']:,.0f} | {r['compute_limit']:,.0f} | {r['efficiency']:.1%} | "
              f"{'yes' if r['bit_exact'] else 'NO'} | {r['load_bytes']:,} B, {1e3 * r['load_board_seconds']:.0f} ms |")
    print(f"\n{len(rows)} runs in {report['seconds']:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(run(main))
