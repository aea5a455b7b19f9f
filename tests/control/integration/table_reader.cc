// A minimal table reader for the control suite's integration tests: maps
// the table, registers a reader slot (online) and passes a quiescent state
// every millisecond, as a dataplane lcore does between bursts, until
// SIGTERM/SIGINT. SIGSTOP makes it a stalled reader.
//
// Usage: podfwd-test-table-reader TABLE   (prints "ready <slot>" once registered)
#include <csignal>
#include <cstdio>
#include <ctime>

#include "lpm/reader.h"

namespace {
volatile std::sig_atomic_t stop = 0;
void on_signal(int) { stop = 1; }
}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s TABLE\n", argv[0]);
        return 2;
    }
    std::signal(SIGTERM, on_signal);
    std::signal(SIGINT, on_signal);
    auto view = podfwd::lpm::TableView::open(argv[1]);
    if (!view) {
        std::fprintf(stderr, "table %s: %s\n", argv[1], view.error().message.c_str());
        return 1;
    }
    auto slot = view->register_reader();
    if (!slot) {
        std::fprintf(stderr, "register_reader: %s\n", slot.error().message.c_str());
        return 1;
    }
    std::printf("ready %u\n", slot->index());
    std::fflush(stdout);
    const timespec tick{0, 1'000'000};
    while (!stop) {
        (void)view->lookup(0x0a000001u);
        slot->quiescent();
        nanosleep(&tick, nullptr);
    }
    return 0;
}
