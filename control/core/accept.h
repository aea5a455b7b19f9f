// Which prefixes a network source may route: the pod networks (--accept),
// never a prefix overlapping the node's own uplink subnet or pod CIDRs,
// whatever --accept says, and the default route only when it is accepted by
// name (--accept-default-route: an --accept that covers everything is not
// consent to it). A peer, a datastore writer or another routing daemon on
// the node must not be able to steal the node's own traffic.
//
// One filter for every network source: BGP and etcd refuse what it refuses
// (a per-route error), the kernel source ignores it (counted).
#pragma once

#include <span>
#include <string>
#include <vector>

#include "common/ipv4.h"
#include "control/core/policy.h"

namespace podfwd::control {

enum class DefaultRoute : bool { kRefused, kAccepted };

class AcceptFilter {
public:
    AcceptFilter() = default;
    AcceptFilter(std::vector<Prefix4> accept, const NodeConfig& node,
                 DefaultRoute default_route = DefaultRoute::kRefused);

    // Empty when the prefix may be routed; otherwise why not, one line
    // ("outside the pod networks (--accept)", "the default route", …).
    std::string refusal(const Prefix4& prefix) const;
    bool accepts(const Prefix4& prefix) const { return refusal(prefix).empty(); }
    // A route the source says is this node's own (a Calico block affine to
    // it): it delivers to the node, so overlapping --pod-cidr is expected;
    // it must still be inside --accept.
    std::string refusal_of_own(const Prefix4& prefix) const;

    std::span<const Prefix4> accept() const noexcept { return accept_; }

private:
    std::vector<Prefix4> accept_;
    std::vector<Prefix4> protected_;   // uplink subnet and this node's pod CIDRs
    DefaultRoute default_route_ = DefaultRoute::kRefused;
};

// True when a and b share an address (one contains the other).
bool overlaps(const Prefix4& a, const Prefix4& b) noexcept;

}  // namespace podfwd::control
