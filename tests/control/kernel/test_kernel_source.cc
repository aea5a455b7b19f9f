// KernelSource against the real kernel, with iproute2 as the independent
// oracle. Every test runs in a fresh network namespace of its own (unshare in
// SetUp; the namespace dies with the test's sockets), so nothing here ever
// touches the host's routes. Needs root.
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "control/kernel/kernel_source.h"

namespace podfwd::control {
namespace {

using namespace std::chrono_literals;

struct PipeClose {
    void operator()(FILE* f) const noexcept { pclose(f); }
};
using Pipe = std::unique_ptr<FILE, PipeClose>;

// Runs `ip <args>`; false (with the command in the failure) when it fails.
::testing::AssertionResult ip(const std::string& args) {
    const std::string command = "ip " + args;
    if (std::system(command.c_str()) != 0)
        return ::testing::AssertionFailure() << "failed: " << command;
    return ::testing::AssertionSuccess();
}

std::string capture(const std::string& command) {
    Pipe pipe(popen(command.c_str(), "r"));
    std::string out;
    if (!pipe)
        return out;
    char buf[4096];
    for (size_t n; (n = std::fread(buf, 1, sizeof buf, pipe.get())) > 0;)
        out.append(buf, n);
    return out;
}

std::string describe(const KernelRoute& r) { return r.prefix.str() + " via " + format_ipv4(r.gateway); }

// Events as text, so that a failure shows what came instead.
std::string describe(const KernelEvent& event) {
    struct {
        std::string operator()(const RouteAdded& e) const { return "add " + describe(e.route); }
        std::string operator()(const RouteRemoved& e) const { return "del " + e.prefix.str(); }
        std::string operator()(const NeighbourUp& e) const {
            return "up " + format_ipv4(e.neighbour.ip) + " " + format_mac(e.neighbour.mac);
        }
        std::string operator()(const NeighbourDown& e) const { return "down " + format_ipv4(e.ip); }
        std::string operator()(const Resynced& e) const {
            return "resync " + std::to_string(e.snapshot.routes.size()) + " routes";
        }
    } visitor;
    return std::visit(visitor, event);
}

std::vector<std::string> describe(const std::vector<KernelRoute>& routes) {
    std::vector<std::string> out;
    for (const auto& r : routes)
        out.push_back(describe(r));
    return out;
}

// Drains until `count` events came or `timeout` passed, polling fd().
std::vector<KernelEvent> collect(KernelSource& source, std::size_t count, std::chrono::milliseconds timeout = 3s) {
    std::vector<KernelEvent> events;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (events.size() < count) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0)
            break;
        pollfd pfd{source.fd(), POLLIN, 0};
        if (poll(&pfd, 1, static_cast<int>(left.count())) <= 0)
            continue;
        auto drained = source.drain();
        if (!drained) {
            ADD_FAILURE() << drained.error().message;
            break;
        }
        for (auto& e : *drained)
            events.push_back(std::move(e));
    }
    return events;
}

std::vector<std::string> collect_text(KernelSource& source, std::size_t count) {
    std::vector<std::string> out;
    for (const auto& e : collect(source, count))
        out.push_back(describe(e));
    return out;
}

// Everything that comes until nothing has come for `quiet`: link changes
// reach the socket in steps (the carrier and operstate of a veth and its
// peer follow from the link watcher, up to a second later).
std::vector<KernelEvent> settle(KernelSource& source, std::chrono::milliseconds quiet = 1500ms) {
    std::vector<KernelEvent> events;
    for (;;) {
        auto more = collect(source, 1, quiet);
        if (more.empty())
            return events;
        for (auto& e : more)
            events.push_back(std::move(e));
    }
}

