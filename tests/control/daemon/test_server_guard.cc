// Issue 17: the control socket's guards. Only a stale socket is ever
// replaced at --socket (a file, a symlink, a directory are refused and left
// as they were); a client of another uid is refused by its credentials
// (SO_PEERCRED), even when the socket's mode would let it connect; 64
// clients at once are all answered. (A client that never reads its
// answers: test_server.cc, ClientThatDoesNotReadStallsNobody and
// IdleAndStuckClientsAreClosedActiveOnesAreNot.)
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "control/daemon/event_loop.h"
#include "control/daemon/server.h"

namespace podfwd::control {
namespace {

namespace fs = std::filesystem;

sockaddr_un address(const std::string& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    return addr;
}

// A blocking client with a receive timeout, so no test can hang on it.
class Client {
public:
    explicit Client(const std::string& path) : fd_(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
        const sockaddr_un addr = address(path);
        connected_ = ::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
        ::fcntl(fd_, F_SETFL, O_NONBLOCK);
    }
    ~Client() { ::close(fd_); }
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;
    bool connected() const { return connected_; }
    bool send(std::string_view line) { return ::send(fd_, line.data(), line.size(), MSG_NOSIGNAL) == ssize_t(line.size()); }
    // Reads what is there; true at EOF.
    bool read_available() {
        char buf[4096];
        for (;;) {
            const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
            if (n > 0)
                received_.append(buf, static_cast<std::size_t>(n));
            else
                return n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
        }
    }
    const std::string& received() const { return received_; }

private:
    int fd_;
    bool connected_ = false;
    std::string received_;
};

class ServerGuard : public ::testing::Test {
protected:
    void SetUp() override {
        auto loop = EventLoop::create();
        ASSERT_TRUE(loop) << loop.error().message;
        loop_.emplace(std::move(*loop));
        dir_ = fs::temp_directory_path() / ("podfwd-test-guard-" + std::to_string(::getpid()));
        fs::remove_all(dir_);
        fs::create_directories(dir_);
        path_ = (dir_ / "control.sock").string();
    }
    void TearDown() override {
        server_.reset();
        fs::remove_all(dir_);
    }
    Result<std::unique_ptr<Server>> listen() {
        return Server::listen(path_, *loop_, [](std::string_view request) { return "re:" + std::string(request); });
    }
    bool run_until(const std::function<bool()>& done) {
        for (int i = 0; i < 500 && !done(); ++i)   // about 5 s at most
            EXPECT_TRUE(loop_->run_once(10));
        return done();
    }
    std::optional<EventLoop> loop_;
    fs::path dir_;
    std::string path_;
    std::unique_ptr<Server> server_;
};

TEST_F(ServerGuard, OnlyAStaleSocketIsReplaced) {
    const fs::path victim = dir_ / "victim";
    { std::ofstream(victim) << "precious\n"; }
    const auto refused = [&](const char* kind) {
        auto server = listen();
        ASSERT_FALSE(server) << kind << " at the socket's path was replaced";
        EXPECT_NE(server.error().message.find(kind), std::string::npos) << server.error().message;
        EXPECT_NE(server.error().message.find(path_), std::string::npos) << server.error().message;
    };
    { std::ofstream(path_) << "someone's file\n"; }
    refused("a regular file");
    EXPECT_TRUE(fs::is_regular_file(fs::symlink_status(path_)));
    fs::remove(path_);
    fs::create_symlink(victim, path_);
    refused("a symlink");
    EXPECT_TRUE(fs::is_symlink(path_));
    EXPECT_TRUE(fs::is_regular_file(victim));
    fs::remove(path_);
    fs::create_directory(path_);
    refused("a directory");
    EXPECT_TRUE(fs::is_directory(path_));
    fs::remove(path_);

    // A socket nobody listens on (a daemon killed with -9): replaced.
    const int stale = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const sockaddr_un addr = address(path_);
    ASSERT_EQ(::bind(stale, reinterpret_cast<const sockaddr*>(&addr), sizeof addr), 0);
    ::close(stale);
    auto server = listen();
    ASSERT_TRUE(server) << server.error().message;
    server_ = std::move(*server);
    Client client(path_);
    ASSERT_TRUE(client.connected());
    ASSERT_TRUE(client.send("hello\n"));
    EXPECT_TRUE(run_until([&] {
        client.read_available();
        return client.received() == "re:hello\n";
    }));
}

// The socket is opened to everyone here, so the refusal seen is the
// credential check's, not the file mode's.
TEST_F(ServerGuard, AClientOfAnotherUidIsRefused) {
    if (::geteuid() != 0)
        GTEST_SKIP() << "needs root (a child that becomes uid 65534)";
    auto server = listen();
    ASSERT_TRUE(server) << server.error().message;
    server_ = std::move(*server);
    ::chmod(dir_.c_str(), 0755);
    ::chmod(path_.c_str(), 0666);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        // 0: connected and refused (EOF, no answer); 2: could not connect; 3: answered.
        if (::setgid(65534) != 0 || ::setuid(65534) != 0)
            ::_exit(4);
        ::alarm(10);   // never outlive the test
        Client client(path_);
        if (!client.connected())
            ::_exit(2);
        (void)client.send("status\n");
        for (;;) {
            if (client.read_available())
                ::_exit(client.received().empty() ? 0 : 3);
            ::usleep(1000);   // a child of its own: nothing to poll for but the socket
        }
    }
    int status = 0;
    bool exited = false;   // waitpid reaps once: remembered, not asked again
    (void)run_until([&] { return exited = exited || ::waitpid(child, &status, WNOHANG) == child; });
    if (!exited) {
        ::kill(child, SIGKILL);
        ::waitpid(child, &status, 0);
    }
    ASSERT_TRUE(exited);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0) << "2: could not connect, 3: answered, 4: could not become uid 65534";
    // Root is still served.
    Client root(path_);
    ASSERT_TRUE(root.connected());
    ASSERT_TRUE(root.send("status\n"));
    EXPECT_TRUE(run_until([&] {
        root.read_available();
        return root.received() == "re:status\n";
    }));
}

TEST_F(ServerGuard, SixtyFourClientsAtOnceAreAllAnswered) {
    auto server = listen();
    ASSERT_TRUE(server) << server.error().message;
    server_ = std::move(*server);
    std::vector<std::unique_ptr<Client>> clients;
    for (std::size_t i = 0; i < Server::kMaxClients; ++i) {
        clients.push_back(std::make_unique<Client>(path_));
        ASSERT_TRUE(clients.back()->connected()) << i;
        ASSERT_TRUE(loop_->run_once(0));   // accepted as they come, like the daemon
    }
    for (std::size_t i = 0; i < clients.size(); ++i)
        ASSERT_TRUE(clients[i]->send("request " + std::to_string(i) + "\n"));
    EXPECT_TRUE(run_until([&] {
        for (auto& c : clients)
            c->read_available();
        return std::all_of(clients.begin(), clients.end(), [](const auto& c) { return c->received().ends_with('\n'); });
    }));
    for (std::size_t i = 0; i < clients.size(); ++i)
        EXPECT_EQ(clients[i]->received(), "re:request " + std::to_string(i) + "\n") << i;
}

}  // namespace
}  // namespace podfwd::control
