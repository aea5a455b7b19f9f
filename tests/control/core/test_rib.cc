// Best-path selection, checked case by case and against a naive model: the
// best route of a prefix is the minimum over all its routes by (preference,
// source), recomputed from scratch after every operation.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>

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

struct Seen {   // a route as for_each shows it
    Prefix4 prefix;
    Source source;
    bool best;
    friend bool operator==(const Seen&, const Seen&) = default;
    friend std::ostream& operator<<(std::ostream& os, const Seen& s) {
        return os << s.prefix.str() << '/' << source_name(s.source) << (s.best ? "*" : "");
    }
};

// Pages against the naive model: a (prefix, source) map read in order.
// Every page of every (after, limit, source) is what a greedy cut of the
// sorted list gives, prefixes are never split, and following `next` from
// the start lists exactly what for_each lists.
TEST(Rib, PagesMatchANaiveModel) {
    std::mt19937 rng(777);
    const Preferences prefs = default_preferences();
    Rib rib(prefs);
    std::map<std::pair<Prefix4, Source>, Ipv4Addr> model;
    const auto random_prefix = [&] {
        const auto len = static_cast<std::uint8_t>(22 + rng() % 4);   // 22..25: nested and neighbouring
        return Prefix4{(0x0af40000u | static_cast<Ipv4Addr>(rng() % 64) << 7) & prefix_mask(len), len};
    };
    // The model's routes after `after`, of `only`, grouped by prefix, each group by rank.
    const auto model_groups = [&](std::optional<Prefix4> after, std::optional<Source> only) {
        std::map<Prefix4, std::vector<Seen>> groups;
        std::map<Prefix4, std::vector<Source>> all;
        for (const auto& [key, via] : model)
            all[key.first].push_back(key.second);
        for (auto& [prefix, sources] : all) {
            std::sort(sources.begin(), sources.end(), [&](Source a, Source b) {
                return std::pair(prefs[static_cast<unsigned>(a)], a) < std::pair(prefs[static_cast<unsigned>(b)], b);
            });
            if (after && !(*after < prefix))
                continue;
            for (std::size_t i = 0; i < sources.size(); ++i)
                if (!only || sources[i] == *only)
                    groups[prefix].push_back({prefix, sources[i], i == 0});
        }
        return groups;
    };
    const auto page_of = [&](std::optional<Prefix4> after, std::size_t limit, std::optional<Source> only) {
        std::vector<Seen> seen;
        const auto next = rib.for_each_page(after, limit, only, [&](const RibRoute& r, bool best) {
            seen.push_back({r.spec.prefix, r.spec.source, best});
        });
        return std::pair(seen, next);
    };
    for (int round = 0; round < 300; ++round) {
        for (int op = 0; op < 20; ++op) {
            const Prefix4 p = random_prefix();
            const auto s = static_cast<Source>(rng() % kSourceCount);
            bool unused = false;
            if (rng() % 4 == 0) {
                model.erase({p, s});
                rib.erase(p, s, unused);
            } else {
                model[{p, s}] = 1;
                rib.set(spec(p, s, 1), fwd(1));
            }
        }
        const std::size_t limit = 1 + rng() % 9;
        const std::optional<Source> only =
            rng() % 3 == 0 ? std::optional(static_cast<Source>(rng() % kSourceCount)) : std::nullopt;
        const std::optional<Prefix4> after = rng() % 4 == 0 ? std::nullopt : std::optional(random_prefix());

        // One page from an arbitrary `after` (in the RIB or not): the greedy cut.
        const auto groups = model_groups(after, only);
        std::vector<Seen> want;
        std::optional<Prefix4> want_next;
        for (const auto& [prefix, routes] : groups) {
            if (!want.empty() && want.size() + routes.size() > limit) {
                want_next = want.back().prefix;
                break;
            }
            want.insert(want.end(), routes.begin(), routes.end());
        }
        const auto [got, next] = page_of(after, limit, only);
        ASSERT_EQ(got, want) << "round " << round;
        ASSERT_EQ(next, want_next) << "round " << round;

        // All pages from the start: for_each's list, no prefix on two pages.
        std::vector<Seen> everything, paged;
        rib.for_each([&](const RibRoute& r, bool best) {
            if (!only || r.spec.source == *only)
                everything.push_back({r.spec.prefix, r.spec.source, best});
        });
        std::optional<Prefix4> cursor;
        for (int pages = 0;; ++pages) {
            ASSERT_LT(pages, 1000) << "paging does not end";
            const auto [page, more] = page_of(cursor, limit, only);
            const Prefix4 first = page.empty() ? Prefix4{} : page.front().prefix;   // clang 14: no capture of a binding
            ASSERT_TRUE(page.size() <= limit ||
                        std::all_of(page.begin(), page.end(), [&](const Seen& x) { return x.prefix == first; }));
            if (!paged.empty() && !page.empty()) {
                ASSERT_LT(paged.back().prefix, page.front().prefix) << "a prefix split across pages";
            }
            paged.insert(paged.end(), page.begin(), page.end());
            if (!more)
                break;
            ASSERT_FALSE(page.empty());
            ASSERT_EQ(*more, page.back().prefix);
            cursor = more;
        }
        ASSERT_EQ(paged, everything) << "round " << round;
    }
}

// Many changes between two reads (the order is merged by the mutations
// themselves then): adds, removes and re-adds of the same prefixes.
TEST(Rib, OrderSurvivesBulkChangesBetweenReads) {
    std::mt19937 rng(99);
    Rib rib;
    std::set<Prefix4> model;
    for (int batch = 0; batch < 4; ++batch) {
        for (int op = 0; op < 30000; ++op) {
            const Prefix4 p{0x0a000000u | static_cast<Ipv4Addr>(rng() % 20000) << 8, 24};
            bool unused = false;
            if (rng() % 3 == 0) {
                model.erase(p);
                rib.erase(p, Source::kStatic, unused);
            } else {
                model.insert(p);
                rib.set(spec(p, Source::kStatic, 1), fwd(1));
            }
        }
        std::vector<Prefix4> listed;
        rib.for_each([&](const RibRoute& r, bool) { listed.push_back(r.spec.prefix); });
        ASSERT_EQ(listed, std::vector<Prefix4>(model.begin(), model.end())) << "batch " << batch;
        ASSERT_EQ(rib.prefixes(), model.size());
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
