// Reading the dataplane's counter segments, /dev/shm/<table>.stats.<pid>
// (layout: dataplane/stats_layout.h, dataplane/app/README.md), straight from
// shared memory: no daemon involved. One dataplane process has one segment;
// a crashed one leaves its segment behind, which is recognised by its pid.
// Each segment is copied once into private memory and decoded only from
// that copy: whoever writes the file cannot change what was validated.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "dataplane/counters.h"
#include "dataplane/stats_layout.h"

namespace podfwd::ctl {

// Every counter of an lcore as one flat array: rx, tx, tx_dropped per port
// role, one per Action, one per Drop, then the loop's busy_polls and
// idle_sleeps. Flat so that sums and rates are one loop.
inline constexpr std::size_t kActionCount = static_cast<std::size_t>(dp::Action::kCount);
inline constexpr std::size_t kDropCount = static_cast<std::size_t>(dp::Drop::kCount);
inline constexpr std::size_t kCounterCount = 3 * dp::kPortRoles + kActionCount + kDropCount + 2;

template <class T>
using CounterValues = std::array<T, kCounterCount>;
using Counts = CounterValues<std::uint64_t>;
using Rates = CounterValues<double>;   // per second

struct CounterName {
    std::string group;   // "rx", "tx", "tx_dropped", "actions", "drops"; empty for busy_polls, idle_sleeps
    std::string name;    // "uplink", "host", action_name, drop_name, "busy_polls", "idle_sleeps"
};
const std::array<CounterName, kCounterCount>& counter_names();
// Index into Counts; kCounterCount for a name that does not exist.
std::size_t counter_index(std::string_view group, std::string_view name);

Counts flatten(const dp::LcoreStats& entry);

struct LcoreReading {
    std::uint32_t pid = 0;
    std::uint32_t lcore_id = 0;
    std::uint32_t queue = 0;
    Counts counts{};
};

struct LiveSegment {
    std::string path;
    std::uint32_t pid = 0;
    dp::RunState state = dp::RunState::kStarting;
    std::uint64_t start_unix_ns = 0;
    unsigned lcores = 0;
};

// A segment not counted: its process is gone, or it is still being created.
struct SkippedSegment {
    std::string path;
    std::uint32_t pid = 0;
    std::string reason;
};

struct StatsSnapshot {
    std::chrono::steady_clock::time_point taken_at;
    std::uint64_t taken_unix_ns = 0;
    std::vector<LiveSegment> segments;   // by pid
    std::vector<SkippedSegment> skipped;
    std::vector<LcoreReading> lcores;    // by pid, then entry order

    Counts totals() const;
};

// A segment file larger than this is refused, not copied: the dataplane's
// are a few KiB (a header and one entry per lcore).
inline constexpr std::size_t kMaxSegmentBytes = std::size_t{16} << 20;

// One segment decoded from a private copy of its bytes.
struct DecodedSegment {
    bool being_created = false;   // too short for a header, or its magic not written yet
    dp::RunState state = dp::RunState::kStarting;
    std::uint64_t start_unix_ns = 0;
    std::vector<LcoreReading> lcores;   // in entry order
};

// Validates and decodes `bytes`, a segment file's contents (any bytes at
// all: a hostile or half-written file gives an error, never a read outside
// them). `path` and `pid` name it in errors and readings. Errors: kIncompatible
// (another layout, or a header that does not fit the file).
Result<DecodedSegment> decode_segment(std::span<const std::byte> bytes, const std::string& path, std::uint32_t pid);

// Reads every live segment of `table` in `shm_dir`. A segment file that is
// not a regular file, is a symbolic link, belongs to neither root nor our
// euid, or is writable by group or others is skipped with the reason (path,
// owner, mode), never read. Errors: no live dataplane (kNotFound), a
// segment of another layout or larger than kMaxSegmentBytes (kIncompatible).
Result<StatsSnapshot> read_stats(const std::string& table, const std::string& shm_dir = "/dev/shm");

struct RateReport {
    double seconds = 0;                        // between the two snapshots
    std::vector<std::optional<Rates>> lcores;  // parallel to later.lcores; none for an lcore new since `earlier`
    Rates totals{};                            // the sum over the lcores seen in both
};

// Per-second rates from the deltas between two snapshots. A counter that
// went backwards (the dataplane restarted under the same pid) counts as 0.
RateReport compute_rates(const StatsSnapshot& earlier, const StatsSnapshot& later);

const char* run_state_name(dp::RunState state) noexcept;

}  // namespace podfwd::ctl
