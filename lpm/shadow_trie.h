// The writer's private image of the trie, and its compilation into the
// segment's arrays. Internal to lpm/.
//
// Per directory slot (a /18) with prefixes longer than /18, the shadow keeps
// 64 entries, one per /24, each `nexthop << 8 | length` of the longest
// covering prefix of length 19..24 (0: none, the directory fallback applies),
// and the tbl8 group of each /24 that holds longer prefixes. Each group has
// a private depth per entry; entries of depth <= 24 are copies of the /24's
// entry (pushed), the rest are the group's own.
//
// Insert overwrites entries no longer than the new prefix; delete rewrites
// entries of exactly the deleted length with the covering prefix the caller
// found. Nothing reachable by readers is ever written: a published group
// about to change is first copied to a draft (copy-on-write, once per
// commit), and publish() gives each changed slot a new leaf array and
// switches the slot with one 64-bit directory store. A reader therefore sees
// each slot wholly before or wholly after a commit. Right after that store,
// the slot's /24s inside the dense window (layout.h) get their new entries,
// one 64-bit store each where the value changes, so that a window entry
// goes from the old value straight to the new one. What a slot no longer
// reaches is retired only then: unlinked from the leaf arrays and the
// window alike.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/result.h"
#include "lpm/layout.h"
#include "lpm/pools.h"

namespace podfwd::lpm {

// A pool as the writer hands it out. A limit below its capacity keeps a
// reserve back for when a stalled reader pins retired memory (writer.cc).
// The high-water mark in the segment header is raised before an array above
// it can be published, so that a restarted writer knows what a dead one may
// have handed out to readers (layout.h).
class GuardedPool {
public:
    GuardedPool(ArrayPool& pool, std::atomic<std::uint32_t>& high, std::uint32_t reserve)
        : pool_(pool), high_(high), reserve_(std::min(reserve, pool.capacity())) {}

    std::optional<std::uint32_t> alloc(std::uint32_t count) {
        if (pool_.used() + count > limit())
            return std::nullopt;
        auto base = pool_.alloc(count);
        // Relaxed: readers can only ever hold what a later release store published.
        if (base && *base + count > high_.load(std::memory_order_relaxed))
            high_.store(*base + count, std::memory_order_relaxed);
        return base;
    }
    void free(std::uint32_t base, std::uint32_t count) { pool_.free(base, count); }

    void open_reserve(bool open) noexcept { reserve_open_ = open; }
    bool reserve_open() const noexcept { return reserve_open_; }
    std::uint64_t reserve() const noexcept { return reserve_; }
    std::uint64_t reserve_used() const noexcept {
        const std::uint64_t normal = pool_.capacity() - reserve_;
        return pool_.used() > normal ? pool_.used() - normal : 0;
    }
    std::uint64_t used() const noexcept { return pool_.used(); }
    ArrayPool& pool() noexcept { return pool_; }

private:
    std::uint64_t limit() const noexcept { return reserve_open_ ? pool_.capacity() : pool_.capacity() - reserve_; }

    ArrayPool& pool_;
    std::atomic<std::uint32_t>& high_;
    std::uint32_t reserve_;
    bool reserve_open_ = false;
};

struct TrieArrays {
    std::atomic<std::uint64_t>* dir;
    NextHopId* leaves;
    NextHopId* groups;
    std::atomic<std::uint64_t>* window;   // the dense window (layout.h)
    Ipv4Addr window_base;
    std::uint32_t window_span;            // 0: none

