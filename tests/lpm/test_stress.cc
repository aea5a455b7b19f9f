// Cross-process stress: one writer process churning routes and next-hop
// records at full speed, reader processes judging every answer (see churn.h
// for what makes an answer legal). Mid-run a reader is SIGKILLed while
// registered; the writer must detect it and keep reclaiming retired memory.
//
// PODFWD_STRESS_SECONDS sets the run length (default 10).
#include <gtest/gtest.h>

#include <iostream>
#include <string>
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

}  // namespace
}  // namespace podfwd::lpm::test
