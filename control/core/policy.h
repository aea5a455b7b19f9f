// The mode policy: what the dataplane does with a route, decided once when
// the route enters the RIB. A route the node cannot honour (host-gw to a
// node that is not one L2 hop away, VXLAN without the remote VTEP's MAC) is
// refused with an error naming the fix, never installed to black-hole traffic.
#pragma once

#include <optional>
#include <vector>

#include "control/core/route.h"
#include "lpm/types.h"

namespace podfwd::control {

struct NodeConfig {
    Ipv4Addr node_ip = 0;
    Prefix4 uplink;                       // the node's uplink subnet; node_ip is inside
    std::optional<Ipv4Addr> gateway;      // L2 next hop for nodes off the uplink subnet
    std::vector<Prefix4> pod_cidrs;       // this node's own pods: local routes
    ModeRequest default_mode = ModeRequest::kCrossSubnet;
    ModeRequest cross_subnet_tunnel = ModeRequest::kIpip;   // kIpip or kVxlan (Flannel's DirectRouting)
    std::uint32_t vni = 1;

    // Checks the config itself: node_ip inside uplink, gateway inside it and
    // not the node, default modes meaningful, VNI in range.
    Status validate() const;
};

// What the dataplane does for a route: the next-hop record minus the MAC,
// which comes from the neighbour table.
struct Forwarding {
    lpm::ForwardMode mode = lpm::ForwardMode::kDrop;
    Ipv4Addr node_ip = 0;       // tunnel endpoint / next-hop node
    Ipv4Addr l2_nexthop = 0;    // whose MAC frames go to: the node on the subnet, else the gateway
    std::uint32_t vni = 0;      // VXLAN
    MacAddr vtep_mac{};         // VXLAN
    // The uplink subnet's connected route (host-gw, no node): each packet's
    // own destination is its L2 next hop, which the dataplane resolves.
    bool connected = false;

    friend bool operator==(const Forwarding&, const Forwarding&) = default;
    friend auto operator<=>(const Forwarding&, const Forwarding&) = default;
};

// The forwarding of `route` on this node, or a one-line error that says why
// not and what to do instead.
Result<Forwarding> resolve(const NodeConfig& node, const RouteSpec& route);

// The uplink subnet as a route of its own (Source::kConnected): host-gw,
// no next-hop node, the dataplane ARPs for each destination.
RouteSpec connected_route(const NodeConfig& node);
Forwarding connected_forwarding();
// 0.0.0.0/0 host-gw via the gateway (Source::kGateway); nullopt without one.
std::optional<RouteSpec> gateway_route(const NodeConfig& node);

}  // namespace podfwd::control
