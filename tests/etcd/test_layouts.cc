// The etcd source's layouts: every rule of layouts.h, then a randomized
// differential test of each layout against a naive model that recomputes
// every route from the current keys (test_layouts_random.cc).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <ctime>
#include <cstdio>

#include "tests/etcd/layouts_check.h"

namespace podfwd::control::etcd {
namespace {

using ::testing::HasSubstr;
using namespace test;   // NOLINT: the helpers of layouts_check.h

const std::string kFlannelConfig =
    R"({"Network":"10.244.0.0/16","SubnetLen":24,"Backend":{"Type":"vxlan","VNI":1,"Port":8472}})";

// ---- Flannel: the parsers ----

TEST(FlannelParse, SubnetKeys) {
    EXPECT_EQ(parse_flannel_subnet_key("10.244.1.0-24")->str(), "10.244.1.0/24");
    EXPECT_EQ(parse_flannel_subnet_key("10.244.1.0-24&fd00:10:244:1::-64")->str(), "10.244.1.0/24");
    EXPECT_EQ(flannel_subnet_key(pfx("10.244.1.0/24")), "10.244.1.0-24");
    for (const char* bad : {"10.244.1.1-24", "10.244.01.0-24", "junk", "10.244.1.0/24", "10.244.1.0-33",
                            "10.244.1.0-24&zz-64", "10.244.1.0-24&fd00::", "0.0.0.0-0", "10.244.1.0-"})
        EXPECT_FALSE(parse_flannel_subnet_key(bad)) << bad;
    EXPECT_THAT(parse_flannel_subnet_key("10.244.1.1-24").error().message, HasSubstr("host bits"));
}

TEST(FlannelParse, Config) {
    auto c = parse_flannel_config(
        R"({"Network":"10.244.0.0/16","SubnetLen":25,"Backend":{"Type":"vxlan","VNI":7,"Port":4789,"DirectRouting":true}})");
    ASSERT_TRUE(c) << c.error().message;
    EXPECT_EQ(*c, (FlannelConfig{pfx("10.244.0.0/16"), 25, "vxlan", 7, 4789, true}));
    c = parse_flannel_config(R"({"Network":"10.244.0.0/16","Backend":{"Type":"host-gw"}})");
    ASSERT_TRUE(c);
    EXPECT_EQ(*c, (FlannelConfig{pfx("10.244.0.0/16"), 24, "host-gw", 1, 8472, false}));
    c = parse_flannel_config(R"({"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","Port":0}})");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->port, 8472);

