// TableSync against the real shared-memory table: what the table answers
// (TableWriter::lookup and its next-hop records) is compared with the RIB.
#include <gtest/gtest.h>
#include <unistd.h>

#include "control/core/table_sync.h"

namespace podfwd::control {
namespace {

Ipv4Addr ip(const char* text) { return *parse_ipv4(text); }
Prefix4 pfx(const char* text) { return *Prefix4::parse(text); }

class TableSyncTest : public ::testing::Test {
protected:
    void SetUp() override {
        name_ = "podfwd-test-sync-" + std::to_string(::getpid()) + "-" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name();
        (void)lpm::TableWriter::unlink(name_);
        open();
    }
    void TearDown() override {
        sync_.reset();
        writer_.reset();
        (void)lpm::TableWriter::unlink(name_);
    }
    void open(const lpm::TableWriter::Options& o = options()) {
        auto w = lpm::TableWriter::open(name_, o);
        ASSERT_TRUE(w) << w.error().message;
        writer_.emplace(std::move(*w));
        sync_.emplace(*writer_, neighbours_);
    }
    // Replaces the fixture's table with a fresh one of this capacity.
    void recreate(const lpm::Capacity& capacity) {
        sync_.reset();
        writer_.reset();
        (void)lpm::TableWriter::unlink(name_);
        lpm::TableWriter::Options o = options();
        o.capacity = capacity;
        open(o);
    }
    static lpm::TableWriter::Options options() {
        lpm::TableWriter::Options o;
        o.capacity.max_routes = 1024;
        o.capacity.max_nexthops = 64;
        o.capacity.max_groups = 64;
        return o;
    }
    // The RIB's change pushed as the daemon does it.
    void set(const char* prefix, const char* via, lpm::ForwardMode mode = lpm::ForwardMode::kHostGw) {
        const Prefix4 p = pfx(prefix);
        if (rib_.set(RouteSpec{p, Source::kStatic, ip(via), ModeRequest::kHostGw, 0, std::nullopt},
                     Forwarding{mode, ip(via), ip(via), 0, {}})) {
            ASSERT_TRUE(sync_->stage(p, &rib_.best(p)->forwarding));
        }
    }
    void del(const char* prefix) {
        bool changed = false;
        rib_.erase(pfx(prefix), Source::kStatic, changed);
        if (changed) {
            const RibRoute* best = rib_.best(pfx(prefix));
            ASSERT_TRUE(sync_->stage(pfx(prefix), best ? &best->forwarding : nullptr));
        }
    }
    std::optional<lpm::NextHop> answer(const char* addr) {
        const lpm::NextHopId id = writer_->lookup(ip(addr));
        return id == lpm::kNoRoute ? std::nullopt : writer_->nexthop(id);
    }

