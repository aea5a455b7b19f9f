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

TEST_F(TableSyncTest, ABestTheTableCannotTakeIsWithdrawnThenRetried) {
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
    EXPECT_FALSE(answer("10.244.1.1")) << "withdrawn, not left on a route no source states";

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

}  // namespace
}  // namespace podfwd::control
