// BgpRoutes against a naive model: what it holds, and that the changes it
// reports, applied to a copy, give exactly what it holds.
#include <gtest/gtest.h>

#include <random>

#include "control/bgp/bgp_routes.h"

namespace podfwd::control::bgp {
namespace {

Prefix4 P(const char* text) { return *Prefix4::parse(text); }
Ipv4Addr A(const char* text) { return *parse_ipv4(text); }

const Ipv4Addr kNode = A("10.168.0.2");

BgpRoutes make_routes() {
    NodeConfig node;
    node.node_ip = kNode;
    node.uplink = P("10.168.0.0/24");
    node.pod_cidrs = {P("10.244.2.0/24")};
    return BgpRoutes(AcceptFilter({P("10.244.0.0/16")}, node), kNode);
}

struct Applied {
    std::vector<BgpChange> changes;
    std::vector<Refusal> refusals;
};

Applied apply(BgpRoutes& r, std::vector<PathUpdate> updates) {
    Applied a;
    r.apply(updates, a.changes, a.refusals);
    return a;
}

TEST(BgpRoutes, LearnsChangesAndWithdraws) {
    BgpRoutes r = make_routes();
    auto a = apply(r, {{P("10.244.3.0/24"), A("10.168.0.3"), A("10.168.0.3"), false}});
    ASSERT_EQ(a.changes.size(), 1u);
    EXPECT_EQ(a.changes[0].route->next_hop, A("10.168.0.3"));
    // The same path again changes nothing.
    EXPECT_TRUE(apply(r, {{P("10.244.3.0/24"), A("10.168.0.3"), A("10.168.0.3"), false}}).changes.empty());
    // A new best path (other next hop) replaces it.
    a = apply(r, {{P("10.244.3.0/24"), A("10.168.0.4"), A("10.168.0.10"), false}});
    ASSERT_EQ(a.changes.size(), 1u);
    EXPECT_EQ(r.routes().at(P("10.244.3.0/24")).peer, A("10.168.0.10"));
    a = apply(r, {{P("10.244.3.0/24"), 0, A("10.168.0.10"), true}});
    ASSERT_EQ(a.changes.size(), 1u);
    EXPECT_FALSE(a.changes[0].route);
    EXPECT_TRUE(r.routes().empty());
    // Withdrawing what is not held says nothing.
    EXPECT_TRUE(apply(r, {{P("10.244.3.0/24"), 0, A("10.168.0.10"), true}}).changes.empty());
}

TEST(BgpRoutes, OurOwnPathsAndNextHopSelfAreNotRoutes) {
    BgpRoutes r = make_routes();
    apply(r, {{P("10.244.5.0/24"), A("10.168.0.3"), A("10.168.0.3"), false}});
    // Our own path (no peer) becomes best: the peer's route goes.
    auto a = apply(r, {{P("10.244.5.0/24"), kNode, 0, false, true}});
    ASSERT_EQ(a.changes.size(), 1u);
    EXPECT_FALSE(a.changes[0].route);
    // A reflected copy of our own advertisement: next hop is this node.
    EXPECT_TRUE(apply(r, {{P("10.244.6.0/24"), kNode, A("10.168.0.10"), false}}).changes.empty());
    EXPECT_TRUE(r.routes().empty());
}

TEST(BgpRoutes, RefusalsAreCountedPerPeerAndReplaceAnEarlierRoute) {
    BgpRoutes r = make_routes();
    auto a = apply(r, {{P("0.0.0.0/0"), A("10.168.0.3"), A("10.168.0.3"), false},
                       {P("192.168.0.0/24"), A("10.168.0.3"), A("10.168.0.3"), false},
                       {P("10.168.0.0/24"), A("10.168.0.3"), A("10.168.0.3"), false},
                       {P("10.244.2.0/26"), A("10.168.0.4"), A("10.168.0.4"), false},
                       {P("10.244.3.0/26"), A("10.168.0.3"), A("10.168.0.3"), false}});
    EXPECT_EQ(a.changes.size(), 1u);
    EXPECT_EQ(a.refusals.size(), 4u);
    EXPECT_EQ(r.refused(), 4u);
    EXPECT_EQ(r.peer_counters().at(A("10.168.0.3")).refused, 3u);
    EXPECT_EQ(r.peer_counters().at(A("10.168.0.4")).refused, 1u);
    EXPECT_NE(r.peer_counters().at(A("10.168.0.4")).last_refusal.find("10.244.2.0/26"), std::string::npos);
    // The same refusal again is counted, not logged again.
    a = apply(r, {{P("0.0.0.0/0"), A("10.168.0.3"), A("10.168.0.3"), false}});
    EXPECT_TRUE(a.refusals.empty());
    EXPECT_EQ(r.refused(), 5u);
    EXPECT_EQ(r.accepted_per_peer().at(A("10.168.0.3")), 1u);
}

TEST(BgpRoutes, StaleRoutesStayUntilRestatedOrSwept) {
    BgpRoutes r = make_routes();
    const BgpRoute saved[] = {{P("10.244.3.0/24"), A("10.168.0.3"), 0}, {P("10.244.4.0/24"), A("10.168.0.4"), 0}};
    r.load_stale(saved);
    EXPECT_EQ(r.stale(), 2u);
    EXPECT_EQ(r.routes().size(), 2u);
    // Restated unchanged: no change, no longer stale.
    auto a = apply(r, {{P("10.244.3.0/24"), A("10.168.0.3"), A("10.168.0.3"), false}});
    EXPECT_EQ(a.changes.size(), 1u);   // the peer it came from is now known
    EXPECT_EQ(r.stale(), 1u);
    std::vector<BgpChange> swept;
    r.sweep(swept);
    ASSERT_EQ(swept.size(), 1u);
    EXPECT_EQ(swept[0].prefix, P("10.244.4.0/24"));
    EXPECT_EQ(r.routes().size(), 1u);
    EXPECT_EQ(r.stale(), 0u);
    // A new gobgpd: all stale again; a withdrawal removes a stale one at once.
    r.mark_all_stale();
    EXPECT_EQ(r.stale(), 1u);
    a = apply(r, {{P("10.244.3.0/24"), 0, A("10.168.0.3"), true}});
    EXPECT_EQ(a.changes.size(), 1u);
    EXPECT_EQ(r.stale(), 0u);
}

// The model: prefix → route and whether it is stale, by the rules the
// header states, written the obvious way.
TEST(BgpRoutes, RandomAgainstNaiveModel) {
    std::mt19937 rng(15);
    for (int round = 0; round < 200; ++round) {
        BgpRoutes r = make_routes();
        std::map<Prefix4, std::pair<BgpRoute, bool>> model;
        std::map<Prefix4, BgpRoute> replay;   // the reported changes, applied
        const Ipv4Addr peers[] = {0, A("10.168.0.3"), A("10.168.0.4")};
        const Ipv4Addr hops[] = {kNode, A("10.168.0.3"), A("10.168.0.4"), A("10.168.0.5")};
        const Prefix4 prefixes[] = {P("10.244.1.0/24"), P("10.244.3.0/24"), P("10.244.3.0/26"),
                                    P("10.244.2.0/25"), P("0.0.0.0/0"),     P("10.245.0.0/24")};
        auto replay_changes = [&](const std::vector<BgpChange>& changes) {
            for (const BgpChange& c : changes) {
                if (c.route)
                    replay[c.prefix] = *c.route;
                else
                    replay.erase(c.prefix);
            }
        };
        for (int step = 0; step < 60; ++step) {
            const int op = static_cast<int>(rng() % 10);
            if (op == 0) {
                r.mark_all_stale();
                for (auto& [p, e] : model)
                    e.second = true;
            } else if (op == 1) {
                std::vector<BgpChange> changes;
                r.sweep(changes);
                replay_changes(changes);
                std::erase_if(model, [](const auto& kv) { return kv.second.second; });
            } else {
                PathUpdate u{prefixes[rng() % 6], hops[rng() % 4], peers[rng() % 3], rng() % 4 == 0};
                u.own = u.peer == 0;
                u.unusable = !u.own && rng() % 10 == 0;
                auto a = apply(r, {u});
                replay_changes(a.changes);
                const bool own = u.own || u.unusable || u.next_hop == kNode;
                const bool refused = u.prefix.len == 0 || u.prefix == P("10.244.2.0/25") || u.prefix == P("10.245.0.0/24");
                if (u.withdrawn || own || refused)
                    model.erase(u.prefix);
                else
                    model[u.prefix] = {BgpRoute{u.prefix, u.next_hop, u.peer}, false};
            }
            ASSERT_EQ(r.routes().size(), model.size());
            std::size_t stale = 0;
            for (const auto& [p, e] : model) {
                ASSERT_TRUE(r.routes().count(p));
                EXPECT_EQ(r.routes().at(p), e.first);
                stale += e.second;
            }
            EXPECT_EQ(r.stale(), stale);
            EXPECT_EQ(replay, r.routes());
        }
    }
}

}  // namespace
}  // namespace podfwd::control::bgp
