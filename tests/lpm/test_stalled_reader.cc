// A reader that is online but never passes a quiescent state (a SIGSTOPped
// lcore) pins everything retired after its last one. The writer waits for
// it once (reclaim_timeout), then no more until it moves; route changes go
// on in the pools' reserve; when that is gone they fail with kCapacity
// naming the reader, and a failed change leaves the previous route in
// place. Once the reader passes a quiescent state, all of it comes back.
// Waits are counted (TableStats::reclaim_waits), not timed.
#include <gtest/gtest.h>

#include "tests/lpm/test_util.h"

namespace podfwd::lpm::test {
namespace {

// 2 * 32 + 1 groups: a tenth of them is the reserve. Each commit of a
// changed /32 copies its group, retiring the old one.
const TableWriter::Options kStallOptions{
    .capacity = Capacity{.max_routes = 256, .max_nexthops = 16, .reader_slots = 4, .max_groups = 32},
    .reclaim_timeout = 200ms};

TEST(StalledReader, WaitsOnceThenUsesTheReserveThenFailsNamingTheReaderAndKeepsTheRoute) {
    SegmentGuard guard;
    auto w = TableWriter::open(guard.name(), kStallOptions);
    ASSERT_TRUE(IsOk(w));
    auto a = w->nexthop_add(numbered_nexthop(1, ForwardMode::kIpip));
    auto b = w->nexthop_add(numbered_nexthop(2, ForwardMode::kIpip));
    ASSERT_TRUE(IsOk(a));
    ASSERT_TRUE(IsOk(b));
    const Prefix4 flapping{0x0a010001u, 32};
    const Prefix4 other{0x0a020001u, 32};
    ASSERT_TRUE(IsOk(w->route_add(flapping, *a)));
    ASSERT_TRUE(IsOk(w->route_add(other, *a)));
    ASSERT_TRUE(IsOk(w->commit()));

    auto view = TableView::open(guard.name());
    ASSERT_TRUE(IsOk(view));
    auto slot = view->register_reader();   // online; stalled from here on
    ASSERT_TRUE(IsOk(slot));

    NaiveLpm<NextHopId> oracle;   // what was committed
    oracle.set(flapping, *a);
    oracle.set(other, *a);
    std::optional<Error> failure;
    unsigned changes = 0;
    for (unsigned i = 0; i < 500 && !failure; ++i) {
        const NextHopId next = oracle.get(flapping) && *oracle.get(flapping) == *a ? *b : *a;
        Status s = w->route_add(flapping, next);
        if (s)
            s = w->commit();
        if (!s) {
            failure = s.error();
            break;
        }
        oracle.set(flapping, next);
        ++changes;
    }
    ASSERT_TRUE(failure.has_value()) << "the pools never ran dry";
    EXPECT_EQ(failure->code, Errc::kCapacity) << failure->message;
    const std::string pid = std::to_string(::getpid());
    EXPECT_NE(failure->message.find("reader pid " + pid + " (slot " + std::to_string(slot->index()) + ")"),
              std::string::npos)
        << failure->message;

    TableStats stats = w->stats();
    EXPECT_EQ(stats.reclaim_timeouts, 1u) << "every operation waited for the stalled reader";
    EXPECT_EQ(stats.reclaim_waits, 1u);
    EXPECT_EQ(stats.stalled_reader_pid, static_cast<std::uint32_t>(::getpid()));
    EXPECT_EQ(stats.stalled_reader_slot, slot->index());
    EXPECT_GT(stats.reserve_elements, 0u);
    EXPECT_GE(stats.reserve_used, 5u) << "the reserve (6 groups, the last never reachable: group 0 is reserved) was not used";
    EXPECT_GT(stats.retired_pending, 0u);
    EXPECT_GT(changes, 50u) << "route changes stopped long before the pools were full";

    // More failures, none waiting; a delete and a replace that fail keep the route.
    for (int i = 0; i < 5; ++i) {
        EXPECT_TRUE(HasErrc(w->route_add(other, *b), Errc::kCapacity));
        EXPECT_TRUE(HasErrc(w->route_del(flapping), Errc::kCapacity));
    }
    (void)w->commit();
    EXPECT_EQ(w->stats().reclaim_waits, 1u);
    for (const Prefix4& p : {flapping, other}) {
        EXPECT_EQ(w->route_get(p), *oracle.get(p)) << p.str();
        EXPECT_EQ(w->lookup(p.addr), *oracle.get(p)) << p.str();
        EXPECT_EQ(view->lookup(p.addr), *oracle.get(p)) << p.str();
    }

    // The reader moves on: the stall is forgotten, memory comes back.
    slot->quiescent();
    ASSERT_TRUE(IsOk(w->route_add(other, *b)));
    ASSERT_TRUE(IsOk(w->commit()));
    stats = w->stats();
    EXPECT_EQ(stats.stalled_reader_pid, 0u);
    EXPECT_EQ(stats.reserve_used, 0u);
    EXPECT_EQ(view->lookup(other.addr), *b);
    slot->quiescent();
    ASSERT_TRUE(IsOk(w->route_del(flapping)));
    ASSERT_TRUE(IsOk(w->commit()));
    EXPECT_EQ(view->lookup(flapping.addr), kNoRoute);
    EXPECT_EQ(w->stats().reclaim_timeouts, 1u);
}

}  // namespace
}  // namespace podfwd::lpm::test
