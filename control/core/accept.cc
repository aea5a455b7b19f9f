#include "control/core/accept.h"

#include <algorithm>

namespace podfwd::control {

bool overlaps(const Prefix4& a, const Prefix4& b) noexcept {
    const std::uint8_t shorter = std::min(a.len, b.len);
    return ((a.addr ^ b.addr) & prefix_mask(shorter)) == 0;
}

AcceptFilter::AcceptFilter(std::vector<Prefix4> accept, const NodeConfig& node, DefaultRoute default_route)
    : accept_(std::move(accept)), default_route_(default_route) {
    protected_.push_back(node.uplink);
    protected_.insert(protected_.end(), node.pod_cidrs.begin(), node.pod_cidrs.end());
}

std::string AcceptFilter::refusal(const Prefix4& prefix) const {
    if (prefix.len == 0)   // it overlaps everything: its own consent decides
        return refusal_of_own(prefix);
    for (const Prefix4& own : protected_)
        if (overlaps(prefix, own))
            return "overlaps this node's own " + own.str();
    return refusal_of_own(prefix);
}

std::string AcceptFilter::refusal_of_own(const Prefix4& prefix) const {
    if (prefix.len == 0)
        return default_route_ == DefaultRoute::kAccepted ? std::string() : "the default route is never accepted";
    const bool inside = std::any_of(accept_.begin(), accept_.end(), [&](const Prefix4& pod_network) {
        return pod_network.len <= prefix.len && pod_network.contains(prefix.addr);
    });
    return inside ? std::string() : "outside the pod networks (--accept)";
}

}  // namespace podfwd::control
