#include "dataplane/app/stats_segment.h"

#include <unistd.h>

#include <chrono>
#include <new>
#include <utility>

namespace podfwd::dp::app {

StatsSegment::StatsSegment(ShmSegment shm) noexcept
    : shm_(std::move(shm)), header_(static_cast<StatsHeader*>(shm_.base())),
      entries_(reinterpret_cast<LcoreStats*>(static_cast<std::byte*>(shm_.base()) + sizeof(StatsHeader))) {}

Result<StatsSegment> StatsSegment::create(const std::string& table, unsigned lcores) {
    auto shm = ShmSegment::create(table + ".stats." + std::to_string(getpid()),
                                  sizeof(StatsHeader) + lcores * sizeof(LcoreStats));
    if (!shm)
        return shm.error();
    void* base = shm->base();
    // The file is zero-filled; construct the objects in place. mmap returns
    // a page-aligned base, so the 64-byte alignment holds.
    auto* header = new (base) StatsHeader{};
    header->version = kStatsVersion;
    header->lcore_count = lcores;
    header->entry_size = sizeof(LcoreStats);
    header->counters_offset = offsetof(LcoreStats, counters);
    header->roles = kPortRoles;
    header->actions = static_cast<std::uint32_t>(Action::kCount);
    header->drops = static_cast<std::uint32_t>(Drop::kCount);
    header->pid = static_cast<std::uint32_t>(getpid());
    header->start_unix_ns = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count());
    auto* entries = reinterpret_cast<LcoreStats*>(static_cast<std::byte*>(base) + sizeof(StatsHeader));
    for (unsigned i = 0; i < lcores; ++i)
        new (&entries[i]) LcoreStats{};
    // Magic last: a reader that sees it sees a complete header.
    std::atomic_thread_fence(std::memory_order_release);
    header->magic = kStatsMagic;
    return StatsSegment(std::move(*shm));
}

}  // namespace podfwd::dp::app
