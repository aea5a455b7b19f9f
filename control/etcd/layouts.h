// The two datastore layouts: Flannel's subnet leases and Calico's IPAM
// blocks. Each turns the keys under its prefix into EtcdRoutes (layout.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/ipv4.h"
#include "common/mac.h"
#include "common/result.h"
#include "control/etcd/layout.h"

namespace podfwd::control::etcd {

struct KeyValue {
    std::string key;
    std::string value;
};

// What one apply() or resync() changed: the routes whose state differs from
// before the call (net: a route removed and re-added unchanged is no
// change), and the keys newly rejected or rejected for a new reason (each
// logged once by the caller).
struct LayoutUpdate {
    std::vector<RouteChange> changes;
    std::vector<Rejection> rejected;
};

class Layout {
public:
    virtual ~Layout() = default;

    // The key range to read and watch: [begin, end) in etcd's byte order.
    virtual std::string range_begin() const = 0;
    virtual std::string range_end() const = 0;

    // One key changed (value) or was deleted (nullopt). Keys outside the
    // layout's interest are ignored. The same value again is no change.
    LayoutUpdate apply(std::string_view key, std::optional<std::string_view> value);
    // A full read of the range: the held keys become exactly `snapshot`;
    // only the difference is reported.
    LayoutUpdate resync(std::span<const KeyValue> snapshot);

    const std::map<Prefix4, EtcdRoute>& routes() const noexcept { return routes_; }
    // Every key currently rejected, with its reason (in key order).
    std::vector<Rejection> rejections() const;
    LayoutCounters counters() const;   // keys: values_.size()
    virtual const char* name() const noexcept = 0;   // "flannel", "calico"

protected:
    // Whether `key` is one of the layout's (others are ignored, not held).
    virtual bool wants(std::string_view key) const = 0;
    // `key`'s held value changed to `value` (nullptr: deleted); values_ is
    // already updated. The subclass re-evaluates what depends on it through
    // state_route() and set_rejection().
    virtual void changed(const std::string& key, const std::string* value) = 0;
    // resync() applies the keys of lower passes first (and deletes them
    // last): what others depend on (a config, pools, nodes) before them, so
    // that each dependent key is evaluated once.
    virtual int resync_pass(std::string_view /*key*/) const { return 0; }

    // The route `key` states for `prefix` (nullopt: none; else route->key ==
    // key). Should two keys state one prefix, the lowest key's route is the
    // prefix's.
    void state_route(std::string_view key, const Prefix4& prefix, std::optional<EtcdRoute> route);
    // `key` is rejected for `reason` (one line, names the key), or not (nullopt).
    void set_rejection(std::string_view key, std::optional<std::string> reason);

    // The best route per prefix (changed only through state_route()).
    std::map<Prefix4, EtcdRoute> routes_;
    // The raw values held, so that resync() and apply() skip unchanged keys.
    std::map<std::string, std::string, std::less<>> values_;

private:
    void apply_one(std::string_view key, std::optional<std::string_view> value);
    // routes_[prefix] becomes `route` (at `current`, or end()).
    void set_best(const Prefix4& prefix, std::map<Prefix4, EtcdRoute>::iterator current,
                  std::optional<EtcdRoute> route);
    LayoutUpdate take_update();

