// A shared-memory segment the dataplane publishes for other processes
// (/dev/shm/<name>): created empty (zero-filled), mapped read-write,
// unmapped and unlinked when destroyed. The counters and the neighbour
// segments are both one of these with a layout of their own on top.
#pragma once

#include <cstddef>
#include <string>

#include "common/result.h"

namespace podfwd::dp::app {

class ShmSegment {
public:
    // `name` without the leading slash. A segment of the same name is
    // replaced: names carry our pid, so only a dead process with the same
    // pid can have left one.
    static Result<ShmSegment> create(const std::string& name, std::size_t size);

    ShmSegment(ShmSegment&& other) noexcept;
    ShmSegment& operator=(ShmSegment&&) = delete;
    ShmSegment(const ShmSegment&) = delete;
    ~ShmSegment();

    void* base() const noexcept { return base_; }
    std::size_t size() const noexcept { return size_; }
    const std::string& path() const noexcept { return path_; }   // /dev/shm/<name>, for messages

private:
    ShmSegment(std::string name, void* base, std::size_t size);

    std::string name_;   // shm_open's: "/<name>"
    std::string path_;
    void* base_ = nullptr;
    std::size_t size_ = 0;
};

}  // namespace podfwd::dp::app
