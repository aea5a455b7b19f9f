// Writer-private allocators for the segment's arrays, and the QSBR reclaimer
// that decides when retired arrays may be reused. Internal to lpm/.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

#include "lpm/layout.h"

namespace podfwd::lpm {

class Mapping;

// Contiguous arrays of 1..kMaxArray elements in [first, capacity); lower
// indices are reserved. Exact-size free lists, then the untouched tail, then
// a split of a larger free array.
class ArrayPool {
public:
    static constexpr std::uint32_t kMaxArray = 64 + kLeafHeader;

    ArrayPool(std::uint32_t first, std::uint32_t capacity) : capacity_(capacity), tail_(first) {}

    std::optional<std::uint32_t> alloc(std::uint32_t count);
    void free(std::uint32_t base, std::uint32_t count);
    // Recovery: everything below `end` counts as allocated; the caller frees
    // (through the reclaimer) what is not actually live.
    void adopt_tail(std::uint32_t end) {
        if (end > tail_) {
            used_ += end - tail_;
            tail_ = end;
        }
    }
    std::uint64_t used() const noexcept { return used_; }
    std::uint32_t capacity() const noexcept { return capacity_; }

private:
    std::uint32_t capacity_;
    std::uint32_t tail_;
    std::uint64_t used_ = 0;
    std::array<std::vector<std::uint32_t>, kMaxArray + 1> free_;
};

enum class PoolKind : std::uint8_t { kLeaves, kGroups, kNextHopRecords, kNextHopIds };

struct Retired {
    PoolKind kind;
    std::uint32_t base;
    std::uint32_t count;
};

// Quiescent-state-based reclamation across processes. The writer retires
// what it unpublished, then advance() bumps the segment's epoch and tags the
// retired batch with it; a batch is reusable once every online reader has
// published a seen_epoch at or past its tag. Readers that died are detected
// by their slot's liveness lock (layout.h), which works across PID
// namespaces, and their slot freed.
class Reclaimer {
public:
    explicit Reclaimer(const Mapping& mapping);

    void retire(const Retired& r) { staged_.push_back(r); }
    void retire(const std::vector<Retired>& batch) { staged_.insert(staged_.end(), batch.begin(), batch.end()); }
    // Call after the stores that unpublished everything retired so far.
    void advance();
    // Hands every reusable retired array to `release`; returns how many.
    template <class Release>
    std::size_t reclaim(Release&& release) {
        if (queue_.empty())
            return 0;
        const std::uint64_t safe = oldest_seen_epoch();
        std::size_t n = 0;
        while (!queue_.empty() && queue_.front().epoch <= safe) {
            for (const Retired& r : queue_.front().items) {
                release(r);
                ++n;
            }
            pending_elements_ -= queue_.front().elements;
            queue_.pop_front();
        }
        return n;
    }
    bool idle() const noexcept { return queue_.empty() && staged_.empty(); }
    std::uint64_t pending_elements() const noexcept { return pending_elements_; }
    // The pid (in its own PID namespace: information only) of an online
    // reader holding reclamation back, 0 if none.
    std::uint32_t laggard() const noexcept;

private:
    struct Batch {
        std::uint64_t epoch;
        std::uint64_t elements;
        std::vector<Retired> items;
    };
    // Minimum seen_epoch over online readers (UINT64_MAX when none); reaps
    // dead readers that hold it back, at most every few milliseconds.
    std::uint64_t oldest_seen_epoch();

    // Frees slot `index` if its owner is dead; true if it did.
    bool reap_if_dead(std::uint32_t index);

    const Mapping& mapping_;
    SegmentHeader& header_;
    ReaderSlotData* slots_;
    std::vector<Retired> staged_;
    std::deque<Batch> queue_;
    std::uint64_t pending_elements_ = 0;
    std::chrono::steady_clock::time_point last_liveness_check_{};
};

// Frees the slot of a dead owner; the caller holds the slot's liveness lock
// (Mapping::claim_slot_lock), so no live process owns it. true if it was in
// use: the caller counts the reap.
bool free_dead_slot(ReaderSlotData& slot) noexcept;

}  // namespace podfwd::lpm
