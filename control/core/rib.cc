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
    const auto [it, inserted] = entries_.try_emplace(spec.prefix);
    if (inserted) {
        try {
            touched(spec.prefix);
        } catch (...) {   // out of memory: the order stays in step
            entries_.erase(it);
            throw;
        }
    }
    Entry& entry = it->second;
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
    if (entry.empty()) {
        entries_.erase(it);
        touched(prefix);
    }
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

void Rib::touched(const Prefix4& prefix) {
    touched_.push_back(prefix);
    if (touched_.size() > sorted_.size() + 4096)
        (void)ordered();
}

const std::vector<Prefix4>& Rib::ordered() const {
    if (touched_.empty())
        return sorted_;
    std::sort(touched_.begin(), touched_.end());
    touched_.erase(std::unique(touched_.begin(), touched_.end()), touched_.end());
    // A touched prefix is in the order when it is in entries_ now, whatever
    // happened to it since the last merge.
    std::vector<Prefix4> merged;
    merged.reserve(entries_.size());
    auto a = sorted_.begin();
    for (const Prefix4& p : touched_) {
        for (; a != sorted_.end() && *a < p; ++a)
            merged.push_back(*a);
        if (a != sorted_.end() && *a == p)
            ++a;
        if (entries_.contains(p))
            merged.push_back(p);
    }
    merged.insert(merged.end(), a, sorted_.end());
    sorted_.swap(merged);
    touched_.clear();
    return sorted_;
}

void Rib::for_each(const Visit& visit) const {
    for (const Prefix4& prefix : ordered()) {
        const Entry& entry = entries_.find(prefix)->second;
        for (std::size_t i = 0; i < entry.size(); ++i)
            visit(entry[i], i == 0);
    }
}

std::optional<Prefix4> Rib::for_each_page(const std::optional<Prefix4>& after, std::size_t limit,
                                          std::optional<Source> only, const Visit& visit) const {
    const auto wanted = [&](const RibRoute& r) { return !only || r.spec.source == *only; };
    std::size_t taken = 0;
    std::optional<Prefix4> last;
    const std::vector<Prefix4>& order = ordered();
    for (auto it = after ? std::upper_bound(order.begin(), order.end(), *after) : order.begin(); it != order.end();
         ++it) {
        const Entry& entry = entries_.find(*it)->second;
        const auto count = static_cast<std::size_t>(std::count_if(entry.begin(), entry.end(), wanted));
        if (count == 0)
            continue;
        if (taken > 0 && taken + count > limit)
            return last;   // routes follow: this prefix opens the next page
        for (std::size_t i = 0; i < entry.size(); ++i)
            if (wanted(entry[i]))
                visit(entry[i], i == 0);
        taken += count;
        last = *it;
    }
    return std::nullopt;
}

void Rib::for_each_best(const std::function<void(const RibRoute&)>& visit) const {
    for (const auto& [prefix, entry] : entries_)
        if (!entry.empty())
            visit(entry.front());
}

}  // namespace podfwd::control
