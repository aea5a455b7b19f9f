// Update rates of the route tables, on the pod table's prefixes: how fast a
// control plane can change routes one at a time (each made visible at once)
// or in batches.
#pragma once

#include <cstddef>
#include <string>

#include "perf/bench_util.h"
#include "perf/route_sets.h"

namespace podfwd::perf {

struct UpdateRates {   // routes per second
    double insert_long = 0;
    double insert_short = 0;
    double del = 0;
};

struct UpdateReport {
    std::string long_summary;    // prefix lengths of each set
    std::string short_summary;
    std::size_t long_count = 0;
    std::size_t short_count = 0;
    UpdateRates ours_single;     // commit() after every change
    UpdateRates ours_batched;    // commit() every kUpdateBatch changes
    UpdateRates lpm;             // rte_lpm_add / rte_lpm_delete
    UpdateRates fib;             // rte_fib_add / rte_fib_delete
};

inline constexpr std::size_t kUpdateBatch = 1024;

// The same sequence on each implementation, each checked against a
// reference after every phase:
//   insert_long:  the pod table's /24 and /32 routes, into an empty table;
//   (the rest of the pod table, untimed: 0.0.0.0/0 and the /16s);
//   insert_short: 20,000 distinct /8../16 prefixes, into the full pod table;
//   delete:       the /24 and /32 routes again, in another order.
UpdateReport bench_updates(const RouteSet& pod, const Options& opt);
void print_updates(const UpdateReport& report);

}  // namespace podfwd::perf
