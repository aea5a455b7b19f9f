// Control::handle on bad and mutated requests: every answer is one JSON
// object with "ok", refusals carry a code and a one-line error, and nothing
// already learned is lost.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "control/daemon/control.h"
#include "lpm/reader.h"
#include "tests/control/daemon/neigh_segment_file.h"

namespace podfwd::control {
namespace {

using nlohmann::json;

class Requests : public ::testing::Test {
protected:
    void SetUp() override {
        const std::string name = "podfwd-test-requests-" + std::to_string(::getpid());
        dir_ = std::filesystem::temp_directory_path() / name;
        std::filesystem::create_directories(dir_);
        (void)lpm::TableWriter::unlink(name);
        options_.table = name;
        options_.state_dir = dir_.string();
        options_.node.node_ip = *parse_ipv4("10.168.0.2");
        options_.node.uplink = *Prefix4::parse("10.168.0.0/24");
        options_.node.gateway = *parse_ipv4("10.168.0.1");
        options_.node.pod_cidrs = {*Prefix4::parse("10.244.0.0/24")};
        options_.capacity.max_routes = 64;
        auto c = Control::start(options_);
        ASSERT_TRUE(c) << c.error().message;
        control_ = std::move(*c);
    }
    void TearDown() override {
        control_.reset();
        (void)lpm::TableWriter::unlink(options_.table);
        std::filesystem::remove_all(dir_);
    }
    // Restarted with a static routes file (dir_/routes.conf) of `text`.
    void restart_with_static(const std::string& text) {
        const auto path = dir_ / "routes.conf";
        { std::ofstream(path) << text; }
        control_.reset();
        options_.static_routes = path.string();
        auto c = Control::start(options_);
        ASSERT_TRUE(c) << c.error().message;
        control_ = std::move(*c);
    }
    json ask(std::string_view line) {
        const std::string answer = control_->handle_line(line);
        EXPECT_EQ(answer.find('\n'), std::string::npos) << "one line per answer";
        json j = json::parse(answer, nullptr, false);
        EXPECT_TRUE(j.is_object() && j.contains("ok")) << answer;
        if (j.is_object() && j.value("ok", true) == false) {
            EXPECT_TRUE(j.contains("code") && j["error"].is_string()) << answer;
            EXPECT_EQ(j["error"].get<std::string>().find('\n'), std::string::npos);
        }
        return j;
    }

    void restart() {
        control_.reset();
        auto c = Control::start(options_);
        ASSERT_TRUE(c) << c.error().message;
        control_ = std::move(*c);
    }
    // What the dataplane finds for addr: the table's record, read as a reader.
    std::optional<lpm::NextHop> record(const char* addr) {
        auto view = lpm::TableView::open(options_.table);
        EXPECT_TRUE(view) << view.error().message;
        if (!view)
            return std::nullopt;
        const lpm::NextHop* nh = view->nexthop(view->lookup(*parse_ipv4(addr)));
        return nh != nullptr ? std::optional(*nh) : std::nullopt;
    }
    json source_named(const char* name) {
        const json sources = ask(R"({"op":"sources"})");
        for (const json& s : sources["sources"])
            if (s["name"] == name)
                return s;
        ADD_FAILURE() << "no source " << name;
        return nullptr;
    }

