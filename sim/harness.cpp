// Direct Verilator harness for cssnn_system: the host link's byte streams on stdin/stdout.
//
// The Python side (cssnn.sim.transports.VerilatorTransport) sends requests; all integers little-endian:
//   'S' u32 n, n bytes      queue bytes for the rx stream (one per clock while rx.ready)
//   'R' u64 timeout u32 quiet
//                           run until tx bytes arrived and then `quiet` clocks passed with no new
//                           tx byte and no rx byte pending, or `timeout` clocks passed with no tx
//                           byte at all; answer u64 total clocks, u32 n, n tx bytes
//   'C' u64 n               run n clocks; answer u64 total clocks, u32 n, n tx bytes
//   'Q'                     quit
// Verilator escapes the double underscore of Amaranth port names (rx__valid -> rx___05Fvalid).
// Simulated time only advances inside 'R' and 'C', so a slow host never changes what the design sees.
// Built with CSSNN_TRACE (and Verilator's --trace or --trace-fst), argv[1] names a waveform file: clock
// cycle c (counted from the end of reset) spans times 10c .. 10c+9 in it.
#include <cstdint>
#include <cstdio>
#include <deque>
#include <vector>

#include "Vcssnn_system.h"
#include "verilated.h"
#ifdef CSSNN_TRACE
#if CSSNN_TRACE == 2
#include "verilated_fst_c.h"
typedef VerilatedFstC Trace;
#else
#include "verilated_vcd_c.h"
typedef VerilatedVcdC Trace;
#endif
#endif

static bool read_exact(void* buf, size_t n) { return std::fread(buf, 1, n, stdin) == n; }

int main(int argc, char** argv) {
    Verilated::commandArgs(argc, argv);
    auto* top = new Vcssnn_system;
#ifdef CSSNN_TRACE
    Verilated::traceEverOn(true);
    auto* trace = new Trace;
    top->trace(trace, 99);
    trace->open(argc > 1 ? argv[1] : "cssnn.vcd");
    uint64_t stamp = 0;    // 10 per clock
    bool tracing = false;  // from the first clock after reset
#endif
    std::deque<uint8_t> rxq;
    std::vector<uint8_t> txb;
    uint64_t cycles = 0;

    // One clock: inputs are applied and outputs sampled while clk is low, the edge commits both
    // handshakes (the stream rule: a transfer happens at the edge where valid and ready are high).
    auto tick = [&]() {
        top->clk = 0;
        top->rx___05Fvalid = !rxq.empty();
        top->rx___05Fpayload = rxq.empty() ? 0 : rxq.front();
        top->tx___05Fready = 1;
        top->eval();
#ifdef CSSNN_TRACE
        if (tracing) trace->dump(stamp);
#endif
        const bool take = top->rx___05Fvalid && top->rx___05Fready;
        const bool give = top->tx___05Fvalid;
        const uint8_t byte = top->tx___05Fpayload;
        top->clk = 1;
        top->eval();
#ifdef CSSNN_TRACE
        if (tracing) {
            trace->dump(stamp + 5);
            stamp += 10;
        }
#endif
        if (take) rxq.pop_front();
        if (give) txb.push_back(byte);
        ++cycles;
    };
    auto answer = [&]() {
        uint32_t n = static_cast<uint32_t>(txb.size());
        std::fwrite(&cycles, 8, 1, stdout);
        std::fwrite(&n, 4, 1, stdout);
        if (n) std::fwrite(txb.data(), 1, n, stdout);
        std::fflush(stdout);
        txb.clear();
    };

    top->rst = 1;
    for (int i = 0; i < 4; ++i) tick();
    top->rst = 0;
    cycles = 0;
#ifdef CSSNN_TRACE
    tracing = true;
#endif

    for (;;) {
        int op = std::getchar();
        if (op == EOF || op == 'Q') break;
        if (op == 'S') {
            uint32_t n;
            if (!read_exact(&n, 4)) break;
            std::vector<uint8_t> buf(n);
            if (n && !read_exact(buf.data(), n)) break;
            rxq.insert(rxq.end(), buf.begin(), buf.end());
        } else if (op == 'R') {
            uint64_t timeout;
            uint32_t quiet;
            if (!read_exact(&timeout, 8) || !read_exact(&quiet, 4)) break;
            const uint64_t start = cycles;
            uint64_t last = cycles;
            for (;;) {
                const size_t before = txb.size();
                tick();
                if (txb.size() != before) last = cycles;
                if (!txb.empty() && rxq.empty() && cycles - last >= quiet) break;
                if (txb.empty() && cycles - start >= timeout) break;
            }
            answer();
        } else if (op == 'C') {
            uint64_t n;
            if (!read_exact(&n, 8)) break;
            for (uint64_t i = 0; i < n; ++i) tick();
            answer();
        } else {
            std::fprintf(stderr, "harness: unknown request %d\n", op);
            return 2;
        }
    }
    top->final();
#ifdef CSSNN_TRACE
    trace->close();
    delete trace;
#endif
    delete top;
    return 0;
}