    const std::pair<std::string, const char*> bad[] = {
        {R"({"Network":"10.244.0.0/16"})", "Backend.Type: 'udp' is not supported"},
        {R"({"Network":"10.244.0.0/16","Backend":{}})", "'udp' is not supported"},
        {R"({"Network":"10.244.0.0/16","Backend":{"Type":"udp"}})", "'udp' is not supported"},
        {R"({"Network":"10.244.0.0/16","Backend":{"Type":"ipsec"}})", "'ipsec' is not supported"},
        {R"({"Backend":{"Type":"vxlan"}})", "Network: missing"},
        {R"({"Network":"10.244.0.1/16","Backend":{"Type":"vxlan"}})", "Network: "},
        {R"({"Network":16,"Backend":{"Type":"vxlan"}})", "Network: not a string"},
        {R"({"Network":"10.244.0.0/16","SubnetLen":33,"Backend":{"Type":"vxlan"}})", "SubnetLen: 33 is not"},
        {R"({"Network":"10.244.0.0/16","SubnetLen":8,"Backend":{"Type":"vxlan"}})", "SubnetLen: 8 is shorter"},
        {R"({"Network":"10.244.0.0/16","SubnetLen":-1,"Backend":{"Type":"vxlan"}})", "SubnetLen: -1 is not"},
        {R"({"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","VNI":16777216}})", "Backend.VNI: 16777216"},
        {R"({"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","VNI":0}})", "Backend.VNI: 0 is not a VNI"},
        {R"({"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","VNI":1.5}})", "Backend.VNI: 1.5 is not"},
        {R"({"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","VNI":"1"}})", "Backend.VNI: not a number"},
        {R"({"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","VNI":1e30}})", "Backend.VNI: "},
        {R"({"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","Port":65536}})", "Backend.Port: 65536"},
        {R"({"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","DirectRouting":1}})", "DirectRouting: not a"},
        {R"({"Network":"10.244.0.0/16","Backend":"vxlan"})", "Backend: not an object"},
        {R"(["Network"])", "not a JSON object"},
        {"{\"Network\":\"10.244.0.0/16\",", "not JSON"},
        {"{\"Network\":\"10.244.0.0/16\xff\"}", "not JSON"},
        {"", "not JSON"},
    };
    for (const auto& [text, reason] : bad) {
        auto r = parse_flannel_config(text);
        ASSERT_FALSE(r) << text;
        EXPECT_THAT(r.error().message, HasSubstr(reason)) << text;
    }
}

TEST(FlannelParse, LeaseAndItsJson) {
    const FlannelLease vxlan{ip("10.168.0.3"), "vxlan", 1, mac("aa:bb:cc:dd:ee:0f")};
    EXPECT_EQ(flannel_lease_json(vxlan), R"({"PublicIP":"10.168.0.3","PublicIPv6":null,"BackendType":"vxlan",)"
                                         R"("BackendData":{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:0f"}})");
    EXPECT_EQ(flannel_lease_json(FlannelLease{ip("10.168.0.4"), "host-gw", 0, std::nullopt}),
              R"({"PublicIP":"10.168.0.4","PublicIPv6":null,"BackendType":"host-gw","BackendData":null})");
    auto l = parse_flannel_lease(flannel_lease_json(vxlan));
    ASSERT_TRUE(l) << l.error().message;
    EXPECT_EQ(l->public_ip, vxlan.public_ip);
    EXPECT_EQ(l->backend_type, "vxlan");
    EXPECT_EQ(l->vni, 1u);
    EXPECT_EQ(l->vtep_mac, vxlan.vtep_mac);
    l = parse_flannel_lease(R"({"PublicIP":"10.168.0.4","BackendType":"host-gw"})");
    ASSERT_TRUE(l);
    EXPECT_EQ(l->vni, 0u);
    EXPECT_FALSE(l->vtep_mac);

    const std::pair<std::string, const char*> bad[] = {
        {R"({"PublicIP":"10.168.0.x","BackendType":"host-gw"})", "PublicIP: not an IPv4 address"},
        {R"({"BackendType":"host-gw"})", "PublicIP: missing"},
        {R"({"PublicIP":"10.168.0.3"})", "BackendType: missing"},
        {R"({"PublicIP":"10.168.0.3","BackendType":7})", "BackendType: not a string"},
        {R"({"PublicIP":"10.168.0.3","BackendType":"vxlan","BackendData":[1]})", "BackendData: not an object"},
        {R"({"PublicIP":"10.168.0.3","BackendType":"vxlan","BackendData":{"VNI":-1}})", "BackendData.VNI: -1"},
        {R"({"PublicIP":"10.168.0.3","BackendType":"vxlan","BackendData":{"VtepMAC":"aa:bb"}})",
         "BackendData.VtepMAC: not a MAC address ('aa:bb')"},
        {"{\"PublicIP\":\"10.168.0.3\n\",\"BackendType\":\"host-gw\"}", "not JSON"},
        {R"({"PublicIP":"10.168.0.3\n","BackendType":"host-gw"})", "('10.168.0.3\\x0a')"},
        {std::string(100000, '['), "not JSON"},   // deep nesting: no stack overflow
        {std::string(100000, '[') + std::string(100000, ']'), "not a JSON object (array)"},
    };
    for (const auto& [text, reason] : bad) {
        auto r = parse_flannel_lease(text);
        ASSERT_FALSE(r) << text;
        EXPECT_THAT(r.error().message, HasSubstr(reason)) << text;
        EXPECT_EQ(r.error().message.find('\n'), std::string::npos);
    }
}

