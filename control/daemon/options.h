// Command line and config file of podfwd-control.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "control/bgp/bgp_source.h"
#include "control/core/accept.h"
#include "control/core/policy.h"
#include "control/etcd/etcd_source.h"
#include "control/kernel/kernel_source.h"
#include "lpm/types.h"

namespace podfwd::control {

struct DaemonOptions {
    NodeConfig node;
    Preferences preferences = default_preferences();
    std::string table = "podfwd";      // /dev/shm/<table>
    lpm::Capacity capacity;            // of a table created here; an existing one must match
    std::string socket;                // default /run/podfwd/<table>.sock
    std::string state_dir;             // default /var/lib/podfwd: the CLI's routes survive restarts
    std::string static_routes;         // empty: no static file
    // A static file or CLI state with no routes at all is more likely
    // half-written than meant: refused unless these say it is meant.
    bool allow_empty_static = false;
    bool allow_empty_cli_state = false;
    std::optional<KernelOptions> kernel;
    std::optional<etcd::EtcdSourceOptions> etcd;   // --etcd-endpoints
    std::chrono::milliseconds etcd_start_wait{5000};   // for etcd's first read before reconciling
    std::vector<Prefix4> accept;                   // --accept: the pod networks network sources may route
    bool accept_default_route = false;             // --accept-default-route: 0.0.0.0/0 from them too
    std::optional<bgp::BgpOptions> bgp;            // --bgp-as
    bool default_route = true;         // 0.0.0.0/0 via --gateway (--no-default-route: none)
    std::string log_level = "info";

    AcceptFilter accept_filter() const {
        return AcceptFilter(accept, node, accept_default_route ? DefaultRoute::kAccepted : DefaultRoute::kRefused);
    }
    std::string cli_state_path() const { return state_dir + "/" + table + ".cli.json"; }
    // etcd's routes as last applied: a restart while etcd is unreachable starts from them.
    std::string etcd_state_path() const { return state_dir + "/" + table + ".etcd.json"; }
    // BGP's routes as last applied: a restart finds them, stale until relearned.
    std::string bgp_state_path() const { return state_dir + "/" + table + ".bgp.json"; }
};

struct ParsedDaemonArgs {
    bool help = false;
    DaemonOptions options;
};

Result<ParsedDaemonArgs> parse_daemon_options(int argc, char** argv);
std::string daemon_usage();

}  // namespace podfwd::control
