#include "control/bgp/bgp_routes.h"

namespace podfwd::control::bgp {

namespace {
// A hostile peer may send a million bad prefixes: each is counted, the first
// ones logged, and the memory of what was logged stays bounded.
constexpr std::size_t kMaxLoggedRefusals = 10'000;
}  // namespace

void BgpRoutes::load_stale(std::span<const BgpRoute> routes) {
    for (const BgpRoute& route : routes) {
        // Saved under another --accept or --pod-cidr: today's filter decides.
        if (!filter_.accepts(route.prefix) || route.next_hop == node_ip_)
            continue;
        routes_[route.prefix] = route;
        stale_.insert(route.prefix);
    }
}

void BgpRoutes::mark_all_stale() {
    for (const auto& [prefix, route] : routes_)
        stale_.insert(prefix);
}

void BgpRoutes::erase(const Prefix4& prefix, std::vector<BgpChange>& changes) {
    stale_.erase(prefix);
    if (routes_.erase(prefix) != 0)
        changes.push_back({prefix, std::nullopt});
}

void BgpRoutes::apply(std::span<const PathUpdate> updates, std::vector<BgpChange>& changes,
                      std::vector<Refusal>& refusals) {
    for (const PathUpdate& u : updates) {
        // Our own pod CIDRs, and anything whose next hop is this node, are
        // reached locally: the best path being ours means no route. A best
        // path we cannot follow must not leave the previous one in place.
        if (u.withdrawn || u.own || u.unusable || u.next_hop == node_ip_) {
            erase(u.prefix, changes);
            continue;
        }
        const BgpRoute route{u.prefix, u.next_hop, u.peer};
        if (std::string why = filter_.refusal(u.prefix); !why.empty()) {
            // A refused path replaces whatever the prefix had: the peer's
            // earlier acceptable statement no longer stands.
            erase(u.prefix, changes);
            PeerCounters& peer = peers_[u.peer];
            ++peer.refused;
            ++refused_total_;
            peer.last_refusal = u.prefix.str() + " refused: " + why;
            if (refusals_logged_.size() < kMaxLoggedRefusals && refusals_logged_.insert({u.prefix, u.peer}).second)
                refusals.push_back({route, std::move(why)});
            continue;
        }
        stale_.erase(u.prefix);
        auto [it, inserted] = routes_.try_emplace(u.prefix, route);
        if (inserted || it->second != route) {
            it->second = route;
            changes.push_back({u.prefix, route});
        }
    }
}

void BgpRoutes::sweep(std::vector<BgpChange>& changes) {
    for (const Prefix4& prefix : stale_) {
        routes_.erase(prefix);
        changes.push_back({prefix, std::nullopt});
    }
    stale_.clear();
}

std::map<Ipv4Addr, std::uint64_t> BgpRoutes::accepted_per_peer() const {
    std::map<Ipv4Addr, std::uint64_t> counts;
    for (const auto& [prefix, route] : routes_)
        ++counts[route.peer];
    return counts;
}

}  // namespace podfwd::control::bgp
