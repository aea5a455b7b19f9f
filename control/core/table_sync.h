// Pushes the RIB's best routes into the shared-memory table, and nothing
// else: a prefix whose best forwarding did not change is never touched.
//
// Next hops are shared: every route with the same Forwarding uses one
// record, whose MAC comes from the neighbour table and is rewritten in place
// (one store, all routes at once) when the neighbour changes. A record no
// route uses any more is deleted only after a grace period, so a dataplane
// lcore that looked up the old route just before the commit still finds its
// record; a route flapping back within the grace period reuses it.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "control/core/neighbours.h"
#include "control/core/rib.h"
#include "lpm/writer.h"

namespace podfwd::control {

class TableSync {
public:
    using Clock = std::chrono::steady_clock;
    static constexpr std::chrono::milliseconds kNextHopGrace{1000};

    TableSync(lpm::TableWriter& writer, const NeighbourTable& neighbours) : writer_(writer), neighbours_(neighbours) {}

    // Startup, also after a restart: makes the table equal the RIB's best
    // routes, changing only routes that differ. Records of an earlier run
    // that no route uses are retired. Never fails for capacity: what does
    // not fit is refused (and retried), the rest installed.
    Status reconcile(const Rib& rib);

    // Stages the prefix's new best forwarding (nullptr: withdraw). When the
    // table cannot take it (full, or a stalled reader pins its memory), the
    // prefix keeps the route it had (if any) and the new one is remembered
    // as refused and retried: a failed change never blackholes a prefix.
    Status stage(const Prefix4& prefix, const Forwarding* best);
    // Stages refused prefixes again (room may have been made); how many
    // went in. Call it periodically and commit when it returns non-zero.
    std::size_t retry_refused(const Rib& rib);
    // Makes staged changes visible to the dataplane.
    Status commit();
    // The neighbour's MAC changed: rewrite the records that send to it.
    Status neighbour_changed(Ipv4Addr ip);
    // Deletes records unused for longer than the grace period.
    void collect(Clock::time_point now = Clock::now());

    std::optional<lpm::NextHopId> installed_id(const Prefix4& prefix) const;
    // A best route the table refused (kept in the RIB, retried by retry_refused).
    bool refused(const Prefix4& prefix) const { return refused_.contains(prefix); }
    std::size_t installed() const noexcept { return installed_.size(); }
    std::size_t nexthops() const noexcept { return pool_.size(); }
    // Next-hop records that send frames to `ip`.
    std::size_t users_of(Ipv4Addr ip) const;
    // How many installed routes send frames to `ip`'s MAC (over all its records).
    std::size_t routes_via(Ipv4Addr ip) const;

private:
    struct PooledNextHop {
        lpm::NextHopId id = lpm::kNoRoute;
        std::uint32_t routes = 0;
        Clock::time_point unused_since{};
    };

    lpm::NextHop record(const Forwarding& f) const;
    Result<lpm::NextHopId> acquire(const Forwarding& f);
    void release(const Forwarding& f);
    Status withdraw(std::unordered_map<Prefix4, Forwarding, PrefixHash>::iterator installed);
    Status reconcile_deleting_first(std::span<const lpm::Route> desired);

    lpm::TableWriter& writer_;
    const NeighbourTable& neighbours_;
    std::map<Forwarding, PooledNextHop> pool_;
    std::unordered_map<Prefix4, Forwarding, PrefixHash> installed_;
    std::unordered_map<Prefix4, Forwarding, PrefixHash> refused_;
    std::vector<std::pair<lpm::NextHopId, Clock::time_point>> orphans_;   // an earlier run's records
};

}  // namespace podfwd::control
