#include "control/ctl/stats.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstring>
#include <fstream>
#include <utility>

#include "common/process.h"

namespace podfwd::ctl {

namespace {

constexpr std::size_t kRxBase = 0;
constexpr std::size_t kTxBase = kRxBase + dp::kPortRoles;
constexpr std::size_t kTxDroppedBase = kTxBase + dp::kPortRoles;
constexpr std::size_t kActionBase = kTxDroppedBase + dp::kPortRoles;
constexpr std::size_t kDropBase = kActionBase + kActionCount;
constexpr std::size_t kBusyPolls = kDropBase + kDropCount;
constexpr std::size_t kIdleSleeps = kBusyPolls + 1;
static_assert(kIdleSleeps + 1 == kCounterCount);

constexpr const char* kRoleNames[dp::kPortRoles] = {"uplink", "host"};

// A read-only mapping of one segment file, unmapped when it goes.
class Mapping {
public:
    static Result<Mapping> open(const std::string& path) {
        const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return Error{errno == ENOENT ? Errc::kNotFound : Errc::kSystem,
                         "cannot open " + path + ": " + std::strerror(errno)};
        struct stat info {};
        if (fstat(fd, &info) != 0) {
            Error error{Errc::kSystem, "cannot stat " + path + ": " + std::strerror(errno)};
            close(fd);
            return error;
        }
        const auto size = static_cast<std::size_t>(info.st_size);
        void* base = size == 0 ? nullptr : mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
        const int map_errno = errno;
        close(fd);   // the mapping keeps the memory
        if (base == MAP_FAILED)
            return Error{Errc::kSystem, "cannot map " + path + ": " + std::strerror(map_errno)};
        return Mapping(static_cast<const std::byte*>(base), size);
    }

    Mapping(Mapping&& other) noexcept : base_(std::exchange(other.base_, nullptr)), size_(other.size_) {}
    Mapping& operator=(Mapping&&) = delete;
    Mapping(const Mapping&) = delete;
    ~Mapping() {
        if (base_ != nullptr)
            munmap(const_cast<std::byte*>(base_), size_);
    }

