#include "control/daemon/etcd_routes.h"

namespace podfwd::control {

namespace {

ModeRequest mode_of(const etcd::EtcdRoute& route, const NodeConfig& node) {
    switch (route.encap) {
    case etcd::Encap::kLocal: return ModeRequest::kLocal;
    case etcd::Encap::kHostGw: return ModeRequest::kHostGw;
    case etcd::Encap::kIpip:
    case etcd::Encap::kVxlan:
        if (route.direct_on_subnet && node.uplink.contains(route.via))
            return ModeRequest::kHostGw;
        return route.encap == etcd::Encap::kIpip ? ModeRequest::kIpip : ModeRequest::kVxlan;
    }
    return ModeRequest::kHostGw;
}

}  // namespace

RouteSpec etcd_route_spec(const etcd::EtcdRoute& route, const NodeConfig& node) {
    RouteSpec spec{route.prefix, Source::kEtcd, route.via, mode_of(route, node), 0, std::nullopt};
    if (spec.mode == ModeRequest::kLocal)
        spec.via = 0;
    if (spec.mode == ModeRequest::kVxlan) {
        spec.vni = route.vni;
        spec.vtep_mac = route.vtep_mac;
    }
    return spec;
}

Result<RouteSpec> accepted_etcd_route(const etcd::EtcdRoute& route, const NodeConfig& node, const AcceptFilter& filter) {
    RouteSpec spec = etcd_route_spec(route, node);
    const std::string why =
        spec.mode == ModeRequest::kLocal ? filter.refusal_of_own(spec.prefix) : filter.refusal(spec.prefix);
    if (why.empty())
        return spec;
    std::string message = describe(spec);
    if (!route.key.empty())
        message += " (" + route.key + ")";
    return Error{Errc::kInvalidArgument, message + ": " + why};
}

}  // namespace podfwd::control
