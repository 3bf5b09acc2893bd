// Verilator harness for cssnn_board (cssnn.boards.top.BoardLogic): a virtual board behind a pseudo-terminal.
//
// argv: MASTER_FD DIVISOR IDLE_CYCLES N_LEDS BUSY_LED
//   MASTER_FD    the pty master (inherited); a client opens the slave (/dev/pts/N) like a serial port
//   DIVISOR      clocks per UART bit (BoardLogic.divisor)
//   IDLE_CYCLES  clocks with nothing in flight after which simulated time freezes
//   N_LEDS       LEDs whose toggles are counted; BUSY_LED the one that is high during an inference (-1: none)
//
// The clock runs freely. Every clock, uart_rx is driven by a model of the host's UART transmitter (8N1,
// LSB first, DIVISOR clocks per bit, back to back while bytes wait), fed by the bytes read from the pty,
// and uart_tx is sampled by a model of the host's UART receiver (start bit's falling edge, re-checked
// mid-bit, every bit sampled in its middle, a stop bit that reads 0 is a framing error); its bytes are
// written to the pty. The pty and the control pipe are polled every POLL_EVERY clocks (and when the
// transmitter runs out of bytes), so a clock costs one evaluation of the model.
//
// Time freezes when there is nothing to do: once no byte has waited or been on either line, the busy LED
// has been low and no reset has been held for IDLE_CYCLES clocks, the harness blocks in poll() until the
// host writes (or a control request comes), and no clock passes meanwhile. IDLE_CYCLES is longer than the
// host link's frame timeout, so a frame the host left half sent still gets its TIMEOUT reply.
//
// Control, on stdin/stdout (binary, little-endian); every request but 'Q' is answered with the status:
//   'T'                      status
//   'B' u32 n                hold rst high for n clocks (the board's reset button), then status
//   'F' u32 flip_ppm u32 drop_ppm u32 seed
//                            line faults from now on: each byte to the board has one random bit flipped with
//                            probability flip_ppm / 1e6, or is lost with probability drop_ppm / 1e6; then status
//   'Q'                      quit (nothing is printed); so do EOF on stdin, SIGTERM and SIGINT
// status: u64 cycles, rx_start (the clock the first start bit after an idle line was driven), last_tx_end
// (the clock the board's last stop bit ended), rx_bytes (sent to the board), tx_bytes (received from it),
// rx_flipped, rx_dropped, tx_framing_errors; u32 frozen (1: time stands still), u32 leds (their levels),
// u32 N_LEDS, then N_LEDS x u64 toggles.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <vector>

#include "Vcssnn_board.h"
#include "verilated.h"

static const uint64_t POLL_EVERY = 256;  // clocks between two polls of the pty and the control pipe
static const size_t MAX_PENDING = 1 << 20;  // bytes for the pty that no client reads: older ones are lost

static volatile sig_atomic_t stop_requested = 0;
static void on_signal(int) { stop_requested = 1; }

// The host's UART transmitter: the line into the board.
struct LineOut {
    uint32_t divisor;
    int bit = -1;  // -1: idle (line high); 0 start, 1-8 data LSB first, 9 stop
    uint32_t timer = 0;
    uint32_t frame = 0x3FF;
    bool busy() const { return bit >= 0; }
    int line() const { return bit < 0 ? 1 : (frame >> bit) & 1; }
    void start(uint8_t byte) {
        frame = (static_cast<uint32_t>(byte) << 1) | 0x200;
        bit = 0;
        timer = divisor;
    }
    // After a clock; true when a stop bit has just ended.
    bool advance() {
        if (bit < 0 || --timer) return false;
        if (++bit == 10) {
            bit = -1;
            return true;
        }
        timer = divisor;
        return false;
    }
};

