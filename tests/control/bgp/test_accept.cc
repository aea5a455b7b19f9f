#include <gtest/gtest.h>

#include "control/bgp/bgp_source.h"
#include "control/core/accept.h"

namespace podfwd::control {
namespace {

Prefix4 P(const char* text) { return *Prefix4::parse(text); }

AcceptFilter filter() {
    NodeConfig node;
    node.node_ip = *parse_ipv4("10.168.0.2");
    node.uplink = P("10.168.0.0/24");
    node.pod_cidrs = {P("10.244.2.0/24")};
    return AcceptFilter({P("10.244.0.0/16"), P("10.96.0.0/12")}, node);
}

TEST(AcceptFilter, OnlyInsideThePodNetworks) {
    const AcceptFilter f = filter();
    EXPECT_TRUE(f.accepts(P("10.244.3.0/26")));
    EXPECT_TRUE(f.accepts(P("10.96.0.0/12")));      // a pod network itself
    EXPECT_FALSE(f.accepts(P("10.244.0.0/16")));    // a pod network that covers our own pods
    EXPECT_TRUE(f.accepts(P("10.100.0.7/32")));
    EXPECT_FALSE(f.accepts(P("10.0.0.0/8")));       // covers a pod network, is not inside one
    EXPECT_FALSE(f.accepts(P("192.168.1.0/24")));
    EXPECT_EQ(f.refusal(P("192.168.1.0/24")), "outside the pod networks (--accept)");
}

TEST(AcceptFilter, NeverTheDefaultRouteNorTheNodesOwnSubnets) {
    NodeConfig node;
    node.node_ip = *parse_ipv4("10.168.0.2");
    node.uplink = P("10.168.0.0/24");
    node.pod_cidrs = {P("10.244.2.0/24")};
    // Even an --accept that covers everything.
    const AcceptFilter f({P("0.0.0.0/0")}, node);
    EXPECT_EQ(f.refusal(P("0.0.0.0/0")), "the default route is never accepted");
    EXPECT_FALSE(f.accepts(P("10.168.0.0/16")));    // covers the uplink
    EXPECT_FALSE(f.accepts(P("10.168.0.3/32")));    // inside the uplink: another node's address
    EXPECT_FALSE(f.accepts(P("10.244.2.64/26")));   // a piece of our own pods
    EXPECT_FALSE(f.accepts(P("10.244.0.0/16")));    // covers our own pods
    EXPECT_NE(f.refusal(P("10.244.2.64/26")).find("10.244.2.0/24"), std::string::npos);
    EXPECT_TRUE(f.accepts(P("10.244.3.0/24")));
    EXPECT_TRUE(f.accepts(P("10.169.0.0/24")));
}

TEST(AcceptFilter, EmptyAcceptsNothing) {
    EXPECT_FALSE(AcceptFilter().accepts(P("10.244.3.0/24")));
}

TEST(Overlaps, BothWays) {
    EXPECT_TRUE(overlaps(P("10.0.0.0/8"), P("10.1.0.0/16")));
    EXPECT_TRUE(overlaps(P("10.1.0.0/16"), P("10.0.0.0/8")));
    EXPECT_TRUE(overlaps(P("10.1.0.0/16"), P("10.1.0.0/16")));
    EXPECT_FALSE(overlaps(P("10.1.0.0/16"), P("10.2.0.0/16")));
}

namespace b = bgp;

TEST(PeerSpec, Full) {
    auto p = b::parse_peer("10.168.0.10,as=64512,password=s3cret,passive,port=1179,hold=9,restart-time=30", 90, 120);
    ASSERT_TRUE(p) << p.error().message;
    EXPECT_EQ(p->address, *parse_ipv4("10.168.0.10"));
    EXPECT_EQ(p->remote_as, 64512u);
    EXPECT_EQ(p->password, "s3cret");
    EXPECT_TRUE(p->passive);
    EXPECT_EQ(p->port, 1179);
    EXPECT_EQ(p->hold_time, 9u);
    EXPECT_EQ(p->restart_time, 30u);
}

TEST(PeerSpec, DefaultsFromTheGlobalOptions) {
    auto p = b::parse_peer("10.168.0.10,as=4200000000", 30, 0);
    ASSERT_TRUE(p) << p.error().message;
    EXPECT_EQ(p->remote_as, 4200000000u);
    EXPECT_EQ(p->port, 179);
    EXPECT_FALSE(p->passive);
    EXPECT_EQ(p->hold_time, 30u);
    EXPECT_EQ(p->restart_time, 0u);
    EXPECT_TRUE(p->password.empty());
}

TEST(PeerSpec, ClearErrors) {
    const struct {
        const char* spec;
        const char* says;
    } cases[] = {
        {"10.168.0.10", "as=N is required"},
        {"10.168.0.10,as=0", "as=N"},
        {"10.168.0.10,as=4294967296", "as=N"},
        {"10.168.0.10,as=x", "as=N"},
        {"host,as=1", "not an IPv4 address"},
        {"10.168.0.10,as=1,hold=2", "hold=S"},
        {"10.168.0.10,as=1,port=0", "port=N"},
        {"10.168.0.10,as=1,restart-time=4096", "restart-time"},
        {"10.168.0.10,as=1,password=", "password"},
        {"10.168.0.10,as=1,passive=yes", "unknown"},
        {"10.168.0.10,as=1,md5=x", "unknown"},
        {"10.168.0.10,as=1,", "unknown"},
    };
    for (const auto& c : cases) {
        auto p = b::parse_peer(c.spec, 90, 120);
        ASSERT_FALSE(p) << c.spec;
        EXPECT_NE(p.error().message.find(c.says), std::string::npos) << c.spec << ": " << p.error().message;
        EXPECT_NE(p.error().message.find("--bgp-peer"), std::string::npos) << p.error().message;
    }
    EXPECT_FALSE(b::parse_peer("10.168.0.10,as=1,hold=0", 90, 120));   // gobgpd would make it 90
}

}  // namespace
}  // namespace podfwd::control
