// TableWriter: reclamation behind grace periods, stalled readers and the
// pools' reserve, and recovery of a segment a previous writer left.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <string>
#include <thread>

#include "lpm/writer_impl.h"

namespace podfwd::lpm {

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
    note_progress();
    reclaimer_.advance();
    reclaimer_.reclaim([this](const Retired& r) { release(r); });
    publish_stats();
}

bool TableWriter::Impl::wait_for_readers() {
    ++reclaim_waits_;
    const auto start = std::chrono::steady_clock::now();
    const auto deadline = start + options_.reclaim_timeout;
    reclaimer_.advance();
    while (true) {
        if (reclaimer_.reclaim([this](const Retired& r) { release(r); }) != 0 || reclaimer_.idle()) {
            publish_stats();
            return true;
        }
        if (std::chrono::steady_clock::now() >= deadline)
            break;
        std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    ++reclaim_timeouts_;
    stalled_ = find_laggard(start);
    return false;
}

bool TableWriter::Impl::make_room() {
    note_progress();
    reclaimer_.advance();
    const std::size_t reclaimed = reclaimer_.reclaim([this](const Retired& r) { release(r); });
    publish_stats();
    if (reclaimed != 0)
        return true;
    if (reclaimer_.idle())
        return false;   // nothing retired: the pools hold live data only
    // Waiting again for a reader that let a wait time out and has not moved
    // since would stall every operation by the timeout.
    if (!stalled_ && wait_for_readers())
        return true;
    if (leaf_guard_.reserve_open())
        return false;
    open_reserve(true);
    return true;
}

std::optional<TableWriter::Impl::Stall> TableWriter::Impl::find_laggard(
    std::chrono::steady_clock::time_point since) const {
    const ReaderSlotData* slots = mapping_->reader_slots();
    const std::uint64_t epoch = header_.epoch.load(std::memory_order_acquire);
    std::optional<Stall> oldest;
    for (std::uint32_t i = 0; i < header_.capacity.reader_slots; ++i) {
        if (slots[i].state.load(std::memory_order_acquire) != kReaderOnline)
            continue;
        const std::uint64_t seen = slots[i].seen_epoch.load(std::memory_order_acquire);
        if (seen < epoch && (!oldest || seen < oldest->seen_epoch))
            oldest = Stall{i, slots[i].pid.load(std::memory_order_relaxed), seen, since};
    }
    return oldest;
}

bool TableWriter::Impl::stall_is_current() const noexcept {
    if (!stalled_)
        return false;
    const ReaderSlotData& slot = mapping_->reader_slots()[stalled_->slot];
    return slot.state.load(std::memory_order_acquire) == kReaderOnline &&
           slot.seen_epoch.load(std::memory_order_acquire) == stalled_->seen_epoch &&
           slot.pid.load(std::memory_order_relaxed) == stalled_->pid;
}

void TableWriter::Impl::note_progress() {
    if (stalled_ && !stall_is_current()) {
        stalled_.reset();
        open_reserve(false);
    }
}

std::string TableWriter::Impl::laggard_text() const {
    if (stall_is_current()) {
        const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() -
                                                                              stalled_->since).count();
        return "memory is pinned by reader pid " + std::to_string(stalled_->pid) + " (slot " +
               std::to_string(stalled_->slot) + "), stalled for " + std::to_string(seconds) + " s without a quiescent state; " +
               std::to_string(reclaimer_.pending_elements()) + " retired elements pinned; reserve " +
               std::to_string(reserve_used_pct()) + "% used";
    }
    if (const std::uint32_t pid = reclaimer_.laggard(); pid != 0)
        return "memory is held by reader pid " + std::to_string(pid) + ", which has not passed a quiescent state";
    return "no retired memory is waiting for readers";
}

void TableWriter::Impl::publish_stats() {
    header_.route_count.store(static_cast<std::uint32_t>(routes_.size()), std::memory_order_relaxed);
    header_.nexthop_count.store(nexthop_count_, std::memory_order_relaxed);
    header_.groups_used.store(group_pool_.used(), std::memory_order_relaxed);   // the reserve's use included
    header_.leaves_used.store(leaf_pool_.used(), std::memory_order_relaxed);
    header_.retired_pending.store(reclaimer_.pending_elements(), std::memory_order_relaxed);
    header_.reclaimed_total.store(reclaimed_total_, std::memory_order_relaxed);
}

// ---- recovery ----

