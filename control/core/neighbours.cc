#include "control/core/neighbours.h"

#include <algorithm>
#include <set>

namespace podfwd::control {

namespace {
// A person's word first, then what the dataplane heard on the wire (ARP
// replies to it, minutes old at most), then the kernel's cache (which,
// with the NIC in DPDK's hands, only hears what the exception port shows it).
constexpr Source kPrecedence[] = {Source::kCli,  Source::kStatic, Source::kArp,       Source::kKernel, Source::kBgp,
                                  Source::kEtcd, Source::kLocal,  Source::kConnected, Source::kGateway};
static_assert(std::size(kPrecedence) == kSourceCount);
}  // namespace

std::optional<Neighbour> NeighbourTable::effective(Ipv4Addr ip, const PerSource& entry) {
    for (Source s : kPrecedence)
        if (const auto& mac = entry[static_cast<unsigned>(s)])
            return Neighbour{ip, *mac, s};
    return std::nullopt;
}

bool NeighbourTable::set(const Neighbour& n) {
    PerSource& entry = entries_[n.ip];
    const auto before = mac(n.ip);
    entry[static_cast<unsigned>(n.source)] = n.mac;
    return mac(n.ip) != before;
}

bool NeighbourTable::erase(Ipv4Addr ip, Source source) {
    auto it = entries_.find(ip);
    if (it == entries_.end() || !it->second[static_cast<unsigned>(source)])
        return false;
    const auto before = mac(ip);
    it->second[static_cast<unsigned>(source)].reset();
    if (std::none_of(it->second.begin(), it->second.end(), [](const auto& m) { return m.has_value(); }))
        entries_.erase(it);
    return mac(ip) != before;
}

std::vector<Ipv4Addr> NeighbourTable::replace_source(Source source, std::span<const Neighbour> neighbours) {
    std::set<Ipv4Addr> changed;
    std::set<Ipv4Addr> wanted;
    for (const Neighbour& n : neighbours)
        wanted.insert(n.ip);
    std::vector<Ipv4Addr> gone;
    for (const auto& [ip, entry] : entries_)
        if (entry[static_cast<unsigned>(source)] && !wanted.contains(ip))
            gone.push_back(ip);
    for (Ipv4Addr ip : gone)
        if (erase(ip, source))
            changed.insert(ip);
    for (Neighbour n : neighbours) {
        n.source = source;
        if (set(n))
            changed.insert(n.ip);
    }
    return {changed.begin(), changed.end()};
}

std::optional<MacAddr> NeighbourTable::mac(Ipv4Addr ip) const {
    auto it = entries_.find(ip);
    if (it == entries_.end())
        return std::nullopt;
    const auto n = effective(ip, it->second);
    return n ? std::optional<MacAddr>(n->mac) : std::nullopt;
}

const MacAddr* NeighbourTable::find(Ipv4Addr ip, Source source) const {
    auto it = entries_.find(ip);
    if (it == entries_.end())
        return nullptr;
    const auto& mac = it->second[static_cast<unsigned>(source)];
    return mac ? &*mac : nullptr;
}

std::vector<Neighbour> NeighbourTable::list() const {
    std::vector<Neighbour> out;
    for (const auto& [ip, entry] : entries_)
        if (auto n = effective(ip, entry))
            out.push_back(*n);
    return out;
}

}  // namespace podfwd::control