    // The routes of keys that a lower key stating the same prefix hides
    // (rare: a dual-stack lease's key next to its plain one).
    std::map<Prefix4, std::map<std::string, EtcdRoute, std::less<>>> hidden_;
    std::map<std::string, std::string, std::less<>> rejected_;
    // Since the start of the current apply()/resync(): each touched prefix's
    // route and each touched key's rejection as they were before it.
    std::map<Prefix4, std::optional<EtcdRoute>> routes_before_;
    std::map<std::string, std::optional<std::string>, std::less<>> rejected_before_;
};

// ---- Flannel (flanneld v0.2x with etcd v3) ----
//   <prefix>/config                    {"Network": "10.244.0.0/16", "SubnetLen": 24,
//                                        "Backend": {"Type": "vxlan", "VNI": 1, "Port": 8472,
//                                                    "DirectRouting": false}}
//   <prefix>/subnets/10.244.1.0-24     {"PublicIP": "10.168.0.3", "PublicIPv6": null,
//                                        "BackendType": "vxlan",
//                                        "BackendData": {"VNI": 1, "VtepMAC": "aa:bb:..."}}
// One route per lease: BackendType host-gw -> kHostGw; vxlan -> kVxlan with
// its VtepMAC and VNI (BackendData's, else the config's, else 1); ipip
// (flanneld's experimental IPIP backend, BackendData null) -> kIpip. vxlan and
// ipip have direct_on_subnet = the config's DirectRouting (host-gw to nodes on
// the uplink subnet). This node's own lease (its subnet, or its PublicIP) is
// no route.
//
// The config is refused when Network is missing or SubnetLen, Backend.VNI or
// Backend.Port is out of range, or its Backend.Type is not host-gw, vxlan or ipip
// (flanneld's default, udp, when Backend or Type is missing); the leases are
// then taken as with no config: no Network check, VNI from the lease or 1,
// no DirectRouting. A lease is refused when its subnet key does not parse
// (or is not written as flanneld writes it), lies outside the config's
// Network, its value does not parse, its BackendType is not host-gw, vxlan or ipip,
// or a vxlan lease has no VtepMAC. A dual-stack lease's key has flanneld's
// "&<ipv6>-<len>" suffix: its IPv4 subnet is the route's; an IPv6-only
// lease (0.0.0.0-0&...) is no route.
struct FlannelConfig {
    Prefix4 network;
    unsigned subnet_len = 24;
    std::string backend_type = "vxlan";   // "host-gw", "vxlan", "ipip" (others are refused)
    std::uint32_t vni = 1;
    std::uint16_t port = 8472;
    bool direct_routing = false;
    friend bool operator==(const FlannelConfig&, const FlannelConfig&) = default;
};

// A lease value as flanneld writes it.
struct FlannelLease {
    Ipv4Addr public_ip = 0;
    std::string backend_type;
    std::uint32_t vni = 0;             // 0: not stated
    std::optional<MacAddr> vtep_mac;
};

Result<FlannelConfig> parse_flannel_config(std::string_view json);
Result<FlannelLease> parse_flannel_lease(std::string_view json);
std::string flannel_lease_json(const FlannelLease&);
// "10.244.1.0-24" <-> 10.244.1.0/24. The key must be written as
// flannel_subnet_key() writes it ("10.244.01.0-24" is refused: two keys
// would state one subnet); a dual-stack key's "&<ipv6>-<len>" is checked
// and skipped (an IPv6-only lease's "0.0.0.0-0&..." gives 0.0.0.0/0).
Result<Prefix4> parse_flannel_subnet_key(std::string_view last_component);
std::string flannel_subnet_key(const Prefix4&);

class FlannelLayout final : public Layout {
public:
    struct Options {
        std::string prefix = "/coreos.com/network";
        std::optional<Prefix4> own_subnet;   // --pod-cidr: our lease, not a route
        Ipv4Addr own_ip = 0;                 // --node-ip: leases of this PublicIP are ours
    };
    explicit FlannelLayout(Options options);
    ~FlannelLayout() override;

    std::string range_begin() const override;
    std::string range_end() const override;
    const char* name() const noexcept override { return "flannel"; }

    // The parsed <prefix>/config, when present and valid.
    const std::optional<FlannelConfig>& config() const noexcept;
    std::string config_key() const;
    std::string lease_key(const Prefix4& subnet) const;

private:
    bool wants(std::string_view key) const override;
    void changed(const std::string& key, const std::string* value) override;
    int resync_pass(std::string_view key) const override;