// True when `ip -j link show dev` lists the device as up with carrier and
// operstate UP: by then the notifications of its coming up have been sent
// (the link watcher changes operstate and notifies under one RTNL lock,
// which `ip link show` also takes).
bool link_settled(const std::string& dev) {
    const auto json = nlohmann::json::parse(capture("ip -j link show dev " + dev), nullptr, false);
    if (!json.is_array() || json.size() != 1)
        return false;
    const auto& flags = json[0].value("flags", nlohmann::json::array());
    const auto has = [&](const char* flag) { return std::find(flags.begin(), flags.end(), flag) != flags.end(); };
    return has("UP") && has("LOWER_UP") && json[0].value("operstate", "") == "UP";
}

::testing::AssertionResult wait_settled(std::initializer_list<const char*> devs) {
    const auto deadline = std::chrono::steady_clock::now() + 3s;
    for (const char* dev : devs)
        while (!link_settled(dev)) {
            if (std::chrono::steady_clock::now() > deadline)
                return ::testing::AssertionFailure() << dev << " did not come up";
            std::this_thread::sleep_for(10ms);
        }
    return ::testing::AssertionSuccess();
}

KernelOptions bird_table_100(bool neighbours = false) {
    return KernelOptions{100u, std::uint8_t{12}, neighbours};
}

class KernelSourceTest : public ::testing::Test {
protected:
    void SetUp() override {
        if (geteuid() != 0)
            GTEST_SKIP() << "needs root for a private network namespace";
        // Fatal on failure: the test body (and its `ip` commands) never runs
        // outside the private namespace.
        ASSERT_EQ(unshare(CLONE_NEWNET), 0) << std::strerror(errno);
        ASSERT_TRUE(ip("link set lo up"));
        // Some kernels are built without the dummy driver: a veth pair with
        // both ends up serves the same purpose.
        if (std::system("ip link add d0 type dummy 2>/dev/null") != 0) {
            veth_ = true;
            ASSERT_TRUE(ip("link add d0 type veth peer name d0p"));
            ASSERT_TRUE(ip("link set d0p up"));
        }
        ASSERT_TRUE(ip("addr add 10.168.0.1/24 dev d0"));
        ASSERT_TRUE(ip("link set d0 up"));
        // The source resyncs on link state changes; a late carrier change
        // of d0 or its peer would show up as a Resynced in the test.
        ASSERT_TRUE(veth_ ? wait_settled({"d0", "d0p"}) : wait_settled({"d0"}));
    }

    bool veth_ = false;

    // open() failing in a fresh namespace means a broken environment: stop.
    static KernelSource open(const KernelOptions& options) {
        auto source = KernelSource::open(options);
        if (!source) {
            std::fprintf(stderr, "KernelSource::open: %s\n", source.error().message.c_str());
            std::abort();
        }
        return std::move(source).value();
    }
};

// Routes a source with table 100 and protocol bird does not mirror: other
// tables and protocols, then routes of table 100 / bird that are not a
// single-gateway unicast route (counted as ignored).
constexpr const char* kNotMirrored[] = {
    "10.244.2.0/24 via 10.168.0.3 proto static table 100",
    "10.244.3.0/24 via 10.168.0.3 proto bird table 200",
    "10.244.4.0/24 via 10.168.0.3 proto bird",
    "10.9.0.0/16 dev d0 table 100 proto bird",
    "blackhole 10.10.0.0/16 table 100 proto bird",
    "10.11.0.0/16 table 100 proto bird nexthop via 10.168.0.3 nexthop via 10.168.0.4",
};
constexpr std::uint64_t kIgnoredOfBird100 = 3;

