// podfwdctl against a fake podfwd-control: the line it sends, how it shows
// the answer, and every way the exchange can fail (no daemon, a refusing
// daemon, a silent one, a garbled one).
#include <gtest/gtest.h>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "control/ctl/client.h"
#include "control/ctl/run.h"
#include "tests/control/ctl/run_captured.h"

namespace podfwd::ctl {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

class TempDir {
public:
    TempDir() {
        std::string pattern = (fs::temp_directory_path() / "podfwdctl-test.XXXXXX").string();
        path_ = mkdtemp(pattern.data());
    }
    ~TempDir() { fs::remove_all(path_); }
    std::string file(const char* name) const { return (fs::path(path_) / name).string(); }

private:
    std::string path_;
};

// A Unix stream socket bound to `path`, listening unless told otherwise.
int bound_socket(const std::string& path, bool listening = true) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::memcpy(address.sun_path, path.data(), path.size());
    const int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    EXPECT_EQ(bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address), 0) << std::strerror(errno);
    if (listening) {
        EXPECT_EQ(listen(fd, 1), 0);
    }
    return fd;
}

// Accepts one connection, reads one line, answers with `reply` (unless
// empty: then it closes, or with `silent` says nothing until destroyed).
class FakeDaemon {
public:
    FakeDaemon(const std::string& path, std::string reply, bool silent = false)
        : listener_(bound_socket(path)) {
        thread_ = std::thread([this, reply = std::move(reply), silent] {
            const int connection = accept(listener_, nullptr, nullptr);
            if (connection < 0)
                return;
            char c;
            while (read(connection, &c, 1) == 1 && c != '\n')
                received_ += c;
            if (silent)
                (void)read(connection, &c, 1);   // until the client gives up
            else if (!reply.empty())
                (void)write(connection, reply.data(), reply.size());
            close(connection);
        });
    }
    ~FakeDaemon() {
        shutdown(listener_, SHUT_RDWR);   // wakes accept() if nobody came
        if (thread_.joinable())
            thread_.join();
        close(listener_);
    }
    json received() {
        thread_.join();
        return json::parse(received_);
    }

private:
    int listener_;
    std::string received_;
    std::thread thread_;
};

Outcome run_with(const std::string& socket, std::vector<std::string> args,
                 std::chrono::milliseconds timeout = kDaemonTimeout) {
    args.insert(args.begin(), {"--socket", socket});
    Environment environment;
    environment.daemon_timeout = timeout;
    return run_captured(args, environment);
}

const json kRoute = {{"prefix", "10.244.1.0/24"}, {"source", "cli"},          {"preference", 10},
                     {"via", "192.168.1.2"},      {"mode", "ipip"},           {"effective_mode", "ipip"},
                     {"best", true},              {"installed", true},        {"nexthop_id", 1},
                     {"l2_nexthop", "192.168.1.2"}, {"mac", nullptr},         {"vtep_mac", nullptr}};

TEST(Client, SendsTheRequestAndShowsTheResult) {
    TempDir dir;
    FakeDaemon daemon(dir.file("d.sock"), json{{"ok", true}, {"route", kRoute}}.dump() + "\n");
    const Outcome outcome = run_with(dir.file("d.sock"), {"route", "add", "10.244.1.0/24", "via", "192.168.1.2",
                                                          "mode", "ipip"});
    EXPECT_EQ(daemon.received(),
              (json{{"op", "route.add"}, {"prefix", "10.244.1.0/24"}, {"via", "192.168.1.2"}, {"mode", "ipip"}}));
    EXPECT_EQ(outcome.status, kExitOk) << outcome.err;
    EXPECT_EQ(outcome.out,
              "added route 10.244.1.0/24 via 192.168.1.2 mode ipip [cli, preference 10]: best, installed\n");
    EXPECT_EQ(outcome.err, "");
}

TEST(Client, JsonIsTheResultWithoutOk) {
    TempDir dir;
    FakeDaemon daemon(dir.file("d.sock"), json{{"ok", true}, {"routes", {kRoute}}}.dump() + "\n");
    const Outcome outcome = run_with(dir.file("d.sock"), {"route", "list", "--json"});
    EXPECT_EQ(outcome.status, kExitOk) << outcome.err;
    EXPECT_EQ(json::parse(outcome.out), (json{{"routes", {kRoute}}}));
    EXPECT_EQ(outcome.out.find('\n'), outcome.out.size() - 1);   // one line
}

