#include "control/ctl/stats.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
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

// An open file descriptor, closed when it goes.
class OpenFile {
public:
    explicit OpenFile(int fd) noexcept : fd_(fd) {}
    OpenFile(const OpenFile&) = delete;
    OpenFile& operator=(const OpenFile&) = delete;
    ~OpenFile() { close(fd_); }
    int fd() const noexcept { return fd_; }

private:
    int fd_;
};

std::string octal_mode(mode_t mode) {
    char text[8];
    std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
    return text;
}

// Why the file behind `info` must not be trusted, or empty when it may be:
// only root (the dataplane) or we ourselves may have written its counters.
std::string untrusted_because(const struct stat& info) {
    if (!S_ISREG(info.st_mode))
        return "not a regular file";
    const uid_t euid = geteuid();
    const std::string owner_and_mode =
        "owner uid " + std::to_string(info.st_uid) + ", mode " + octal_mode(info.st_mode);
    if (info.st_uid != 0 && info.st_uid != euid)
        return owner_and_mode + ": owned by neither root nor uid " + std::to_string(euid);
    if ((info.st_mode & (S_IWGRP | S_IWOTH)) != 0)
        return owner_and_mode + ": writable by group or others";
    return {};
}

// What one segment file holds: its bytes, or why it was skipped.
struct SegmentCopy {
    std::vector<std::byte> bytes;
    std::string skipped_because;   // non-empty: not read
};

// Copies the file once, with pread rather than a mapping: a file truncated
// meanwhile gives a short copy (decoded as such), never a SIGBUS.
Result<SegmentCopy> copy_segment(const std::string& path) {
    // O_NONBLOCK: a FIFO planted under the name must not block the open.
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ELOOP)
            return SegmentCopy{{}, "a symbolic link, not followed"};
        return Error{errno == ENOENT ? Errc::kNotFound : Errc::kSystem,
                     "cannot open " + path + ": " + std::strerror(errno)};
    }
    const OpenFile file(fd);
    struct stat info {};
    if (fstat(file.fd(), &info) != 0)
        return Error{Errc::kSystem, "cannot stat " + path + ": " + std::strerror(errno)};
    if (std::string why = untrusted_because(info); !why.empty())
        return SegmentCopy{{}, std::move(why)};
    const auto size = static_cast<std::size_t>(info.st_size);
    if (size > kMaxSegmentBytes)
        return Error{Errc::kIncompatible, path + ": file of " + std::to_string(size) + " bytes, more than the " +
                                              std::to_string(kMaxSegmentBytes) + " a counter segment may have"};
    SegmentCopy copy;
    copy.bytes.resize(size);
    std::size_t copied = 0;
    while (copied < size) {
        const ssize_t n = pread(file.fd(), copy.bytes.data() + copied, size - copied, static_cast<off_t>(copied));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return Error{Errc::kSystem, "cannot read " + path + ": " + std::strerror(errno)};
        if (n == 0)
            break;   // truncated since the fstat
        copied += static_cast<std::size_t>(n);
    }
    copy.bytes.resize(copied);
    return copy;
}

template <class T>
T load(std::span<const std::byte> bytes, std::size_t offset) {
    T value;
    std::memcpy(&value, bytes.data() + offset, sizeof value);
    return value;
}

Error incompatible(const std::string& path, const std::string& what) {
    return Error{Errc::kIncompatible,
                 path + ": " + what + " (a podfwd-dataplane of another version? use its podfwdctl)"};
}

// The header's fields as plain values (StatsHeader holds an atomic, which
// cannot be copied from bytes).
struct HeaderFields {
    std::uint64_t magic;
    std::uint32_t version, lcore_count, entry_size, counters_offset, roles, actions, drops, state;
    std::uint64_t start_unix_ns;
};