TEST_F(KernelSourceTest, DumpSeesOnlyTheChosenTableAndProtocol) {
    ASSERT_TRUE(ip("route add 10.244.1.0/24 via 10.168.0.3 proto bird table 100"));
    ASSERT_TRUE(ip("route add default via 10.168.0.2 proto bird table 100"));
    for (const char* route : kNotMirrored)
        ASSERT_TRUE(ip(std::string("route add ") + route));

    auto source = open(bird_table_100());
    auto snapshot = source.dump();
    ASSERT_TRUE(snapshot) << snapshot.error().message;
    EXPECT_EQ(describe(snapshot->routes),
              (std::vector<std::string>{"0.0.0.0/0 via 10.168.0.2", "10.244.1.0/24 via 10.168.0.3"}));
    EXPECT_TRUE(snapshot->neighbours.empty());
    EXPECT_EQ(snapshot->ignored, kIgnoredOfBird100);
    EXPECT_EQ(source.ignored(), kIgnoredOfBird100);

    // Any protocol in table 100; any table with protocol bird.
    auto by_table = open(KernelOptions{100u, std::nullopt, false});
    EXPECT_EQ(describe(by_table.dump()->routes),
              (std::vector<std::string>{"0.0.0.0/0 via 10.168.0.2", "10.244.1.0/24 via 10.168.0.3",
                                        "10.244.2.0/24 via 10.168.0.3"}));
    auto by_protocol = open(KernelOptions{std::nullopt, std::uint8_t{12}, false});
    EXPECT_EQ(describe(by_protocol.dump()->routes),
              (std::vector<std::string>{"0.0.0.0/0 via 10.168.0.2", "10.244.1.0/24 via 10.168.0.3",
                                        "10.244.3.0/24 via 10.168.0.3", "10.244.4.0/24 via 10.168.0.3"}));
}

// One `ip` command and the one event it must cause.
struct Step {
    const char* command;
    const char* event;
};

void expect_steps(KernelSource& source, std::initializer_list<Step> steps) {
    for (const Step& step : steps) {
        ASSERT_TRUE(ip(step.command));
        EXPECT_EQ(collect_text(source, 1), std::vector<std::string>{step.event}) << "after: ip " << step.command;
    }
}

TEST_F(KernelSourceTest, AddReplaceDelete) {
    auto source = open(bird_table_100());
    ASSERT_TRUE(source.dump());
    expect_steps(source, {
        {"route add 10.244.1.0/24 via 10.168.0.3 proto bird table 100", "add 10.244.1.0/24 via 10.168.0.3"},
        {"route replace 10.244.1.0/24 via 10.168.0.4 proto bird table 100", "add 10.244.1.0/24 via 10.168.0.4"},
        {"route del 10.244.1.0/24 proto bird table 100", "del 10.244.1.0/24"},
        {"route add default via 10.168.0.2 proto bird table 100", "add 0.0.0.0/0 via 10.168.0.2"},
    });
}

// What is not mirrored leaves no event; the sentinel route after it shows
// the notifications in between were read and dropped.
TEST_F(KernelSourceTest, OtherRoutesAreNotEvents) {
    auto source = open(bird_table_100());
    ASSERT_TRUE(source.dump());
    for (const char* route : kNotMirrored)
        ASSERT_TRUE(ip(std::string("route add ") + route));
    ASSERT_TRUE(ip("route add 10.99.0.0/16 via 10.168.0.3 proto bird table 100"));
    EXPECT_EQ(collect_text(source, 1), std::vector<std::string>{"add 10.99.0.0/16 via 10.168.0.3"});
    EXPECT_EQ(source.ignored(), kIgnoredOfBird100);
}

TEST_F(KernelSourceTest, RouteThatStopsQualifyingIsRemoved) {
    auto source = open(bird_table_100());
    ASSERT_TRUE(source.dump());
    ASSERT_TRUE(ip("route add 10.244.1.0/24 via 10.168.0.3 proto bird table 100"));
    ASSERT_TRUE(ip("route add 10.244.2.0/24 via 10.168.0.3 proto bird table 100"));
    EXPECT_EQ(collect_text(source, 2), (std::vector<std::string>{"add 10.244.1.0/24 via 10.168.0.3",
                                                                 "add 10.244.2.0/24 via 10.168.0.3"}));
    // Same kernel key, other protocol: the kernel says NEWROUTE, not DELROUTE.
    ASSERT_TRUE(ip("route replace 10.244.1.0/24 via 10.168.0.3 proto static table 100"));
    // Same key, now a device route.
    ASSERT_TRUE(ip("route replace 10.244.2.0/24 dev d0 proto bird table 100"));
    EXPECT_EQ(collect_text(source, 2), (std::vector<std::string>{"del 10.244.1.0/24", "del 10.244.2.0/24"}));
}

