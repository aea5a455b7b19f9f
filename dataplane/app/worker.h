// The poll loop of one forwarding lcore: RX from its queue of both ports,
// the fast path, the exception path for its punts, TX by verdict; an
// adaptive sleep when idle. One lcore (queue 0) also runs the resolver
// (dataplane/resolver.h): ARP for next hops without a MAC, the packets held
// for them, the neighbour segment; the others hand it their unresolved
// packets and the uplink's ARP frames through a ring.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

#include "dataplane/app/neigh_segment.h"
#include "dataplane/app/stats_segment.h"
#include "dataplane/exception.h"
#include "dataplane/fastpath.h"
#include "dataplane/neighbour.h"
#include "lpm/reader.h"

struct rte_mempool;
struct rte_ring;

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
    // The resolver: `neighbours` is set on its lcore only, which publishes
    // there and takes ARP frames from `pool`. `to_resolver` (null with one
    // lcore): many producers (the other lcores), one consumer (the resolver's).
    NeighSegment* neighbours = nullptr;
    NeighbourConfig neighbour{};
    rte_mempool* pool = nullptr;
    rte_ring* to_resolver = nullptr;
    std::atomic<bool>* stop = nullptr;     // set by the signal handler, or by a worker that fails
    std::atomic<bool>* failed = nullptr;   // set when the worker cannot start
};

// lcore_function_t: runs until *stop; returns 0, or -1 if it could not start.
int worker_main(void* context);

}  // namespace podfwd::dp::app