    const std::byte* data() const noexcept { return base_; }
    std::size_t size() const noexcept { return size_; }

private:
    Mapping(const std::byte* base, std::size_t size) noexcept : base_(base), size_(size) {}
    const std::byte* base_;
    std::size_t size_;
};

// The lcores write these words while we read: copy each out once.
template <class T>
T load(const std::byte* at) {
    T value;
    std::memcpy(&value, at, sizeof value);
    return value;
}

Error incompatible(const std::string& path, const std::string& what) {
    return Error{Errc::kIncompatible,
                 path + ": " + what + " (a podfwd-dataplane of another version? use its podfwdctl)"};
}

// Checks that the segment has the layout this podfwdctl was built with.
Status validate(const std::string& path, const dp::StatsHeader& header, std::size_t size) {
    if (header.magic != dp::kStatsMagic)
        return Error{Errc::kIncompatible, path + ": not a podfwd counter segment"};
    if (header.version != dp::kStatsVersion)
        return incompatible(path, "counter segment version " + std::to_string(header.version) +
                                      ", this podfwdctl reads " + std::to_string(dp::kStatsVersion));
    if (header.roles != dp::kPortRoles || header.actions != kActionCount || header.drops != kDropCount)
        return incompatible(path, "counts " + std::to_string(header.roles) + " ports, " +
                                      std::to_string(header.actions) + " actions, " + std::to_string(header.drops) +
                                      " drop reasons; this podfwdctl knows " + std::to_string(dp::kPortRoles) + ", " +
                                      std::to_string(kActionCount) + ", " + std::to_string(kDropCount));
    if (header.entry_size % 64 != 0 || header.counters_offset < offsetof(dp::LcoreStats, counters) ||
        header.entry_size < std::size_t{header.counters_offset} + sizeof(dp::LcoreCounters))
        return incompatible(path, "entry size " + std::to_string(header.entry_size) + " with counters at " +
                                      std::to_string(header.counters_offset) + " does not hold the counters");
    if (size < sizeof(dp::StatsHeader) + std::size_t{header.lcore_count} * header.entry_size)
        return incompatible(path, "file of " + std::to_string(size) + " bytes is too short for " +
                                      std::to_string(header.lcore_count) + " lcores");
    return ok();
}

LcoreReading read_entry(const std::byte* entry, const dp::StatsHeader& header, std::uint32_t pid) {
    LcoreReading reading;
    reading.pid = pid;
    reading.lcore_id = load<std::uint32_t>(entry + offsetof(dp::LcoreStats, lcore_id));
    reading.queue = load<std::uint32_t>(entry + offsetof(dp::LcoreStats, queue));
    dp::LcoreStats stats{};
    stats.idle_sleeps = load<std::uint64_t>(entry + offsetof(dp::LcoreStats, idle_sleeps));
    stats.busy_polls = load<std::uint64_t>(entry + offsetof(dp::LcoreStats, busy_polls));
    stats.counters = load<dp::LcoreCounters>(entry + header.counters_offset);
    reading.counts = flatten(stats);
    return reading;
}

// Adds one segment to the snapshot; a segment still being created is skipped.
Status read_segment(const std::string& path, std::uint32_t pid, StatsSnapshot& snapshot) {
    auto mapping = Mapping::open(path);
    if (!mapping) {
        // Unlinked between the scan and the open: its dataplane just exited.
        if (mapping.error().code == Errc::kNotFound)
            return ok();
        return std::move(mapping).error();
    }
    if (mapping->size() < sizeof(dp::StatsHeader)) {
        snapshot.skipped.push_back({path, pid, "still being created"});
        return ok();
    }
    const auto& header = *reinterpret_cast<const dp::StatsHeader*>(mapping->data());
    // The creator writes the magic last, after a release fence.
    if (load<std::uint64_t>(mapping->data()) == 0) {
        snapshot.skipped.push_back({path, pid, "still being created"});
        return ok();
    }
    std::atomic_thread_fence(std::memory_order_acquire);
    if (auto valid = validate(path, header, mapping->size()); !valid)
        return valid;

    snapshot.segments.push_back({path, pid, static_cast<dp::RunState>(header.state.load(std::memory_order_acquire)),
                                 header.start_unix_ns, header.lcore_count});
    const std::byte* entries = mapping->data() + sizeof(dp::StatsHeader);
    for (std::uint32_t i = 0; i < header.lcore_count; ++i)
        snapshot.lcores.push_back(read_entry(entries + std::size_t{i} * header.entry_size, header, pid));
    return ok();
}

}  // namespace

const std::array<CounterName, kCounterCount>& counter_names() {
    static const auto names = [] {
        std::array<CounterName, kCounterCount> all;
        for (unsigned role = 0; role < dp::kPortRoles; ++role) {
            all[kRxBase + role] = {"rx", kRoleNames[role]};
            all[kTxBase + role] = {"tx", kRoleNames[role]};
            all[kTxDroppedBase + role] = {"tx_dropped", kRoleNames[role]};
        }
        for (std::size_t a = 0; a < kActionCount; ++a)
            all[kActionBase + a] = {"actions", dp::action_name(static_cast<dp::Action>(a))};
        for (std::size_t d = 0; d < kDropCount; ++d)
            all[kDropBase + d] = {"drops", dp::drop_name(static_cast<dp::Drop>(d))};
        all[kBusyPolls] = {"", "busy_polls"};
        all[kIdleSleeps] = {"", "idle_sleeps"};
        return all;
    }();
    return names;
}

std::size_t counter_index(std::string_view group, std::string_view name) {
    const auto& names = counter_names();
    const auto it = std::find_if(names.begin(), names.end(),
                                 [&](const CounterName& n) { return n.group == group && n.name == name; });
    return static_cast<std::size_t>(it - names.begin());
}

Counts flatten(const dp::LcoreStats& entry) {
    Counts counts{};
    const dp::LcoreCounters& c = entry.counters;
    std::copy(c.rx_packets.begin(), c.rx_packets.end(), counts.begin() + kRxBase);
    std::copy(c.tx_packets.begin(), c.tx_packets.end(), counts.begin() + kTxBase);
    std::copy(c.tx_dropped.begin(), c.tx_dropped.end(), counts.begin() + kTxDroppedBase);
    std::copy(c.actions.begin(), c.actions.end(), counts.begin() + kActionBase);
    std::copy(c.drops.begin(), c.drops.end(), counts.begin() + kDropBase);
    counts[kBusyPolls] = entry.busy_polls;
    counts[kIdleSleeps] = entry.idle_sleeps;
    return counts;
}

Counts StatsSnapshot::totals() const {
    Counts sum{};
    for (const LcoreReading& lcore : lcores)
        for (std::size_t i = 0; i < kCounterCount; ++i)
            sum[i] += lcore.counts[i];
    return sum;
}

Result<StatsSnapshot> read_stats(const std::string& table, const std::string& shm_dir) {
    StatsSnapshot snapshot;
    snapshot.taken_at = std::chrono::steady_clock::now();
    snapshot.taken_unix_ns = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count());