TEST_F(KernelSourceTest, LowestMetricWins) {
    auto source = open(KernelOptions{100u, std::nullopt, false});
    ASSERT_TRUE(source.dump());
    ASSERT_TRUE(ip("route add 10.244.1.0/24 via 10.168.0.4 table 100 metric 200"));
    ASSERT_TRUE(ip("route add 10.244.1.0/24 via 10.168.0.3 table 100 metric 100"));
    EXPECT_EQ(collect_text(source, 2), (std::vector<std::string>{"add 10.244.1.0/24 via 10.168.0.4",
                                                                 "add 10.244.1.0/24 via 10.168.0.3"}));
    auto snapshot = source.dump();
    ASSERT_TRUE(snapshot);
    EXPECT_EQ(describe(snapshot->routes), std::vector<std::string>{"10.244.1.0/24 via 10.168.0.3"});
    expect_steps(source, {
        {"route del 10.244.1.0/24 table 100 metric 100", "add 10.244.1.0/24 via 10.168.0.4"},
        {"route del 10.244.1.0/24 table 100 metric 200", "del 10.244.1.0/24"},
    });
}

TEST_F(KernelSourceTest, Neighbours) {
    ASSERT_TRUE(ip("neigh add 10.168.0.9 lladdr 02:00:00:00:00:09 dev d0 nud permanent"));
    auto source = open(bird_table_100(true));
    auto snapshot = source.dump();
    ASSERT_TRUE(snapshot) << snapshot.error().message;
    const KernelNeighbour nine{*parse_ipv4("10.168.0.9"), *parse_mac("02:00:00:00:00:09")};
    EXPECT_EQ(snapshot->neighbours, std::vector<KernelNeighbour>{nine});

    expect_steps(source, {
        {"neigh add 10.168.0.3 lladdr 02:00:00:00:00:03 dev d0 nud permanent", "up 10.168.0.3 02:00:00:00:00:03"},
        {"neigh replace 10.168.0.3 lladdr 02:00:00:00:00:13 dev d0 nud permanent", "up 10.168.0.3 02:00:00:00:00:13"},
        {"neigh del 10.168.0.3 dev d0", "down 10.168.0.3"},
    });
    // Routes and neighbours share the socket, in kernel order.
    ASSERT_TRUE(ip("route add 10.244.1.0/24 via 10.168.0.3 proto bird table 100"));
    ASSERT_TRUE(ip("neigh del 10.168.0.9 dev d0"));
    EXPECT_EQ(collect_text(source, 2),
              (std::vector<std::string>{"add 10.244.1.0/24 via 10.168.0.3", "down 10.168.0.9"}));
}

TEST_F(KernelSourceTest, NeighboursOnlyWhenAsked) {
    auto source = open(bird_table_100());
    ASSERT_TRUE(source.dump());
    ASSERT_TRUE(ip("neigh add 10.168.0.3 lladdr 02:00:00:00:00:03 dev d0 nud permanent"));
    ASSERT_TRUE(ip("route add 10.99.0.0/16 via 10.168.0.3 proto bird table 100"));
    EXPECT_EQ(collect_text(source, 1), std::vector<std::string>{"add 10.99.0.0/16 via 10.168.0.3"});
    EXPECT_TRUE(source.dump()->neighbours.empty());
}

// The oracle: what iproute2 lists for table 100, protocol bird.
std::set<std::string> ip_routes_bird_100() {
    std::set<std::string> out;
    const auto json = nlohmann::json::parse(capture("ip -j route show table 100 proto bird"));
    for (const auto& r : json) {
        std::string dst = r.at("dst").get<std::string>();
        if (dst == "default")
            dst = "0.0.0.0/0";
        else if (dst.find('/') == std::string::npos)
            dst += "/32";
        out.insert(dst + " via " + r.at("gateway").get<std::string>());
    }
    return out;
}

