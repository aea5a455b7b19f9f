// Issue 17: --accept filters every network source. etcd: a route outside it
// is refused with an error naming the prefix and its key. The kernel: the
// daemon, started on a private network namespace's routes (iproute2 the
// oracle), mirrors only the pod networks, never the default route unless
// --accept-default-route, and counts what it ignored in `sources`.
#include <gtest/gtest.h>
#include <poll.h>
#include <sched.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <set>

#include "control/daemon/control.h"
#include "control/daemon/etcd_routes.h"

namespace podfwd::control {
namespace {

using nlohmann::json;

Prefix4 P(const char* text) { return *Prefix4::parse(text); }

NodeConfig node() {
    NodeConfig n;
    n.node_ip = *parse_ipv4("10.168.0.2");
    n.uplink = P("10.168.0.0/24");
    n.gateway = *parse_ipv4("10.168.0.1");
    n.pod_cidrs = {P("10.244.0.0/24")};
    return n;
}

etcd::EtcdRoute lease(const char* prefix, etcd::Encap encap = etcd::Encap::kHostGw) {
    etcd::EtcdRoute r;
    r.prefix = P(prefix);
    r.via = encap == etcd::Encap::kLocal ? 0 : *parse_ipv4("10.168.0.3");
    r.encap = encap;
    r.key = std::string("/coreos.com/network/subnets/") + prefix;
    return r;
}

TEST(EtcdAccept, OutsideThePodNetworksIsRefusedPerRoute) {
    const AcceptFilter filter({P("10.244.0.0/16")}, node());
    auto inside = accepted_etcd_route(lease("10.244.1.0/24"), node(), filter);
    ASSERT_TRUE(inside) << inside.error().message;
    EXPECT_EQ(inside->prefix, P("10.244.1.0/24"));
    for (const char* refused : {"192.168.1.0/24", "0.0.0.0/0", "10.168.0.0/24", "10.244.0.0/25", "10.0.0.0/8"}) {
        auto r = accepted_etcd_route(lease(refused), node(), filter);
        ASSERT_FALSE(r) << refused;
        EXPECT_NE(r.error().message.find(refused), std::string::npos) << r.error().message;
        EXPECT_NE(r.error().message.find("/coreos.com/network/subnets/"), std::string::npos) << r.error().message;
    }
    EXPECT_NE(accepted_etcd_route(lease("192.168.1.0/24"), node(), filter).error().message.find("--accept"),
              std::string::npos);
}

// A Calico block affine to this node is its own: it may overlap --pod-cidr,
// but not leave --accept.
TEST(EtcdAccept, ThisNodesOwnBlocksInsideAcceptOnly) {
    const AcceptFilter filter({P("10.244.0.0/16")}, node());
    EXPECT_TRUE(accepted_etcd_route(lease("10.244.0.64/26", etcd::Encap::kLocal), node(), filter));
    EXPECT_FALSE(accepted_etcd_route(lease("192.168.0.64/26", etcd::Encap::kLocal), node(), filter));
    EXPECT_FALSE(accepted_etcd_route(lease("10.244.0.64/26"), node(), filter)) << "another node's claim on our pods";
}

bool ip(const std::string& args) { return std::system(("ip " + args).c_str()) == 0; }

class KernelAccept : public ::testing::Test {
protected:
    void SetUp() override {
        // The namespace dies with this process: nothing touches the host's routes.
        if (::geteuid() != 0 || ::unshare(CLONE_NEWNET) != 0)
            GTEST_SKIP() << "needs root (a network namespace of its own)";
        ASSERT_TRUE(ip("link add kd0 type veth peer name kd1") && ip("addr add 10.168.0.2/24 dev kd0") &&
                    ip("link set kd0 up") && ip("link set kd1 up"));
        ASSERT_TRUE(ip("route add default via 10.168.0.1"));
        ASSERT_TRUE(ip("route add 10.244.5.0/24 via 10.168.0.3"));
        ASSERT_TRUE(ip("route add 10.244.6.0/24 via 10.168.0.4"));
        ASSERT_TRUE(ip("route add 192.168.7.0/24 via 10.168.0.3"));
        ASSERT_TRUE(ip("route add 10.244.0.128/25 via 10.168.0.3"));   // inside our own pods: never
        const std::string name = "podfwd-test-kaccept-" + std::to_string(::getpid());
        dir_ = std::filesystem::temp_directory_path() / name;
        std::filesystem::create_directories(dir_);
        (void)lpm::TableWriter::unlink(name);
        options_.table = name;
        options_.state_dir = dir_.string();
        options_.node = node();
        options_.default_route = false;   // only the kernel may state 0.0.0.0/0 here
        options_.kernel = KernelOptions{};
        options_.accept = {P("10.244.0.0/16")};
    }
    void TearDown() override {
        control_.reset();
        (void)lpm::TableWriter::unlink(options_.table);
        std::filesystem::remove_all(dir_);
    }
    void start() {
        auto c = Control::start(options_);
        ASSERT_TRUE(c) << c.error().message;
        control_ = std::move(*c);
    }
    json ask(const json& request) { return json::parse(control_->handle_line(request.dump())); }
    std::set<std::string> kernel_routes() {
        std::set<std::string> prefixes;
        const json list = ask({{"op", "route.list"}, {"source", "kernel"}});
        for (const json& r : list["routes"])
            prefixes.insert(r["prefix"].get<std::string>());
        return prefixes;
    }
    json kernel_source() {
        const json sources = ask({{"op", "sources"}});
        for (const json& s : sources["sources"])
            if (s["name"] == "kernel")
                return s;
        return nullptr;
    }