// The host's UART receiver: the line out of the board.
struct LineIn {
    enum { IDLE, START, DATA, STOP, BREAK } state = IDLE;
    uint32_t divisor;
    uint32_t timer = 0;
    int bit = 0;
    uint8_t shreg = 0;
    bool busy() const { return state != IDLE; }
    // One clock's sample of the line: 1 when a byte is complete (in shreg), -1 on a framing error.
    int sample(int line) {
        switch (state) {
            case IDLE:
                if (!line) {  // the falling edge of a start bit (the line was high)
                    state = START;
                    timer = divisor / 2;
                }
                break;
            case START:
                if (!--timer) {
                    if (line) {
                        state = IDLE;  // a glitch
                    } else {
                        state = DATA;
                        bit = 0;
                        timer = divisor;
                    }
                }
                break;
            case DATA:
                if (!--timer) {
                    shreg = static_cast<uint8_t>((shreg >> 1) | (line << 7));
                    timer = divisor;
                    if (++bit == 8) state = STOP;
                }
                break;
            case STOP:
                if (!--timer) {
                    state = line ? IDLE : BREAK;
                    return line ? 1 : -1;
                }
                break;
            case BREAK:  // after a framing error, wait for an idle line
                if (line) state = IDLE;
                break;
        }
        return 0;
    }
};

// Line faults: a seeded xorshift64* generator.
struct Faults {
    uint32_t flip_ppm = 0, drop_ppm = 0;
    uint64_t state = 1;
    uint64_t next() {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        return state * 0x2545F4914F6CDD1DULL;
    }
    bool chance(uint32_t ppm) { return ppm && (next() >> 11) % 1000000 < ppm; }
};

static bool read_exact(int fd, void* buf, size_t n) {
    auto* p = static_cast<uint8_t*>(buf);
    while (n) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR && !stop_requested) continue;
        if (r <= 0) return false;
        p += r;
        n -= static_cast<size_t>(r);
    }
    return true;
}

