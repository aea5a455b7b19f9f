// The control plane's vocabulary: where a route came from, what mode it asks
// for, and the route itself as a source states it. Plain value types.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/ipv4.h"
#include "common/mac.h"
#include "common/result.h"

namespace podfwd::control {

// Who said so. Order is the tie-break between equal preferences. Every
// source but kArp states routes; kArp states neighbours only.
enum class Source : std::uint8_t {
    kLocal,       // this node's own pod CIDRs (node config)
    kCli,         // podfwdctl route add
    kStatic,      // the static routes file
    kBgp,
    kEtcd,
    kKernel,      // mirrored from the kernel FIB (netlink)
    kConnected,   // the --uplink subnet itself (node config): the dataplane ARPs for each destination
    kGateway,     // 0.0.0.0/0 via --gateway (node config): every learned route wins over it
    kArp,         // neighbours only: those the dataplane resolved (its neighbour segment)
    kCount
};
inline constexpr unsigned kSourceCount = static_cast<unsigned>(Source::kCount);

const char* source_name(Source) noexcept;
// Any source's name, kArp's ("arp") included.
std::optional<Source> parse_source(std::string_view) noexcept;
// Sources that state routes: all but kArp.
constexpr bool is_route_source(Source s) noexcept { return s != Source::kArp && s < Source::kCount; }
// A route source's name (route list --source, --preference); nullopt for "arp".
std::optional<Source> parse_route_source(std::string_view) noexcept;
// "local, cli, static, bgp, etcd, kernel, connected, gateway", for messages.
const std::string& route_source_names();

// Lower wins. Defaults: local 0, cli 10, static 20, bgp 30, etcd 40,
// kernel 50, connected 0, gateway 255 (kArp's slot is unused).
using Preferences = std::array<std::uint8_t, kSourceCount>;
Preferences default_preferences() noexcept;

// What a route asks for; the policy turns it into what the dataplane does.
enum class ModeRequest : std::uint8_t {
    kDefault,       // the node's --default-mode
    kHostGw,        // rewrite MACs; the next hop must be on the uplink subnet
    kIpip,
    kVxlan,
    kCrossSubnet,   // host-gw on the uplink subnet, the cross-subnet tunnel otherwise
    kLocal,         // to the node's kernel (a local pod)
    kBlackhole,
};

const char* mode_request_name(ModeRequest) noexcept;
// "host-gw", "ipip", "vxlan", "cross-subnet", "local", "blackhole" (and
// "host_gw", "cross_subnet"); not "default".
std::optional<ModeRequest> parse_mode_request(std::string_view) noexcept;

// A route as one source states it.
struct RouteSpec {
    Prefix4 prefix;
    Source source = Source::kStatic;
    Ipv4Addr via = 0;                  // next-hop node; 0 for local and blackhole
    ModeRequest mode = ModeRequest::kDefault;
    std::uint32_t vni = 0;             // VXLAN: 0 takes the node's --vni
    std::optional<MacAddr> vtep_mac;   // VXLAN: the remote VTEP's MAC

    friend bool operator==(const RouteSpec&, const RouteSpec&) = default;
};

// "10.244.1.0/24 via 10.168.0.3 mode ipip (static)", for logs and errors.
std::string describe(const RouteSpec&);

// An IPv4 neighbour: the MAC of a node or gateway on the uplink.
struct Neighbour {
    Ipv4Addr ip = 0;
    MacAddr mac{};
    Source source = Source::kStatic;
    friend bool operator==(const Neighbour&, const Neighbour&) = default;
};

}  // namespace podfwd::control
