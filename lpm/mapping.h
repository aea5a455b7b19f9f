// One process's mapping of the table segment, and the segment's geometry.
// Internal to lpm/.
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/result.h"
#include "lpm/guard_window.h"
#include "lpm/layout.h"

namespace podfwd::lpm {

inline constexpr std::uint64_t kPage = 4096;
// Large regions start on 2 MiB boundaries so they can be backed by huge pages.
inline constexpr std::uint64_t kLargeAlign = 2u << 20;
constexpr std::uint64_t align_up(std::uint64_t value, std::uint64_t align) {
    return (value + align - 1) / align * align;
}

// Region sizes and offsets, derived from the capacity alone, so a writer and
// a reader can check a segment against what they expect.
struct Geometry {
    Capacity capacity{};
    std::uint32_t group_capacity = 0;
    std::uint32_t leaf_capacity = 0;
    std::uint32_t nh_record_capacity = 0;
    std::uint64_t readers_offset = 0, readers_bytes = 0;
    std::uint64_t dir_offset = 0, leaves_offset = 0, groups_offset = 0;
    std::uint64_t window_offset = 0, window_bytes = 0;
    Ipv4Addr window_base = 0;
    std::uint32_t window_span = 0;   // addresses; 0: no window (layout.h)
    std::uint64_t nh_map_offset = 0, nh_records_offset = 0, routes_offset = 0;
    std::uint64_t segment_bytes = 0;

    // kInvalidArgument naming the field for a capacity out of range.
    static Result<Geometry> of(const Capacity& capacity);
    bool matches(const SegmentHeader& header) const noexcept;
};

class Mapping {
public:
    enum class Role { kWriter, kReader };

    // Writer: opens or creates the segment and takes its exclusive lock.
    // `created` tells whether the segment was (re)initialised from scratch.
    static Result<std::shared_ptr<Mapping>> open_writer(const std::string& name, const Capacity& capacity,
                                                        bool& created);
    static Result<std::shared_ptr<Mapping>> open_reader(const std::string& name);
    static Status unlink(const std::string& name);

    Mapping(const Mapping&) = delete;
    Mapping& operator=(const Mapping&) = delete;
    ~Mapping();

    SegmentHeader& header() const noexcept { return *reinterpret_cast<SegmentHeader*>(base_); }
    template <class T>
    T* region(std::uint64_t offset) const noexcept {
        return reinterpret_cast<T*>(static_cast<std::byte*>(base_) + offset);
    }
    // The geometry as validated at open, copied: later writes to the header
    // cannot move a reader's regions.
    const Geometry& geometry() const noexcept { return geometry_; }
    ReaderSlotData* reader_slots() const noexcept { return region<ReaderSlotData>(geometry_.readers_offset); }
    // Readers: the trie's leaves and groups in their guard windows
    // (guard_window.h); nullptr in a writer's mapping.
    const NextHopId* leaf_window() const noexcept { return static_cast<const NextHopId*>(leaf_window_.data()); }
    const NextHopId* group_window() const noexcept { return static_cast<const NextHopId*>(group_window_.data()); }
    std::size_t size() const noexcept { return size_; }
    // The header's counters and the number of online readers.
    TableStats stats() const noexcept;
    void* base() const noexcept { return base_; }

    // Reader liveness (layout.h, kLivenessLockBase). true: this mapping now
    // holds the lock of reader slot `index`, so no other open of the segment
    // does and no other claim through this mapping either (the locks of one
    // open file description do not conflict with each other, hence the
    // in-process bookkeeping). A reaper and a registering reader use the same
    // call; the kernel drops a holder's locks when it dies.
    bool claim_slot_lock(unsigned index) const;
    void release_slot_lock(unsigned index) const noexcept;

    // Readers: the segment file was truncated under this mapping (the
    // truncation guard replaced it with zeros, or the file is shorter now).
    bool truncated() const noexcept;

private:
    Mapping(int fd, void* base, std::size_t size, const Geometry& geometry) noexcept
        : fd_(fd), base_(base), size_(size), geometry_(geometry) {}

    int fd_ = -1;
    void* base_ = nullptr;
    std::size_t size_ = 0;
    Geometry geometry_;
    GuardWindow leaf_window_;
    GuardWindow group_window_;
    mutable std::mutex slot_locks_mutex_;
    mutable std::vector<bool> slot_locks_held_;
    int truncation_guard_ = -1;   // truncation_guard::Handle, readers only
};

// "/dev/shm/<name>" for messages.
std::string segment_path(const std::string& name);

}  // namespace podfwd::lpm
