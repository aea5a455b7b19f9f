// podfwdctl's command line: what the user asked for, checked before anything
// is sent (a typo never reaches the daemon), and the request it becomes.
// Syntax: control/ctl/README.md.
#pragma once

#include <chrono>
#include <optional>
#include <span>
#include <string>
#include <variant>

#include <nlohmann/json.hpp>

#include "common/result.h"

namespace podfwd::ctl {

// How a daemon result is shown to a human.
enum class View {
    kRouteAdded,
    kRouteRemoved,
    kRouteList,
    kRouteGet,
    kNeighbourAdded,
    kNeighbourRemoved,
    kNeighbourList,
    kSources,
    kStatus,
    kBgpPeers,
};

struct DaemonCommand {
    nlohmann::json request;   // {"op": ..., arguments}, control/PROTOCOL.md
    View view = View::kStatus;
};

struct StatsCommand {
    bool all = false;                        // also zero drop reasons
    bool watch = false;
    std::chrono::duration<double> interval{1.0};
    std::optional<unsigned> count;           // watch: reports before exiting; none: until interrupted
};

struct HelpCommand {};

using Command = std::variant<HelpCommand, DaemonCommand, StatsCommand>;

struct Invocation {
    std::string table = "podfwd";
    std::string socket_path;   // resolved: --socket, else PODFWD_SOCKET, else /run/podfwd/<table>.sock
    bool json = false;
    Command command;
};

// args excludes the program name. socket_env: PODFWD_SOCKET, if set.
// Every error is a usage error (Errc::kInvalidArgument) with a one-line message.
Result<Invocation> parse_command_line(std::span<const std::string> args, std::optional<std::string> socket_env);

std::string usage_text();

}  // namespace podfwd::ctl
