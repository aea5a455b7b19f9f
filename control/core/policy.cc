#include "control/core/policy.h"

namespace podfwd::control {

namespace {

Error refused(const RouteSpec& r, const std::string& why) {
    return Error{Errc::kInvalidArgument, r.prefix.str() + ": " + why};
}

constexpr std::uint32_t kMaxVni = (1u << 24) - 1;

bool is_usable_unicast(Ipv4Addr a) {
    const unsigned first = a >> 24;
    return first != 0 && first != 127 && first < 224;
}

}  // namespace

Status NodeConfig::validate() const {
    if (!is_usable_unicast(node_ip))
        return Error{Errc::kInvalidArgument, "node IP " + format_ipv4(node_ip) + " is not a unicast address"};
    if (!uplink.contains(node_ip) || uplink.len == 32)
        return Error{Errc::kInvalidArgument, "node IP " + format_ipv4(node_ip) + " is not inside the uplink subnet " +
                                                 uplink.str() + " (give --uplink as the subnet, e.g. 10.168.0.0/24)"};
    if (gateway) {
        // Frames to it carry its MAC (the default route, tunnels to nodes
        // off the subnet): it must be one L2 hop away, and a host of the subnet.
        if (!uplink.contains(*gateway))
            return Error{Errc::kInvalidArgument, "gateway " + format_ipv4(*gateway) + " is not on the uplink subnet " +
                                                     uplink.str() + ": it must be one L2 hop from this node"};
        const Ipv4Addr host_bits = uplink.len >= 31 ? 0 : ~Ipv4Addr{0} >> uplink.len;
        if (host_bits != 0 && ((*gateway & host_bits) == 0 || (*gateway & host_bits) == host_bits))
            return Error{Errc::kInvalidArgument, "gateway " + format_ipv4(*gateway) + " is the network or broadcast "
                                                 "address of the uplink subnet " + uplink.str()};
        if (*gateway == node_ip)
            return Error{Errc::kInvalidArgument, "gateway " + format_ipv4(*gateway) + " is this node's own IP"};
    }
    if (default_mode == ModeRequest::kDefault || default_mode == ModeRequest::kLocal ||
        default_mode == ModeRequest::kBlackhole)
        return Error{Errc::kInvalidArgument, std::string("default mode must be host-gw, ipip, vxlan or cross-subnet, not ") +
                                                 mode_request_name(default_mode)};
    if (cross_subnet_tunnel != ModeRequest::kIpip && cross_subnet_tunnel != ModeRequest::kVxlan)
        return Error{Errc::kInvalidArgument, std::string("the cross-subnet tunnel must be ipip or vxlan, not ") +
                                                 mode_request_name(cross_subnet_tunnel)};
    if (vni == 0 || vni > kMaxVni)
        return Error{Errc::kInvalidArgument, "VNI " + std::to_string(vni) + " is out of range 1..16777215"};
    return ok();
}

Result<Forwarding> resolve(const NodeConfig& node, const RouteSpec& r) {
    ModeRequest mode = r.mode == ModeRequest::kDefault ? node.default_mode : r.mode;
    if (mode == ModeRequest::kLocal || mode == ModeRequest::kBlackhole) {
        if (r.via != 0)
            return refused(r, std::string("a ") + mode_request_name(mode) + " route takes no next hop");
        return Forwarding{mode == ModeRequest::kLocal ? lpm::ForwardMode::kLocal : lpm::ForwardMode::kDrop};
    }
    if (r.via == 0)
        return refused(r, "needs a next-hop node (via)");
    if (!is_usable_unicast(r.via))
        return refused(r, "next hop " + format_ipv4(r.via) + " is not a unicast address");
    if (r.via == node.node_ip)
        return refused(r, "next hop " + format_ipv4(r.via) + " is this node; route its own pods with mode local");

    const bool on_subnet = node.uplink.contains(r.via);
    if (mode == ModeRequest::kCrossSubnet)
        mode = on_subnet ? ModeRequest::kHostGw : node.cross_subnet_tunnel;

    Forwarding f;
    f.node_ip = r.via;
    switch (mode) {
    case ModeRequest::kHostGw:
        // host-gw only rewrites MACs: the next hop must be one L2 hop away,
        // or the frame goes to a MAC that is not the pod's node.
        if (!on_subnet)
            return refused(r, "host-gw needs the next hop on the uplink subnet " + node.uplink.str() + ", and " +
                                  format_ipv4(r.via) + " is not (use ipip, vxlan or cross-subnet)");
        f.mode = lpm::ForwardMode::kHostGw;
        f.l2_nexthop = r.via;
        return f;
    case ModeRequest::kIpip:
    case ModeRequest::kVxlan:
        if (!on_subnet && !node.gateway)
            return refused(r, "next hop " + format_ipv4(r.via) + " is off the uplink subnet " + node.uplink.str() +
                                  " and no gateway is configured (--gateway)");
        f.l2_nexthop = on_subnet ? r.via : *node.gateway;
        if (mode == ModeRequest::kIpip) {
            f.mode = lpm::ForwardMode::kIpip;
            return f;
        }
        if (!r.vtep_mac)
            return refused(r, "vxlan needs the remote VTEP's MAC (vtep-mac, Flannel's VtepMAC)");
        if (!is_unicast(*r.vtep_mac))
            return refused(r, "vtep-mac " + format_mac(*r.vtep_mac) + " is not a unicast MAC");
        if (r.vni > kMaxVni)
            return refused(r, "VNI " + std::to_string(r.vni) + " is out of range 1..16777215");
        f.mode = lpm::ForwardMode::kVxlan;
        f.vni = r.vni != 0 ? r.vni : node.vni;
        f.vtep_mac = *r.vtep_mac;
        return f;
    default:
        break;
    }
    return refused(r, std::string("mode ") + mode_request_name(mode) + " cannot be resolved");
}

RouteSpec connected_route(const NodeConfig& node) {
    return RouteSpec{node.uplink, Source::kConnected, 0, ModeRequest::kHostGw, 0, std::nullopt};
}

Forwarding connected_forwarding() {
    Forwarding f;
    f.mode = lpm::ForwardMode::kHostGw;
    f.connected = true;
    return f;
}

std::optional<RouteSpec> gateway_route(const NodeConfig& node) {
    if (!node.gateway)
        return std::nullopt;
    return RouteSpec{Prefix4{0, 0}, Source::kGateway, *node.gateway, ModeRequest::kHostGw, 0, std::nullopt};
}

}  // namespace podfwd::control
