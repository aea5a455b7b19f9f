// podfwdctl stats output: aligned tables for humans, and the JSON object
// documented in control/ctl/README.md ("stats --json").
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "control/ctl/stats.h"

namespace podfwd::ctl {

// One line per dataplane process ("podfwd-dataplane pid 42: running since
// ..., 2 lcores") and per skipped segment.
std::string format_segments_text(const StatsSnapshot& snapshot);

// COUNTER, TOTAL, then one column per lcore. Drop reasons that are zero
// everywhere are left out unless `all`.
std::string format_counts_text(const StatsSnapshot& snapshot, bool all);

// A --watch report: COUNTER, TOTAL, PER-SEC, then the rate of each lcore.
std::string format_rates_text(const StatsSnapshot& later, const RateReport& rates, bool all);

// `rates` only when watching.
nlohmann::json stats_json(const std::string& table, const StatsSnapshot& snapshot, const RateReport* rates = nullptr);

// "2026-11-25 14:00:00 UTC"
std::string utc_time_text(std::uint64_t unix_ns);

}  // namespace podfwd::ctl
