// Human output: aligned columns whatever the cell widths, and each result of
// control/PROTOCOL.md shown field by field.
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "control/ctl/format.h"
#include "control/ctl/text_table.h"

namespace podfwd::ctl {
namespace {

using nlohmann::json;

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        lines.push_back(line);
    return lines;
}

TEST(TextTable, ColumnsAreAlignedToTheWidestCell) {
    TextTable table({{"NAME"}, {"COUNT", Align::kRight}, {"NOTE"}});
    table.add_row({"a", "1", "short"});
    table.add_row({"longer-name", "12345", ""});
    table.add_row({"b"});
    EXPECT_EQ(table.render(),
              "NAME         COUNT  NOTE\n"
              "a                1  short\n"
              "longer-name  12345\n"
              "b\n");
}

TEST(TextTable, MultiByteCharactersCountOnce) {
    TextTable table({{"A"}, {"B"}});
    table.add_row({"→x", "1"});
    table.add_row({"abc", "2"});
    EXPECT_EQ(table.render(), "A    B\n→x   1\nabc  2\n");
}

TEST(TextTable, Fields) {
    EXPECT_EQ(render_fields({{"ip", "10.0.0.1"}, {"effective mode", "ipip"}}),
              "ip              10.0.0.1\n"
              "effective mode  ipip\n");
}

json route(const char* prefix, const char* source, int preference, json via, bool best) {
    return {{"prefix", prefix},
            {"source", source},
            {"preference", preference},
            {"via", via},
            {"mode", "cross-subnet"},
            {"effective_mode", "host-gw"},
            {"best", best},
            {"installed", best},
            {"nexthop_id", best ? json(3) : json()},
            {"l2_nexthop", via},
            {"mac", best ? json("02:00:00:00:02:02") : json()},
            {"vtep_mac", nullptr}};
}

TEST(Format, RouteListIsAlignedAndMarksTheBestRoute) {
    const json result = {{"routes",
                          {route("10.244.1.0/24", "cli", 10, "192.168.1.2", true),
                           route("10.244.1.0/24", "kernel", 50, "192.168.1.22", false)}}};
    const std::string text = format_result(View::kRouteList, result);
    EXPECT_EQ(text,
              "PREFIX         SOURCE  PREF  VIA           MODE          EFFECTIVE  BEST  INSTALLED  L2-NEXTHOP    MAC\n"
              "10.244.1.0/24  cli       10  192.168.1.2   cross-subnet  host-gw    *     yes        192.168.1.2   "
              "02:00:00:00:02:02\n"
              "10.244.1.0/24  kernel    50  192.168.1.22  cross-subnet  host-gw          no         192.168.1.22  -\n");
    // Every header starts where its cells start.
    const auto lines = lines_of(text);
    for (const char* header : {"SOURCE", "VIA", "MODE", "EFFECTIVE", "BEST", "INSTALLED", "L2-NEXTHOP"}) {
        const auto column = lines[0].find(header);
        for (std::size_t row = 1; row < lines.size(); ++row) {
            EXPECT_EQ(lines[row][column - 1], ' ') << header;
            EXPECT_EQ(lines[row][column - 2], ' ') << header;
        }
    }
    EXPECT_EQ(format_result(View::kRouteList, json{{"routes", json::array()}}), "no routes\n");
}

TEST(Format, RouteChanges) {
    json added = route("10.244.1.0/24", "cli", 10, "192.168.1.2", true);
    added["mode"] = "ipip";
    added["effective_mode"] = "ipip";
    EXPECT_EQ(format_result(View::kRouteAdded, json{{"route", added}}),
              "added route 10.244.1.0/24 via 192.168.1.2 mode ipip [cli, preference 10]: best, installed\n");
    const json removed = route("10.66.0.0/16", "cli", 10, nullptr, false);
    EXPECT_EQ(format_result(View::kRouteRemoved, json{{"route", removed}}),
              "removed route 10.66.0.0/16 mode cross-subnet (host-gw) [cli, preference 10]\n");
    json defaulted = route("10.244.2.0/24", "cli", 10, "192.168.1.3", true);
    defaulted.erase("mode");
    EXPECT_EQ(format_result(View::kRouteAdded, json{{"route", defaulted}}),
              "added route 10.244.2.0/24 via 192.168.1.3 mode default (host-gw) [cli, preference 10]: "
              "best, installed\n");
}

TEST(Format, RouteGet) {
    const json found = {{"ip", "10.244.1.9"},
                        {"route", route("10.244.1.0/24", "bgp", 30, "192.168.1.2", true)},
                        {"table_nexthop", 3}};
    EXPECT_EQ(format_result(View::kRouteGet, found),
              "ip              10.244.1.9\n"
              "prefix          10.244.1.0/24\n"
              "source          bgp\n"
              "preference      30\n"
              "via             192.168.1.2\n"
              "mode            cross-subnet\n"
              "effective mode  host-gw\n"
              "l2 next hop     192.168.1.2\n"
              "mac             02:00:00:00:02:02\n"
              "installed       yes\n"
              "next hop id     3\n"
              "table next hop  3\n");
    EXPECT_EQ(format_result(View::kRouteGet, json{{"ip", "10.9.9.9"}, {"route", nullptr}, {"table_nexthop", 0}}),
              "10.9.9.9: no route\n");
}

TEST(Format, Neighbours) {
    // nexthops: a count, as podfwd-control sends it, or a list of ids.
    const json result = {
        {"neighbours",
         {{{"ip", "192.168.1.2"}, {"mac", "02:00:00:00:02:02"}, {"source", "cli"}, {"nexthops", {3, 4}}},
          {{"ip", "192.168.1.254"}, {"mac", "02:00:00:00:00:fe"}, {"source", "kernel"}, {"nexthops", 0}}}}};
    EXPECT_EQ(format_result(View::kNeighbourList, result),
              "IP             MAC                SOURCE  STATE  PROBES  QUEUED  NEXTHOPS\n"
              "192.168.1.2    02:00:00:00:02:02  cli     -           -       -       3,4\n"
              "192.168.1.254  02:00:00:00:00:fe  kernel  -           -       -         0\n");
    // The dataplane's view: a CLI MAC over a resolved one, and one still unresolved.
    const json learned = {
        {"neighbours",
         {{{"ip", "192.168.1.2"}, {"mac", "02:00:00:00:02:02"}, {"source", "cli"}, {"state", "reachable"},
           {"probes", 0}, {"queued", 0}, {"nexthops", 1}},
          {{"ip", "192.168.1.9"}, {"mac", nullptr}, {"source", "arp"}, {"state", "incomplete"}, {"probes", 2},
           {"queued", 3}, {"nexthops", 0}}}}};
    EXPECT_EQ(format_result(View::kNeighbourList, learned),
              "IP           MAC                SOURCE  STATE       PROBES  QUEUED  NEXTHOPS\n"
              "192.168.1.2  02:00:00:00:02:02  cli     reachable        0       0         1\n"
              "192.168.1.9  -                  arp     incomplete       2       3         0\n");
    EXPECT_EQ(format_result(View::kNeighbourAdded,
                            json{{"neighbour", {{"ip", "192.168.1.2"}, {"mac", "02:00:00:00:02:02"}}}}),
              "added neighbour 192.168.1.2 at 02:00:00:00:02:02\n");
}

TEST(Format, Sources) {
    const json result = {{"sources",
                          {{{"name", "cli"}, {"enabled", true}, {"state", "up"}, {"routes", 2}, {"best", 2},
                            {"refused", 0}, {"last_error", nullptr}, {"changes", 5}},
                           {{"name", "etcd"}, {"enabled", true}, {"state", "error"}, {"routes", 120}, {"best", 118},
                            {"refused", 1}, {"last_error", "connection refused"}, {"changes", 1200},
                            {"detail", "flannel at http://127.0.0.1:2379, revision 7"}}}}};
    EXPECT_EQ(format_result(View::kSources, result),
              "NAME  ENABLED  STATE  ROUTES  BEST  REFUSED  CHANGES  DETAIL                                        LAST-ERROR\n"
              "cli   yes      up          2     2        0        5  -                                             -\n"
              "etcd  yes      error     120   118        1     1200  flannel at http://127.0.0.1:2379, revision 7  connection refused\n");
}

TEST(Format, Status) {
    const json result = {{"node_ip", "192.168.1.1"}, {"uplink", "eth0"},       {"gateway", "192.168.1.254"},
                         {"table", "podfwd"},        {"pod_cidrs", {"10.244.0.0/24"}}, {"default_mode", "cross-subnet"},
                         {"routes", 12},             {"installed", 10},       {"nexthops", 4},
                         {"pid", 4242},              {"uptime_s", 3725.7},    {"etcd", "up"}};
    EXPECT_EQ(format_result(View::kStatus, result),
              "node ip       192.168.1.1\n"
              "uplink        eth0\n"
              "gateway       192.168.1.254\n"
              "table         podfwd\n"
              "pod CIDRs     10.244.0.0/24\n"
              "default mode  cross-subnet\n"
              "routes        12\n"
              "installed     10\n"
              "next hops     4\n"
              "pid           4242\n"
              "uptime        1h02m05s\n"
              "etcd          up\n");
}

// A stalled table reader is one line of its own.
TEST(Format, StatusShowsAStalledTableReader) {
    json health = {{"readers_online", 2}, {"retired_pending", 4096}, {"reserve_used_pct", 10},
                   {"stalled_reader", {{"pid", 1234}, {"slot", 3}, {"stalled_s", 12.4}}}};
    EXPECT_NE(format_result(View::kStatus, json{{"table_health", health}})
                  .find("table health  reader pid 1234 (slot 3) stalled for 12 s; 4096 retired elements pinned; "
                        "reserve 10% used\n"),
              std::string::npos);
    health["stalled_reader"] = nullptr;
    EXPECT_NE(format_result(View::kStatus, json{{"table_health", health}})
                  .find("table health  healthy, 2 readers online, 4096 retired elements pending\n"),
              std::string::npos);
}

TEST(Format, Durations) {
    EXPECT_EQ(duration_text(0), "0s");
    EXPECT_EQ(duration_text(59), "59s");
    EXPECT_EQ(duration_text(61), "1m01s");
    EXPECT_EQ(duration_text(86400 + 7200 + 180 + 4), "1d02h03m");
}

TEST(Format, ShortDurations) {
    EXPECT_EQ(short_duration_text(0), "0s");
    EXPECT_EQ(short_duration_text(45), "45s");
    EXPECT_EQ(short_duration_text(59), "59s");
    EXPECT_EQ(short_duration_text(60), "1m00s");
    EXPECT_EQ(short_duration_text(3 * 60 + 12), "3m12s");
    EXPECT_EQ(short_duration_text(3599), "59m59s");
    EXPECT_EQ(short_duration_text(3600), "1h00m");
    EXPECT_EQ(short_duration_text(2 * 3600 + 5 * 60 + 59), "2h05m");   // truncated, not rounded
    EXPECT_EQ(short_duration_text(86399), "23h59m");
    EXPECT_EQ(short_duration_text(86400), "1d00h");
    EXPECT_EQ(short_duration_text(86400 + 3 * 3600 + 1800), "1d03h");
    EXPECT_EQ(short_duration_text(400 * 86400 + 23 * 3600), "400d23h");
}

// The daemon's answer to bgp.peers, control/PROTOCOL.md.
json bgp_object() {
    return {{"asn", 64512},         {"router_id", "10.168.0.2"},
            {"phase", "up"},        {"api", "unix:///run/podfwd/podfwd.gobgp.sock"},
            {"gobgpd_pid", 1234},   {"gobgpd_starts", 1},
            {"routes", 120},        {"stale", 0},
            {"refused", 3},         {"accept", {"10.244.0.0/16"}},
            {"last_error", nullptr}};
}

json bgp_peer(const char* address, const char* state, json uptime, json last_error) {
    return {{"address", address}, {"port", 179},       {"remote_as", 64512}, {"passive", false},
            {"state", state},     {"uptime_s", uptime}, {"received", 5},      {"accepted", 4},
            {"refused", 1},       {"advertised", 1},    {"end_of_rib", true}, {"last_error", last_error}};
}

TEST(Format, BgpPeers) {
    json passive = bgp_peer("10.168.0.200", "active", nullptr, "hold timer expired");
    passive["port"] = 1179;
    passive["remote_as"] = 4200000001u;
    passive["received"] = 0;
    passive["accepted"] = 0;
    passive["refused"] = 0;
    passive["advertised"] = 0;
    const json result = {{"bgp", bgp_object()},
                         {"peers",
                          {bgp_peer("127.0.0.10", "established", 3725, nullptr),
                           bgp_peer("10.168.0.3", "established", 45, "10.0.0.0/8: outside the pod networks (--accept)"),
                           passive}}};
    EXPECT_EQ(format_result(View::kBgpPeers, result),
              "AS 64512, router id 10.168.0.2, gobgpd pid 1234 (started 1×), phase up, 120 routes (0 stale), "
              "3 refused, accept 10.244.0.0/16\n"
              "PEER                       AS  STATE        UPTIME  RECEIVED  ACCEPTED  REFUSED  ADVERTISED  LAST-ERROR\n"
              "127.0.0.10              64512  established   1h02m         5         4        1           1  -\n"
              "10.168.0.3              64512  established     45s         5         4        1           1  "
              "10.0.0.0/8: outside the pod networks (--accept)\n"
              "10.168.0.200:1179  4200000001  active            -         0         0        0           0  "
              "hold timer expired\n");
}

TEST(Format, BgpPeersColumnsAreAligned) {
    const json result = {{"bgp", bgp_object()},
                         {"peers",
                          {bgp_peer("127.0.0.10", "established", 90061, nullptr),
                           bgp_peer("10.168.0.3", "idle", nullptr, "connection refused")}}};
    const auto lines = lines_of(format_result(View::kBgpPeers, result));
    ASSERT_EQ(lines.size(), 4u);
    EXPECT_EQ(lines[1], "PEER           AS  STATE        UPTIME  RECEIVED  ACCEPTED  REFUSED  ADVERTISED  LAST-ERROR");
    EXPECT_EQ(lines[2], "127.0.0.10  64512  established   1d01h         5         4        1           1  -");
    EXPECT_EQ(lines[3], "10.168.0.3  64512  idle              -         5         4        1           1  "
                        "connection refused");
}

TEST(Format, BgpSpeakerStates) {
    // A child gobgpd that is down after restarts, and the speaker's last error.
    json down = bgp_object();
    down["gobgpd_pid"] = nullptr;
    down["gobgpd_starts"] = 3;
    down["phase"] = "error";
    down["stale"] = 120;
    down["accept"] = {"10.244.0.0/16", "10.96.0.0/12"};
    down["last_error"] = "gobgpd exited with status 1";
    EXPECT_EQ(format_result(View::kBgpPeers, json{{"bgp", down}, {"peers", json::array()}}),
              "AS 64512, router id 10.168.0.2, gobgpd not running (started 3×), phase error, 120 routes "
              "(120 stale), 3 refused, accept 10.244.0.0/16,10.96.0.0/12\n"
              "last error: gobgpd exited with status 1\n"
              "no peers\n");
    // A gobgpd someone else runs: where podfwd-control reaches it.
    json external = bgp_object();
    external["gobgpd_pid"] = nullptr;
    external["gobgpd_starts"] = 0;
    external["api"] = "127.0.0.1:50051";
    external["phase"] = "syncing";
    external["accept"] = json::array();
    EXPECT_EQ(format_result(View::kBgpPeers, json{{"bgp", external}, {"peers", json::array()}}),
              "AS 64512, router id 10.168.0.2, gobgpd at 127.0.0.1:50051, phase syncing, 120 routes (0 stale), "
              "3 refused, accept nothing\n"
              "no peers\n");
}

TEST(Format, BgpPeersMissingFieldsShowADash) {
    // An older or newer daemon: what is missing is "-", what has an unexpected type is its JSON.
    EXPECT_EQ(format_result(View::kBgpPeers, json{{"peers", {{{"address", "10.168.0.3"}, {"uptime_s", -5}}}}}),
              "AS -, router id -, gobgpd at -, phase -, - routes (- stale), - refused, accept -\n"
              "PEER        AS  STATE  UPTIME  RECEIVED  ACCEPTED  REFUSED  ADVERTISED  LAST-ERROR\n"
              "10.168.0.3   -  -          -5         -         -        -           -  -\n");
}

TEST(Format, UnexpectedShapesDoNotThrow) {
    for (View view : {View::kRouteList, View::kRouteGet, View::kRouteAdded, View::kNeighbourList, View::kSources,
                      View::kStatus, View::kBgpPeers}) {
        EXPECT_NO_THROW((void)format_result(view, json::object()));
        EXPECT_NO_THROW((void)format_result(view, json{{"routes", 5}, {"route", "x"}, {"sources", {1, 2}}}));
        EXPECT_NO_THROW((void)format_result(
            view, json{{"bgp", {{"gobgpd_starts", "x"}, {"accept", 7}}}, {"peers", {1, {{"port", "x"}}}}}));
    }
}

}  // namespace
}  // namespace podfwd::ctl
