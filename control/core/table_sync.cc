#include "control/core/table_sync.h"

#include <algorithm>
#include <unordered_set>

namespace podfwd::control {

namespace {
bool needs_mac(lpm::ForwardMode m) noexcept {
    return m == lpm::ForwardMode::kHostGw || m == lpm::ForwardMode::kIpip || m == lpm::ForwardMode::kVxlan;
}
}  // namespace

lpm::NextHop TableSync::record(const Forwarding& f) const {
    lpm::NextHop nh;
    nh.node_ip = f.node_ip;
    nh.vni = f.vni;
    nh.mode = f.mode;
    nh.vtep_mac = f.vtep_mac;
    if (f.connected) {
        // Each packet's destination is its own L2 next hop: the record
        // never holds a MAC, the dataplane resolves per destination.
        nh.flags |= lpm::NextHop::kConnected;
        return nh;
    }
    if (needs_mac(f.mode)) {
        // Whom the dataplane ARPs for while the MAC is unknown: the gateway
        // for a tunnel to a node off the subnet, not the node.
        nh.l2_ip = f.l2_nexthop;
        if (const auto mac = neighbours_.mac(f.l2_nexthop)) {
            nh.mac = *mac;
            nh.flags |= lpm::NextHop::kMacResolved;
        }
    }
    return nh;
}

Result<lpm::NextHopId> TableSync::acquire(const Forwarding& f) {
    if (auto it = pool_.find(f); it != pool_.end()) {
        ++it->second.routes;
        return it->second.id;
    }
    // ensure, not add: after a restart the table already holds this record
    // and its routes keep their id.
    auto id = writer_.nexthop_ensure(record(f));
    if (!id)
        return id;
    pool_.emplace(f, PooledNextHop{*id, 1, {}});
    return id;
}

void TableSync::release(const Forwarding& f) {
    auto it = pool_.find(f);
    if (it != pool_.end() && --it->second.routes == 0)
        it->second.unused_since = Clock::now();
}

Status TableSync::reconcile(const Rib& rib) {
    std::vector<lpm::Route> desired;
    desired.reserve(rib.prefixes());
    rib.for_each_best([&](const RibRoute& best) {
        auto id = acquire(best.forwarding);
        if (!id) {   // no record left (an earlier run's still hold them): retried later
            refused_[best.spec.prefix] = best.forwarding;
            return;
        }
        desired.push_back({best.spec.prefix, *id});
        installed_.emplace(best.spec.prefix, best.forwarding);
    });
    if (auto s = writer_.reconcile(desired); !s) {
        if (s.error().code != Errc::kCapacity)
            return s;
        // reconcile() adds before it deletes, so it needs room for both
        // sets; here there is none. Make room first (routes that will
        // change go briefly missing), then add what fits.
        if (auto d = reconcile_deleting_first(desired); !d)
            return d;
    }
    std::unordered_set<lpm::NextHopId> ours;
    for (const auto& [f, pooled] : pool_)
        ours.insert(pooled.id);
    for (const auto& [id, nh] : writer_.nexthops())
        if (!ours.contains(id))
            orphans_.emplace_back(id, Clock::now());
    return ok();
}

Status TableSync::reconcile_deleting_first(std::span<const lpm::Route> desired) {
    std::unordered_map<Prefix4, lpm::NextHopId, PrefixHash> wanted;
    for (const lpm::Route& r : desired)
        wanted.emplace(r.prefix, r.nexthop);
    for (const lpm::Route& r : writer_.routes()) {
        auto it = wanted.find(r.prefix);
        if (it == wanted.end() || it->second != r.nexthop)
            if (auto s = writer_.route_del(r.prefix); !s)
                return s;
    }
    if (auto s = writer_.commit(); !s)
        return s;
    for (const lpm::Route& r : desired) {
        if (writer_.route_get(r.prefix) == r.nexthop)
            continue;
        if (!writer_.route_add(r.prefix, r.nexthop)) {
            refused_[r.prefix] = installed_.at(r.prefix);
            release(installed_.at(r.prefix));
            installed_.erase(r.prefix);
        }
    }
    return writer_.commit();
}

Status TableSync::stage(const Prefix4& prefix, const Forwarding* best) {
    auto current = installed_.find(prefix);
    if (best == nullptr) {
        refused_.erase(prefix);
        return current == installed_.end() ? ok() : withdraw(current);
    }
    if (current != installed_.end() && current->second == *best) {
        refused_.erase(prefix);
        return ok();
    }
    auto id = acquire(*best);
    Status added = id ? writer_.route_add(prefix, *id) : Status(std::move(id).error());
    if (!added) {
        if (id)
            release(*best);
        // A failed replace keeps the previous route: the table is full or a
        // stalled reader pins its memory, and withdrawing would blackhole
        // the prefix (and needs memory too). The new route is retried.
        refused_[prefix] = *best;
        return added;
    }
    refused_.erase(prefix);
    if (current != installed_.end()) {
        release(current->second);
        current->second = *best;
    } else {
        installed_.emplace(prefix, *best);
    }
    return ok();
}

Status TableSync::withdraw(std::unordered_map<Prefix4, Forwarding, PrefixHash>::iterator installed) {
    if (auto s = writer_.route_del(installed->first); !s)
        return s;
    release(installed->second);
    installed_.erase(installed);
    return ok();
}

std::size_t TableSync::retry_refused(const Rib& rib) {
    std::vector<Prefix4> prefixes;
    prefixes.reserve(refused_.size());
    for (const auto& [prefix, forwarding] : refused_)
        prefixes.push_back(prefix);
    std::size_t staged = 0;
    for (const Prefix4& prefix : prefixes) {
        const RibRoute* best = rib.best(prefix);
        if (stage(prefix, best != nullptr ? &best->forwarding : nullptr))
            ++staged;
    }
    return staged;
}

Status TableSync::commit() { return writer_.commit(); }

Status TableSync::neighbour_changed(Ipv4Addr ip) {
    Status first;
    for (const auto& [f, pooled] : pool_) {
        if (f.l2_nexthop != ip || !needs_mac(f.mode))
            continue;
        if (auto s = writer_.nexthop_update(pooled.id, record(f)); !s && first)
            first = s;   // the other records still get the new MAC
    }
    return first;
}

void TableSync::collect(Clock::time_point now) {
    for (auto it = pool_.begin(); it != pool_.end();) {
        const PooledNextHop& p = it->second;
        if (p.routes == 0 && now - p.unused_since >= kNextHopGrace && writer_.nexthop_del(p.id))
            it = pool_.erase(it);
        else
            ++it;
    }
    std::erase_if(orphans_, [&](const auto& orphan) {
        if (now - orphan.second < kNextHopGrace)
            return false;
        // A route of this run may have adopted the record (nexthop_ensure).
        if (std::any_of(pool_.begin(), pool_.end(), [&](const auto& kv) { return kv.second.id == orphan.first; }))
            return true;
        const Status s = writer_.nexthop_del(orphan.first);
        return s || s.error().code == Errc::kNotFound;
    });
}

std::optional<lpm::NextHopId> TableSync::installed_id(const Prefix4& prefix) const {
    auto it = installed_.find(prefix);
    if (it == installed_.end())
        return std::nullopt;
    auto p = pool_.find(it->second);
    return p == pool_.end() ? std::nullopt : std::optional(p->second.id);
}

std::size_t TableSync::users_of(Ipv4Addr ip) const {
    return static_cast<std::size_t>(std::count_if(pool_.begin(), pool_.end(), [&](const auto& kv) {
        return kv.first.l2_nexthop == ip && needs_mac(kv.first.mode) && kv.second.routes != 0;
    }));
}

std::size_t TableSync::routes_via(Ipv4Addr ip) const {
    std::size_t routes = 0;
    for (const auto& [forwarding, pooled] : pool_)
        if (forwarding.l2_nexthop == ip && needs_mac(forwarding.mode))
            routes += pooled.routes;
    return routes;
}

}  // namespace podfwd::control
