// The dataplane's counters in shared memory, so a CLI can read them while
// the lcores run: /dev/shm/<table>.stats.<pid>. The fast path counts straight
// into it (no copy, no lock); a reader may see a value one burst old.
// Format: dataplane/app/README.md; the structs: dataplane/stats_layout.h.
// Offsets only, no pointers, so a reader built from another binary (or
// Python) can parse it.
#pragma once

#include <cstddef>
#include <string>

#include "common/result.h"
#include "dataplane/app/shm_segment.h"
#include "dataplane/stats_layout.h"

namespace podfwd::dp::app {

class StatsSegment {
public:
    // Creates (replacing a stale one) and maps the segment; unlinks it when destroyed.
    static Result<StatsSegment> create(const std::string& table, unsigned lcores);

    const std::string& path() const noexcept { return shm_.path(); }
    unsigned lcores() const noexcept { return header_->lcore_count; }
    LcoreStats& lcore(unsigned i) noexcept { return entries_[i]; }
    void set_state(RunState s) noexcept { header_->state.store(static_cast<std::uint32_t>(s), std::memory_order_release); }

private:
    explicit StatsSegment(ShmSegment shm) noexcept;

    ShmSegment shm_;
    StatsHeader* header_ = nullptr;
    LcoreStats* entries_ = nullptr;
};

}  // namespace podfwd::dp::app