void TableWriter::Impl::start_fresh() {
    header_.leaves_high.store(kReservedLeaves, std::memory_order_relaxed);
    header_.groups_high.store(1, std::memory_order_relaxed);
    header_.nh_records_high.store(1, std::memory_order_relaxed);
    header_.nh_ids_high.store(0, std::memory_order_relaxed);
}

namespace {

// A high-water mark of the segment: 0 (unknown) or past the pool's end
// (corrupt) means the whole pool may have been handed out.
std::uint32_t high_water(const std::atomic<std::uint32_t>& high, std::uint32_t end) {
    const std::uint32_t h = high.load(std::memory_order_relaxed);
    return h == 0 || h > end ? end : h;
}

// Live arrays as disjoint ranges, sorted: corrupt slots may share or
// overlap arrays, and a range retired twice would be handed out twice.
std::vector<Retired> merge_ranges(std::vector<Retired> live) {
    std::sort(live.begin(), live.end(), [](const Retired& a, const Retired& b) { return a.base < b.base; });
    std::vector<Retired> merged;
    for (const Retired& r : live) {
        if (!merged.empty() && r.base <= merged.back().base + merged.back().count)
            merged.back().count = std::max(merged.back().count, r.base + r.count - merged.back().base);
        else
            merged.push_back(r);
    }
    return merged;
}

}  // namespace

