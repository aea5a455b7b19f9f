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
#include "control/ctl/format.h"
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

// Accepts one connection; for each reply reads one line and answers it
// (an empty reply closes instead, or with `silent` it says nothing until
// destroyed).
class FakeDaemon {
public:
    FakeDaemon(const std::string& path, std::string reply, bool silent = false)
        : FakeDaemon(path, std::vector<std::string>{std::move(reply)}, silent) {}
    FakeDaemon(const std::string& path, std::vector<std::string> replies, bool silent = false)
        : listener_(bound_socket(path)) {
        thread_ = std::thread([this, replies = std::move(replies), silent] {
            const int connection = accept(listener_, nullptr, nullptr);
            if (connection < 0)
                return;
            for (const std::string& reply : replies) {
                std::string line;
                char c;
                while (read(connection, &c, 1) == 1 && c != '\n')
                    line += c;
                received_.push_back(std::move(line));
                if (silent)
                    (void)read(connection, &c, 1);   // until the client gives up
                if (silent || reply.empty())
                    break;
                (void)write(connection, reply.data(), reply.size());
            }
            close(connection);
        });
    }
    ~FakeDaemon() {
        shutdown(listener_, SHUT_RDWR);   // wakes accept() if nobody came
        if (thread_.joinable())
            thread_.join();
        close(listener_);
    }
    json received() { return json::parse(received_all().at(0)); }
    // Every line received, once the exchange is over.
    const std::vector<std::string>& received_all() {
        thread_.join();
        return received_;
    }

private:
    int listener_;
    std::vector<std::string> received_;
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

json route_at(const char* prefix, const char* source = "cli") {
    json route = kRoute;
    route["prefix"] = prefix;
    route["source"] = source;
    return route;
}

std::string page(std::vector<json> routes, json next) {
    return json{{"ok", true}, {"routes", std::move(routes)}, {"next", std::move(next)}}.dump() + "\n";
}

// Three pages on one connection, each asked for after the previous one's
// `next`, shown as the one table (or the one JSON object) of all of them.
TEST(Client, RouteListFetchesEveryPage) {
    const std::vector<std::string> replies = {
        page({route_at("10.1.0.0/16"), route_at("10.1.0.0/16", "kernel")}, "10.1.0.0/16"),
        page({route_at("10.2.0.0/16")}, "10.2.0.0/16"),
        page({route_at("10.244.100.0/24")}, nullptr),
    };
    const json all = json{{"routes", {route_at("10.1.0.0/16"), route_at("10.1.0.0/16", "kernel"),
                                      route_at("10.2.0.0/16"), route_at("10.244.100.0/24")}}};
    for (const bool as_json : {false, true}) {
        TempDir dir;
        FakeDaemon daemon(dir.file("d.sock"), replies);
        std::vector<std::string> args = {"route", "list", "--source", "cli"};
        if (as_json)
            args.push_back("--json");
        const Outcome outcome = run_with(dir.file("d.sock"), args);
        const auto& received = daemon.received_all();
        ASSERT_EQ(received.size(), 3u);
        EXPECT_EQ(json::parse(received[0]), (json{{"op", "route.list"}, {"source", "cli"}}));
        EXPECT_EQ(json::parse(received[1]), (json{{"op", "route.list"}, {"source", "cli"}, {"after", "10.1.0.0/16"}}));
        EXPECT_EQ(json::parse(received[2]), (json{{"op", "route.list"}, {"source", "cli"}, {"after", "10.2.0.0/16"}}));
        EXPECT_EQ(outcome.status, kExitOk) << outcome.err;
        if (as_json) {
            EXPECT_EQ(outcome.out, all.dump() + "\n") << "one object, no 'next'";
        } else {
            EXPECT_EQ(outcome.out, format_result(View::kRouteList, all)) << "one table, aligned over every page";
            EXPECT_NE(outcome.out.find("10.244.100.0/24  cli"), std::string::npos) << outcome.out;
        }
    }
}

TEST(Client, RouteListFailingOnALaterPagePrintsNothing) {
    TempDir dir;
    FakeDaemon daemon(dir.file("d.sock"),
                      std::vector<std::string>{page({route_at("10.1.0.0/16")}, "10.1.0.0/16"),
                                               R"({"ok": false, "code": "busy", "error": "try again"})"
                                               "\n"});
    const Outcome outcome = run_with(dir.file("d.sock"), {"route", "list"});
    EXPECT_EQ(outcome.status, kExitFailed);
    EXPECT_EQ(outcome.err, "podfwdctl: try again\n");
    EXPECT_EQ(outcome.out, "");
}

// A `next` that is not a prefix, or does not move on, would loop forever.
TEST(Client, RouteListRefusesANextThatDoesNotMoveOn) {
    const std::vector<std::vector<std::string>> cases = {
        {page({route_at("10.1.0.0/16")}, 7)},
        {page({route_at("10.1.0.0/16")}, "10.1.0.1/16")},
        {page({route_at("10.2.0.0/16")}, "10.2.0.0/16"), page({route_at("10.2.0.0/16")}, "10.2.0.0/16")},
        {page({route_at("10.2.0.0/16")}, "10.2.0.0/16"), page({}, "10.1.0.0/16")},
    };
    for (const auto& replies : cases) {
        TempDir dir;
        FakeDaemon daemon(dir.file("d.sock"), replies);
        const Outcome outcome = run_with(dir.file("d.sock"), {"route", "list"});
        EXPECT_EQ(outcome.status, kExitFailed) << replies.back();
        EXPECT_NE(outcome.err.find("sent a malformed response: 'next' is "), std::string::npos) << outcome.err;
        EXPECT_EQ(outcome.out, "");
    }
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

TEST(Client, BgpPeers) {
    const json bgp = {{"asn", 64512},       {"router_id", "10.168.0.2"}, {"phase", "up"},
                      {"api", "unix:///run/podfwd/podfwd.gobgp.sock"}, {"gobgpd_pid", 1234},
                      {"gobgpd_starts", 1}, {"routes", 1},             {"stale", 0},
                      {"refused", 0},       {"accept", {"10.244.0.0/16"}}, {"last_error", nullptr}};
    const json peers = {{{"address", "127.0.0.10"}, {"port", 179}, {"remote_as", 64512}, {"passive", false},
                         {"state", "established"}, {"uptime_s", 192}, {"received", 1}, {"accepted", 1},
                         {"refused", 0}, {"advertised", 1}, {"end_of_rib", true}, {"last_error", nullptr}}};
    const std::string reply = json{{"ok", true}, {"bgp", bgp}, {"peers", peers}}.dump() + "\n";
    {
        TempDir dir;
        FakeDaemon daemon(dir.file("d.sock"), reply);
        const Outcome outcome = run_with(dir.file("d.sock"), {"bgp", "peers"});
        EXPECT_EQ(daemon.received(), (json{{"op", "bgp.peers"}}));
        EXPECT_EQ(outcome.status, kExitOk) << outcome.err;
        EXPECT_EQ(outcome.out,
                  "AS 64512, router id 10.168.0.2, gobgpd pid 1234 (started 1×), phase up, 1 routes (0 stale), "
                  "0 refused, accept 10.244.0.0/16\n"
                  "PEER           AS  STATE        UPTIME  RECEIVED  ACCEPTED  REFUSED  ADVERTISED  LAST-ERROR\n"
                  "127.0.0.10  64512  established   3m12s         1         1        0           1  -\n");
        EXPECT_EQ(outcome.err, "");
    }
    {
        TempDir dir;
        FakeDaemon daemon(dir.file("d.sock"), reply);
        const Outcome outcome = run_with(dir.file("d.sock"), {"bgp", "peers", "--json"});
        EXPECT_EQ(outcome.status, kExitOk) << outcome.err;
        EXPECT_EQ(outcome.out, (json{{"bgp", bgp}, {"peers", peers}}.dump() + "\n"));
    }
}

TEST(Client, BgpNotConfigured) {
    for (const bool as_json : {false, true}) {
        TempDir dir;
        FakeDaemon daemon(dir.file("d.sock"),
                          R"x({"ok":false,"code":"not_found","error":"BGP is not configured (--bgp-as)"})x"
                          "\n");
        std::vector<std::string> args = {"bgp", "peers"};
        if (as_json)
            args.push_back("--json");
        const Outcome outcome = run_with(dir.file("d.sock"), args);
        EXPECT_EQ(outcome.status, kExitFailed);
        EXPECT_EQ(outcome.err, "podfwdctl: BGP is not configured (--bgp-as)\n");
        EXPECT_EQ(outcome.out, "");
    }
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
