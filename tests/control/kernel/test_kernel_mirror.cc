// The kernel source's pure parts: protocol/table names and the mirror that
// turns kernel messages into change events.
#include <gtest/gtest.h>

#include "control/kernel/kernel_source.h"
#include "control/kernel/mirror.h"

namespace podfwd::control {
namespace {

using kernel_detail::NeighbourMirror;
using kernel_detail::RouteKey;
using kernel_detail::RouteMirror;

Prefix4 pfx(const char* text) { return *Prefix4::parse(text); }
Ipv4Addr ip(const char* text) { return *parse_ipv4(text); }

TEST(KernelNames, Protocols) {
    EXPECT_EQ(*parse_route_protocol("bird"), 12);
    EXPECT_EQ(*parse_route_protocol("static"), 4);
    EXPECT_EQ(*parse_route_protocol("boot"), 3);
    EXPECT_EQ(*parse_route_protocol("kernel"), 2);
    EXPECT_EQ(*parse_route_protocol("0"), 0);
    EXPECT_EQ(*parse_route_protocol("255"), 255);
    for (const char* bad : {"", "256", "-1", "12x", "Bird", " 12", "0x0c"}) {
        auto parsed = parse_route_protocol(bad);
        ASSERT_FALSE(parsed) << bad;
        EXPECT_EQ(parsed.error().code, Errc::kInvalidArgument);
        EXPECT_NE(parsed.error().message.find("bird, static, boot, kernel or a number 0..255"), std::string::npos);
    }
}

TEST(KernelNames, Tables) {
    EXPECT_EQ(*parse_route_table("main"), 254u);
    EXPECT_EQ(*parse_route_table("local"), 255u);
    EXPECT_EQ(*parse_route_table("default"), 253u);
    EXPECT_EQ(*parse_route_table("1"), 1u);
    EXPECT_EQ(*parse_route_table("100"), 100u);
    EXPECT_EQ(*parse_route_table("4294967295"), 4294967295u);
    for (const char* bad : {"", "0", "4294967296", "99999999999999999999", "main ", "-3", "t100"}) {
        auto parsed = parse_route_table(bad);
        ASSERT_FALSE(parsed) << bad;
        const std::string quoted = std::string(1, '\'').append(bad).append(1, '\'');
        EXPECT_NE(parsed.error().message.find(quoted), std::string::npos);
    }
}

TEST(RouteMirror, AddReplaceRemove) {
    RouteMirror mirror;
    const RouteKey key{0, 100, 0};
    auto added = mirror.upsert(pfx("10.244.1.0/24"), key, ip("10.168.0.3"));
    ASSERT_TRUE(added);
    EXPECT_EQ(std::get<RouteAdded>(*added).route, (KernelRoute{pfx("10.244.1.0/24"), ip("10.168.0.3")}));
    // The kernel repeats a route on unrelated changes: no news is no event.
    EXPECT_FALSE(mirror.upsert(pfx("10.244.1.0/24"), key, ip("10.168.0.3")));
    auto replaced = mirror.upsert(pfx("10.244.1.0/24"), key, ip("10.168.0.4"));
    ASSERT_TRUE(replaced);
    EXPECT_EQ(std::get<RouteAdded>(*replaced).route.gateway, ip("10.168.0.4"));
    EXPECT_FALSE(mirror.erase(pfx("10.244.2.0/24"), key));
    EXPECT_FALSE(mirror.erase(pfx("10.244.1.0/24"), RouteKey{0, 200, 0}));
    auto removed = mirror.erase(pfx("10.244.1.0/24"), key);
    ASSERT_TRUE(removed);
    EXPECT_EQ(std::get<RouteRemoved>(*removed).prefix, pfx("10.244.1.0/24"));
    EXPECT_TRUE(mirror.routes().empty());
}

TEST(RouteMirror, LowestMetricIsVisible) {
    RouteMirror mirror;
    const auto p = pfx("10.244.1.0/24");
    ASSERT_TRUE(mirror.upsert(p, RouteKey{200, 100, 0}, ip("10.168.0.4")));
    auto better = mirror.upsert(p, RouteKey{100, 100, 0}, ip("10.168.0.3"));
    ASSERT_TRUE(better);
    EXPECT_EQ(std::get<RouteAdded>(*better).route.gateway, ip("10.168.0.3"));
    // A shadowed route changing is invisible.
    EXPECT_FALSE(mirror.upsert(p, RouteKey{200, 100, 0}, ip("10.168.0.5")));
    EXPECT_FALSE(mirror.erase(p, RouteKey{200, 100, 0}));
    EXPECT_FALSE(mirror.upsert(p, RouteKey{200, 100, 0}, ip("10.168.0.4")));
    EXPECT_EQ(mirror.routes(), (std::vector<KernelRoute>{{p, ip("10.168.0.3")}}));
}

TEST(RouteMirror, RemovingTheVisibleRouteRevealsTheNext) {
    RouteMirror mirror;
    const auto p = pfx("10.244.1.0/24");
    ASSERT_TRUE(mirror.upsert(p, RouteKey{100, 100, 0}, ip("10.168.0.3")));
    EXPECT_FALSE(mirror.upsert(p, RouteKey{200, 100, 0}, ip("10.168.0.4")));
    auto revealed = mirror.erase(p, RouteKey{100, 100, 0});
    ASSERT_TRUE(revealed);
    EXPECT_EQ(std::get<RouteAdded>(*revealed).route.gateway, ip("10.168.0.4"));
    EXPECT_EQ(mirror.routes(), (std::vector<KernelRoute>{{p, ip("10.168.0.4")}}));
    ASSERT_TRUE(mirror.erase(p, RouteKey{200, 100, 0}));
    EXPECT_TRUE(mirror.routes().empty());
}

TEST(RouteMirror, RoutesAreOrderedByPrefix) {
    RouteMirror mirror;
    (void)mirror.upsert(pfx("10.244.2.0/24"), RouteKey{}, ip("10.168.0.3"));
    (void)mirror.upsert(pfx("0.0.0.0/0"), RouteKey{}, ip("10.168.0.1"));
    (void)mirror.upsert(pfx("10.244.1.0/24"), RouteKey{}, ip("10.168.0.4"));
    const auto routes = mirror.routes();
    ASSERT_EQ(routes.size(), 3u);
    EXPECT_EQ(routes[0].prefix, pfx("0.0.0.0/0"));
    EXPECT_EQ(routes[1].prefix, pfx("10.244.1.0/24"));
    EXPECT_EQ(routes[2].prefix, pfx("10.244.2.0/24"));
}

TEST(NeighbourMirror, StateFlapsAreNotEvents) {
    NeighbourMirror mirror;
    const KernelNeighbour n{ip("10.168.0.3"), *parse_mac("02:00:00:00:00:03")};
    auto up = mirror.up(n);
    ASSERT_TRUE(up);
    EXPECT_EQ(std::get<NeighbourUp>(*up).neighbour, n);
    EXPECT_FALSE(mirror.up(n));   // reachable -> stale -> delay -> reachable
    const KernelNeighbour moved{n.ip, *parse_mac("02:00:00:00:00:13")};
    ASSERT_TRUE(mirror.up(moved));
    EXPECT_EQ(mirror.neighbours(), std::vector<KernelNeighbour>{moved});
    auto down = mirror.down(n.ip);
    ASSERT_TRUE(down);
    EXPECT_EQ(std::get<NeighbourDown>(*down).ip, n.ip);
    EXPECT_FALSE(mirror.down(n.ip));   // delete after failed
    EXPECT_TRUE(mirror.neighbours().empty());
}

}  // namespace
}  // namespace podfwd::control
