// A read-only window onto one region of the segment file, placed at the start
// of a reservation of zero pages as large as every index a reader can form
// into that region (layout.h: kLeafWindowBytes, kGroupWindowBytes). Loads
// through it need no bounds check: past the file's region they read zeros,
// which the trie reads as "no route". The price is address space (16 GiB for
// the leaves, 8 GiB for the groups, per open view), not memory: the zero
// pages are the kernel's shared zero page, and a corrupt segment can at most
// make page tables for what it makes readers touch.
// WebAssembly runtimes elide their bounds checks the same way.
// Internal to lpm/.
#pragma once

#include <cstdint>
#include <string>

#include "common/result.h"
#include "lpm/truncation_guard.h"

namespace podfwd::lpm {

class GuardWindow {
public:
    // The file's bytes [offset, offset + bytes) (page-aligned), readable at
    // data() .. data() + max(bytes, reach).
    static Result<GuardWindow> map(int fd, std::uint64_t offset, std::uint64_t bytes, std::uint64_t reach,
                                   const std::string& what);

    GuardWindow() = default;
    GuardWindow(GuardWindow&& other) noexcept { *this = std::move(other); }
    GuardWindow& operator=(GuardWindow&& other) noexcept;
    GuardWindow(const GuardWindow&) = delete;
    GuardWindow& operator=(const GuardWindow&) = delete;
    ~GuardWindow() { reset(); }

    const void* data() const noexcept { return data_; }
    // The truncation guard replaced the file's part with zeros.
    bool truncated() const noexcept { return truncation_guard::truncated(guard_); }

private:
    void reset() noexcept;

    void* reservation_ = nullptr;
    std::uint64_t reservation_bytes_ = 0;
    void* data_ = nullptr;
    truncation_guard::Handle guard_ = truncation_guard::kNone;
};

}  // namespace podfwd::lpm
