// Calico's etcd layout: IP pools, nodes and IPAM blocks (layouts.h has the
// formats and the rules). Blocks are indexed by prefix and by node, so that a
// pool change re-evaluates the blocks inside its cidr and a node change its
// own blocks, never every block.
#include <charconv>
#include <set>
#include <unordered_map>
#include <utility>

#include <nlohmann/json.hpp>

#include "control/etcd/layouts.h"

namespace podfwd::control::etcd {

namespace {

using nlohmann::json;
namespace jf = json_fields;

Error invalid(std::string message) { return Error{Errc::kInvalidArgument, std::move(message)}; }

struct Pool {
    Prefix4 cidr;
    Encap encap = Encap::kHostGw;   // kHostGw, kIpip or kVxlan
    bool cross_subnet = false;
    friend bool operator==(const Pool&, const Pool&) = default;
};

struct Node {
    std::optional<Ipv4Addr> ip;          // spec.bgp.ipv4Address
    std::optional<MacAddr> vtep_mac;     // spec.vxlanTunnelMACAddr
    friend bool operator==(const Node&, const Node&) = default;
};

// A block's value: its node (nullopt: no affinity, unclaimed).
struct BlockValue {
    std::optional<std::string> node;
};

Result<Prefix4> parse_block_key(std::string_view component) {
    const auto dash = component.rfind('-');
    if (dash == std::string_view::npos)
        return invalid("block key '" + printable(component) + "' is not a.b.c.d-len");
    std::string text(component);
    text[dash] = '/';
    auto cidr = Prefix4::parse(text);
    if (!cidr)
        return invalid("block key: " + printable(cidr.error().message, 160));
    if (format_ipv4(cidr->addr) + "-" + std::to_string(cidr->len) != component)
        return invalid("block key '" + printable(component) + "' is not written as Calico writes it (" +
                       format_ipv4(cidr->addr) + "-" + std::to_string(cidr->len) + ")");
    return *cidr;
}

Result<BlockValue> parse_block(std::string_view text, const Prefix4& key_cidr) {
    // A block's allocations and attributes are most of it: not built.
    auto doc = jf::parse_object(text, {"cidr", "affinity"});
    if (!doc)
        return std::move(doc).error();
    auto cidr_text = jf::string_field(*doc, "cidr", "cidr");
    if (!cidr_text)
        return std::move(cidr_text).error();
    if (!*cidr_text)
        return invalid("cidr: missing");
    auto cidr = Prefix4::parse(**cidr_text);
    if (!cidr)
        return invalid("cidr: " + printable(cidr.error().message, 160));
    if (*cidr != key_cidr)
        return invalid("cidr " + cidr->str() + " differs from the key's " + key_cidr.str());
    auto affinity = jf::string_field(*doc, "affinity", "affinity");
    if (!affinity)
        return std::move(affinity).error();
    BlockValue block;
    if (*affinity) {
        constexpr std::string_view kHost = "host:";
        if (!(*affinity)->starts_with(kHost) || (*affinity)->size() == kHost.size())
            return invalid("affinity: '" + printable(**affinity) + "' is not host:<node>");
        block.node = (*affinity)->substr(kHost.size());
    }
    return block;
}

Result<Encap> parse_mode(const json& spec, std::string_view name, Encap encap, bool& cross_subnet) {
    auto mode = jf::string_field(spec, name, "spec." + std::string(name));
    if (!mode)
        return std::move(mode).error();
    if (!*mode || **mode == "Never" || (*mode)->empty())
        return Encap::kHostGw;
    if (**mode == "Always")
        return encap;
    if (**mode == "CrossSubnet") {
        cross_subnet = true;
        return encap;
    }
    return invalid("spec." + std::string(name) + ": '" + printable(**mode) + "' is not Always, CrossSubnet or Never");
}

// nullopt: an IPv6 pool (held, no effect on IPv4 blocks).
Result<std::optional<Pool>> parse_pool(std::string_view text) {
    auto doc = jf::parse_object(text);
    if (!doc)
        return std::move(doc).error();
    auto spec = jf::object_field(*doc, "spec", "spec");
    if (!spec)
        return std::move(spec).error();
    if (*spec == nullptr)
        return invalid("spec: missing");
    auto cidr_text = jf::string_field(**spec, "cidr", "spec.cidr");
    if (!cidr_text)
        return std::move(cidr_text).error();
    if (!*cidr_text)
        return invalid("spec.cidr: missing");
    bool ipip_cross = false;
    bool vxlan_cross = false;
    auto ipip = parse_mode(**spec, "ipipMode", Encap::kIpip, ipip_cross);
    if (!ipip)
        return std::move(ipip).error();
    auto vxlan = parse_mode(**spec, "vxlanMode", Encap::kVxlan, vxlan_cross);
    if (!vxlan)
        return std::move(vxlan).error();
    if ((*cidr_text)->find(':') != std::string::npos)
        return std::optional<Pool>();
    auto cidr = Prefix4::parse(**cidr_text);
    if (!cidr)
        return invalid("spec.cidr: " + printable(cidr.error().message, 160));
    Pool pool{*cidr};
    if (*ipip != Encap::kHostGw) {
        pool.encap = *ipip;
        pool.cross_subnet = ipip_cross;
    } else if (*vxlan != Encap::kHostGw) {
        pool.encap = *vxlan;
        pool.cross_subnet = vxlan_cross;
    }
    return std::optional<Pool>(pool);
}

Result<Node> parse_node(std::string_view text) {
    auto doc = jf::parse_object(text);
    if (!doc)
        return std::move(doc).error();
    Node node;
    auto spec = jf::object_field(*doc, "spec", "spec");
    if (!spec)
        return std::move(spec).error();
    if (*spec == nullptr)
        return node;
    auto bgp = jf::object_field(**spec, "bgp", "spec.bgp");
    if (!bgp)
        return std::move(bgp).error();
    if (*bgp != nullptr) {
        auto address = jf::string_field(**bgp, "ipv4Address", "spec.bgp.ipv4Address");
        if (!address)
            return std::move(address).error();
        if (*address && !(*address)->empty()) {
            // "10.168.0.3/24": the node's address on its subnet (host bits set).
            const std::string_view text_address = **address;
            const auto slash = text_address.find('/');
            auto ip = parse_ipv4(text_address.substr(0, slash));
            bool len_ok = true;
            if (slash != std::string_view::npos) {
                const auto len_text = text_address.substr(slash + 1);
                unsigned len = 0;
                auto [end, ec] = std::from_chars(len_text.data(), len_text.data() + len_text.size(), len);
                len_ok = !len_text.empty() && ec == std::errc{} && end == len_text.data() + len_text.size() &&
                         len <= 32;
            }
            if (!ip || !len_ok)
                return invalid("spec.bgp.ipv4Address: not an IPv4 address ('" + printable(text_address) + "')");
            node.ip = *ip;
        }
    }
    auto mac_text = jf::string_field(**spec, "vxlanTunnelMACAddr", "spec.vxlanTunnelMACAddr");
    if (!mac_text)
        return std::move(mac_text).error();
    if (*mac_text && !(*mac_text)->empty()) {
        node.vtep_mac = parse_mac(**mac_text);
        if (!node.vtep_mac)
            return invalid("spec.vxlanTunnelMACAddr: not a MAC address ('" + printable(**mac_text) + "')");
    }
    return node;
}

}  // namespace

struct CalicoLayout::State {
    // A block whose key parses (one key per cidr: keys are as Calico writes
    // them). A key that does not parse is only a rejection.
    struct Block {
        std::string key;
        Result<BlockValue> value{Errc::kInvalidArgument, {}};
    };

