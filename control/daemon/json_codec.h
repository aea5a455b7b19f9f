// Routes, neighbours and the CLI's saved state as JSON: the shapes of
// control/PROTOCOL.md, written once for the socket and the state file.
#pragma once

#include <nlohmann/json.hpp>

#include "control/core/neighbours.h"
#include "control/core/route_json.h"
#include "control/core/rib.h"
#include "control/daemon/atomic_file.h"

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
// The file's text; errors start with `origin`.
Result<CliState> parse_cli_state(std::string_view text, std::string_view origin);
// Atomic against a crash of the daemon (replace_file: a temporary of its
// own, renamed over the old), mode 0600; kDeferred leaves reaching the disk
// to flush_cli_state().
Status save_cli_state(const std::string& path, const CliState& state, Durability durability = Durability::kDeferred);
// fsync of the file and its directory: durable against a power loss.
Status flush_cli_state(const std::string& path);

}  // namespace podfwd::control
