// Counters straight from shared memory: synthetic segments written here with
// the dataplane's layout structs, numbers chosen by the test (the oracle).
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <new>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "control/ctl/run.h"
#include "control/ctl/stats.h"
#include "tests/control/ctl/run_captured.h"

namespace podfwd::ctl {
namespace {

using nlohmann::json;
using dp::Action;
using dp::Drop;

std::string unique_table() {
    static int serial = 0;
    return "podfwdctl-test-" + std::to_string(getpid()) + "-" + std::to_string(serial++);
}

// A pid that no process has: a child that has exited and been reaped.
std::uint32_t dead_pid() {
    const pid_t child = fork();
    if (child == 0)
        _exit(0);
    waitpid(child, nullptr, 0);
    return static_cast<std::uint32_t>(child);
}

// /dev/shm/<table>.stats.<pid> laid out as podfwd-dataplane does.
class SyntheticSegment {
public:
    SyntheticSegment(const std::string& table, std::uint32_t pid, unsigned lcores, bool initialised = true)
        : path_("/dev/shm/" + table + ".stats." + std::to_string(pid)),
          size_(sizeof(dp::StatsHeader) + lcores * sizeof(dp::LcoreStats)) {
        const int fd = open(path_.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
        EXPECT_GE(fd, 0);
        EXPECT_EQ(ftruncate(fd, static_cast<off_t>(size_)), 0);
        base_ = mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        close(fd);
        header_ = new (base_) dp::StatsHeader{};
        entries_ = reinterpret_cast<dp::LcoreStats*>(static_cast<std::byte*>(base_) + sizeof(dp::StatsHeader));
        for (unsigned i = 0; i < lcores; ++i)
            new (&entries_[i]) dp::LcoreStats{.lcore_id = i, .queue = i, .reserved = 0, .idle_sleeps = 0,
                                              .busy_polls = 0, .counters = {}};
        if (!initialised)
            return;
        header_->version = dp::kStatsVersion;
        header_->lcore_count = lcores;
        header_->entry_size = sizeof(dp::LcoreStats);
        header_->counters_offset = offsetof(dp::LcoreStats, counters);
        header_->roles = dp::kPortRoles;
        header_->actions = kActionCount;
        header_->drops = kDropCount;
        header_->pid = pid;
        header_->state.store(static_cast<std::uint32_t>(dp::RunState::kRunning));
        header_->start_unix_ns = 1'764'000'000'000'000'000;
        header_->magic = dp::kStatsMagic;
    }
    ~SyntheticSegment() {
        munmap(base_, size_);
        unlink(path_.c_str());
    }

    const std::string& path() const { return path_; }
    dp::StatsHeader& header() { return *header_; }
    dp::LcoreStats& lcore(unsigned i) { return entries_[i]; }
    dp::LcoreCounters& counters(unsigned i) { return entries_[i].counters; }

private:
    std::string path_;
    std::size_t size_;
    void* base_ = nullptr;
    dp::StatsHeader* header_ = nullptr;
    dp::LcoreStats* entries_ = nullptr;
};

std::size_t index_of(const char* group, const char* name) {
    const std::size_t index = counter_index(group, name);
    EXPECT_LT(index, kCounterCount) << group << " " << name;
    return index;
}

// Two lcores with the numbers every test below checks against.
void fill_oracle(SyntheticSegment& segment) {
    segment.lcore(1).lcore_id = 4;
    auto& first = segment.counters(0);
    first.rx_packets = {100, 7};
    first.tx_packets = {90, 6};
    first.tx_dropped = {2, 0};
    first.actions[static_cast<unsigned>(Action::kHostGw)] = 80;
    first.actions[static_cast<unsigned>(Action::kIpipEncap)] = 10;
    first.drops[static_cast<unsigned>(Drop::kNoRoute)] = 5;
    segment.lcore(0).busy_polls = 11;
    segment.lcore(0).idle_sleeps = 3;
    auto& second = segment.counters(1);
    second.rx_packets = {200, 0};
    second.tx_packets = {150, 0};
    second.actions[static_cast<unsigned>(Action::kHostGw)] = 140;
    second.drops[static_cast<unsigned>(Drop::kNoRoute)] = 1;
    second.drops[static_cast<unsigned>(Drop::kBadChecksum)] = 9;
}

Outcome run_with(const std::vector<std::string>& args) { return run_captured(args, Environment{}); }

std::vector<std::string> words_of_line(const std::string& text, const std::string& label) {
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);)
        if (line.starts_with(label + " ")) {
            std::istringstream in(line.substr(label.size()));
            std::vector<std::string> words;
            for (std::string word; in >> word;)
                words.push_back(word);
            return words;
        }
    return {};
}

TEST(Stats, CounterNamesFollowTheEnums) {
    EXPECT_EQ(index_of("rx", "uplink"), 0u);
    EXPECT_EQ(counter_names()[index_of("actions", "host_gw")].name, dp::action_name(Action::kHostGw));
    EXPECT_EQ(counter_names()[index_of("drops", "multi_segment")].name, dp::drop_name(Drop::kMultiSegment));
    EXPECT_EQ(index_of("", "idle_sleeps"), kCounterCount - 1);
    EXPECT_EQ(counter_index("drops", "nonsense"), kCounterCount);
}

TEST(Stats, SumsAcrossLcores) {
    const std::string table = unique_table();
    SyntheticSegment segment(table, static_cast<std::uint32_t>(getpid()), 2);
    fill_oracle(segment);

    auto snapshot = read_stats(table);
    ASSERT_TRUE(snapshot) << snapshot.error().message;
    ASSERT_EQ(snapshot->segments.size(), 1u);
    EXPECT_EQ(snapshot->segments[0].pid, static_cast<std::uint32_t>(getpid()));
    EXPECT_EQ(snapshot->segments[0].state, dp::RunState::kRunning);
    EXPECT_EQ(snapshot->segments[0].path, segment.path());
    ASSERT_EQ(snapshot->lcores.size(), 2u);
    EXPECT_EQ(snapshot->lcores[1].lcore_id, 4u);
    EXPECT_EQ(snapshot->lcores[1].queue, 1u);

    struct Expected {
        const char* group;
        const char* name;
        std::uint64_t total;
    };
    const Counts totals = snapshot->totals();
    for (const Expected& expected : {Expected{"rx", "uplink", 300}, {"rx", "host", 7}, {"tx", "uplink", 240},
                                     {"tx", "host", 6}, {"tx_dropped", "uplink", 2}, {"actions", "host_gw", 220},
                                     {"actions", "ipip_encap", 10}, {"drops", "no_route", 6},
                                     {"drops", "bad_checksum", 9}, {"drops", "short_frame", 0},
                                     {"", "busy_polls", 11}, {"", "idle_sleeps", 3}})
        EXPECT_EQ(totals[index_of(expected.group, expected.name)], expected.total)
            << expected.group << " " << expected.name;
}

TEST(Stats, SumsAcrossDataplaneProcesses) {
    const std::string table = unique_table();
    SyntheticSegment mine(table, static_cast<std::uint32_t>(getpid()), 1);
    SyntheticSegment parents(table, static_cast<std::uint32_t>(getppid()), 1);   // alive too
    mine.counters(0).rx_packets = {5, 0};
    parents.counters(0).rx_packets = {7, 1};
    auto snapshot = read_stats(table);
    ASSERT_TRUE(snapshot) << snapshot.error().message;
    EXPECT_EQ(snapshot->segments.size(), 2u);
    EXPECT_EQ(snapshot->lcores.size(), 2u);
    EXPECT_EQ(snapshot->totals()[index_of("rx", "uplink")], 12u);
    EXPECT_EQ(snapshot->totals()[index_of("rx", "host")], 1u);
}

TEST(Stats, SegmentsOfDeadProcessesAreSkipped) {
    const std::string table = unique_table();
    const std::uint32_t dead = dead_pid();
    SyntheticSegment stale(table, dead, 1);
    stale.counters(0).rx_packets = {1000, 0};
    {
        auto none = read_stats(table);
        ASSERT_FALSE(none);
        EXPECT_EQ(none.error().code, Errc::kNotFound);
        EXPECT_EQ(none.error().message, "no podfwd-dataplane is running for table '" + table + "' (no live /dev/shm/" +
                                            table + ".stats.<pid>; " + stale.path() + ": pid " + std::to_string(dead) +
                                            " is not running)");
    }
    SyntheticSegment live(table, static_cast<std::uint32_t>(getpid()), 1);
    live.counters(0).rx_packets = {3, 0};
    auto snapshot = read_stats(table);
    ASSERT_TRUE(snapshot) << snapshot.error().message;
    EXPECT_EQ(snapshot->totals()[index_of("rx", "uplink")], 3u);
    ASSERT_EQ(snapshot->skipped.size(), 1u);
    EXPECT_EQ(snapshot->skipped[0].pid, dead);

    const Outcome outcome = run_with({"stats", "--table", table});
    EXPECT_EQ(outcome.status, kExitOk) << outcome.err;
    EXPECT_NE(outcome.out.find("ignored " + stale.path() + ": pid " + std::to_string(dead) + " is not running\n"),
              std::string::npos)
        << outcome.out;
}

TEST(Stats, SegmentOfAZombieIsSkipped) {
    const std::string table = unique_table();
    const pid_t child = fork();
    if (child == 0)
        _exit(0);
    // Wait for the exit but leave the child unreaped: a zombie, which
    // kill(pid, 0) still finds.
    siginfo_t info{};
    ASSERT_EQ(waitid(P_PID, static_cast<id_t>(child), &info, WEXITED | WNOWAIT), 0);
    {
        SyntheticSegment zombie(table, static_cast<std::uint32_t>(child), 1);
        auto none = read_stats(table);
        EXPECT_FALSE(none);
        if (!none) {
            EXPECT_EQ(none.error().code, Errc::kNotFound) << none.error().message;
        }
    }
    waitpid(child, nullptr, 0);
}

TEST(Stats, NoDataplane) {
    const std::string table = unique_table();
    auto none = read_stats(table);
    ASSERT_FALSE(none);
    EXPECT_EQ(none.error().message,
              "no podfwd-dataplane is running for table '" + table + "' (no live /dev/shm/" + table + ".stats.<pid>)");
    const Outcome outcome = run_with({"stats", "--table", table});
    EXPECT_EQ(outcome.status, kExitFailed);
    EXPECT_EQ(outcome.err, "podfwdctl: " + none.error().message + "\n");
    EXPECT_EQ(outcome.out, "");
}

TEST(Stats, SegmentBeingCreatedIsSkipped) {
    const std::string table = unique_table();
    SyntheticSegment creating(table, static_cast<std::uint32_t>(getpid()), 1, /*initialised=*/false);
    auto none = read_stats(table);
    ASSERT_FALSE(none);
    EXPECT_NE(none.error().message.find(creating.path() + ": still being created"), std::string::npos);
}

TEST(Stats, IncompatibleSegmentsAreRefusedClearly) {
    const auto expect_refused = [](const std::function<void(SyntheticSegment&)>& damage, const std::string& says) {
        const std::string table = unique_table();
        SyntheticSegment segment(table, static_cast<std::uint32_t>(getpid()), 2);
        damage(segment);
        auto refused = read_stats(table);
        ASSERT_FALSE(refused);
        EXPECT_EQ(refused.error().code, Errc::kIncompatible);
        EXPECT_NE(refused.error().message.find(segment.path() + ": " + says), std::string::npos)
            << refused.error().message;
    };
    expect_refused([](SyntheticSegment& s) { s.header().version = 2; },
                   "counter segment version 2, this podfwdctl reads 1");
    const std::string actions = std::to_string(kActionCount);
    expect_refused([](SyntheticSegment& s) { s.header().drops = kDropCount + 1; },
                   "counts 2 ports, " + actions + " actions, " + std::to_string(kDropCount + 1) +
                       " drop reasons; this podfwdctl knows 2, " + actions + ", " + std::to_string(kDropCount));
    expect_refused([](SyntheticSegment& s) { s.header().lcore_count = 3; },
                   "file of " + std::to_string(sizeof(dp::StatsHeader) + 2 * sizeof(dp::LcoreStats)) +
                       " bytes is too short for 3 lcores");
    expect_refused([](SyntheticSegment& s) { s.header().entry_size = 100; }, "entry size 100");
    expect_refused([](SyntheticSegment& s) { s.header().magic = 0x1234; }, "not a podfwd counter segment");
}

// A name under /dev/shm removed when the test ends, however it ends.
struct RemovedAtEnd {
    std::string path;
    ~RemovedAtEnd() { unlink(path.c_str()); }
};

// The one segment of `table` is not read: skipped with `reason` (read_stats
// then finds no live dataplane and says why).
void expect_not_read(const std::string& table, const std::string& path, const std::string& reason) {
    auto none = read_stats(table);
    ASSERT_FALSE(none) << "the segment was read";
    EXPECT_EQ(none.error().code, Errc::kNotFound);
    EXPECT_NE(none.error().message.find(path + ": not read: " + reason), std::string::npos) << none.error().message;
}

TEST(Stats, SegmentOfAnotherOwnerIsNotRead) {
    if (geteuid() != 0)
        GTEST_SKIP() << "giving a file to another owner needs root";
    const std::string table = unique_table();
    SyntheticSegment segment(table, static_cast<std::uint32_t>(getpid()), 1);
    ASSERT_EQ(chown(segment.path().c_str(), 65534, 65534), 0) << std::strerror(errno);
    expect_not_read(table, segment.path(), "owner uid 65534, mode 0600: owned by neither root nor uid 0");

    // Listed under `ignored`, not counted, beside a segment that is read.
    SyntheticSegment parents(table, static_cast<std::uint32_t>(getppid()), 1);
    auto snapshot = read_stats(table);
    ASSERT_TRUE(snapshot) << snapshot.error().message;
    EXPECT_EQ(snapshot->segments.size(), 1u);
    ASSERT_EQ(snapshot->skipped.size(), 1u);
    EXPECT_EQ(snapshot->skipped[0].path, segment.path());
}

TEST(Stats, SegmentWritableByOthersIsNotRead) {
    const std::string table = unique_table();
    SyntheticSegment segment(table, static_cast<std::uint32_t>(getpid()), 1);
    ASSERT_EQ(chmod(segment.path().c_str(), 0666), 0) << std::strerror(errno);
    expect_not_read(table, segment.path(),
                    "owner uid " + std::to_string(geteuid()) + ", mode 0666: writable by group or others");
    ASSERT_EQ(chmod(segment.path().c_str(), 0620), 0);
    expect_not_read(table, segment.path(),
                    "owner uid " + std::to_string(geteuid()) + ", mode 0620: writable by group or others");
    ASSERT_EQ(chmod(segment.path().c_str(), 0644), 0);   // readable by all is fine
    EXPECT_TRUE(read_stats(table));
}

TEST(Stats, SymbolicLinkIsNotFollowed) {
    const std::string table = unique_table();
    const auto pid = static_cast<std::uint32_t>(getpid());
    SyntheticSegment elsewhere(table + "-elsewhere", pid, 1);
    const RemovedAtEnd link{"/dev/shm/" + table + ".stats." + std::to_string(pid)};
    ASSERT_EQ(symlink(elsewhere.path().c_str(), link.path.c_str()), 0) << std::strerror(errno);
    expect_not_read(table, link.path, "a symbolic link, not followed");
}

TEST(Stats, FifoIsNotReadNorWaitedOn) {
    const std::string table = unique_table();
    const RemovedAtEnd fifo{"/dev/shm/" + table + ".stats." + std::to_string(getpid())};
    ASSERT_EQ(mkfifo(fifo.path.c_str(), 0600), 0) << std::strerror(errno);
    expect_not_read(table, fifo.path, "not a regular file");
}

TEST(Stats, HeaderThatLiesAboutItsSizeIsRefused) {
    const std::string table = unique_table();
    SyntheticSegment segment(table, static_cast<std::uint32_t>(getpid()), 1);
    segment.header().lcore_count = 0xffffffff;
    segment.header().entry_size = 0xffffffc0;
    auto refused = read_stats(table);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, Errc::kIncompatible);
    EXPECT_NE(refused.error().message.find(segment.path() + ": file of " +
                                           std::to_string(sizeof(dp::StatsHeader) + sizeof(dp::LcoreStats)) +
                                           " bytes is too short for 4294967295 lcores"),
              std::string::npos)
        << refused.error().message;
}

