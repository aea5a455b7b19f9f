#include "lpm/writer.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <thread>
#include <unordered_map>

#include "lpm/mapping.h"
#include "lpm/pools.h"
#include "lpm/shadow_trie.h"

namespace podfwd::lpm {
namespace {

constexpr std::uint64_t route_key(const Prefix4& p) { return std::uint64_t{p.addr} << 6 | p.len; }

std::uint64_t nexthop_hash(const NextHop& nh) {
    std::uint64_t words[4];
    std::memcpy(words, &nh, sizeof words);
    std::uint64_t h = 0x9e3779b97f4a7c15ULL;
    for (std::uint64_t w : words)
        h = (h ^ w) * 0xff51afd7ed558ccdULL;
    return h ^ (h >> 31);
}

}  // namespace

class TableWriter::Impl {
public:
    Impl(std::shared_ptr<Mapping> mapping, const Options& options)
        : mapping_(std::move(mapping)), header_(mapping_->header()), options_(options),
          arrays_{mapping_->region<std::atomic<std::uint64_t>>(header_.dir_offset),
                  mapping_->region<NextHopId>(header_.leaves_offset), mapping_->region<NextHopId>(header_.groups_offset)},
          nh_map_(mapping_->region<std::atomic<std::uint32_t>>(header_.nh_map_offset)),
          nh_records_(mapping_->region<NextHop>(header_.nh_records_offset)),
          route_records_(mapping_->region<std::atomic<std::uint64_t>>(header_.routes_offset)),
          leaf_pool_(kReservedLeaves, header_.leaf_capacity), group_pool_(1, header_.group_capacity),
          record_pool_(1, header_.nh_record_capacity), trie_(arrays_, leaf_pool_, group_pool_),
          reclaimer_(header_, mapping_->reader_slots()), refcount_(header_.capacity.max_nexthops + 1, 0) {}

    Status recover();

    Result<NextHopId> nexthop_add(const NextHop& nh);
    Result<NextHopId> nexthop_ensure(const NextHop& nh);
    Status nexthop_update(NextHopId id, const NextHop& nh);
    Status nexthop_del(NextHopId id);
    std::optional<NextHop> nexthop(NextHopId id) const;
    std::vector<std::pair<NextHopId, NextHop>> nexthops() const;
    std::uint32_t refcount(NextHopId id) const { return id < refcount_.size() ? refcount_[id] : 0; }

    Status route_add(const Prefix4& prefix, NextHopId nh);
    Status route_del(const Prefix4& prefix);
    Status commit();
    Status reconcile(std::span<const Route> desired);
    std::optional<NextHopId> route_get(const Prefix4& prefix) const;
    std::vector<Route> routes() const;
    std::size_t route_count() const noexcept { return routes_.size(); }

    NextHopId lookup(Ipv4Addr addr) const noexcept {
        return TrieView{arrays_.dir, arrays_.leaves, arrays_.groups}.lookup(addr);
    }
    TableStats stats() const noexcept;
    std::size_t resident_bytes() const;
    std::size_t private_bytes() const noexcept;
    bool recovered = false;

private:
    struct RouteEntry {
        NextHopId nexthop;
        std::uint32_t record;   // index in the segment's route records
    };

    bool nexthop_exists(NextHopId id) const {
        return id != kNoRoute && id <= header_.capacity.max_nexthops &&
               nh_map_[id].load(std::memory_order_relaxed) != 0;
    }
    Result<std::uint32_t> alloc_record();
    void forget_hash(NextHopId id, const NextHop& nh);
    void release(const Retired& r);
    // Bumps the epoch and reuses whatever readers have let go of.
    void advance_and_reclaim();
    // Waits (bounded) for readers to release retired memory; false on timeout.
    bool wait_for_readers();
    // Runs `op` (which changes nothing when it fails); if a pool was
    // exhausted, reclaims what readers have released and runs it once more.
    template <class Op>
    Status with_reclaim(Op&& op) {
        Status s = op();
        if (!s && s.error().code == Errc::kCapacity && wait_for_readers())
            s = op();
        if (!s && s.error().code == Errc::kCapacity)
            return Error{Errc::kCapacity, s.error().message + " (" + laggard_text() + ")"};
        return s;
    }
    std::string laggard_text() const;
    void publish_stats();
    void bump_nexthop_generation() {
        header_.nexthop_generation.fetch_add(1, std::memory_order_release);
        header_.generation.fetch_add(1, std::memory_order_release);
    }

