// BgpRoutes under random histories, against a model: the second half of
// test_bgp_routes.cc's model test, in a file of its own for length.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>
#include <span>
#include <vector>

#include "control/bgp/bgp_routes.h"

namespace podfwd::control::bgp {
namespace {

using Rng = std::mt19937_64;
std::size_t pick(Rng& rng, std::size_t n) { return static_cast<std::size_t>(rng() % n); }
bool one_in(Rng& rng, std::size_t n) { return pick(rng, n) == 0; }
template <typename T, std::size_t N>
const T& pick_of(Rng& rng, const T (&items)[N]) { return items[pick(rng, N)]; }

// test_bgp_routes.cc's model test applies single updates from an empty start
// under one filter. Left to this one: routes saved by a previous run (some
// refused today, or via this node), batches, updates as path_update makes
// them (a peer's path without a next hop, a peer over IPv6 as peer 0),
// random filters, and the refusal counters and log. Whether a prefix is
// refused is test_accept.cc's business: the model asks the filter.
const Ipv4Addr kNode = 0x0aa80002;   // 10.168.0.2
const Ipv4Addr kHops[] = {0, kNode, 0x0aa80003, 0x0aa80004, 0x0aa80109};
const Ipv4Addr kPeers[] = {0, 0x0aa80003, 0x0aa80004, 0x0aa8000a};
using Logged = std::vector<std::pair<Prefix4, Ipv4Addr>>;

const Prefix4& random_prefix(Rng& rng) {
    static const std::vector<Prefix4> prefixes = [] {
        std::vector<Prefix4> v;
        for (const char* p : {"0.0.0.0/0", "10.244.1.0/24", "10.244.2.0/24", "10.244.2.128/25", "10.244.3.0/24",
                              "10.244.5.7/32", "10.96.1.0/24", "10.168.0.0/24", "192.168.0.0/16"})
            v.push_back(*Prefix4::parse(p));
        return v;
    }();
    return prefixes[pick(rng, prefixes.size())];
}

AcceptFilter random_filter(Rng& rng) {
    NodeConfig node;
    node.node_ip = kNode;
    node.uplink = *Prefix4::parse("10.168.0.0/24");
    if (one_in(rng, 2))
        node.pod_cidrs.push_back(*Prefix4::parse("10.244.2.0/24"));
    std::vector<Prefix4> accept;
    for (const char* p : {"10.244.0.0/16", "10.96.0.0/12", "0.0.0.0/0", "10.244.4.0/22"})
        if (one_in(rng, 2))
            accept.push_back(*Prefix4::parse(p));
    return AcceptFilter(accept, node, one_in(rng, 3) ? DefaultRoute::kAccepted : DefaultRoute::kRefused);
}

PathUpdate random_update(Rng& rng) {
    PathUpdate u{random_prefix(rng), 0, pick_of(rng, kPeers)};
    if (one_in(rng, 5))
        u.withdrawn = true;
    else if (one_in(rng, 5))
        u.next_hop = one_in(rng, 2) ? kNode : pick_of(rng, kHops);
    else
        u.next_hop = pick_of(rng, kHops);
    u.own = !u.withdrawn && u.peer == 0 && one_in(rng, 2);
    u.unusable = !u.withdrawn && !u.own && u.next_hop == 0;
    return u;
}

// What BgpRoutes should hold, written from its header the obvious way.
struct Model {
    std::map<Prefix4, std::pair<BgpRoute, bool>> held;                 // route, stale
    std::map<Ipv4Addr, std::pair<std::uint64_t, Prefix4>> refused;   // count, last refused
    std::set<std::pair<Prefix4, Ipv4Addr>> logged;
    std::uint64_t refused_total = 0;