// A writer that keeps changing the header while podfwdctl reads: each read
// sees one consistent copy, either the true segment or a refusal, and never
// reads past the file as it would by re-reading the header from shared memory.
TEST(Stats, HeaderChangingDuringTheReadIsSeenOnce) {
    const std::string table = unique_table();
    SyntheticSegment segment(table, static_cast<std::uint32_t>(getpid()), 1);
    segment.counters(0).rx_packets = {42, 0};
    std::atomic_ref<std::uint32_t> lcore_count(segment.header().lcore_count);
    // Stopped and joined when the test leaves, a failed assertion included.
    std::jthread liar([&](const std::stop_token& stop) {
        for (std::uint32_t round = 0; !stop.stop_requested(); ++round)
            lcore_count.store(round % 2 == 0 ? 1 : 100000, std::memory_order_relaxed);
    });
    int read = 0, refused = 0;
    for (int i = 0; i < 2000; ++i) {
        auto snapshot = read_stats(table);
        if (snapshot) {
            ++read;
            ASSERT_EQ(snapshot->lcores.size(), 1u);
            EXPECT_EQ(snapshot->totals()[index_of("rx", "uplink")], 42u);
        } else {
            ++refused;
            ASSERT_NE(snapshot.error().message.find("is too short for 100000 lcores"), std::string::npos)
                << snapshot.error().message;
        }
    }
    EXPECT_EQ(read + refused, 2000);
}

