#include "control/daemon/options.h"

#include <boost/program_options.hpp>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <sstream>
#include <tuple>

#include "common/mac.h"
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
        ("gateway", po::value<std::string>(),
         "router on the uplink subnet: towards nodes off the subnet, and the default route (0.0.0.0/0 host-gw, "
         "below every learned route)")
        ("no-default-route", po::bool_switch(), "no default route via --gateway (only what the sources state)")
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
        ("max-groups", po::value<std::int64_t>()->default_value(lpm::Capacity{}.max_groups),
         "/24s of the table that hold longer prefixes, 2 KiB each (fixed when the segment is created)")
        ("dense-window", po::value<std::string>()->default_value("10.0.0.0/8"),
         "prefix (/8../24) whose /24s are looked up in one load, 8 bytes each, e.g. the pod supernet; none: no "
         "window (fixed when the segment is created)")
        ("socket", po::value<std::string>(), "control socket (default /run/podfwd/<table>.sock)")
        ("state-dir", po::value<std::string>()->default_value("/var/lib/podfwd"),
         "where the CLI's routes and neighbours are kept across restarts")
        ("static-routes", po::value<std::string>(),
         "static routes file (re-read on SIGHUP; a file with an error, or cut short mid-line, is refused whole "
         "and the routes already loaded stay)")
        ("allow-empty-static", po::bool_switch(),
         "take a static file with no routes or neighbours (only comments or blank lines, or 0 bytes) as meant: "
         "without it such a file is refused, as one half-written would be")
        ("allow-empty-cli-state", po::bool_switch(),
         "start although the CLI's saved state in --state-dir is 0 bytes (what a power loss may leave), without "
         "the CLI's routes; without it the start is refused")
        ("kernel", po::bool_switch(),
         "mirror kernel routes (netlink) inside --accept (required with --kernel); others are ignored and counted")
        ("kernel-table", po::value<std::string>(), "only this routing table (number, main, local)")
        ("kernel-protocol", po::value<std::string>(), "only this route protocol (number, bird, static, boot)")
        ("kernel-neighbours", po::bool_switch(), "also mirror kernel IPv4 neighbours as next-hop MACs")
        ("etcd-endpoints", po::value<std::string>(),
         "learn routes from etcd: http(s)://host:port[,…] (fail-over in order)")
        ("etcd-layout", po::value<std::string>()->default_value("flannel"), "flannel (subnet leases) or calico (IPAM blocks)")
        ("etcd-prefix", po::value<std::string>(), "key prefix (default /coreos.com/network, or /calico)")
        ("etcd-cafile", po::value<std::string>(), "CA of etcd's server certificate (TLS)")
        ("etcd-certfile", po::value<std::string>(), "client certificate for etcd (TLS)")
        ("etcd-keyfile", po::value<std::string>(), "client certificate's key for etcd (TLS)")
        ("etcd-lease-ttl", po::value<std::int64_t>()->default_value(24 * 3600),
         "seconds: TTL of this node's Flannel subnet lease, for its first --pod-cidr (renewed at a third of it)")
        ("etcd-start-wait", po::value<std::int64_t>()->default_value(5000),
         "ms to wait for etcd's first read at start before the table is reconciled without it")
        ("etcd-watch-check", po::value<std::int64_t>()->default_value(30'000),
         "ms of watch silence after which etcd is asked whether the range moved on (a stalled watch is restarted)")
        ("node-name", po::value<std::string>(), "this node's name (Calico block affinity; default the hostname)")
        ("vtep-mac", po::value<std::string>(), "this node's VXLAN VTEP MAC, for its Flannel lease (vxlan backend)")
        // Flannel gives a node one subnet: the lease is for the first --pod-cidr.
        ("bgp-as", po::value<std::int64_t>(), "learn routes from BGP and advertise --pod-cidr: this node's AS (gobgpd)")
        ("bgp-router-id", po::value<std::string>(), "BGP router ID (default --node-ip)")
        ("bgp-listen-port", po::value<std::int64_t>()->default_value(179),
         "TCP port gobgpd listens on, on --node-ip (0: none, active sessions only)")
        ("bgp-peer", po::value<std::vector<std::string>>()->composing(),
         "ADDR,as=N[,password=P][,passive][,port=N][,hold=S][,restart-time=S] (repeatable)")
        ("bgp-hold-time", po::value<std::int64_t>()->default_value(90), "seconds: BGP hold time of peers that set none")
        ("bgp-restart-time", po::value<std::int64_t>()->default_value(120),
         "seconds: graceful restart time; also how long routes outlive a gobgpd that died (0: off)")
        ("accept", po::value<std::vector<std::string>>()->composing(),
         "a pod network (repeatable) the routes of --kernel, --etcd-endpoints and --bgp-as must be inside "
         "(required with any of them); never the uplink or --pod-cidr, nor the default route unless "
         "--accept-default-route")
        ("accept-default-route", po::bool_switch(),
         "also take 0.0.0.0/0 from the network sources (an --accept that covers everything does not)")
        ("gobgpd", po::value<std::string>()->default_value("gobgpd"),
         "gobgpd to run as our child (its API on a Unix socket beside --socket)")
        ("gobgp-api", po::value<std::string>(), "use a running gobgpd's API instead: host:port or unix:///path")
        ("preference", po::value<std::vector<std::string>>()->composing(),
         "source=N, lower wins (defaults: local=0 cli=10 static=20 bgp=30 etcd=40 kernel=50 connected=0 gateway=255)")
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
    const auto source = parse_route_source(text.substr(0, eq));
    if (eq == std::string::npos || !source)
        return invalid("--preference '" + text + "': expected source=N with source one of " + route_source_names());
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

std::vector<std::string> split_commas(const std::string& text) {
    std::vector<std::string> parts;
    std::size_t start = 0;
    for (std::size_t comma; (comma = text.find(',', start)) != std::string::npos; start = comma + 1)
        parts.push_back(text.substr(start, comma - start));
    parts.push_back(text.substr(start));
    return parts;
}

std::string host_name() {
    char name[256] = {};
    if (::gethostname(name, sizeof name - 1) != 0)
        return "localhost";
    return name;
}

Status etcd_options(const po::variables_map& vm, DaemonOptions& o) {
    const bool any = vm.count("etcd-prefix") || vm.count("etcd-cafile") || vm.count("etcd-certfile") ||
                     vm.count("etcd-keyfile") || vm.count("vtep-mac") || vm.count("node-name") ||
                     !vm["etcd-layout"].defaulted() || !vm["etcd-lease-ttl"].defaulted() ||
                     !vm["etcd-start-wait"].defaulted() || !vm["etcd-watch-check"].defaulted();
    if (!vm.count("etcd-endpoints"))
        return any ? Status(invalid("--etcd-* options, --node-name and --vtep-mac need --etcd-endpoints")) : ok();
    etcd::EtcdSourceOptions e;
    for (const std::string& url : split_commas(vm["etcd-endpoints"].as<std::string>())) {
        if (!url.starts_with("http://") && !url.starts_with("https://"))
            return invalid("--etcd-endpoints: '" + url + "' is not an http:// or https:// URL");
        e.client.endpoints.push_back(url.ends_with('/') ? url.substr(0, url.size() - 1) : url);
    }
    for (auto [name, field] : {std::pair{"etcd-cafile", &e.client.tls.ca_file},
                               {"etcd-certfile", &e.client.tls.cert_file},
                               {"etcd-keyfile", &e.client.tls.key_file}})
        if (vm.count(name)) {
            *field = vm[name].as<std::string>();
            if (::access(field->c_str(), R_OK) != 0)
                return invalid("--" + std::string(name) + " " + *field + ": " + std::strerror(errno));
        }
    if (e.client.tls.cert_file.empty() != e.client.tls.key_file.empty())
        return invalid("--etcd-certfile and --etcd-keyfile go together");
    const bool tls_files = !e.client.tls.ca_file.empty() || !e.client.tls.cert_file.empty();
    for (const std::string& url : e.client.endpoints)
        if (tls_files && url.starts_with("http://"))   // the certificates would go unused, in plain text
            return invalid("--etcd-endpoints '" + url + "' is plain http: the TLS files need https:// endpoints");
    const auto& layout_text = vm["etcd-layout"].as<std::string>();
    const auto layout = etcd::parse_layout(layout_text);
    if (!layout)
        return invalid("--etcd-layout '" + layout_text + "': flannel or calico");
    e.layout = *layout;
    e.prefix = vm.count("etcd-prefix") ? vm["etcd-prefix"].as<std::string>() : etcd::default_prefix(*layout);
    if (!e.prefix.starts_with('/') || (e.prefix.size() > 1 && e.prefix.ends_with('/')))
        return invalid("--etcd-prefix '" + e.prefix + "': an absolute key prefix without a trailing /");
    e.node_name = vm.count("node-name") ? vm["node-name"].as<std::string>() : host_name();
    e.node_ip = o.node.node_ip;
    if (!o.node.pod_cidrs.empty())
        e.pod_cidr = o.node.pod_cidrs.front();
    if (vm.count("vtep-mac")) {
        e.vtep_mac = parse_mac(vm["vtep-mac"].as<std::string>());
        if (!e.vtep_mac)
            return invalid("--vtep-mac '" + vm["vtep-mac"].as<std::string>() + "' is not a MAC address");
    }
    if (e.layout == etcd::LayoutKind::kCalico && (vm.count("vtep-mac") || !vm["etcd-lease-ttl"].defaulted()))
        return invalid("--vtep-mac and --etcd-lease-ttl are for the flannel layout (this node's subnet lease)");
    const auto ttl = vm["etcd-lease-ttl"].as<std::int64_t>();
    if (ttl < 5 || ttl > 30 * 24 * 3600)
        return invalid("--etcd-lease-ttl " + std::to_string(ttl) + " is out of range 5..2592000 seconds");
    e.lease_ttl = std::chrono::seconds(ttl);
    const auto wait = vm["etcd-start-wait"].as<std::int64_t>();
    // Signals and the control socket wait meanwhile: a minute at most.
    if (wait < 0 || wait > 60'000)
        return invalid("--etcd-start-wait " + std::to_string(wait) + " is out of range 0..60000 ms");
    o.etcd_start_wait = std::chrono::milliseconds(wait);
    const auto check = vm["etcd-watch-check"].as<std::int64_t>();
    if (check < 100 || check > 3'600'000)
        return invalid("--etcd-watch-check " + std::to_string(check) + " is out of range 100..3600000 ms");
    e.watch_check = std::chrono::milliseconds(check);
    o.etcd = std::move(e);
    return ok();
}

std::string directory_of(const std::string& path) {
    const auto slash = path.rfind('/');
    return slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
}

Status accept_options(const po::variables_map& vm, DaemonOptions& o) {
    if (vm.count("accept"))
        for (const auto& text : vm["accept"].as<std::vector<std::string>>()) {
            auto prefix = Prefix4::parse(text);
            if (!prefix)
                return invalid("--accept: " + prefix.error().message);
            o.accept.push_back(*prefix);
        }
    o.accept_default_route = vm["accept-default-route"].as<bool>();
    return ok();
}

// Called once every source's options are read: a network source without a
// filter would mirror the default route and whatever else it states.
Status check_accept(const DaemonOptions& o) {
    const bool network_source = o.kernel || o.etcd || o.bgp;
    if (!network_source) {
        if (!o.accept.empty() || o.accept_default_route)
            return invalid("--accept filters the network sources' routes: it needs --kernel, --etcd-endpoints or --bgp-as");
        return ok();
    }
    if (o.accept.empty() && !o.accept_default_route) {
        const char* source = o.kernel ? "--kernel" : "--etcd-endpoints";
        return invalid(std::string(source) +
                       " needs --accept: the pod networks its routes may be in (e.g. --accept 10.244.0.0/16)");
    }
    return ok();
}

Status bgp_options(const po::variables_map& vm, DaemonOptions& o) {
    const bool any = vm.count("bgp-router-id") || vm.count("bgp-peer") || vm.count("gobgp-api") ||
                     !vm["bgp-listen-port"].defaulted() || !vm["bgp-hold-time"].defaulted() ||
                     !vm["bgp-restart-time"].defaulted() || !vm["gobgpd"].defaulted();
    if (!vm.count("bgp-as")) {
        if (any)
            return invalid("--bgp-* options, --gobgpd and --gobgp-api need --bgp-as");
        return ok();
    }
    bgp::BgpOptions b;
    const auto asn = vm["bgp-as"].as<std::int64_t>();
    if (asn < 1 || asn > 4294967295)
        return invalid("--bgp-as " + std::to_string(asn) + " is out of range 1..4294967295");
    b.asn = static_cast<std::uint32_t>(asn);
    b.node_ip = o.node.node_ip;
    b.router_id = o.node.node_ip;
    if (vm.count("bgp-router-id")) {
        auto id = parse_ipv4(vm["bgp-router-id"].as<std::string>());
        if (!id || *id == 0)
            return invalid("--bgp-router-id: a non-zero IPv4 address");
        b.router_id = *id;
    }
    const auto port = vm["bgp-listen-port"].as<std::int64_t>();
    if (port < 0 || port > 65535)
        return invalid("--bgp-listen-port " + std::to_string(port) + " is out of range 0..65535");
    b.listen_port = static_cast<int>(port);
    const auto hold = vm["bgp-hold-time"].as<std::int64_t>();
    // RFC 4271 allows 0 (no keepalives), but gobgpd takes 0 for its default of 90.
    if (hold < 3 || hold > 65535)
        return invalid("--bgp-hold-time " + std::to_string(hold) + " is out of range 3..65535 seconds");
    const auto restart = vm["bgp-restart-time"].as<std::int64_t>();
    if (restart < 0 || restart > 4095)   // 12 bits in the capability (RFC 4724)
        return invalid("--bgp-restart-time " + std::to_string(restart) + " is out of range 0..4095 seconds");
    b.restart_time = static_cast<std::uint32_t>(restart);
    if (vm.count("bgp-peer"))
        for (const auto& text : vm["bgp-peer"].as<std::vector<std::string>>()) {
            auto peer = bgp::parse_peer(text, static_cast<std::uint32_t>(hold), b.restart_time);
            if (!peer)
                return std::move(peer).error();
            if (peer->address == o.node.node_ip)
                return invalid("--bgp-peer " + text + ": that is this node");
            for (const bgp::PeerConfig& other : b.peers)
                if (other.address == peer->address)
                    return invalid("--bgp-peer " + text + ": " + format_ipv4(peer->address) + " twice");
            b.peers.push_back(*peer);
        }
    if (o.accept.empty())
        return invalid("--bgp-as needs --accept: the pod networks BGP routes may be in (e.g. --accept 10.244.0.0/16)");
    b.filter = o.accept_filter();
    b.advertise = o.node.pod_cidrs;
    b.gobgpd = vm["gobgpd"].as<std::string>();
    if (vm.count("gobgp-api")) {
        b.api = vm["gobgp-api"].as<std::string>();
        if (b.api.empty() || (b.api.starts_with("unix:") && b.api.size() <= std::string("unix://").size()))
            return invalid("--gobgp-api '" + b.api + "': host:port or unix:///path");
    }
    b.child_api_socket = directory_of(o.socket) + "/" + o.table + ".gobgp.sock";
    if (b.api.empty() && b.child_api_socket.size() >= 108)   // sun_path
        return invalid("gobgpd's API socket " + b.child_api_socket + " is too long a path: choose a shorter --socket");
    b.child_log = o.state_dir + "/" + o.table + ".gobgpd.log";
    o.bgp = std::move(b);
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
    o.default_route = !vm["no-default-route"].as<bool>();
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
                                    {"max-nexthops", &o.capacity.max_nexthops, std::int64_t{1} << 20},
                                    {"max-groups", &o.capacity.max_groups, std::int64_t{lpm::kMaxGroups}}}) {
        const auto v = vm[name].as<std::int64_t>();
        if (v < 1 || v > max)
            return invalid("--" + std::string(name) + " " + std::to_string(v) + " is out of range 1.." +
                           std::to_string(max));
        *field = static_cast<std::uint32_t>(v);
    }
    if (const auto& text = vm["dense-window"].as<std::string>(); text == "none") {
        o.capacity.dense_window_addr = 0;
        o.capacity.dense_window_len = lpm::kNoDenseWindow;
    } else {
        auto window = Prefix4::parse(text);
        if (!window)
            return invalid("--dense-window: " + window.error().message);
        if (window->len < lpm::kMinDenseWindowLen || window->len > lpm::kMaxDenseWindowLen)
            return invalid("--dense-window " + text + ": the length must be " +
                           std::to_string(lpm::kMinDenseWindowLen) + ".." + std::to_string(lpm::kMaxDenseWindowLen) +
                           " (or none)");
        o.capacity.dense_window_addr = window->addr;
        o.capacity.dense_window_len = window->len;
    }
    o.socket = vm.count("socket") ? vm["socket"].as<std::string>() : "/run/podfwd/" + o.table + ".sock";
    o.state_dir = vm["state-dir"].as<std::string>();
    if (vm.count("static-routes"))
        o.static_routes = vm["static-routes"].as<std::string>();
    o.allow_empty_static = vm["allow-empty-static"].as<bool>();
    if (o.allow_empty_static && o.static_routes.empty())
        return invalid("--allow-empty-static needs --static-routes");
    o.allow_empty_cli_state = vm["allow-empty-cli-state"].as<bool>();
    if (vm.count("preference"))
        for (const auto& text : vm["preference"].as<std::vector<std::string>>())
            if (auto s = parse_preference(text, o.preferences); !s)
                return s.error();

    if (auto s = accept_options(vm, o); !s)
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
    if (auto s = etcd_options(vm, o); !s)
        return s.error();
    if (auto s = bgp_options(vm, o); !s)
        return s.error();
    if (auto s = check_accept(o); !s)
        return s.error();
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
