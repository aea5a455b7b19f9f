// libnl objects owned by unique_ptr, and the translation of one libnl route
// or neighbour into what the mirror needs. Private to control/kernel/.
#pragma once

#include <netlink/cache.h>
#include <netlink/netlink.h>
#include <netlink/route/neighbour.h>
#include <netlink/route/route.h>
#include <netlink/socket.h>

#include <memory>
#include <optional>
#include <string>

#include "control/kernel/kernel_source.h"
#include "control/kernel/mirror.h"

namespace podfwd::control::kernel_detail {

struct NlSockFree {
    void operator()(nl_sock* sock) const noexcept { nl_socket_free(sock); }
};
struct NlCacheFree {
    void operator()(nl_cache* cache) const noexcept { nl_cache_free(cache); }
};
struct RouteFree {
    void operator()(rtnl_route* route) const noexcept { rtnl_route_put(route); }
};
struct NeighFree {
    void operator()(rtnl_neigh* neigh) const noexcept { rtnl_neigh_put(neigh); }
};
using NlSock = std::unique_ptr<nl_sock, NlSockFree>;
using NlCache = std::unique_ptr<nl_cache, NlCacheFree>;
using RoutePtr = std::unique_ptr<rtnl_route, RouteFree>;
using NeighPtr = std::unique_ptr<rtnl_neigh, NeighFree>;

// "netlink: <what>: <libnl's text>" as a kSystem error; `nl_err` is libnl's
// negative NLE_* code.
Error nl_error(const std::string& what, int nl_err);

// A socket connected to NETLINK_ROUTE.
Result<NlSock> connect_route_socket();

struct RouteVerdict {
    enum class Kind {
        kOtherSelection,   // another family, table or protocol: not counted
        kIgnored,          // chosen table/protocol, but not a single-gateway unicast route
        kMirrored,
    };
    Kind kind = Kind::kOtherSelection;
    // Unset when the destination is not a valid IPv4 prefix (nothing to key by).
    std::optional<Prefix4> prefix;
    RouteKey key;
    Ipv4Addr gateway = 0;
};
RouteVerdict classify_route(rtnl_route& route, const KernelOptions& options);

struct NeighbourVerdict {
    enum class Kind {
        kOther,   // not IPv4
        kUp,      // a usable state with a unicast Ethernet address
        kDown,    // failed, incomplete, none, or no usable address
    };
    Kind kind = Kind::kOther;
    KernelNeighbour neighbour;
};
NeighbourVerdict classify_neighbour(rtnl_neigh& neigh);

}  // namespace podfwd::control::kernel_detail