    std::filesystem::path dir_;
    DaemonOptions options_;
    std::unique_ptr<Control> control_;
};

TEST_F(Requests, BadRequestsAreRefusedWithACode) {
    const std::pair<const char*, const char*> cases[] = {
        {"", "invalid_argument"},
        {"not json", "invalid_argument"},
        {"[1,2]", "invalid_argument"},
        {R"({"op": 7})", "invalid_argument"},
        {R"({"op": "route.fly"})", "invalid_argument"},
        {R"({"op": "route.add"})", "invalid_argument"},
        {R"({"op": "route.add", "prefix": 12})", "invalid_argument"},
        {R"({"op": "route.add", "prefix": "10.244.1.0/33", "via": "10.168.0.3"})", "invalid_argument"},
        {R"({"op": "route.add", "prefix": "10.244.1.0/24", "via": "10.168.0.3", "vni": -1})", "invalid_argument"},
        {R"({"op": "route.add", "prefix": "10.244.1.0/24", "via": "10.168.0.3", "vni": "7"})", "invalid_argument"},
        {R"({"op": "route.add", "prefix": "10.244.1.0/24", "via": "10.168.0.3", "mode": "local"})", "invalid_argument"},
        {R"({"op": "route.add", "prefix": "10.244.1.0/24", "via": "10.169.0.3", "mode": "host-gw"})", "invalid_argument"},
        {R"({"op": "route.add", "prefix": "10.244.1.0/24", "via": "10.168.0.3", "mode": "vxlan"})", "invalid_argument"},
        {R"({"op": "route.del", "prefix": "10.244.77.0/24"})", "not_found"},
        {R"({"op": "route.list", "source": "ospf"})", "invalid_argument"},
        {R"({"op": "route.list", "source": 3})", "invalid_argument"},
        {R"({"op": "route.list", "limit": 0})", "invalid_argument"},
        {R"({"op": "route.list", "limit": -1})", "invalid_argument"},
        {R"({"op": "route.list", "limit": 100001})", "invalid_argument"},
        {R"({"op": "route.list", "limit": 18446744073709551615})", "invalid_argument"},
        {R"({"op": "route.list", "limit": "10"})", "invalid_argument"},
        {R"({"op": "route.list", "limit": 1.5})", "invalid_argument"},
        {R"({"op": "route.list", "limit": true})", "invalid_argument"},
        {R"({"op": "route.list", "after": 7})", "invalid_argument"},
        {R"({"op": "route.list", "after": "10.244.1.1/24"})", "invalid_argument"},
        {R"({"op": "route.list", "after": "10.244.1"})", "invalid_argument"},
        {R"({"op": "route.get", "ip": "10.244.1"})", "invalid_argument"},
        {R"({"op": "neigh.add", "ip": "10.168.0.3", "mac": "ff:ff:ff:ff:ff:ff"})", "invalid_argument"},
        {R"({"op": "neigh.del", "ip": "10.168.0.3"})", "not_found"},
    };
    for (const auto& [line, code] : cases) {
        const json j = ask(line);
        EXPECT_EQ(j.value("ok", true), false) << line;
        EXPECT_EQ(j.value("code", ""), code) << line << " -> " << j.dump();
    }
}

TEST_F(Requests, MutatedRequestsNeverCrashOrLoseRoutes) {
    ASSERT_EQ(ask(R"({"op":"route.add","prefix":"10.244.1.0/24","via":"10.168.0.3","mode":"host-gw"})")["ok"], true);
    const std::string seeds[] = {
        R"({"op":"route.add","prefix":"10.244.2.0/24","via":"10.168.0.4","mode":"vxlan","vni":5,"vtep_mac":"02:00:00:00:00:04"})",
        R"({"op":"route.del","prefix":"10.244.2.0/24"})",
        R"({"op":"route.get","ip":"10.244.1.1"})",
        R"({"op":"neigh.add","ip":"10.168.0.3","mac":"02:00:00:00:00:03"})",
        R"({"op":"route.list","source":"cli"})",
        R"({"op":"route.list","limit":2,"after":"10.244.0.0/24"})",
    };
    std::mt19937 rng(7);
    const std::string alphabet = "{}[]\":,0123456789./abcdefghijklmnopqrstuvwxyz-_ \\\xff\x00";
    for (int i = 0; i < 20000; ++i) {
        std::string line = seeds[rng() % std::size(seeds)];
        for (unsigned k = 0, edits = 1 + rng() % 4; k < edits && !line.empty(); ++k) {
            const std::size_t at = rng() % line.size();
            switch (rng() % 3) {
            case 0: line[at] = alphabet[rng() % alphabet.size()]; break;
            case 1: line.erase(at, 1 + rng() % 3); break;
            default: line.insert(at, 1, alphabet[rng() % alphabet.size()]); break;
            }
        }
        ask(line);
    }
    // The route added first was not mutated away by any of it (a mutated
    // request can add or delete 10.244.2.0/24 at most, or other prefixes).
    const json get = ask(R"({"op":"route.get","ip":"10.244.1.9"})");
    ASSERT_TRUE(get["route"].is_object());
    EXPECT_EQ(get["route"]["prefix"], "10.244.1.0/24");
    EXPECT_EQ(get["table_nexthop"], get["route"]["nexthop_id"]);
}

// 26 routes: the connected route 10.168.0.0/24 (no default route here),
// the local pod CIDR 10.244.0.0/24, CLI routes 10.244.1-23.0/24, and a
// static route for 10.244.9.0/24 too (a prefix of two routes).
TEST_F(Requests, RouteListPages) {
    options_.default_route = false;
    ASSERT_NO_FATAL_FAILURE(restart_with_static("route 10.244.9.0/24 via 10.168.0.4\n"));
    for (int i = 1; i <= 23; ++i) {
        const std::string prefix = "10.244." + std::to_string(i) + ".0/24";
        ASSERT_EQ(ask(R"({"op":"route.add","via":"10.168.0.3","prefix":")" + prefix + "\"}")["ok"], true) << prefix;
    }
    const json whole = ask(R"({"op":"route.list"})");
    ASSERT_EQ(whole["routes"].size(), 26u) << whole.dump();
    EXPECT_TRUE(whole["next"].is_null()) << "all of it fits the default page";
    EXPECT_EQ(whole["routes"][0]["source"], "connected");