    // The /24s of directory slot `slot` inside the window: window indices
    // [first, first + count), count 0 if none (at most 64).
    std::pair<std::uint32_t, std::uint32_t> window_part(std::uint32_t slot) const noexcept {
        const std::uint64_t lo = std::max<std::uint64_t>(std::uint64_t{slot} << kDirShift, window_base);
        const std::uint64_t hi = std::min<std::uint64_t>((std::uint64_t{slot} + 1) << kDirShift,
                                                         std::uint64_t{window_base} + window_span);
        if (lo >= hi)
            return {0, 0};
        return {static_cast<std::uint32_t>((lo - window_base) >> 8), static_cast<std::uint32_t>((hi - lo) >> 8)};
    }
};

class ShadowTrie {
public:
    ShadowTrie(TrieArrays arrays, GuardedPool& leaf_pool, GuardedPool& group_pool);

    // Both fail with kCapacity, having changed nothing, when a tbl8 group
    // (new, or a draft copy of a published one) cannot be allocated.
    Status insert(Ipv4Addr addr, unsigned len, NextHopId nexthop);
    // `replacement`/`replacement_len`: the longest remaining prefix covering
    // the deleted one, limited to lengths > 18 when len > 18 (0/0: none).
    Status remove(Ipv4Addr addr, unsigned len, NextHopId replacement, unsigned replacement_len);

    // Stores every changed directory slot. Arrays that published slots no
    // longer reach are appended to `retired`. kCapacity if the leaf pool is
    // exhausted; the slots not yet stored stay pending.
    Status publish(std::vector<Retired>& retired);
    bool dirty() const noexcept { return !dirty_slots_.empty(); }

    // Recovery: `slot` is to be stored anew; `old` are the arrays its
    // published entry reaches, retired once it is.
    void republish(std::uint32_t slot, std::vector<Retired> old);
    // Recovery: every slot the window covers is stored anew, and with it
    // every window entry, whatever the region held.
    void republish_window();

    // Walks the published trie, calling visit(slot, Retired) for every
    // reachable leaf array and group inside its pool, the groups that window
    // entries name included (a writer killed between a slot's directory
    // store and its window stores leaves the window naming other groups).
    // Returns the number of slots and window entries that reach outside the
    // pools (corrupt): what lies outside is never handed out anyway, and the
    // slot is rebuilt.
    template <class Visit>
    static std::uint32_t trace(const TrieArrays& arrays, std::uint32_t leaf_capacity, std::uint32_t group_capacity,
                               Visit&& visit);

    std::size_t private_bytes() const noexcept;

private:
    struct Slot {
        std::array<std::uint32_t, 64> entry{};   // per /24: nexthop << 8 | length (19..24)
        // Per /24: tbl8 group, 0: none. Allocated with the slot's first group:
        // most slots of an Internet table have none.
        std::unique_ptr<std::array<std::uint32_t, 64>> group_ids;
        std::uint32_t leaf_base = kEmptyLeafArray;   // compiled: what the directory holds
        std::uint32_t leaf_count = 0;                // elements, header included; 0: the shared empty array
        std::uint32_t groups = 0;
        bool leaves_dirty = false;

        std::uint32_t group(unsigned pos) const noexcept { return group_ids ? (*group_ids)[pos] : 0; }
        void set_group(unsigned pos, std::uint32_t id) {
            if (!group_ids)
                group_ids = std::make_unique<std::array<std::uint32_t, 64>>();
            (*group_ids)[pos] = id;
        }
    };
    struct Group {
        std::array<std::uint8_t, kGroupEntries> depth{};
        std::uint32_t own = 0;      // entries longer than /24
        bool published = false;     // reachable by readers: copy before writing
    };

