// TableWriter's implementation, shared by writer.cc (next hops, routes) and
// writer_recovery.cc (reclamation, stalled readers, restart recovery).
// Internal to lpm/.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <optional>
#include <unordered_map>

#include "lpm/mapping.h"
#include "lpm/pools.h"
#include "lpm/shadow_trie.h"
#include "lpm/writer.h"

namespace podfwd::lpm {
namespace writer_detail {

// A tenth of each pool is kept back for when a stalled reader pins retired
// memory: the pools are twice what live data needs (mapping.cc), so live
// data never needs the reserve.
constexpr std::uint32_t kReserveDivisor = 10;

constexpr std::uint64_t route_key(const Prefix4& p) { return std::uint64_t{p.addr} << 6 | p.len; }

inline std::uint64_t nexthop_hash(const NextHop& nh) {
    std::uint64_t words[4];
    std::memcpy(words, &nh, sizeof words);
    std::uint64_t h = 0x9e3779b97f4a7c15ULL;
    for (std::uint64_t w : words)
        h = (h ^ w) * 0xff51afd7ed558ccdULL;
    return h ^ (h >> 31);
}

}  // namespace writer_detail

using writer_detail::kReserveDivisor;
using writer_detail::nexthop_hash;
using writer_detail::route_key;

class TableWriter::Impl {
public:
    Impl(std::shared_ptr<Mapping> mapping, const Options& options)
        : mapping_(std::move(mapping)), header_(mapping_->header()), options_(options),
          arrays_{mapping_->region<std::atomic<std::uint64_t>>(header_.dir_offset),
                  mapping_->region<NextHopId>(header_.leaves_offset), mapping_->region<NextHopId>(header_.groups_offset),
                  mapping_->region<std::atomic<std::uint64_t>>(mapping_->geometry().window_offset),
                  mapping_->geometry().window_base, mapping_->geometry().window_span},
          nh_map_(mapping_->region<std::atomic<std::uint32_t>>(header_.nh_map_offset)),
          nh_records_(mapping_->region<NextHop>(header_.nh_records_offset)),
          route_records_(mapping_->region<std::atomic<std::uint64_t>>(header_.routes_offset)),
          // No array starts in the last kLeafHeader + 64 words: readers
          // built before the guard windows clamp such bases (layout 2).
          leaf_pool_(kReservedLeaves, header_.leaf_capacity - (kLeafHeader + 64)), group_pool_(1, header_.group_capacity),
          record_pool_(1, header_.nh_record_capacity),
          leaf_guard_(leaf_pool_, header_.leaves_high, header_.leaf_capacity / kReserveDivisor),
          group_guard_(group_pool_, header_.groups_high, header_.group_capacity / kReserveDivisor),
          record_guard_(record_pool_, header_.nh_records_high, header_.nh_record_capacity / kReserveDivisor),
          trie_(arrays_, leaf_guard_, group_guard_),
          reclaimer_(*mapping_), refcount_(header_.capacity.max_nexthops + 1, 0) {}

    // A new segment: nothing handed out yet.
    void start_fresh();
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
        return TrieView{arrays_.dir,    arrays_.leaves,      arrays_.groups,
                        arrays_.window, arrays_.window_base, arrays_.window_span}
            .lookup(addr);
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

    // A reader that let a wait for it time out, as it was then.
    struct Stall {
        std::uint32_t slot;
        std::uint32_t pid;
        std::uint64_t seen_epoch;
        std::chrono::steady_clock::time_point since;
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
    // Waits (bounded) for readers to release retired memory; false on
    // timeout, with the reader that held it recorded as stalled.
    bool wait_for_readers();
    // After a pool ran dry: reclaims what readers released, waits for them
    // unless the one holding memory back is known to be stalled, and opens
    // the reserve for a stalled reader. true if the operation is worth
    // another try.
    bool make_room();
    // Forgets the stalled reader once it passed a quiescent state, went
    // offline or died, and keeps the reserve for the next stall.
    void note_progress();
    bool stall_is_current() const noexcept;
    std::optional<Stall> find_laggard(std::chrono::steady_clock::time_point since) const;
    std::uint32_t reserve_used_pct() const noexcept {
        std::uint64_t pct = 0;
        for (const GuardedPool* pool : {&leaf_guard_, &group_guard_, &record_guard_})
            if (pool->reserve() != 0)
                pct = std::max(pct, pool->reserve_used() * 100 / pool->reserve());
        return static_cast<std::uint32_t>(pct);
    }
    void open_reserve(bool open) noexcept {
        leaf_guard_.open_reserve(open);
        group_guard_.open_reserve(open);
        record_guard_.open_reserve(open);
    }
    // Runs `op` (which changes nothing when it fails); while a pool is
    // exhausted and make_room() finds some, runs it again (bounded).
    template <class Op>
    Status with_reclaim(Op&& op) {
        Status s = op();
        for (int attempt = 0; attempt < 2 && !s && s.error().code == Errc::kCapacity && make_room(); ++attempt)
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
    GuardedPool leaf_guard_, group_guard_, record_guard_;
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
    std::optional<Stall> stalled_;
    std::uint64_t reclaim_waits_ = 0;
    std::uint64_t reclaim_timeouts_ = 0;
    std::uint32_t recovery_dropped_records_ = 0;
};

}  // namespace podfwd::lpm
