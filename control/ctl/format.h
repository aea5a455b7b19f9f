// Human text for the daemon's results (control/PROTOCOL.md). Tolerant of
// what it does not know: a missing field shows as "-", an unexpected type as
// its JSON, so that a newer daemon never breaks an older podfwdctl.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "control/ctl/commands.h"

namespace podfwd::ctl {

// `result` is the response without "ok".
std::string format_result(View view, const nlohmann::json& result);

// One cell: null or missing "-", strings as they are, booleans yes/no,
// arrays comma-separated, anything else as JSON.
std::string cell_text(const nlohmann::json& value);
std::string field_text(const nlohmann::json& object, const char* key);

// "1d02h03m", "4m05s", "12s".
std::string duration_text(std::uint64_t seconds);
// The two largest units, for a table cell: "1d03h", "2h05m", "3m12s", "45s".
std::string short_duration_text(std::uint64_t seconds);

}  // namespace podfwd::ctl