    void apply(const AcceptFilter& filter, const PathUpdate& u, Logged& newly_logged) {
        if (u.withdrawn || u.own || u.unusable || u.next_hop == kNode) {
            held.erase(u.prefix);
        } else if (!filter.accepts(u.prefix)) {
            held.erase(u.prefix);
            ++refused_total;
            auto& [count, last] = refused[u.peer];
            ++count;
            last = u.prefix;
            if (logged.insert({u.prefix, u.peer}).second)
                newly_logged.push_back({u.prefix, u.peer});
        } else {
            held[u.prefix] = {BgpRoute{u.prefix, u.next_hop, u.peer}, false};
        }
    }
};

// The consumer's copy; false on a change that changes nothing.
bool replay(std::map<Prefix4, BgpRoute>& copy, const std::vector<BgpChange>& changes) {
    for (const BgpChange& c : changes) {
        if (!c.route) {
            if (copy.erase(c.prefix) == 0)
                return false;
            continue;
        }
        const auto it = copy.find(c.prefix);
        if (c.route->prefix != c.prefix || (it != copy.end() && it->second == *c.route))
            return false;
        copy[c.prefix] = *c.route;
    }
    return true;
}

void expect_model(const BgpRoutes& r, const Model& m, const std::map<Prefix4, BgpRoute>& copy) {
    std::map<Prefix4, BgpRoute> routes;
    std::map<Ipv4Addr, std::uint64_t> per_peer;
    std::size_t stale = 0;
    for (const auto& [prefix, held] : m.held) {
        routes[prefix] = held.first;
        ++per_peer[held.first.peer];
        stale += held.second;
    }
    ASSERT_EQ(r.routes(), routes);
    ASSERT_EQ(copy, routes);
    ASSERT_EQ(r.stale(), stale);
    ASSERT_EQ(r.accepted_per_peer(), per_peer);
    ASSERT_EQ(r.refused(), m.refused_total);
    ASSERT_EQ(r.peer_counters().size(), m.refused.size());
    for (const auto& [peer, refused] : m.refused) {
        ASSERT_EQ(r.peer_counters().at(peer).refused, refused.first);
        ASSERT_TRUE(r.peer_counters().at(peer).last_refusal.starts_with(refused.second.str() + " refused: "));
    }
}

TEST(BgpRoutes, SavedRoutesAndBatchesAgainstModel) {
    Rng rng(4242);
    for (int round = 0; round < 400; ++round) {
        const AcceptFilter filter = random_filter(rng);
        BgpRoutes r(filter, kNode);
        Model m;
        std::vector<BgpRoute> saved(pick(rng, 9));
        for (BgpRoute& s : saved) {
            s = {random_prefix(rng), kHops[1 + pick(rng, 4)], pick_of(rng, kPeers)};
            if (filter.accepts(s.prefix) && s.next_hop != kNode)
                m.held[s.prefix] = {s, true};
        }
        r.load_stale(saved);
        std::map<Prefix4, BgpRoute> copy = r.routes();   // the first snapshot
        ASSERT_NO_FATAL_FAILURE(expect_model(r, m, copy)) << "round " << round << ", loaded";
        for (int step = 0; step < 60; ++step) {
            std::vector<BgpChange> changes;
            std::vector<Refusal> refusals;
            Logged expected_log, log;
            if (one_in(rng, 10)) {
                r.mark_all_stale();
                for (auto& [prefix, held] : m.held)
                    held.second = true;
            } else if (one_in(rng, 9)) {
                r.sweep(changes);
                std::erase_if(m.held, [](const auto& kv) { return kv.second.second; });
            } else {
                std::vector<PathUpdate> batch(1 + pick(rng, 6));
                for (PathUpdate& u : batch) {
                    u = random_update(rng);
                    m.apply(filter, u, expected_log);
                }
                r.apply(batch, changes, refusals);
            }
            for (const Refusal& refusal : refusals)
                log.push_back({refusal.route.prefix, refusal.route.peer});
            ASSERT_TRUE(replay(copy, changes)) << "round " << round << ", step " << step;
            ASSERT_EQ(log, expected_log) << "round " << round << ", step " << step;
            ASSERT_NO_FATAL_FAILURE(expect_model(r, m, copy)) << "round " << round << ", step " << step;
        }
    }
}

}  // namespace
}  // namespace podfwd::control::bgp
