#include "control/daemon/options.h"

#include <boost/program_options.hpp>
#include <algorithm>
#include <sstream>
#include <tuple>

#include "common/program_options.h"

namespace podfwd::control {

namespace po = boost::program_options;

namespace {

po::options_description describe() {
    po::options_description d("podfwd-control [options]");
    d.add_options()
        ("help,h", "print this help")
        ("config", po::value<std::string>(), "INI file of the options below (command line wins)")
        ("node-ip", po::value<std::string>(), "this node's IPv4 address (required)")
        ("uplink", po::value<std::string>(), "the uplink subnet, e.g. 10.168.0.0/24 (required)")
        ("gateway", po::value<std::string>(), "router on the uplink towards nodes off the subnet")
        ("pod-cidr", po::value<std::vector<std::string>>()->composing(), "this node's own pod CIDR (repeatable)")
        ("default-mode", po::value<std::string>()->default_value("cross-subnet"),
         "mode of routes that name none: host-gw, ipip, vxlan, cross-subnet")
        ("cross-subnet-tunnel", po::value<std::string>()->default_value("ipip"),
         "tunnel of cross-subnet routes to nodes off the subnet: ipip or vxlan")
        ("vni", po::value<std::int64_t>()->default_value(1), "VXLAN network identifier of vxlan routes")
        ("table", po::value<std::string>()->default_value("podfwd"), "route table segment (/dev/shm/NAME)")
        ("max-routes", po::value<std::int64_t>()->default_value(lpm::Capacity{}.max_routes),
         "route capacity of the table (fixed when the segment is created)")
        ("max-nexthops", po::value<std::int64_t>()->default_value(lpm::Capacity{}.max_nexthops),
         "next-hop capacity of the table (fixed when the segment is created)")
        ("socket", po::value<std::string>(), "control socket (default /run/podfwd/<table>.sock)")
        ("state-dir", po::value<std::string>()->default_value("/var/lib/podfwd"),
         "where the CLI's routes and neighbours are kept across restarts")
        ("static-routes", po::value<std::string>(), "static routes file (re-read on SIGHUP)")
        ("kernel", po::bool_switch(), "mirror kernel routes (netlink)")
        ("kernel-table", po::value<std::string>(), "only this routing table (number, main, local)")
        ("kernel-protocol", po::value<std::string>(), "only this route protocol (number, bird, static, boot)")
        ("kernel-neighbours", po::bool_switch(), "also mirror kernel IPv4 neighbours as next-hop MACs")
        ("preference", po::value<std::vector<std::string>>()->composing(),
         "source=N, lower wins (defaults: local=0 cli=10 static=20 bgp=30 etcd=40 kernel=50)")
        ("log-level", po::value<std::string>()->default_value("info"), "trace, debug, info, warn, error");
    return d;
}

Error invalid(const std::string& message) { return Error{Errc::kInvalidArgument, message}; }

Result<ModeRequest> mode_option(const po::variables_map& vm, const char* name) {
    const auto& text = vm[name].as<std::string>();
    const auto mode = parse_mode_request(text);
    if (!mode)
        return invalid("--" + std::string(name) + ": unknown mode '" + text + "'");
    return *mode;
}

Status parse_preference(const std::string& text, Preferences& out) {
    const auto eq = text.find('=');
    const auto source = parse_source(text.substr(0, eq));
    if (eq == std::string::npos || !source)
        return invalid("--preference '" + text + "': expected source=N with source one of local, cli, static, bgp, etcd, kernel");
    try {
        const int value = std::stoi(text.substr(eq + 1));
        if (value < 0 || value > 255)
            throw std::out_of_range("preference");
        out[static_cast<unsigned>(*source)] = static_cast<std::uint8_t>(value);
    } catch (const std::exception&) {
        return invalid("--preference '" + text + "': N must be 0..255");
    }
    return ok();
}

Result<DaemonOptions> from_map(const po::variables_map& vm) {
    DaemonOptions o;
    for (const char* required : {"node-ip", "uplink"})
        if (!vm.count(required))
            return invalid("--" + std::string(required) + " is required");
    auto ip = parse_ipv4(vm["node-ip"].as<std::string>());
    if (!ip)
        return invalid("--node-ip: " + ip.error().message);
    o.node.node_ip = *ip;
    auto uplink = Prefix4::parse(vm["uplink"].as<std::string>());
    if (!uplink)
        return invalid("--uplink: " + uplink.error().message);
    o.node.uplink = *uplink;
    if (vm.count("gateway")) {
        auto gw = parse_ipv4(vm["gateway"].as<std::string>());
        if (!gw)
            return invalid("--gateway: " + gw.error().message);
        o.node.gateway = *gw;
    }
    if (vm.count("pod-cidr"))
        for (const auto& text : vm["pod-cidr"].as<std::vector<std::string>>()) {
            auto cidr = Prefix4::parse(text);
            if (!cidr)
                return invalid("--pod-cidr: " + cidr.error().message);
            o.node.pod_cidrs.push_back(*cidr);
        }
    auto mode = mode_option(vm, "default-mode");
    if (!mode)
        return std::move(mode).error();
    o.node.default_mode = *mode;
    auto tunnel = mode_option(vm, "cross-subnet-tunnel");
    if (!tunnel)
        return std::move(tunnel).error();
    o.node.cross_subnet_tunnel = *tunnel;
    const auto vni = vm["vni"].as<std::int64_t>();
    if (vni < 1 || vni > (1 << 24) - 1)
        return invalid("--vni " + std::to_string(vni) + " is out of range 1..16777215");
    o.node.vni = static_cast<std::uint32_t>(vni);
    if (auto s = o.node.validate(); !s)
        return s.error();

    o.table = vm["table"].as<std::string>();
    if (auto s = check_table_name(o.table); !s)
        return s.error();
    for (auto [name, field, max] : {std::tuple{"max-routes", &o.capacity.max_routes, std::int64_t{1} << 24},
                                    {"max-nexthops", &o.capacity.max_nexthops, std::int64_t{1} << 20}}) {
        const auto v = vm[name].as<std::int64_t>();
        if (v < 1 || v > max)
            return invalid("--" + std::string(name) + " " + std::to_string(v) + " is out of range 1.." +
                           std::to_string(max));
        *field = static_cast<std::uint32_t>(v);
    }
    o.socket = vm.count("socket") ? vm["socket"].as<std::string>() : "/run/podfwd/" + o.table + ".sock";
    o.state_dir = vm["state-dir"].as<std::string>();
    if (vm.count("static-routes"))
        o.static_routes = vm["static-routes"].as<std::string>();
    if (vm.count("preference"))
        for (const auto& text : vm["preference"].as<std::vector<std::string>>())
            if (auto s = parse_preference(text, o.preferences); !s)
                return s.error();

    const bool kernel_filters = vm.count("kernel-table") || vm.count("kernel-protocol") ||
                                vm["kernel-neighbours"].as<bool>();
    if (kernel_filters && !vm["kernel"].as<bool>())
        return invalid("--kernel-table, --kernel-protocol and --kernel-neighbours need --kernel");
    if (vm["kernel"].as<bool>()) {
        KernelOptions k;
        if (vm.count("kernel-table")) {
            auto t = parse_route_table(vm["kernel-table"].as<std::string>());
            if (!t)
                return invalid("--kernel-table: " + t.error().message);
            k.table = *t;
        }
        if (vm.count("kernel-protocol")) {
            auto p = parse_route_protocol(vm["kernel-protocol"].as<std::string>());
            if (!p)
                return invalid("--kernel-protocol: " + p.error().message);
            k.protocol = *p;
        }
        k.neighbours = vm["kernel-neighbours"].as<bool>();
        o.kernel = k;
    }
    o.log_level = vm["log-level"].as<std::string>();
    constexpr std::string_view kLevels[] = {"trace", "debug", "info", "warn", "error"};
    if (std::find(std::begin(kLevels), std::end(kLevels), o.log_level) == std::end(kLevels))
        return invalid("--log-level '" + o.log_level + "': one of trace, debug, info, warn, error");
    return o;
}

}  // namespace

std::string daemon_usage() {
    std::ostringstream s;
    s << describe();
    return s.str();
}

Result<ParsedDaemonArgs> parse_daemon_options(int argc, char** argv) {
    const auto desc = describe();
    auto vm = parse_command_line_and_config(argc, argv, desc);
    if (!vm)
        return std::move(vm).error();
    if (vm->count("help"))
        return ParsedDaemonArgs{true, {}};
    auto options = from_map(*vm);
    if (!options)
        return std::move(options).error();
    return ParsedDaemonArgs{false, std::move(*options)};
}

}  // namespace podfwd::control
