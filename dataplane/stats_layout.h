// The layout of the dataplane's counter segment, /dev/shm/<table>.stats.<pid>
// (format: dataplane/app/README.md). Separate from the segment's owner
// (dataplane/app/stats_segment.h) and free of DPDK, so that readers such as
// podfwdctl build without the dataplane binary.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "dataplane/counters.h"

namespace podfwd::dp {

inline constexpr std::uint64_t kStatsMagic = 0x5441545344574650;   // "PFWDSTAT" little-endian
inline constexpr std::uint32_t kStatsVersion = 1;

enum class RunState : std::uint32_t { kStarting = 0, kWaitingForTable = 1, kRunning = 2, kStopped = 3 };

struct StatsHeader {
    std::uint64_t magic;
    std::uint32_t version;
    std::uint32_t lcore_count;       // entries after the header
    std::uint32_t entry_size;        // bytes per entry, a multiple of 64
    std::uint32_t counters_offset;   // of LcoreCounters inside an entry
    std::uint32_t roles;             // array lengths inside LcoreCounters
    std::uint32_t actions;
    std::uint32_t drops;
    std::uint32_t pid;
    std::atomic<std::uint32_t> state;   // RunState
    std::uint32_t reserved0;
    std::uint64_t start_unix_ns;
    std::uint64_t reserved1;
};
static_assert(sizeof(StatsHeader) == 64);
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);

// One per forwarding lcore; only that lcore writes it.
struct alignas(64) LcoreStats {
    std::uint32_t lcore_id;
    std::uint32_t queue;            // RX/TX queue index on both ports
    std::uint64_t reserved;
    std::uint64_t idle_sleeps;      // back-off sleeps taken
    std::uint64_t busy_polls;       // loop iterations that received something
    LcoreCounters counters;
};
static_assert(offsetof(LcoreStats, counters) == 64);
static_assert(sizeof(LcoreStats) % 64 == 0);

}  // namespace podfwd::dp
