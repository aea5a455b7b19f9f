// The churn model of the cross-process tests (test_stress, test_restart,
// test_liveness).
//
// A fixed universe of nested prefixes; prefix i only ever points at next hops
// whose record encodes i (node_ip = i << 12 | slot << 8 | version, every other
// field derived from node_ip), so a reader can judge any answer on its own:
// the record must be self-consistent (not torn) and its prefix must cover the
// probed address. Each probe lies in a /8 that is never deleted, so kNoRoute
// is always wrong. Next hops are updated but never deleted, so an id keeps its
// prefix for the whole run even across writer restarts.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/result.h"
#include "lpm/reader.h"
#include "lpm/types.h"
#include "lpm/writer.h"
#include "tests/lpm/test_util.h"

namespace podfwd::lpm::test {

inline constexpr unsigned kSlots = 3;   // next hops per prefix

NextHop churn_record(std::uint32_t prefix_index, unsigned slot, std::uint8_t version);

struct RecordOwner {
    std::uint32_t prefix_index;
    unsigned slot;
    unsigned version;
};
// nullopt when the record is not one churn_record() could have produced.
std::optional<RecordOwner> decode_record(const NextHop& rec, std::size_t universe_size);

struct Universe {
    std::vector<Prefix4> prefixes;
    std::vector<std::uint8_t> permanent;
    std::unordered_map<std::uint64_t, std::uint32_t> index_of;   // key: len << 32 | addr
    std::vector<Ipv4Addr> probes;
    std::vector<std::uint32_t> cover_begin;   // probe p: cover[cover_begin[p] .. cover_begin[p + 1])
    std::vector<std::uint32_t> cover;         // indices of the covering prefixes, longest first

    std::size_t size() const noexcept { return prefixes.size(); }
    std::span<const std::uint32_t> covering(std::size_t probe) const noexcept {
        return {cover.data() + cover_begin[probe], cover.data() + cover_begin[probe + 1]};
    }
    std::optional<std::uint32_t> find(const Prefix4& p) const;

    // ~target prefixes in chains /8 ⊃ /12 ⊃ /16 ⊃ /18 ⊃ /19 ⊃ /21 ⊃ /24 ⊃ /25 ⊃
    // /27 ⊃ /30 ⊃ /31 ⊃ /32 under a few permanent /8s, chains sharing their
    // shorter prefixes; `probes` addresses spread over all levels.
    static Universe build(std::uint64_t seed, std::size_t target, std::size_t probes);
};

// A next-hop slot per prefix, -1: absent. Permanent prefixes are always present.
using Assignment = std::vector<std::int8_t>;
Assignment random_assignment(const Universe& u, std::uint64_t seed);

// Judges one answer of a reader for probe `probe`; nullopt when legal.
std::optional<std::string> judge_answer(const TableView& view, const Universe& u, std::size_t probe,
                                        NextHopId answer);

// ---------------------------------------------------------------- reports

// What a reader process reports to the test through shared memory.
struct ReaderReport {
    std::atomic<std::uint32_t> ready{0};
    std::atomic<std::uint64_t> iterations{0};
    std::atomic<std::uint64_t> lookups{0};
    std::atomic<std::uint64_t> invalid{0};
    SharedLog<6> log;
};

// What a writer process reports.
struct WriterReport {
    std::atomic<std::uint32_t> opened{0};
    std::atomic<std::uint32_t> recovered{0};
    std::atomic<std::uint32_t> ready{0};      // initial routes committed and checked
    std::atomic<std::uint32_t> finished{0};
    std::atomic<std::uint64_t> commits{0};
    std::atomic<std::uint64_t> route_ops{0};
    std::atomic<std::uint64_t> nh_updates{0};
    std::atomic<std::uint64_t> failures{0};
    std::atomic<std::uint64_t> generation{0};
    std::atomic<std::uint64_t> reclaimed_total{0};
    std::atomic<std::uint64_t> retired_pending{0};
    std::atomic<std::uint64_t> pending_max{0};   // max retired_pending since the test last reset it
    std::atomic<std::uint32_t> dead_readers_reaped{0};
    std::atomic<std::uint32_t> readers_online{0};
    SharedLog<8> log;