    Options options;
    std::string pools_dir;    // <prefix>/resources/v3/projectcalico.org/ippools/
    std::string nodes_dir;    // <prefix>/resources/v3/projectcalico.org/nodes/
    std::string blocks_dir;   // <prefix>/ipam/v2/assignment/ipv4/block/

    std::map<std::string, Pool, std::less<>> pools;       // valid IPv4 pools, by key
    std::map<Prefix4, std::set<std::string>> pools_by_cidr;
    std::map<std::string, Node, std::less<>> nodes;       // valid nodes, by name
    std::map<Prefix4, Block> blocks;                      // by cidr
    std::unordered_map<std::string, std::set<Prefix4>> blocks_by_node;

    const Pool* pool_of(const Prefix4& block) const {
        if (pools_by_cidr.empty())
            return nullptr;
        for (int len = block.len; len >= 0; --len) {
            auto it = pools_by_cidr.find(Prefix4{block.addr & prefix_mask(static_cast<unsigned>(len)),
                                                 static_cast<std::uint8_t>(len)});
            if (it != pools_by_cidr.end())
                return &pools.find(*it->second.begin())->second;
        }
        return nullptr;
    }
};

CalicoLayout::CalicoLayout(Options options) : state_(std::make_unique<State>()) {
    State& s = *state_;
    s.options = std::move(options);
    std::string prefix = s.options.prefix;
    while (!prefix.empty() && prefix.back() == '/')
        prefix.pop_back();
    s.pools_dir = prefix + "/resources/v3/projectcalico.org/ippools/";
    s.nodes_dir = prefix + "/resources/v3/projectcalico.org/nodes/";
    s.blocks_dir = prefix + "/ipam/v2/assignment/ipv4/block/";
}

CalicoLayout::~CalicoLayout() = default;

// blocks_dir < pools_dir < nodes_dir: one range holds the three.
std::string CalicoLayout::range_begin() const { return state_->blocks_dir; }
std::string CalicoLayout::range_end() const { return prefix_range_end(state_->nodes_dir); }

bool CalicoLayout::wants(std::string_view key) const {
    for (const std::string* dir : {&state_->pools_dir, &state_->nodes_dir, &state_->blocks_dir})
        if (key.size() > dir->size() && key.starts_with(*dir))
            return true;
    return false;
}

int CalicoLayout::resync_pass(std::string_view key) const { return key.starts_with(state_->blocks_dir) ? 1 : 0; }

namespace {

struct Outcome {
    std::optional<EtcdRoute> route;
    std::optional<std::string> reason;   // without the key
};

}  // namespace

void CalicoLayout::changed(const std::string& key, const std::string* value) {
    State& s = *state_;
    const auto evaluate = [&](const Prefix4& cidr, const State::Block& block) -> Outcome {
        if (!block.value)
            return {std::nullopt, block.value.error().message};
        if (!block.value->node)
            return {};
        const std::string& name = *block.value->node;
        EtcdRoute route{cidr, 0, Encap::kLocal, false, 0, std::nullopt, block.key};
        if (!s.options.node_name.empty() && name == s.options.node_name)
            return {std::move(route), std::nullopt};
        auto node = s.nodes.find(name);
        if (node == s.nodes.end())
            return {std::nullopt, "node '" + printable(name) + "' unknown"};
        if (!node->second.ip)
            return {std::nullopt, "node '" + printable(name) + "' has no bgp.ipv4Address"};
        route.via = *node->second.ip;
        route.encap = Encap::kHostGw;
        if (const Pool* pool = s.pool_of(cidr)) {
            route.encap = pool->encap;
            route.direct_on_subnet = pool->cross_subnet;
        }
        if (route.encap == Encap::kVxlan) {
            if (!node->second.vtep_mac)
                return {std::nullopt, "node '" + printable(name) + "' has no vxlanTunnelMACAddr (its pool is VXLAN)"};
            route.vtep_mac = node->second.vtep_mac;
            route.vni = s.options.vxlan_vni;
        }
        return {std::move(route), std::nullopt};
    };
    const auto reevaluate = [&](const Prefix4& cidr, const State::Block& block) {
        Outcome outcome = evaluate(cidr, block);
        state_route(block.key, cidr, std::move(outcome.route));
        set_rejection(block.key, outcome.reason ? std::optional<std::string>(printable(block.key) + ": " + *outcome.reason)
                                                : std::nullopt);
    };
    const auto reevaluate_inside = [&](const Prefix4& cidr) {
        const Ipv4Addr last = cidr.addr | ~prefix_mask(cidr.len);
        for (auto it = s.blocks.lower_bound(Prefix4{cidr.addr, 0}); it != s.blocks.end() && it->first.addr <= last;
             ++it)
            if (it->first.len >= cidr.len)
                reevaluate(it->first, it->second);
    };
    const auto reject = [&](const Error& error) {
        set_rejection(key, printable(key) + ": " + error.message);
    };

    if (key.starts_with(s.blocks_dir)) {
        auto cidr = parse_block_key(std::string_view(key).substr(s.blocks_dir.size()));
        if (!cidr) {
            if (value != nullptr)
                reject(cidr.error());
            else
                set_rejection(key, std::nullopt);
            return;
        }
        auto it = s.blocks.find(*cidr);
        if (it != s.blocks.end() && it->second.value && it->second.value->node) {
            auto of_node = s.blocks_by_node.find(*it->second.value->node);
            of_node->second.erase(*cidr);
            if (of_node->second.empty())
                s.blocks_by_node.erase(of_node);
        }
        if (value == nullptr) {
            if (it == s.blocks.end())
                return;
            state_route(key, *cidr, std::nullopt);
            set_rejection(key, std::nullopt);
            s.blocks.erase(it);
            return;
        }
        if (it == s.blocks.end())
            it = s.blocks.emplace(*cidr, State::Block{key, invalid({})}).first;
        it->second.value = parse_block(*value, *cidr);
        if (it->second.value && it->second.value->node)
            s.blocks_by_node[*it->second.value->node].insert(*cidr);
        reevaluate(*cidr, it->second);
        return;
    }

    if (key.starts_with(s.pools_dir)) {
        std::optional<Pool> before;
        if (auto it = s.pools.find(key); it != s.pools.end()) {
            before = it->second;
            auto& same_cidr = s.pools_by_cidr[it->second.cidr];
            same_cidr.erase(key);
            if (same_cidr.empty())
                s.pools_by_cidr.erase(it->second.cidr);
            s.pools.erase(it);
        }
        std::optional<Pool> after;
        if (value != nullptr) {
            auto parsed = parse_pool(*value);
            if (parsed) {
                after = *parsed;
                set_rejection(key, std::nullopt);
            } else {
                reject(parsed.error());
            }
        } else {
            set_rejection(key, std::nullopt);
        }
        if (after) {
            s.pools.emplace(key, *after);
            s.pools_by_cidr[after->cidr].insert(key);
        }
        if (before == after)
            return;
        if (before)
            reevaluate_inside(before->cidr);
        if (after && !(before && before->cidr == after->cidr))
            reevaluate_inside(after->cidr);
        return;
    }

    // A node.
    const std::string name = key.substr(s.nodes_dir.size());
    std::optional<Node> before;
    if (auto it = s.nodes.find(name); it != s.nodes.end()) {
        before = it->second;
        s.nodes.erase(it);
    }
    std::optional<Node> after;
    if (value != nullptr) {
        auto parsed = parse_node(*value);
        if (parsed) {
            after = *parsed;
            s.nodes.emplace(name, *after);
            set_rejection(key, std::nullopt);
        } else {
            reject(parsed.error());
        }
    } else {
        set_rejection(key, std::nullopt);
    }
    if (before == after)
        return;
    auto of_node = s.blocks_by_node.find(name);
    if (of_node == s.blocks_by_node.end())
        return;
    for (const Prefix4& cidr : of_node->second)   // reevaluate() leaves the index as it is
        reevaluate(cidr, s.blocks.find(cidr)->second);
}

}  // namespace podfwd::control::etcd
