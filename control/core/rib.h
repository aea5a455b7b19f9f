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
#include <optional>
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

    using Visit = std::function<void(const RibRoute&, bool best)>;
    // Every route, by prefix then preference (best first).
    void for_each(const Visit& visit) const;
    // One page of for_each: the routes (of `only`, when given) of the
    // prefixes strictly after `after` (from the first without it; `after`
    // need not be in the RIB), whole prefixes at a time: at most `limit`
    // routes, more only when the page's first prefix alone has more (a
    // prefix is never split across pages). Returns the page's last prefix
    // when more such routes follow, the `after` of the next page; nullopt
    // on the last page. O(log n) to start, O(1) per prefix visited, after
    // the order is brought up to date (see sorted_): no sort of everything.
    std::optional<Prefix4> for_each_page(const std::optional<Prefix4>& after, std::size_t limit,
                                         std::optional<Source> only, const Visit& visit) const;
    void for_each_best(const std::function<void(const RibRoute&)>& visit) const;

    std::size_t prefixes() const noexcept { return entries_.size(); }
    std::size_t routes_of(Source s) const noexcept { return routes_[static_cast<unsigned>(s)]; }
    std::size_t best_of(Source s) const noexcept { return best_[static_cast<unsigned>(s)]; }
    std::uint8_t preference(Source s) const noexcept { return preferences_[static_cast<unsigned>(s)]; }

private:
    using Entry = std::vector<RibRoute>;   // sorted: best first
    void account(const Entry& entry, int sign) noexcept;
    // A prefix entered or left entries_.
    void touched(const Prefix4& prefix);
    // sorted_, with the prefixes touched since merged in.
    const std::vector<Prefix4>& ordered() const;

    Preferences preferences_;
    std::unordered_map<Prefix4, Entry, PrefixHash> entries_;
    // entries_'s prefixes in order, for for_each and its pages, kept cheaply:
    // sorted_ is the order as of the last merge, touched_ the prefixes added
    // or removed since (appended, in any order, repeats allowed). The first
    // ordered read after changes merges them: O(n + k log k) for k changes,
    // a linear pass and no sort of all n; a mutation merges once touched_
    // outgrows sorted_, which bounds its memory. 8 bytes a prefix, against
    // 48 for a node of a std::set (and a microsecond an insert at 1M).
    // Mutable: reads merge, so a Rib is not for concurrent readers either.
    mutable std::vector<Prefix4> sorted_;
    mutable std::vector<Prefix4> touched_;
    std::array<std::size_t, kSourceCount> routes_{};
    std::array<std::size_t, kSourceCount> best_{};
};

}  // namespace podfwd::control
