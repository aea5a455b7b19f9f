// What the etcd source learns, in its own vocabulary: routes to other nodes'
// pod CIDRs, derived from the keys of one datastore layout (Flannel's subnet
// leases or Calico's IPAM blocks). control/daemon/etcd_routes.cc translates
// them into RouteSpecs; nothing here knows the RIB.
//
// A layout is a pure function of the keys it has seen: apply() feeds it one
// key's new value (or its deletion) and reports the routes that changed, so
// the watch loop never recomputes the whole set for one event. A key whose
// value is bad is rejected (reason kept until the key changes) and states no
// route; every other key's route stays.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/ipv4.h"
#include "common/mac.h"

namespace podfwd::control::etcd {

// How the remote node wants its pods' packets.
enum class Encap : std::uint8_t {
    kHostGw,   // plain, to the node's MAC (it must be on our subnet)
    kIpip,
    kVxlan,
    kLocal,    // this node's own pods (Calico blocks affine to us)
};

struct EtcdRoute {
    Prefix4 prefix;
    Ipv4Addr via = 0;                  // the node's address (0 for kLocal)
    Encap encap = Encap::kHostGw;
    // Flannel DirectRouting / Calico CrossSubnet: host-gw when `via` is on
    // this node's subnet, `encap` otherwise.
    bool direct_on_subnet = false;
    std::uint32_t vni = 0;             // kVxlan
    std::optional<MacAddr> vtep_mac;   // kVxlan
    std::string key;                   // the etcd key that states it (for logs)

    friend bool operator==(const EtcdRoute&, const EtcdRoute&) = default;
};

// One route appeared, changed (route set) or went (route unset).
struct RouteChange {
    Prefix4 prefix;
    std::optional<EtcdRoute> route;
};

// A key the layout could not use, and why (one line, names the key).
struct Rejection {
    std::string key;
    std::string reason;
};

struct LayoutCounters {
    std::uint64_t keys = 0;       // keys currently held (of the layout's prefixes)
    std::uint64_t rejected = 0;   // keys currently rejected
};

}  // namespace podfwd::control::etcd
