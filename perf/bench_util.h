// Pieces shared by the lookup and the update halves of the LPM benchmark:
// error checking, timing, our table's segment lifetime, and the cross-check;
// and by control_bench and etcd_bench: the machine and its load, latency
// percentiles, and where the table poller runs.
#pragma once

#include <sched.h>
#include <sys/types.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "lpm/reader.h"
#include "lpm/writer.h"
#include "perf/route_sets.h"

namespace podfwd::perf {

struct Options {
    bool quick = false;
    bool no_huge = false;
    std::uint64_t seed = 0x706f6466776400ULL;   // "podfwd"
    std::size_t addresses = 4u << 20;           // per destination array
    std::size_t sample = 100000;                // cross-check addresses per table
    unsigned repeats = 3;                       // lookup passes; the best counts
};

template <class T>
T must(Result<T> result, std::string_view what) {
    if (!result)
        throw std::runtime_error(std::string(what) + ": " + errc_name(result.error().code) + ": " +
                                 result.error().message);
    return std::move(result).value();
}
inline void must(const Status& status, std::string_view what) {
    if (!status)
        throw std::runtime_error(std::string(what) + ": " + errc_name(status.error().code) + ": " +
                                 status.error().message);
}

class Stopwatch {
public:
    Stopwatch() noexcept : start_(std::chrono::steady_clock::now()) {}
    double seconds() const noexcept {
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    }

private:
    std::chrono::steady_clock::time_point start_;
};

// "lpm_bench.<pid>.<suffix>": unique per run. Unlinked when this goes out of
// scope, and by a SIGINT/SIGTERM handler, so no run leaves /dev/shm behind.
class SegmentName {
public:
    explicit SegmentName(const std::string& suffix);
    SegmentName(SegmentName&& other) noexcept;
    SegmentName& operator=(SegmentName&&) = delete;
    SegmentName(const SegmentName&) = delete;
    SegmentName& operator=(const SegmentName&) = delete;
    ~SegmentName();
    const std::string& str() const noexcept { return name_; }

private:
    std::string name_;
};

// One of our tables: its segment name (declared first: unlinked last), the
// writer, and the id our writer gave each next-hop index of the route set.
struct OurTable {
    SegmentName name;
    lpm::TableWriter writer;
    std::vector<lpm::NextHopId> ids;   // ids[index], index in [1, nexthops]
};
// Capacity: the writer's defaults, with room for at least `routes` routes.
OurTable open_ours(const std::string& suffix, std::uint32_t nexthops, std::size_t routes);
// The routes of a set with next-hop indices replaced by ids.
std::vector<lpm::Route> with_ids(std::span<const lpm::Route> routes, const std::vector<lpm::NextHopId>& ids);

// Addresses with the reference's answers, for checking an implementation.
struct Sample {
    std::vector<Ipv4Addr> addrs;
    std::vector<lpm::NextHopId> expected;
};
// Half from `drawn`, half from `uniform` (n / 2 of each, rounded to 32).
Sample make_sample(std::span<const Ipv4Addr> drawn, std::span<const Ipv4Addr> uniform, std::size_t n,
                   const ReferenceLpm& ref);

inline constexpr std::size_t kBurst = 32;

// Throws, naming the first disagreements and the route that should have
// matched, unless `impl` answers as the reference on every sampled address,
// through its single lookup (if it has one) and its bulk lookup (if it has one).
template <class Impl>
void cross_check(const std::string& what, const Impl& impl, const Sample& sample, const ReferenceLpm& ref);

// What /proc/self/smaps says about the largest (by Rss) of this process's
// mappings of the file whose path ends with `path_suffix`: whether lookups
// walk 4 KiB or 2 MiB pages (the TLB cost DPDK's hugepages avoid).
struct MappedBytes {
    unsigned mappings = 0;   // of that file, all sizes
    std::size_t rss = 0;
    std::size_t huge = 0;    // ShmemPmdMapped: resident through 2 MiB page-table entries
};
MappedBytes mapped_bytes(const std::string& path_suffix);

std::string describe_mismatch(Ipv4Addr addr, const char* path, lpm::NextHopId got, const ReferenceLpm& ref);
std::string with_commas(std::uint64_t n);
std::string mib(std::size_t bytes);
// v with `decimals` decimals ("%.*f").
std::string fixed(double v, int decimals);

// `relative` to this executable's directory, normalised: another program of
// the same build tree ("../control/daemon/podfwd-control").
std::string build_tree_path(const std::string& relative);

// A bench's command line: calls option(arg, value) for each argument after
// argv[0], where value() takes the argument after it (throwing
// std::invalid_argument "<arg> needs a value" when there is none); option
// returns false for one it does not know, which throws std::invalid_argument
// "unknown argument <arg>". -h and --help print `usage` and exit 0.
void walk_args(int argc, char** argv, const char* usage,
               const std::function<bool(const std::string& arg, const std::function<std::string()>& value)>& option);

// An error naming `what` and errno's message.
std::runtime_error system_error(const std::string& what);

// /proc/loadavg's 1, 5 and 15 minute figures: "0.52 0.31 0.20".
std::string load_average();
// "N CPUs (<model name>), Linux <release>".
std::string machine();
// /proc/pressure/cpu "some" total: microseconds in which at least one
// runnable task waited for a CPU (0 when the kernel has no PSI).
double cpu_wait_us();

// What share of a phase (from construction) some task spent waiting for a CPU.
class Pressure {
public:
    Pressure() : start_us_(cpu_wait_us()) {}
    std::string share() const {
        const double waited = cpu_wait_us() - start_us_;
        return fixed(100.0 * waited / (clock_.seconds() * 1e6), 0) + "%";
    }

private:
    double start_us_;
    Stopwatch clock_;
};

// A set of timings: p50 and p99 (nearest rank), max and mean. All 0 when
// there are none.
struct Percentiles {
    double p50 = 0, p99 = 0, max = 0, mean = 0;
};
Percentiles summarize(std::vector<double> ms);

// Sets s.p50, s.p99, s.max and s.mean from the timings s.ms.
template <class Series>
void set_percentiles(Series& s) {
    const Percentiles p = summarize(s.ms);
    s.p50 = p.p50;
    s.p99 = p.p99;
    s.max = p.max;
    s.mean = p.mean;
}

// Unless `pin` is false: the bench's table poller (the dataplane's stand-in)
// alone on the last CPU, the daemon and the clients on the others, as on a
// node whose dataplane lcores are dedicated. Children inherit the mask at
// spawn and are moved right after it. Unpinned, a client that starts on the
// poller's CPU can wait for the next scheduler tick (4 ms at HZ=250) behind
// the spinning poller: the p99 then measures the bench, not the daemon.
// With one CPU, or unpinned, every call is a no-op. The destructor restores
// the calling thread's mask.
class Placement {
public:
    explicit Placement(bool pin);
    ~Placement();
    Placement(const Placement&) = delete;
    Placement& operator=(const Placement&) = delete;

