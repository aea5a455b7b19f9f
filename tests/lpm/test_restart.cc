// Writer restarts: a writer process churns routes while reader processes
// judge every answer (churn.h); the test SIGKILLs the writer at random
// moments and starts a new one each time, which must recover the segment,
// find its next hops again (nexthop_ensure) and reconcile() to a desired set.
// After the last writer's reconcile the table must equal its desired set
// exactly, for a fresh reader and for routes().
#include <gtest/gtest.h>

#include <array>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include "tests/lpm/churn.h"
#include "tests/lpm/test_util.h"

namespace podfwd::lpm::test {
namespace {

constexpr std::size_t kUniverse = 2000;
constexpr std::size_t kProbes = 8192;
constexpr unsigned kReaders = 3;
constexpr unsigned kKills = 3;

TableWriter::Options restart_options() {
    TableWriter::Options o;
    // Every writer ensures up to 6000 base records; those of killed writers
    // that were updated stay behind (next hops are never deleted: see churn.h).
    o.capacity = Capacity{.max_routes = 4096, .max_nexthops = 1u << 16, .reader_slots = 16};
    return o;
}

struct RestartShared {
    std::array<WriterReport, kKills + 1> writers;
    std::array<ReaderReport, kReaders> readers;
    std::atomic<std::uint32_t> stop_readers{0};
};

// What a killed writer left must be coherent: whole records, routes of the
// universe pointing at their own prefix's next hops, the permanent /8s, and
// the writer's recovered index agreeing with its recovered route list.
void check_recovered(const TableWriter& w, const Universe& u, WriterReport& rep) {
    for (const auto& [id, rec] : w.nexthops())
        if (!decode_record(rec, u.size()))
            rep.fail("recovered next hop " + std::to_string(id) + " has a torn or foreign record " + describe(rec));
    NaiveLpm<NextHopId> ref;
    std::vector<std::uint8_t> present(u.size());
    for (const Route& r : w.routes()) {
        const auto idx = u.find(r.prefix);
        const auto rec = w.nexthop(r.nexthop);
        const auto owner = rec ? decode_record(*rec, u.size()) : std::nullopt;
        if (!idx || !owner || owner->prefix_index != *idx)
            rep.fail("recovered route " + r.prefix.str() + " -> " + std::to_string(r.nexthop) +
                     (rec ? " " + describe(*rec) : std::string(" (no record)")));
        if (idx)
            present[*idx] = 1;
        ref.set(r.prefix, r.nexthop);
    }
    for (std::size_t i = 0; i < u.size(); ++i)
        if (u.permanent[i] && !present[i])
            rep.fail("permanent route " + u.prefixes[i].str() + " lost in recovery");
    std::size_t bad = 0;
    for (Ipv4Addr a : u.probes) {
        const auto m = ref.lookup(a);
        const NextHopId want = m ? m->second : kNoRoute, got = w.lookup(a);
        if (got != want && ++bad <= 3)
            rep.fail("recovered writer.lookup(" + format_ipv4(a) + ") = " + std::to_string(got) +
                     ", its routes() say " + std::to_string(want));
    }
}

// The desired set must also be what readers see once reconcile() returned.
void check_through_reader(const std::string& name, const Churner& churner, WriterReport& rep) {
    auto view = TableView::open(name);
    if (!view) {
        rep.fail("TableView::open: " + describe(view.error()));
        return;
    }
    auto slot = view->register_reader();
    if (!slot) {
        rep.fail("register_reader: " + describe(slot.error()));
        return;
    }
    churner.check_view(*view, rep);
}   // the slot is released here, before the writer churns again

int restart_writer(const std::string& name, const Universe& u, WriterReport& rep, unsigned generation,
                   const Assignment& desired, bool final, Clock::time_point deadline, std::uint64_t seed) {
    auto w = TableWriter::open(name, restart_options());
    if (!w) {
        rep.fail("TableWriter::open: " + describe(w.error()));
        return kChildFailed;
    }
    rep.recovered.store(w->recovered());
    rep.opened.store(1);
    if (w->recovered() != (generation > 0))
        rep.fail("recovered() = " + std::to_string(w->recovered()) + " for writer " + std::to_string(generation));
    if (generation > 0)
        check_recovered(*w, u, rep);

    Churner churner(*w, u, seed);
    std::size_t ignored = 0;
    if (auto s = churner.ensure_nexthops(ignored); !s) {
        rep.fail(describe(s.error()));
        return kChildFailed;
    }
    if (ignored != 0)
        rep.fail("nexthop_ensure made " + std::to_string(ignored) + " new ids for records that already existed");
    if (auto s = churner.reconcile(desired); !s) {
        rep.fail(describe(s.error()));
        return kChildFailed;
    }
    churner.check_writer(rep);
    check_through_reader(name, churner, rep);
    rep.publish(w->stats());
    rep.ready.store(1);
    if (final) {
        rep.finished.store(1);
        return rep.failures.load() == 0 ? kChildOk : kChildFailed;
    }
    Rng rng(seed + 1);
    while (Clock::now() < deadline) {   // until killed
        if (auto s = churner.churn_batch(rng.log_uniform(1, 500), rep); !s) {
            rep.fail(describe(s.error()));
            return kChildFailed;
        }
    }
    return kChildOk;
}

// The final table, read by a fresh reader, against a naive LPM of `desired`.
void expect_table_equals(const std::string& name, const Universe& u, const Assignment& desired, Rng& rng) {
    NaiveLpm<std::pair<std::uint32_t, unsigned>> ref;   // prefix -> (prefix index, slot)
    for (std::uint32_t i = 0; i < u.size(); ++i)
        if (desired[i] >= 0)
            ref.set(u.prefixes[i], {i, static_cast<unsigned>(desired[i])});

    auto view = TableView::open(name);
    ASSERT_TRUE(IsOk(view));
    auto slot = view->register_reader();
    ASSERT_TRUE(IsOk(slot));
    std::vector<Ipv4Addr> addrs = u.probes;
    for (int i = 0; i < 300'000; ++i)
        addrs.push_back(i % 4 == 0 ? rng.u32() : random_inside(rng, rng.pick(u.prefixes)));
    std::size_t bad = 0;
    for (Ipv4Addr a : addrs) {
        const auto m = ref.lookup(a);
        const NextHopId nh = view->lookup(a);
        const NextHop* rec = view->nexthop(nh);
        const auto owner = rec ? decode_record(*rec, u.size()) : std::nullopt;
        const bool good = m ? owner && owner->prefix_index == m->second.first && owner->slot == m->second.second &&
                                  owner->version == 0
                            : nh == kNoRoute;
        if (!good && ++bad <= 5)
            ADD_FAILURE() << "final table, " << format_ipv4(a) << ": expected "
                          << (m ? m->first.str() + " slot " + std::to_string(m->second.second) : "no route")
                          << ", got next hop " << nh << (rec ? " " + describe(*rec) : "");
    }
    EXPECT_EQ(bad, 0u) << "of " << addrs.size() << " lookups";

    std::size_t want_routes = 0;
    for (auto s : desired)
        want_routes += s >= 0;
    EXPECT_EQ(view->stats().routes, want_routes);
}

// routes() of the table, through one more recovering writer.
void expect_routes_equal(const std::string& name, const Universe& u, const Assignment& desired) {
    auto w = TableWriter::open(name, restart_options());
    ASSERT_TRUE(IsOk(w));
    EXPECT_TRUE(w->recovered());
    Assignment got(u.size(), -1);
    std::size_t bad = 0;
    for (const Route& r : w->routes()) {
        const auto idx = u.find(r.prefix);
        const auto rec = w->nexthop(r.nexthop);
        const auto owner = rec ? decode_record(*rec, u.size()) : std::nullopt;
        if (!idx || !owner || owner->prefix_index != *idx || owner->version != 0) {
            if (++bad <= 5)
                ADD_FAILURE() << "routes() has " << r.prefix.str() << " -> " << r.nexthop;
            continue;
        }
        got[*idx] = static_cast<std::int8_t>(owner->slot);
    }
    for (std::size_t i = 0; i < u.size(); ++i)
        if (got[i] != desired[i] && ++bad <= 10)
            ADD_FAILURE() << "routes(): " << u.prefixes[i].str() << " slot " << int{got[i]} << ", desired "
                          << int{desired[i]} << " (-1: absent)";
    EXPECT_EQ(bad, 0u);
}

// Deterministic, in-process: a writer reopened after a clean close keeps
// what it recovered when it changes the table. Every address of the area is
// compared with the LPM of routes().
std::size_t lookup_mismatches(const TableWriter& w, const TableView& v, Ipv4Addr first, std::uint32_t count) {
    NaiveLpm<NextHopId> ref;
    for (const Route& r : w.routes())
        ref.set(r.prefix, r.nexthop);
    std::size_t bad = 0;
    for (Ipv4Addr a = first; a != first + count; ++a) {
        const auto m = ref.lookup(a);
        const NextHopId want = m ? m->second : kNoRoute;
        if ((w.lookup(a) != want || v.lookup(a) != want) && ++bad <= 5)
            ADD_FAILURE() << format_ipv4(a) << ": writer " << w.lookup(a) << ", reader " << v.lookup(a)
                          << ", routes() say " << want;
    }
    return bad;
}

TEST(Reopen, NewGroupAfterReopenKeepsTheRecoveredOnes) {
    SegmentGuard guard;
    NextHopId a = 0;
    {
        auto w = TableWriter::open(guard.name());
        ASSERT_TRUE(IsOk(w));
        auto id = w->nexthop_add(churn_record(0, 0, 0));
        ASSERT_TRUE(IsOk(id));
        a = *id;
        ASSERT_TRUE(IsOk(w->route_add(*Prefix4::parse("10.0.1.15/32"), a)));
        ASSERT_TRUE(IsOk(w->commit()));
    }
    auto w = TableWriter::open(guard.name());
    ASSERT_TRUE(IsOk(w));
    EXPECT_TRUE(w->recovered());
    auto v = TableView::open(guard.name());
    ASSERT_TRUE(IsOk(v));
    ASSERT_TRUE(IsOk(w->route_add(*Prefix4::parse("10.0.3.128/25"), a)));
    ASSERT_TRUE(IsOk(w->commit()));
    EXPECT_EQ(w->lookup(0x0a00010fu), a) << "10.0.1.15 lost its /32";
    EXPECT_EQ(lookup_mismatches(*w, *v, 0x0a000000u, 1024), 0u);
}

TEST(Reopen, RandomChangesAfterReopen) {
    const std::uint64_t seed = test_seed();
    Rng rng(seed);
    SegmentGuard guard;
    constexpr std::uint32_t kArea = 1 << 14;   // 64 /24s under 10.0.0.0/18
    std::vector<NextHopId> ids;
    auto random_prefix = [&] {
        // Mostly /25../32: they live in tbl8 groups, which recovery must keep.
        const auto len = static_cast<unsigned>(rng.chance(0.6) ? rng.between(25, 32) : rng.between(16, 24));
        return Prefix4{(0x0a000000u | static_cast<Ipv4Addr>(rng.below(kArea))) & prefix_mask(len),
                       static_cast<std::uint8_t>(len)};
    };
    {
        auto w = TableWriter::open(guard.name());
        ASSERT_TRUE(IsOk(w));
        for (std::uint32_t i = 0; i < 8; ++i) {
            auto id = w->nexthop_add(churn_record(i, 0, 0));
            ASSERT_TRUE(IsOk(id));
            ids.push_back(*id);
        }
        for (int i = 0; i < 200; ++i)
            ASSERT_TRUE(IsOk(w->route_add(random_prefix(), rng.pick(ids))));
        ASSERT_TRUE(IsOk(w->commit()));
    }
    auto w = TableWriter::open(guard.name());
    ASSERT_TRUE(IsOk(w));
    auto v = TableView::open(guard.name());
    ASSERT_TRUE(IsOk(v));
    ASSERT_EQ(lookup_mismatches(*w, *v, 0x0a000000u, kArea), 0u) << "right after reopening";
    for (int round = 0; round < 40 && !HasFailure(); ++round) {
        for (int i = 0; i < 10; ++i) {
            const Prefix4 p = random_prefix();
            if (w->route_get(p) && rng.chance(0.5))
                ASSERT_TRUE(IsOk(w->route_del(p)));
            else
                ASSERT_TRUE(IsOk(w->route_add(p, rng.pick(ids))));
        }
        ASSERT_TRUE(IsOk(w->commit()));
        EXPECT_EQ(lookup_mismatches(*w, *v, 0x0a000000u, kArea), 0u) << "round " << round;
    }
}

TEST(Restart, KilledWritersRecoverAndReconcile) {
    const std::uint64_t seed = test_seed();
    SegmentGuard guard;
    const Universe u = Universe::build(seed, kUniverse, kProbes);
    Shared<RestartShared> sh;
    // ~60% of the stress duration is spent between kills (6 s by default).
    const double window = std::max(0.5, stress_seconds() * 0.6 / kKills);
    const auto hard_deadline = Clock::now() + seconds_f(window * (kKills + 1)) + 90s;
    const Assignment final_desired = random_assignment(u, seed ^ 0xf1a1);
    Rng rng(seed ^ 0x7);

    std::vector<ChildProcess> readers;
    ChildProcess writer;
    for (unsigned g = 0; g <= kKills; ++g) {
        SCOPED_TRACE("writer " + std::to_string(g));
        const bool final = g == kKills;
        const Assignment desired = final ? final_desired : random_assignment(u, seed + g);
        WriterReport& rep = sh->writers[g];
        writer = ChildProcess::spawn([&] {
            return restart_writer(guard.name(), u, rep, g, desired, final, hard_deadline, seed + 1000 * (g + 1));
        });
        ASSERT_TRUE(poll_until([&] { return rep.opened.load() || rep.failures.load() || writer.wait_for(0s); }, 60s))
            << "writer " << g << " did not open the segment";
        ASSERT_EQ(rep.opened.load(), 1u) << rep.log.joined();
        if (g == 0) {
            ASSERT_TRUE(poll_until([&] { return rep.ready.load() || rep.failures.load(); }, 60s));
            ASSERT_EQ(rep.failures.load(), 0u) << rep.log.joined();
            for (unsigned i = 0; i < kReaders; ++i)
                readers.push_back(ChildProcess::spawn([&, i] {
                    return run_reader(guard.name(), u, sh->readers[i], sh->stop_readers, hard_deadline, seed + 7 + i);
                }));
            ASSERT_TRUE(poll_until([&] {
                for (auto& r : sh->readers)
                    if (!r.ready.load())
                        return false;
                return true;
            }, 30s)) << "readers did not register";
        }
        if (final)
            break;
        // A random moment: while ensuring, reconciling or (mostly) churning.
        const auto delay = seconds_f(0.05 + (window - 0.05) * static_cast<double>(rng.below(1000)) / 1000.0);
        poll_until([&] { return rep.failures.load() != 0; }, delay, 5ms);
        ASSERT_FALSE(writer.wait_for(0s)) << "writer " << g << " exited before the kill: " << rep.log.joined();
        const int status = writer.kill_and_reap();
        ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << describe_status(status);
        std::cout << "[   INFO   ] writer " << g << " killed after " << rep.commits.load() << " commits"
                  << (rep.ready.load() ? "" : " (before its reconcile finished)") << std::endl;
    }
    const auto final_status = writer.wait_for(60s);
    EXPECT_TRUE(exited_ok(final_status)) << "final writer: " << describe_status(final_status);

    // Readers go on judging the final table a little before they stop.
    std::array<std::uint64_t, kReaders> before{};
    for (unsigned i = 0; i < kReaders; ++i)
        before[i] = sh->readers[i].iterations.load();
    EXPECT_TRUE(poll_until([&] {
        for (unsigned i = 0; i < kReaders; ++i)
            if (sh->readers[i].iterations.load() < before[i] + 1000)
                return false;
        return true;
    }, 20s));
    sh->stop_readers.store(1);
    for (unsigned i = 0; i < kReaders; ++i) {
        const auto st = readers[i].wait_for(30s);
        const ReaderReport& r = sh->readers[i];
        EXPECT_TRUE(exited_ok(st)) << "reader " << i << ": " << describe_status(st);
        EXPECT_EQ(r.invalid.load(), 0u) << "reader " << i << " saw invalid answers:" << r.log.joined();
        EXPECT_GT(r.lookups.load(), 10'000u) << "reader " << i << " hardly ran";
    }
    for (unsigned g = 0; g <= kKills; ++g) {
        const WriterReport& rep = sh->writers[g];
        EXPECT_EQ(rep.failures.load(), 0u) << "writer " << g << ":" << rep.log.joined();
        EXPECT_EQ(rep.recovered.load(), g > 0 ? 1u : 0u) << "writer " << g << " recovered()";
    }
    EXPECT_EQ(sh->writers[kKills].finished.load(), 1u);

    ASSERT_NO_FATAL_FAILURE(expect_table_equals(guard.name(), u, final_desired, rng));
    ASSERT_NO_FATAL_FAILURE(expect_routes_equal(guard.name(), u, final_desired));
}

}  // namespace
}  // namespace podfwd::lpm::test