static bool write_all(int fd, const void* buf, size_t n) {
    auto* p = static_cast<const uint8_t*>(buf);
    while (n) {
        ssize_t r = write(fd, p, n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return false;
        p += r;
        n -= static_cast<size_t>(r);
    }
    return true;
}

int main(int argc, char** argv) {
    if (argc != 6) {
        std::fprintf(stderr, "usage: %s MASTER_FD DIVISOR IDLE_CYCLES N_LEDS BUSY_LED\n", argv[0]);
        return 2;
    }
    const int master = std::atoi(argv[1]);
    const uint32_t divisor = static_cast<uint32_t>(std::strtoul(argv[2], nullptr, 10));
    const uint64_t idle_cycles = std::strtoull(argv[3], nullptr, 10);
    const uint32_t n_leds = static_cast<uint32_t>(std::strtoul(argv[4], nullptr, 10));
    const int busy_led = std::atoi(argv[5]);
    if (divisor < 2 || n_leds > 32 || busy_led >= static_cast<int>(n_leds)) {
        std::fprintf(stderr, "harness: bad arguments\n");
        return 2;
    }
    fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;  // no SA_RESTART: a blocked poll() or read() returns
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGINT, &sa, nullptr);
    signal(SIGPIPE, SIG_IGN);

    Verilated::commandArgs(1, argv);
    auto* top = new Vcssnn_board;
    LineOut out{divisor};
    LineIn in{};
    in.divisor = divisor;
    Faults faults;
    std::deque<uint8_t> rxq;      // bytes from the pty, waiting for the line
    std::vector<uint8_t> pending;  // bytes from the line, waiting for the pty
    uint64_t cycles = 0, quiet = 0, rx_start = 0, last_tx_end = 0;
    uint64_t rx_bytes = 0, tx_bytes = 0, rx_flipped = 0, rx_dropped = 0, framing_errors = 0;
    std::vector<uint64_t> toggles(n_leds, 0);
    uint32_t leds = 0;
    bool line_idle = true;  // the line to the board had nothing to send since its last byte
    bool reset = true;

    auto write_pty = [&]() {  // what the pty takes now; the rest waits for POLLOUT
        if (pending.size() > MAX_PENDING) pending.erase(pending.begin(), pending.end() - MAX_PENDING);
        if (pending.empty()) return;
        ssize_t r = write(master, pending.data(), pending.size());
        if (r > 0) pending.erase(pending.begin(), pending.begin() + r);
    };
    // One clock: the host's transmitter drives uart_rx before the rising edge, its receiver samples uart_tx
    // (and the LEDs) after it. True when the transmitter has just finished a byte.
    auto tick = [&]() {
        if (!out.busy()) {
            while (!rxq.empty()) {
                uint8_t byte = rxq.front();
                rxq.pop_front();
                if (faults.chance(faults.drop_ppm)) {
                    ++rx_dropped;
                    continue;
                }
                if (faults.chance(faults.flip_ppm)) {
                    byte ^= static_cast<uint8_t>(1u << (faults.next() >> 61));
                    ++rx_flipped;
                }
                if (line_idle) rx_start = cycles;
                line_idle = false;
                out.start(byte);
                ++rx_bytes;
                break;
            }
            if (!out.busy()) line_idle = true;
        }
        top->clk = 0;
        top->rst = reset;
        top->locked = 1;
        top->uart_rx = out.line();
        top->eval();
        top->clk = 1;
        top->eval();
        ++cycles;
        const uint32_t now = static_cast<uint32_t>(top->leds) & (n_leds == 32 ? ~0u : (1u << n_leds) - 1);
        for (uint32_t k = 0; k < n_leds; ++k) toggles[k] += ((now ^ leds) >> k) & 1;
        leds = now;
        const int got = in.sample(top->uart_tx);
        if (got > 0) {
            pending.push_back(in.shreg);
            write_pty();
            ++tx_bytes;
            last_tx_end = cycles + divisor - divisor / 2;
        } else if (got < 0) {
            ++framing_errors;
        }
        const bool finished = out.advance();
        const bool active = !rxq.empty() || out.busy() || in.busy() || reset ||
                            (busy_led >= 0 && ((leds >> busy_led) & 1));
        quiet = active ? 0 : quiet + 1;
        return finished;
    };
    auto read_pty = [&]() -> bool {  // false: no client can ever write again (the slave is gone)
        uint8_t buf[4096];
        for (;;) {
            ssize_t r = read(master, buf, sizeof buf);
            if (r > 0) {
                rxq.insert(rxq.end(), buf, buf + r);
                continue;
            }
            return r == 0 || errno == EAGAIN || errno == EINTR;
        }
    };
    auto status = [&]() -> bool {
        std::vector<uint64_t> words = {cycles, rx_start, last_tx_end, rx_bytes, tx_bytes, rx_flipped,
                                       rx_dropped, framing_errors};
        const uint32_t tail[3] = {quiet >= idle_cycles ? 1u : 0u, leds, n_leds};
        return write_all(1, words.data(), 8 * words.size()) && write_all(1, tail, sizeof tail) &&
               write_all(1, toggles.data(), 8 * toggles.size());
    };
    auto control = [&]() -> bool {  // false: quit
        uint8_t op;
        if (!read_exact(0, &op, 1) || op == 'Q') return false;
        if (op == 'B') {
            uint32_t n;
            if (!read_exact(0, &n, 4)) return false;
            reset = true;
            for (uint32_t i = 0; i < n; ++i) tick();
            reset = false;
        } else if (op == 'F') {
            uint32_t f[3];
            if (!read_exact(0, f, sizeof f)) return false;
            faults.flip_ppm = f[0];
            faults.drop_ppm = f[1];
            faults.state = 0x9E3779B97F4A7C15ULL ^ f[2];
        } else if (op != 'T') {
            std::fprintf(stderr, "harness: unknown request %d\n", op);
            return false;
        }
        return status();
    };

    for (int i = 0; i < 4; ++i) tick();  // power-on reset
    reset = false;
    cycles = quiet = 0;
    std::fill(toggles.begin(), toggles.end(), 0);
    bool poll_now = true;
    while (!stop_requested) {
        const bool frozen = quiet >= idle_cycles;
        if (frozen || poll_now || cycles % POLL_EVERY == 0) {
            pollfd fds[2] = {{master, static_cast<short>(POLLIN | (pending.empty() ? 0 : POLLOUT)), 0},
                             {0, POLLIN, 0}};
            const int r = poll(fds, 2, frozen ? 50 : 0);
            if (r < 0 && errno != EINTR) break;
            if (r > 0) {
                if ((fds[0].revents & (POLLIN | POLLHUP | POLLERR)) && !read_pty()) break;
                if (fds[0].revents & POLLOUT) write_pty();
                if (fds[1].revents && !control()) break;
            }
            if (frozen && rxq.empty()) continue;  // nothing arrived: time stays frozen
        }
        poll_now = tick() && rxq.empty();  // the line ran out of bytes: look for more at once
    }
    top->final();
    delete top;
    return 0;
}
