// podfwd-pcap-forward: the fast path (podfwd::dp::Forwarder) and its
// exception path (podfwd::dp::ExceptionPath) over the packets of a pcap file,
// without DPDK. Builds a route table from a JSON config in a private
// shared-memory segment, feeds the packets in bursts from one port, and
// writes what is sent to each port into a pcap of its own, as the poll loop
// does it (app/worker.cc): punts answered after their burst, ICMP errors to
// remote sources routed by one more pass from the host port. The ICMP rate
// limit's clock is the pcap's timestamps, so runs are reproducible.
//
//   podfwd-pcap-forward --config cfg.json --in in.pcap --from uplink|host
//       --out-uplink up.pcap --out-host host.pcap [--counters counters.json] [--burst N]
//
// Exit status: 0 done, 1 runtime error (pcap, segment), 2 usage or config error.

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/ipv4.h"
#include "common/result.h"
#include "dataplane/counters.h"
#include "dataplane/exception.h"
#include "dataplane/fastpath.h"
#include "dataplane/tools/pcap_file.h"
#include "lpm/reader.h"
#include "lpm/types.h"
#include "lpm/writer.h"

namespace {

using namespace podfwd;
using json = nlohmann::json;

constexpr std::uint32_t kHeadroom = 128;   // RTE_PKTMBUF_HEADROOM
constexpr int kExitRuntime = 1;
constexpr int kExitUsage = 2;

// A config or usage error: one line on stderr, exit status 2.
struct ConfigError {
    std::string message;
};

[[noreturn]] void fail(std::string message) { throw ConfigError{std::move(message)}; }

const char kUsage[] =
    "usage: podfwd-pcap-forward --config cfg.json --in in.pcap --from uplink|host\n"
    "                           --out-uplink up.pcap --out-host host.pcap\n"
    "                           [--counters counters.json] [--burst N]\n";

struct Options {
    std::string config, in, out_uplink, out_host, counters;
    dp::PortRole from = dp::PortRole::kUplink;
    unsigned burst = 32;
};

unsigned parse_uint(std::string_view what, std::string_view text, unsigned min, unsigned max) {
    unsigned v = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc{} || end != text.data() + text.size() || v < min || v > max)
        fail(std::string(what) + ": '" + std::string(text) + "' is not an integer in " + std::to_string(min) + ".." +
             std::to_string(max));
    return v;
}

Options parse_args(int argc, char** argv) {
    Options o;
    std::optional<std::string> from;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "-h" || arg == "--help") {
            std::fputs(kUsage, stdout);
            std::exit(0);
        }
        if (i + 1 >= argc)
            fail("option " + std::string(arg) + " needs a value (or is unknown)");
        const std::string value = argv[++i];
        if (arg == "--config")
            o.config = value;
        else if (arg == "--in")
            o.in = value;
        else if (arg == "--from")
            from = value;
        else if (arg == "--out-uplink")
            o.out_uplink = value;
        else if (arg == "--out-host")
            o.out_host = value;
        else if (arg == "--counters")
            o.counters = value;
        else if (arg == "--burst")
            o.burst = parse_uint("--burst", value, 1, dp::kMaxBurst);
        else
            fail("unknown option " + std::string(arg));
    }
    if (o.config.empty() || o.in.empty() || !from || o.out_uplink.empty() || o.out_host.empty())
        fail("--config, --in, --from, --out-uplink and --out-host are required");
    if (*from == "uplink")
        o.from = dp::PortRole::kUplink;
    else if (*from == "host")
        o.from = dp::PortRole::kHost;
    else
        fail("--from: '" + *from + "' is neither uplink nor host");
    return o;
}

// ---- config ----

struct NextHopConfig {
    std::string name;
    lpm::NextHop record;
};

struct RouteConfig {
    Prefix4 prefix;
    std::string via;
};

