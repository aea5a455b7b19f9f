// Reader liveness that does not depend on pids: readers in PID namespaces of
// their own (as in another container of the pod) while a writer churns. The
// writer must never reap them, and must reap one killed with SIGKILL inside
// its namespace. A registering reader frees the slots of dead readers too.
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>

#include <array>
#include <iostream>
#include <string>
#include <vector>

#include "tests/lpm/churn.h"
#include "tests/lpm/test_util.h"

namespace podfwd::lpm::test {
namespace {

constexpr std::size_t kUniverse = 1500;
constexpr std::size_t kProbes = 4096;
constexpr unsigned kReaders = 2;   // survivors, plus one victim
constexpr std::size_t kMaxBatch = 300;   // changes per commit

struct LivenessShared : ChurnShared<kReaders + 1> {   // the last reader is the victim
    std::array<std::atomic<std::int32_t>, kReaders + 1> host_pid{};   // the reader as the test sees it
    std::array<std::atomic<std::int32_t>, kReaders + 1> inner_pid{};  // the reader as it sees itself
};

// Runs `body` as pid 1 of a new PID namespace with a /proc of its own, as in
// a container of the pod: the child unshares PID and mount namespaces, forks
// the reader and waits for it; the reader mounts its namespace's /proc (in
// the private mount namespace, gone when it exits), so its pid and /proc
// mean nothing to the writer. The reader dies with the child (PDEATHSIG), so
// killing the returned child cleans up.
template <class Body>
ChildProcess spawn_in_pid_namespace(std::atomic<std::int32_t>& host_pid, std::atomic<std::int32_t>& inner_pid,
                                    Body body) {
    return ChildProcess::spawn([&host_pid, &inner_pid, body]() -> int {
        if (::unshare(CLONE_NEWPID | CLONE_NEWNS) != 0) {
            std::perror("unshare(CLONE_NEWPID | CLONE_NEWNS)");
            return kChildFailed;
        }
        // Our mounts stay ours; /dev/shm is still the same tmpfs.
        if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
            std::perror("mount --make-rprivate /");
            return kChildFailed;
        }
        const pid_t reader = ::fork();
        if (reader < 0)
            return kChildFailed;
        if (reader == 0) {
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (::mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) {
                std::perror("mount /proc");
                ::_exit(kChildFailed);
            }
            inner_pid.store(::getpid());
            int code = kChildException;
            try {
                code = body();
            } catch (const std::exception& e) {
                std::fprintf(stderr, "namespaced reader: %s\n", e.what());
            }
            std::fflush(nullptr);
            ::_exit(code);
        }
        host_pid.store(reader);
        int status = 0;
        while (::waitpid(reader, &status, 0) < 0 && errno == EINTR) {
        }
        return WIFEXITED(status) ? WEXITSTATUS(status) : kChildFailed;
    });
}

TEST(Liveness, ReadersInOtherPidNamespacesAreNotReapedAndADeadOneIs) {
    const std::uint64_t seed = test_seed();
    SegmentGuard guard;
    const Universe u = Universe::build(seed, kUniverse, kProbes);
    Shared<LivenessShared> sh;
    const double seconds = std::max(4.0, stress_seconds() / 2);
    const auto hard_deadline = Clock::now() + seconds_f(seconds) + 60s;

    ChildProcess writer =
        spawn_churn_writer(guard.name(), u, sh->writer, sh->stop_writer, hard_deadline, seed, kMaxBatch);
    ASSERT_TRUE(writer_ready(sh->writer));

    std::vector<ChildProcess> readers;
    for (unsigned i = 0; i <= kReaders; ++i)
        readers.push_back(spawn_in_pid_namespace(sh->host_pid[i], sh->inner_pid[i], [&, i] {
            return run_reader(guard.name(), u, sh->readers[i], sh->stop_readers, hard_deadline, seed + 100 + i);
        }));
    ASSERT_TRUE(readers_registered(sh->readers));
    ASSERT_TRUE(poll_until([&] { return std::ranges::none_of(sh->host_pid, [](auto& pid) { return pid == 0; }); },
                           30s))
        << "a reader's pid in the test's namespace was not published";
    for (unsigned i = 0; i <= kReaders; ++i)
        ASSERT_EQ(sh->inner_pid[i].load(), 1) << "reader " << i << " is not pid 1 of a namespace of its own";

    // Phase 1: everyone alive. The writer lags behind these readers often
    // enough to test their liveness; none of them may be taken for dead.
    const auto start = Clock::now();
    const std::uint64_t reclaimed_at_start = sh->writer.reclaimed_total.load();
    const bool healthy = writer_healthy_until(start + seconds_f(seconds / 2), sh->writer, writer);
    ASSERT_TRUE(healthy) << "writer failed with all readers alive: " << sh->writer.log.joined();
    EXPECT_EQ(sh->writer.dead_readers_reaped.load(), 0u) << "a live reader in another PID namespace was reaped";
    EXPECT_EQ(sh->writer.readers_online.load(), kReaders + 1);
    EXPECT_GT(sh->writer.reclaimed_total.load(), reclaimed_at_start) << "the writer never reclaimed";

    // Phase 2: SIGKILL the victim, pid 1 of its namespace.
    const std::uint64_t reclaimed_at_kill = sh->writer.reclaimed_total.load();
    ASSERT_EQ(::kill(sh->host_pid[kReaders].load(), SIGKILL), 0);
    expect_reaped_and_reclaiming(sh->writer, reclaimed_at_kill, Clock::now(), 15s);
    EXPECT_TRUE(poll_until([&] { return sh->writer.readers_online.load() == kReaders; }, 10s))
        << "readers_online " << sh->writer.readers_online.load();
    const bool still_healthy =
        writer_healthy_until(std::max(start + seconds_f(seconds), Clock::now() + 1s), sh->writer, writer);
    EXPECT_TRUE(still_healthy) << "writer failed after the kill: " << sh->writer.log.joined();
    EXPECT_EQ(sh->writer.dead_readers_reaped.load(), 1u) << "a surviving reader was reaped too";

    sh->stop_writer.store(1);
    const auto writer_status = writer.wait_for(30s);
    sh->stop_readers.store(1);
    EXPECT_TRUE(exited_ok(writer_status)) << "writer: " << describe_status(writer_status) << sh->writer.log.joined();
    for (unsigned i = 0; i < kReaders; ++i) {
        const auto st = readers[i].wait_for(30s);
        EXPECT_TRUE(exited_ok(st)) << "reader " << i << ": " << describe_status(st);
    }
    for (unsigned i = 0; i <= kReaders; ++i) {
        // The oracle: every answer judged against the next hops its prefix may
        // have, records checked whole; a record reused under a live reader shows here.
        EXPECT_EQ(sh->readers[i].invalid.load(), 0u) << "reader " << i << ":" << sh->readers[i].log.joined();
        EXPECT_GT(sh->readers[i].lookups.load(), 0u);
    }
    std::cout << "[   INFO   ] " << sh->writer.commits.load() << " commits, reclaimed "
              << sh->writer.reclaimed_total.load() << ", dead readers reaped "
              << sh->writer.dead_readers_reaped.load() << std::endl;
}

// A process that took every slot dies; registrations free its slots
// themselves (the writer is idle) and count the reaps.
TEST(Liveness, RegisteringReaderFreesTheSlotOfADeadReader) {
    SegmentGuard guard;
    const TableWriter::Options o{
        .capacity = Capacity{.max_routes = 64, .max_nexthops = 16, .reader_slots = 4, .max_groups = 16}};
    auto w = TableWriter::open(guard.name(), o);
    ASSERT_TRUE(IsOk(w));
    struct Flags {
        std::atomic<std::uint32_t> registered{0};
    };
    Shared<Flags> flags;
    ChildProcess holder = ChildProcess::spawn([&] {
        auto view = TableView::open(guard.name());
        if (!view)
            return kChildFailed;
        std::vector<ReaderSlot> slots;
        for (unsigned i = 0; i < o.capacity.reader_slots; ++i) {
            auto s = view->register_reader();
            if (!s)
                return kChildFailed;
            slots.push_back(std::move(*s));
        }
        flags->registered.store(1);
        for (;;)
            ::pause();
    });
    ASSERT_TRUE(poll_until([&] { return flags->registered.load() == 1; }, 10s));
    auto view = TableView::open(guard.name());
    ASSERT_TRUE(IsOk(view));
    EXPECT_TRUE(HasErrc(view->register_reader(), Errc::kCapacity)) << "slots of a live process were taken";
    EXPECT_EQ(view->stats().dead_readers_reaped, 0u);
    holder.kill_and_reap();
    std::vector<ReaderSlot> slots;
    for (unsigned i = 0; i < o.capacity.reader_slots; ++i) {
        auto slot = view->register_reader();
        ASSERT_TRUE(IsOk(slot)) << "slot " << i;
        slots.push_back(std::move(*slot));
        EXPECT_EQ(view->stats().dead_readers_reaped, i + 1);
    }
    EXPECT_TRUE(HasErrc(view->register_reader(), Errc::kCapacity)) << "a slot of this process was taken again";
}

}  // namespace
}  // namespace podfwd::lpm::test