    void mark_dirty(std::uint32_t slot);
    Slot& slot_for(std::uint32_t dir_slot);
    NextHopId* group_entries(std::uint32_t group) const noexcept {
        return arrays_.groups + std::size_t{group} * kGroupEntries;
    }
    std::optional<std::uint32_t> new_group();
    // Replaces the published groups at the given positions of `dir_slot` by
    // writable drafts, all or none.
    Status make_writable(std::uint32_t dir_slot, const std::vector<unsigned>& positions);
    void set_group_entry(std::uint32_t group, unsigned i, std::uint32_t packed);
    void push_to_group(std::uint32_t group, std::uint32_t packed);
    template <class Pred>
    void update_fallback(Ipv4Addr addr, unsigned len, std::uint32_t packed, Pred pred);
    template <class Pred>
    Status update_slot(std::uint32_t dir_slot, unsigned lo, unsigned count, std::uint32_t packed, Pred pred);
    template <class Pred>
    Status update_group(std::uint32_t dir_slot, unsigned pos, unsigned lo, unsigned count, std::uint32_t packed,
                        Pred pred);
    void release_slot_if_empty(std::uint32_t dir_slot);
    bool compile(Slot& slot, std::vector<Retired>& retired);
    static NextHopId leaf_value(const Slot& slot, unsigned pos) noexcept {
        return slot.group(pos) != 0 ? group_leaf(slot.group(pos)) : static_cast<NextHopId>(slot.entry[pos] >> 8);
    }
    void store_window(std::uint32_t dir_slot);
    std::size_t group_arrays_bytes() const noexcept;

    TrieArrays arrays_;
    GuardedPool& leaf_pool_;
    GuardedPool& group_pool_;
    std::vector<std::uint32_t> fallback_;   // per directory slot: nexthop << 8 | length (0..18)
    std::vector<std::uint32_t> slot_of_;    // per directory slot: index in slots_, 0: none
    std::vector<std::uint8_t> slot_dirty_;
    std::vector<std::uint32_t> dirty_slots_;
    std::unordered_map<std::uint32_t, std::vector<Retired>> slot_garbage_;
    std::deque<Slot> slots_;                // deque: references survive growth
    std::vector<std::uint32_t> free_slots_;
    std::vector<Group> groups_;             // by group id
};

template <class Visit>
std::uint32_t ShadowTrie::trace(const TrieArrays& arrays, std::uint32_t leaf_capacity, std::uint32_t group_capacity,
                                Visit&& visit) {
    std::uint32_t corrupt = 0;
    // A leaf naming a group, from a leaf array or a window entry: the group
    // is live for `slot`, or the leaf is corrupt.
    const auto visit_group = [&](std::uint32_t slot, NextHopId leaf) {
        if (!(leaf & kGroupFlag))
            return;
        const std::uint32_t group = group_of_leaf(leaf);
        if (group == 0 || group >= group_capacity) {
            ++corrupt;
            return;
        }
        visit(slot, Retired{PoolKind::kGroups, group, 1});
    };
    for (std::uint32_t slot = 0; slot < kDirEntries; ++slot) {
        const std::uint32_t base = leaf_base_of(arrays.dir[slot].load(std::memory_order_acquire));
        if (base == kEmptyLeafArray)
            continue;
        // The reserved leaves are the shared empty array: never handed out.
        if (base < kReservedLeaves || std::uint64_t{base} + kLeafHeader >= leaf_capacity) {
            ++corrupt;
            continue;
        }
        std::uint64_t leafvec;
        std::memcpy(&leafvec, &arrays.leaves[base], sizeof leafvec);
        const auto runs = static_cast<std::uint32_t>(__builtin_popcountll(leafvec));
        const std::uint32_t in_pool = static_cast<std::uint32_t>(
            std::min<std::uint64_t>(runs, leaf_capacity - (std::uint64_t{base} + kLeafHeader)));
        corrupt += !(leafvec & 1) || in_pool != runs;
        visit(slot, Retired{PoolKind::kLeaves, base, kLeafHeader + in_pool});
        for (std::uint32_t k = 0; k < in_pool; ++k)
            visit_group(slot, arrays.leaves[base + kLeafHeader + k]);
    }
    for (std::uint32_t i = 0; i < (arrays.window_span >> 8); ++i)
        visit_group((arrays.window_base + (i << 8)) >> kDirShift,
                    leaf_of(arrays.window[i].load(std::memory_order_acquire)));
    return corrupt;
}

}  // namespace podfwd::lpm
