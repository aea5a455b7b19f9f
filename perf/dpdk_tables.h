// The DPDK side of the LPM benchmark: EAL start-up (hugepages, or plain
// memory when there are none) and rte_lpm / rte_fib tables sized for a route
// set, owned by unique_ptrs.
#pragma once

#include <rte_fib.h>
#include <rte_lpm.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>

#include "lpm/types.h"

namespace podfwd::perf {

// EAL memory ran out mid-run: with hugepages the benchmark starts over without them.
struct DpdkOutOfMemory : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct EalBacking {
    bool hugepages = false;
    std::string description;   // what backs DPDK memory, and why
};

// Starts EAL on lcore 0 without PCI, in memory only. Uses 2 MiB hugepages when
// enough are free; otherwise, or when EAL fails to start with them, uses
// --no-huge (re-executing this program, since EAL cannot be initialised twice).
EalBacking eal_start(int argc, char** argv, bool force_no_huge);
// Restarts this program with --no-huge appended; never returns.
[[noreturn]] void reexec_without_hugepages(int argc, char** argv, const std::string& why);
void eal_stop() noexcept;

struct LpmDeleter {
    void operator()(rte_lpm* lpm) const noexcept { rte_lpm_free(lpm); }
};
struct FibDeleter {
    void operator()(rte_fib* fib) const noexcept { rte_fib_free(fib); }
};
using LpmPtr = std::unique_ptr<rte_lpm, LpmDeleter>;
using FibPtr = std::unique_ptr<rte_fib, FibDeleter>;

// Capacity of a DIR-24-8 table, set at creation as both libraries require.
struct DirSizing {
    std::uint32_t max_routes = 0;
    std::uint32_t tbl8_groups = 0;
};
// The tightest sizing that holds `routes`: as many rules as routes, and the
// tbl8 groups they need plus a small margin (rte_fib reserves a spare group
// transiently while it installs a range).
DirSizing sizing_for(std::span<const lpm::Route> routes);

struct CreatedLpm {
    LpmPtr table;
    std::size_t heap_bytes;       // DPDK heap growth across rte_lpm_create
    std::size_t formula_bytes;    // tbl24 + tbl8 groups + rules, from rte_lpm.h
};
struct CreatedFib {
    FibPtr table;
    std::size_t heap_bytes;       // includes the RIB rte_fib keeps for updates
    std::size_t formula_bytes;    // tbl24 + tbl8 groups (+1 spare), from dir24_8.c
};

// Throws DpdkOutOfMemory (ENOMEM) or std::runtime_error.
CreatedLpm lpm_create(const DirSizing& sizing);
// RTE_FIB_DIR24_8 (it takes 0.0.0.0/0 as a route; a miss answers the
// configured default, kNoRoute) with 4-byte next hops: our table must hold at least 64k
// next hops, and DIR24_8_2B stores at most 2^15 - 1 (one bit marks tbl8 links).
CreatedFib fib_create(const DirSizing& sizing);

// rte_lpm has no /0 (depth must be 1..32): 0.0.0.0/0 goes in as 0/1 and 128/1,
// which answer the same for every address. Return rte's 0 / negative errno.
int lpm_add(rte_lpm* lpm, const lpm::Route& route);
int lpm_del(rte_lpm* lpm, const Prefix4& prefix);

// Writes the tbl24/tbl8 entries rte_lpm_add would produce for `routes`, in
// one pass. rte_lpm_add scans every rule of the same depth on each add, so a
// million routes take minutes; this gives the same lookup structure (the
// cross-check proves it) but leaves rte_lpm's rule list empty: the table can
// be looked up, not updated.
void lpm_fill_direct(rte_lpm* lpm, std::span<const lpm::Route> routes, std::uint32_t tbl8_groups);

// Bytes allocated from the DPDK heap, all sockets.
std::size_t dpdk_heap_allocated();

}  // namespace podfwd::perf
