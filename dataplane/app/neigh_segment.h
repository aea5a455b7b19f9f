// The neighbours the resolver learned, in shared memory for podfwd-control
// (a neighbour source: it writes the MACs into the next-hop records) and
// `podfwdctl neigh list`: /dev/shm/<table>.neigh.<pid>, laid out as
// dataplane/neigh_layout.h says, written under its sequence counter.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "common/result.h"
#include "dataplane/app/shm_segment.h"
#include "dataplane/neigh_layout.h"
#include "dataplane/neighbour.h"

namespace podfwd::dp::app {

class NeighSegment {
public:
    // Creates (replacing a stale one) and maps the segment with room for
    // `capacity` entries, published empty; unlinks it when destroyed.
    static Result<NeighSegment> create(const std::string& table, std::uint32_t capacity);

    const std::string& path() const noexcept { return shm_.path(); }
    // Rewrites the entries from the cache (at most the capacity). One
    // writer: the resolver's lcore. No allocation, no system call but the
    // clock read.
    void publish(const NeighbourCache& cache, std::uint64_t now_ns) noexcept;

private:
    explicit NeighSegment(ShmSegment shm) noexcept;

    ShmSegment shm_;
    NeighHeader* header_ = nullptr;
    NeighEntry* entries_ = nullptr;
};

}  // namespace podfwd::dp::app
