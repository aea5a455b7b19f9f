// The mode policy: each mode on both sides of the uplink subnet's boundary,
// and every refusal with the fix it names.
#include <gtest/gtest.h>

#include "control/core/policy.h"

namespace podfwd::control {
namespace {

Ipv4Addr ip(const char* text) { return *parse_ipv4(text); }
Prefix4 pfx(const char* text) { return *Prefix4::parse(text); }

NodeConfig node() {
    NodeConfig n;
    n.node_ip = ip("10.168.0.2");
    n.uplink = pfx("10.168.0.0/24");
    n.gateway = ip("10.168.0.1");
    n.vni = 7;
    return n;
}

RouteSpec route(const char* via, ModeRequest mode) {
    RouteSpec r;
    r.prefix = pfx("10.244.1.0/24");
    r.via = ip(via);
    r.mode = mode;
    return r;
}

TEST(Policy, CrossSubnetIsHostGwOnTheSubnetAndIpipOffIt) {
    // The last addresses inside and the first outside the /24, both ends.
    for (const char* inside : {"10.168.0.3", "10.168.0.254"}) {
        auto f = resolve(node(), route(inside, ModeRequest::kCrossSubnet));
        ASSERT_TRUE(f) << inside;
        EXPECT_EQ(f->mode, lpm::ForwardMode::kHostGw) << inside;
        EXPECT_EQ(f->l2_nexthop, ip(inside));
    }
    for (const char* outside : {"10.168.1.0", "10.167.255.254", "10.169.0.3"}) {
        auto f = resolve(node(), route(outside, ModeRequest::kCrossSubnet));
        ASSERT_TRUE(f) << outside;
        EXPECT_EQ(f->mode, lpm::ForwardMode::kIpip) << outside;
        EXPECT_EQ(f->node_ip, ip(outside));
        EXPECT_EQ(f->l2_nexthop, ip("10.168.0.1")) << "off the subnet, frames go to the gateway";
    }
}

TEST(Policy, CrossSubnetTunnelCanBeVxlan) {
    NodeConfig n = node();
    n.cross_subnet_tunnel = ModeRequest::kVxlan;
    RouteSpec r = route("10.169.0.3", ModeRequest::kCrossSubnet);
    r.vtep_mac = parse_mac("02:42:0a:f4:01:00");
    auto f = resolve(n, r);
    ASSERT_TRUE(f);
    EXPECT_EQ(f->mode, lpm::ForwardMode::kVxlan);
    EXPECT_EQ(f->vni, 7u);
    auto on = resolve(n, route("10.168.0.9", ModeRequest::kCrossSubnet));
    ASSERT_TRUE(on);
    EXPECT_EQ(on->mode, lpm::ForwardMode::kHostGw);
}

TEST(Policy, HostGwOffTheSubnetIsRefusedNotBlackholed) {
    auto f = resolve(node(), route("10.168.1.3", ModeRequest::kHostGw));
    ASSERT_FALSE(f);
    EXPECT_NE(f.error().message.find("host-gw needs the next hop on the uplink subnet 10.168.0.0/24"),
              std::string::npos)
        << f.error().message;
    EXPECT_TRUE(resolve(node(), route("10.168.0.255", ModeRequest::kHostGw)));
}

TEST(Policy, DefaultModeComesFromTheNode) {
    NodeConfig n = node();
    n.default_mode = ModeRequest::kIpip;
    auto f = resolve(n, route("10.168.0.3", ModeRequest::kDefault));
    ASSERT_TRUE(f);
    EXPECT_EQ(f->mode, lpm::ForwardMode::kIpip);
    EXPECT_EQ(f->l2_nexthop, ip("10.168.0.3")) << "on the subnet, the tunnel's frames go to the node itself";
}

TEST(Policy, TunnelsOffTheSubnetNeedAGateway) {
    NodeConfig n = node();
    n.gateway.reset();
    auto f = resolve(n, route("10.169.0.3", ModeRequest::kIpip));
    ASSERT_FALSE(f);
    EXPECT_NE(f.error().message.find("no gateway"), std::string::npos);
}

TEST(Policy, VxlanNeedsTheRemoteVtepMac) {
    auto missing = resolve(node(), route("10.168.0.3", ModeRequest::kVxlan));
    ASSERT_FALSE(missing);
    EXPECT_NE(missing.error().message.find("vtep-mac"), std::string::npos);
    RouteSpec r = route("10.168.0.3", ModeRequest::kVxlan);
    r.vtep_mac = parse_mac("01:00:5e:00:00:01");
    EXPECT_FALSE(resolve(node(), r)) << "multicast VTEP MAC";
    r.vtep_mac = parse_mac("02:00:00:00:00:03");
    r.vni = 42;
    auto f = resolve(node(), r);
    ASSERT_TRUE(f);
    EXPECT_EQ(f->vni, 42u);
    EXPECT_EQ(f->vtep_mac, *r.vtep_mac);
}

TEST(Policy, LocalAndBlackholeTakeNoNextHop) {
    RouteSpec r = route("0.0.0.0", ModeRequest::kLocal);
    auto local = resolve(node(), r);
    ASSERT_TRUE(local);
    EXPECT_EQ(local->mode, lpm::ForwardMode::kLocal);
    r.mode = ModeRequest::kBlackhole;
    EXPECT_EQ(resolve(node(), r)->mode, lpm::ForwardMode::kDrop);
    r.via = ip("10.168.0.3");
    EXPECT_FALSE(resolve(node(), r));
}

TEST(Policy, NextHopsThatCannotBeNodesAreRefused) {
    for (const char* bad : {"0.0.0.0", "127.0.0.1", "224.0.0.5", "255.255.255.255", "10.168.0.2"})
        EXPECT_FALSE(resolve(node(), route(bad, ModeRequest::kIpip))) << bad;
}

TEST(Policy, NodeConfigIsChecked) {
    EXPECT_TRUE(node().validate());
    NodeConfig n = node();
    n.node_ip = ip("10.169.0.2");
    EXPECT_FALSE(n.validate()) << "node outside its uplink";
    n = node();
    n.gateway = ip("10.169.0.1");
    EXPECT_FALSE(n.validate()) << "gateway off the uplink";
    n = node();
    n.gateway = n.node_ip;
    EXPECT_FALSE(n.validate());
    n = node();
    n.default_mode = ModeRequest::kLocal;
    EXPECT_FALSE(n.validate());
    n = node();
    n.cross_subnet_tunnel = ModeRequest::kHostGw;
    EXPECT_FALSE(n.validate());
    n = node();
    n.vni = 1u << 24;
    EXPECT_FALSE(n.validate());
}

}  // namespace
}  // namespace podfwd::control
