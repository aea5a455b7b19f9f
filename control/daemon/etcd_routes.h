// The etcd source's routes as RouteSpecs: the one place where Flannel's and
// Calico's vocabulary (control/etcd/layout.h) meets the RIB's.
#pragma once

#include "control/core/policy.h"
#include "control/core/route.h"
#include "control/etcd/layout.h"

namespace podfwd::control {

// DirectRouting/CrossSubnet pick host-gw for nodes on this node's uplink
// subnet and the route's tunnel otherwise; the policy checks the rest.
RouteSpec etcd_route_spec(const etcd::EtcdRoute& route, const NodeConfig& node);

}  // namespace podfwd::control
