// Test helper: a neighbour segment written the way dataplane/neigh_layout.h
// lays it out, as /dev/shm/<table>.neigh.<pid>, removed when destroyed.
// Written by hand (not by the dataplane's writer) so the tests can also
// write what a correct writer never would.
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <new>
#include <string>

#include "dataplane/neigh_layout.h"

namespace podfwd::control::testing {

class NeighSegmentFile {
public:
    // A segment of `capacity` entries in a file of `file_size` bytes (0: the
    // size the capacity needs), header written valid and empty.
    NeighSegmentFile(const std::string& table, std::uint32_t pid, std::uint32_t capacity, std::size_t file_size = 0)
        : path_("/dev/shm/" + table + ".neigh." + std::to_string(pid)) {
        const std::size_t needed = sizeof(dp::NeighHeader) + std::size_t{capacity} * sizeof(dp::NeighEntry);
        size_ = file_size != 0 ? file_size : needed;
        const int fd = ::open(path_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || ::ftruncate(fd, static_cast<off_t>(size_)) != 0)
            return;
        // Mapped at least a header's worth, so a test can write a header
        // into a file shorter than one (the mapping past EOF is not read).
        map_size_ = std::max(size_, needed);
        void* base = ::mmap(nullptr, map_size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        ::close(fd);
        if (base == MAP_FAILED)
            return;
        base_ = base;
        if (size_ < sizeof(dp::NeighHeader))
            return;   // a test of a file too short for the header writes nothing into it
        header_ = new (base_) dp::NeighHeader{};
        header_->magic = dp::kNeighMagic;
        header_->version = dp::kNeighVersion;
        header_->capacity = capacity;
        header_->entry_size = sizeof(dp::NeighEntry);
        header_->pid = pid;
        header_->published_unix_ns = 1;
    }
    NeighSegmentFile(const NeighSegmentFile&) = delete;
    NeighSegmentFile& operator=(const NeighSegmentFile&) = delete;
    ~NeighSegmentFile() {
        if (base_ != nullptr)
            ::munmap(base_, map_size_);
        ::unlink(path_.c_str());
    }

    bool ok() const { return base_ != nullptr; }
    const std::string& path() const { return path_; }
    dp::NeighHeader& header() { return *header_; }
    dp::NeighEntry& entry(std::uint32_t i) {
        return reinterpret_cast<dp::NeighEntry*>(static_cast<std::byte*>(base_) + sizeof(dp::NeighHeader))[i];
    }
    // Writes entry i as the dataplane would (under the sequence) and sets the count.
    void publish(std::uint32_t count, std::uint64_t published_unix_ns = 2) {
        const std::uint64_t seq = header_->seq.load();
        header_->seq.store(seq + 1);
        header_->count = count;
        header_->published_unix_ns = published_unix_ns;
        header_->seq.store(seq + 2);
    }
    static dp::NeighEntry make(std::uint32_t ip, std::uint8_t state, std::uint8_t last_mac_byte, std::uint32_t probes = 0,
                               std::uint32_t queued = 0) {
        dp::NeighEntry e{};
        e.ip = ip;
        e.state = state;
        if (last_mac_byte != 0) {
            const std::uint8_t mac[6] = {0x02, 0, 0, 0, 0, last_mac_byte};
            std::memcpy(e.mac, mac, sizeof mac);
        }
        e.probes = probes;
        e.queued = queued;
        return e;
    }

private:
    std::string path_;
    std::size_t size_ = 0;
    std::size_t map_size_ = 0;
    void* base_ = nullptr;
    dp::NeighHeader* header_ = nullptr;
};

}  // namespace podfwd::control::testing
