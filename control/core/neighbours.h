// IPv4 neighbours on the uplink: the MACs of next-hop nodes and the
// gateway, from the CLI, the static file, the dataplane's ARP resolver
// (Source::kArp, read from its neighbour segment) and the kernel. Where
// sources disagree the CLI wins, then the static file, then ARP, then the
// kernel.
#pragma once

#include <array>
#include <map>
#include <optional>
#include <span>
#include <vector>

#include "control/core/route.h"

namespace podfwd::control {

class NeighbourTable {
public:
    // True when the effective MAC of ip changed.
    bool set(const Neighbour& n);
    bool erase(Ipv4Addr ip, Source source);
    // Makes `source`'s neighbours exactly `neighbours`; returns the IPs whose
    // effective MAC changed.
    std::vector<Ipv4Addr> replace_source(Source source, std::span<const Neighbour> neighbours);

    std::optional<MacAddr> mac(Ipv4Addr ip) const;
    // The effective entry of every IP, by IP.
    std::vector<Neighbour> list() const;
    const MacAddr* find(Ipv4Addr ip, Source source) const;

private:
    using PerSource = std::array<std::optional<MacAddr>, kSourceCount>;
    static std::optional<Neighbour> effective(Ipv4Addr ip, const PerSource& entry);
    std::map<Ipv4Addr, PerSource> entries_;
};

}  // namespace podfwd::control