// decode_segment against the bytes the test lays out itself: the whole
// segment gives the oracle's numbers; every shorter prefix of it is "being
// created" (shorter than a header) or refused as too short, never read.
TEST(Stats, DecodeFromBytesAndEveryTruncation) {
    constexpr unsigned kLcores = 2;
    std::vector<std::byte> bytes(sizeof(dp::StatsHeader) + kLcores * sizeof(dp::LcoreStats));
    {
        const std::string table = unique_table();
        SyntheticSegment segment(table, 7, kLcores);
        fill_oracle(segment);
        std::memcpy(bytes.data(), &segment.header(), sizeof(dp::StatsHeader));
        std::memcpy(bytes.data() + sizeof(dp::StatsHeader), &segment.lcore(0), kLcores * sizeof(dp::LcoreStats));
    }
    auto whole = decode_segment(bytes, "seg", 7);
    ASSERT_TRUE(whole) << whole.error().message;
    EXPECT_FALSE(whole->being_created);
    EXPECT_EQ(whole->state, dp::RunState::kRunning);
    ASSERT_EQ(whole->lcores.size(), kLcores);
    EXPECT_EQ(whole->lcores[1].lcore_id, 4u);
    EXPECT_EQ(whole->lcores[0].pid, 7u);
    EXPECT_EQ(whole->lcores[0].counts[index_of("rx", "uplink")], 100u);
    EXPECT_EQ(whole->lcores[1].counts[index_of("drops", "bad_checksum")], 9u);
    EXPECT_EQ(whole->lcores[0].counts[index_of("", "busy_polls")], 11u);

    for (std::size_t len = 0; len < bytes.size(); ++len) {
        auto part = decode_segment(std::span(bytes).first(len), "seg", 7);
        if (len < sizeof(dp::StatsHeader)) {
            ASSERT_TRUE(part && part->being_created) << len;
            continue;
        }
        ASSERT_FALSE(part) << len;
        EXPECT_EQ(part.error().message, "seg: file of " + std::to_string(len) +
                                            " bytes is too short for 2 lcores (a podfwd-dataplane of another "
                                            "version? use its podfwdctl)");
    }
}

