#include "lpm/pools.h"

#include <fstream>
#include <iterator>
#include <limits>
#include <sstream>
#include <string>

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
    const std::uint32_t n = header_.capacity.reader_slots;
    for (std::uint32_t i = 0; i < n; ++i) {
        ReaderSlotData& slot = slots_[i];
        const std::uint32_t pid = slot.pid.load(std::memory_order_seq_cst);
        if (pid == 0)
            continue;
        const std::uint32_t state = slot.state.load(std::memory_order_seq_cst);
        if (state == kReaderOffline || state == kReaderFree)
            continue;
        const std::uint64_t seen = slot.seen_epoch.load(std::memory_order_acquire);
        if (seen < needed && check_liveness) {
            checked = true;
            const auto start = process_start_time(pid);
            if (!start || *start != slot.start_time.load(std::memory_order_relaxed)) {
                std::uint32_t expected = pid;
                if (slot.pid.compare_exchange_strong(expected, 0, std::memory_order_acq_rel)) {
                    slot.state.store(kReaderFree, std::memory_order_release);
                    header_.dead_readers_reaped.fetch_add(1, std::memory_order_relaxed);
                }
                continue;
            }
        }
        oldest = seen < oldest ? seen : oldest;
    }
    if (checked)
        last_liveness_check_ = now;
    return oldest;
}

std::uint32_t Reclaimer::laggard() const noexcept {
    const std::uint64_t needed = queue_.empty() ? 0 : queue_.front().epoch;
    for (std::uint32_t i = 0; i < header_.capacity.reader_slots; ++i) {
        const ReaderSlotData& slot = slots_[i];
        const std::uint32_t pid = slot.pid.load(std::memory_order_acquire);
        if (pid != 0 && slot.state.load(std::memory_order_acquire) == kReaderOnline &&
            slot.seen_epoch.load(std::memory_order_acquire) < needed)
            return pid;
    }
    return 0;
}

std::optional<std::uint64_t> process_start_time(std::uint32_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    const auto close = stat.rfind(')');
    if (close == std::string::npos)
        return std::nullopt;
    std::istringstream fields(stat.substr(close + 1));
    std::string state;
    fields >> state;
    if (state.empty() || state == "Z" || state == "X" || state == "x")
        return std::nullopt;
    std::string field;
    for (int i = 4; i < 22 && fields >> field; ++i) {
    }
    std::uint64_t start = 0;
    if (!(fields >> start))
        return std::nullopt;
    return start;
}

}  // namespace podfwd::lpm
