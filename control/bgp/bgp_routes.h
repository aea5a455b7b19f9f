// The BGP source's routes, apart from gRPC and threads: gobgpd's best-path
// updates, filtered and translated into route changes, and the stale routes
// of a previous gobgpd (or a previous podfwd-control) kept until relearned
// or swept. Pure logic: unit-tested against a naive model.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "control/bgp/bgp_source.h"

namespace podfwd::control::bgp {

// One best-path update as gobgpd reports it (WatchEvent, table BEST).
struct PathUpdate {
    Prefix4 prefix;
    Ipv4Addr next_hop = 0;
    Ipv4Addr peer = 0;        // learned from (0: not over an IPv4 session)
    bool withdrawn = false;   // no best path for the prefix any more
    bool own = false;         // a path this speaker originated (AddPath)
    bool unusable = false;    // a best path we cannot follow (no IPv4 next hop): no route

    friend bool operator==(const PathUpdate&, const PathUpdate&) = default;
};

// A best path the filter refused, for the log (first time per prefix and peer).
struct Refusal {
    BgpRoute route;
    std::string reason;
};

class BgpRoutes {
public:
    BgpRoutes(AcceptFilter filter, Ipv4Addr node_ip) : filter_(std::move(filter)), node_ip_(node_ip) {}

    // Routes stated before (saved by a previous podfwd-control), stale from
    // the start; those today's filter refuses are left out.
    void load_stale(std::span<const BgpRoute> routes);
    // A new gobgpd (or a new connection to one) is about to dump its best
    // paths: what is held now stays, stale, until restated or swept.
    void mark_all_stale();
    // Applies updates in order; appends the route changes (and refusals).
    void apply(std::span<const PathUpdate> updates, std::vector<BgpChange>& changes, std::vector<Refusal>& refusals);
    // Withdraws every stale route.
    void sweep(std::vector<BgpChange>& changes);

    const std::map<Prefix4, BgpRoute>& routes() const noexcept { return routes_; }
    std::size_t stale() const noexcept { return stale_.size(); }
    std::uint64_t refused() const noexcept { return refused_total_; }

    struct PeerCounters {
        std::uint64_t refused = 0;
        std::string last_refusal;
    };
    const std::map<Ipv4Addr, PeerCounters>& peer_counters() const noexcept { return peers_; }
    // Routes held now, per peer they were learned from.
    std::map<Ipv4Addr, std::uint64_t> accepted_per_peer() const;

private:
    void erase(const Prefix4& prefix, std::vector<BgpChange>& changes);

    AcceptFilter filter_;
    Ipv4Addr node_ip_;
    std::map<Prefix4, BgpRoute> routes_;
    std::set<Prefix4> stale_;
    std::map<Ipv4Addr, PeerCounters> peers_;
    std::set<std::pair<Prefix4, Ipv4Addr>> refusals_logged_;   // bounded: kMaxLoggedRefusals
    std::uint64_t refused_total_ = 0;
};

}  // namespace podfwd::control::bgp
