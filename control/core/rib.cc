#include "control/core/rib.h"

#include <algorithm>
#include <unordered_set>

namespace podfwd::control {

namespace {

bool ranks_before(const RibRoute& a, const RibRoute& b) noexcept {
    if (a.preference != b.preference)
        return a.preference < b.preference;
    return a.spec.source < b.spec.source;
}

const Forwarding* best_forwarding(const std::vector<RibRoute>& entry) noexcept {
    return entry.empty() ? nullptr : &entry.front().forwarding;
}

bool same(const Forwarding* a, const Forwarding* b) noexcept {
    return a == nullptr || b == nullptr ? a == b : *a == *b;
}

}  // namespace

// Keeps the per-source counters in step with an entry entering (+1) or
// leaving (-1) the RIB.
void Rib::account(const Entry& entry, int sign) noexcept {
    for (const RibRoute& r : entry)
        routes_[static_cast<unsigned>(r.spec.source)] += static_cast<std::size_t>(sign);
    if (!entry.empty())
        best_[static_cast<unsigned>(entry.front().spec.source)] += static_cast<std::size_t>(sign);
}

bool Rib::set(const RouteSpec& spec, const Forwarding& forwarding) {
    Entry& entry = entries_[spec.prefix];
    const Forwarding before = entry.empty() ? Forwarding{} : entry.front().forwarding;
    const bool had_best = !entry.empty();
    account(entry, -1);
    std::erase_if(entry, [&](const RibRoute& r) { return r.spec.source == spec.source; });
    RibRoute route{spec, forwarding, preference(spec.source)};
    entry.insert(std::upper_bound(entry.begin(), entry.end(), route, ranks_before), std::move(route));
    account(entry, +1);
    return !had_best || !(entry.front().forwarding == before);
}

bool Rib::erase(const Prefix4& prefix, Source source, bool& best_changed) {
    best_changed = false;
    auto it = entries_.find(prefix);
    if (it == entries_.end())
        return false;
    Entry& entry = it->second;
    auto route = std::find_if(entry.begin(), entry.end(), [&](const RibRoute& r) { return r.spec.source == source; });
    if (route == entry.end())
        return false;
    const Forwarding before = entry.front().forwarding;
    account(entry, -1);
    entry.erase(route);
    account(entry, +1);
    best_changed = !same(best_forwarding(entry), &before);
    if (entry.empty())
        entries_.erase(it);
    return true;
}

std::vector<Prefix4> Rib::replace_source(Source source, std::span<const ResolvedRoute> routes) {
    std::vector<Prefix4> changed;
    std::unordered_set<Prefix4, PrefixHash> wanted;
    wanted.reserve(routes.size());
    for (const ResolvedRoute& r : routes)
        wanted.insert(r.spec.prefix);

    std::vector<Prefix4> gone;
    for (const auto& [prefix, entry] : entries_)
        if (!wanted.contains(prefix) &&
            std::any_of(entry.begin(), entry.end(), [&](const RibRoute& r) { return r.spec.source == source; }))
            gone.push_back(prefix);
    for (const Prefix4& prefix : gone) {
        bool best_changed = false;
        erase(prefix, source, best_changed);
        if (best_changed)
            changed.push_back(prefix);
    }
    for (const ResolvedRoute& r : routes) {
        const RibRoute* current = find(r.spec.prefix, source);
        if (current != nullptr && current->spec == r.spec && current->forwarding == r.forwarding)
            continue;   // unchanged: not touched
        RouteSpec spec = r.spec;
        spec.source = source;
        if (set(spec, r.forwarding))
            changed.push_back(r.spec.prefix);
    }
    return changed;
}

const RibRoute* Rib::best(const Prefix4& prefix) const {
    auto it = entries_.find(prefix);
    return it == entries_.end() || it->second.empty() ? nullptr : &it->second.front();
}

const RibRoute* Rib::find(const Prefix4& prefix, Source source) const {
    auto it = entries_.find(prefix);
    if (it == entries_.end())
        return nullptr;
    for (const RibRoute& r : it->second)
        if (r.spec.source == source)
            return &r;
    return nullptr;
}

std::optional<Prefix4> Rib::longest_match(Ipv4Addr addr) const {
    for (int len = 32; len >= 0; --len) {
        const Prefix4 p{addr & prefix_mask(static_cast<unsigned>(len)), static_cast<std::uint8_t>(len)};
        if (entries_.contains(p))
            return p;
    }
    return std::nullopt;
}

void Rib::for_each(const std::function<void(const RibRoute&, bool best)>& visit) const {
    std::vector<const std::pair<const Prefix4, Entry>*> sorted;
    sorted.reserve(entries_.size());
    for (const auto& kv : entries_)
        sorted.push_back(&kv);
    std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->first < b->first; });
    for (const auto* kv : sorted)
        for (std::size_t i = 0; i < kv->second.size(); ++i)
            visit(kv->second[i], i == 0);
}

void Rib::for_each_best(const std::function<void(const RibRoute&)>& visit) const {
    for (const auto& [prefix, entry] : entries_)
        if (!entry.empty())
            visit(entry.front());
}

}  // namespace podfwd::control