    std::filesystem::path dir_;
    DaemonOptions options_;
    std::unique_ptr<Control> control_;
};

TEST_F(KernelAccept, OnlyThePodNetworksAreMirrored) {
    ASSERT_NO_FATAL_FAILURE(start());
    EXPECT_EQ(kernel_routes(), (std::set<std::string>{"10.244.5.0/24", "10.244.6.0/24"}));
    const json s = kernel_source();
    EXPECT_EQ(s["refused"], 0) << "ignored, not refused: " << s.dump();
    // The default route, 192.168.7.0/24 and 10.244.0.128/25 (the uplink's
    // link route has no gateway: the kernel source never states it).
    EXPECT_NE(s["detail"].get<std::string>().find("3 routes outside --accept ignored"), std::string::npos) << s.dump();
    // Changes follow the same filter.
    ASSERT_TRUE(ip("route add 10.244.9.0/24 via 10.168.0.5") && ip("route add 172.16.0.0/16 via 10.168.0.5"));
    std::set<std::string> expected{"10.244.5.0/24", "10.244.6.0/24", "10.244.9.0/24"};
    for (int i = 0; i < 200 && kernel_routes() != expected; ++i) {   // bounded: ~2 s of netlink
        struct pollfd pfd {};
        for (SourceFd& f : control_->source_fds()) {
            pfd = {f.fd, POLLIN, 0};
            if (::poll(&pfd, 1, 10) > 0)
                f.on_readable();
        }
    }
    EXPECT_EQ(kernel_routes(), expected);
    EXPECT_NE(kernel_source()["detail"].get<std::string>().find("4 routes outside --accept ignored"), std::string::npos)
        << kernel_source().dump();
}

TEST_F(KernelAccept, TheDefaultRouteOnlyWhenAcceptedByName) {
    options_.accept_default_route = true;
    ASSERT_NO_FATAL_FAILURE(start());
    EXPECT_EQ(kernel_routes(), (std::set<std::string>{"0.0.0.0/0", "10.244.5.0/24", "10.244.6.0/24"}));
}

}  // namespace
}  // namespace podfwd::control