    DIR* dir = opendir(shm_dir.c_str());
    if (dir == nullptr)
        return Error{Errc::kSystem, "cannot list " + shm_dir + ": " + std::strerror(errno)};
    std::vector<std::pair<std::uint32_t, std::string>> found;
    const std::string prefix = table + ".stats.";
    while (const dirent* entry = readdir(dir))
        if (const auto pid = pid_suffix(entry->d_name, prefix))
            found.emplace_back(*pid, shm_dir + "/" + entry->d_name);
    closedir(dir);
    std::sort(found.begin(), found.end());

    for (const auto& [pid, path] : found) {
        if (!process_alive(pid)) {
            snapshot.skipped.push_back({path, pid, "pid " + std::to_string(pid) + " is not running"});
            continue;
        }
        if (auto status = read_segment(path, pid, snapshot); !status)
            return std::move(status).error();
    }
    if (snapshot.segments.empty()) {
        std::string message = "no podfwd-dataplane is running for table '" + table + "' (no live " + shm_dir + "/" +
                              prefix + "<pid>";
        for (const SkippedSegment& skipped : snapshot.skipped)
            message += "; " + skipped.path + ": " + skipped.reason;
        return Error{Errc::kNotFound, message + ")"};
    }
    return snapshot;
}

RateReport compute_rates(const StatsSnapshot& earlier, const StatsSnapshot& later) {
    RateReport report;
    report.seconds = std::chrono::duration<double>(later.taken_at - earlier.taken_at).count();
    for (const LcoreReading& now : later.lcores) {
        const auto before = std::find_if(earlier.lcores.begin(), earlier.lcores.end(), [&](const LcoreReading& r) {
            return r.pid == now.pid && r.lcore_id == now.lcore_id;
        });
        if (before == earlier.lcores.end() || report.seconds <= 0) {
            report.lcores.emplace_back();
            continue;
        }
        Rates rates{};
        for (std::size_t i = 0; i < kCounterCount; ++i) {
            const std::uint64_t delta = now.counts[i] >= before->counts[i] ? now.counts[i] - before->counts[i] : 0;
            rates[i] = static_cast<double>(delta) / report.seconds;
            report.totals[i] += rates[i];
        }
        report.lcores.emplace_back(rates);
    }
    return report;
}

const char* run_state_name(dp::RunState state) noexcept {
    switch (state) {
    case dp::RunState::kStarting: return "starting";
    case dp::RunState::kWaitingForTable: return "waiting_for_table";
    case dp::RunState::kRunning: return "running";
    case dp::RunState::kStopped: return "stopped";
    }
    return "unknown";
}

}  // namespace podfwd::ctl