    const auto list = [&](json request) {
        request["op"] = "route.list";
        return ask(request.dump());
    };
    // Follows `next` from the start; the routes of every page, in order.
    const auto pages = [&](json request) {
        std::vector<json> got;
        for (json page = list(request);; page = list(request)) {
            EXPECT_EQ(page["ok"], true) << page.dump();
            got.push_back(page["routes"]);
            if (page["next"].is_null() || got.size() > 30)
                break;
            EXPECT_EQ(page["next"], page["routes"].back()["prefix"]) << "next is the page's last prefix";
            request["after"] = page["next"];
        }
        return got;
    };
    const std::vector<json> by11 = pages({{"limit", 11}});
    ASSERT_EQ(by11.size(), 3u);
    // 10.244.9.0/24's two routes would make the first page 12: they open the second.
    EXPECT_EQ(by11[0].size(), 10u);
    EXPECT_EQ(by11[1].size(), 11u);
    EXPECT_EQ(by11[2].size(), 5u);
    EXPECT_EQ(by11[1][0]["prefix"], "10.244.9.0/24");
    EXPECT_EQ(by11[1][1]["prefix"], "10.244.9.0/24");
    json joined = json::array();
    for (const json& page : by11)
        joined.insert(joined.end(), page.begin(), page.end());
    EXPECT_EQ(joined, whole["routes"]) << "the pages are the whole list";

    // A prefix smaller than every route's still lists one route: it is never split.
    EXPECT_EQ(pages({{"limit", 1}}).size(), 25u);
    EXPECT_EQ(list({{"limit", 1}, {"after", "10.244.8.0/24"}})["routes"].size(), 2u);

    // `after` need not be in the RIB: the routes of the prefixes past it.
    const json past9 = list({{"limit", 3}, {"after", "10.244.9.0/25"}});   // /24 < /25 at the same address
    ASSERT_EQ(past9["routes"].size(), 3u) << past9.dump();
    EXPECT_EQ(past9["routes"][0]["prefix"], "10.244.10.0/24");
    EXPECT_EQ(past9["next"], "10.244.12.0/24");
    const json nested = list({{"after", "10.244.8.0/23"}});
    ASSERT_FALSE(nested["routes"].empty());
    EXPECT_EQ(nested["routes"][0]["prefix"], "10.244.8.0/24");
    EXPECT_EQ(list({{"after", "0.0.0.0/0"}})["routes"], whole["routes"]);
    const json beyond = list({{"after", "255.255.255.255/32"}});
    EXPECT_EQ(beyond["routes"], json::array());
    EXPECT_TRUE(beyond["next"].is_null());
    EXPECT_TRUE(list({{"limit", 26}})["next"].is_null()) << "exactly the rest: no next";
    EXPECT_EQ(list({{"limit", 25}})["next"], "10.244.22.0/24");

