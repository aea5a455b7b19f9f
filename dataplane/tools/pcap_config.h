// podfwd-pcap-forward's JSON config: the node, the next hops and routes of
// the table it builds, and (optionally) the resolver's neighbour settings.
//
//   {"node": {"ip", "uplink_mac", "host_mac", ["vtep_mac", "vxlan_port", "vni", "mtu",
//             "icmp_rate", "icmp_burst"]},
//    "nexthops": [{"name", "mode", ["node_ip", "mac", "vtep_mac", "vni", "l2_ip", "connected"]}],
//    "routes": [{"prefix", "via"}],
//    "neighbour": {[NeighbourConfig's fields, times in ms; "tick_ms"]}}
//
// With a "neighbour" object (even empty: NeighbourConfig's defaults) the
// tool resolves next hops without a MAC with ARP (a Resolver); without one,
// packets to them are dropped as unresolved_nexthop, as before resolution
// existed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/ipv4.h"
#include "dataplane/exception.h"
#include "dataplane/fastpath.h"
#include "dataplane/neighbour.h"
#include "dataplane/resolver.h"
#include "lpm/types.h"

namespace podfwd::pcaptool {

// A config or usage error: one line on stderr, exit status 2.
struct ConfigError {
    std::string message;
};

[[noreturn]] void fail(std::string message);

struct NextHopConfig {
    std::string name;
    lpm::NextHop record;
};

struct RouteConfig {
    Prefix4 prefix;
    std::string via;
};

struct ResolverConfig {
    dp::NeighbourConfig neighbour;
    std::uint64_t tick_ns = dp::Resolver::kDefaultTickNs;
};

struct Config {
    dp::NodeConfig node;
    std::uint32_t icmp_rate = dp::ExceptionPath::kDefaultIcmpRate;
    std::uint32_t icmp_burst = dp::ExceptionPath::kDefaultIcmpBurst;
    std::vector<NextHopConfig> nexthops;
    std::vector<RouteConfig> routes;
    std::optional<ResolverConfig> resolver;   // the "neighbour" object
};

// Throws ConfigError naming the file and the field that is wrong.
Config parse_config(const std::string& path);

}  // namespace podfwd::pcaptool
