// A route as the JSON object of control/PROTOCOL.md ({prefix, via?, mode?,
// vni?, vtep_mac?}): what podfwdctl sends, what the daemon reads from the
// socket and its saved state. Parsed through the one route grammar
// (route_text.h), so every front end says the same about the same mistake.
#pragma once

#include <nlohmann/json.hpp>

#include "control/core/route.h"

namespace podfwd::control {

Result<RouteSpec> route_spec_from_json(const nlohmann::json& j, Source source);
// Canonical text (a bare address as /32, lower-case MACs); no "mode" for
// ModeRequest::kDefault, which means the daemon's --default-mode.
nlohmann::json route_spec_to_json(const RouteSpec& spec);

// "field" as a string, or an error naming it.
Result<std::string> json_string_field(const nlohmann::json& j, const char* name);

}  // namespace podfwd::control