// Rebuilds the writer's private state from a segment a previous writer left,
// without readers ever seeing less than a complete table: the published trie
// stays in place while every slot is compiled anew from the route records and
// switched over one by one; the old arrays are retired behind a grace period.
// Everything else the dead writer handed out (below the segment's high-water
// marks) may be held by a reader that has not passed a quiescent state since:
// it is retired too, never reused at once. Nothing in the segment is trusted:
// corrupt records and ids are dropped, arrays outside the pools ignored.
Status TableWriter::Impl::recover() {
    recovered = true;
    const std::uint32_t max_nh = header_.capacity.max_nexthops;
    const std::uint32_t record_capacity = header_.nh_record_capacity;

    std::vector<std::uint8_t> record_live(record_capacity, 0);
    NextHopId last_live_id = 0;
    std::uint32_t record_end = 1;
    for (NextHopId id = 1; id <= max_nh; ++id) {
        const std::uint32_t record = nh_map_[id].load(std::memory_order_relaxed);
        if (record == 0)
            continue;
        if (record >= record_capacity || record_live[record]) {
            nh_map_[id].store(0, std::memory_order_release);   // corrupt: drop the id, keep the rest
            continue;
        }
        record_live[record] = 1;
        record_end = std::max(record_end, record + 1);
        nh_by_hash_.emplace(nexthop_hash(nh_records_[record]), id);
        ++nexthop_count_;
        last_live_id = id;
    }
    // Ids: a reader may hold one the dead writer deleted just before it died.
    const NextHopId id_end = std::max(last_live_id, std::min(header_.nh_ids_high.load(std::memory_order_relaxed), max_nh));
    next_id_ = id_end + 1;
    header_.nh_ids_high.store(id_end, std::memory_order_relaxed);
    for (NextHopId id = 1; id <= id_end; ++id)
        if (nh_map_[id].load(std::memory_order_relaxed) == 0)
            reclaimer_.retire({PoolKind::kNextHopIds, id, 1});
    record_end = std::max(record_end, high_water(header_.nh_records_high, record_capacity));
    record_pool_.adopt_tail(record_end);
    header_.nh_records_high.store(record_end, std::memory_order_relaxed);
    for (std::uint32_t r = 1; r < record_end; ++r)
        if (!record_live[r])
            reclaimer_.retire({PoolKind::kNextHopRecords, r, 1});

    // The shared empty leaf array (what a zeroed directory entry points at)
    // and the reserved group 0 answer "no route", whatever was written there.
    const std::array<NextHopId, kReservedLeaves> empty_array{1, 0, kNoRoute};
    std::copy(empty_array.begin(), empty_array.end(), arrays_.leaves);
    std::fill_n(arrays_.groups, kGroupEntries, kNoRoute);

    // Trie arrays, before the shadow allocates anything: what the published
    // directory reaches is live until its slot is republished; every other
    // range below the high-water mark is retired.
    std::vector<std::uint8_t> republish(kDirEntries, 0);
    std::vector<Retired> group_live, leaf_live;
    // Bounded by the pools, not the regions: what lies past a pool is never handed out.
    ShadowTrie::trace(arrays_, leaf_pool_.capacity(), group_pool_.capacity(),
                      [&](std::uint32_t slot, const Retired& r) {
                          republish[slot] = 1;
                          (r.kind == PoolKind::kGroups ? group_live : leaf_live).push_back(r);
                      });
    group_live = merge_ranges(std::move(group_live));
    leaf_live = merge_ranges(std::move(leaf_live));
    auto retire_unlisted = [this](const std::vector<Retired>& live, ArrayPool& pool, PoolKind kind,
                                  std::uint32_t first, std::atomic<std::uint32_t>& high) {
        std::uint32_t cursor = first;
        for (const Retired& r : live) {
            if (r.base > cursor)
                reclaimer_.retire({kind, cursor, r.base - cursor});
            cursor = std::max(cursor, r.base + r.count);
        }
        const std::uint32_t end = std::max(cursor, high_water(high, pool.capacity()));
        if (end > cursor)
            reclaimer_.retire({kind, cursor, end - cursor});
        pool.adopt_tail(end);
        high.store(end, std::memory_order_relaxed);
    };
    retire_unlisted(group_live, group_pool_, PoolKind::kGroups, 1, header_.groups_high);
    retire_unlisted(leaf_live, leaf_pool_, PoolKind::kLeaves, kReservedLeaves, header_.leaves_high);

    // Routes: valid records of a well-formed prefix whose next hop exists;
    // anything else is dropped (and counted), never installed.
    constexpr std::uint64_t kUnusedBit = 1ULL << 39;
    for (std::uint32_t i = 0; i < header_.capacity.max_routes; ++i) {
        const std::uint64_t rec = route_records_[i].load(std::memory_order_relaxed);
        if (rec == 0)
            continue;
        const Prefix4 prefix{route_record::addr(rec), static_cast<std::uint8_t>(route_record::len(rec))};
        const NextHopId nh = route_record::nexthop(rec);
        const bool sane = route_record::valid(rec) && !(rec & kUnusedBit) && prefix.len <= 32 &&
                          (prefix.addr & ~prefix_mask(prefix.len)) == 0 && nexthop_exists(nh);
        if (!sane || !routes_.emplace(route_key(prefix), RouteEntry{nh, i}).second) {
            route_records_[i].store(0, std::memory_order_relaxed);
            ++recovery_dropped_records_;
            continue;
        }
        ++routes_per_length_[prefix.len];
        if (auto s = with_reclaim([&] { return trie_.insert(prefix.addr, prefix.len, nh); }); !s)
            return s;   // the pools hold two full tables (mapping.cc): only a corrupt or pinned segment gets here
        ++refcount_[nh];
        route_records_tail_ = i + 1;
    }
    for (std::uint32_t i = 0; i < route_records_tail_; ++i)
        if (!route_record::valid(route_records_[i].load(std::memory_order_relaxed)))
            free_route_records_.push_back(i);

    for (std::uint32_t slot = 0; slot < kDirEntries; ++slot)
        if (republish[slot] || arrays_.dir[slot].load(std::memory_order_relaxed) != 0)
            trie_.republish(slot, {});
    // The window is derived data: every entry is recomputed, garbage included.
    trie_.republish_window();
    if (auto s = commit(); !s)
        return s;
    // Every slot now names its new arrays: the old ones go, once each.
    reclaimer_.retire(group_live);
    reclaimer_.retire(leaf_live);
    advance_and_reclaim();
    return ok();
}

TableStats TableWriter::Impl::stats() const noexcept {
    TableStats s = mapping_->stats();
    if (stall_is_current()) {
        s.stalled_reader_pid = stalled_->pid;
        s.stalled_reader_slot = stalled_->slot;
        s.stalled_ms = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                      std::chrono::steady_clock::now() - stalled_->since)
                                                      .count());
    }
    s.reserve_elements = leaf_guard_.reserve() + group_guard_.reserve() + record_guard_.reserve();
    s.reserve_used = leaf_guard_.reserve_used() + group_guard_.reserve_used() + record_guard_.reserve_used();
    s.reserve_used_pct = reserve_used_pct();
    s.reclaim_waits = reclaim_waits_;
    s.reclaim_timeouts = reclaim_timeouts_;
    s.recovery_dropped_records = recovery_dropped_records_;
    return s;
}

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

}  // namespace podfwd::lpm