    std::shared_ptr<Mapping> mapping_;
    SegmentHeader& header_;
    Options options_;
    TrieArrays arrays_;
    std::atomic<std::uint32_t>* nh_map_;
    NextHop* nh_records_;
    std::atomic<std::uint64_t>* route_records_;
    ArrayPool leaf_pool_, group_pool_, record_pool_;
    ShadowTrie trie_;
    Reclaimer reclaimer_;
    std::unordered_map<std::uint64_t, RouteEntry> routes_;
    std::array<std::uint32_t, 33> routes_per_length_{};
    std::vector<std::uint32_t> free_route_records_;
    std::uint32_t route_records_tail_ = 0;
    std::vector<std::uint32_t> refcount_;
    std::vector<NextHopId> free_ids_;
    NextHopId next_id_ = 1;
    std::uint32_t nexthop_count_ = 0;
    std::unordered_multimap<std::uint64_t, NextHopId> nh_by_hash_;
    std::uint64_t reclaimed_total_ = 0;
};

// ---- next hops ----

Result<std::uint32_t> TableWriter::Impl::alloc_record() {
    auto record = record_pool_.alloc(1);
    if (!record && wait_for_readers())
        record = record_pool_.alloc(1);
    if (!record)
        return Error{Errc::kCapacity, "next-hop records are exhausted: " + laggard_text()};
    return *record;
}

Result<NextHopId> TableWriter::Impl::nexthop_add(const NextHop& nh) {
    const auto ids_exhausted = [this] { return free_ids_.empty() && next_id_ > header_.capacity.max_nexthops; };
    // Deleted ids come back after a grace period: wait for it before failing.
    if (ids_exhausted() && nexthop_count_ < header_.capacity.max_nexthops)
        wait_for_readers();
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
    if (!status && wait_for_readers()) {
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

// ---- reclamation ----

void TableWriter::Impl::release(const Retired& r) {
    reclaimed_total_ += r.count;
    switch (r.kind) {
    case PoolKind::kGroups: group_pool_.free(r.base, r.count); break;
    case PoolKind::kLeaves: leaf_pool_.free(r.base, r.count); break;
    case PoolKind::kNextHopRecords: record_pool_.free(r.base, r.count); break;
    case PoolKind::kNextHopIds: free_ids_.push_back(r.base); break;
    }
}

void TableWriter::Impl::advance_and_reclaim() {
    reclaimer_.advance();
    reclaimer_.reclaim([this](const Retired& r) { release(r); });
    publish_stats();
}

bool TableWriter::Impl::wait_for_readers() {
    const auto deadline = std::chrono::steady_clock::now() + options_.reclaim_timeout;
    reclaimer_.advance();
    while (true) {
        if (reclaimer_.reclaim([this](const Retired& r) { release(r); }) != 0 || reclaimer_.idle())
            return true;
        if (std::chrono::steady_clock::now() >= deadline)
            return false;
        std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
}

std::string TableWriter::Impl::laggard_text() const {
    if (const std::uint32_t pid = reclaimer_.laggard(); pid != 0)
        return "memory is held by reader pid " + std::to_string(pid) + ", which has not passed a quiescent state";
    return "no retired memory is waiting for readers";
}

void TableWriter::Impl::publish_stats() {
    header_.route_count.store(static_cast<std::uint32_t>(routes_.size()), std::memory_order_relaxed);
    header_.nexthop_count.store(nexthop_count_, std::memory_order_relaxed);
    header_.groups_used.store(group_pool_.used(), std::memory_order_relaxed);
    header_.leaves_used.store(leaf_pool_.used(), std::memory_order_relaxed);
    header_.retired_pending.store(reclaimer_.pending_elements(), std::memory_order_relaxed);
    header_.reclaimed_total.store(reclaimed_total_, std::memory_order_relaxed);
}

// ---- recovery ----

// Rebuilds the writer's private state from a segment a previous writer left,
// without readers ever seeing less than a complete table: the published trie
// stays in place while every slot is compiled anew from the route records and
// switched over one by one; the old arrays are retired behind a grace period.
// Anything unreachable (a dead writer's in-flight garbage) is retired too.
Status TableWriter::Impl::recover() {
    recovered = true;
    const std::uint32_t max_nh = header_.capacity.max_nexthops;

    std::vector<std::uint8_t> record_live(header_.nh_record_capacity, 0);
    for (NextHopId id = 1; id <= max_nh; ++id) {
        const std::uint32_t record = nh_map_[id].load(std::memory_order_relaxed);
        if (record == 0)
            continue;
        if (record >= header_.nh_record_capacity || record_live[record]) {
            nh_map_[id].store(0, std::memory_order_release);   // corrupt: drop the id, keep the rest
            continue;
        }
        record_live[record] = 1;
        nh_by_hash_.emplace(nexthop_hash(nh_records_[record]), id);
        ++nexthop_count_;
        next_id_ = id + 1;
    }
    for (NextHopId id = 1; id < next_id_; ++id)
        if (nh_map_[id].load(std::memory_order_relaxed) == 0)
            reclaimer_.retire({PoolKind::kNextHopIds, id, 1});
    record_pool_.adopt_tail(header_.nh_record_capacity);
    for (std::uint32_t r = 1; r < header_.nh_record_capacity; ++r)
        if (!record_live[r])
            reclaimer_.retire({PoolKind::kNextHopRecords, r, 1});

    // Trie arrays first, before the shadow allocates anything: what the
    // published directory reaches is live until its slot is republished;
    // every gap between live arrays is retired.
    std::vector<std::vector<Retired>> per_slot(kDirEntries);
    std::vector<Retired> group_live, leaf_live;
    auto status = ShadowTrie::trace(arrays_, header_.leaf_capacity, header_.group_capacity,
                                    [&](std::uint32_t slot, const Retired& r) {
                                        per_slot[slot].push_back(r);
                                        (r.kind == PoolKind::kGroups ? group_live : leaf_live).push_back(r);
                                    });
    if (!status)
        return status;
    auto retire_gaps = [this](std::vector<Retired>& live, ArrayPool& pool, PoolKind kind) {
        std::sort(live.begin(), live.end(), [](const Retired& a, const Retired& b) { return a.base < b.base; });
        std::uint32_t cursor = kind == PoolKind::kLeaves ? kReservedLeaves : 1;
        for (const Retired& r : live) {
            if (r.base > cursor)
                reclaimer_.retire({kind, cursor, r.base - cursor});
            cursor = std::max(cursor, r.base + r.count);
        }
        pool.adopt_tail(cursor);
    };
    retire_gaps(group_live, group_pool_, PoolKind::kGroups);
    retire_gaps(leaf_live, leaf_pool_, PoolKind::kLeaves);
    // Routes: valid records whose next hop exists; anything else is cleared.
    for (std::uint32_t i = 0; i < header_.capacity.max_routes; ++i) {
        const std::uint64_t rec = route_records_[i].load(std::memory_order_relaxed);
        if (!route_record::valid(rec)) {
            if (rec != 0)
                route_records_[i].store(0, std::memory_order_relaxed);
            continue;
        }
        const Prefix4 prefix{route_record::addr(rec), static_cast<std::uint8_t>(route_record::len(rec))};
        const NextHopId nh = route_record::nexthop(rec);
        const bool sane = prefix.len <= 32 && (prefix.addr & ~prefix_mask(prefix.len)) == 0 && nexthop_exists(nh);
        if (!sane || !routes_.emplace(route_key(prefix), RouteEntry{nh, i}).second) {
            route_records_[i].store(0, std::memory_order_relaxed);
            continue;
        }
        ++routes_per_length_[prefix.len];
        if (auto s = trie_.insert(prefix.addr, prefix.len, nh); !s)
            return s;   // the pools hold two full tables (mapping.cc), so only a corrupt segment gets here
        ++refcount_[nh];
        route_records_tail_ = i + 1;
    }
    for (std::uint32_t i = 0; i < route_records_tail_; ++i)
        if (!route_record::valid(route_records_[i].load(std::memory_order_relaxed)))
            free_route_records_.push_back(i);

    for (std::uint32_t slot = 0; slot < kDirEntries; ++slot) {
        if (!per_slot[slot].empty() || arrays_.dir[slot].load(std::memory_order_relaxed) != 0)
            trie_.republish(slot, std::move(per_slot[slot]));
    }
    return commit();
}

TableStats TableWriter::Impl::stats() const noexcept { return mapping_->stats(); }

std::size_t TableWriter::Impl::resident_bytes() const {
    const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    std::vector<unsigned char> pages((mapping_->size() + page - 1) / page);
    if (::mincore(mapping_->base(), mapping_->size(), pages.data()) != 0)
        return 0;
    return static_cast<std::size_t>(std::count_if(pages.begin(), pages.end(), [](unsigned char p) { return p & 1; })) *
           page;
}

std::size_t TableWriter::Impl::private_bytes() const noexcept {
    // unordered_map: a node (key, value, next pointer, cached hash) and a bucket each.
    const std::size_t route_bytes = routes_.size() * (sizeof(std::uint64_t) + sizeof(RouteEntry) + 16) +
                                    routes_.bucket_count() * sizeof(void*);
    return trie_.private_bytes() + route_bytes + refcount_.capacity() * 4 + free_route_records_.capacity() * 4 +
           nh_by_hash_.size() * 32;
}

// ---- TableWriter ----

Result<TableWriter> TableWriter::open(const std::string& name, const Options& options) {
    bool created = false;
    auto mapping = Mapping::open_writer(name, options.capacity, created);
    if (!mapping)
        return std::move(mapping).error();
    auto impl = std::make_unique<Impl>(std::move(*mapping), options);
    if (!created)
        if (auto s = impl->recover(); !s)
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