TEST(Stats, RatesAreDeltasPerSecond) {
    const std::string table = unique_table();
    SyntheticSegment segment(table, static_cast<std::uint32_t>(getpid()), 2);
    fill_oracle(segment);
    auto earlier = read_stats(table);
    ASSERT_TRUE(earlier);

    segment.counters(0).rx_packets[0] += 1000;
    segment.counters(1).rx_packets[0] += 3000;
    segment.counters(1).drops[static_cast<unsigned>(Drop::kNoRoute)] += 50;
    segment.counters(0).actions[static_cast<unsigned>(Action::kHostGw)] -= 80;   // went backwards: counts as 0
    auto later = read_stats(table);
    ASSERT_TRUE(later);
    later->taken_at = earlier->taken_at + std::chrono::seconds(2);

    const RateReport rates = compute_rates(*earlier, *later);
    EXPECT_DOUBLE_EQ(rates.seconds, 2.0);
    ASSERT_EQ(rates.lcores.size(), 2u);
    ASSERT_TRUE(rates.lcores[0] && rates.lcores[1]);
    EXPECT_DOUBLE_EQ((*rates.lcores[0])[index_of("rx", "uplink")], 500.0);
    EXPECT_DOUBLE_EQ((*rates.lcores[1])[index_of("rx", "uplink")], 1500.0);
    EXPECT_DOUBLE_EQ(rates.totals[index_of("rx", "uplink")], 2000.0);
    EXPECT_DOUBLE_EQ(rates.totals[index_of("drops", "no_route")], 25.0);
    EXPECT_DOUBLE_EQ(rates.totals[index_of("actions", "host_gw")], 0.0);
    EXPECT_DOUBLE_EQ(rates.totals[index_of("tx", "uplink")], 0.0);

    // An lcore that was not there before has no rate yet.
    later->lcores[1].lcore_id = 9;
    const RateReport partial = compute_rates(*earlier, *later);
    EXPECT_FALSE(partial.lcores[1]);
    EXPECT_DOUBLE_EQ(partial.totals[index_of("rx", "uplink")], 500.0);
}

