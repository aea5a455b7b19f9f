// The kernel FIB as a route source, through rtnetlink (libnl3): IPv4 routes
// of one routing table and/or one protocol (what BIRD or flanneld install),
// and optionally the IPv4 neighbour table as next-hop MACs.
//
// The daemon polls fd() in its event loop and calls drain() when it is
// readable. A full dump comes first (dump()); notifications follow. When the
// kernel drops notifications (ENOBUFS on the socket), drain() answers with a
// fresh full snapshot instead, and the daemon replaces the source's state.
// It does the same when a link goes down, comes up, changes carrier or
// operational state, or is deleted, and when an IPv4 address is added or
// removed: IPv4 then flushes routes without telling (no RTM_DELROUTE), and
// only a new dump shows they are gone.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "common/ipv4.h"
#include "common/mac.h"
#include "common/result.h"

namespace podfwd::control {

struct KernelOptions {
    std::optional<std::uint32_t> table;      // routing table id (RT_TABLE_MAIN is 254); any when unset
    std::optional<std::uint8_t> protocol;    // rtm_protocol (bird is 12); any when unset
    bool neighbours = false;                 // also mirror IPv4 neighbours (NUD reachable/stale/permanent/noarp)
};

// "bird" -> 12, "static" -> 4, "boot" -> 3, "kernel" -> 2, or a number 0..255.
Result<std::uint8_t> parse_route_protocol(std::string_view);
// "main" -> 254, "local" -> 255, "default" -> 253, or a number 1..2^32-1.
Result<std::uint32_t> parse_route_table(std::string_view);

// A unicast IPv4 route through a gateway. Routes without a single IPv4
// gateway (device routes, multipath, blackhole, local/broadcast types) are
// not mirrored: they are counted in `ignored`.
struct KernelRoute {
    Prefix4 prefix;
    Ipv4Addr gateway = 0;
    friend bool operator==(const KernelRoute&, const KernelRoute&) = default;
};

struct KernelNeighbour {
    Ipv4Addr ip = 0;
    MacAddr mac{};
    friend bool operator==(const KernelNeighbour&, const KernelNeighbour&) = default;
};

struct KernelSnapshot {
    std::vector<KernelRoute> routes;
    std::vector<KernelNeighbour> neighbours;   // empty unless options.neighbours
    std::uint64_t ignored = 0;                 // routes of the chosen table/protocol not mirrored
};

struct RouteAdded { KernelRoute route; };          // new, or replaced (same prefix)
struct RouteRemoved { Prefix4 prefix; };
struct NeighbourUp { KernelNeighbour neighbour; };
struct NeighbourDown { Ipv4Addr ip; };            // deleted, or failed/incomplete
// Notifications were lost, or a link/address change may have flushed routes
// silently: here is the whole state.
struct Resynced { KernelSnapshot snapshot; };
using KernelEvent = std::variant<RouteAdded, RouteRemoved, NeighbourUp, NeighbourDown, Resynced>;

class KernelSource {
public:
    // Opens the notification socket (subscribed before the dump, so nothing
    // falls between them). kSystem with the errno text on failure.
    static Result<KernelSource> open(const KernelOptions& options);

    KernelSource(KernelSource&&) noexcept;
    KernelSource& operator=(KernelSource&&) noexcept;
    ~KernelSource();

    const KernelOptions& options() const noexcept;
    // The notification socket, non-blocking: poll it for readability.
    int fd() const noexcept;
    // The full current state of the chosen routes (and neighbours), sorted
    // by prefix (by address); drain() reports changes relative to it.
    Result<KernelSnapshot> dump();
    // Everything pending on fd(), in kernel order, without blocking. Only
    // routes of the chosen table/protocol. A route that moved out of the
    // chosen table or protocol comes as RouteRemoved.
    // One call reads at most a few thousand messages so that a route storm
    // cannot starve the event loop; fd() stays readable while more is
    // pending (poll level-triggered). Only changes come out: repeats of what
    // was already reported are not events. A link or IPv4 address change
    // (see the top of this file) ends the call with one Resynced in place of
    // the events it had read, as an overrun does. After an Error the mirrored
    // state is unknown: call dump() and replace the source's state.
    Result<std::vector<KernelEvent>> drain();
    // Routes seen and not mirrored since open (see KernelRoute).
    std::uint64_t ignored() const noexcept;

    class Impl;

private:
    explicit KernelSource(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace podfwd::control
