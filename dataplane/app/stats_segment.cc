#include "dataplane/app/stats_segment.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <new>
#include <utility>

namespace podfwd::dp::app {

StatsSegment::StatsSegment(std::string name, std::string path, void* base, std::size_t size) noexcept
    : name_(std::move(name)), path_(std::move(path)), base_(base), size_(size),
      header_(static_cast<StatsHeader*>(base)),
      entries_(reinterpret_cast<LcoreStats*>(static_cast<std::byte*>(base) + sizeof(StatsHeader))) {}

StatsSegment::StatsSegment(StatsSegment&& other) noexcept
    : name_(std::move(other.name_)), path_(std::move(other.path_)), base_(std::exchange(other.base_, nullptr)),
      size_(other.size_), header_(other.header_), entries_(other.entries_) {}

StatsSegment::~StatsSegment() {
    if (base_ == nullptr)
        return;
    munmap(base_, size_);
    shm_unlink(name_.c_str());
}

Result<StatsSegment> StatsSegment::create(const std::string& table, unsigned lcores) {
    const std::string name = "/" + table + ".stats." + std::to_string(getpid());
    const std::size_t size = sizeof(StatsHeader) + lcores * sizeof(LcoreStats);
    const auto fail = [&](const char* what) {
        return Error{Errc::kSystem, std::string(what) + " /dev/shm" + name + ": " + std::strerror(errno)};
    };
    // A file of the same name can only be left by a dead process with our
    // pid: replace it.
    shm_unlink(name.c_str());
    const int fd = shm_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL, 0644);
    if (fd < 0)
        return fail("shm_open");
    if (ftruncate(fd, static_cast<off_t>(size)) != 0) {
        auto error = fail("ftruncate");
        close(fd);
        shm_unlink(name.c_str());
        return error;
    }
    void* base = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED) {
        auto error = fail("mmap");
        close(fd);
        shm_unlink(name.c_str());
        return error;
    }
    close(fd);   // the mapping keeps the memory

    // The file is zero-filled; construct the objects in place. mmap returns
    // a page-aligned base, so the 64-byte alignment holds.
    auto* header = new (base) StatsHeader{};
    header->version = kStatsVersion;
    header->lcore_count = lcores;
    header->entry_size = sizeof(LcoreStats);
    header->counters_offset = offsetof(LcoreStats, counters);
    header->roles = kPortRoles;
    header->actions = static_cast<std::uint32_t>(Action::kCount);
    header->drops = static_cast<std::uint32_t>(Drop::kCount);
    header->pid = static_cast<std::uint32_t>(getpid());
    header->start_unix_ns = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count());
    auto* entries = reinterpret_cast<LcoreStats*>(static_cast<std::byte*>(base) + sizeof(StatsHeader));
    for (unsigned i = 0; i < lcores; ++i)
        new (&entries[i]) LcoreStats{};
    // Magic last: a reader that sees it sees a complete header.
    std::atomic_thread_fence(std::memory_order_release);
    header->magic = kStatsMagic;
    return StatsSegment(name, "/dev/shm" + name, base, size);
}

}  // namespace podfwd::dp::app