TEST_F(KernelSourceTest, OverrunResyncsWithAFullSnapshot) {
    auto source = open(bird_table_100());
    ASSERT_TRUE(source.dump());
    // Smallest buffer the kernel allows: a handful of notifications.
    const int tiny = 1;
    ASSERT_EQ(setsockopt(source.fd(), SOL_SOCKET, SO_RCVBUF, &tiny, sizeof tiny), 0);

    constexpr int kRoutes = 2000;
    constexpr int kDeleted = 100;
    {
        Pipe batch(popen("ip -batch -", "w"));
        ASSERT_TRUE(batch);
        for (int i = 0; i < kRoutes; ++i)
            std::fprintf(batch.get(), "route add %s via 10.168.0.%d proto bird table 100\n",
                         Prefix4{*parse_ipv4("10.100.0.0") + (static_cast<Ipv4Addr>(i) << 8), 24}.str().c_str(),
                         3 + i % 2);
        // The first notifications stay queued before the overrun; these
        // deletes are lost with it. Replayed after the snapshot, the queued
        // adds would resurrect deleted routes.
        for (int i = 0; i < kDeleted; ++i)
            std::fprintf(batch.get(), "route del %s proto bird table 100\n",
                         Prefix4{*parse_ipv4("10.100.0.0") + (static_cast<Ipv4Addr>(i) << 8), 24}.str().c_str());
        ASSERT_EQ(pclose(batch.release()), 0);
    }

    const auto events = collect(source, 1);
    ASSERT_EQ(events.size(), 1u);
    const auto* resynced = std::get_if<Resynced>(&events[0]);
    ASSERT_NE(resynced, nullptr) << describe(events[0]);
    const auto expected = ip_routes_bird_100();
    EXPECT_EQ(expected.size(), static_cast<std::size_t>(kRoutes - kDeleted));
    const auto got = describe(resynced->snapshot.routes);
    EXPECT_EQ(std::set<std::string>(got.begin(), got.end()), expected);

    // Nothing stale after the snapshot; notifications flow again.
    ASSERT_TRUE(ip("route add 10.99.0.0/16 via 10.168.0.3 proto bird table 100"));
    EXPECT_EQ(collect_text(source, 1), std::vector<std::string>{"add 10.99.0.0/16 via 10.168.0.3"});
}

// Every event is a Resynced whose snapshot holds exactly `routes`, and
// there is at least one.
::testing::AssertionResult only_resyncs(const std::vector<KernelEvent>& events,
                                        const std::vector<std::string>& routes) {
    if (events.empty())
        return ::testing::AssertionFailure() << "no event";
    for (const auto& event : events) {
        const auto* resynced = std::get_if<Resynced>(&event);
        if (resynced == nullptr)
            return ::testing::AssertionFailure() << "not a resync: " << describe(event);
        if (const auto got = describe(resynced->snapshot.routes); got != routes)
            return ::testing::AssertionFailure() << "resync with " << ::testing::PrintToString(got);
    }
    return ::testing::AssertionSuccess();
}

const std::string kRoute1 = "10.244.1.0/24 via 10.168.0.3";

// IPv4 flushes the routes through an address or a link without RTM_DELROUTE;
// the source answers the address or link notification with a snapshot.
// `ip_routes_bird_100()` is the oracle: the kernel no longer has the route.
std::vector<KernelEvent> expect_flushed_by(KernelSource& source, const std::string& command) {
    EXPECT_TRUE(ip("route add " + kRoute1 + " proto bird table 100"));
    EXPECT_EQ(collect_text(source, 1), std::vector<std::string>{"add " + kRoute1});
    EXPECT_EQ(ip_routes_bird_100(), std::set<std::string>{kRoute1});

    EXPECT_TRUE(ip(command));
    auto events = settle(source);
    EXPECT_TRUE(ip_routes_bird_100().empty()) << "the kernel kept the route after: ip " << command;
    EXPECT_TRUE(only_resyncs(events, {})) << "after: ip " << command;
    return events;
}

