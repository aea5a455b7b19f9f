// Best-path selection, checked case by case and against a naive model: the
// best route of a prefix is the minimum over all its routes by (preference,
// source), recomputed from scratch after every operation.
#include <gtest/gtest.h>

#include <map>
#include <random>

#include "control/core/rib.h"
#include "control/core/static_file.h"

namespace podfwd::control {
namespace {

Prefix4 pfx(const char* text) { return *Prefix4::parse(text); }

RouteSpec spec(const Prefix4& p, Source s, Ipv4Addr via) {
    return RouteSpec{p, s, via, ModeRequest::kIpip, 0, std::nullopt};
}
Forwarding fwd(Ipv4Addr via) { return Forwarding{lpm::ForwardMode::kIpip, via, via, 0, {}}; }

TEST(Rib, LowerPreferenceWins) {
    Rib rib;
    const Prefix4 p = pfx("10.244.1.0/24");
    EXPECT_TRUE(rib.set(spec(p, Source::kKernel, 1), fwd(1)));
    EXPECT_TRUE(rib.set(spec(p, Source::kStatic, 2), fwd(2)));
    EXPECT_EQ(rib.best(p)->spec.source, Source::kStatic);
    EXPECT_FALSE(rib.set(spec(p, Source::kKernel, 3), fwd(3))) << "a losing route changed nothing the table sees";
    EXPECT_TRUE(rib.set(spec(p, Source::kCli, 4), fwd(4)));
    EXPECT_EQ(rib.best(p)->forwarding.node_ip, 4u);
    bool changed = false;
    EXPECT_TRUE(rib.erase(p, Source::kCli, changed));
    EXPECT_TRUE(changed);
    EXPECT_EQ(rib.best(p)->spec.source, Source::kStatic);
    EXPECT_TRUE(rib.erase(p, Source::kKernel, changed));
    EXPECT_FALSE(changed) << "removing a losing route changes nothing";
    EXPECT_FALSE(rib.erase(p, Source::kKernel, changed));
    EXPECT_EQ(rib.routes_of(Source::kStatic), 1u);
    EXPECT_EQ(rib.best_of(Source::kStatic), 1u);
    EXPECT_EQ(rib.routes_of(Source::kKernel), 0u);
}

TEST(Rib, SameForwardingFromABetterSourceIsNoTableChange) {
    Rib rib;
    const Prefix4 p = pfx("10.244.1.0/24");
    rib.set(spec(p, Source::kKernel, 1), fwd(1));
    EXPECT_FALSE(rib.set(spec(p, Source::kStatic, 1), fwd(1)));
    EXPECT_EQ(rib.best(p)->spec.source, Source::kStatic);
}

TEST(Rib, PreferencesAreConfigurable) {
    Preferences prefs = default_preferences();
    prefs[static_cast<unsigned>(Source::kKernel)] = 5;
    Rib rib(prefs);
    const Prefix4 p = pfx("10.244.1.0/24");
    rib.set(spec(p, Source::kCli, 1), fwd(1));
    rib.set(spec(p, Source::kKernel, 2), fwd(2));
    EXPECT_EQ(rib.best(p)->spec.source, Source::kKernel);
}

TEST(Rib, ReplaceSourceTouchesOnlyTheDifference) {
    Rib rib;
    std::vector<ResolvedRoute> routes;
    for (Ipv4Addr i = 0; i < 10; ++i) {
        const Prefix4 p{0x0af40000u | i << 8, 24};
        routes.push_back({spec(p, Source::kStatic, 100 + i), fwd(100 + i)});
    }
    EXPECT_EQ(rib.replace_source(Source::kStatic, routes).size(), 10u);
    EXPECT_TRUE(rib.replace_source(Source::kStatic, routes).empty()) << "the same set again changes nothing";
    routes[3].forwarding = fwd(7);
    routes[3].spec.via = 7;
    routes.pop_back();
    const auto changed = rib.replace_source(Source::kStatic, routes);
    EXPECT_EQ(changed.size(), 2u);
    EXPECT_EQ(rib.prefixes(), 9u);
    EXPECT_EQ(rib.best(routes[3].spec.prefix)->forwarding.node_ip, 7u);
}

TEST(Rib, LongestMatch) {
    Rib rib;
    rib.set(spec(pfx("10.244.0.0/16"), Source::kStatic, 1), fwd(1));
    rib.set(spec(pfx("10.244.1.0/24"), Source::kStatic, 2), fwd(2));
    rib.set(spec(pfx("0.0.0.0/0"), Source::kKernel, 3), fwd(3));
    EXPECT_EQ(*rib.longest_match(*parse_ipv4("10.244.1.9")), pfx("10.244.1.0/24"));
    EXPECT_EQ(*rib.longest_match(*parse_ipv4("10.244.2.9")), pfx("10.244.0.0/16"));
    EXPECT_EQ(*rib.longest_match(*parse_ipv4("8.8.8.8")), pfx("0.0.0.0/0"));
}

// The oracle: every (prefix, source) -> via, best recomputed naively.
TEST(Rib, MatchesANaiveModelUnderRandomOperations) {
    std::mt19937 rng(12345);   // 32-bit results
    Preferences prefs = default_preferences();
    Rib rib(prefs);
    std::map<std::pair<Prefix4, Source>, Ipv4Addr> model;
    const auto model_best = [&](const Prefix4& p) -> std::optional<std::pair<Source, Ipv4Addr>> {
        std::optional<std::pair<Source, Ipv4Addr>> best;
        for (const auto& [key, via] : model) {
            if (key.first != p)
                continue;
            const auto rank = [&](Source s) { return std::pair(prefs[static_cast<unsigned>(s)], s); };
            if (!best || rank(key.second) < rank(best->first))
                best = std::pair(key.second, via);
        }
        return best;
    };
    for (int op = 0; op < 20000; ++op) {
        const Prefix4 p{0x0af40000u | static_cast<Ipv4Addr>(rng() % 16) << 8, 24};
        const auto s = static_cast<Source>(1 + rng() % (kSourceCount - 1));
        const auto via = static_cast<Ipv4Addr>(1 + rng() % 4);
        const auto before = model_best(p);
        bool best_changed = false;
        if (rng() % 3 == 0) {
            const bool existed = model.erase({p, s}) != 0;
            EXPECT_EQ(rib.erase(p, s, best_changed), existed);
        } else {
            model[{p, s}] = via;
            best_changed = rib.set(spec(p, s, via), fwd(via));
        }
        const auto after = model_best(p);
        const auto via_of = [](const auto& b) { return b ? std::optional(b->second) : std::nullopt; };
        ASSERT_EQ(best_changed, via_of(before) != via_of(after)) << "op " << op;
        const RibRoute* best = rib.best(p);
        ASSERT_EQ(best != nullptr, after.has_value());
        if (best) {
            ASSERT_EQ(best->spec.source, after->first);
            ASSERT_EQ(best->forwarding.node_ip, after->second);
        }
    }
}

TEST(StaticFile, ParsesRoutesAndNeighbours) {
    auto config = parse_static(
        "# node b\n"
        "route 10.244.1.0/24 via 10.168.0.3 mode host-gw\n"
        "  route 10.244.2.0/24 via 10.169.0.4   # default mode\n"
        "route 10.244.3.0/24 via 10.168.0.5 mode vxlan vni 9 vtep-mac 02:42:0a:f4:03:00\n"
        "route 10.99.0.0/16 blackhole\n"
        "neigh 10.168.0.3 02:00:00:00:00:03\n",
        "routes.conf");
    ASSERT_TRUE(config) << config.error().message;
    ASSERT_EQ(config->routes.size(), 4u);
    EXPECT_EQ(config->routes[0].mode, ModeRequest::kHostGw);
    EXPECT_EQ(config->routes[1].mode, ModeRequest::kDefault);
    EXPECT_EQ(config->routes[2].vni, 9u);
    EXPECT_EQ(config->routes[3].mode, ModeRequest::kBlackhole);
    ASSERT_EQ(config->neighbours.size(), 1u);
    EXPECT_EQ(config->neighbours[0].source, Source::kStatic);
}

TEST(StaticFile, ErrorsNameTheLine) {
    const std::pair<const char*, const char*> cases[] = {
        {"route 10.244.1.0/24 via 10.168.0.3 mode ipipp\n", "f:1: unknown mode 'ipipp'"},
        {"\nroute 10.244.1.1/24 via 10.168.0.3\n", "f:2: 10.244.1.1/24 has host bits set"},
        {"route 10.244.1.0/24 via 10.168.0.300\n", "f:1: invalid IPv4 address"},
        {"route 10.244.1.0/24\n", "f:1: 10.244.1.0/24 needs 'via"},
        {"route 10.244.1.0/24 via\n", "f:1: 'via' needs a value"},
        {"route 10.244.1.0/24 via 1.2.3.4 colour red\n", "f:1: unknown word 'colour'"},
        {"route 10.244.1.0/24 via 1.2.3.4 vni 0\n", "f:1: VNI '0'"},
        {"route 10.244.1.0/24 via 1.2.3.4\nroute 10.244.1.0/24 via 1.2.3.5\n",
         "f:2: 10.244.1.0/24 is already routed on line 1"},
        {"neigh 10.168.0.3 02:00:00:00:00\n", "f:1: '02:00:00:00:00' is not a MAC"},
        {"neigh 10.168.0.3 01:00:00:00:00:01\n", "f:1: 01:00:00:00:00:01 is not a unicast MAC"},
        {"nexthop 1.2.3.4\n", "f:1: unknown keyword 'nexthop'"},
    };
    for (const auto& [text, want] : cases) {
        auto config = parse_static(text, "f");
        ASSERT_FALSE(config) << text;
        EXPECT_EQ(config.error().message.rfind(want, 0), 0u) << config.error().message;
    }
}

}  // namespace
}  // namespace podfwd::control
