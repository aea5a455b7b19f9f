#include "perf/bench_util.h"

#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <utility>

namespace podfwd::perf {

using lpm::NextHopId;
using lpm::Route;

namespace {

// Segments to remove if the run is interrupted. A signal handler may only
// call async-signal-safe functions, so it unlinks the files by path (the
// writer keeps segment <name> at /dev/shm/<name>) from preformatted slots.
constexpr std::size_t kMaxSegments = 16;
char g_paths[kMaxSegments][128];
volatile std::sig_atomic_t g_used[kMaxSegments];

extern "C" void unlink_segments_and_die(int sig) {
    for (std::size_t i = 0; i < kMaxSegments; ++i)
        if (g_used[i])
            ::unlink(g_paths[i]);
    std::signal(sig, SIG_DFL);
    std::raise(sig);
}

void track_segment(const std::string& name, bool live) {
    static const bool installed = [] {
        std::signal(SIGINT, unlink_segments_and_die);
        std::signal(SIGTERM, unlink_segments_and_die);
        return true;
    }();
    (void)installed;
    const std::string path = "/dev/shm/" + name;
    if (path.size() >= sizeof g_paths[0])
        return;
    for (std::size_t i = 0; i < kMaxSegments; ++i) {
        if (live && !g_used[i]) {
            std::memcpy(g_paths[i], path.c_str(), path.size() + 1);
            g_used[i] = 1;
            return;
        }
        if (!live && g_used[i] && path == g_paths[i]) {
            g_used[i] = 0;
            return;
        }
    }
}

lpm::NextHop make_nexthop(std::uint32_t index) {
    lpm::NextHop nh;
    nh.node_ip = (Ipv4Addr{172} << 24 | Ipv4Addr{16} << 16) + index;   // distinct records
    nh.mode = lpm::ForwardMode::kHostGw;
    nh.flags = lpm::NextHop::kMacResolved;
    nh.mac = {0x02, 0, 0, static_cast<std::uint8_t>(index >> 16), static_cast<std::uint8_t>(index >> 8),
              static_cast<std::uint8_t>(index)};
    return nh;
}

}  // namespace

SegmentName::SegmentName(const std::string& suffix)
    : name_("lpm_bench." + std::to_string(::getpid()) + "." + suffix) {
    (void)lpm::TableWriter::unlink(name_);   // a stale one from an earlier run with our pid
    track_segment(name_, true);
}

SegmentName::SegmentName(SegmentName&& other) noexcept : name_(std::exchange(other.name_, {})) {}

SegmentName::~SegmentName() {
    if (name_.empty())
        return;
    (void)lpm::TableWriter::unlink(name_);
    track_segment(name_, false);
}

OurTable open_ours(const std::string& suffix, std::uint32_t nexthops, std::size_t routes) {
    SegmentName name(suffix);
    lpm::TableWriter::Options options;
    options.capacity.max_routes = std::max(options.capacity.max_routes, static_cast<std::uint32_t>(routes));
    options.capacity.max_nexthops = std::max(options.capacity.max_nexthops, nexthops);
    auto writer = must(lpm::TableWriter::open(name.str(), options),
                       "TableWriter::open(" + name.str() + ")");
    std::vector<NextHopId> ids(nexthops + 1, lpm::kNoRoute);
    for (std::uint32_t i = 1; i <= nexthops; ++i)
        ids[i] = must(writer.nexthop_add(make_nexthop(i)), "nexthop_add");
    return OurTable{std::move(name), std::move(writer), std::move(ids)};
}

std::vector<Route> with_ids(std::span<const Route> routes, const std::vector<NextHopId>& ids) {
    std::vector<Route> out(routes.begin(), routes.end());
    for (Route& r : out)
        r.nexthop = ids.at(r.nexthop);
    return out;
}

Sample make_sample(std::span<const Ipv4Addr> drawn, std::span<const Ipv4Addr> uniform, std::size_t n,
                   const ReferenceLpm& ref) {
    const std::size_t half = std::min({(n / 2 + kBurst - 1) / kBurst * kBurst, drawn.size() / kBurst * kBurst,
                                     uniform.size() / kBurst * kBurst});
    Sample s;
    s.addrs.assign(drawn.begin(), drawn.begin() + static_cast<std::ptrdiff_t>(half));
    s.addrs.insert(s.addrs.end(), uniform.begin(), uniform.begin() + static_cast<std::ptrdiff_t>(half));
    s.expected.reserve(s.addrs.size());
    for (const Ipv4Addr a : s.addrs)
        s.expected.push_back(ref.lookup(a));
    return s;
}

MappedBytes mapped_bytes(const std::string& path_suffix) {
    MappedBytes best;
    MappedBytes current;
    unsigned mappings = 0;
    bool inside = false;
    const auto done_with_current = [&] {
        if (inside && current.rss >= best.rss)
            best = current;
        current = {};
    };
    std::ifstream smaps("/proc/self/smaps");
    for (std::string line; std::getline(smaps, line);) {
        const bool header = !line.empty() && line.find(':') > line.find(' ');   // "addr-addr perms ..."
        if (header) {
            done_with_current();
            inside = line.size() >= path_suffix.size() &&
                     line.compare(line.size() - path_suffix.size(), path_suffix.size(), path_suffix) == 0;
            mappings += inside ? 1 : 0;
            continue;
        }
        std::size_t kib = 0;
        if (!inside)
            continue;
        if (std::sscanf(line.c_str(), "Rss: %zu kB", &kib) == 1)
            current.rss = kib << 10;
        else if (std::sscanf(line.c_str(), "ShmemPmdMapped: %zu kB", &kib) == 1)
            current.huge = kib << 10;
    }
    done_with_current();
    best.mappings = mappings;
    return best;
}

std::string describe_mismatch(Ipv4Addr addr, const char* path, NextHopId got, const ReferenceLpm& ref) {
    const auto m = ref.match(addr);
    const std::string expected = m ? std::to_string(m->nexthop) + " from " + m->prefix.str() : "no route (0)";
    return format_ipv4(addr) + " (" + path + "): got " + std::to_string(got) + ", reference " + expected;
}

std::string with_commas(std::uint64_t n) {
    const std::string digits = std::to_string(n);
    std::string out;
    for (std::size_t i = 0; i < digits.size(); ++i) {
        if (i != 0 && (digits.size() - i) % 3 == 0)
            out += ',';
        out += digits[i];
    }
    return out;
}

std::string mib(std::size_t bytes) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
    return buf;
}

}  // namespace podfwd::perf
