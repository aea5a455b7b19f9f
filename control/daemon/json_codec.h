// Routes, neighbours and the CLI's saved state as JSON: the shapes of
// control/PROTOCOL.md, written once for the socket and the state file.
#pragma once

#include <nlohmann/json.hpp>

#include "control/core/neighbours.h"
#include "control/core/route_json.h"
#include "control/core/rib.h"

namespace podfwd::control {

// {ip, mac}
Result<Neighbour> neighbour_from_json(const nlohmann::json& j, Source source);

const char* effective_mode_name(lpm::ForwardMode mode) noexcept;

// The CLI's own routes and neighbours, kept in a file so that a restarted
// daemon still has them (written to a temporary file, then renamed).
struct CliState {
    std::vector<RouteSpec> routes;
    std::vector<Neighbour> neighbours;
};
// A missing file is an empty state; an empty file is kNotFound (see the .cc).
Result<CliState> load_cli_state(const std::string& path);
// Atomic against a crash of the daemon (temporary file, rename), mode 0600.
Status save_cli_state(const std::string& path, const CliState& state);
// fsync of the file and its directory: durable against a power loss.
Status flush_cli_state(const std::string& path);

}  // namespace podfwd::control
