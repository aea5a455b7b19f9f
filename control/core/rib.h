// The RIB: every route of every source, and per prefix the best one.
//
// A prefix holds at most one route per source (a source restating a prefix
// replaces its route). The best route is the one of the lowest preference,
// ties broken by source order; only the best one's forwarding reaches the
// table. Every mutation reports whether the best forwarding of the prefix
// changed, so the caller pushes changes and nothing else.
#pragma once

#include <cstddef>
#include <functional>
#include <span>
#include <unordered_map>
#include <vector>

#include "control/core/policy.h"
#include "control/core/route.h"

namespace podfwd::control {

struct RibRoute {
    RouteSpec spec;
    Forwarding forwarding;
    std::uint8_t preference = 0;
};

struct ResolvedRoute {
    RouteSpec spec;
    Forwarding forwarding;
};

struct PrefixHash {
    std::size_t operator()(const Prefix4& p) const noexcept {
        return std::hash<std::uint64_t>{}(std::uint64_t{p.addr} << 8 | p.len);
    }
};

class Rib {
public:
    explicit Rib(const Preferences& preferences = default_preferences()) : preferences_(preferences) {}

    // Adds or replaces route.spec.source's route for the prefix. True when
    // the prefix's best forwarding changed (or it had none).
    bool set(const RouteSpec& spec, const Forwarding& forwarding);
    // Removes `source`'s route for the prefix; false (and nothing happens)
    // when there is none. `best_changed` tells whether the table must change.
    bool erase(const Prefix4& prefix, Source source, bool& best_changed);
    // Makes `source`'s routes exactly `routes` (one per prefix), touching
    // only what differs. Returns the prefixes whose best forwarding changed.
    std::vector<Prefix4> replace_source(Source source, std::span<const ResolvedRoute> routes);

    const RibRoute* best(const Prefix4& prefix) const;
    const RibRoute* find(const Prefix4& prefix, Source source) const;
    // The longest prefix holding a route that contains addr.
    std::optional<Prefix4> longest_match(Ipv4Addr addr) const;

    // Every route, by prefix then preference (best first).
    void for_each(const std::function<void(const RibRoute&, bool best)>& visit) const;
    void for_each_best(const std::function<void(const RibRoute&)>& visit) const;

    std::size_t prefixes() const noexcept { return entries_.size(); }
    std::size_t routes_of(Source s) const noexcept { return routes_[static_cast<unsigned>(s)]; }
    std::size_t best_of(Source s) const noexcept { return best_[static_cast<unsigned>(s)]; }
    std::uint8_t preference(Source s) const noexcept { return preferences_[static_cast<unsigned>(s)]; }

private:
    using Entry = std::vector<RibRoute>;   // sorted: best first
    void account(const Entry& entry, int sign) noexcept;

    Preferences preferences_;
    std::unordered_map<Prefix4, Entry, PrefixHash> entries_;
    std::array<std::size_t, kSourceCount> routes_{};
    std::array<std::size_t, kSourceCount> best_{};
};

}  // namespace podfwd::control
