#include "lpm/writer.h"

#include <algorithm>
#include <string>

#include "lpm/writer_impl.h"

namespace podfwd::lpm {

// ---- next hops ----

Result<std::uint32_t> TableWriter::Impl::alloc_record() {
    auto record = record_guard_.alloc(1);
    for (int attempt = 0; attempt < 2 && !record && make_room(); ++attempt)
        record = record_guard_.alloc(1);
    if (!record)
        return Error{Errc::kCapacity, "next-hop records are exhausted: " + laggard_text()};
    return *record;
}

Result<NextHopId> TableWriter::Impl::nexthop_add(const NextHop& nh) {
    const auto ids_exhausted = [this] { return free_ids_.empty() && next_id_ > header_.capacity.max_nexthops; };
    // Deleted ids come back after a grace period: wait for it before failing.
    if (ids_exhausted() && nexthop_count_ < header_.capacity.max_nexthops)
        make_room();
    if (ids_exhausted())
        return Error{Errc::kCapacity, "next-hop table is full (" +
                                          std::to_string(header_.capacity.max_nexthops) + " next hops)" +
                                          (nexthop_count_ < header_.capacity.max_nexthops ? "; " + laggard_text() : "")};
    auto record = alloc_record();
    if (!record)
        return std::move(record).error();
    NextHopId id;
    if (!free_ids_.empty()) {
        id = free_ids_.back();
        free_ids_.pop_back();
    } else {
        id = next_id_++;
        header_.nh_ids_high.store(id, std::memory_order_relaxed);   // before a reader can learn it
    }
    nh_records_[*record] = nh;
    nh_map_[id].store(*record, std::memory_order_release);
    nh_by_hash_.emplace(nexthop_hash(nh), id);
    ++nexthop_count_;
    publish_stats();
    bump_nexthop_generation();
    return id;
}

Result<NextHopId> TableWriter::Impl::nexthop_ensure(const NextHop& nh) {
    auto [first, last] = nh_by_hash_.equal_range(nexthop_hash(nh));
    for (auto it = first; it != last; ++it)
        if (nh_records_[nh_map_[it->second].load(std::memory_order_relaxed)] == nh)
            return it->second;
    return nexthop_add(nh);
}

void TableWriter::Impl::forget_hash(NextHopId id, const NextHop& nh) {
    auto [first, last] = nh_by_hash_.equal_range(nexthop_hash(nh));
    for (auto it = first; it != last; ++it) {
        if (it->second == id) {
            nh_by_hash_.erase(it);
            return;
        }
    }
}

Status TableWriter::Impl::nexthop_update(NextHopId id, const NextHop& nh) {
    if (!nexthop_exists(id))
        return Error{Errc::kNotFound, "next hop " + std::to_string(id) + " does not exist"};
    const std::uint32_t old = nh_map_[id].load(std::memory_order_relaxed);
    if (nh_records_[old] == nh)
        return ok();
    auto record = alloc_record();
    if (!record)
        return std::move(record).error();
    // Records are immutable once published: write a new one, switch the id.
    nh_records_[*record] = nh;
    forget_hash(id, nh_records_[old]);
    nh_map_[id].store(*record, std::memory_order_release);
    nh_by_hash_.emplace(nexthop_hash(nh), id);
    reclaimer_.retire({PoolKind::kNextHopRecords, old, 1});
    advance_and_reclaim();
    bump_nexthop_generation();
    return ok();
}

Status TableWriter::Impl::nexthop_del(NextHopId id) {
    if (!nexthop_exists(id))
        return Error{Errc::kNotFound, "next hop " + std::to_string(id) + " does not exist"};
    if (refcount_[id] != 0)
        return Error{Errc::kInUse, "next hop " + std::to_string(id) + " is used by " +
                                       std::to_string(refcount_[id]) + " route(s)"};
    // Staged deletions of its routes must be published before it goes.
    if (trie_.dirty())
        if (auto s = commit(); !s)
            return s;
    const std::uint32_t old = nh_map_[id].load(std::memory_order_relaxed);
    forget_hash(id, nh_records_[old]);
    nh_map_[id].store(0, std::memory_order_release);
    // The id too waits for a grace period: a reader holding it from a lookup
    // must not see it name another next hop.
    reclaimer_.retire({PoolKind::kNextHopRecords, old, 1});
    reclaimer_.retire({PoolKind::kNextHopIds, id, 1});
    --nexthop_count_;
    advance_and_reclaim();
    bump_nexthop_generation();
    return ok();
}

std::optional<NextHop> TableWriter::Impl::nexthop(NextHopId id) const {
    if (!nexthop_exists(id))
        return std::nullopt;
    return nh_records_[nh_map_[id].load(std::memory_order_relaxed)];
}

std::vector<std::pair<NextHopId, NextHop>> TableWriter::Impl::nexthops() const {
    std::vector<std::pair<NextHopId, NextHop>> out;
    for (NextHopId id = 1; id < next_id_; ++id)
        if (auto nh = nexthop(id))
            out.emplace_back(id, *nh);
    return out;
}

// ---- routes ----

Status TableWriter::Impl::route_add(const Prefix4& prefix, NextHopId nh) {
    if (prefix.len > 32 || (prefix.addr & ~prefix_mask(prefix.len)) != 0)
        return Error{Errc::kInvalidArgument, "invalid prefix " + prefix.str()};
    if (!nexthop_exists(nh))
        return Error{Errc::kNotFound, "next hop " + std::to_string(nh) + " does not exist (route " + prefix.str() + ")"};
    const std::uint64_t key = route_key(prefix);
    auto it = routes_.find(key);
    if (it != routes_.end() && it->second.nexthop == nh)
        return ok();
    if (it == routes_.end() && routes_.size() >= header_.capacity.max_routes)
        return Error{Errc::kCapacity, "route table is full (" + std::to_string(header_.capacity.max_routes) +
                                          " routes); " + prefix.str() + " not added"};
    // The trie first: it is the only step that can still fail.
    if (auto s = with_reclaim([&] { return trie_.insert(prefix.addr, prefix.len, nh); }); !s)
        return Error{s.error().code, s.error().message + "; " + prefix.str() + " not added"};
    if (it != routes_.end()) {
        --refcount_[it->second.nexthop];
        it->second.nexthop = nh;
        route_records_[it->second.record].store(route_record::pack(prefix.addr, prefix.len, nh),
                                                std::memory_order_relaxed);
    } else {
        std::uint32_t record;
        if (!free_route_records_.empty()) {
            record = free_route_records_.back();
            free_route_records_.pop_back();
        } else {
            record = route_records_tail_++;
        }
        route_records_[record].store(route_record::pack(prefix.addr, prefix.len, nh), std::memory_order_relaxed);
        routes_.emplace(key, RouteEntry{nh, record});
        ++routes_per_length_[prefix.len];
    }
    ++refcount_[nh];
    return ok();
}

Status TableWriter::Impl::route_del(const Prefix4& prefix) {
    auto it = routes_.find(route_key(prefix));
    if (it == routes_.end())
        return Error{Errc::kNotFound, "no route " + prefix.str()};

    // The covering prefix that takes over; inside a subtree only lengths
    // above /18 count, the directory fallback covers the rest.
    const unsigned floor = prefix.len > kDirBits ? kDirBits + 1 : 0;
    NextHopId replacement = kNoRoute;
    unsigned replacement_len = 0;
    for (int len = static_cast<int>(prefix.len) - 1; len >= static_cast<int>(floor); --len) {
        if (routes_per_length_[static_cast<unsigned>(len)] == 0)
            continue;   // real tables use a handful of lengths: skip the probes
        const Prefix4 cover{prefix.addr & prefix_mask(static_cast<unsigned>(len)), static_cast<std::uint8_t>(len)};
        if (auto found = routes_.find(route_key(cover)); found != routes_.end()) {
            replacement = found->second.nexthop;
            replacement_len = static_cast<unsigned>(len);
            break;
        }
    }
    // The trie first: it is the only step that can fail.
    if (auto s = with_reclaim([&] { return trie_.remove(prefix.addr, prefix.len, replacement, replacement_len); }); !s)
        return Error{s.error().code, s.error().message + "; " + prefix.str() + " not deleted"};
    const RouteEntry entry = it->second;
    routes_.erase(it);
    --routes_per_length_[prefix.len];
    route_records_[entry.record].store(0, std::memory_order_relaxed);
    free_route_records_.push_back(entry.record);
    --refcount_[entry.nexthop];
    return ok();
}

Status TableWriter::Impl::commit() {
    std::vector<Retired> retired;
    Status status = trie_.publish(retired);
    reclaimer_.retire(retired);
    for (int attempt = 0; attempt < 2 && !status && make_room(); ++attempt) {
        retired.clear();
        status = trie_.publish(retired);
        reclaimer_.retire(retired);
    }
    advance_and_reclaim();
    header_.generation.fetch_add(1, std::memory_order_release);
    if (!status)
        return Error{Errc::kCapacity, status.error().message + " (staged routes stay staged): " + laggard_text()};
    return ok();
}

Status TableWriter::Impl::reconcile(std::span<const Route> desired) {
    std::unordered_map<std::uint64_t, NextHopId> want;
    want.reserve(desired.size());
    for (const Route& r : desired) {
        if (r.prefix.len > 32 || (r.prefix.addr & ~prefix_mask(r.prefix.len)) != 0)
            return Error{Errc::kInvalidArgument, "invalid prefix " + r.prefix.str() + " in desired set"};
        if (!want.emplace(route_key(r.prefix), r.nexthop).second)
            return Error{Errc::kInvalidArgument, "prefix " + r.prefix.str() + " appears twice in desired set"};
        if (!nexthop_exists(r.nexthop))
            return Error{Errc::kNotFound, "next hop " + std::to_string(r.nexthop) + " of " + r.prefix.str() +
                                              " does not exist"};
    }
    std::vector<Prefix4> stale;
    for (const auto& [key, entry] : routes_)
        if (!want.contains(key))
            stale.push_back(Prefix4{static_cast<Ipv4Addr>(key >> 6), static_cast<std::uint8_t>(key & 63)});
    // Adds first: a prefix whose more specifics go away never falls through
    // to a shorter route it did not have before.
    for (const Route& r : desired)
        if (auto s = route_add(r.prefix, r.nexthop); !s)
            return s;
    for (const Prefix4& p : stale)
        if (auto s = route_del(p); !s)
            return s;
    return commit();
}

std::optional<NextHopId> TableWriter::Impl::route_get(const Prefix4& prefix) const {
    auto it = routes_.find(route_key(prefix));
    if (it == routes_.end())
        return std::nullopt;
    return it->second.nexthop;
}

std::vector<Route> TableWriter::Impl::routes() const {
    std::vector<Route> out;
    out.reserve(routes_.size());
    for (const auto& [key, entry] : routes_)
        out.push_back(Route{Prefix4{static_cast<Ipv4Addr>(key >> 6), static_cast<std::uint8_t>(key & 63)},
                            entry.nexthop});
    std::sort(out.begin(), out.end(), [](const Route& a, const Route& b) { return a.prefix < b.prefix; });
    return out;
}

// ---- TableWriter ----

Result<TableWriter> TableWriter::open(const std::string& name, const Options& options) {
    bool created = false;
    auto mapping = Mapping::open_writer(name, options.capacity, created);
    if (!mapping)
        return std::move(mapping).error();
    auto impl = std::make_unique<Impl>(std::move(*mapping), options);
    if (created)
        impl->start_fresh();
    else if (auto s = impl->recover(); !s)
        return std::move(s).error();
    return TableWriter(std::move(impl));
}

Status TableWriter::unlink(const std::string& name) { return Mapping::unlink(name); }

TableWriter::TableWriter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TableWriter::TableWriter(TableWriter&&) noexcept = default;
TableWriter& TableWriter::operator=(TableWriter&&) noexcept = default;
TableWriter::~TableWriter() = default;

bool TableWriter::recovered() const noexcept { return impl_->recovered; }
Result<NextHopId> TableWriter::nexthop_add(const NextHop& nh) { return impl_->nexthop_add(nh); }
Result<NextHopId> TableWriter::nexthop_ensure(const NextHop& nh) { return impl_->nexthop_ensure(nh); }
Status TableWriter::nexthop_update(NextHopId id, const NextHop& nh) { return impl_->nexthop_update(id, nh); }
Status TableWriter::nexthop_del(NextHopId id) { return impl_->nexthop_del(id); }
std::optional<NextHop> TableWriter::nexthop(NextHopId id) const { return impl_->nexthop(id); }
std::vector<std::pair<NextHopId, NextHop>> TableWriter::nexthops() const { return impl_->nexthops(); }
std::uint32_t TableWriter::nexthop_refcount(NextHopId id) const { return impl_->refcount(id); }
Status TableWriter::route_add(const Prefix4& prefix, NextHopId nh) { return impl_->route_add(prefix, nh); }
Status TableWriter::route_del(const Prefix4& prefix) { return impl_->route_del(prefix); }
Status TableWriter::commit() { return impl_->commit(); }
Status TableWriter::reconcile(std::span<const Route> desired) { return impl_->reconcile(desired); }
std::optional<NextHopId> TableWriter::route_get(const Prefix4& prefix) const { return impl_->route_get(prefix); }
std::vector<Route> TableWriter::routes() const { return impl_->routes(); }
std::size_t TableWriter::route_count() const noexcept { return impl_->route_count(); }
NextHopId TableWriter::lookup(Ipv4Addr addr) const noexcept { return impl_->lookup(addr); }
TableStats TableWriter::stats() const noexcept { return impl_->stats(); }
std::size_t TableWriter::resident_bytes() const { return impl_->resident_bytes(); }
std::size_t TableWriter::private_bytes() const noexcept { return impl_->private_bytes(); }

}  // namespace podfwd::lpm
