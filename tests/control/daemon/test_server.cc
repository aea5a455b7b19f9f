// The event loop's timers and dispatch, and the control socket against real
// clients: a client that does not read stalls nobody, over-long lines are
// refused and the connection closed after the refusal is delivered, idle and
// stuck clients are closed, a last request ended by EOF is answered. The test
// drives the loop itself (run_once with short timeouts, bounded iterations).
#include <gtest/gtest.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>

#include "control/daemon/event_loop.h"
#include "control/daemon/server.h"

namespace podfwd::control {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

const std::string kLineTooLong =
    R"({"ok":false,"code":"invalid_argument","error":"request line longer than 64 KiB"})" "\n";

bool fd_is_open(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

// ---------------------------------------------------------------- timers

class Loop : public ::testing::Test {
protected:
    void SetUp() override {
        auto loop = EventLoop::create();
        ASSERT_TRUE(loop) << loop.error().message;
        loop_.emplace(std::move(*loop));
    }
    EventLoop::TimerId timer(std::chrono::milliseconds first, std::chrono::milliseconds interval,
                             EventLoop::Callback callback) {
        auto id = loop_->add_timer(first, interval, std::move(callback));
        EXPECT_TRUE(id) << id.error().message;
        return id ? *id : -1;
    }
    // Runs the loop until done() (true) or about 5 s have passed (false).
    bool run_until(const std::function<bool()>& done) {
        for (int i = 0; i < 500; ++i) {
            if (done())
                return true;
            EXPECT_TRUE(loop_->run_once(10));
        }
        return done();
    }
    std::optional<EventLoop> loop_;
};

TEST_F(Loop, PeriodicAndOneShotTimersFire) {
    int once = 0, periodic = 0;
    const EventLoop::TimerId once_id = timer(5ms, 0ms, [&] { ++once; });
    timer(10ms, 10ms, [&] { ++periodic; });
    ASSERT_TRUE(run_until([&] { return periodic >= 3; }));
    EXPECT_EQ(once, 1);
    EXPECT_FALSE(fd_is_open(once_id)) << "a one-shot timer closes its timerfd once it fired";

    // Its id is no longer the loop's: cancelling it must not close the fd
    // that now has its number.
    int pipe_fds[2];
    ASSERT_EQ(::pipe(pipe_fds), 0);
    loop_->cancel(once_id);
    EXPECT_TRUE(fd_is_open(pipe_fds[0]));
    EXPECT_TRUE(fd_is_open(pipe_fds[1]));
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
}

TEST_F(Loop, CancelledTimersDoNotFire) {
    int cancelled = 0, self_cancelled = 0, reference = 0;
    const EventLoop::TimerId id = timer(5ms, 5ms, [&] { ++cancelled; });
    loop_->cancel(id);
    EXPECT_FALSE(fd_is_open(id));
    EventLoop::TimerId self = -1;
    self = timer(5ms, 5ms, [&] {
        ++self_cancelled;
        loop_->cancel(self);
    });
    timer(60ms, 0ms, [&] { ++reference; });
    ASSERT_TRUE(run_until([&] { return reference == 1; }));
    EXPECT_EQ(cancelled, 0);
    EXPECT_EQ(self_cancelled, 1) << "a periodic timer that cancelled itself in its callback";
}

TEST_F(Loop, OneShotTimerThatCancelsItselfAndAddsAnother) {
    int first = 0, second = 0;
    EventLoop::TimerId first_id = -1, second_id = -1;
    first_id = timer(5ms, 0ms, [&] {
        ++first;
        loop_->cancel(first_id);
        second_id = timer(5ms, 0ms, [&] { ++second; });   // likely re-uses first_id's fd number
    });
    ASSERT_TRUE(run_until([&] { return second == 1; })) << "the loop removed the new timer in place of the old";
    EXPECT_EQ(first, 1);
    EXPECT_EQ(second_id, first_id) << "the fd number was not re-used: this test did not test re-use";
}

// Two fds ready in one batch; whichever callback runs first unwatches and
// closes the other and watches a new fd that re-uses its number: the stale
// event must reach neither the old callback nor the new one.
TEST_F(Loop, CallbackUnwatchesAnotherFdOfTheSameBatch) {
    int p[2], q[2];
    ASSERT_EQ(::pipe(p), 0);
    ASSERT_EQ(::pipe(q), 0);
    ASSERT_EQ(::write(p[1], "x", 1), 1);
    ASSERT_EQ(::write(q[1], "x", 1), 1);
    int ran = 0, stale = 0, reused_number = -1;
    int fresh[2] = {-1, -1};
    const auto take_over = [&](int other_fd) {
        ++ran;
        loop_->unwatch(other_fd);
        ::close(other_fd);
        ASSERT_EQ(::pipe(fresh), 0);
        reused_number = fresh[0] == other_fd ? other_fd : -1;
        ASSERT_TRUE(loop_->watch(fresh[0], [&] { ++stale; }));
    };
    ASSERT_TRUE(loop_->watch(p[0], [&] { take_over(q[0]); }));
    ASSERT_TRUE(loop_->watch(q[0], [&] { take_over(p[0]); }));
    ASSERT_TRUE(loop_->run_once(1000));
    EXPECT_EQ(ran, 1);
    EXPECT_EQ(stale, 0);
    EXPECT_NE(reused_number, -1) << "the fd number was not re-used: this test did not test re-use";
    // Whichever survived: close everything still open.
    for (int fd : {p[0], q[0]})
        if (fd != fresh[0] && fd_is_open(fd)) {
            loop_->unwatch(fd);
            ::close(fd);
        }
    loop_->unwatch(fresh[0]);
    for (int fd : {p[1], q[1], fresh[0], fresh[1]})
        ::close(fd);
}

// A timer and an fd ready in one batch, each callback removing the other.
TEST_F(Loop, TimerAndFdRemoveEachOtherInOneBatch) {
    int p[2];
    ASSERT_EQ(::pipe(p), 0);
    ASSERT_EQ(::write(p[1], "x", 1), 1);
    int ran = 0;
    bool pipe_open = true;
    EventLoop::TimerId id = -1;
    id = timer(1ms, 1ms, [&] {
        ++ran;
        loop_->unwatch(p[0]);
        ::close(p[0]);
        pipe_open = false;
    });
    ASSERT_TRUE(loop_->watch(p[0], [&] {
        ++ran;
        loop_->cancel(id);
    }));
    // The timer's id is its timerfd: wait until it expired, without reading it.
    pollfd expired{id, POLLIN, 0};
    ASSERT_EQ(::poll(&expired, 1, 1000), 1);
    ASSERT_TRUE(loop_->run_once(0));
    EXPECT_EQ(ran, 1);
    if (pipe_open) {
        loop_->unwatch(p[0]);
        ::close(p[0]);
    } else {
        loop_->cancel(id);
    }
    ::close(p[1]);
}

TEST_F(Loop, ModifyChangesTheEventsWatched) {
    int pair[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, pair), 0);
    std::uint32_t seen = 0;
    ASSERT_TRUE(loop_->watch_io(pair[0], EPOLLIN, [&](std::uint32_t events) { seen |= events; }));
    ASSERT_TRUE(loop_->run_once(0));
    EXPECT_EQ(seen, 0u);
    ASSERT_TRUE(loop_->modify(pair[0], EPOLLOUT));
    ASSERT_TRUE(loop_->run_once(1000));
    EXPECT_EQ(seen, std::uint32_t{EPOLLOUT});
    EXPECT_FALSE(loop_->modify(pair[1], EPOLLIN)) << "not watched";
    loop_->unwatch(pair[0]);
    ::close(pair[0]);
    ::close(pair[1]);
}

// ---------------------------------------------------------------- server

// A non-blocking client; the test reads and writes it between loop turns.
class TestClient {
public:
    explicit TestClient(const std::string& path) {
        fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
        connected_ = ::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
    }
    ~TestClient() { ::close(fd_); }
    TestClient(const TestClient&) = delete;
    TestClient& operator=(const TestClient&) = delete;