TEST(Layout, PrefixRangeEndAndPrintable) {
    EXPECT_EQ(prefix_range_end("/calico/"), "/calico0");
    EXPECT_EQ(prefix_range_end("a\xff\xff"), "b");
    EXPECT_EQ(prefix_range_end("\xff"), std::string(1, '\0'));
    EXPECT_EQ(prefix_range_end(""), std::string(1, '\0'));
    EXPECT_EQ(printable("a\nb\xc3\xa9"), "a\\x0ab\\xc3\\xa9");
    EXPECT_EQ(printable("abcdef", 3), "abc...");
}

// ---- Flannel: the layout ----

FlannelLayout flannel() {
    return FlannelLayout({"/coreos.com/network/", pfx("10.244.0.0/24"), ip("10.168.0.2")});
}

TEST(FlannelLayout, KeysAndRange) {
    auto f = flannel();
    EXPECT_EQ(f.range_begin(), "/coreos.com/network/");
    EXPECT_EQ(f.range_end(), "/coreos.com/network0");
    EXPECT_EQ(f.config_key(), kConfig);
    EXPECT_EQ(f.lease_key(pfx("10.244.1.0/24")), kSubnets + "10.244.1.0-24");
    EXPECT_STREQ(f.name(), "flannel");
}

TEST(FlannelLayout, LeasesBecomeRoutes) {
    auto f = flannel();
    Checker c(f);
    auto u = c.put(kSubnets + "10.244.1.0-24", lease("10.168.0.3", "host-gw", 0, nullptr));
    ASSERT_EQ(u.changes.size(), 1u);
    EXPECT_EQ(*u.changes[0].route, (EtcdRoute{pfx("10.244.1.0/24"), ip("10.168.0.3"), Encap::kHostGw, false, 0,
                                              std::nullopt, kSubnets + "10.244.1.0-24"}));
    c.put(kSubnets + "10.244.2.0-24", lease("10.168.0.4", "vxlan", 0));
    EXPECT_EQ(f.routes().at(pfx("10.244.2.0/24")),
              (EtcdRoute{pfx("10.244.2.0/24"), ip("10.168.0.4"), Encap::kVxlan, false, 1, mac(kMac1),
                         kSubnets + "10.244.2.0-24"}));
    c.put(kSubnets + "10.244.3.0-24", lease("10.168.0.5", "vxlan", 9));
    EXPECT_EQ(f.routes().at(pfx("10.244.3.0/24")).vni, 9u);
    // The same value again is no change; other keys are ignored.
    u = c.put(kSubnets + "10.244.3.0-24", lease("10.168.0.5", "vxlan", 9));
    EXPECT_TRUE(u.changes.empty() && u.rejected.empty());
    for (const char* other : {"/coreos.com/network/other", "/coreos.com/network/subnets/", "/coreos.com/x"})
        EXPECT_TRUE(c.put(other, "{}").changes.empty());
    EXPECT_EQ(f.counters().keys, 3u);
    EXPECT_EQ(f.counters().rejected, 0u);
    u = c.del(kSubnets + "10.244.1.0-24");
    ASSERT_EQ(u.changes.size(), 1u);
    EXPECT_FALSE(u.changes[0].route);
    EXPECT_EQ(f.routes().size(), 2u);
}

TEST(FlannelLayout, RejectsBadLeasesOnceEach) {
    auto f = flannel();
    Checker c(f);
    const std::string key = kSubnets + "10.244.1.0-24";
    auto u = c.put(key, R"({"PublicIP":"nope","BackendType":"host-gw"})");
    ASSERT_EQ(u.rejected.size(), 1u);
    EXPECT_EQ(u.rejected[0].key, key);
    EXPECT_EQ(u.rejected[0].reason, key + ": PublicIP: not an IPv4 address ('nope')");
    // Another value with the same reason is not reported again; a new reason is.
    EXPECT_TRUE(c.put(key, R"({"PublicIP":"nope","BackendType":"vxlan"})").rejected.empty());
    u = c.put(key, lease("10.168.0.3", "udp"));
    ASSERT_EQ(u.rejected.size(), 1u);
    EXPECT_EQ(u.rejected[0].reason, key + ": BackendType 'udp' is not supported (host-gw, vxlan, ipip)");
    u = c.put(key, lease("10.168.0.3", "vxlan", 1, nullptr));
    EXPECT_THAT(u.rejected.at(0).reason, HasSubstr("vxlan lease without BackendData.VtepMAC"));
    c.put(kSubnets + "10.244.1.1-24", lease("10.168.0.3", "host-gw"));
    c.put(kSubnets + "10.244.01.0-24", lease("10.168.0.3", "host-gw"));
    EXPECT_EQ(f.counters().rejected, 3u);
    EXPECT_TRUE(f.routes().empty());
    u = c.put(key, lease("10.168.0.3", "host-gw"));   // fixed: a route, the rejection goes
    EXPECT_EQ(u.changes.size(), 1u);
    EXPECT_EQ(f.counters().rejected, 2u);
    EXPECT_EQ(f.rejections().at(0).key, kSubnets + "10.244.01.0-24");
}

