#include "dataplane/app/neigh_segment.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <new>
#include <utility>

namespace podfwd::dp::app {

namespace {

std::uint32_t age_ms(std::uint64_t ns) noexcept {
    return static_cast<std::uint32_t>(std::min<std::uint64_t>(ns / 1'000'000, UINT32_MAX));
}

std::uint64_t unix_ns() noexcept {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count());
}

}  // namespace

NeighSegment::NeighSegment(ShmSegment shm) noexcept
    : shm_(std::move(shm)), header_(static_cast<NeighHeader*>(shm_.base())),
      entries_(reinterpret_cast<NeighEntry*>(static_cast<std::byte*>(shm_.base()) + sizeof(NeighHeader))) {}

Result<NeighSegment> NeighSegment::create(const std::string& table, std::uint32_t capacity) {
    auto shm = ShmSegment::create(table + ".neigh." + std::to_string(getpid()),
                                  sizeof(NeighHeader) + std::size_t{capacity} * sizeof(NeighEntry));
    if (!shm)
        return shm.error();
    void* base = shm->base();
    auto* header = new (base) NeighHeader{};
    header->version = kNeighVersion;
    header->capacity = capacity;
    header->entry_size = sizeof(NeighEntry);
    header->pid = static_cast<std::uint32_t>(getpid());
    header->count = 0;
    header->published_unix_ns = unix_ns();
    header->seq.store(0, std::memory_order_relaxed);
    // Magic last: a reader that sees it sees a complete header.
    std::atomic_thread_fence(std::memory_order_release);
    header->magic = kNeighMagic;
    return NeighSegment(std::move(*shm));
}

void NeighSegment::publish(const NeighbourCache& cache, std::uint64_t now_ns) noexcept {
    const std::uint64_t seq = header_->seq.load(std::memory_order_relaxed);
    header_->seq.store(seq + 1, std::memory_order_relaxed);
    // The odd count is visible before any entry changes.
    std::atomic_thread_fence(std::memory_order_release);
    std::uint32_t n = 0;
    cache.for_each(now_ns, [&](const NeighbourInfo& info) {
        if (n == header_->capacity)
            return;
        NeighEntry& e = entries_[n++];
        e = NeighEntry{};
        e.ip = info.ip;
        e.state = static_cast<std::uint8_t>(info.state);
        std::copy(info.mac.begin(), info.mac.end(), e.mac);
        e.probes = info.probes;
        e.queued = info.queued;
        e.confirmed_age_ms = age_ms(info.confirmed_age_ns);
        e.used_age_ms = age_ms(info.used_age_ns);
    });
    header_->count = n;
    header_->published_unix_ns = unix_ns();
    header_->seq.store(seq + 2, std::memory_order_release);
}

}  // namespace podfwd::dp::app