TEST(Stats, HumanOutputOmitsZeroDropsUnlessAll) {
    const std::string table = unique_table();
    SyntheticSegment segment(table, static_cast<std::uint32_t>(getpid()), 2);
    fill_oracle(segment);
    const Outcome outcome = run_with({"stats", "--table", table});
    ASSERT_EQ(outcome.status, kExitOk) << outcome.err;
    EXPECT_TRUE(outcome.out.starts_with("podfwd-dataplane pid " + std::to_string(getpid()) +
                                        ": running since 2025-11-24 16:00:00 UTC, 2 lcores\n"))
        << outcome.out;
    EXPECT_NE(outcome.out.find("COUNTER"), std::string::npos);
    EXPECT_EQ(words_of_line(outcome.out, "COUNTER"), (std::vector<std::string>{"TOTAL", "LCORE", "0", "LCORE", "4"}));
    EXPECT_EQ(words_of_line(outcome.out, "rx uplink"), (std::vector<std::string>{"300", "100", "200"}));
    EXPECT_EQ(words_of_line(outcome.out, "action host_gw"), (std::vector<std::string>{"220", "80", "140"}));
    EXPECT_EQ(words_of_line(outcome.out, "drop no_route"), (std::vector<std::string>{"6", "5", "1"}));
    EXPECT_EQ(words_of_line(outcome.out, "drop bad_checksum"), (std::vector<std::string>{"9", "0", "9"}));
    EXPECT_EQ(outcome.out.find("drop short_frame"), std::string::npos);

    const Outcome all = run_with({"stats", "--all", "--table", table});
    EXPECT_EQ(words_of_line(all.out, "drop short_frame"), (std::vector<std::string>{"0", "0", "0"}));
}