// flanneld's IPIP backend: BackendData null; DirectRouting (the config's)
// makes nodes on the uplink subnet host-gw, as with vxlan.
TEST(FlannelLayout, IpipLeases) {
    auto f = flannel();
    Checker c(f);
    auto cfg = parse_flannel_config(R"({"Network":"10.244.0.0/16","Backend":{"Type":"ipip","DirectRouting":true}})");
    ASSERT_TRUE(cfg) << cfg.error().message;
    EXPECT_EQ(*cfg, (FlannelConfig{pfx("10.244.0.0/16"), 24, "ipip", 1, 8472, true}));
    const std::string key = kSubnets + "10.244.1.0-24";
    auto u = c.put(key, R"({"PublicIP":"10.168.1.2","PublicIPv6":null,"BackendType":"ipip","BackendData":null})");
    ASSERT_EQ(u.changes.size(), 1u);
    EXPECT_EQ(*u.changes[0].route,
              (EtcdRoute{pfx("10.244.1.0/24"), ip("10.168.1.2"), Encap::kIpip, false, 0, std::nullopt, key}));
    c.put(kConfig, R"({"Network":"10.244.0.0/16","Backend":{"Type":"ipip","DirectRouting":true}})");
    EXPECT_TRUE(f.routes().at(pfx("10.244.1.0/24")).direct_on_subnet);
    EXPECT_EQ(f.counters().rejected, 0u);
    // This node's own lease, as podfwd-control writes it for the ipip backend.
    const std::string mine = flannel_lease_json(FlannelLease{ip("10.168.0.2"), "ipip", 0, std::nullopt});
    EXPECT_EQ(mine, R"({"PublicIP":"10.168.0.2","PublicIPv6":null,"BackendType":"ipip","BackendData":null})");
    EXPECT_EQ(parse_flannel_lease(mine)->backend_type, "ipip");
}

TEST(FlannelLayout, OwnLeaseIsNoRoute) {
    auto f = flannel();
    Checker c(f);
    c.put(kSubnets + "10.244.0.0-24", lease("10.168.0.9", "vxlan"));       // our subnet
    c.put(kSubnets + "10.244.0.0-24", "junk");                              // ours, whatever it says
    c.put(kSubnets + "10.244.7.0-24", lease("10.168.0.2", "udp"));          // our PublicIP
    c.put(kSubnets + "0.0.0.0-0&fd00:10:244:9::-64", lease("10.168.0.9", "vxlan"));   // IPv6 only
    EXPECT_TRUE(f.routes().empty());
    EXPECT_EQ(f.counters().rejected, 0u);
    EXPECT_EQ(f.counters().keys, 3u);
}