    // With a source, the limit counts that source's routes.
    const std::vector<json> cli = pages({{"limit", 10}, {"source", "cli"}});
    ASSERT_EQ(cli.size(), 3u);
    EXPECT_EQ(cli[0].size(), 10u);
    EXPECT_EQ(cli[2].size(), 3u);
    const json statics = list({{"limit", 10}, {"source", "static"}});
    EXPECT_EQ(statics["routes"].size(), 1u);
    EXPECT_TRUE(statics["next"].is_null());
}

TEST_F(Requests, CliRoutesSurviveARestart) {
    ASSERT_EQ(ask(R"({"op":"route.add","prefix":"10.244.1.0/24","via":"10.168.0.3"})")["ok"], true);
    ASSERT_EQ(ask(R"({"op":"neigh.add","ip":"10.168.0.3","mac":"02:00:00:00:00:03"})")["ok"], true);
    const json before = ask(R"({"op":"route.get","ip":"10.244.1.1"})");
    control_.reset();
    auto c = Control::start(options_);
    ASSERT_TRUE(c) << c.error().message;
    control_ = std::move(*c);
    const json after = ask(R"({"op":"route.get","ip":"10.244.1.1"})");
    EXPECT_EQ(after, before) << "same route, mode (the default), MAC and next-hop record";
}

TEST_F(Requests, AChangeThatCannotBeSavedIsRefusedAndNotApplied) {
    ASSERT_EQ(ask(R"({"op":"route.add","prefix":"10.244.1.0/24","via":"10.168.0.3"})")["ok"], true);
    std::filesystem::remove_all(dir_);
    { std::ofstream blocker(dir_); }   // the state directory is now a file
    const json j = ask(R"({"op":"route.add","prefix":"10.244.2.0/24","via":"10.168.0.3"})");
    EXPECT_EQ(j["code"], "system") << j.dump();
    // (10.244.2.1 falls to the default route via the gateway.)
    EXPECT_EQ(ask(R"({"op":"route.get","ip":"10.244.2.1"})")["route"]["prefix"], "0.0.0.0/0") << "not applied";
    EXPECT_EQ(ask(R"({"op":"route.del","prefix":"10.244.1.0/24"})")["code"], "system");
    EXPECT_FALSE(ask(R"({"op":"route.get","ip":"10.244.1.1"})")["route"].is_null()) << "not deleted either";
    std::filesystem::remove(dir_);
    std::filesystem::create_directories(dir_);
}

// (An empty one stops the start unless --allow-empty-cli-state: test_static_reload.cc.)
TEST_F(Requests, AnEmptySavedStateStartsWithoutTheCliRoutesWhenAllowedACorruptOneDoesNot) {
    ASSERT_EQ(ask(R"({"op":"route.add","prefix":"10.244.1.0/24","via":"10.168.0.3"})")["ok"], true);
    control_.reset();
    { std::ofstream truncate(options_.cli_state_path(), std::ios::trunc); }   // what a power loss may leave
    options_.allow_empty_cli_state = true;
    auto c = Control::start(options_);
    ASSERT_TRUE(c) << c.error().message;
    control_ = std::move(*c);
    EXPECT_EQ(ask(R"({"op":"route.get","ip":"10.244.1.1"})")["route"]["prefix"], "0.0.0.0/0") << "only the gateway's";
    control_.reset();
    { std::ofstream(options_.cli_state_path(), std::ios::trunc) << "{\"routes\": [{\"prefix\": 7}]}"; }
    c = Control::start(options_);
    ASSERT_FALSE(c) << "a state file someone wrote wrong needs a person, not a silent start";
    EXPECT_NE(c.error().message.find("CLI state"), std::string::npos) << c.error().message;
    std::filesystem::remove(options_.cli_state_path());
    c = Control::start(options_);
    ASSERT_TRUE(c);
    control_ = std::move(*c);
}

TEST_F(Requests, ASavedRouteTheConfigCannotResolveIsKeptForLater) {
    ASSERT_EQ(ask(R"({"op":"route.add","prefix":"10.244.1.0/24","via":"10.169.0.3","mode":"ipip"})")["ok"], true);
    // Restarted without the gateway the route needs, then a change saves the state again.
    control_.reset();
    const auto gateway = options_.node.gateway;
    options_.node.gateway.reset();
    auto c = Control::start(options_);
    ASSERT_TRUE(c) << c.error().message;
    control_ = std::move(*c);
    EXPECT_TRUE(ask(R"({"op":"route.get","ip":"10.244.1.1"})")["route"].is_null());
    const json sources = ask(R"({"op":"sources"})");
    EXPECT_EQ(sources["sources"][1]["refused"], 1) << sources.dump();
    ASSERT_EQ(ask(R"({"op":"route.add","prefix":"10.244.2.0/24","via":"10.168.0.3"})")["ok"], true);
    // With the gateway back, the route is back.
    control_.reset();
    options_.node.gateway = gateway;
    c = Control::start(options_);
    ASSERT_TRUE(c) << c.error().message;
    control_ = std::move(*c);
    const json got = ask(R"({"op":"route.get","ip":"10.244.1.1"})");
    ASSERT_TRUE(got["route"].is_object()) << got.dump();
    EXPECT_EQ(got["route"]["effective_mode"], "ipip");
}

TEST_F(Requests, TextThatIsNotUtf8IsReplacedNotFatal) {
    ASSERT_NO_FATAL_FAILURE(restart_with_static("route 10.244.1.0/24 via 10.168.0.3\n"));
    const auto path = dir_ / "routes.conf";
    { std::ofstream(path) << "rout\xe9 10.244.1.0/24 via 10.168.0.3\n"; }
    control_->reload_static();
    const json sources = ask(R"({"op":"sources"})");
    EXPECT_EQ(sources["sources"][2]["state"], "error");
    EXPECT_FALSE(ask(R"({"op":"route.get","ip":"10.244.1.1"})")["route"].is_null()) << "the loaded route stays";
    // A directory where the file was is an error too, not an empty file.
    std::filesystem::remove(path);
    std::filesystem::create_directory(path);
    control_->reload_static();
    EXPECT_FALSE(ask(R"({"op":"route.get","ip":"10.244.1.1"})")["route"].is_null());
}

TEST_F(Requests, TheUplinkIsConnectedAndTheGatewayTheDefault) {
    json connected, gateway;
    const json routes = ask(R"({"op":"route.list"})");
    for (const json& r : routes["routes"]) {
        if (r["prefix"] == "10.168.0.0/24")
            connected = r;
        if (r["prefix"] == "0.0.0.0/0")
            gateway = r;
    }
    ASSERT_TRUE(connected.is_object());
    EXPECT_EQ(connected["source"], "connected");
    EXPECT_EQ(connected["mode"], "host-gw");
    EXPECT_TRUE(connected["via"].is_null());
    EXPECT_EQ(connected["installed"], true);
    ASSERT_TRUE(gateway.is_object());
    EXPECT_EQ(gateway["source"], "gateway");
    EXPECT_EQ(gateway["via"], "10.168.0.1");
    EXPECT_EQ(gateway["effective_mode"], "host-gw");
    EXPECT_EQ(gateway["installed"], true);

    const auto on_subnet = record("10.168.0.77");
    ASSERT_TRUE(on_subnet);
    EXPECT_EQ(on_subnet->mode, lpm::ForwardMode::kHostGw);
    EXPECT_TRUE(on_subnet->connected()) << "the dataplane ARPs for each destination";
    EXPECT_EQ(on_subnet->node_ip, 0u);
    EXPECT_FALSE(on_subnet->mac_resolved());
    const auto elsewhere = record("8.8.8.8");
    ASSERT_TRUE(elsewhere);
    EXPECT_FALSE(elsewhere->connected());
    EXPECT_EQ(elsewhere->node_ip, *parse_ipv4("10.168.0.1"));
    EXPECT_EQ(elsewhere->l2_ip, *parse_ipv4("10.168.0.1"));
    EXPECT_EQ(record("10.244.0.5")->mode, lpm::ForwardMode::kLocal) << "the pods are not the uplink's";

    // Any learned default route wins over the gateway's, and gives it back.
    ASSERT_EQ(ask(R"({"op":"route.add","prefix":"0.0.0.0/0","via":"10.168.0.5"})")["ok"], true);
    EXPECT_EQ(record("8.8.8.8")->node_ip, *parse_ipv4("10.168.0.5"));
    ASSERT_EQ(ask(R"({"op":"route.del","prefix":"0.0.0.0/0"})")["ok"], true);
    EXPECT_EQ(record("8.8.8.8")->node_ip, *parse_ipv4("10.168.0.1"));

    EXPECT_EQ(source_named("connected")["state"], "up");
    EXPECT_EQ(source_named("gateway")["routes"], 1);
    EXPECT_EQ(source_named("arp")["routes"], 0) << "a neighbour source: never a route";
    EXPECT_EQ(ask(R"({"op":"route.list","source":"arp"})")["code"], "invalid_argument");
    EXPECT_EQ(ask(R"({"op":"route.list","source":"gateway"})")["routes"].size(), 1u);

    options_.default_route = false;   // --no-default-route
    ASSERT_NO_FATAL_FAILURE(restart());
    EXPECT_TRUE(ask(R"({"op":"route.get","ip":"8.8.8.8"})")["route"].is_null());
    EXPECT_FALSE(record("8.8.8.8")) << "withdrawn from the table of the last run too";
    EXPECT_TRUE(record("10.168.0.77")->connected());
    EXPECT_EQ(source_named("gateway")["enabled"], false);
}

TEST_F(Requests, TheDataplanesNeighboursReachTheRecordsAndTheList) {
    const Ipv4Addr gateway = *parse_ipv4("10.168.0.1");
    ASSERT_EQ(ask(R"({"op":"route.add","prefix":"10.244.1.0/24","via":"10.168.0.3","mode":"host-gw"})")["ok"], true);
    ASSERT_EQ(ask(R"({"op":"route.add","prefix":"10.244.2.0/24","via":"10.170.0.9","mode":"ipip"})")["ok"], true);
    EXPECT_EQ(record("10.244.2.1")->l2_ip, gateway) << "off the subnet: ARP for the gateway";
    EXPECT_FALSE(record("10.244.1.1")->mac_resolved());

    using testing::NeighSegmentFile;
    NeighSegmentFile segment(options_.table, static_cast<std::uint32_t>(::getpid()), 8);
    ASSERT_TRUE(segment.ok());
    segment.entry(0) = NeighSegmentFile::make(*parse_ipv4("10.168.0.3"), 1, 0x03);
    segment.entry(1) = NeighSegmentFile::make(gateway, 2, 0x01);
    segment.entry(2) = NeighSegmentFile::make(*parse_ipv4("10.168.0.9"), 0, 0, 2, 1);
    segment.entry(3) = NeighSegmentFile::make(*parse_ipv4("10.168.0.8"), 4, 0, 3, 0);
    segment.publish(4);
    control_->poll_neighbours();

    const MacAddr mac3{2, 0, 0, 0, 0, 3}, mac1{2, 0, 0, 0, 0, 1};
    ASSERT_TRUE(record("10.244.1.1")->mac_resolved());
    EXPECT_EQ(record("10.244.1.1")->mac, mac3);
    EXPECT_EQ(record("10.244.2.1")->mac, mac1) << "the tunnel's frames go to the gateway's MAC";
    EXPECT_EQ(record("8.8.8.8")->mac, mac1) << "so do the default route's";
    EXPECT_EQ(ask(R"({"op":"route.get","ip":"10.244.1.1"})")["route"]["mac"], "02:00:00:00:00:03");

    // Each neighbour with a MAC gets a /32 on the fast path; one being
    // resolved stays on the connected route (the dataplane's slow path).
    const json host = ask(R"({"op":"route.get","ip":"10.168.0.3"})");
    EXPECT_EQ(host["route"]["prefix"], "10.168.0.3/32") << host.dump();
    EXPECT_EQ(host["route"]["source"], "connected");
    EXPECT_EQ(host["table_nexthop"], ask(R"({"op":"route.get","ip":"10.244.1.1"})")["table_nexthop"])
        << "the same record as the host-gw routes via the node";
    EXPECT_FALSE(record("10.168.0.3")->connected());
    EXPECT_EQ(record("10.168.0.3")->mac, mac3);
    EXPECT_EQ(ask(R"({"op":"route.get","ip":"10.168.0.9"})")["route"]["prefix"], "10.168.0.0/24");
    EXPECT_TRUE(record("10.168.0.9")->connected());

    // A host the dataplane resolved for the connected route alone (no route
    // sends to it) gets no /32: it would keep its own cache entry alive.
    segment.entry(4) = NeighSegmentFile::make(*parse_ipv4("10.168.0.20"), 1, 0x20);
    segment.publish(5);
    control_->poll_neighbours();
    EXPECT_EQ(ask(R"({"op":"route.get","ip":"10.168.0.20"})")["route"]["prefix"], "10.168.0.0/24");
    // Once a route sends to it, it gets one; withdrawn, the /32 goes at the next change.
    ASSERT_EQ(ask(R"({"op":"route.add","prefix":"10.244.5.0/24","via":"10.168.0.20","mode":"host-gw"})")["ok"], true);
    segment.entry(4).mac[5] = 0x21;
    segment.publish(5);
    control_->poll_neighbours();
    EXPECT_EQ(ask(R"({"op":"route.get","ip":"10.168.0.20"})")["route"]["prefix"], "10.168.0.20/32");
    ASSERT_EQ(ask(R"({"op":"route.del","prefix":"10.244.5.0/24"})")["ok"], true);
    segment.entry(4).mac[5] = 0x20;
    segment.publish(5);
    control_->poll_neighbours();
    EXPECT_EQ(ask(R"({"op":"route.get","ip":"10.168.0.20"})")["route"]["prefix"], "10.168.0.0/24");
    segment.publish(4);   // as before
    control_->poll_neighbours();

    const auto row = [&](const char* ip) {
        const json list = ask(R"({"op":"neigh.list"})");
        EXPECT_EQ(list["dataplane"]["pid"], ::getpid()) << list.dump();
        EXPECT_EQ(list["dataplane"]["alive"], true);
        for (const json& n : list["neighbours"])
            if (n["ip"] == ip)
                return n;
        ADD_FAILURE() << ip << " not in " << list.dump();
        return json();
    };
    json n = row("10.168.0.3");
    EXPECT_EQ(n["mac"], "02:00:00:00:00:03");
    EXPECT_EQ(n["source"], "arp");
    EXPECT_EQ(n["state"], "reachable");
    EXPECT_EQ(n["nexthops"], 1);
    n = row("10.168.0.1");
    EXPECT_EQ(n["state"], "stale");
    EXPECT_EQ(n["nexthops"], 2) << "the tunnel's record and the default route's";
    n = row("10.168.0.9");
    EXPECT_TRUE(n["mac"].is_null()) << "incomplete: listed, no MAC fed";
    EXPECT_EQ(n["source"], "arp");
    EXPECT_EQ(n["state"], "incomplete");
    EXPECT_EQ(n["probes"], 2);
    EXPECT_EQ(n["queued"], 1);
    EXPECT_EQ(row("10.168.0.8")["state"], "failed");
    EXPECT_TRUE(row("10.168.0.8")["mac"].is_null());

    // A person's MAC wins over the dataplane's; the list shows both.
    ASSERT_EQ(ask(R"({"op":"neigh.add","ip":"10.168.0.3","mac":"02:00:00:00:00:33"})")["ok"], true);
    EXPECT_EQ(record("10.244.1.1")->mac, (MacAddr{2, 0, 0, 0, 0, 0x33}));
    n = row("10.168.0.3");
    EXPECT_EQ(n["source"], "cli");
    EXPECT_EQ(n["mac"], "02:00:00:00:00:33");
    EXPECT_EQ(n["arp_mac"], "02:00:00:00:00:03");
    EXPECT_EQ(n["state"], "reachable");

    // The gateway moved to another MAC: its records follow within a poll.
    segment.entry(1).mac[5] = 0x11;
    segment.publish(4);
    control_->poll_neighbours();
    EXPECT_EQ(record("10.244.2.1")->mac, (MacAddr{2, 0, 0, 0, 0, 0x11}));
    const json arp = source_named("arp");
    EXPECT_EQ(arp["state"], "up");
    EXPECT_EQ(arp["detail"], segment.path());
    EXPECT_EQ(arp["arp"]["entries"], 4);
    EXPECT_EQ(arp["arp"]["with_mac"], 2);

    // A restarted daemon starts from the segment: the records keep their MACs.
    ASSERT_EQ(ask(R"({"op":"neigh.del","ip":"10.168.0.3"})")["ok"], true);
    const auto id = ask(R"({"op":"route.get","ip":"10.244.1.1"})")["table_nexthop"];
    ASSERT_NO_FATAL_FAILURE(restart());
    EXPECT_EQ(ask(R"({"op":"route.get","ip":"10.244.1.1"})")["table_nexthop"], id) << "same record, not re-added";
    EXPECT_EQ(record("10.244.1.1")->mac, mac3);
    EXPECT_EQ(record("10.244.2.1")->mac, (MacAddr{2, 0, 0, 0, 0, 0x11}));
}

TEST_F(Requests, ANeighbourWithAMacGetsAHostRouteWhileItHasOne) {
    ASSERT_EQ(ask(R"({"op":"neigh.add","ip":"10.168.0.7","mac":"02:00:00:00:00:07"})")["ok"], true);
    ASSERT_EQ(ask(R"({"op":"neigh.add","ip":"10.170.0.7","mac":"02:00:00:00:00:77"})")["ok"], true);
    const json host = ask(R"({"op":"route.get","ip":"10.168.0.7"})");
    EXPECT_EQ(host["route"]["prefix"], "10.168.0.7/32") << host.dump();
    EXPECT_EQ(host["route"]["effective_mode"], "host-gw");
    EXPECT_EQ(host["route"]["mac"], "02:00:00:00:00:07");
    ASSERT_TRUE(record("10.168.0.7")->mac_resolved());
    EXPECT_EQ(ask(R"({"op":"route.get","ip":"10.170.0.7"})")["route"]["prefix"], "0.0.0.0/0")
        << "off the uplink: no host route";
    EXPECT_EQ(source_named("connected")["routes"], 2);
    // Restarted: the CLI's saved neighbour brings its host route back.
    ASSERT_NO_FATAL_FAILURE(restart());
    EXPECT_EQ(ask(R"({"op":"route.get","ip":"10.168.0.7"})")["route"]["prefix"], "10.168.0.7/32");
    ASSERT_EQ(ask(R"({"op":"neigh.del","ip":"10.168.0.7"})")["ok"], true);
    EXPECT_EQ(ask(R"({"op":"route.get","ip":"10.168.0.7"})")["route"]["prefix"], "10.168.0.0/24");
    EXPECT_TRUE(record("10.168.0.7")->connected()) << "back to the resolver";
}

}  // namespace
}  // namespace podfwd::control
