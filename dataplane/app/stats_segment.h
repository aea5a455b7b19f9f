// The dataplane's counters in shared memory, so a CLI can read them while
// the lcores run: /dev/shm/<table>.stats.<pid>. The fast path counts straight
// into it (no copy, no lock); a reader may see a value one burst old.
// Format: dataplane/app/README.md. Offsets only, no pointers, so a reader
// built from another binary (or Python) can parse it.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/result.h"
#include "dataplane/counters.h"

namespace podfwd::dp::app {

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

class StatsSegment {
public:
    // Creates (replacing a stale one) and maps the segment; unlinks it when destroyed.
    static Result<StatsSegment> create(const std::string& table, unsigned lcores);

    StatsSegment(StatsSegment&& other) noexcept;
    StatsSegment& operator=(StatsSegment&&) = delete;
    StatsSegment(const StatsSegment&) = delete;
    ~StatsSegment();

    const std::string& path() const noexcept { return path_; }
    unsigned lcores() const noexcept { return header_->lcore_count; }
    LcoreStats& lcore(unsigned i) noexcept { return entries_[i]; }
    void set_state(RunState s) noexcept { header_->state.store(static_cast<std::uint32_t>(s), std::memory_order_release); }

private:
    StatsSegment(std::string name, std::string path, void* base, std::size_t size) noexcept;

    std::string name_;   // shm_open name
    std::string path_;   // for messages
    void* base_ = nullptr;
    std::size_t size_ = 0;
    StatsHeader* header_ = nullptr;
    LcoreStats* entries_ = nullptr;
};

}  // namespace podfwd::dp::app