    struct State;
    std::unique_ptr<State> state_;
};

// ---- Calico (etcd datastore) ----
//   /calico/resources/v3/projectcalico.org/ippools/<name>
//       {"kind":"IPPool", "spec": {"cidr": "10.244.0.0/16", "ipipMode": "Always|CrossSubnet|Never",
//                                  "vxlanMode": "Always|CrossSubnet|Never", "blockSize": 26}}
//   /calico/resources/v3/projectcalico.org/nodes/<node>
//       {"kind":"Node", "spec": {"bgp": {"ipv4Address": "10.168.0.3/24"},
//                                "vxlanTunnelMACAddr": "aa:bb:..."}}
//   /calico/ipam/v2/assignment/ipv4/block/10.244.1.0-26
//       {"cidr": "10.244.1.0/26", "affinity": "host:<node>", ...}
// One route per affine block via its node's address; the mode from the pool
// that contains the block: ipipMode Always -> kIpip, CrossSubnet -> kIpip
// with direct_on_subnet; else vxlanMode likewise with kVxlan (VNI
// Options::vxlan_vni, the node's vxlanTunnelMACAddr); both Never (or no pool) -> kHostGw. Blocks
// affine to this node (--node-name) are kLocal.
//
// The range read and watched runs from the blocks to the nodes (it holds
// IPAM handles and other resources too, ignored, but not the workload
// endpoints). A block without affinity is unclaimed: no route, not refused.
// A block is refused when its key is not a.b.c.d-len (as Calico writes it),
// its cidr differs from its key's, its affinity is not "host:<node>", its
// node is unknown (or its key refused) or has no spec.bgp.ipv4Address, or
// its pool is VXLAN and the node has no vxlanTunnelMACAddr. The pool is the
// most specific that contains the block (the lowest key among equal
// cidrs). A pool or node whose value does not parse is refused and taken
// as absent; an IPv6 pool is held and has no effect.
class CalicoLayout final : public Layout {
public:
    struct Options {
        std::string prefix = "/calico";
        std::string node_name;   // this node: its blocks are local
        std::uint32_t vxlan_vni = 4096;
    };
    explicit CalicoLayout(Options options);
    ~CalicoLayout() override;

    std::string range_begin() const override;
    std::string range_end() const override;
    const char* name() const noexcept override { return "calico"; }

private:
    bool wants(std::string_view key) const override;
    void changed(const std::string& key, const std::string* value) override;
    int resync_pass(std::string_view key) const override;

    struct State;
    std::unique_ptr<State> state_;
};

// The end of the range of every key that starts with `prefix` (etcd's
// range_end for a prefix: the last byte below 0xff incremented, the rest
// dropped; "\0", every key, when there is none).
std::string prefix_range_end(std::string_view prefix);

// `text` fit for a one-line log: control bytes and bytes >= 0x80 as \xNN,
// cut to `max` bytes ("..." appended). For keys and values in reasons.
std::string printable(std::string_view text, std::size_t max = 256);

// JSON field access for the layouts' parsers: never throws; an error's
// message names the field ("Backend.VNI: 16777216 is not an integer in
// 0..16777215").
namespace json_fields {
// `text` as a JSON object ("not JSON" / "not a JSON object" otherwise).
// With `only`, the object holds just those top-level members (a member
// that is an object or an array held empty): the rest is checked but not
// built, which halves the cost of a Calico block's allocations.
Result<nlohmann::json> parse_object(std::string_view text, std::initializer_list<std::string_view> only = {});
// obj[name] when present and not null, else nullptr (obj is an object).
const nlohmann::json* find(const nlohmann::json& obj, std::string_view name);
// Each: nullopt/nullptr when absent or null; an error when of another type
// (or, for numbers, not an integer in [0, max]). `path` names the field.
Result<std::optional<std::string>> string_field(const nlohmann::json& obj, std::string_view name,
                                                 std::string_view path);
Result<std::optional<std::uint64_t>> uint_field(const nlohmann::json& obj, std::string_view name,
                                                std::string_view path, std::uint64_t max);
Result<std::optional<bool>> bool_field(const nlohmann::json& obj, std::string_view name, std::string_view path);
Result<const nlohmann::json*> object_field(const nlohmann::json& obj, std::string_view name,
                                           std::string_view path);
}  // namespace json_fields

}  // namespace podfwd::control::etcd
