#include "perf/bench_util.h"

#include <dirent.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <numeric>
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

std::string fixed(double v, int decimals) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    return buf;
}

std::string build_tree_path(const std::string& relative) {
    const std::filesystem::path here = std::filesystem::read_symlink("/proc/self/exe").parent_path();
    return (here / relative).lexically_normal().string();
}

void walk_args(int argc, char** argv, const char* usage,
               const std::function<bool(const std::string& arg, const std::function<std::string()>& value)>& option) {
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        const std::function<std::string()> value = [&]() -> std::string {
            if (i + 1 >= argc)
                throw std::invalid_argument(arg + " needs a value");
            return argv[++i];
        };
        if (arg == "-h" || arg == "--help") {
            std::cout << usage;
            std::exit(0);
        }
        if (!option(arg, value))
            throw std::invalid_argument("unknown argument " + arg);
    }
}

std::runtime_error system_error(const std::string& what) {
    return std::runtime_error(what + ": " + std::strerror(errno));
}

std::string load_average() {
    std::ifstream in("/proc/loadavg");
    std::string one, five, fifteen;
    in >> one >> five >> fifteen;
    return one + " " + five + " " + fifteen;
}

std::string machine() {
    std::ifstream in("/proc/cpuinfo");
    std::string line, model = "?";
    while (std::getline(in, line))
        if (line.rfind("model name", 0) == 0) {
            model = line.substr(line.find(':') + 2);
            break;
        }
    utsname u{};
    ::uname(&u);
    return std::to_string(::sysconf(_SC_NPROCESSORS_ONLN)) + " CPUs (" + model + "), Linux " + u.release;
}

double cpu_wait_us() {
    std::ifstream in("/proc/pressure/cpu");
    std::string word;
    while (in >> word)
        if (word.rfind("total=", 0) == 0)
            return std::stod(word.substr(6));
    return 0;
}

Percentiles summarize(std::vector<double> ms) {
    Percentiles p;
    if (ms.empty())
        return p;
    std::sort(ms.begin(), ms.end());
    const auto rank = [&](double q) {
        const auto k = static_cast<std::size_t>(std::ceil(q * static_cast<double>(ms.size())));
        return ms[std::clamp<std::size_t>(k, 1, ms.size()) - 1];
    };
    p.p50 = rank(0.50);
    p.p99 = rank(0.99);
    p.max = ms.back();
    p.mean = std::accumulate(ms.begin(), ms.end(), 0.0) / static_cast<double>(ms.size());
    return p;
}

Placement::Placement(bool pin) {
    const long n = ::sysconf(_SC_NPROCESSORS_ONLN);
    enabled_ = pin && n >= 2;
    if (!enabled_)
        return;
    ::sched_getaffinity(0, sizeof(saved_), &saved_);
    CPU_ZERO(&poller_);
    CPU_ZERO(&others_);
    CPU_SET(static_cast<int>(n - 1), &poller_);
    for (int c = 0; c < n - 1; ++c)
        CPU_SET(c, &others_);
}

Placement::~Placement() {
    if (enabled_)
        ::sched_setaffinity(0, sizeof(saved_), &saved_);
}

void Placement::process_on_others(pid_t pid) const {
    if (!enabled_)
        return;
    const std::string dir = "/proc/" + std::to_string(pid) + "/task";
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr)
        throw system_error("opendir " + dir);
    while (const dirent* e = ::readdir(d))
        if (e->d_name[0] != '.')
            set(static_cast<pid_t>(std::atoi(e->d_name)), others_);
    ::closedir(d);
}

void Placement::set(pid_t pid, const cpu_set_t& mask) const {
    if (enabled_ && ::sched_setaffinity(pid, sizeof(mask), &mask) != 0 && errno != ESRCH)
        throw system_error("sched_setaffinity");
}

}  // namespace podfwd::perf