TEST(Client, DaemonErrorIsOneLineAndExitOne) {
    TempDir dir;
    FakeDaemon daemon(dir.file("d.sock"),
                      R"({"ok": false, "code": "not_found", "error": "no cli route for 10.9.0.0/16"})"
                      "\n");
    const Outcome outcome = run_with(dir.file("d.sock"), {"route", "del", "10.9.0.0/16"});
    EXPECT_EQ(outcome.status, kExitFailed);
    EXPECT_EQ(outcome.err, "podfwdctl: no cli route for 10.9.0.0/16\n");
    EXPECT_EQ(outcome.out, "");
}

TEST(Client, NoDaemon) {
    TempDir dir;
    const std::string path = dir.file("none.sock");
    const Outcome outcome = run_with(path, {"route", "list"});
    EXPECT_EQ(outcome.status, kExitFailed);
    EXPECT_EQ(outcome.err,
              "podfwdctl: cannot reach podfwd-control at " + path + ": No such file or directory (is it running?)\n");
}

TEST(Client, SocketLeftByADeadDaemon) {
    TempDir dir;
    const std::string path = dir.file("dead.sock");
    close(bound_socket(path, /*listening=*/false));   // connect is refused
    const Outcome outcome = run_with(path, {"status"});
    EXPECT_EQ(outcome.status, kExitFailed);
    EXPECT_EQ(outcome.err,
              "podfwdctl: cannot reach podfwd-control at " + path + ": Connection refused (is it running?)\n");
}

TEST(Client, SilentDaemonTimesOut) {
    TempDir dir;
    FakeDaemon daemon(dir.file("d.sock"), "", /*silent=*/true);
    const auto start = std::chrono::steady_clock::now();
    const Outcome outcome = run_with(dir.file("d.sock"), {"status"}, std::chrono::milliseconds(200));
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
    EXPECT_EQ(outcome.status, kExitFailed);
    EXPECT_EQ(outcome.err, "podfwdctl: podfwd-control at " + dir.file("d.sock") + " did not answer within 200 ms\n");
}

TEST(Client, DaemonClosesWithoutAnswering) {
    TempDir dir;
    FakeDaemon daemon(dir.file("d.sock"), "");
    const Outcome outcome = run_with(dir.file("d.sock"), {"status"});
    EXPECT_EQ(outcome.status, kExitFailed);
    EXPECT_NE(outcome.err.find("closed the connection without answering"), std::string::npos) << outcome.err;
}

TEST(Client, MalformedResponse) {
    for (const char* reply : {"not json\n", "[1,2]\n", "{\"routes\": []}\n"}) {
        TempDir dir;
        FakeDaemon daemon(dir.file("d.sock"), reply);
        const Outcome outcome = run_with(dir.file("d.sock"), {"route", "list"});
        EXPECT_EQ(outcome.status, kExitFailed) << reply;
        EXPECT_NE(outcome.err.find("sent a malformed response"), std::string::npos) << outcome.err;
    }
}

TEST(Client, SeveralRequestsOnOneConnection) {
    TempDir dir;
    const std::string path = dir.file("d.sock");
    const int listener = bound_socket(path);
    // Both answers in one write: the client must split them at the newline.
    std::thread daemon([listener] {
        const int connection = accept(listener, nullptr, nullptr);
        char buffer[256];
        (void)read(connection, buffer, sizeof buffer);
        const std::string replies = "{\"ok\":true,\"n\":1}\n{\"ok\":true,\"n\":2}\n";
        (void)write(connection, replies.data(), replies.size());
        (void)read(connection, buffer, sizeof buffer);
        close(connection);
    });
    // No ASSERTs until the thread is joined.
    if (auto client = Client::connect(path); client) {
        auto first = client->call(json{{"op", "status"}});
        auto second = client->call(json{{"op", "status"}});
        EXPECT_TRUE(first && second);
        if (first && second) {
            EXPECT_EQ((*first)["n"], 1);
            EXPECT_EQ((*second)["n"], 2);
        }
    } else {
        ADD_FAILURE() << client.error().message;
    }   // the client closes: the daemon's last read ends
    shutdown(listener, SHUT_RDWR);
    daemon.join();
    close(listener);
}

}  // namespace
}  // namespace podfwd::ctl