    bool connected() const { return connected_; }
    // Sends what the socket takes now; returns how much.
    std::size_t send_some(std::string_view data) {
        const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
        return n > 0 ? static_cast<std::size_t>(n) : 0;
    }
    void shutdown_sending() { ::shutdown(fd_, SHUT_WR); }
    // Reads everything available now.
    void read_available() {
        char buf[65536];
        while (!eof_ && error_ == 0) {
            const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
            if (n > 0)
                received_.append(buf, static_cast<std::size_t>(n));
            else if (n == 0)
                eof_ = true;
            else if (errno != EINTR) {
                if (errno != EAGAIN && errno != EWOULDBLOCK)
                    error_ = errno;
                return;
            }
        }
    }
    // The daemon closed its end (seen without reading).
    bool hung_up() const {
        pollfd p{fd_, 0, 0};
        return ::poll(&p, 1, 0) == 1 && (p.revents & POLLHUP);
    }
    const std::string& received() const { return received_; }
    bool eof() const { return eof_; }
    int error() const { return error_; }

private:
    int fd_ = -1;
    bool connected_ = false;
    std::string received_;
    bool eof_ = false;
    int error_ = 0;
};

class ServerTest : public Loop {
protected:
    void SetUp() override {
        Loop::SetUp();
        dir_ = std::filesystem::temp_directory_path() / ("podfwd-test-server-" + std::to_string(::getpid()));
        std::filesystem::create_directories(dir_);
        path_ = (dir_ / "control.sock").string();
    }
    void TearDown() override {
        server_.reset();
        std::filesystem::remove_all(dir_);
    }
    void start(std::chrono::milliseconds idle_timeout = Server::kDefaultIdleTimeout) {
        auto server = Server::listen(path_, *loop_, [this](std::string_view request) { return respond(request); },
                                     idle_timeout);
        ASSERT_TRUE(server) << server.error().message;
        server_ = std::move(*server);
    }
    // "pad ..." gets about 1 KiB, "huge" 1 MiB, anything else "re:" and itself.
    std::string respond(std::string_view request) {
        ++handled_;
        if (request == "huge")
            return std::string(1 << 20, 'h');
        std::string response = "re:" + std::string(request);
        if (request.starts_with("pad "))
            response += ' ' + std::string(1024, '.');
        return response;
    }
    static std::string expected(std::string_view request) {
        std::string response = "re:" + std::string(request);
        if (request.starts_with("pad "))
            response += ' ' + std::string(1024, '.');
        return response + '\n';
    }
    // Sends all of `data` while the loop runs.
    void send_all(TestClient& client, std::string_view data) {
        ASSERT_TRUE(run_until([&] {
            data.remove_prefix(client.send_some(data));
            return data.empty();
        }));
    }

