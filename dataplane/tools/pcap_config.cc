#include "dataplane/tools/pcap_config.h"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string_view>

namespace podfwd::pcaptool {

using json = nlohmann::json;

void fail(std::string message) { throw ConfigError{std::move(message)}; }

namespace {

void check_keys(const json& obj, const std::string& where, std::initializer_list<std::string_view> known) {
    if (!obj.is_object())
        fail(where + ": expected an object");
    for (const auto& [key, value] : obj.items())
        if (std::find(known.begin(), known.end(), key) == known.end())
            fail(where + ": unknown key '" + key + "'");
}

const json& required(const json& obj, const std::string& where, const char* key) {
    const auto it = obj.find(key);
    if (it == obj.end())
        fail(where + ": missing '" + key + "'");
    return *it;
}

std::string get_string(const json& v, const std::string& where) {
    if (!v.is_string())
        fail(where + ": expected a string, got " + v.dump());
    return v.get<std::string>();
}

std::uint32_t get_uint(const json& v, const std::string& where, std::uint32_t min, std::uint32_t max) {
    if (!v.is_number_unsigned() || v.get<std::uint64_t>() < min || v.get<std::uint64_t>() > max)
        fail(where + ": expected an integer in " + std::to_string(min) + ".." + std::to_string(max) + ", got " +
             v.dump());
    return static_cast<std::uint32_t>(v.get<std::uint64_t>());
}

bool get_bool(const json& v, const std::string& where) {
    if (!v.is_boolean())
        fail(where + ": expected true or false, got " + v.dump());
    return v.get<bool>();
}

Ipv4Addr get_ip(const json& v, const std::string& where) {
    const std::string text = get_string(v, where);
    auto ip = parse_ipv4(text);
    if (!ip)
        fail(where + ": bad IPv4 address '" + text + "': " + ip.error().message);
    return *ip;
}

proto::MacAddr get_mac(const json& v, const std::string& where) {
    const std::string text = get_string(v, where);
    proto::MacAddr mac{};
    bool good = text.size() == 17;
    for (std::size_t i = 0; good && i < 6; ++i) {
        const char* p = text.data() + 3 * i;
        unsigned byte = 0;
        const auto [end, ec] = std::from_chars(p, p + 2, byte, 16);
        good = ec == std::errc{} && end == p + 2 && (i == 5 || p[2] == ':');
        mac[i] = static_cast<std::uint8_t>(byte);
    }
    if (!good)
        fail(where + ": bad MAC address '" + text + "' (expected xx:xx:xx:xx:xx:xx)");
    return mac;
}

void parse_node(const json& node, Config& c) {
    check_keys(node, "node",
               {"ip", "uplink_mac", "vtep_mac", "host_mac", "vxlan_port", "vni", "mtu", "icmp_rate", "icmp_burst"});
    c.node.node_ip = get_ip(required(node, "node", "ip"), "node.ip");
    c.node.uplink_mac = get_mac(required(node, "node", "uplink_mac"), "node.uplink_mac");
    if (node.contains("vtep_mac"))
        c.node.vtep_mac = get_mac(node["vtep_mac"], "node.vtep_mac");
    c.node.host_mac = get_mac(required(node, "node", "host_mac"), "node.host_mac");
    if (node.contains("vxlan_port"))
        c.node.vxlan_port = static_cast<std::uint16_t>(get_uint(node["vxlan_port"], "node.vxlan_port", 1, 65535));
    if (node.contains("vni"))
        c.node.vni = get_uint(node["vni"], "node.vni", 0, 0xffffff);
    if (node.contains("mtu"))
        c.node.mtu = static_cast<std::uint16_t>(get_uint(node["mtu"], "node.mtu", 68, 65535));
    // As podfwd-dataplane's --icmp-rate and --icmp-burst.
    if (node.contains("icmp_rate"))
        c.icmp_rate = get_uint(node["icmp_rate"], "node.icmp_rate", 0, 1'000'000);
    if (node.contains("icmp_burst"))
        c.icmp_burst = get_uint(node["icmp_burst"], "node.icmp_burst", 0, 1'000'000);
}

NextHopConfig parse_nexthop(const json& nh, std::string where) {
    static const std::map<std::string, lpm::ForwardMode, std::less<>> kModes = {
        {"drop", lpm::ForwardMode::kDrop},   {"local", lpm::ForwardMode::kLocal}, {"host-gw", lpm::ForwardMode::kHostGw},
        {"ipip", lpm::ForwardMode::kIpip},   {"vxlan", lpm::ForwardMode::kVxlan}};
    check_keys(nh, where, {"name", "node_ip", "mode", "mac", "vtep_mac", "vni", "l2_ip", "connected"});
    NextHopConfig n;
    n.name = get_string(required(nh, where, "name"), where + ".name");
    where += " (" + n.name + ")";
    const std::string mode = get_string(required(nh, where, "mode"), where + ".mode");
    const auto m = kModes.find(mode);
    if (m == kModes.end())
        fail(where + ": unknown mode '" + mode + "' (drop, local, host-gw, ipip or vxlan)");
    n.record.mode = m->second;
    const bool connected = nh.contains("connected") && get_bool(nh["connected"], where + ".connected");
    if (nh.contains("node_ip"))
        n.record.node_ip = get_ip(nh["node_ip"], where + ".node_ip");
    else if (n.record.mode == lpm::ForwardMode::kIpip || n.record.mode == lpm::ForwardMode::kVxlan)
        fail(where + ": mode " + mode + " needs a node_ip");
    if (nh.contains("mac")) {
        n.record.mac = get_mac(nh["mac"], where + ".mac");
        n.record.flags |= lpm::NextHop::kMacResolved;
    }
    if (nh.contains("vtep_mac"))
        n.record.vtep_mac = get_mac(nh["vtep_mac"], where + ".vtep_mac");
    if (nh.contains("vni"))
        n.record.vni = get_uint(nh["vni"], where + ".vni", 0, 0xffffff);
    // Whose MAC the record needs (the gateway's, off the uplink subnet);
    // unset: node_ip's, as lpm::NextHop::l2_nexthop() says.
    if (nh.contains("l2_ip"))
        n.record.l2_ip = get_ip(nh["l2_ip"], where + ".l2_ip");
    if (connected) {
        // The uplink subnet itself: each packet's destination is its own L2
        // next hop, so one MAC in the record would be wrong for all but one.
        if (n.record.mode != lpm::ForwardMode::kHostGw)
            fail(where + ": connected needs mode host-gw");
        if (nh.contains("mac") || nh.contains("l2_ip"))
            fail(where + ": a connected next hop has no mac or l2_ip (each destination is its own)");
        n.record.flags |= lpm::NextHop::kConnected;
    }
    return n;
}

// NeighbourConfig's fields by name, times in milliseconds; absent: its defaults.
ResolverConfig parse_neighbour(const json& nb) {
    check_keys(nb, "neighbour",
               {"entries", "hold_per_neighbour", "hold_total", "reachable_ms", "retrans_ms", "max_multicast_probes",
                "max_unicast_probes", "failed_hold_ms", "gc_stale_ms", "tick_ms"});
    ResolverConfig r;
    dp::NeighbourConfig& n = r.neighbour;
    const auto uint_field = [&](const char* key, std::uint32_t& field, std::uint32_t min, std::uint32_t max) {
        if (nb.contains(key))
            field = get_uint(nb[key], std::string("neighbour.") + key, min, max);
    };
    const auto ms_field = [&](const char* key, std::uint64_t& field_ns, std::uint32_t min) {
        if (nb.contains(key))
            field_ns = std::uint64_t{get_uint(nb[key], std::string("neighbour.") + key, min, 86'400'000)} * 1'000'000;
    };
    uint_field("entries", n.entries, 1, 1u << 20);
    uint_field("hold_per_neighbour", n.hold_per_neighbour, 0, 1u << 16);
    uint_field("hold_total", n.hold_total, 0, 1u << 20);
    uint_field("max_multicast_probes", n.max_multicast_probes, 0, 100);
    uint_field("max_unicast_probes", n.max_unicast_probes, 0, 100);
    ms_field("reachable_ms", n.reachable_ns, 0);
    ms_field("retrans_ms", n.retrans_ns, 0);
    ms_field("failed_hold_ms", n.failed_hold_ns, 0);
    ms_field("gc_stale_ms", n.gc_stale_ns, 0);
    ms_field("tick_ms", r.tick_ns, 1);   // 0 would make time stand still in --run-after-ms
    return r;
}

}  // namespace

Config parse_config(const std::string& path) {
    std::ifstream in(path);
    if (!in)
        fail(path + ": cannot open");
    json doc;
    try {
        doc = json::parse(in);
    } catch (const json::exception& e) {
        fail(path + ": not valid JSON: " + e.what());
    }
    Config c;
    check_keys(doc, "config", {"node", "nexthops", "routes", "neighbour"});
    parse_node(required(doc, "config", "node"), c);

    std::set<std::string> names;
    if (doc.contains("nexthops")) {
        if (!doc["nexthops"].is_array())
            fail("nexthops: expected an array");
        for (std::size_t i = 0; i < doc["nexthops"].size(); ++i) {
            NextHopConfig n = parse_nexthop(doc["nexthops"][i], "nexthops[" + std::to_string(i) + "]");
            if (!names.insert(n.name).second)
                fail("nexthops[" + std::to_string(i) + "] (" + n.name + "): duplicate next hop name");
            c.nexthops.push_back(std::move(n));
        }
    }
    if (doc.contains("routes")) {
        if (!doc["routes"].is_array())
            fail("routes: expected an array");
        for (std::size_t i = 0; i < doc["routes"].size(); ++i) {
            const json& r = doc["routes"][i];
            const std::string where = "routes[" + std::to_string(i) + "]";
            check_keys(r, where, {"prefix", "via"});
            const std::string text = get_string(required(r, where, "prefix"), where + ".prefix");
            auto prefix = Prefix4::parse(text);
            if (!prefix)
                fail(where + ": bad prefix '" + text + "': " + prefix.error().message);
            RouteConfig rc{*prefix, get_string(required(r, where, "via"), where + ".via")};
            if (!names.contains(rc.via))
                fail(where + " (" + text + "): unknown next hop '" + rc.via + "'");
            c.routes.push_back(std::move(rc));
        }
    }
    if (doc.contains("neighbour"))
        c.resolver = parse_neighbour(doc["neighbour"]);
    return c;
}

}  // namespace podfwd::pcaptool