    void publish(const TableStats& s) noexcept;
    void fail(std::string_view what) noexcept {
        failures.fetch_add(1);
        log.add(what);
    }
};

// Looks up random probes (single and bulk) and judges every answer until
// `stop` is set or `deadline` passes. Returns the child exit code.
int run_reader(const std::string& segment, const Universe& u, ReaderReport& report,
               const std::atomic<std::uint32_t>& stop, Clock::time_point deadline, std::uint64_t seed);

// ---------------------------------------------------------------- writer side

// Drives one TableWriter through the model and keeps the model's view of
// what the table holds, to check the writer against it.
class Churner {
public:
    Churner(TableWriter& writer, const Universe& u, std::uint64_t seed);

    // Creates or finds (nexthop_ensure) the base record of every (prefix, slot).
    // `ignored_existing` counts ensures that did not return an identical
    // record that nexthops() listed before.
    Status ensure_nexthops(std::size_t& ignored_existing);
    Status reconcile(const Assignment& desired);
    // `ops` random route changes and next-hop updates, then commit().
    Status churn_batch(std::size_t ops, WriterReport& report);

    // routes() and lookup() of every probe against the model; mismatches are
    // logged to `report` and counted.
    std::size_t check_writer(WriterReport& report) const;
    // The same lookups through a reader of the segment.
    std::size_t check_view(const TableView& view, WriterReport& report) const;

    NextHopId expected(std::size_t probe) const;
    const Assignment& state() const noexcept { return state_; }

private:
    Status route_op(std::uint32_t idx);
    Status nexthop_op(std::uint32_t idx, unsigned slot);

    TableWriter& w_;
    const Universe& u_;
    Rng rng_;
    std::vector<std::array<NextHopId, kSlots>> ids_;
    std::vector<std::array<std::uint8_t, kSlots>> versions_;
    Assignment state_;   // after the staged changes
};

// ---------------------------------------------------------------- a churn run with killed readers

// What the test and its writer and reader processes share; `Readers`
// counts every reader, victims included.
template <std::size_t Readers>
struct ChurnShared {
    WriterReport writer;
    std::array<ReaderReport, Readers> readers;
    std::atomic<std::uint32_t> stop_writer{0};
    std::atomic<std::uint32_t> stop_readers{0};
};

// The writer process: opens `segment` with small pools, installs a random
// assignment, checks itself and sets report.ready, then commits batches of
// 1..max_batch changes (log-uniform) until `stop` or `deadline`, and checks
// itself again.
ChildProcess spawn_churn_writer(const std::string& segment, const Universe& u, WriterReport& report,
                                const std::atomic<std::uint32_t>& stop, Clock::time_point deadline,
                                std::uint64_t seed, std::size_t max_batch);

// Waits for the writer's ready (or its first failure).
::testing::AssertionResult writer_ready(const WriterReport& writer, Clock::duration timeout = 60s);
// Waits until every reader registered or gave up.
::testing::AssertionResult readers_registered(std::span<const ReaderReport> readers, Clock::duration timeout = 30s);
// Polls until `until`; false as soon as the writer fails or exits.
bool writer_healthy_until(Clock::time_point until, const WriterReport& report, ChildProcess& writer);
// After a reader was SIGKILLed at `kill_time`: the writer must reap it within
// `reap_timeout` and reclaim again; prints how long the reap took.
void expect_reaped_and_reclaiming(const WriterReport& report, std::uint64_t reclaimed_at_kill,
                                  Clock::time_point kill_time, Clock::duration reap_timeout);

}  // namespace podfwd::lpm::test
