// NeighSegmentReader against segment files written by hand in /dev/shm:
// what a correct dataplane writes is read back exactly; what a broken or
// hostile one writes is refused (counted once), clamped, or waited out in
// bounded time, and never crashes the reader.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>

#include "common/process.h"
#include "control/daemon/neigh_segment_reader.h"
#include "tests/control/daemon/neigh_segment_file.h"

namespace podfwd::control {
namespace {

using testing::NeighSegmentFile;

Ipv4Addr ip(const char* text) { return *parse_ipv4(text); }
const MacAddr kMac3{2, 0, 0, 0, 0, 3};

// A pid no process has: a child that has exited and been reaped.
std::uint32_t dead_pid() {
    const pid_t child = ::fork();
    if (child == 0)
        ::_exit(0);
    int status = 0;
    ::waitpid(child, &status, 0);
    return static_cast<std::uint32_t>(child);
}

class Reader : public ::testing::Test {
protected:
    // A table name of this test only: segments of other tests and of real
    // dataplanes never match it.
    std::string table_ = "podfwd-test-neigh-" + std::to_string(::getpid()) + "-" +
                         ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::uint32_t self_ = static_cast<std::uint32_t>(::getpid());
    NeighSegmentReader reader_{table_};
};

TEST_F(Reader, NoSegmentNoSnapshot) {
    EXPECT_EQ(reader_.poll(), NeighSegmentReader::Poll::kUnchanged);
    EXPECT_FALSE(reader_.snapshot());
    EXPECT_FALSE(reader_.following());
    EXPECT_EQ(reader_.bad_segments(), 0u);
}

TEST_F(Reader, AValidSegmentIsReadBackAndFollowed) {
    NeighSegmentFile file(table_, self_, 8);
    ASSERT_TRUE(file.ok());
    file.entry(0) = NeighSegmentFile::make(ip("10.168.0.3"), 1, 3);
    file.entry(1) = NeighSegmentFile::make(ip("10.168.0.9"), 0, 0, 2, 5);
    file.entry(2) = NeighSegmentFile::make(ip("10.168.0.1"), 2, 1);
    file.entry(1).used_age_ms = 70;
    file.publish(3, 1234);

    ASSERT_EQ(reader_.poll(), NeighSegmentReader::Poll::kChanged);
    ASSERT_TRUE(reader_.snapshot());
    const ArpSnapshot& s = *reader_.snapshot();
    EXPECT_EQ(s.path, file.path());
    EXPECT_EQ(s.pid, self_);
    EXPECT_EQ(s.published_unix_ns, 1234u);
    ASSERT_EQ(s.entries.size(), 3u);
    EXPECT_EQ(s.entries[0].ip, ip("10.168.0.3"));
    EXPECT_EQ(s.entries[0].mac, kMac3);
    EXPECT_TRUE(s.entries[0].has_mac());
    EXPECT_EQ(std::string(arp_state_name(s.entries[0].state)), "reachable");
    EXPECT_EQ(std::string(arp_state_name(s.entries[1].state)), "incomplete");
    EXPECT_FALSE(s.entries[1].has_mac()) << "incomplete: no MAC to use";
    EXPECT_EQ(s.entries[1].probes, 2u);
    EXPECT_EQ(s.entries[1].queued, 5u);
    EXPECT_EQ(s.entries[1].used_age_ms, 70u);
    EXPECT_EQ(std::string(arp_state_name(s.entries[2].state)), "stale");
    EXPECT_TRUE(s.entries[2].has_mac());
    EXPECT_TRUE(reader_.following());

    EXPECT_EQ(reader_.poll(), NeighSegmentReader::Poll::kUnchanged) << "same sequence: nothing new";
    file.entry(0).mac[5] = 0x33;
    file.publish(3);
    ASSERT_EQ(reader_.poll(), NeighSegmentReader::Poll::kChanged);
    EXPECT_EQ(reader_.snapshot()->entries[0].mac[5], 0x33);
    EXPECT_EQ(reader_.bad_segments(), 0u);
}

TEST_F(Reader, BadMagicIsRefusedAndCountedOnce) {
    NeighSegmentFile file(table_, self_, 4);
    ASSERT_TRUE(file.ok());
    file.header().magic = 0x1234;
    file.publish(1);
    for (int i = 0; i < 3; ++i)
        EXPECT_EQ(reader_.poll(), NeighSegmentReader::Poll::kUnchanged);
    EXPECT_FALSE(reader_.snapshot());
    EXPECT_EQ(reader_.bad_segments(), 1u) << "a bad file is reported once, not every poll";
    ASSERT_TRUE(reader_.last_error());
    EXPECT_NE(reader_.last_error()->find("magic"), std::string::npos) << *reader_.last_error();
}

TEST_F(Reader, OtherBadHeadersAreRefused) {
    const std::pair<void (*)(dp::NeighHeader&), const char*> cases[] = {
        {[](dp::NeighHeader& h) { h.version = 99; }, "version"},
        {[](dp::NeighHeader& h) { h.entry_size = 48; }, "entry size"},
        {[](dp::NeighHeader& h) { h.pid += 1; }, "pid"},
        {[](dp::NeighHeader& h) { h.capacity = 0xffffffff; }, "capacity"},
    };
    for (const auto& [spoil, word] : cases) {
        NeighSegmentReader reader(table_);
        NeighSegmentFile file(table_, self_, 4);
        ASSERT_TRUE(file.ok());
        spoil(file.header());
        EXPECT_EQ(reader.poll(), NeighSegmentReader::Poll::kUnchanged) << word;
        EXPECT_EQ(reader.bad_segments(), 1u) << word;
        ASSERT_TRUE(reader.last_error()) << word;
        EXPECT_NE(reader.last_error()->find(word), std::string::npos) << *reader.last_error();
    }
}

TEST_F(Reader, TruncatedFilesAreRefused) {
    {
        // Room for 2 entries, a header that claims 16.
        NeighSegmentFile file(table_, self_, 16, sizeof(dp::NeighHeader) + 2 * sizeof(dp::NeighEntry));
        ASSERT_TRUE(file.ok());
        file.publish(2);
        EXPECT_EQ(reader_.poll(), NeighSegmentReader::Poll::kUnchanged);
        EXPECT_FALSE(reader_.snapshot());
        EXPECT_EQ(reader_.bad_segments(), 1u);
        EXPECT_NE(reader_.last_error()->find("truncated"), std::string::npos) << *reader_.last_error();
    }
    NeighSegmentReader reader(table_);
    NeighSegmentFile shorter(table_, self_, 4, 10);   // not even a header
    ASSERT_TRUE(shorter.ok());
    EXPECT_EQ(reader.poll(), NeighSegmentReader::Poll::kUnchanged);
    EXPECT_EQ(reader.bad_segments(), 1u);
    EXPECT_NE(reader.last_error()->find("truncated"), std::string::npos) << *reader.last_error();
}

TEST_F(Reader, ACountPastTheCapacityIsClamped) {
    NeighSegmentFile file(table_, self_, 2);
    ASSERT_TRUE(file.ok());
    file.entry(0) = NeighSegmentFile::make(ip("10.168.0.3"), 1, 3);
    file.entry(1) = NeighSegmentFile::make(ip("10.168.0.4"), 1, 4);
    file.publish(1'000'000);
    ASSERT_EQ(reader_.poll(), NeighSegmentReader::Poll::kChanged);
    EXPECT_EQ(reader_.snapshot()->entries.size(), 2u) << "never more than the capacity the file holds";
}

TEST_F(Reader, ASegmentOfADeadProcessIsIgnored) {
    const std::uint32_t pid = dead_pid();
    NeighSegmentFile file(table_, pid, 4);
    ASSERT_TRUE(file.ok());
    file.entry(0) = NeighSegmentFile::make(ip("10.168.0.3"), 1, 3);
    file.publish(1);
    EXPECT_FALSE(process_alive(pid));
    EXPECT_EQ(reader_.poll(), NeighSegmentReader::Poll::kUnchanged);
    EXPECT_FALSE(reader_.snapshot());
    EXPECT_EQ(reader_.bad_segments(), 0u) << "a crashed dataplane's leftover is not an error";
}

TEST_F(Reader, AnOddSequenceHeldIsWaitedOutInBoundedTime) {
    NeighSegmentFile file(table_, self_, 4);
    ASSERT_TRUE(file.ok());
    file.entry(0) = NeighSegmentFile::make(ip("10.168.0.3"), 1, 3);
    file.header().count = 1;
    file.header().seq.store(7);   // a writer that died mid-update, or is slow
    const auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(reader_.poll(), NeighSegmentReader::Poll::kUnchanged);
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
    EXPECT_FALSE(reader_.snapshot());
    EXPECT_EQ(reader_.busy_polls(), 1u);
    file.header().seq.store(8);
    ASSERT_EQ(reader_.poll(), NeighSegmentReader::Poll::kChanged);
    EXPECT_EQ(reader_.snapshot()->entries.size(), 1u);
}

TEST_F(Reader, TheNewestOfSeveralLiveSegmentsWins) {
    // Two live processes: this one and its parent (the test runner).
    NeighSegmentFile older(table_, self_, 4);
    NeighSegmentFile newer(table_, static_cast<std::uint32_t>(::getppid()), 4);
    ASSERT_TRUE(older.ok() && newer.ok());
    older.entry(0) = NeighSegmentFile::make(ip("10.168.0.3"), 1, 3);
    older.publish(1, 100);
    newer.entry(0) = NeighSegmentFile::make(ip("10.168.0.3"), 1, 0x44);
    newer.publish(1, 200);
    ASSERT_EQ(reader_.poll(), NeighSegmentReader::Poll::kChanged);
    EXPECT_EQ(reader_.snapshot()->path, newer.path());
    EXPECT_EQ(reader_.snapshot()->entries[0].mac[5], 0x44);
}

TEST_F(Reader, AGoneDataplanesNeighboursAreKeptUntilANewOnePublishes) {
    int gate[2];
    ASSERT_EQ(::pipe(gate), 0);
    const pid_t child = ::fork();
    if (child == 0) {   // lives until the pipe closes
        ::close(gate[1]);
        char c;
        (void)!::read(gate[0], &c, 1);
        ::_exit(0);
    }
    ::close(gate[0]);
    {
        NeighSegmentFile file(table_, static_cast<std::uint32_t>(child), 4);
        ASSERT_TRUE(file.ok());
        file.entry(0) = NeighSegmentFile::make(ip("10.168.0.3"), 1, 3);
        file.publish(1);
        ASSERT_EQ(reader_.poll(), NeighSegmentReader::Poll::kChanged);
        ASSERT_TRUE(reader_.following());
        ::close(gate[1]);
        int status = 0;
        ::waitpid(child, &status, 0);
        // Left behind, as after kill -9: the reader notices the pid, not the file.
        for (unsigned i = 0; i < NeighSegmentReader::kRescanEvery; ++i)
            EXPECT_EQ(reader_.poll(), NeighSegmentReader::Poll::kUnchanged);
        EXPECT_FALSE(reader_.following());
        ASSERT_TRUE(reader_.snapshot()) << "its MACs are still right: kept";
        EXPECT_EQ(reader_.snapshot()->entries.size(), 1u);
    }
    NeighSegmentFile next(table_, self_, 4);
    ASSERT_TRUE(next.ok());
    next.publish(0);
    ASSERT_EQ(reader_.poll(), NeighSegmentReader::Poll::kChanged);
    EXPECT_TRUE(reader_.following());
    EXPECT_TRUE(reader_.snapshot()->entries.empty()) << "the new dataplane's view replaces the old";
}

TEST_F(Reader, ASegmentOfAnotherUserIsRefused) {
    if (::geteuid() != 0)
        GTEST_SKIP() << "needs root to give the file away";
    NeighSegmentFile file(table_, self_, 4);
    ASSERT_TRUE(file.ok());
    ASSERT_EQ(::chown(file.path().c_str(), 12345, 12345), 0);
    EXPECT_EQ(reader_.poll(), NeighSegmentReader::Poll::kUnchanged);
    EXPECT_EQ(reader_.bad_segments(), 1u);
    EXPECT_NE(reader_.last_error()->find("uid 12345"), std::string::npos) << *reader_.last_error();
}

// Anyone may write a group- or world-writable file: its MACs are not ours.
TEST_F(Reader, AWritableByOthersSegmentIsRefused) {
    NeighSegmentFile file(table_, self_, 4);
    ASSERT_TRUE(file.ok());
    ASSERT_EQ(::chmod(file.path().c_str(), 0666), 0);
    EXPECT_EQ(reader_.poll(), NeighSegmentReader::Poll::kUnchanged);
    EXPECT_EQ(reader_.bad_segments(), 1u);
    EXPECT_NE(reader_.last_error()->find("mode 0666"), std::string::npos) << *reader_.last_error();
}

TEST(ProcessAlive, NeverSignalsGroups) {
    EXPECT_FALSE(process_alive(0));
    EXPECT_FALSE(process_alive(0x80000000u)) << "negative as a pid_t: a process group";
    EXPECT_TRUE(process_alive(static_cast<std::uint32_t>(::getpid())));
}

}  // namespace
}  // namespace podfwd::control
