#include "dataplane/app/shm_segment.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace podfwd::dp::app {

ShmSegment::ShmSegment(std::string name, void* base, std::size_t size)
    : name_(std::move(name)), path_("/dev/shm" + name_), base_(base), size_(size) {}

ShmSegment::ShmSegment(ShmSegment&& other) noexcept
    : name_(std::move(other.name_)), path_(std::move(other.path_)), base_(std::exchange(other.base_, nullptr)),
      size_(other.size_) {}

ShmSegment::~ShmSegment() {
    if (base_ == nullptr)
        return;
    munmap(base_, size_);
    shm_unlink(name_.c_str());
}

Result<ShmSegment> ShmSegment::create(const std::string& name, std::size_t size) {
    const std::string shm_name = "/" + name;
    const auto fail = [&](const char* what) {
        return Error{Errc::kSystem, std::string(what) + " /dev/shm" + shm_name + ": " + std::strerror(errno)};
    };
    shm_unlink(shm_name.c_str());
    const int fd = shm_open(shm_name.c_str(), O_RDWR | O_CREAT | O_EXCL, 0644);
    if (fd < 0)
        return fail("shm_open");
    if (ftruncate(fd, static_cast<off_t>(size)) != 0) {
        auto error = fail("ftruncate");
        close(fd);
        shm_unlink(shm_name.c_str());
        return error;
    }
    void* base = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED) {
        auto error = fail("mmap");
        close(fd);
        shm_unlink(shm_name.c_str());
        return error;
    }
    close(fd);   // the mapping keeps the memory
    return ShmSegment(shm_name, base, size);
}

}  // namespace podfwd::dp::app