TEST(FlannelLayout, ConfigGovernsEveryLease) {
    auto f = flannel();
    Checker c(f);
    c.put(kSubnets + "10.244.1.0-24", lease("10.168.0.3", "vxlan", 0));
    c.put(kSubnets + "10.245.1.0-24", lease("10.168.0.4", "host-gw"));
    EXPECT_EQ(f.routes().size(), 2u);   // no config: no Network check, VNI 1
    EXPECT_EQ(f.routes().at(pfx("10.244.1.0/24")).vni, 1u);
    auto u = c.put(kConfig, kFlannelConfig);
    ASSERT_EQ(u.changes.size(), 1u);
    EXPECT_FALSE(u.changes[0].route);
    ASSERT_EQ(u.rejected.size(), 1u);
    EXPECT_EQ(u.rejected[0].reason, kSubnets +
                                        "10.245.1.0-24: subnet 10.245.1.0/24 is outside the config's Network "
                                        "10.244.0.0/16");
    ASSERT_TRUE(f.config());
    u = c.put(kConfig, R"({"Network":"10.0.0.0/8","SubnetLen":24,)"
                       R"("Backend":{"Type":"vxlan","VNI":5,"DirectRouting":true}})");
    EXPECT_EQ(u.changes.size(), 2u);
    EXPECT_TRUE(f.routes().at(pfx("10.244.1.0/24")).direct_on_subnet);
    EXPECT_EQ(f.routes().at(pfx("10.244.1.0/24")).vni, 5u);
    EXPECT_FALSE(f.routes().at(pfx("10.245.1.0/24")).direct_on_subnet);   // host-gw lease
    // A lease's own VNI beats the config's.
    c.put(kSubnets + "10.244.2.0-24", lease("10.168.0.5", "vxlan", 3));
    EXPECT_EQ(f.routes().at(pfx("10.244.2.0/24")).vni, 3u);
    // An invalid config is rejected and the leases are taken as with none.
    u = c.put(kConfig, R"({"Network":"10.244.0.0/16","Backend":{"Type":"udp"}})");
    ASSERT_EQ(u.rejected.size(), 1u);
    EXPECT_EQ(u.rejected[0].key, kConfig);
    EXPECT_THAT(u.rejected[0].reason, HasSubstr(kConfig + ": Backend.Type: 'udp' is not supported"));
    EXPECT_FALSE(f.config());
    EXPECT_EQ(f.routes().size(), 3u);
    EXPECT_FALSE(f.routes().at(pfx("10.244.1.0/24")).direct_on_subnet);
    EXPECT_EQ(f.routes().at(pfx("10.244.1.0/24")).vni, 1u);
    c.put(kConfig, kFlannelConfig);
    EXPECT_EQ(f.routes().size(), 2u);
    u = c.del(kConfig);   // deleted: as with no config
    EXPECT_EQ(f.routes().size(), 3u);
    EXPECT_EQ(f.counters().rejected, 0u);
    // SubnetLen differing from the config's is accepted.
    c.put(kConfig, kFlannelConfig);
    c.put(kSubnets + "10.244.128.0-17", lease("10.168.0.6", "host-gw"));
    EXPECT_TRUE(f.routes().contains(pfx("10.244.128.0/17")));
}

TEST(FlannelLayout, DualStackKeysOfOneSubnet) {
    auto f = flannel();
    Checker c(f);
    const std::string dual = kSubnets + "10.244.1.0-24&fd00:10:244:1::-64";
    c.put(dual, lease("10.168.0.3", "host-gw"));
    EXPECT_EQ(f.routes().at(pfx("10.244.1.0/24")).key, dual);
    c.put(kSubnets + "10.244.1.0-24", lease("10.168.0.4", "host-gw"));   // the lower key wins
    EXPECT_EQ(f.routes().at(pfx("10.244.1.0/24")).via, ip("10.168.0.4"));
    auto u = c.del(kSubnets + "10.244.1.0-24");
    ASSERT_EQ(u.changes.size(), 1u);
    EXPECT_EQ(u.changes[0].route->key, dual);
}

TEST(FlannelLayout, ResyncReportsTheNetChange) {
    auto f = flannel();
    Checker c(f);
    c.put(kConfig, kFlannelConfig);
    c.put(kSubnets + "10.244.1.0-24", lease("10.168.0.3", "host-gw"));
    c.put(kSubnets + "10.244.2.0-24", lease("10.168.0.4", "host-gw"));
    c.put(kSubnets + "10.244.3.0-24", "junk");
    // The config goes and comes back the same, 10.244.1.0/24 is unchanged,
    // 10.244.2.0/24 goes, 10.244.3.0/24 is fixed, 10.244.4.0/24 comes.
    const std::vector<KeyValue> snapshot = {
        {"/coreos.com/network/unrelated", "x"},
        {kSubnets + "10.244.4.0-24", lease("10.168.0.6", "host-gw")},
        {kSubnets + "10.244.1.0-24", lease("10.168.0.3", "host-gw")},
        {kSubnets + "10.244.3.0-24", lease("10.168.0.5", "host-gw")},
        {kConfig, kFlannelConfig},
    };
    auto u = c.resync(snapshot);
    ASSERT_EQ(u.changes.size(), 3u);
    EXPECT_EQ(u.changes[0].prefix, pfx("10.244.2.0/24"));
    EXPECT_FALSE(u.changes[0].route);
    EXPECT_EQ(u.changes[1].prefix, pfx("10.244.3.0/24"));
    EXPECT_EQ(u.changes[2].prefix, pfx("10.244.4.0/24"));
    EXPECT_TRUE(u.rejected.empty());
    EXPECT_EQ(f.counters().keys, 4u);
    u = c.resync(snapshot);
    EXPECT_TRUE(u.changes.empty() && u.rejected.empty());
}