// After a resync, notifications are applied again.
void expect_notifications_flow(KernelSource& source) {
    ASSERT_TRUE(ip("route add 10.99.0.0/16 via 10.168.0.3 proto bird table 100"));
    EXPECT_EQ(collect_text(source, 1), std::vector<std::string>{"add 10.99.0.0/16 via 10.168.0.3"});
}

TEST_F(KernelSourceTest, AddressRemovalResyncsWithoutTheFlushedRoutes) {
    auto source = open(bird_table_100());
    ASSERT_TRUE(source.dump());
    // The address, its local and subnet routes and the flush: one snapshot.
    EXPECT_EQ(expect_flushed_by(source, "addr del 10.168.0.1/24 dev d0").size(), 1u);
    ASSERT_TRUE(ip("addr add 10.168.0.1/24 dev d0"));
    const auto readded = settle(source);
    EXPECT_EQ(readded.size(), 1u);
    EXPECT_TRUE(only_resyncs(readded, {}));
    expect_notifications_flow(source);
}

TEST_F(KernelSourceTest, LinkDownResyncsWithoutTheFlushedRoutes) {
    auto source = open(bird_table_100());
    ASSERT_TRUE(source.dump());
    expect_flushed_by(source, "link set d0 down");
    // Up again: IPv4 does not bring the flushed routes back, nor does the source.
    ASSERT_TRUE(ip("link set d0 up"));
    EXPECT_TRUE(only_resyncs(settle(source), {}));
    EXPECT_TRUE(ip_routes_bird_100().empty());
    expect_notifications_flow(source);
}

// RTM_NEWLINK also reports MTU, alias or MAC changes; with the link's
// up/carrier/oper state as before, they flush nothing and cost no dump.
TEST_F(KernelSourceTest, LinkChangesThatFlushNothingAreNotEvents) {
    auto source = open(bird_table_100());
    ASSERT_TRUE(source.dump());
    // The source has not seen d0 yet: its first message counts as a change.
    ASSERT_TRUE(ip("link set d0 mtu 1400"));
    const auto first = settle(source);
    EXPECT_EQ(first.size(), 1u);
    EXPECT_TRUE(only_resyncs(first, {}));

    ASSERT_TRUE(ip("link set d0 mtu 1300"));
    ASSERT_TRUE(ip("link set d0 alias uplink"));
    ASSERT_TRUE(ip("link set d0 address 02:00:00:00:00:01"));
    expect_notifications_flow(source);
    EXPECT_TRUE(settle(source, 300ms).empty());
}

// Routes through d0 are untouched when another link goes down, but the
// source does not know which routes a link carried: a snapshot all the same.
TEST_F(KernelSourceTest, OtherLinkDownStillResyncs) {
    ASSERT_TRUE(ip("link add e0 type veth peer name e0p"));
    ASSERT_TRUE(ip("link set e0p up"));
    ASSERT_TRUE(ip("link set e0 up"));
    ASSERT_TRUE(wait_settled({"e0", "e0p"}));
    auto source = open(bird_table_100());
    ASSERT_TRUE(source.dump());
    ASSERT_TRUE(ip("route add " + kRoute1 + " proto bird table 100"));
    ASSERT_EQ(collect_text(source, 1), std::vector<std::string>{"add " + kRoute1});
    ASSERT_TRUE(ip("link set e0 down"));
    EXPECT_TRUE(only_resyncs(settle(source), {kRoute1}));
}

TEST_F(KernelSourceTest, MovedSourceKeepsItsSocket) {
    auto source = open(bird_table_100());
    const int fd = source.fd();
    KernelSource moved = std::move(source);
    EXPECT_EQ(moved.fd(), fd);
    EXPECT_EQ(moved.options().table, 100u);
    ASSERT_TRUE(moved.dump());
    ASSERT_TRUE(ip("route add 10.244.1.0/24 via 10.168.0.3 proto bird table 100"));
    EXPECT_EQ(collect_text(moved, 1), std::vector<std::string>{"add 10.244.1.0/24 via 10.168.0.3"});
}

}  // namespace
}  // namespace podfwd::control