TEST(Stats, JsonHasTotalsAndLcores) {
    const std::string table = unique_table();
    SyntheticSegment segment(table, static_cast<std::uint32_t>(getpid()), 2);
    fill_oracle(segment);
    const Outcome outcome = run_with({"stats", "--json", "--table", table});
    ASSERT_EQ(outcome.status, kExitOk) << outcome.err;
    const json stats = json::parse(outcome.out);
    EXPECT_EQ(stats["table"], table);
    EXPECT_EQ(stats["dataplanes"][0]["pid"], getpid());
    EXPECT_EQ(stats["dataplanes"][0]["state"], "running");
    EXPECT_EQ(stats["totals"]["rx"]["uplink"], 300);
    EXPECT_EQ(stats["totals"]["tx_dropped"]["uplink"], 2);
    EXPECT_EQ(stats["totals"]["actions"]["host_gw"], 220);
    EXPECT_EQ(stats["totals"]["drops"]["no_route"], 6);
    EXPECT_EQ(stats["totals"]["drops"].size(), kDropCount);   // zeros too
    EXPECT_EQ(stats["totals"]["busy_polls"], 11);
    EXPECT_EQ(stats["lcores"][1]["lcore"], 4);
    EXPECT_EQ(stats["lcores"][1]["counters"]["rx"]["uplink"], 200);
    EXPECT_FALSE(stats.contains("rates"));
}

