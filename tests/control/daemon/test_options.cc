// podfwd-control's etcd and BGP options, from the command line and the INI file:
// what they become, and the one-line error for each mistake.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "control/daemon/options.h"

using namespace podfwd;
using namespace podfwd::control;

namespace {

Result<ParsedDaemonArgs> parse(std::vector<std::string> args) {
    args.insert(args.begin(), {"podfwd-control", "--node-ip", "10.168.0.2", "--uplink", "10.168.0.0/24",
                               "--pod-cidr", "10.244.0.0/24"});
    std::vector<char*> argv;
    for (std::string& a : args)
        argv.push_back(a.data());
    return parse_daemon_options(static_cast<int>(argv.size()), argv.data());
}

std::string error_of(std::vector<std::string> args) {
    auto parsed = parse(std::move(args));
    return parsed ? "(parsed)" : parsed.error().message;
}

TEST(EtcdOptions, OffWithoutEndpoints) {
    auto parsed = parse({});
    ASSERT_TRUE(parsed);
    EXPECT_FALSE(parsed->options.etcd.has_value());
}

TEST(EtcdOptions, FlannelDefaults) {
    auto parsed = parse({"--etcd-endpoints", "http://127.0.0.1:2379/,https://10.0.0.1:2379", "--node-name", "n1",
                         "--vtep-mac", "0a:00:00:00:00:01", "--accept", "10.244.0.0/16"});
    ASSERT_TRUE(parsed) << parsed.error().message;
    const auto& e = *parsed->options.etcd;
    EXPECT_EQ(e.client.endpoints, (std::vector<std::string>{"http://127.0.0.1:2379", "https://10.0.0.1:2379"}));
    EXPECT_EQ(e.layout, etcd::LayoutKind::kFlannel);
    EXPECT_EQ(e.prefix, "/coreos.com/network");
    EXPECT_EQ(e.node_name, "n1");
    EXPECT_EQ(e.node_ip, parse_ipv4("10.168.0.2").value());
    EXPECT_EQ(e.pod_cidr, Prefix4::parse("10.244.0.0/24").value());
    EXPECT_EQ(e.vtep_mac, parse_mac("0a:00:00:00:00:01"));
    EXPECT_EQ(e.lease_ttl, std::chrono::seconds(86400));
    EXPECT_EQ(parsed->options.etcd_start_wait, std::chrono::milliseconds(5000));
}

TEST(EtcdOptions, CalicoFromTheIniFile) {
    const auto dir = std::filesystem::temp_directory_path() / ("podfwd-options-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    const auto ini = dir / "control.ini";
    std::ofstream(ini) << "etcd-endpoints = http://127.0.0.1:2379\netcd-layout = calico\n"
                          "etcd-start-wait = 250\nnode-name = worker-3\naccept = 10.244.0.0/16\n";
    auto parsed = parse({"--config", ini.string()});
    std::filesystem::remove_all(dir);
    ASSERT_TRUE(parsed) << parsed.error().message;
    const auto& e = *parsed->options.etcd;
    EXPECT_EQ(e.layout, etcd::LayoutKind::kCalico);
    EXPECT_EQ(e.prefix, "/calico");
    EXPECT_EQ(e.node_name, "worker-3");
    EXPECT_EQ(parsed->options.etcd_start_wait, std::chrono::milliseconds(250));
}

TEST(EtcdOptions, EachMistakeIsOneLine) {
    const std::string url = "http://127.0.0.1:2379";
    EXPECT_EQ(error_of({"--etcd-layout", "calico"}), "--etcd-* options, --node-name and --vtep-mac need --etcd-endpoints");
    EXPECT_EQ(error_of({"--node-name", "n1"}), "--etcd-* options, --node-name and --vtep-mac need --etcd-endpoints");
    EXPECT_EQ(error_of({"--etcd-endpoints", url, "--etcd-cafile", "/proc/self/status"}),
              "--etcd-endpoints 'http://127.0.0.1:2379' is plain http: the TLS files need https:// endpoints");
    EXPECT_EQ(error_of({"--etcd-endpoints", url, "--etcd-layout", "calico", "--vtep-mac", "0a:00:00:00:00:01"}),
              "--vtep-mac and --etcd-lease-ttl are for the flannel layout (this node's subnet lease)");
    EXPECT_EQ(error_of({"--etcd-endpoints", url, "--etcd-start-wait", "600000"}),
              "--etcd-start-wait 600000 is out of range 0..60000 ms");
    EXPECT_EQ(error_of({"--etcd-endpoints", "127.0.0.1:2379"}),
              "--etcd-endpoints: '127.0.0.1:2379' is not an http:// or https:// URL");
    EXPECT_EQ(error_of({"--etcd-endpoints", url + ","}), "--etcd-endpoints: '' is not an http:// or https:// URL");
    EXPECT_EQ(error_of({"--etcd-endpoints", url, "--etcd-layout", "calcio"}), "--etcd-layout 'calcio': flannel or calico");
    EXPECT_EQ(error_of({"--etcd-endpoints", url, "--etcd-prefix", "coreos"}),
              "--etcd-prefix 'coreos': an absolute key prefix without a trailing /");
    EXPECT_EQ(error_of({"--etcd-endpoints", url, "--vtep-mac", "zz"}), "--vtep-mac 'zz' is not a MAC address");
    EXPECT_EQ(error_of({"--etcd-endpoints", url, "--etcd-lease-ttl", "2"}),
              "--etcd-lease-ttl 2 is out of range 5..2592000 seconds");
    EXPECT_EQ(error_of({"--etcd-endpoints", "https://127.0.0.1:2379", "--etcd-certfile", "/proc/self/status"}),
              "--etcd-certfile and --etcd-keyfile go together");
    EXPECT_EQ(error_of({"--etcd-endpoints", "https://127.0.0.1:2379", "--etcd-cafile", "/nonexistent/ca.crt"}),
              "--etcd-cafile /nonexistent/ca.crt: No such file or directory");
}

TEST(BgpOptions, OffWithoutAs) {
    auto parsed = parse({});
    ASSERT_TRUE(parsed);
    EXPECT_FALSE(parsed->options.bgp.has_value());
}

TEST(BgpOptions, DefaultsAndPeers) {
    auto parsed = parse({"--bgp-as", "64512", "--accept", "10.244.0.0/16", "--bgp-peer", "10.168.0.10,as=64512",
                         "--bgp-peer", "10.168.1.3,as=64513,passive,hold=9", "--socket", "/run/x/t.sock",
                         "--state-dir", "/var/lib/x", "--table", "t"});
    ASSERT_TRUE(parsed) << parsed.error().message;
    const auto& b = *parsed->options.bgp;
    EXPECT_EQ(b.asn, 64512u);
    EXPECT_EQ(b.router_id, *parse_ipv4("10.168.0.2"));
    EXPECT_EQ(b.node_ip, *parse_ipv4("10.168.0.2"));
    EXPECT_EQ(b.listen_port, 179);
    EXPECT_EQ(b.restart_time, 120u);
    ASSERT_EQ(b.peers.size(), 2u);
    EXPECT_EQ(b.peers[0].hold_time, 90u);
    EXPECT_EQ(b.peers[1].hold_time, 9u);
    EXPECT_TRUE(b.peers[1].passive);
    ASSERT_EQ(b.advertise.size(), 1u);
    EXPECT_EQ(b.advertise[0], Prefix4::parse("10.244.0.0/24").value());
    EXPECT_TRUE(b.filter.accepts(Prefix4::parse("10.244.1.0/24").value()));
    EXPECT_FALSE(b.filter.accepts(Prefix4::parse("10.244.0.0/25").value()));   // our own
    EXPECT_EQ(b.gobgpd, "gobgpd");
    EXPECT_TRUE(b.api.empty());
    EXPECT_EQ(b.child_api_socket, "/run/x/t.gobgp.sock");
    EXPECT_EQ(b.child_log, "/var/lib/x/t.gobgpd.log");
}

TEST(BgpOptions, FromTheIniFile) {
    const auto dir = std::filesystem::temp_directory_path() / ("podfwd-bgp-options-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    const auto ini = dir / "control.ini";
    std::ofstream(ini) << "bgp-as = 65001\naccept = 10.244.0.0/16\naccept = 10.96.0.0/12\n"
                          "bgp-peer = 10.168.0.3,as=65002\nbgp-restart-time = 0\nbgp-listen-port = 1790\n"
                          "gobgp-api = 127.0.0.1:50051\n";
    auto parsed = parse({"--config", ini.string()});
    std::filesystem::remove_all(dir);
    ASSERT_TRUE(parsed) << parsed.error().message;
    const auto& b = *parsed->options.bgp;
    EXPECT_EQ(b.asn, 65001u);
    EXPECT_EQ(parsed->options.accept.size(), 2u);
    EXPECT_EQ(b.restart_time, 0u);
    EXPECT_EQ(b.peers.at(0).restart_time, 0u);
    EXPECT_EQ(b.listen_port, 1790);
    EXPECT_EQ(b.api, "127.0.0.1:50051");
}

TEST(BgpOptions, EachMistakeIsOneLine) {
    EXPECT_EQ(error_of({"--bgp-as", "64512"}),
              "--bgp-as needs --accept: the pod networks BGP routes may be in (e.g. --accept 10.244.0.0/16)");
    EXPECT_EQ(error_of({"--bgp-peer", "10.168.0.3,as=1"}), "--bgp-* options, --gobgpd and --gobgp-api need --bgp-as");
    EXPECT_EQ(error_of({"--accept", "10.244.0.0/16"}),
              "--accept filters the network sources' routes: it needs --kernel, --etcd-endpoints or --bgp-as");
    EXPECT_EQ(error_of({"--bgp-as", "0", "--accept", "10.244.0.0/16"}), "--bgp-as 0 is out of range 1..4294967295");
    EXPECT_EQ(error_of({"--bgp-as", "1", "--accept", "10.244.0.0/16", "--bgp-hold-time", "2"}),
              "--bgp-hold-time 2 is out of range 3..65535 seconds");
    EXPECT_EQ(error_of({"--bgp-as", "1", "--accept", "10.244.0.0/16", "--bgp-restart-time", "5000"}),
              "--bgp-restart-time 5000 is out of range 0..4095 seconds");
    EXPECT_EQ(error_of({"--bgp-as", "1", "--accept", "10.244.0.0/16", "--bgp-peer", "10.168.0.2,as=1"}),
              "--bgp-peer 10.168.0.2,as=1: that is this node");
    EXPECT_EQ(error_of({"--bgp-as", "1", "--accept", "10.244.0.0/16", "--bgp-peer", "10.168.0.3,as=1", "--bgp-peer",
                        "10.168.0.3,as=2"}),
              "--bgp-peer 10.168.0.3,as=2: 10.168.0.3 twice");
    EXPECT_EQ(error_of({"--bgp-as", "1", "--accept", "10.244.0.0/33"}).substr(0, 9), "--accept:");
    EXPECT_EQ(error_of({"--bgp-as", "1", "--accept", "10.244.0.0/16", "--bgp-peer", "10.168.0.3"}),
              "--bgp-peer '10.168.0.3': as=N is required");
}

}  // namespace

namespace {

// --accept is one filter for every network source, and every one needs it:
// without it the kernel source would mirror the default route and every table.
TEST(AcceptOptions, EveryNetworkSourceNeedsIt) {
    EXPECT_EQ(error_of({"--kernel"}),
              "--kernel needs --accept: the pod networks its routes may be in (e.g. --accept 10.244.0.0/16)");
    EXPECT_EQ(error_of({"--kernel", "--kernel-table", "100"}).substr(0, 20), "--kernel needs --acc");
    EXPECT_EQ(error_of({"--etcd-endpoints", "http://127.0.0.1:2379"}),
              "--etcd-endpoints needs --accept: the pod networks its routes may be in (e.g. --accept 10.244.0.0/16)");
    EXPECT_EQ(error_of({"--accept-default-route"}),
              "--accept filters the network sources' routes: it needs --kernel, --etcd-endpoints or --bgp-as");
    EXPECT_EQ(error_of({"--kernel", "--accept", "10.244.0.0/33"}).substr(0, 9), "--accept:");
    EXPECT_EQ(error_of({"--allow-empty-static"}), "--allow-empty-static needs --static-routes");
}

TEST(AcceptOptions, TheKernelsFilterKeepsThePodNetworksOnly) {
    auto parsed = parse({"--kernel", "--accept", "10.244.0.0/16", "--accept", "10.96.0.0/12"});
    ASSERT_TRUE(parsed) << parsed.error().message;
    const AcceptFilter f = parsed->options.accept_filter();
    EXPECT_TRUE(f.accepts(Prefix4::parse("10.244.7.0/24").value()));
    EXPECT_TRUE(f.accepts(Prefix4::parse("10.96.1.0/24").value()));
    EXPECT_FALSE(f.accepts(Prefix4::parse("0.0.0.0/0").value()));        // not without --accept-default-route
    EXPECT_FALSE(f.accepts(Prefix4::parse("192.168.1.0/24").value()));
    EXPECT_FALSE(f.accepts(Prefix4::parse("10.244.0.0/25").value()));    // our own pods
    EXPECT_FALSE(f.accepts(Prefix4::parse("10.168.0.0/24").value()));    // the uplink
}

TEST(AcceptOptions, TheDefaultRouteOnlyByName) {
    auto covering = parse({"--kernel", "--accept", "0.0.0.0/0"});
    ASSERT_TRUE(covering) << covering.error().message;
    EXPECT_FALSE(covering->options.accept_filter().accepts(Prefix4::parse("0.0.0.0/0").value()));
    EXPECT_TRUE(covering->options.accept_filter().accepts(Prefix4::parse("192.168.1.0/24").value()));
    auto named = parse({"--etcd-endpoints", "http://127.0.0.1:2379", "--accept", "10.244.0.0/16", "--accept-default-route"});
    ASSERT_TRUE(named) << named.error().message;
    EXPECT_TRUE(named->options.accept_filter().accepts(Prefix4::parse("0.0.0.0/0").value()));
    EXPECT_FALSE(named->options.accept_filter().accepts(Prefix4::parse("10.168.0.0/24").value()));
    auto only_default = parse({"--kernel", "--accept-default-route"});
    ASSERT_TRUE(only_default) << only_default.error().message;
    EXPECT_FALSE(only_default->options.accept_filter().accepts(Prefix4::parse("10.244.7.0/24").value()));
}

TEST(EmptyFileOptions, OffUnlessAsked) {
    auto plain = parse({"--static-routes", "/etc/podfwd/routes.conf"});
    ASSERT_TRUE(plain) << plain.error().message;
    EXPECT_FALSE(plain->options.allow_empty_static);
    EXPECT_FALSE(plain->options.allow_empty_cli_state);
    auto allowed = parse({"--static-routes", "/etc/podfwd/routes.conf", "--allow-empty-static", "--allow-empty-cli-state"});
    ASSERT_TRUE(allowed) << allowed.error().message;
    EXPECT_TRUE(allowed->options.allow_empty_static);
    EXPECT_TRUE(allowed->options.allow_empty_cli_state);
    const std::string usage = daemon_usage();
    for (const char* option : {"--allow-empty-static", "--allow-empty-cli-state", "--accept-default-route"})
        EXPECT_NE(usage.find(option), std::string::npos) << option;
}

TEST(NodeOptions, TheGatewaysDefaultRouteIsOnUnlessRefused) {
    auto parsed = parse({"--gateway", "10.168.0.1"});
    ASSERT_TRUE(parsed) << parsed.error().message;
    EXPECT_TRUE(parsed->options.default_route);
    EXPECT_EQ(parsed->options.node.gateway, parse_ipv4("10.168.0.1").value());
    parsed = parse({"--gateway", "10.168.0.1", "--no-default-route"});
    ASSERT_TRUE(parsed) << parsed.error().message;
    EXPECT_FALSE(parsed->options.default_route);
    EXPECT_NE(daemon_usage().find("--no-default-route"), std::string::npos);
}

TEST(NodeOptions, AGatewayOffTheUplinkIsRefusedClearly) {
    EXPECT_EQ(error_of({"--gateway", "10.169.0.1"}),
              "gateway 10.169.0.1 is not on the uplink subnet 10.168.0.0/24: it must be one L2 hop from this node");
    EXPECT_EQ(error_of({"--gateway", "10.168.0.255"}),
              "gateway 10.168.0.255 is the network or broadcast address of the uplink subnet 10.168.0.0/24");
    EXPECT_EQ(error_of({"--gateway", "10.168.0.0"}),
              "gateway 10.168.0.0 is the network or broadcast address of the uplink subnet 10.168.0.0/24");
    EXPECT_EQ(error_of({"--gateway", "10.168.0.2"}), "gateway 10.168.0.2 is this node's own IP");
}

TEST(NodeOptions, PreferencesNameRouteSourcesOnly) {
    auto parsed = parse({"--preference", "gateway=5", "--preference", "connected=1"});
    ASSERT_TRUE(parsed) << parsed.error().message;
    EXPECT_EQ(parsed->options.preferences[static_cast<unsigned>(Source::kGateway)], 5);
    EXPECT_EQ(parsed->options.preferences[static_cast<unsigned>(Source::kConnected)], 1);
    EXPECT_EQ(error_of({"--preference", "arp=5"}),
              "--preference 'arp=5': expected source=N with source one of local, cli, static, bgp, etcd, kernel, "
              "connected, gateway");
}

// The dense window is part of the table's capacity (lpm/types.h).
TEST(TableOptions, DenseWindowDefaultsToTenSlashEightAndTakesNone) {
    auto parsed = parse({});
    ASSERT_TRUE(parsed) << parsed.error().message;
    EXPECT_EQ(parsed->options.capacity.dense_window_addr, parse_ipv4("10.0.0.0").value());
    EXPECT_EQ(parsed->options.capacity.dense_window_len, 8u);
    EXPECT_EQ(parsed->options.capacity, lpm::Capacity{});
    parsed = parse({"--dense-window", "10.244.0.0/16"});
    ASSERT_TRUE(parsed) << parsed.error().message;
    EXPECT_EQ(parsed->options.capacity.dense_window_addr, parse_ipv4("10.244.0.0").value());
    EXPECT_EQ(parsed->options.capacity.dense_window_len, 16u);
    parsed = parse({"--dense-window", "none"});
    ASSERT_TRUE(parsed) << parsed.error().message;
    EXPECT_EQ(parsed->options.capacity.dense_window_addr, 0u);
    EXPECT_EQ(parsed->options.capacity.dense_window_len, lpm::kNoDenseWindow);
    EXPECT_NE(daemon_usage().find("--dense-window"), std::string::npos);
}

TEST(TableOptions, BadDenseWindowsAreRefusedClearly) {
    EXPECT_EQ(error_of({"--dense-window", "10.0.0.0/7"}),
              "--dense-window 10.0.0.0/7: the length must be 8..24 (or none)");
    EXPECT_EQ(error_of({"--dense-window", "10.1.2.0/25"}),
              "--dense-window 10.1.2.0/25: the length must be 8..24 (or none)");
    EXPECT_NE(error_of({"--dense-window", "10.0.0.1/8"}).find("--dense-window: "), std::string::npos);
    EXPECT_NE(error_of({"--dense-window", "pods"}).find("--dense-window: "), std::string::npos);
}

}  // namespace
