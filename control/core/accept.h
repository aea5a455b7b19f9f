// Which prefixes a network source may route: the pod networks (--accept),
// never the default route, never a prefix overlapping the node's own uplink
// subnet or pod CIDRs, whatever --accept says. A peer (or a datastore
// writer) must not be able to steal the node's own traffic.
//
// One filter for every network source; BGP applies it now (issue 17 extends
// it to the kernel and etcd sources).
#pragma once

#include <span>
#include <string>
#include <vector>

#include "common/ipv4.h"
#include "control/core/policy.h"

namespace podfwd::control {

class AcceptFilter {
public:
    AcceptFilter() = default;
    AcceptFilter(std::vector<Prefix4> accept, const NodeConfig& node);

    // Empty when the prefix may be routed; otherwise why not, one line
    // ("outside the pod networks (--accept)", "the default route", …).
    std::string refusal(const Prefix4& prefix) const;
    bool accepts(const Prefix4& prefix) const { return refusal(prefix).empty(); }

    std::span<const Prefix4> accept() const noexcept { return accept_; }

private:
    std::vector<Prefix4> accept_;
    std::vector<Prefix4> protected_;   // uplink subnet and this node's pod CIDRs
};

// True when a and b share an address (one contains the other).
bool overlaps(const Prefix4& a, const Prefix4& b) noexcept;

}  // namespace podfwd::control
