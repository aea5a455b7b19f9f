// What the kernel source has told the daemon so far: the visible route per
// prefix and the usable MAC per neighbour address. Every kernel message is
// applied here and only the difference comes out as an event, so the daemon
// sees one event per real change and not the kernel's internal churn
// (neighbours cycling reachable/stale/delay/probe, a shadowed higher-metric
// route coming and going). No libnl here: unit-testable on its own.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "control/kernel/kernel_source.h"

namespace podfwd::control::kernel_detail {

// The kernel keys IPv4 routes by (table, prefix, tos, priority): one prefix
// can have several. Ordered so that the first key of a prefix is the route
// the source mirrors: lowest metric, then lowest table id (only relevant
// without a table filter; the kernel's real choice between tables depends on
// ip rules, which the source does not model).
struct RouteKey {
    std::uint32_t priority = 0;   // RTA_PRIORITY, the metric
    std::uint32_t table = 0;
    std::uint8_t tos = 0;
    friend auto operator<=>(const RouteKey&, const RouteKey&) = default;
};

class RouteMirror {
public:
    // A qualifying route was added, or replaced in place (NLM_F_REPLACE keeps
    // the key). `ip route append` duplicates of one key collapse into the last.
    std::optional<KernelEvent> upsert(const Prefix4& prefix, const RouteKey& key, Ipv4Addr gateway);
    // A route was deleted or stopped qualifying; nothing when it was not mirrored.
    std::optional<KernelEvent> erase(const Prefix4& prefix, const RouteKey& key);
    // The visible route of every prefix, ordered by prefix.
    std::vector<KernelRoute> routes() const;

private:
    std::optional<Ipv4Addr> visible(const Prefix4& prefix) const;
    std::optional<KernelEvent> changed(const Prefix4& prefix, std::optional<Ipv4Addr> before) const;

    std::map<Prefix4, std::map<RouteKey, Ipv4Addr>> routes_;
};

// Keyed by address only: the same address on two interfaces is one
// neighbour, the last update wins (the daemon resolves next hops on its one
// uplink subnet).
class NeighbourMirror {
public:
    std::optional<KernelEvent> up(const KernelNeighbour& neighbour);
    std::optional<KernelEvent> down(Ipv4Addr ip);
    std::vector<KernelNeighbour> neighbours() const;

private:
    std::map<Ipv4Addr, MacAddr> macs_;
};

}  // namespace podfwd::control::kernel_detail