TEST(Stats, WatchPrintsOneReportPerIntervalUpToCount) {
    const std::string table = unique_table();
    SyntheticSegment segment(table, static_cast<std::uint32_t>(getpid()), 2);
    fill_oracle(segment);
    const Outcome outcome =
        run_with({"stats", "--watch", "--interval", "0.05", "--count", "3", "--json", "--table", table});
    ASSERT_EQ(outcome.status, kExitOk) << outcome.err;
    std::istringstream lines(outcome.out);
    int reports = 0;
    for (std::string line; std::getline(lines, line); ++reports) {
        const json report = json::parse(line);
        EXPECT_GT(report["interval_s"].get<double>(), 0.04);
        EXPECT_EQ(report["rates"]["rx"]["uplink"], 0.0);   // nothing moved
        EXPECT_EQ(report["totals"]["rx"]["uplink"], 300);
        EXPECT_EQ(report["lcores"][0]["rates"]["rx"]["uplink"], 0.0);
    }
    EXPECT_EQ(reports, 3);

    const Outcome human = run_with({"stats", "--watch", "--interval", "0.05", "--count", "2", "--table", table});
    ASSERT_EQ(human.status, kExitOk) << human.err;
    EXPECT_EQ(words_of_line(human.out, "COUNTER"),
              (std::vector<std::string>{"TOTAL", "PER-SEC", "LCORE", "0/S", "LCORE", "4/S"}));
    EXPECT_EQ(words_of_line(human.out, "rx uplink"), (std::vector<std::string>{"300", "0.0", "0.0", "0.0"}));
}

}  // namespace
}  // namespace podfwd::ctl
