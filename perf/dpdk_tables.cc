#include "perf/dpdk_tables.h"

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <unordered_map>
#include <vector>

#include "perf/route_sets.h"

namespace podfwd::perf {

using lpm::NextHopId;
using lpm::Route;

namespace {

constexpr const char* kFreeHugepages = "/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages";
// The peak is rte_fib on the inet table: 1M routes make its RIB ~400 MB on top
// of the 64 MiB tbl24 (measured: 470 MB). The benchmark holds one DPDK table
// at a time, so that is what must fit.
constexpr long kHugeNeededMiB = 480;
// Without hugepages EAL reserves (but does not touch) this much; 512 MiB would
// not hold rte_fib's inet table plus heap overhead.
constexpr const char* kNoHugeMiB = "1024";
// Tells a re-executed benchmark why it runs without hugepages.
constexpr const char* kFallbackEnv = "PODFWD_LPM_BENCH_NO_HUGE_REASON";

long free_hugepage_mib() {
    std::ifstream in(kFreeHugepages);
    long pages = -1;
    if (!(in >> pages))
        return -1;
    return pages * 2;
}

// Decides the backing before EAL starts; the reason is printed with the result.
bool want_hugepages(bool force_no_huge, std::string& why) {
    if (const char* reason = std::getenv(kFallbackEnv)) {
        why = reason;
        return false;
    }
    if (force_no_huge) {
        why = "--no-huge given";
        return false;
    }
    const long mib = free_hugepage_mib();
    if (mib < kHugeNeededMiB) {
        why = mib < 0 ? std::string("no 2 MiB hugepage pool")
                      : std::to_string(mib) + " MiB of 2 MiB hugepages free, " +
                            std::to_string(kHugeNeededMiB) + " MiB needed";
        return false;
    }
    why = std::to_string(mib) + " MiB free";
    return true;
}

[[noreturn]] void dpdk_fail(const std::string& what) {
    const int err = rte_errno;
    const std::string message = what + ": " + rte_strerror(err);
    if (err == ENOMEM)
        throw DpdkOutOfMemory(message);
    throw std::runtime_error(message);
}

// tbl24 entries and tbl8 entries share one 32-bit format (rte_lpm.h).
rte_lpm_tbl_entry lpm_entry(std::uint32_t next_hop, unsigned depth, bool group) {
    rte_lpm_tbl_entry e{};
    e.next_hop = next_hop & 0xffffffu;
    e.valid = 1;
    e.valid_group = group ? 1 : 0;
    e.depth = depth & 0x3fu;
    return e;
}

}  // namespace

EalBacking eal_start(int argc, char** argv, bool force_no_huge) {
    EalBacking backing;
    std::string why;
    backing.hugepages = want_hugepages(force_no_huge, why);
    // EAL may keep pointers into its argv: the strings live for the process.
    static std::vector<std::string> args;
    args = {argv[0], "--no-pci", "-l", "0", "--log-level=lib.eal:error",
            // Quiet (no telemetry socket) and allow rte_fib's AVX-512 lookup.
            "--no-telemetry", "--force-max-simd-bitwidth=512"};
    // --no-huge implies legacy memory, which EAL 22.11 refuses together with
    // --in-memory; --no-shconf gives what we want from --in-memory there: no
    // files, no multi-process channel.
    if (backing.hugepages)
        args.emplace_back("--in-memory");
    else
        args.insert(args.end(), {"--no-huge", "-m", kNoHugeMiB, "--no-shconf"});
    std::vector<char*> cargs;
    for (auto& a : args)
        cargs.push_back(a.data());
    std::fflush(stdout);
    if (rte_eal_init(static_cast<int>(cargs.size()), cargs.data()) < 0) {
        const std::string err = rte_strerror(rte_errno);
        if (backing.hugepages)
            reexec_without_hugepages(argc, argv, "EAL init with hugepages failed (" + err + ")");
        throw std::runtime_error("EAL init failed: " + err);
    }
    backing.description = backing.hugepages
        ? "2 MiB hugepages (" + why + ")"
        : std::string("plain 4 KiB pages, --no-huge -m ") + kNoHugeMiB + " (" + why + ")";
    return backing;
}

void reexec_without_hugepages(int argc, char** argv, const std::string& why) {
    std::printf("EAL: %s; restarting with --no-huge\n", why.c_str());
    std::fflush(stdout);
    ::setenv(kFallbackEnv, why.c_str(), 1);
    std::vector<char*> args(argv, argv + argc);
    static char no_huge[] = "--no-huge";
    args.push_back(no_huge);
    args.push_back(nullptr);
    ::execv("/proc/self/exe", args.data());
    std::perror("execv /proc/self/exe");
    std::_Exit(1);
}

void eal_stop() noexcept { rte_eal_cleanup(); }

DirSizing sizing_for(std::span<const Route> routes) {
    DirSizing s;
    s.max_routes = static_cast<std::uint32_t>(routes.size()) + 1;   // +1: /0 is two /1s in rte_lpm
    const auto groups = static_cast<std::uint32_t>(count_tbl8_groups(routes));
    s.tbl8_groups = groups + groups / 32 + 64;
    return s;
}

CreatedLpm lpm_create(const DirSizing& sizing) {
    static unsigned serial = 0;
    const std::string name = "bench_lpm_" + std::to_string(serial++);
    rte_lpm_config config{};
    config.max_rules = sizing.max_routes;
    config.number_tbl8s = sizing.tbl8_groups;
    const std::size_t before = dpdk_heap_allocated();
    LpmPtr table(rte_lpm_create(name.c_str(), SOCKET_ID_ANY, &config));
    if (!table)
        dpdk_fail("rte_lpm_create");
    const std::size_t heap = dpdk_heap_allocated() - before;
    // rte_lpm.c: struct rte_lpm_rule is {uint32_t ip; uint32_t next_hop;}.
    constexpr std::size_t kRuleBytes = 8;
    const std::size_t formula = sizeof(rte_lpm_tbl_entry) *
            (std::size_t{RTE_LPM_TBL24_NUM_ENTRIES} +
             std::size_t{RTE_LPM_TBL8_GROUP_NUM_ENTRIES} * sizing.tbl8_groups) +
        kRuleBytes * sizing.max_routes;
    return CreatedLpm{std::move(table), heap, formula};
}

CreatedFib fib_create(const DirSizing& sizing) {
    static unsigned serial = 0;
    const std::string name = "bench_fib_" + std::to_string(serial++);
    rte_fib_conf config{};
    config.type = RTE_FIB_DIR24_8;
    config.default_nh = lpm::kNoRoute;   // what a miss answers, as in our table
    config.max_routes = static_cast<int>(sizing.max_routes);
    config.rib_ext_sz = 0;
    config.dir24_8.nh_sz = RTE_FIB_DIR24_8_4B;   // see fib_create's declaration
    config.dir24_8.num_tbl8 = sizing.tbl8_groups;
    const std::size_t before = dpdk_heap_allocated();
    FibPtr table(rte_fib_create(name.c_str(), SOCKET_ID_ANY, &config));
    if (!table)
        dpdk_fail("rte_fib_create");
    const std::size_t heap = dpdk_heap_allocated() - before;
    // dir24_8_create: 2^24 entries, then (num_tbl8 rounded up to 64, + 1) groups of 256.
    constexpr std::size_t kEntryBytes = 4;
    const std::size_t groups = (std::size_t{sizing.tbl8_groups} + 63) / 64 * 64 + 1;
    const std::size_t formula = kEntryBytes * ((std::size_t{1} << 24) + 256 * groups);
    return CreatedFib{std::move(table), heap, formula};
}

int lpm_add(rte_lpm* lpm, const Route& route) {
    if (route.prefix.len == 0) {
        const int rc = rte_lpm_add(lpm, 0, 1, route.nexthop);
        return rc != 0 ? rc : rte_lpm_add(lpm, 0x80000000u, 1, route.nexthop);
    }
    return rte_lpm_add(lpm, route.prefix.addr, route.prefix.len, route.nexthop);
}

int lpm_del(rte_lpm* lpm, const Prefix4& prefix) {
    if (prefix.len == 0) {
        const int rc = rte_lpm_delete(lpm, 0, 1);
        return rc != 0 ? rc : rte_lpm_delete(lpm, 0x80000000u, 1);
    }
    return rte_lpm_delete(lpm, prefix.addr, prefix.len);
}

void lpm_fill_direct(rte_lpm* lpm, std::span<const Route> routes, std::uint32_t tbl8_groups) {
    // Shortest first, so that a longer prefix overwrites the shorter ones it
    // refines: the result is longest-prefix match, as rte_lpm_add maintains it.
    std::vector<Route> sorted;
    sorted.reserve(routes.size() + 1);
    for (const Route& r : routes) {
        if (r.prefix.len == 0) {
            sorted.push_back(Route{Prefix4{0, 1}, r.nexthop});
            sorted.push_back(Route{Prefix4{0x80000000u, 1}, r.nexthop});
        } else {
            sorted.push_back(r);
        }
    }
    std::stable_sort(sorted.begin(), sorted.end(),
                     [](const Route& a, const Route& b) { return a.prefix.len < b.prefix.len; });

    std::unordered_map<std::uint32_t, std::uint32_t> group_of;   // tbl24 index -> tbl8 group
    for (const Route& r : sorted) {
        const unsigned len = r.prefix.len;
        if (len <= 24) {
            const std::uint32_t first = r.prefix.addr >> 8;
            std::fill_n(&lpm->tbl24[first], std::size_t{1} << (24 - len), lpm_entry(r.nexthop, len, false));
            continue;
        }
        const std::uint32_t index24 = r.prefix.addr >> 8;
        auto [it, fresh] = group_of.try_emplace(index24, static_cast<std::uint32_t>(group_of.size()));
        rte_lpm_tbl_entry* group = &lpm->tbl8[std::size_t{it->second} * RTE_LPM_TBL8_GROUP_NUM_ENTRIES];
        if (fresh) {
            if (it->second >= tbl8_groups)
                throw std::runtime_error("lpm_fill_direct: more tbl8 groups needed than configured");
            // A new group inherits what its /24 resolved to (rte_lpm's add_depth_big).
            const rte_lpm_tbl_entry parent = lpm->tbl24[index24];
            rte_lpm_tbl_entry inherited{};
            inherited.valid_group = 1;
            if (parent.valid)
                inherited = lpm_entry(parent.next_hop, parent.depth, true);
            std::fill_n(group, RTE_LPM_TBL8_GROUP_NUM_ENTRIES, inherited);
            lpm->tbl24[index24] = lpm_entry(it->second, 0, true);
        }
        std::fill_n(group + (r.prefix.addr & 0xffu), std::size_t{1} << (32 - len),
                    lpm_entry(r.nexthop, len, true));
    }
}

std::size_t dpdk_heap_allocated() {
    std::size_t total = 0;
    for (unsigned i = 0; i < rte_socket_count(); ++i) {
        rte_malloc_socket_stats stats{};
        if (rte_malloc_get_socket_stats(rte_socket_id_by_idx(i), &stats) == 0)
            total += stats.heap_allocsz_bytes;
    }
    return total;
}

}  // namespace podfwd::perf