// ---- Calico ----

CalicoLayout calico() { return CalicoLayout({"/calico", "me", 4096}); }

TEST(CalicoLayout, Range) {
    auto l = calico();
    EXPECT_EQ(l.range_begin(), kBlocks);
    EXPECT_EQ(l.range_end(), "/calico/resources/v3/projectcalico.org/nodes0");
    EXPECT_STREQ(l.name(), "calico");
}

TEST(CalicoLayout, BlocksBecomeRoutesByPoolMode) {
    auto l = calico();
    Checker c(l);
    c.put(kNodes + "n1", node("10.168.0.3/24", kMac1));
    c.put(kNodes + "n2", node("10.168.0.4"));   // bare address
    c.put(kBlocks + "10.244.1.0-26", block("10.244.1.0/26", "n1"));
    c.put(kBlocks + "10.244.2.0-26", block("10.244.2.0/26", "n2"));
    c.put(kBlocks + "10.244.3.0-26", block("10.244.3.0/26", "me"));
    c.put(kBlocks + "10.244.4.0-26", block("10.244.4.0/26", nullptr));   // unclaimed
    const auto route = [&](const char* p) { return l.routes().at(pfx(p)); };
    EXPECT_EQ(route("10.244.1.0/26"), (EtcdRoute{pfx("10.244.1.0/26"), ip("10.168.0.3"), Encap::kHostGw, false, 0,
                                                 std::nullopt, kBlocks + "10.244.1.0-26"}));
    EXPECT_EQ(route("10.244.2.0/26").via, ip("10.168.0.4"));
    EXPECT_EQ(route("10.244.3.0/26"), (EtcdRoute{pfx("10.244.3.0/26"), 0, Encap::kLocal, false, 0, std::nullopt,
                                                 kBlocks + "10.244.3.0-26"}));
    EXPECT_EQ(l.routes().size(), 3u);
    EXPECT_EQ(l.counters().rejected, 0u);

    c.put(kPools + "default", pool("10.244.0.0/16", "Always", nullptr));
    EXPECT_EQ(route("10.244.1.0/26").encap, Encap::kIpip);
    EXPECT_EQ(route("10.244.3.0/26").encap, Encap::kLocal);
    c.put(kPools + "default", pool("10.244.0.0/16", "CrossSubnet", "Always"));
    EXPECT_EQ(route("10.244.1.0/26").encap, Encap::kIpip);
    EXPECT_TRUE(route("10.244.1.0/26").direct_on_subnet);
    c.put(kPools + "default", pool("10.244.0.0/16", "Never", "Always"));
    EXPECT_EQ(route("10.244.1.0/26"), (EtcdRoute{pfx("10.244.1.0/26"), ip("10.168.0.3"), Encap::kVxlan, false, 4096,
                                                 mac(kMac1), kBlocks + "10.244.1.0-26"}));
    EXPECT_FALSE(l.routes().contains(pfx("10.244.2.0/26")));   // n2 has no VTEP MAC
    EXPECT_EQ(l.rejections().at(0).reason,
              kBlocks + "10.244.2.0-26: node 'n2' has no vxlanTunnelMACAddr (its pool is VXLAN)");
    c.put(kPools + "default", pool("10.244.0.0/16", nullptr, "CrossSubnet"));
    EXPECT_TRUE(route("10.244.1.0/26").direct_on_subnet);
    // The most specific pool decides; an IPv6 pool changes nothing.
    c.put(kPools + "narrow", pool("10.244.2.0/24", "Never", "Never"));
    c.put(kPools + "v6", pool("fd00:10:244::/48", "Always", nullptr));
    EXPECT_EQ(route("10.244.2.0/26").encap, Encap::kHostGw);
    EXPECT_EQ(route("10.244.1.0/26").encap, Encap::kVxlan);
    c.del(kPools + "default");
    EXPECT_EQ(route("10.244.1.0/26").encap, Encap::kHostGw);
    EXPECT_EQ(l.counters().keys, 8u);   // 2 nodes, 4 blocks, 2 pools
    EXPECT_EQ(l.counters().rejected, 0u);
}

