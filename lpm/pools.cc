#include "lpm/pools.h"

#include <limits>

#include "lpm/mapping.h"

namespace podfwd::lpm {

std::optional<std::uint32_t> ArrayPool::alloc(std::uint32_t count) {
    if (count == 0 || count > kMaxArray)
        return std::nullopt;
    if (auto& list = free_[count]; !list.empty()) {
        const std::uint32_t base = list.back();
        list.pop_back();
        used_ += count;
        return base;
    }
    if (capacity_ - tail_ >= count) {
        const std::uint32_t base = tail_;
        tail_ += count;
        used_ += count;
        return base;
    }
    for (std::uint32_t size = count + 1; size <= kMaxArray; ++size) {
        if (auto& list = free_[size]; !list.empty()) {
            const std::uint32_t base = list.back();
            list.pop_back();
            free_[size - count].push_back(base + count);
            used_ += count;
            return base;
        }
    }
    return std::nullopt;
}

void ArrayPool::free(std::uint32_t base, std::uint32_t count) {
    // Recovery hands back gaps of any length: split them into legal sizes.
    while (count > 0) {
        const std::uint32_t chunk = count < kMaxArray ? count : kMaxArray;
        free_[chunk].push_back(base);
        used_ -= used_ >= chunk ? chunk : used_;
        base += chunk;
        count -= chunk;
    }
}

Reclaimer::Reclaimer(const Mapping& mapping)
    : mapping_(mapping), header_(mapping.header()), slots_(mapping.reader_slots()) {}

void Reclaimer::advance() {
    // seq_cst: the epoch bump must be ordered after the unpublishing stores
    // and before the scan of reader slots (see ReaderSlot::online()).
    const std::uint64_t epoch = header_.epoch.fetch_add(1, std::memory_order_seq_cst) + 1;
    if (staged_.empty())
        return;
    std::uint64_t elements = 0;
    for (const Retired& r : staged_)
        elements += r.count;
    pending_elements_ += elements;
    queue_.push_back(Batch{epoch, elements, std::move(staged_)});
    staged_.clear();
}

std::uint64_t Reclaimer::oldest_seen_epoch() {
    std::atomic_thread_fence(std::memory_order_seq_cst);
    const std::uint64_t needed = queue_.empty() ? 0 : queue_.front().epoch;
    const auto now = std::chrono::steady_clock::now();
    const bool check_liveness = now - last_liveness_check_ > std::chrono::milliseconds(5);
    bool checked = false;
    std::uint64_t oldest = std::numeric_limits<std::uint64_t>::max();
    const std::uint32_t n = mapping_.geometry().capacity.reader_slots;
    for (std::uint32_t i = 0; i < n; ++i) {
        ReaderSlotData& slot = slots_[i];
        // Registering: its online() runs after this scan's epoch bump and
        // publishes a seen_epoch at or past it, so it holds nothing older.
        if (slot.state.load(std::memory_order_seq_cst) != kReaderOnline)
            continue;
        const std::uint64_t seen = slot.seen_epoch.load(std::memory_order_acquire);
        if (seen < needed && check_liveness) {
            checked = true;
            if (reap_if_dead(i))
                continue;
        }
        oldest = seen < oldest ? seen : oldest;
    }
    if (checked)
        last_liveness_check_ = now;
    return oldest;
}

bool Reclaimer::reap_if_dead(std::uint32_t index) {
    // Taking the lock ourselves both tests it and keeps a registering reader
    // off the slot while we free it: no reader can be online there meanwhile.
    if (!mapping_.claim_slot_lock(index))
        return false;
    const bool reaped = free_dead_slot(slots_[index]);
    if (reaped)
        header_.dead_readers_reaped.fetch_add(1, std::memory_order_relaxed);
    mapping_.release_slot_lock(index);
    return reaped;
}

bool free_dead_slot(ReaderSlotData& slot) noexcept {
    // The owner frees its slot before it unlocks: a slot still in use whose
    // lock we could take belonged to a process that died.
    if (slot.state.load(std::memory_order_acquire) == kReaderFree)
        return false;
    slot.pid.store(0, std::memory_order_relaxed);
    slot.state.store(kReaderFree, std::memory_order_release);
    return true;
}

std::uint32_t Reclaimer::laggard() const noexcept {
    const std::uint64_t needed = queue_.empty() ? 0 : queue_.front().epoch;
    for (std::uint32_t i = 0; i < mapping_.geometry().capacity.reader_slots; ++i) {
        const ReaderSlotData& slot = slots_[i];
        if (slot.state.load(std::memory_order_acquire) == kReaderOnline &&
            slot.seen_epoch.load(std::memory_order_acquire) < needed)
            return slot.pid.load(std::memory_order_relaxed);
    }
    return 0;
}

}  // namespace podfwd::lpm
