#include "lpm/guard_window.h"

#include "lpm/mapping.h"

#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

namespace podfwd::lpm {
Result<GuardWindow> GuardWindow::map(int fd, std::uint64_t offset, std::uint64_t bytes, std::uint64_t reach,
                                     const std::string& what) {
    const auto failure = [&what](const char* step, int err) {
        return Error{Errc::kSystem, std::string("cannot ") + step + " the " + what + " window: " + std::strerror(err)};
    };
    if (offset % kPage != 0 || bytes % kPage != 0 || bytes == 0)
        return Error{Errc::kIncompatible, "the " + what + " region is empty or not page-aligned"};
    // MAP_NORESERVE and read-only: address space, never commit charge.
    const std::uint64_t span = align_up(std::max(bytes, reach), kPage);
    const std::uint64_t reserved = span + kLargeAlign;
    void* reservation = ::mmap(nullptr, reserved, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (reservation == MAP_FAILED) {
        const int err = errno;   // building the message may change errno
        auto error = failure("reserve", err);
        if (err == ENOMEM)
            error.message += " (a table view needs 24 GiB of address space: is `ulimit -v` set?)";
        return error;
    }
    GuardWindow window;
    window.reservation_ = reservation;
    window.reservation_bytes_ = reserved;
    // The file's part on a 2 MiB boundary, as in the segment: huge pages
    // where tmpfs gives them.
    auto* start = reinterpret_cast<std::byte*>(align_up(reinterpret_cast<std::uintptr_t>(reservation), kLargeAlign));
    void* data = ::mmap(start, bytes, PROT_READ, MAP_SHARED | MAP_FIXED, fd, static_cast<off_t>(offset));
    if (data == MAP_FAILED)
        return failure("map", errno);
    ::madvise(data, bytes, MADV_HUGEPAGE);
    window.data_ = data;
    window.guard_ = truncation_guard::add(data, bytes, nullptr, 0);
    return window;
}

GuardWindow& GuardWindow::operator=(GuardWindow&& other) noexcept {
    if (this != &other) {
        reset();
        reservation_ = std::exchange(other.reservation_, nullptr);
        reservation_bytes_ = std::exchange(other.reservation_bytes_, 0);
        data_ = std::exchange(other.data_, nullptr);
        guard_ = std::exchange(other.guard_, truncation_guard::kNone);
    }
    return *this;
}

void GuardWindow::reset() noexcept {
    truncation_guard::remove(guard_);
    guard_ = truncation_guard::kNone;
    if (reservation_ != nullptr)
        ::munmap(reservation_, reservation_bytes_);
    reservation_ = nullptr;
    data_ = nullptr;
}

}  // namespace podfwd::lpm
