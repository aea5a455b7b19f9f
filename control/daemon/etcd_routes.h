// The etcd source's routes as RouteSpecs: the one place where Flannel's and
// Calico's vocabulary (control/etcd/layout.h) meets the RIB's.
#pragma once

#include "control/core/accept.h"
#include "control/core/policy.h"
#include "control/core/route.h"
#include "control/etcd/layout.h"

namespace podfwd::control {

// DirectRouting/CrossSubnet pick host-gw for nodes on this node's uplink
// subnet and the route's tunnel otherwise; the policy checks the rest.
RouteSpec etcd_route_spec(const etcd::EtcdRoute& route, const NodeConfig& node);

// The route as a RouteSpec when --accept lets it in; otherwise an error that
// names the prefix, the key it came from and why ("… outside the pod
// networks (--accept)"). This node's own blocks (local) may overlap
// --pod-cidr but must be inside --accept like the others.
Result<RouteSpec> accepted_etcd_route(const etcd::EtcdRoute& route, const NodeConfig& node, const AcceptFilter& filter);

}  // namespace podfwd::control