    void self_on_others() const { set(0, others_); }
    void self_on_poller() const { set(0, poller_); }
    void child(pid_t pid) const { set(pid, others_); }
    // Every thread of a process already running (etcd's Go threads).
    void process_on_others(pid_t pid) const;

private:
    void set(pid_t pid, const cpu_set_t& mask) const;
    bool enabled_ = false;
    cpu_set_t saved_{}, poller_{}, others_{};
};

template <class Impl>
void cross_check(const std::string& what, const Impl& impl, const Sample& sample, const ReferenceLpm& ref) {
    std::size_t bad = 0;
    std::string details;
    const auto note = [&](std::size_t i, const char* path, lpm::NextHopId got) {
        if (++bad <= 8)
            details += "\n  " + describe_mismatch(sample.addrs[i], path, got, ref);
    };
    const std::size_t n = sample.addrs.size();
    if constexpr (requires { impl.one(Ipv4Addr{}); }) {
        for (std::size_t i = 0; i < n; ++i)
            if (const lpm::NextHopId got = impl.one(sample.addrs[i]); got != sample.expected[i])
                note(i, "single", got);
    }
    if constexpr (requires { typename Impl::Out; }) {
        typename Impl::Out out[kBurst];
        for (std::size_t i = 0; i < n; i += kBurst) {
            const std::size_t burst = std::min(kBurst, n - i);
            impl.bulk(&sample.addrs[i], out, burst);
            for (std::size_t k = 0; k < burst; ++k)
                if (const lpm::NextHopId got = Impl::value(out[k]); got != sample.expected[i + k])
                    note(i + k, "bulk", got);
        }
    }
    if (bad != 0)
        throw std::runtime_error(what + " disagrees with the reference LPM on " + std::to_string(bad) +
                                 " lookups of " + std::to_string(n) + " addresses:" + details);
}

}  // namespace podfwd::perf
