// Command line and config file of podfwd-dataplane (the part after "--").
//
// Parsed and checked before rte_eal_init, so a typo fails at once without
// touching hugepages or devices; what needs the EAL (do the ports exist,
// their MACs) is resolved afterwards by resolve_ports().
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/result.h"
#include "dataplane/exception.h"
#include "dataplane/fastpath.h"

namespace podfwd::dp::app {

struct Options {
    Ipv4Addr node_ip = 0;
    std::optional<proto::MacAddr> node_mac;   // default: the uplink port's MAC
    std::optional<proto::MacAddr> vtep_mac;   // default: the node MAC
    std::optional<proto::MacAddr> host_mac;   // default: the host port's MAC (right for net_tap)
    std::uint16_t mtu = 1500;
    std::uint16_t vxlan_port = 4789;
    std::uint32_t vni = 1;
    std::string table = "podfwd";
    std::uint16_t uplink_port = 0;
    std::uint16_t host_port = 1;
    unsigned burst = 32;
    std::uint32_t icmp_rate = ExceptionPath::kDefaultIcmpRate;     // per lcore
    std::uint32_t icmp_burst = ExceptionPath::kDefaultIcmpBurst;   // per lcore
};

struct ParsedArgs {
    bool help = false;   // usage was requested: print usage_text() and exit 0
    Options options;
};

// argv[0] is the program name, the rest the application's arguments.
// Errors are kInvalidArgument with a one-line message.
Result<ParsedArgs> parse_options(int argc, char** argv);
std::string usage_text();

// Checks the port ids against the EAL's devices and fills the MAC defaults.
Result<NodeConfig> resolve_ports(const Options& options);

}  // namespace podfwd::dp::app
