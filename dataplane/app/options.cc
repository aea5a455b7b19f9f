#include "dataplane/app/options.h"

#include <rte_ethdev.h>

#include <boost/program_options.hpp>
#include <algorithm>
#include <iterator>
#include <sstream>

#include "common/program_options.h"

#include "dataplane/app/mac.h"

namespace podfwd::dp::app {

namespace po = boost::program_options;

namespace {

po::options_description describe() {
    // Numbers are read as signed 64-bit and range-checked here: Boost's
    // lexical_cast would turn "-1" into 4294967295 for an unsigned target.
    po::options_description d("podfwd-dataplane [EAL args] -- [options]");
    d.add_options()
        ("help,h", "print this help")
        ("config", po::value<std::string>(), "INI file of the options below (command line wins)")
        ("node-ip", po::value<std::string>(), "this node's IPv4 address (required)")
        ("node-mac", po::value<std::string>(), "source MAC on the uplink (default: the uplink port's MAC)")
        ("vtep-mac", po::value<std::string>(), "inner source MAC of VXLAN frames (default: the node MAC)")
        ("host-mac", po::value<std::string>(),
         "MAC of the kernel side of the host port (default: the host port's MAC, right for net_tap)")
        ("mtu", po::value<std::int64_t>()->default_value(1500), "uplink IP MTU")
        ("vxlan-port", po::value<std::int64_t>()->default_value(4789), "VXLAN UDP port")
        ("vni", po::value<std::int64_t>()->default_value(1), "VXLAN network identifier")
        ("table", po::value<std::string>()->default_value("podfwd"), "route table segment name (/dev/shm/NAME)")
        ("uplink-port", po::value<std::int64_t>()->default_value(0), "DPDK port id of the uplink")
        ("host-port", po::value<std::int64_t>()->default_value(1), "DPDK port id of the host (exception) port")
        ("burst", po::value<std::int64_t>()->default_value(32), "RX burst size (1..64)")
        ("icmp-rate", po::value<std::int64_t>()->default_value(ExceptionPath::kDefaultIcmpRate),
         "ICMP errors per second per lcore (0..1000000; 0: only the first burst, ever)")
        ("icmp-burst", po::value<std::int64_t>()->default_value(ExceptionPath::kDefaultIcmpBurst),
         "ICMP errors per lcore sent at once before the rate applies (0..1000000; 0: none)");
    return d;
}

// A million errors a second is already more than any lcore can build; the
// bound keeps the token bucket's arithmetic far from overflow.
constexpr std::int64_t kMaxIcmp = 1'000'000;

Error invalid(const std::string& message) { return Error{Errc::kInvalidArgument, message}; }

// The value of a numeric option within [lo, hi], or an error naming it.
Result<std::int64_t> ranged(const po::variables_map& vm, const char* name, std::int64_t lo, std::int64_t hi) {
    const auto v = vm[name].as<std::int64_t>();
    if (v < lo || v > hi)
        return invalid("--" + std::string(name) + " " + std::to_string(v) + " is out of range " +
                       std::to_string(lo) + ".." + std::to_string(hi));
    return v;
}

Result<std::optional<proto::MacAddr>> optional_mac(const po::variables_map& vm, const char* name) {
    if (!vm.count(name))
        return std::optional<proto::MacAddr>{};
    const auto& text = vm[name].as<std::string>();
    const auto mac = parse_mac(text);
    if (!mac)
        return invalid("--" + std::string(name) + " '" + text + "' is not a MAC address (aa:bb:cc:dd:ee:ff)");
    if (!is_unicast(*mac))
        return invalid("--" + std::string(name) + " " + text + " is not a unicast address");
    return std::optional<proto::MacAddr>{*mac};
}

Result<Options> from_map(const po::variables_map& vm) {
    Options o;
    if (!vm.count("node-ip"))
        return invalid("--node-ip is required");
    auto ip = parse_ipv4(vm["node-ip"].as<std::string>());
    if (!ip)
        return invalid("--node-ip: " + ip.error().message);
    if (*ip == 0 || *ip >= 0xe0000000u)
        return invalid("--node-ip " + vm["node-ip"].as<std::string>() + " is not a unicast address");
    o.node_ip = *ip;

    for (auto [name, field] : {std::pair{"node-mac", &o.node_mac}, {"vtep-mac", &o.vtep_mac},
                               {"host-mac", &o.host_mac}}) {
        auto mac = optional_mac(vm, name);
        if (!mac)
            return std::move(mac).error();
        *field = *mac;
    }

    // The fast path needs room for an outer header inside the MTU.
    auto mtu = ranged(vm, "mtu", 576, 9216);
    auto vxlan_port = ranged(vm, "vxlan-port", 1, 65535);
    auto vni = ranged(vm, "vni", 0, (1 << 24) - 1);
    auto uplink = ranged(vm, "uplink-port", 0, RTE_MAX_ETHPORTS - 1);
    auto host = ranged(vm, "host-port", 0, RTE_MAX_ETHPORTS - 1);
    auto burst = ranged(vm, "burst", 1, kMaxBurst);
    auto icmp_rate = ranged(vm, "icmp-rate", 0, kMaxIcmp);
    auto icmp_burst = ranged(vm, "icmp-burst", 0, kMaxIcmp);
    for (const auto* r : {&mtu, &vxlan_port, &vni, &uplink, &host, &burst, &icmp_rate, &icmp_burst})
        if (!*r)
            return r->error();
    o.mtu = static_cast<std::uint16_t>(*mtu);
    o.vxlan_port = static_cast<std::uint16_t>(*vxlan_port);
    o.vni = static_cast<std::uint32_t>(*vni);
    o.uplink_port = static_cast<std::uint16_t>(*uplink);
    o.host_port = static_cast<std::uint16_t>(*host);
    o.burst = static_cast<unsigned>(*burst);
    o.icmp_rate = static_cast<std::uint32_t>(*icmp_rate);
    o.icmp_burst = static_cast<std::uint32_t>(*icmp_burst);
    if (o.uplink_port == o.host_port)
        return invalid("--uplink-port and --host-port are both " + std::to_string(o.uplink_port));

    o.table = vm["table"].as<std::string>();
    if (auto s = check_table_name(o.table); !s)
        return s.error();
    return o;
}

}  // namespace

std::string usage_text() {
    std::ostringstream s;
    s << describe();
    return s.str();
}

Result<ParsedArgs> parse_options(int argc, char** argv) {
    const auto desc = describe();
    auto vm = parse_command_line_and_config(argc, argv, desc);
    if (!vm)
        return std::move(vm).error();
    if (vm->count("help"))
        return ParsedArgs{true, {}};
    auto options = from_map(*vm);
    if (!options)
        return std::move(options).error();
    return ParsedArgs{false, std::move(*options)};
}

Result<NodeConfig> resolve_ports(const Options& o) {
    for (auto [name, port] : {std::pair{"--uplink-port", o.uplink_port}, {"--host-port", o.host_port}})
        if (!rte_eth_dev_is_valid_port(port))
            return invalid(std::string(name) + " " + std::to_string(port) + ": no such DPDK port (" +
                           std::to_string(rte_eth_dev_count_avail()) + " available)");

    const auto port_mac = [](std::uint16_t port) {
        rte_ether_addr addr{};
        rte_eth_macaddr_get(port, &addr);
        proto::MacAddr mac{};
        std::copy(std::begin(addr.addr_bytes), std::end(addr.addr_bytes), mac.begin());
        return mac;
    };
    NodeConfig c;
    c.node_ip = o.node_ip;
    c.uplink_mac = o.node_mac.value_or(port_mac(o.uplink_port));
    c.vtep_mac = o.vtep_mac.value_or(c.uplink_mac);
    c.host_mac = o.host_mac.value_or(port_mac(o.host_port));
    c.vxlan_port = o.vxlan_port;
    c.vni = o.vni;
    c.mtu = o.mtu;
    return c;
}

}  // namespace podfwd::dp::app