struct Config {
    dp::NodeConfig node;
    std::uint32_t icmp_rate = dp::ExceptionPath::kDefaultIcmpRate;
    std::uint32_t icmp_burst = dp::ExceptionPath::kDefaultIcmpBurst;
    std::vector<NextHopConfig> nexthops;
    std::vector<RouteConfig> routes;
};

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
    check_keys(doc, "config", {"node", "nexthops", "routes"});

    const json& node = required(doc, "config", "node");
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

    static const std::map<std::string, lpm::ForwardMode, std::less<>> kModes = {
        {"drop", lpm::ForwardMode::kDrop},   {"local", lpm::ForwardMode::kLocal}, {"host-gw", lpm::ForwardMode::kHostGw},
        {"ipip", lpm::ForwardMode::kIpip},   {"vxlan", lpm::ForwardMode::kVxlan}};
    std::set<std::string> names;
    if (doc.contains("nexthops")) {
        if (!doc["nexthops"].is_array())
            fail("nexthops: expected an array");
        for (std::size_t i = 0; i < doc["nexthops"].size(); ++i) {
            const json& nh = doc["nexthops"][i];
            std::string where = "nexthops[" + std::to_string(i) + "]";
            check_keys(nh, where, {"name", "node_ip", "mode", "mac", "vtep_mac", "vni"});
            NextHopConfig n;
            n.name = get_string(required(nh, where, "name"), where + ".name");
            where += " (" + n.name + ")";
            if (!names.insert(n.name).second)
                fail(where + ": duplicate next hop name");
            const std::string mode = get_string(required(nh, where, "mode"), where + ".mode");
            const auto m = kModes.find(mode);
            if (m == kModes.end())
                fail(where + ": unknown mode '" + mode + "' (drop, local, host-gw, ipip or vxlan)");
            n.record.mode = m->second;
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
    return c;
}

// ---- the table ----

// Unlinks the private segment however the tool ends (but a signal).
class SegmentGuard {
public:
    explicit SegmentGuard(std::string name) : name_(std::move(name)) { (void)lpm::TableWriter::unlink(name_); }
    ~SegmentGuard() { (void)lpm::TableWriter::unlink(name_); }
    SegmentGuard(const SegmentGuard&) = delete;
    SegmentGuard& operator=(const SegmentGuard&) = delete;
    const std::string& name() const noexcept { return name_; }

private:
    std::string name_;
};

struct RuntimeError {
    std::string message;
};

template <class T>
T check(Result<T> r, const std::string& what) {
    if (!r)
        throw RuntimeError{what + ": " + errc_name(r.error().code) + ": " + r.error().message};
    return std::move(r).value();
}
void check(Status s, const std::string& what) {
    if (!s)
        throw RuntimeError{what + ": " + errc_name(s.error().code) + ": " + s.error().message};
}

lpm::TableWriter build_table(const std::string& name, const Config& c) {
    lpm::TableWriter::Options o;
    const auto routes = static_cast<std::uint32_t>(c.routes.size());
    o.capacity = lpm::Capacity{.max_routes = routes + 16,
                               .max_nexthops = static_cast<std::uint32_t>(c.nexthops.size()) + 16,
                               .reader_slots = 4,
                               .max_groups = routes + 16};
    auto writer = check(lpm::TableWriter::open(name, o), "creating the route table");
    std::map<std::string, lpm::NextHopId, std::less<>> ids;
    for (const NextHopConfig& nh : c.nexthops)
        ids[nh.name] = check(writer.nexthop_add(nh.record), "next hop " + nh.name);
    for (const RouteConfig& r : c.routes)
        check(writer.route_add(r.prefix, ids.at(r.via)), "route " + r.prefix.str());
    check(writer.commit(), "commit");
    return writer;
}

void write_counters(const std::string& path, const dp::LcoreCounters& counters, const std::uint64_t (&verdicts)[3]) {
    nlohmann::ordered_json doc;   // counters in enum order
    doc["actions"] = nlohmann::ordered_json::object();
    doc["drops"] = nlohmann::ordered_json::object();
    for (unsigned a = 0; a < static_cast<unsigned>(dp::Action::kCount); ++a)
        doc["actions"][dp::action_name(static_cast<dp::Action>(a))] = counters.actions[a];
    for (unsigned d = 0; d < static_cast<unsigned>(dp::Drop::kCount); ++d)
        doc["drops"][dp::drop_name(static_cast<dp::Drop>(d))] = counters.drops[d];
    doc["verdicts"] = {{"uplink", verdicts[0]}, {"host", verdicts[1]}, {"drop", verdicts[2]}};
    std::ofstream out(path);
    out << doc.dump(2) << '\n';
    out.close();
    if (!out)
        throw RuntimeError{path + ": write error"};
}

int run(int argc, char** argv) {
    const Options opt = parse_args(argc, argv);
    const Config config = parse_config(opt.config);
    auto packets = check(pcap::read_file(opt.in), "reading input");

    SegmentGuard segment("pcapfwd." + std::to_string(::getpid()));
    lpm::TableWriter writer = build_table(segment.name(), config);
    const lpm::TableView view = check(lpm::TableView::open(segment.name()), "opening the route table");
    lpm::ReaderSlot slot = check(view.register_reader(), "registering a reader");

    auto out_uplink = check(pcap::Writer::create(opt.out_uplink), "output");
    auto out_host = check(pcap::Writer::create(opt.out_host), "output");

    dp::Forwarder forwarder(config.node, view);
    dp::ExceptionPath exception(config.node, view, config.icmp_rate, config.icmp_burst);
    dp::LcoreCounters counters;
    std::uint64_t verdict_counts[3] = {};
    std::vector<std::vector<std::uint8_t>> buffers(opt.burst);
    dp::PacketView views[dp::kMaxBurst];
    dp::Verdict verdicts[dp::kMaxBurst];
    // The ICMP errors to route after the burst: which packet each is.
    dp::PacketView routed_views[dp::kMaxBurst];
    dp::Verdict routed_verdicts[dp::kMaxBurst];
    unsigned routed_index[dp::kMaxBurst];

    std::size_t first = 0;
    const auto check_view = [&](unsigned i, const dp::PacketView& v) {
        if (v.data < buffers[i].data() || v.data + v.len > buffers[i].data() + buffers[i].size() ||
            v.data - buffers[i].data() != static_cast<std::ptrdiff_t>(v.headroom))
            throw RuntimeError{"packet " + std::to_string(first + i + 1) + ": a view left its buffer"};
    };
    const auto emit = [&](unsigned i, dp::Verdict verdict, const dp::PacketView& v) {
        const pcap::Packet& in = packets[first + i];
        ++verdict_counts[static_cast<unsigned>(verdict)];
        if (verdict == dp::Verdict::kUplink)
            check(out_uplink.write(in.ts_sec, in.ts_usec, v.data, v.len), "output");
        else if (verdict == dp::Verdict::kHost)
            check(out_host.write(in.ts_sec, in.ts_usec, v.data, v.len), "output");
    };
    const auto as_verdict = [](dp::ExceptionResult r) {
        return r == dp::ExceptionResult::kToUplink ? dp::Verdict::kUplink
               : r == dp::ExceptionResult::kToHost ? dp::Verdict::kHost
                                                   : dp::Verdict::kDrop;
    };
    for (; first < packets.size(); first += opt.burst) {
        const auto n = static_cast<unsigned>(std::min<std::size_t>(opt.burst, packets.size() - first));
        for (unsigned i = 0; i < n; ++i) {
            const auto& data = packets[first + i].data;
            // A fresh allocation of exactly headroom + frame, as an mbuf
            // holding it: anything the fast path touches outside is caught
            // by ASan/valgrind (a reused, larger vector would hide it).
            buffers[i] = std::vector<std::uint8_t>(kHeadroom + data.size());
            std::copy(data.begin(), data.end(), buffers[i].begin() + kHeadroom);
            views[i] = dp::PacketView{buffers[i].data() + kHeadroom, static_cast<std::uint32_t>(data.size()),
                                      kHeadroom};
            verdicts[i] = dp::Verdict::kDrop;
        }
        counters.rx_packets[static_cast<unsigned>(opt.from)] += n;
        forwarder.process(opt.from, views, verdicts, n, counters);
        unsigned routed = 0;
        for (unsigned i = 0; i < n; ++i) {
            check_view(i, views[i]);
            dp::Verdict verdict = verdicts[i];
            if (dp::is_punt(verdict)) {
                const pcap::Packet& in = packets[first + i];
                const std::uint64_t now_ns = std::uint64_t{in.ts_sec} * 1'000'000'000 + std::uint64_t{in.ts_usec} * 1000;
                const dp::ExceptionResult r = exception.handle(opt.from, verdict, views[i], now_ns, counters);
                check_view(i, views[i]);
                if (r == dp::ExceptionResult::kRoute) {
                    routed_index[routed] = i;
                    routed_views[routed++] = views[i];
                    continue;
                }
                verdict = as_verdict(r);
            }
            emit(i, verdict, views[i]);
        }
        if (routed != 0) {
            forwarder.process(dp::PortRole::kHost, routed_views, routed_verdicts, routed, counters);
            for (unsigned k = 0; k < routed; ++k) {
                const unsigned i = routed_index[k];
                check_view(i, routed_views[k]);
                dp::Verdict verdict = routed_verdicts[k];
                // As the poll loop: a second punt is the exception path's to
                // count, and nothing goes round a third time.
                if (dp::is_punt(verdict)) {
                    const pcap::Packet& in = packets[first + i];
                    const std::uint64_t now_ns =
                        std::uint64_t{in.ts_sec} * 1'000'000'000 + std::uint64_t{in.ts_usec} * 1000;
                    verdict = as_verdict(exception.handle(dp::PortRole::kHost, verdict, routed_views[k], now_ns, counters));
                    check_view(i, routed_views[k]);
                }
                emit(i, verdict, routed_views[k]);
            }
        }
        slot.quiescent();
    }
    check(out_uplink.close(), "output");
    check(out_host.close(), "output");
    if (!opt.counters.empty())
        write_counters(opt.counters, counters, verdict_counts);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        return run(argc, argv);
    } catch (const ConfigError& e) {
        std::fprintf(stderr, "podfwd-pcap-forward: %s\n", e.message.c_str());
        return kExitUsage;
    } catch (const RuntimeError& e) {
        std::fprintf(stderr, "podfwd-pcap-forward: %s\n", e.message.c_str());
        return kExitRuntime;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "podfwd-pcap-forward: %s\n", e.what());
        return kExitRuntime;
    }
}