    std::filesystem::path dir_;
    std::string path_;
    std::unique_ptr<Server> server_;
    int handled_ = 0;
};

TEST_F(ServerTest, AnswersInOrder) {
    start();
    TestClient client(path_);
    ASSERT_TRUE(client.connected());
    send_all(client, "a\nb\n\nc\n");
    const std::string want = expected("a") + expected("b") + expected("") + expected("c");
    ASSERT_TRUE(run_until([&] {
        client.read_available();
        return client.received().size() >= want.size();
    }));
    EXPECT_EQ(client.received(), want);
    EXPECT_FALSE(client.eof());
}

// A client sends 20000 requests (about 20 MiB of answers) and reads nothing:
// the daemon answers up to its output bound, then stops reading it, and
// another client is answered meanwhile; then the first reads all, in order.
TEST_F(ServerTest, ClientThatDoesNotReadStallsNobody) {
    start();
    constexpr int kRequests = 20000;
    std::string requests, want;
    for (int i = 0; i < kRequests; ++i) {
        std::string request = "pad " + std::to_string(i);
        request.resize(60, '-');   // longer requests: the socket buffers hold fewer of them
        requests += request + '\n';
        want += expected(request);
    }
    TestClient greedy(path_);
    ASSERT_TRUE(greedy.connected());
    std::string_view unsent = requests;
    for (int idle_turns = 0; idle_turns < 50 && !unsent.empty();) {
        const std::size_t n = greedy.send_some(unsent);
        unsent.remove_prefix(n);
        idle_turns = n == 0 ? idle_turns + 1 : 0;
        ASSERT_TRUE(loop_->run_once(n == 0 ? 10 : 0));
    }
    EXPECT_FALSE(unsent.empty()) << "the daemon read every request of a client that reads no answer";
    EXPECT_LT(handled_, 8000) << "answers held for a client that does not read exceed the bound";
    EXPECT_GT(static_cast<std::size_t>(handled_) * (want.size() / kRequests), Server::kMaxPendingOutput)
        << "the daemon stopped answering before its output bound";

    TestClient other(path_);
    ASSERT_TRUE(other.connected());
    ASSERT_EQ(other.send_some("status\n"), 7u);
    int turns = 0;
    while (other.received().size() < expected("status").size() && turns < 20) {
        ASSERT_TRUE(loop_->run_once(10));
        other.read_available();
        ++turns;
    }
    EXPECT_EQ(other.received(), expected("status")) << "after " << turns << " turns";

    // The greedy client reads now (and sends the rest).
    for (int i = 0; i < 100000 && greedy.received().size() < want.size() && greedy.error() == 0 && !greedy.eof();
         ++i) {
        unsent.remove_prefix(greedy.send_some(unsent));
        ASSERT_TRUE(loop_->run_once(0));
        greedy.read_available();
    }
    EXPECT_TRUE(unsent.empty());
    ASSERT_EQ(greedy.received().size(), want.size()) << "eof " << greedy.eof() << ", error " << greedy.error();
    if (greedy.received() != want) {
        const auto mismatch = std::mismatch(want.begin(), want.end(), greedy.received().begin());
        const auto at = static_cast<std::size_t>(mismatch.first - want.begin());
        ADD_FAILURE() << "answers differ from byte " << at << ": '" << greedy.received().substr(at, 80)
                      << "' instead of '" << want.substr(at, 80) << "'";
    }
    EXPECT_EQ(handled_, kRequests + 1);
}

TEST_F(ServerTest, OverLongLineWithoutNewlineIsRefusedThenClosed) {
    start();
    TestClient client(path_);
    ASSERT_TRUE(client.connected());
    send_all(client, std::string(Server::kMaxLine + 1000, 'x'));
    ASSERT_TRUE(run_until([&] {
        client.read_available();
        return client.eof() || client.error() != 0;
    }));
    EXPECT_EQ(client.received(), kLineTooLong);
    EXPECT_TRUE(client.eof()) << "error " << std::strerror(client.error());
    EXPECT_EQ(handled_, 0);
}

TEST_F(ServerTest, OverLongLineIsRefusedAndNothingAfterItAnswered) {
    start();
    TestClient client(path_);
    ASSERT_TRUE(client.connected());
    send_all(client, "first\n" + std::string(Server::kMaxLine + 1, 'x') + "\nsecond\n");
    ASSERT_TRUE(run_until([&] {
        client.read_available();
        return client.eof() || client.error() != 0;
    }));
    EXPECT_EQ(client.received(), expected("first") + kLineTooLong);
    EXPECT_EQ(handled_, 1);

    // A line of exactly kMaxLine is fine.
    TestClient fine(path_);
    const std::string line(Server::kMaxLine, 'y');
    send_all(fine, line + "\n");
    ASSERT_TRUE(run_until([&] {
        fine.read_available();
        return fine.received().size() >= expected(line).size();
    }));
    EXPECT_EQ(fine.received(), expected(line));
    EXPECT_FALSE(fine.eof());
}

// The refusal comes after megabytes of answers the client had not read yet:
// the connection closes only once all of it is written.
TEST_F(ServerTest, RefusalIsDeliveredAfterPendingAnswers) {
    start();
    TestClient client(path_);
    ASSERT_TRUE(client.connected());
    std::string requests, want;
    for (int i = 0; i < 3000; ++i) {
        requests += "pad " + std::to_string(i) + '\n';
        want += expected("pad " + std::to_string(i));
    }
    send_all(client, requests + std::string(Server::kMaxLine + 1, 'z'));
    ASSERT_TRUE(run_until([&] { return handled_ == 3000; }));
    for (int i = 0; i < 10; ++i)
        ASSERT_TRUE(loop_->run_once(0));
    ASSERT_TRUE(run_until([&] {
        client.read_available();
        return client.eof() || client.error() != 0;
    }));
    EXPECT_EQ(client.received().size(), want.size() + kLineTooLong.size());
    EXPECT_TRUE(client.received() == want + kLineTooLong) << "answers, then the refusal";
    EXPECT_TRUE(client.eof()) << "error " << std::strerror(client.error());
}

TEST_F(ServerTest, IdleAndStuckClientsAreClosedActiveOnesAreNot) {
    constexpr auto kIdle = 200ms;
    start(kIdle);
    const auto started = Clock::now();
    TestClient idle(path_), active(path_), stuck(path_);
    ASSERT_TRUE(idle.connected() && active.connected() && stuck.connected());
    // 2 MiB of answers, far more than the socket holds: they stay pending.
    ASSERT_EQ(stuck.send_some("huge\nhuge\n"), 10u);

    int pings = 0;
    Clock::duration idle_closed_after{}, stuck_closed_after{};
    while (Clock::now() - started < 3 * kIdle + 5s) {
        ASSERT_TRUE(loop_->run_once(10));
        // The active client sends a request whenever its last was answered.
        active.read_available();
        if (active.received().size() == static_cast<std::size_t>(pings) * expected("ping").size())
            pings += active.send_some("ping\n") == 5 ? 1 : 0;
        idle.read_available();
        if (idle_closed_after == Clock::duration{} && (idle.eof() || idle.error() != 0))
            idle_closed_after = Clock::now() - started;
        if (stuck_closed_after == Clock::duration{} && stuck.hung_up())
            stuck_closed_after = Clock::now() - started;
        if (Clock::now() - started >= 3 * kIdle && idle_closed_after != Clock::duration{} &&
            stuck_closed_after != Clock::duration{})
            break;
    }
    EXPECT_TRUE(idle.eof()) << "the idle client was not closed (error " << idle.error() << ")";
    EXPECT_EQ(idle.received(), "");
    EXPECT_GE(idle_closed_after, kIdle);
    EXPECT_NE(stuck_closed_after, Clock::duration{}) << "a client that reads no answer was not closed";
    EXPECT_GE(stuck_closed_after, kIdle);

    active.read_available();
    EXPECT_FALSE(active.eof() || active.error() != 0) << "the active client was closed";
    EXPECT_GT(pings, 10);
    std::string want;
    for (int i = 0; i < pings; ++i)
        want += expected("ping");
    ASSERT_TRUE(run_until([&] {
        active.read_available();
        return active.received().size() >= want.size();
    }));
    EXPECT_EQ(active.received(), want);
    EXPECT_EQ(handled_, 2 + pings);

    // What the stuck client gets: part of the first answer, then the end.
    stuck.read_available();
    EXPECT_LT(stuck.received().size(), std::size_t{1} << 20);
    EXPECT_TRUE(stuck.eof() || stuck.error() == ECONNRESET);
}

TEST_F(ServerTest, LastRequestEndedByEofIsAnswered) {
    start();
    TestClient client(path_), solo(path_);
    ASSERT_TRUE(client.connected() && solo.connected());
    send_all(client, "one\ntwo");
    client.shutdown_sending();
    send_all(solo, "only");
    solo.shutdown_sending();
    ASSERT_TRUE(run_until([&] {
        client.read_available();
        solo.read_available();
        return (client.eof() || client.error() != 0) && (solo.eof() || solo.error() != 0);
    }));
    EXPECT_EQ(client.received(), expected("one") + expected("two"));
    EXPECT_TRUE(client.eof());
    EXPECT_EQ(solo.received(), expected("only"));
    EXPECT_TRUE(solo.eof());

    // Shutting down with nothing pending just closes.
    TestClient quiet(path_);
    quiet.shutdown_sending();
    ASSERT_TRUE(run_until([&] {
        quiet.read_available();
        return quiet.eof() || quiet.error() != 0;
    }));
    EXPECT_EQ(quiet.received(), "");
    EXPECT_EQ(handled_, 3);
}

}  // namespace
}  // namespace podfwd::control