    std::string name_;
    Rib rib_;
    NeighbourTable neighbours_;
    std::optional<lpm::TableWriter> writer_;
    std::optional<TableSync> sync_;
};

TEST_F(TableSyncTest, RoutesShareNextHopsAndFollowTheRib) {
    set("10.244.1.0/24", "10.168.0.3");
    set("10.244.2.0/24", "10.168.0.3");
    set("10.244.3.0/24", "10.168.0.4", lpm::ForwardMode::kIpip);
    ASSERT_TRUE(sync_->commit());
    EXPECT_EQ(sync_->nexthops(), 2u);
    EXPECT_EQ(*sync_->installed_id(pfx("10.244.1.0/24")), *sync_->installed_id(pfx("10.244.2.0/24")));
    ASSERT_TRUE(answer("10.244.2.7"));
    EXPECT_EQ(answer("10.244.2.7")->node_ip, ip("10.168.0.3"));
    EXPECT_EQ(answer("10.244.3.7")->mode, lpm::ForwardMode::kIpip);
    EXPECT_FALSE(answer("10.244.2.7")->mac_resolved()) << "no neighbour yet";

    del("10.244.2.0/24");
    ASSERT_TRUE(sync_->commit());
    EXPECT_FALSE(answer("10.244.2.7"));
    EXPECT_EQ(writer_->route_count(), 2u);
}

TEST_F(TableSyncTest, ANeighbourResolvesEveryRecordThatSendsToIt) {
    set("10.244.1.0/24", "10.168.0.3");
    set("10.244.2.0/24", "10.168.0.3");
    ASSERT_TRUE(sync_->commit());
    const auto id = *sync_->installed_id(pfx("10.244.1.0/24"));
    const MacAddr mac{2, 0, 0, 0, 0, 3};
    ASSERT_TRUE(neighbours_.set(Neighbour{ip("10.168.0.3"), mac, Source::kKernel}));
    ASSERT_TRUE(sync_->neighbour_changed(ip("10.168.0.3")));
    EXPECT_EQ(*sync_->installed_id(pfx("10.244.1.0/24")), id) << "one record rewritten in place";
    for (const char* addr : {"10.244.1.1", "10.244.2.1"}) {
        ASSERT_TRUE(answer(addr)->mac_resolved());
        EXPECT_EQ(answer(addr)->mac, mac);
    }
    EXPECT_EQ(sync_->users_of(ip("10.168.0.3")), 1u);
}

TEST_F(TableSyncTest, UnusedNextHopsLeaveAfterTheGracePeriod) {
    set("10.244.1.0/24", "10.168.0.3");
    ASSERT_TRUE(sync_->commit());
    const auto id = *sync_->installed_id(pfx("10.244.1.0/24"));
    del("10.244.1.0/24");
    ASSERT_TRUE(sync_->commit());
    const auto now = TableSync::Clock::now();
    sync_->collect(now);
    EXPECT_TRUE(writer_->nexthop(id)) << "a reader may still hold the old route's id";
    sync_->collect(now + TableSync::kNextHopGrace);
    EXPECT_FALSE(writer_->nexthop(id));
    EXPECT_EQ(sync_->nexthops(), 0u);
}

TEST_F(TableSyncTest, ARestartedWriterKeepsEveryUnchangedRoute) {
    set("10.244.1.0/24", "10.168.0.3");
    set("10.244.2.0/24", "10.168.0.4");
    set("10.244.3.0/24", "10.168.0.5");
    ASSERT_TRUE(sync_->commit());
    const auto before = writer_->routes();

    // The daemon dies; a new one rebuilds its RIB (one route changed, one gone).
    sync_.reset();
    writer_.reset();
    open();
    ASSERT_TRUE(writer_->recovered());
    Rib fresh;
    for (const auto& [prefix, via] : {std::pair{"10.244.1.0/24", "10.168.0.3"}, {"10.244.2.0/24", "10.168.0.9"}})
        fresh.set(RouteSpec{pfx(prefix), Source::kStatic, ip(via), ModeRequest::kHostGw, 0, std::nullopt},
                  Forwarding{lpm::ForwardMode::kHostGw, ip(via), ip(via), 0, {}});
    ASSERT_TRUE(sync_->reconcile(fresh));
    const auto after = writer_->routes();
    ASSERT_EQ(after.size(), 2u);
    const auto id_of = [](const std::vector<lpm::Route>& routes, const char* prefix) {
        for (const auto& r : routes)
            if (r.prefix == pfx(prefix))
                return r.nexthop;
        return lpm::kNoRoute;
    };
    EXPECT_EQ(id_of(after, "10.244.1.0/24"), id_of(before, "10.244.1.0/24")) << "unchanged: same record";
    EXPECT_EQ(answer("10.244.2.1")->node_ip, ip("10.168.0.9"));
    EXPECT_FALSE(answer("10.244.3.1"));
    // The old records of 10.168.0.4 and .5 are orphans, deleted after the grace period.
    sync_->collect(TableSync::Clock::now() + TableSync::kNextHopGrace);
    EXPECT_EQ(writer_->nexthops().size(), 2u);
}

TEST_F(TableSyncTest, AFullTableRefusesAndKeepsWhatItHad) {
    lpm::Capacity tiny = options().capacity;
    tiny.max_routes = 4;
    recreate(tiny);
    const char* prefixes[] = {"10.244.1.0/24", "10.244.2.0/24", "10.244.3.0/24", "10.244.4.0/24"};
    for (const char* p : prefixes)
        set(p, "10.168.0.3");
    ASSERT_TRUE(sync_->commit());
    const Prefix4 fifth = pfx("10.244.5.0/24");
    rib_.set(RouteSpec{fifth, Source::kStatic, ip("10.168.0.3"), ModeRequest::kHostGw, 0, std::nullopt},
             Forwarding{lpm::ForwardMode::kHostGw, ip("10.168.0.3"), ip("10.168.0.3"), 0, {}});
    auto s = sync_->stage(fifth, &rib_.best(fifth)->forwarding);
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().code, Errc::kCapacity);
    EXPECT_TRUE(sync_->refused(fifth));
    ASSERT_TRUE(sync_->commit());
    EXPECT_EQ(writer_->route_count(), 4u);
    EXPECT_TRUE(answer("10.244.4.1"));
}

TEST_F(TableSyncTest, ABestTheTableCannotTakeKeepsThePreviousRouteAndIsRetried) {
    lpm::Capacity tiny = options().capacity;
    tiny.max_nexthops = 2;
    recreate(tiny);
    set("10.244.1.0/24", "10.168.0.3");
    set("10.244.2.0/24", "10.168.0.4");
    ASSERT_TRUE(sync_->commit());

    // 10.244.1.0/24 moves to a third node: no record left for it.
    const Prefix4 p = pfx("10.244.1.0/24");
    rib_.set(RouteSpec{p, Source::kCli, ip("10.168.0.5"), ModeRequest::kHostGw, 0, std::nullopt},
             Forwarding{lpm::ForwardMode::kHostGw, ip("10.168.0.5"), ip("10.168.0.5"), 0, {}});
    EXPECT_FALSE(sync_->stage(p, &rib_.best(p)->forwarding));
    ASSERT_TRUE(sync_->commit());
    EXPECT_TRUE(sync_->refused(p));
    ASSERT_TRUE(answer("10.244.1.1")) << "a failed replace blackholed the prefix";
    EXPECT_EQ(answer("10.244.1.1")->node_ip, ip("10.168.0.3")) << "a failed replace keeps the previous route";

    // Room appears: the other route goes and its record is reclaimed.
    del("10.244.2.0/24");
    ASSERT_TRUE(sync_->commit());
    EXPECT_EQ(sync_->retry_refused(rib_), 0u) << "the record is still in its grace period";
    sync_->collect(TableSync::Clock::now() + TableSync::kNextHopGrace);
    EXPECT_EQ(sync_->retry_refused(rib_), 1u);
    ASSERT_TRUE(sync_->commit());
    EXPECT_FALSE(sync_->refused(p));
    ASSERT_TRUE(answer("10.244.1.1"));
    EXPECT_EQ(answer("10.244.1.1")->node_ip, ip("10.168.0.5"));
}

// The record names whom the dataplane ARPs for while its MAC is unknown:
// the node on the subnet, the gateway for a tunnel to a node off it.
TEST_F(TableSyncTest, RecordsNameTheirL2NextHop) {
    const Ipv4Addr gateway = ip("10.168.0.1");
    const MacAddr vtep{2, 0, 0, 0, 0, 0x77};
    const std::pair<const char*, Forwarding> routes[] = {
        {"10.244.1.0/24", Forwarding{lpm::ForwardMode::kHostGw, ip("10.168.0.3"), ip("10.168.0.3"), 0, {}}},
        {"10.244.2.0/24", Forwarding{lpm::ForwardMode::kIpip, ip("10.169.0.7"), gateway, 0, {}}},
        {"10.244.3.0/24", Forwarding{lpm::ForwardMode::kVxlan, ip("10.169.0.8"), gateway, 5, vtep}},
        {"10.244.4.0/24", Forwarding{lpm::ForwardMode::kIpip, ip("10.168.0.4"), ip("10.168.0.4"), 0, {}}},
        {"10.244.5.0/24", Forwarding{lpm::ForwardMode::kLocal}},
    };
    for (const auto& [prefix, f] : routes)
        ASSERT_TRUE(sync_->stage(pfx(prefix), &f));
    ASSERT_TRUE(sync_->commit());
    EXPECT_EQ(answer("10.244.1.1")->l2_ip, ip("10.168.0.3"));
    EXPECT_EQ(answer("10.244.2.1")->l2_ip, gateway) << "off-subnet IPIP: ARP for the gateway, not the node";
    EXPECT_EQ(answer("10.244.2.1")->node_ip, ip("10.169.0.7"));
    EXPECT_EQ(answer("10.244.2.1")->l2_nexthop(), gateway);
    EXPECT_EQ(answer("10.244.3.1")->l2_ip, gateway);
    EXPECT_EQ(answer("10.244.4.1")->l2_ip, ip("10.168.0.4"));
    EXPECT_EQ(answer("10.244.5.1")->l2_ip, 0u) << "delivered locally: no L2 next hop";
    for (const char* addr : {"10.244.1.1", "10.244.2.1", "10.244.3.1", "10.244.4.1", "10.244.5.1"})
        EXPECT_FALSE(answer(addr)->connected()) << addr;

    // The gateway's MAC resolves both tunnels' records at once, not the nodes'.
    const MacAddr gw_mac{2, 0, 0, 0, 0, 1};
    ASSERT_TRUE(neighbours_.set(Neighbour{gateway, gw_mac, Source::kArp}));
    ASSERT_TRUE(sync_->neighbour_changed(gateway));
    for (const char* addr : {"10.244.2.1", "10.244.3.1"}) {
        ASSERT_TRUE(answer(addr)->mac_resolved()) << addr;
        EXPECT_EQ(answer(addr)->mac, gw_mac) << addr;
        EXPECT_EQ(answer(addr)->l2_ip, gateway) << "the rewrite keeps l2_ip";
    }
    EXPECT_FALSE(answer("10.244.1.1")->mac_resolved());
}

TEST_F(TableSyncTest, TheConnectedRouteNeverHoldsAMac) {
    const Forwarding connected = connected_forwarding();
    ASSERT_TRUE(sync_->stage(pfx("10.168.0.0/24"), &connected));
    ASSERT_TRUE(sync_->commit());
    // Even a neighbour "at" 0.0.0.0 (no source states one; a bug might) does not give it one.
    ASSERT_TRUE(neighbours_.set(Neighbour{0, MacAddr{2, 0, 0, 0, 0, 9}, Source::kCli}));
    ASSERT_TRUE(sync_->neighbour_changed(0));
    const auto nh = answer("10.168.0.77");
    ASSERT_TRUE(nh);
    EXPECT_EQ(nh->mode, lpm::ForwardMode::kHostGw);
    EXPECT_TRUE(nh->connected());
    EXPECT_FALSE(nh->mac_resolved());
    EXPECT_EQ(nh->node_ip, 0u);
    EXPECT_EQ(nh->l2_ip, 0u) << "the dataplane ARPs for each packet's destination";
    EXPECT_EQ(nh->mac, (std::array<std::uint8_t, 6>{}));
}

// CLI > static > arp (the dataplane's) > kernel, and the records follow.
TEST_F(TableSyncTest, ArpRanksBelowStaticAboveKernel) {
    set("10.244.1.0/24", "10.168.0.3");
    ASSERT_TRUE(sync_->commit());
    const Ipv4Addr node = ip("10.168.0.3");
    const MacAddr kernel{2, 0, 0, 0, 0, 0xa}, arp{2, 0, 0, 0, 0, 0xb}, fixed{2, 0, 0, 0, 0, 0xc}, cli{2, 0, 0, 0, 0, 0xd};
    const auto mac_now = [&] {
        return answer("10.244.1.1")->mac_resolved() ? std::optional(answer("10.244.1.1")->mac) : std::nullopt;
    };
    const auto apply = [&](std::vector<Ipv4Addr> changed) {
        for (Ipv4Addr a : changed)
            ASSERT_TRUE(sync_->neighbour_changed(a));
    };
    const std::vector<Neighbour> kernel_view{{node, kernel, Source::kKernel}};
    apply(neighbours_.replace_source(Source::kKernel, kernel_view));
    EXPECT_EQ(mac_now(), kernel);
    const std::vector<Neighbour> arp_view{{node, arp, Source::kArp}};
    apply(neighbours_.replace_source(Source::kArp, arp_view));
    EXPECT_EQ(mac_now(), arp) << "arp beats kernel";
    EXPECT_EQ(neighbours_.list().at(0).source, Source::kArp);
    const std::vector<Neighbour> static_view{{node, fixed, Source::kStatic}};
    apply(neighbours_.replace_source(Source::kStatic, static_view));
    EXPECT_EQ(mac_now(), fixed) << "static beats arp";
    EXPECT_TRUE(neighbours_.replace_source(Source::kArp, {}).empty()) << "a losing source's change changes nothing";
    apply(neighbours_.replace_source(Source::kArp, arp_view));
    ASSERT_TRUE(neighbours_.set({node, cli, Source::kCli}));
    apply({node});
    EXPECT_EQ(mac_now(), cli) << "cli beats everything";
    ASSERT_TRUE(neighbours_.erase(node, Source::kCli));
    apply(neighbours_.replace_source(Source::kStatic, {}));
    EXPECT_EQ(mac_now(), arp) << "back to arp once the sources above it let go";
    apply(neighbours_.replace_source(Source::kArp, {}));
    EXPECT_EQ(mac_now(), kernel);
}

TEST(Sources, ArpIsANeighbourSourceOnly) {
    EXPECT_EQ(parse_source("arp"), Source::kArp);
    EXPECT_FALSE(parse_route_source("arp"));
    EXPECT_FALSE(is_route_source(Source::kArp));
    for (const char* name : {"local", "cli", "static", "bgp", "etcd", "kernel", "connected", "gateway"}) {
        ASSERT_TRUE(parse_route_source(name)) << name;
        EXPECT_STREQ(source_name(*parse_route_source(name)), name);
    }
    EXPECT_EQ(route_source_names(), "local, cli, static, bgp, etcd, kernel, connected, gateway");
    const Preferences p = default_preferences();
    for (unsigned i = 0; i < kSourceCount; ++i) {
        if (static_cast<Source>(i) != Source::kGateway && is_route_source(static_cast<Source>(i))) {
            EXPECT_LT(p[i], p[static_cast<unsigned>(Source::kGateway)]) << source_name(static_cast<Source>(i));
        }
    }
    EXPECT_EQ(p[static_cast<unsigned>(Source::kConnected)], 0);
}

}  // namespace
}  // namespace podfwd::control
