// Flannel's etcd layout: <prefix>/config and one lease per node under
// <prefix>/subnets/ (layouts.h has the formats and the rules).
#include <charconv>
#include <utility>

#include <nlohmann/json.hpp>

#include "control/etcd/layouts.h"

namespace podfwd::control::etcd {

namespace {

using nlohmann::json;
namespace jf = json_fields;

constexpr std::uint64_t kMaxVni = (1u << 24) - 1;

Error invalid(std::string message) { return Error{Errc::kInvalidArgument, std::move(message)}; }

// A flannel subnet key: its IPv4 subnet, and whether it is an IPv6-only
// lease ("0.0.0.0-0&fd00::-64").
struct SubnetKey {
    Prefix4 subnet;
    bool ipv6_only = false;
};

// "fd00:10:244:1::-64": flanneld's regexp is [a-f\d:]+-\d+.
bool valid_ipv6_part(std::string_view text) {
    const auto dash = text.rfind('-');
    if (dash == std::string_view::npos || dash == 0)
        return false;
    for (char c : text.substr(0, dash))
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':'))
            return false;
    const auto len_text = text.substr(dash + 1);
    unsigned len = 0;
    auto [end, ec] = std::from_chars(len_text.data(), len_text.data() + len_text.size(), len);
    return ec == std::errc{} && end == len_text.data() + len_text.size() && len <= 128;
}

Result<SubnetKey> parse_subnet_key(std::string_view component) {
    const auto amp = component.find('&');
    const auto v4 = component.substr(0, amp);
    const auto dash = v4.rfind('-');
    if (dash == std::string_view::npos)
        return invalid("subnet key '" + printable(component) + "' is not a.b.c.d-len");
    std::string text(v4);
    text[dash] = '/';
    auto subnet = Prefix4::parse(text);
    if (!subnet)
        return invalid("subnet key: " + printable(subnet.error().message, 160));
    if (flannel_subnet_key(*subnet) != v4)
        return invalid("subnet key '" + printable(component) + "' is not written as flanneld writes it (" +
                       flannel_subnet_key(*subnet) + ")");
    SubnetKey key{*subnet, false};
    if (amp != std::string_view::npos) {
        if (!valid_ipv6_part(component.substr(amp + 1)))
            return invalid("subnet key '" + printable(component) + "': the IPv6 part is not <ipv6>-<len>");
        key.ipv6_only = subnet->len == 0;
    } else if (subnet->len == 0) {
        return invalid("subnet key '" + printable(component) + "' is a /0");
    }
    return key;
}

bool supported_backend(std::string_view type) { return type == "host-gw" || type == "vxlan" || type == "ipip"; }