TEST(CalicoLayout, BlocksWaitForTheirNode) {
    auto l = calico();
    Checker c(l);
    const std::string key = kBlocks + "10.244.1.0-26";
    auto u = c.put(key, block("10.244.1.0/26", "n1"));
    ASSERT_EQ(u.rejected.size(), 1u);
    EXPECT_EQ(u.rejected[0].reason, key + ": node 'n1' unknown");
    u = c.put(kNodes + "n1", node(nullptr, kMac1));
    EXPECT_EQ(u.rejected.at(0).reason, key + ": node 'n1' has no bgp.ipv4Address");
    u = c.put(kNodes + "n1", node("10.168.0.3/24"));
    EXPECT_EQ(u.changes.size(), 1u);
    EXPECT_EQ(l.counters().rejected, 0u);
    u = c.put(kNodes + "n1", node("10.168.0.300/24"));   // a bad node is absent
    EXPECT_FALSE(u.changes.at(0).route);
    EXPECT_EQ(l.counters().rejected, 2u);
    EXPECT_THAT(l.rejections().at(1).reason, HasSubstr("n1: spec.bgp.ipv4Address: not an IPv4 address"));
    u = c.put(kNodes + "n1", node("10.168.0.5"));
    EXPECT_EQ(l.routes().at(pfx("10.244.1.0/26")).via, ip("10.168.0.5"));
    c.del(kNodes + "n1");
    EXPECT_TRUE(l.routes().empty());
}

TEST(CalicoLayout, RejectsBadKeys) {
    auto l = calico();
    Checker c(l);
    c.put(kNodes + "n1", node("10.168.0.3/24"));
    const std::pair<std::string, std::string> bad[] = {
        {kBlocks + "10.244.1.0-26", block("10.244.2.0/26", "n1")},
        {kBlocks + "10.244.1.64-26", R"({"cidr":"10.244.1.64/26","affinity":"virtual:n1"})"},
        {kBlocks + "10.244.1.128-26", R"({"cidr":"10.244.1.128/26","affinity":7})"},
        {kBlocks + "10.244.1.192-26", R"({"affinity":"host:n1"})"},
        {kBlocks + "10.244.2.1-26", block("10.244.2.1/26", "n1")},
        {kBlocks + "10.244.3.0-026", block("10.244.3.0/26", "n1")},
        {kBlocks + "10.244.4.0-26", "\xff"},
        {kBlocks + "10.244.5.0-26", R"({"cidr":"10.244.5.0/26","a":)" + std::string(100000, '[')},
        {kBlocks + "10.244.6.0-26", "[" + block("10.244.6.0/26", "n1") + "]"},
        {kPools + "p1", pool("10.244.0.0/16", "Sometimes", nullptr)},
        {kPools + "p2", pool("10.244.0.1/16", nullptr, nullptr)},
        {kPools + "p3", R"({"spec":null})"},
        {kNodes + "n2", node("10.168.0.4/24", "zz")},
        {kNodes + "n3", R"({"spec":{"bgp":[]}})"},
    };
    const char* const reasons[] = {"cidr 10.244.2.0/26 differs from the key's 10.244.1.0/26",
                                   "affinity: 'virtual:n1' is not host:<node>",
                                   "affinity: not a string",
                                   "cidr: missing",
                                   "host bits",
                                   "is not written as Calico writes it (10.244.3.0-26)",
                                   "not JSON",
                                   "not JSON",
                                   "not a JSON object (array)",
                                   "spec.ipipMode: 'Sometimes' is not Always, CrossSubnet or Never",
                                   "spec.cidr: ",
                                   "spec: missing",
                                   "spec.vxlanTunnelMACAddr: not a MAC address ('zz')",
                                   "spec.bgp: not an object"};
    for (std::size_t i = 0; i < std::size(bad); ++i) {
        auto u = c.put(bad[i].first, bad[i].second);
        ASSERT_EQ(u.rejected.size(), 1u) << bad[i].first;
        EXPECT_THAT(u.rejected[0].reason, HasSubstr(reasons[i])) << bad[i].first;
        EXPECT_EQ(u.rejected[0].reason.rfind(bad[i].first + ": ", 0), 0u);
    }
    EXPECT_TRUE(l.routes().empty());
    EXPECT_EQ(l.counters().keys, std::size(bad) + 1);
    EXPECT_EQ(l.counters().rejected, std::size(bad));
    EXPECT_TRUE(c.put("/calico/ipam/v2/handle/k8s-pod-network.x", "{}").changes.empty());
    EXPECT_EQ(l.counters().keys, std::size(bad) + 1);
}

