// The poll loop of one forwarding lcore: RX from its queue of both ports,
// the fast path, the exception path for its punts, TX by verdict; an
// adaptive sleep when idle.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

#include "dataplane/app/stats_segment.h"
#include "dataplane/exception.h"
#include "dataplane/fastpath.h"
#include "lpm/reader.h"

namespace podfwd::dp::app {

struct WorkerContext {
    const lpm::TableView* table = nullptr;
    NodeConfig config;
    std::array<std::uint16_t, kPortRoles> ports{};   // DPDK port id by PortRole
    std::uint16_t queue = 0;
    unsigned burst = 32;
    // ICMP errors per second and burst of this lcore's token bucket.
    std::uint32_t icmp_rate = ExceptionPath::kDefaultIcmpRate;
    std::uint32_t icmp_burst = ExceptionPath::kDefaultIcmpBurst;
    LcoreStats* stats = nullptr;
    std::atomic<bool>* stop = nullptr;     // set by the signal handler, or by a worker that fails
    std::atomic<bool>* failed = nullptr;   // set when the worker cannot start
};

// lcore_function_t: runs until *stop; returns 0, or -1 if it could not start.
int worker_main(void* context);

}  // namespace podfwd::dp::app
