#include "control/kernel/netlink_objects.h"

#include <arpa/inet.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <netlink/addr.h>
#include <netlink/errno.h>
#include <netlink/route/nexthop.h>

#include <cstring>

namespace podfwd::control::kernel_detail {

namespace {

// An IPv4 address of exactly four bytes; libnl hands out nl_addr of any family.
std::optional<Ipv4Addr> ipv4_of(nl_addr* addr) {
    if (addr == nullptr || nl_addr_get_family(addr) != AF_INET || nl_addr_get_len(addr) != 4)
        return std::nullopt;
    std::uint32_t network_order = 0;
    std::memcpy(&network_order, nl_addr_get_binary_addr(addr), sizeof network_order);
    return ntohl(network_order);
}

std::optional<Prefix4> destination(rtnl_route& route) {
    nl_addr* dst = rtnl_route_get_dst(&route);
    if (dst == nullptr)
        return std::nullopt;
    // libnl represents the default route (no RTA_DST) as an empty address.
    const auto addr = nl_addr_get_len(dst) == 0 ? std::optional<Ipv4Addr>{0} : ipv4_of(dst);
    if (!addr)
        return std::nullopt;
    auto prefix = Prefix4::make(*addr, nl_addr_get_prefixlen(dst));
    if (!prefix)
        return std::nullopt;
    return *prefix;
}

// The gateway of a route with exactly one next hop, if it is an IPv4 one
// (RTA_VIA with an IPv6 gateway, device routes and multipath do not count).
std::optional<Ipv4Addr> single_gateway(rtnl_route& route) {
    if (rtnl_route_get_nnexthops(&route) != 1)
        return std::nullopt;
    rtnl_nexthop* nh = rtnl_route_nexthop_n(&route, 0);
    if (nh == nullptr)
        return std::nullopt;
    const auto gateway = ipv4_of(rtnl_route_nh_get_gateway(nh));
    if (!gateway || *gateway == 0)
        return std::nullopt;
    return gateway;
}

std::optional<MacAddr> unicast_mac(nl_addr* lladdr) {
    if (lladdr == nullptr || nl_addr_get_len(lladdr) != 6)
        return std::nullopt;
    MacAddr mac{};
    std::memcpy(mac.data(), nl_addr_get_binary_addr(lladdr), mac.size());
    // Multicast and broadcast addresses get NOARP entries too; they are not next hops.
    if (!is_unicast(mac))
        return std::nullopt;
    return mac;
}

constexpr int kUsableStates = NUD_REACHABLE | NUD_STALE | NUD_DELAY | NUD_PROBE | NUD_PERMANENT | NUD_NOARP;

}  // namespace

Error nl_error(const std::string& what, int nl_err) {
    return Error{Errc::kSystem, "netlink: " + what + ": " + nl_geterror(nl_err)};
}

Result<NlSock> connect_route_socket() {
    NlSock sock(nl_socket_alloc());
    if (!sock)
        return Error{Errc::kSystem, "netlink: cannot allocate a socket"};
    if (const int err = nl_connect(sock.get(), NETLINK_ROUTE); err < 0)
        return nl_error("connect NETLINK_ROUTE", err);
    return sock;
}

RouteVerdict classify_route(rtnl_route& route, const KernelOptions& options) {
    RouteVerdict verdict;
    if (rtnl_route_get_family(&route) != AF_INET || (rtnl_route_get_flags(&route) & RTM_F_CLONED) != 0)
        return verdict;
    // Keyed even when not chosen: a route replaced in place by one of another
    // protocol has to leave the mirror.
    const std::uint32_t table = rtnl_route_get_table(&route);
    verdict.prefix = destination(route);
    verdict.key = RouteKey{rtnl_route_get_priority(&route), table, rtnl_route_get_tos(&route)};
    if (options.table && table != *options.table)
        return verdict;
    if (options.protocol && rtnl_route_get_protocol(&route) != *options.protocol)
        return verdict;

    verdict.kind = RouteVerdict::Kind::kIgnored;
    // A TOS route only applies to some packets; the dataplane cannot say which.
    if (!verdict.prefix || rtnl_route_get_type(&route) != RTN_UNICAST || verdict.key.tos != 0)
        return verdict;
    const auto gateway = single_gateway(route);
    if (!gateway)
        return verdict;
    verdict.kind = RouteVerdict::Kind::kMirrored;
    verdict.gateway = *gateway;
    return verdict;
}

NeighbourVerdict classify_neighbour(rtnl_neigh& neigh) {
    NeighbourVerdict verdict;
    const auto ip = ipv4_of(rtnl_neigh_get_dst(&neigh));   // nullopt for other families
    if (!ip)
        return verdict;
    verdict.neighbour.ip = *ip;
    verdict.kind = NeighbourVerdict::Kind::kDown;
    const int state = rtnl_neigh_get_state(&neigh);   // -1 when absent
    const auto mac = unicast_mac(rtnl_neigh_get_lladdr(&neigh));
    if (state < 0 || (state & kUsableStates) == 0 || !mac)
        return verdict;
    verdict.neighbour.mac = *mac;
    verdict.kind = NeighbourVerdict::Kind::kUp;
    return verdict;
}

}  // namespace podfwd::control::kernel_detail
