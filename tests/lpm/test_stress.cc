// Cross-process stress: one writer process churning routes and next-hop
// records at full speed, reader processes judging every answer (see churn.h
// for what makes an answer legal). Mid-run a reader is SIGKILLed while
// registered; the writer must detect it and keep reclaiming retired memory.
//
// And in one process: batches that replace more specific routes by a
// covering one and back, in the dense window and in the trie, while reader
// threads check that no lookup ever falls through to a shorter route.
//
// PODFWD_STRESS_SECONDS sets the run length (default 10).
#include <gtest/gtest.h>

#include <atomic>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/lpm/churn.h"
#include "tests/lpm/test_util.h"

namespace podfwd::lpm::test {
namespace {

constexpr std::size_t kUniverse = 2000;
constexpr std::size_t kProbes = 8192;
constexpr unsigned kReaders = 3;   // plus one victim
constexpr std::size_t kMaxBatch = 500;   // changes per commit

using StressShared = ChurnShared<kReaders + 1>;   // the last reader is the victim

void run_stress(double seconds, bool reap_victim) {
    const std::uint64_t seed = test_seed();
    SegmentGuard guard;
    const Universe u = Universe::build(seed, kUniverse, kProbes);
    Shared<StressShared> sh;
    // Children stop by this time whatever happens to the test.
    const auto hard_deadline = Clock::now() + seconds_f(seconds) + 60s;

    ChildProcess writer =
        spawn_churn_writer(guard.name(), u, sh->writer, sh->stop_writer, hard_deadline, seed, kMaxBatch);
    ASSERT_TRUE(writer_ready(sh->writer));

    std::vector<ChildProcess> readers;
    for (unsigned i = 0; i <= kReaders; ++i)
        readers.push_back(ChildProcess::spawn([&, i] {
            return run_reader(guard.name(), u, sh->readers[i], sh->stop_readers, hard_deadline, seed + 100 + i);
        }));
    ChildProcess& victim = readers.back();
    ASSERT_TRUE(readers_registered(sh->readers));

    const auto start = Clock::now();
    const auto end = start + seconds_f(seconds);
    const bool healthy = writer_healthy_until(start + seconds_f(seconds / 2), sh->writer, writer);
    EXPECT_TRUE(healthy) << "writer failed before the kill: " << sh->writer.log.joined();

    // Kill a registered, online reader; it never goes offline again.
    const std::uint64_t pending_before_kill = sh->writer.pending_max.exchange(0);
    const std::uint64_t reclaimed_at_kill = sh->writer.reclaimed_total.load();
    victim.kill(SIGKILL);
    if (reap_victim) {
        EXPECT_TRUE(victim.wait_for(10s).has_value());
    }
    const auto kill_time = Clock::now();

    if (healthy) {
        expect_reaped_and_reclaiming(sh->writer, reclaimed_at_kill, kill_time,
                                     std::max<Clock::duration>(10s, end - Clock::now()));
        EXPECT_TRUE(poll_until([&] { return sh->writer.readers_online.load() <= kReaders; }, 10s))
            << "readers_online " << sh->writer.readers_online.load() << " with " << kReaders << " live readers";
    }
    sh->writer.pending_max.store(0);   // from here: steady state with the survivors
    const bool still_healthy = writer_healthy_until(std::max(end, Clock::now() + 1s), sh->writer, writer);
    EXPECT_TRUE(still_healthy) << "writer failed after the kill: " << sh->writer.log.joined();
    const std::uint64_t pending_after = sh->writer.pending_max.load();

    // Stop the writer first: its final self-check runs while readers still read.
    sh->stop_writer.store(1);
    const auto writer_status = writer.wait_for(30s);
    sh->stop_readers.store(1);
    std::vector<std::optional<int>> reader_status;
    for (auto& r : readers)
        reader_status.push_back(r.wait_for(30s));

    const WriterReport& wr = sh->writer;
    EXPECT_TRUE(exited_ok(writer_status)) << "writer: " << describe_status(writer_status);
    EXPECT_EQ(wr.failures.load(), 0u) << wr.log.joined();
    EXPECT_GT(wr.commits.load(), 100u) << "the writer hardly churned";
    std::uint64_t lookups = 0;
    for (unsigned i = 0; i <= kReaders; ++i) {
        const ReaderReport& r = sh->readers[i];
        const bool is_victim = i == kReaders;
        if (!is_victim) {
            EXPECT_TRUE(exited_ok(reader_status[i])) << "reader " << i << ": " << describe_status(reader_status[i]);
        }
        EXPECT_EQ(r.invalid.load(), 0u) << "reader " << i << (is_victim ? " (victim)" : "")
                                        << " saw invalid answers:" << r.log.joined();
        EXPECT_GT(r.lookups.load(), is_victim ? 0u : 10'000u) << "reader " << i << " hardly ran";
        lookups += r.lookups.load();
    }
    // Bounded: after the reap in the range it had with all readers alive (wide
    // slack for scheduling noise on a busy machine; a writer that stopped
    // reclaiming would also have run its pools dry and failed above).
    EXPECT_LE(pending_after, 4 * pending_before_kill + 65536)
        << "retired_pending peaked at " << pending_after << " after the reap, " << pending_before_kill << " before";

    std::cout << "[   INFO   ] " << wr.commits.load() << " commits, " << wr.route_ops.load() << " route ops, "
              << wr.nh_updates.load() << " next-hop updates, " << lookups << " judged lookups; reclaimed "
              << wr.reclaimed_total.load() << ", retired_pending peak " << pending_before_kill << " before / "
              << pending_after << " after the kill, dead readers reaped " << wr.dead_readers_reaped.load()
              << std::endl;
}

TEST(Stress, ChurnWithReadersAndAKilledReader) { run_stress(stress_seconds(), /*reap_victim=*/true); }

// The killed reader stays a zombie (its parent has not waited for it): its pid
// still exists, yet it will never pass a quiescent state again.
TEST(Stress, KilledReaderLeftAsZombieIsReaped) {
    run_stress(std::max(4.0, stress_seconds() / 2), /*reap_victim=*/false);
}

// Hosts in 16 /24s of a /16 `area`, under `area`'s /8 and a default route.
// The writer replaces hosts by a covering prefix in one batch (adds the
// cover, deletes the hosts it covers), then back (adds the hosts, deletes the
// cover). Every host always has a route, its /32 or the cover, each written
// in one store per /24 (window) or /18 (trie): a reader must see one of the
// two, never the /8 or the default below them. Host k sits at its /24's
// offset 5 + 7k, so a group retired too early and reused for another host's
// /24 answers the /8 here: the grace periods cover window references too.
struct FallThroughCase {
    const char* name;
    Ipv4Addr area;   // a /16
    Capacity capacity;
};

void run_never_falls_through(const FallThroughCase& c, double seconds) {
    SCOPED_TRACE(c.name);
    SegmentGuard guard;
    auto w = TableWriter::open(guard.name(), TableWriter::Options{.capacity = c.capacity});
    ASSERT_TRUE(IsOk(w));
    TableWriter& writer = *w;
    NextHopId ids[4] = {};   // default, /8, hosts, cover
    for (std::uint32_t k = 0; k < 4; ++k) {
        NextHop nh;
        nh.node_ip = 0x0aa80001u + k;
        auto id = writer.nexthop_add(nh);
        ASSERT_TRUE(IsOk(id));
        ids[k] = *id;
    }
    const NextHopId host_nh = ids[2], cover_nh = ids[3];
    std::vector<Prefix4> hosts;
    for (std::uint32_t k = 0; k < 16; ++k)
        hosts.push_back(Prefix4{c.area | (k * 17) << 8 | (5 + 7 * k), 32});
    ASSERT_TRUE(IsOk(writer.route_add(Prefix4{0, 0}, ids[0])));
    ASSERT_TRUE(IsOk(writer.route_add(Prefix4{c.area & prefix_mask(8), 8}, ids[1])));
    for (const Prefix4& h : hosts)
        ASSERT_TRUE(IsOk(writer.route_add(h, host_nh)));
    ASSERT_TRUE(IsOk(writer.commit()));

    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> lookups{0}, bad{0};
    std::mutex log_mutex;
    std::string log;
    auto reader = [&] {
        auto view = TableView::open(guard.name());
        if (!view) {
            bad.fetch_add(1);
            return;
        }
        auto slot = view->register_reader();
        if (!slot) {
            bad.fetch_add(1);
            return;
        }
        std::vector<Ipv4Addr> addrs;
        for (const Prefix4& h : hosts)
            addrs.push_back(h.addr);
        std::vector<NextHopId> out(addrs.size());
        while (!stop.load(std::memory_order_relaxed)) {
            view->lookup_bulk(addrs.data(), out.data(), addrs.size());
            for (std::size_t k = 0; k < addrs.size(); ++k) {
                for (const NextHopId answer : {out[k], view->lookup(addrs[k])}) {
                    if (answer == host_nh || answer == cover_nh)
                        continue;
                    if (bad.fetch_add(1) < 5) {
                        std::lock_guard lock(log_mutex);
                        log += "\n  " + format_ipv4(addrs[k]) + " answered " + std::to_string(answer);
                    }
                }
            }
            lookups.fetch_add(2 * addrs.size(), std::memory_order_relaxed);
            slot->quiescent();
        }
    };
    std::thread readers[] = {std::thread(reader), std::thread(reader)};

    // Covers from a /24 (one host, group to leaf) to the /16 (a fallback
    // change), across a directory slot's /18 and inside one.
    const unsigned cover_lengths[] = {24, 23, 20, 19, 18, 17, 16};
    std::uint64_t commits = 0;
    const auto deadline = Clock::now() + seconds_f(seconds);
    // Every failure stops the loop: the readers must be stopped and joined.
    std::string failure;
    const auto step = [&failure](const Status& s, const std::string& what) {
        if (!s && failure.empty())
            failure = what + ": " + s.error().message;
        return failure.empty();
    };
    for (std::size_t round = 0; Clock::now() < deadline && failure.empty(); ++round) {
        const Prefix4& anchor = hosts[round % hosts.size()];
        const unsigned len = cover_lengths[round / hosts.size() % std::size(cover_lengths)];
        const Prefix4 cover{anchor.addr & prefix_mask(len), static_cast<std::uint8_t>(len)};
        step(writer.route_add(cover, cover_nh), "add " + cover.str());
        for (const Prefix4& h : hosts) {
            if (cover.contains(h.addr))
                step(writer.route_del(h), "del " + h.str());
        }
        step(writer.commit(), "commit");
        for (const Prefix4& h : hosts) {
            if (cover.contains(h.addr))
                step(writer.route_add(h, host_nh), "add " + h.str());
        }
        step(writer.route_del(cover), "del " + cover.str());
        step(writer.commit(), "commit");
        commits += 2;
    }
    stop = true;
    for (auto& t : readers)
        t.join();
    EXPECT_EQ(failure, "");
    EXPECT_EQ(bad.load(), 0u) << "lookups fell through to a shorter route:" << log;
    EXPECT_GT(commits, 100u);
    EXPECT_GT(lookups.load(), 10'000u);
    std::cout << "[   INFO   ] " << c.name << ": " << commits << " commits, " << lookups.load() << " judged lookups"
              << std::endl;
}

TEST(Stress, ReplacingMoreSpecificsNeverFallsThrough) {
    // Small pools: retired groups come back into use within a few commits.
    constexpr Capacity kSmall{.max_routes = 256, .max_nexthops = 16, .reader_slots = 4, .max_groups = 64};
    Capacity no_window = kSmall;
    no_window.dense_window_addr = 0;
    no_window.dense_window_len = kNoDenseWindow;
    Capacity window_16 = kSmall;
    window_16.dense_window_addr = 0x0a010000u;
    window_16.dense_window_len = 16;
    const FallThroughCase cases[] = {
        {"in the 10.0.0.0/8 window", 0x0a010000u, kSmall},
        {"in a window equal to the /16", 0x0a010000u, window_16},
        {"without a window", 0x0a010000u, no_window},
        {"outside the window (trie)", 0x4f010000u, kSmall},
    };
    for (const FallThroughCase& c : cases)
        run_never_falls_through(c, std::max(1.0, stress_seconds() / 4));
}

}  // namespace
}  // namespace podfwd::lpm::test