HeaderFields header_fields(std::span<const std::byte> bytes) {
    using H = dp::StatsHeader;
    return HeaderFields{
        .magic = load<std::uint64_t>(bytes, offsetof(H, magic)),
        .version = load<std::uint32_t>(bytes, offsetof(H, version)),
        .lcore_count = load<std::uint32_t>(bytes, offsetof(H, lcore_count)),
        .entry_size = load<std::uint32_t>(bytes, offsetof(H, entry_size)),
        .counters_offset = load<std::uint32_t>(bytes, offsetof(H, counters_offset)),
        .roles = load<std::uint32_t>(bytes, offsetof(H, roles)),
        .actions = load<std::uint32_t>(bytes, offsetof(H, actions)),
        .drops = load<std::uint32_t>(bytes, offsetof(H, drops)),
        .state = load<std::uint32_t>(bytes, offsetof(H, state)),
        .start_unix_ns = load<std::uint64_t>(bytes, offsetof(H, start_unix_ns)),
    };
}

// Checks that the segment has the layout this podfwdctl was built with and
// that every entry the header announces lies inside `size` bytes.
Status validate(const std::string& path, const HeaderFields& header, std::size_t size) {
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
    // Both factors are 32-bit: the product cannot overflow 64 bits.
    if (size < sizeof(dp::StatsHeader) + std::uint64_t{header.lcore_count} * header.entry_size)
        return incompatible(path, "file of " + std::to_string(size) + " bytes is too short for " +
                                      std::to_string(header.lcore_count) + " lcores");
    return ok();
}

LcoreReading read_entry(std::span<const std::byte> entry, std::uint32_t counters_offset, std::uint32_t pid) {
    using E = dp::LcoreStats;
    LcoreReading reading;
    reading.pid = pid;
    reading.lcore_id = load<std::uint32_t>(entry, offsetof(E, lcore_id));
    reading.queue = load<std::uint32_t>(entry, offsetof(E, queue));
    dp::LcoreStats stats{};
    stats.idle_sleeps = load<std::uint64_t>(entry, offsetof(E, idle_sleeps));
    stats.busy_polls = load<std::uint64_t>(entry, offsetof(E, busy_polls));
    stats.counters = load<dp::LcoreCounters>(entry, counters_offset);
    reading.counts = flatten(stats);
    return reading;
}

// Adds one segment to the snapshot; a segment still being created, or one
// not to be trusted, is skipped.
Status read_segment(const std::string& path, std::uint32_t pid, StatsSnapshot& snapshot) {
    auto copy = copy_segment(path);
    if (!copy) {
        // Unlinked between the scan and the open: its dataplane just exited.
        if (copy.error().code == Errc::kNotFound)
            return ok();
        return std::move(copy).error();
    }
    if (!copy->skipped_because.empty()) {
        snapshot.skipped.push_back({path, pid, "not read: " + copy->skipped_because});
        return ok();
    }
    auto decoded = decode_segment(copy->bytes, path, pid);
    if (!decoded)
        return std::move(decoded).error();
    if (decoded->being_created) {
        snapshot.skipped.push_back({path, pid, "still being created"});
        return ok();
    }
    snapshot.segments.push_back({path, pid, decoded->state, decoded->start_unix_ns,
                                 static_cast<unsigned>(decoded->lcores.size())});
    snapshot.lcores.insert(snapshot.lcores.end(), decoded->lcores.begin(), decoded->lcores.end());
    return ok();
}

}  // namespace

Result<DecodedSegment> decode_segment(std::span<const std::byte> bytes, const std::string& path, std::uint32_t pid) {
    DecodedSegment decoded;
    // The creator sizes the file, then writes the magic last (after a
    // release fence): a zero magic is a segment still being created.
    if (bytes.size() < sizeof(dp::StatsHeader) || load<std::uint64_t>(bytes, 0) == 0) {
        decoded.being_created = true;
        return decoded;
    }
    const HeaderFields header = header_fields(bytes);
    if (auto valid = validate(path, header, bytes.size()); !valid)
        return std::move(valid).error();
    decoded.state = static_cast<dp::RunState>(header.state);
    decoded.start_unix_ns = header.start_unix_ns;
    decoded.lcores.reserve(header.lcore_count);
    const auto entries = bytes.subspan(sizeof(dp::StatsHeader));
    for (std::uint32_t i = 0; i < header.lcore_count; ++i)
        decoded.lcores.push_back(read_entry(entries.subspan(std::size_t{i} * header.entry_size, header.entry_size),
                                            header.counters_offset, pid));
    return decoded;
}

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