// ---- Scale: a full sync of 20,000 blocks and of 5,000 leases ----

// CPU time, not wall time: the tests share the machine with builds.
double cpu_ms() { return 1000.0 * static_cast<double>(std::clock()) / CLOCKS_PER_SEC; }

TEST(LayoutScale, TwentyThousandBlocks) {
    auto l = calico();
    std::vector<KeyValue> snapshot;
    for (unsigned i = 0; i < 20000; ++i) {
        const Prefix4 p{ip("10.0.0.0") + i * 64, 26};
        const std::string n = "node" + std::to_string(i % 500);
        snapshot.push_back({kBlocks + format_ipv4(p.addr) + "-26", block(p.str().c_str(), n.c_str())});
    }
    for (unsigned i = 0; i < 500; ++i)
        snapshot.push_back({kNodes + "node" + std::to_string(i),
                            node(format_ipv4(ip("192.168.0.0") + i).c_str(), kMac1)});
    snapshot.push_back({kPools + "default", pool("10.0.0.0/8", nullptr, "CrossSubnet")});
    double start = cpu_ms();
    auto u = l.resync(snapshot);
    const double first = cpu_ms() - start;
    EXPECT_EQ(u.changes.size(), 20000u);
    EXPECT_TRUE(u.rejected.empty());
    snapshot[7].value = block("10.0.1.192/26", "node3");
    start = cpu_ms();
    u = l.resync(snapshot);
    const double again = cpu_ms() - start;
    EXPECT_EQ(u.changes.size(), 1u);
    std::printf("calico: resync of 20,000 blocks %.1f ms CPU, again %.1f ms\n", first, again);
    EXPECT_LT(first, 2000.0);
    u = l.apply(kNodes + "node3", node("192.168.9.9", kMac1));
    EXPECT_EQ(u.changes.size(), 41u);
}

TEST(LayoutScale, FiveThousandLeases) {
    auto f = flannel();
    std::vector<KeyValue> snapshot{{kConfig, R"({"Network":"10.0.0.0/8","Backend":{"Type":"vxlan"}})"}};
    for (unsigned i = 1; i <= 5000; ++i)
        snapshot.push_back({kSubnets + format_ipv4(ip("10.0.0.0") + (i << 8)) + "-24",
                            lease(format_ipv4(ip("192.168.0.0") + i).c_str(), "vxlan")});
    double start = cpu_ms();
    auto u = f.resync(snapshot);
    const double first = cpu_ms() - start;
    EXPECT_EQ(u.changes.size(), 5000u);
    start = cpu_ms();
    u = f.apply(kConfig, R"({"Network":"10.0.0.0/8","Backend":{"Type":"vxlan","DirectRouting":true}})");
    std::printf("flannel: resync of 5,000 leases %.1f ms CPU, config change %.1f ms\n", first, cpu_ms() - start);
    EXPECT_EQ(u.changes.size(), 5000u);
    EXPECT_LT(first, 2000.0);
}

}  // namespace
}  // namespace podfwd::control::etcd
