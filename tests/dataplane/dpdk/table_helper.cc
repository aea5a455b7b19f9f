// podfwd-test-table NAME ROUTE...: a stand-in control plane for the
// dataplane tests. Creates the route table segment NAME, installs the routes,
// commits, prints "ready", then holds the table until SIGINT/SIGTERM and
// unlinks the segment on the way out.
//
//   ROUTE = PREFIX=MODE[,node=IP][,mac=MAC][,vtep=MAC][,vni=N]
//   MODE  = local | host_gw | ipip | vxlan | drop
// A next hop is MAC-resolved when mac= is given. Identical next hops share an id.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "dataplane/app/mac.h"
#include "lpm/writer.h"

using namespace podfwd;

namespace {

[[noreturn]] void die(const std::string& message) {
    std::fprintf(stderr, "podfwd-test-table: %s\n", message.c_str());
    std::exit(1);
}

lpm::ForwardMode parse_mode(std::string_view s) {
    if (s == "local") return lpm::ForwardMode::kLocal;
    if (s == "host_gw") return lpm::ForwardMode::kHostGw;
    if (s == "ipip") return lpm::ForwardMode::kIpip;
    if (s == "vxlan") return lpm::ForwardMode::kVxlan;
    if (s == "drop") return lpm::ForwardMode::kDrop;
    die("unknown mode '" + std::string(s) + "'");
}

proto::MacAddr mac_of(std::string_view s) {
    const auto mac = dp::app::parse_mac(s);
    if (!mac)
        die("bad MAC '" + std::string(s) + "'");
    return *mac;
}

lpm::Route add_route(lpm::TableWriter& writer, std::string_view spec) {
    const auto eq = spec.find('=');
    if (eq == std::string_view::npos)
        die("route '" + std::string(spec) + "' lacks '=MODE'");
    auto prefix = Prefix4::parse(spec.substr(0, eq));
    if (!prefix)
        die(prefix.error().message);
    std::string_view rest = spec.substr(eq + 1);
    lpm::NextHop nh;
    bool first = true;
    while (!rest.empty()) {
        const auto comma = rest.find(',');
        const std::string_view item = rest.substr(0, comma);
        rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
        if (first) {
            nh.mode = parse_mode(item);
            first = false;
            continue;
        }
        const auto kv = item.find('=');
        const std::string_view key = item.substr(0, kv);
        const std::string_view value = kv == std::string_view::npos ? std::string_view{} : item.substr(kv + 1);
        if (key == "node") {
            auto ip = parse_ipv4(value);
            if (!ip)
                die(ip.error().message);
            nh.node_ip = *ip;
        } else if (key == "mac") {
            nh.mac = mac_of(value);
            nh.flags |= lpm::NextHop::kMacResolved;
        } else if (key == "vtep") {
            nh.vtep_mac = mac_of(value);
        } else if (key == "vni") {
            nh.vni = static_cast<std::uint32_t>(std::stoul(std::string(value)));
        } else {
            die("unknown key '" + std::string(key) + "'");
        }
    }
    auto id = writer.nexthop_ensure(nh);
    if (!id)
        die(id.error().message);
    if (auto s = writer.route_add(*prefix, *id); !s)
        die(s.error().message);
    return {*prefix, *id};
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2)
        die("usage: podfwd-test-table NAME ROUTE...");
    const std::string name = argv[1];

    // Block the signals first, so one sent right after "ready" is not lost.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    sigprocmask(SIG_BLOCK, &signals, nullptr);

    (void)lpm::TableWriter::unlink(name);   // a stale table from an aborted run
    auto writer = lpm::TableWriter::open(name);
    if (!writer)
        die(writer.error().message);
    for (int i = 2; i < argc; ++i)
        add_route(*writer, argv[i]);
    if (auto s = writer->commit(); !s)
        die(s.error().message);
    std::printf("ready %zu routes\n", writer->route_count());
    std::fflush(stdout);

    int signal = 0;
    sigwait(&signals, &signal);
    (void)lpm::TableWriter::unlink(name);
    return 0;
}
