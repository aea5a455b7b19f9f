// The command line: the request each command sends (field names as in
// control/PROTOCOL.md), and every usage error's message and exit status.
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "control/ctl/commands.h"
#include "control/ctl/run.h"
#include "tests/control/ctl/run_captured.h"

namespace podfwd::ctl {
namespace {

using nlohmann::json;

Result<Invocation> parse(std::vector<std::string> args, std::optional<std::string> socket_env = std::nullopt) {
    return parse_command_line(args, std::move(socket_env));
}

json request_of(std::vector<std::string> args) {
    auto invocation = parse(std::move(args));
    EXPECT_TRUE(invocation) << invocation.error().message;
    const auto* command = std::get_if<DaemonCommand>(&invocation->command);
    EXPECT_NE(command, nullptr);
    return command != nullptr ? command->request : json();
}

Outcome run_with(const std::vector<std::string>& args) {
    Environment environment;
    // Usage errors fail before touching anything; should one not, it finds nothing.
    environment.shm_dir = "/nonexistent-shm";
    environment.socket_env = "/nonexistent/podfwd.sock";
    return run_captured(args, environment);
}

TEST(Requests, RouteAdd) {
    EXPECT_EQ(request_of({"route", "add", "10.244.1.0/24", "via", "192.168.1.2"}),
              (json{{"op", "route.add"}, {"prefix", "10.244.1.0/24"}, {"via", "192.168.1.2"}}));
    EXPECT_EQ(request_of({"route", "add", "10.244.1.0/24", "via", "192.168.1.2", "mode", "ipip"}),
              (json{{"op", "route.add"}, {"prefix", "10.244.1.0/24"}, {"via", "192.168.1.2"}, {"mode", "ipip"}}));
    EXPECT_EQ(request_of({"route", "add", "10.244.1.0/24", "via", "192.168.1.2", "mode", "cross-subnet"})["mode"],
              "cross-subnet");
    EXPECT_EQ(request_of({"route", "add", "10.244.1.0/24", "mode", "vxlan", "vtep-mac", "02:AA:bb:00:00:01", "vni",
                          "4096", "via", "192.168.1.2"}),
              (json{{"op", "route.add"},
                    {"prefix", "10.244.1.0/24"},
                    {"via", "192.168.1.2"},
                    {"mode", "vxlan"},
                    {"vni", 4096},
                    {"vtep_mac", "02:aa:bb:00:00:01"}}));
    // A bare address is a /32.
    EXPECT_EQ(request_of({"route", "add", "10.244.1.7", "via", "192.168.1.2"})["prefix"], "10.244.1.7/32");
}

TEST(Requests, RouteAddLocalAndBlackhole) {
    EXPECT_EQ(request_of({"route", "add", "10.244.0.0/24", "local"}),
              (json{{"op", "route.add"}, {"prefix", "10.244.0.0/24"}, {"mode", "local"}}));
    EXPECT_EQ(request_of({"route", "add", "10.66.0.0/16", "blackhole"}),
              (json{{"op", "route.add"}, {"prefix", "10.66.0.0/16"}, {"mode", "blackhole"}}));
}

TEST(Requests, EveryOtherCommand) {
    EXPECT_EQ(request_of({"route", "del", "10.244.1.0/24"}), (json{{"op", "route.del"}, {"prefix", "10.244.1.0/24"}}));
    EXPECT_EQ(request_of({"route", "list"}), (json{{"op", "route.list"}}));
    EXPECT_EQ(request_of({"route", "list", "--source", "bgp"}), (json{{"op", "route.list"}, {"source", "bgp"}}));
    EXPECT_EQ(request_of({"--source", "kernel", "route", "list"}), (json{{"op", "route.list"}, {"source", "kernel"}}));
    EXPECT_EQ(request_of({"route", "get", "10.244.1.9"}), (json{{"op", "route.get"}, {"ip", "10.244.1.9"}}));
    EXPECT_EQ(request_of({"neigh", "list"}), (json{{"op", "neigh.list"}}));
    EXPECT_EQ(request_of({"neigh", "add", "192.168.1.2", "02-00-00-00-02-02"}),
              (json{{"op", "neigh.add"}, {"ip", "192.168.1.2"}, {"mac", "02:00:00:00:02:02"}}));
    EXPECT_EQ(request_of({"neigh", "del", "192.168.1.2"}), (json{{"op", "neigh.del"}, {"ip", "192.168.1.2"}}));
    EXPECT_EQ(request_of({"sources"}), (json{{"op", "sources"}}));
    EXPECT_EQ(request_of({"status", "--json"}), (json{{"op", "status"}}));
}

TEST(Requests, BgpPeers) {
    EXPECT_EQ(request_of({"bgp", "peers"}), (json{{"op", "bgp.peers"}}));
    auto invocation = parse({"--json", "bgp", "peers"});
    ASSERT_TRUE(invocation) << invocation.error().message;
    EXPECT_TRUE(invocation->json);
    const auto* command = std::get_if<DaemonCommand>(&invocation->command);
    ASSERT_NE(command, nullptr);
    EXPECT_EQ(command->request, (json{{"op", "bgp.peers"}}));
    EXPECT_EQ(command->view, View::kBgpPeers);
    EXPECT_NE(usage_text().find("  bgp peers\n"), std::string::npos);
}

TEST(Options, SocketPath) {
    EXPECT_EQ(parse({"status"})->socket_path, "/run/podfwd/podfwd.sock");
    EXPECT_EQ(parse({"--table", "blue", "status"})->socket_path, "/run/podfwd/blue.sock");
    EXPECT_EQ(parse({"--table", "blue", "status"})->table, "blue");
    EXPECT_EQ(parse({"status"}, "/tmp/env.sock")->socket_path, "/tmp/env.sock");
    EXPECT_EQ(parse({"--socket", "/tmp/opt.sock", "status"}, "/tmp/env.sock")->socket_path, "/tmp/opt.sock");
    EXPECT_EQ(parse({"status"}, "")->socket_path, "/run/podfwd/podfwd.sock");
    EXPECT_TRUE(parse({"status", "--json"})->json);
}

TEST(Options, Stats) {
    auto plain = parse({"stats"});
    ASSERT_TRUE(plain);
    const auto& stats = std::get<StatsCommand>(plain->command);
    EXPECT_FALSE(stats.watch);
    EXPECT_FALSE(stats.all);

    auto watch = parse({"stats", "--watch", "--interval", "0.25", "--count", "3", "--all"});
    ASSERT_TRUE(watch) << watch.error().message;
    const auto& watching = std::get<StatsCommand>(watch->command);
    EXPECT_TRUE(watching.watch);
    EXPECT_TRUE(watching.all);
    EXPECT_DOUBLE_EQ(watching.interval.count(), 0.25);
    EXPECT_EQ(watching.count, 3u);
}

TEST(Options, Help) {
    const Outcome outcome = run_with({"--help"});
    EXPECT_EQ(outcome.status, kExitOk);
    EXPECT_NE(outcome.out.find("usage: podfwdctl"), std::string::npos);
    EXPECT_EQ(outcome.err, "");
}

struct UsageCase {
    std::vector<std::string> args;
    std::string message;
};

class UsageErrors : public testing::TestWithParam<UsageCase> {};

TEST_P(UsageErrors, OneLineAndExitTwo) {
    const Outcome outcome = run_with(GetParam().args);
    EXPECT_EQ(outcome.status, kExitUsage);
    EXPECT_EQ(outcome.err, "podfwdctl: " + GetParam().message + "\n");
    EXPECT_EQ(outcome.out, "");
}

INSTANTIATE_TEST_SUITE_P(
    Ctl, UsageErrors,
    testing::Values(
        UsageCase{{}, "missing command (try --help)"},
        UsageCase{{"frobnicate"}, "unknown command 'frobnicate' (try --help)"},
        UsageCase{{"--frob", "status"}, "unrecognised option '--frob'"},
        UsageCase{{"--table"}, "the required argument for option '--table' is missing"},
        UsageCase{{"--table", "a/b", "status"}, "--table 'a/b' must be a non-empty segment name without '/'"},
        UsageCase{{"route"}, "route: missing subcommand: add, del, list or get"},
        UsageCase{{"route", "show"}, "route: unknown subcommand 'show': add, del, list or get"},
        UsageCase{{"route", "add"}, "a route needs a prefix"},
        UsageCase{{"route", "add", "10.1.2.3/24", "via", "192.168.1.2"},
                  "10.1.2.3/24 has host bits set (did you mean 10.1.2.0/24?)"},
        UsageCase{{"route", "add", "10.1.2.0/33", "via", "192.168.1.2"}, "prefix length 33 is longer than 32"},
        UsageCase{{"route", "add", "10.1.2/24", "via", "192.168.1.2"}, "invalid IPv4 address '10.1.2'"},
        UsageCase{{"route", "add", "10.244.1.0/24"}, "10.244.1.0/24 needs 'via <node-ip>' (or 'local' / 'blackhole')"},
        UsageCase{{"route", "add", "10.244.1.0/24", "mode", "ipip"},
                  "10.244.1.0/24 needs 'via <node-ip>' (or 'local' / 'blackhole')"},
        UsageCase{{"route", "add", "10.244.1.0/24", "via"}, "'via' needs a value"},
        UsageCase{{"route", "add", "10.244.1.0/24", "via", "192.168.1.300"}, "invalid IPv4 address '192.168.1.300'"},
        UsageCase{{"route", "add", "10.244.1.0/24", "via", "192.168.1.2", "mode", "gre"},
                  "unknown mode 'gre' (host-gw, ipip, vxlan, cross-subnet)"},
        UsageCase{{"route", "add", "10.244.1.0/24", "via", "192.168.1.2", "vtep-mac", "02:00:00:00:02"},
                  "'02:00:00:00:02' is not a MAC address (aa:bb:cc:dd:ee:ff)"},
        UsageCase{{"route", "add", "10.244.1.0/24", "via", "192.168.1.2", "vni", "0"},
                  "VNI '0' is not a number in 1..16777215"},
        UsageCase{{"route", "add", "10.244.1.0/24", "via", "192.168.1.2", "vni", "16777216"},
                  "VNI '16777216' is not a number in 1..16777215"},
        UsageCase{{"route", "add", "10.244.1.0/24", "local", "via", "192.168.1.2"},
                  "unknown word 'local' (via, mode, vni, vtep-mac)"},
        UsageCase{{"route", "add", "10.244.1.0/24", "via", "192.168.1.2", "metric", "5"},
                  "unknown word 'metric' (via, mode, vni, vtep-mac)"},
        UsageCase{{"route", "del"}, "route del: missing prefix"},
        UsageCase{{"route", "del", "10.244.1.0/24", "via"}, "route del: unexpected 'via'"},
        UsageCase{{"route", "get", "10.244.1"}, "invalid IPv4 address '10.244.1'"},
        UsageCase{{"route", "list", "--source", "ospf"},
                  "unknown source 'ospf': local, cli, static, bgp, etcd, kernel, connected, gateway"},
        // arp is a neighbour source: it has no routes to list.
        UsageCase{{"route", "list", "--source", "arp"},
                  "unknown source 'arp': local, cli, static, bgp, etcd, kernel, connected, gateway"},
        UsageCase{{"route", "get", "10.244.1.1", "--source", "bgp"}, "--source is only for 'route list'"},
        UsageCase{{"status", "--source", "bgp"}, "--source is only for 'route list'"},
        UsageCase{{"neigh"}, "neigh: missing subcommand: add, del or list"},
        UsageCase{{"neigh", "add", "192.168.1.2"}, "a neighbour is '<ip> <mac>'"},
        UsageCase{{"neigh", "add", "192.168.1.2", "02:00:00:00:02:0g"},
                  "'02:00:00:00:02:0g' is not a MAC address (aa:bb:cc:dd:ee:ff)"},
        UsageCase{{"neigh", "add", "192.168.1.2", "01:00:5e:00:00:01"}, "01:00:5e:00:00:01 is not a unicast MAC"},
        UsageCase{{"neigh", "del", "192.168.1"}, "invalid IPv4 address '192.168.1'"},
        UsageCase{{"sources", "all"}, "sources: unexpected 'all'"},
        UsageCase{{"bgp"}, "bgp: missing subcommand: peers"},
        UsageCase{{"bgp", "neighbors"}, "bgp: unknown subcommand 'neighbors': peers"},
        UsageCase{{"bgp", "peers", "10.168.0.3"}, "bgp peers: unexpected '10.168.0.3'"},
        UsageCase{{"bgp", "peers", "--source", "bgp"}, "--source is only for 'route list'"},
        UsageCase{{"bgp", "peers", "--all"}, "--all, --watch, --interval and --count are only for 'stats'"},
        UsageCase{{"route", "list", "--watch"}, "--all, --watch, --interval and --count are only for 'stats'"},
        UsageCase{{"stats", "--interval", "1"}, "--interval and --count need --watch"},
        UsageCase{{"stats", "--watch", "--interval", "0"}, "--interval must be between 0.01 and 3600 seconds"},
        UsageCase{{"stats", "--watch", "--interval", "soon"},
                  "the argument ('soon') for option '--interval' is invalid"},
        UsageCase{{"stats", "--watch", "--count=0"}, "--count must be a positive number of reports"},
        UsageCase{{"stats", "lcore"}, "stats: unexpected 'lcore'"}));

}  // namespace
}  // namespace podfwd::ctl
