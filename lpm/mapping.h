// One process's mapping of the table segment, and the segment's geometry.
// Internal to lpm/.
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/result.h"
#include "lpm/layout.h"

namespace podfwd::lpm {

// Region sizes and offsets, derived from the capacity alone, so a writer and
// a reader can check a segment against what they expect.
struct Geometry {
    std::uint32_t group_capacity = 0;
    std::uint32_t leaf_capacity = 0;
    std::uint32_t nh_record_capacity = 0;
    std::uint64_t readers_offset = 0, readers_bytes = 0;
    std::uint64_t dir_offset = 0, leaves_offset = 0, groups_offset = 0;
    std::uint64_t nh_map_offset = 0, nh_records_offset = 0, routes_offset = 0;
    std::uint64_t segment_bytes = 0;

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
    ReaderSlotData* reader_slots() const noexcept { return region<ReaderSlotData>(header().readers_offset); }
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
    Mapping(int fd, void* base, std::size_t size) noexcept : fd_(fd), base_(base), size_(size) {}

    int fd_ = -1;
    void* base_ = nullptr;
    std::size_t size_ = 0;
    mutable std::mutex slot_locks_mutex_;
    mutable std::vector<bool> slot_locks_held_;
    int truncation_guard_ = -1;   // truncation_guard::Handle, readers only
};

// "/dev/shm/<name>" for messages.
std::string segment_path(const std::string& name);

}  // namespace podfwd::lpm
