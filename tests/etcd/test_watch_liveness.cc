// WatchLiveness: when a silent watch is probed, and when it is declared
// stalled (a healthy one never is).
#include "control/etcd/watch_liveness.h"

#include <gtest/gtest.h>

namespace podfwd::control::etcd {
namespace {

using namespace std::chrono_literals;
using Verdict = WatchLiveness::Verdict;
const WatchLiveness::Clock::time_point t0{};

TEST(WatchLiveness, ProbesOnlyAfterAnIntervalOfSilence) {
    WatchLiveness w(30s);
    w.reset(t0);
    EXPECT_FALSE(w.due(t0 + 29s));
    w.on_message(t0 + 20s);   // a busy watch pushes the check back
    EXPECT_FALSE(w.due(t0 + 30s));
    EXPECT_EQ(w.next_check(), t0 + 50s);
    EXPECT_TRUE(w.due(t0 + 50s));
}

TEST(WatchLiveness, StalledOnlyWhenSilentAndBehindTwice) {
    WatchLiveness w(30s);
    w.reset(t0);
    const auto m = w.messages();
    EXPECT_EQ(w.on_probe(m, 120, 100, t0 + 30s), Verdict::kLookAgain);
    EXPECT_EQ(w.next_check(), t0 + 31s);   // confirmed a second later
    EXPECT_EQ(w.on_probe(m, 120, 100, t0 + 31s), Verdict::kStalled);
}

TEST(WatchLiveness, AnEventInFlightClearsTheSuspicion) {
    WatchLiveness w(30s);
    w.reset(t0);
    EXPECT_EQ(w.on_probe(w.messages(), 120, 100, t0 + 30s), Verdict::kLookAgain);
    w.on_message(t0 + 30s + 5ms);   // the put the probe saw, arriving
    const auto m = w.messages();
    EXPECT_EQ(w.on_probe(m, 120, 120, t0 + 31s), Verdict::kAlive);
    EXPECT_EQ(w.on_probe(m, 130, 120, t0 + 61s), Verdict::kLookAgain);   // a fresh suspicion starts over
}

TEST(WatchLiveness, AMessageDuringTheProbeIsActivity) {
    WatchLiveness w(30s);
    w.reset(t0);
    const auto m = w.messages();
    w.on_message(t0 + 30s);
    EXPECT_EQ(w.on_probe(m, 120, 100, t0 + 30s), Verdict::kAlive);
}

TEST(WatchLiveness, QuietRangeUpToDateIsAlive) {
    WatchLiveness w(30s);
    w.reset(t0);
    EXPECT_EQ(w.on_probe(w.messages(), 100, 100, t0 + 30s), Verdict::kAlive);
    EXPECT_EQ(w.next_check(), t0 + 60s);   // a whole interval again, not at once
    EXPECT_EQ(w.on_probe(w.messages(), std::nullopt, 100, t0 + 60s), Verdict::kAlive);   // empty range or failed probe
}

TEST(WatchLiveness, ResetForgetsASuspicion) {
    WatchLiveness w(30s);
    w.reset(t0);
    EXPECT_EQ(w.on_probe(w.messages(), 120, 100, t0 + 30s), Verdict::kLookAgain);
    w.reset(t0 + 30s + 500ms);   // a new watch
    EXPECT_EQ(w.on_probe(w.messages(), 120, 100, t0 + 61s), Verdict::kLookAgain);
}

}  // namespace
}  // namespace podfwd::control::etcd