// A JSON string literal of `text` (invalid UTF-8 replaced, never thrown).
std::string json_string(const std::string& text) {
    return json(text).dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace

Result<Prefix4> parse_flannel_subnet_key(std::string_view last_component) {
    auto key = parse_subnet_key(last_component);
    if (!key)
        return std::move(key).error();
    return key->subnet;
}

std::string flannel_subnet_key(const Prefix4& subnet) {
    return format_ipv4(subnet.addr) + "-" + std::to_string(subnet.len);
}

Result<FlannelConfig> parse_flannel_config(std::string_view text) {
    auto doc = jf::parse_object(text);
    if (!doc)
        return std::move(doc).error();
    FlannelConfig config;
    auto network_text = jf::string_field(*doc, "Network", "Network");
    if (!network_text)
        return std::move(network_text).error();
    if (!*network_text)
        return invalid("Network: missing (an IPv6-only network is not supported)");
    auto network = Prefix4::parse(**network_text);
    if (!network)
        return invalid("Network: " + printable(network.error().message, 160));
    config.network = *network;

    auto subnet_len = jf::uint_field(*doc, "SubnetLen", "SubnetLen", 32);
    if (!subnet_len)
        return std::move(subnet_len).error();
    if (*subnet_len) {
        if (**subnet_len < config.network.len)
            return invalid("SubnetLen: " + std::to_string(**subnet_len) + " is shorter than Network's /" +
                           std::to_string(config.network.len));
        config.subnet_len = static_cast<unsigned>(**subnet_len);
    }

    auto backend = jf::object_field(*doc, "Backend", "Backend");
    if (!backend)
        return std::move(backend).error();
    config.backend_type = "udp";   // flanneld's default
    if (*backend != nullptr) {
        const json& b = **backend;
        auto type = jf::string_field(b, "Type", "Backend.Type");
        auto vni = jf::uint_field(b, "VNI", "Backend.VNI", kMaxVni);
        auto port = jf::uint_field(b, "Port", "Backend.Port", 65535);
        auto direct = jf::bool_field(b, "DirectRouting", "Backend.DirectRouting");
        if (!type)
            return std::move(type).error();
        if (!vni)
            return std::move(vni).error();
        if (!port)
            return std::move(port).error();
        if (!direct)
            return std::move(direct).error();
        if (*type)
            config.backend_type = **type;
        if (*vni && **vni == 0)
            return invalid("Backend.VNI: 0 is not a VNI (1.." + std::to_string(kMaxVni) + ")");
        config.vni = static_cast<std::uint32_t>(vni->value_or(1));
        // Port 0 is flanneld's "the kernel's default", 8472 on Linux.
        config.port = static_cast<std::uint16_t>(port->value_or(0) == 0 ? 8472 : **port);
        config.direct_routing = direct->value_or(false);
    }
    if (!supported_backend(config.backend_type))
        return invalid("Backend.Type: '" + printable(config.backend_type) +
                       "' is not supported (host-gw, vxlan, ipip)");
    return config;
}

Result<FlannelLease> parse_flannel_lease(std::string_view text) {
    auto doc = jf::parse_object(text);
    if (!doc)
        return std::move(doc).error();
    FlannelLease lease;
    auto ip_text = jf::string_field(*doc, "PublicIP", "PublicIP");
    if (!ip_text)
        return std::move(ip_text).error();
    if (!*ip_text)
        return invalid("PublicIP: missing");
    auto ip = parse_ipv4(**ip_text);
    if (!ip)
        return invalid("PublicIP: not an IPv4 address ('" + printable(**ip_text) + "')");
    lease.public_ip = *ip;

    auto type = jf::string_field(*doc, "BackendType", "BackendType");
    if (!type)
        return std::move(type).error();
    if (!*type)
        return invalid("BackendType: missing");
    lease.backend_type = std::move(**type);

    auto data = jf::object_field(*doc, "BackendData", "BackendData");
    if (!data)
        return std::move(data).error();
    if (*data != nullptr) {
        auto vni = jf::uint_field(**data, "VNI", "BackendData.VNI", kMaxVni);
        if (!vni)
            return std::move(vni).error();
        lease.vni = static_cast<std::uint32_t>(vni->value_or(0));
        auto mac_text = jf::string_field(**data, "VtepMAC", "BackendData.VtepMAC");
        if (!mac_text)
            return std::move(mac_text).error();
        if (*mac_text) {
            lease.vtep_mac = parse_mac(**mac_text);
            if (!lease.vtep_mac)
                return invalid("BackendData.VtepMAC: not a MAC address ('" + printable(**mac_text) + "')");
        }
    }
    return lease;
}

std::string flannel_lease_json(const FlannelLease& lease) {
    std::string out = "{\"PublicIP\":\"" + format_ipv4(lease.public_ip) +
                      "\",\"PublicIPv6\":null,\"BackendType\":" + json_string(lease.backend_type) +
                      ",\"BackendData\":";
    if (lease.backend_type == "vxlan") {
        out += "{\"VNI\":" + std::to_string(lease.vni) + ",\"VtepMAC\":";
        out += lease.vtep_mac ? "\"" + format_mac(*lease.vtep_mac) + "\"}" : std::string("null}");
    } else {
        out += "null";
    }
    return out + "}";
}

// ---- FlannelLayout ----

struct FlannelLayout::State {
    struct Lease {
        Result<SubnetKey> key{Errc::kInvalidArgument, {}};
        Result<FlannelLease> value{Errc::kInvalidArgument, {}};
    };

    Options options;
    std::string prefix;        // without a trailing '/'
    std::string config_key;    // <prefix>/config
    std::string subnets_dir;   // <prefix>/subnets/
    std::optional<FlannelConfig> config;
    std::map<std::string, Lease, std::less<>> leases;
};

FlannelLayout::FlannelLayout(Options options) : state_(std::make_unique<State>()) {
    State& s = *state_;
    s.options = std::move(options);
    s.prefix = s.options.prefix;
    while (!s.prefix.empty() && s.prefix.back() == '/')
        s.prefix.pop_back();
    s.config_key = s.prefix + "/config";
    s.subnets_dir = s.prefix + "/subnets/";
}

FlannelLayout::~FlannelLayout() = default;

std::string FlannelLayout::range_begin() const { return state_->prefix + "/"; }
std::string FlannelLayout::range_end() const { return prefix_range_end(state_->prefix + "/"); }
const std::optional<FlannelConfig>& FlannelLayout::config() const noexcept { return state_->config; }
std::string FlannelLayout::config_key() const { return state_->config_key; }
std::string FlannelLayout::lease_key(const Prefix4& subnet) const {
    return state_->subnets_dir + flannel_subnet_key(subnet);
}

bool FlannelLayout::wants(std::string_view key) const {
    return key == state_->config_key ||
           (key.size() > state_->subnets_dir.size() && key.starts_with(state_->subnets_dir));
}

int FlannelLayout::resync_pass(std::string_view key) const { return key == state_->config_key ? 0 : 1; }

namespace {

struct Outcome {
    std::optional<EtcdRoute> route;
    std::optional<std::string> reason;   // without the key
};

Outcome evaluate(const std::string& key, const Result<SubnetKey>& subnet_key, const Result<FlannelLease>& value,
                 const std::optional<FlannelConfig>& config, const FlannelLayout::Options& options) {
    if (!subnet_key)
        return {std::nullopt, subnet_key.error().message};
    const Prefix4 subnet = subnet_key->subnet;
    if (subnet_key->ipv6_only || subnet == options.own_subnet)
        return {};
    if (!value)
        return {std::nullopt, value.error().message};
    const FlannelLease& lease = *value;
    if (options.own_ip != 0 && lease.public_ip == options.own_ip)
        return {};
    if (config && !(subnet.len >= config->network.len && config->network.contains(subnet.addr)))
        return {std::nullopt, "subnet " + subnet.str() + " is outside the config's Network " + config->network.str()};
    EtcdRoute route{subnet, lease.public_ip, Encap::kHostGw, false, 0, std::nullopt, key};
    if (lease.backend_type == "vxlan") {
        if (!lease.vtep_mac)
            return {std::nullopt, "vxlan lease without BackendData.VtepMAC"};
        route.encap = Encap::kVxlan;
        route.vtep_mac = lease.vtep_mac;
        route.vni = lease.vni != 0 ? lease.vni : config ? config->vni : 1;
        route.direct_on_subnet = config && config->direct_routing;
    } else if (lease.backend_type == "ipip") {
        route.encap = Encap::kIpip;
        route.direct_on_subnet = config && config->direct_routing;
    } else if (lease.backend_type != "host-gw") {
        return {std::nullopt,
                "BackendType '" + printable(lease.backend_type) + "' is not supported (host-gw, vxlan, ipip)"};
    }
    return {std::move(route), std::nullopt};
}

}  // namespace

void FlannelLayout::changed(const std::string& key, const std::string* value) {
    State& s = *state_;
    const auto reevaluate = [&](const std::string& lease_key, const State::Lease& lease) {
        Outcome outcome = evaluate(lease_key, lease.key, lease.value, s.config, s.options);
        if (lease.key)
            state_route(lease_key, lease.key->subnet, std::move(outcome.route));
        set_rejection(lease_key, outcome.reason ? std::optional<std::string>(printable(lease_key) + ": " + *outcome.reason)
                                                : std::nullopt);
    };

    if (key == s.config_key) {
        std::optional<FlannelConfig> config;
        if (value != nullptr) {
            auto parsed = parse_flannel_config(*value);
            if (parsed)
                config = std::move(*parsed);
            set_rejection(key, parsed ? std::nullopt
                                      : std::optional<std::string>(printable(key) + ": " + parsed.error().message));
        } else {
            set_rejection(key, std::nullopt);
        }
        if (config == s.config)
            return;
        s.config = std::move(config);
        for (const auto& [lease_key, lease] : s.leases)
            reevaluate(lease_key, lease);
        return;
    }

    if (value == nullptr) {
        auto it = s.leases.find(key);
        if (it == s.leases.end())
            return;
        if (it->second.key)
            state_route(key, it->second.key->subnet, std::nullopt);
        set_rejection(key, std::nullopt);
        s.leases.erase(it);
        return;
    }
    auto it = s.leases.find(key);
    if (it == s.leases.end())
        it = s.leases.emplace(key, State::Lease{parse_subnet_key(std::string_view(key).substr(s.subnets_dir.size())),
                                                invalid({})})
                 .first;
    it->second.value = parse_flannel_lease(*value);
    reevaluate(key, it->second);
}

}  // namespace podfwd::control::etcd
