#include "control/kernel/mirror.h"

namespace podfwd::control::kernel_detail {

std::optional<KernelEvent> RouteMirror::upsert(const Prefix4& prefix, const RouteKey& key, Ipv4Addr gateway) {
    const auto before = visible(prefix);
    routes_[prefix][key] = gateway;
    return changed(prefix, before);
}

std::optional<KernelEvent> RouteMirror::erase(const Prefix4& prefix, const RouteKey& key) {
    const auto it = routes_.find(prefix);
    if (it == routes_.end() || !it->second.contains(key))
        return std::nullopt;
    const auto before = visible(prefix);
    it->second.erase(key);
    if (it->second.empty())
        routes_.erase(it);
    return changed(prefix, before);
}

std::vector<KernelRoute> RouteMirror::routes() const {
    std::vector<KernelRoute> out;
    out.reserve(routes_.size());
    for (const auto& [prefix, by_key] : routes_)
        out.push_back(KernelRoute{prefix, by_key.begin()->second});
    return out;
}

std::optional<Ipv4Addr> RouteMirror::visible(const Prefix4& prefix) const {
    const auto it = routes_.find(prefix);
    if (it == routes_.end())
        return std::nullopt;
    return it->second.begin()->second;
}

std::optional<KernelEvent> RouteMirror::changed(const Prefix4& prefix, std::optional<Ipv4Addr> before) const {
    const auto after = visible(prefix);
    if (after == before)
        return std::nullopt;
    if (!after)
        return RouteRemoved{prefix};
    return RouteAdded{KernelRoute{prefix, *after}};
}

std::optional<KernelEvent> NeighbourMirror::up(const KernelNeighbour& neighbour) {
    const auto [it, inserted] = macs_.try_emplace(neighbour.ip, neighbour.mac);
    if (!inserted) {
        if (it->second == neighbour.mac)
            return std::nullopt;
        it->second = neighbour.mac;
    }
    return NeighbourUp{neighbour};
}

std::optional<KernelEvent> NeighbourMirror::down(Ipv4Addr ip) {
    if (macs_.erase(ip) == 0)
        return std::nullopt;
    return NeighbourDown{ip};
}

std::vector<KernelNeighbour> NeighbourMirror::neighbours() const {
    std::vector<KernelNeighbour> out;
    out.reserve(macs_.size());
    for (const auto& [ip, mac] : macs_)
        out.push_back(KernelNeighbour{ip, mac});
    return out;
}

}  // namespace podfwd::control::kernel_detail
