// A reader's segment mapping outlives a file truncated under it: the pages
// past the new end fault with SIGBUS. The guard turns that into a condition
// the reader can poll: a process-wide SIGBUS handler that, for a fault inside
// a registered mapping (a view registers three: the segment and its two guard
// windows, guard_window.h), replaces that mapping in place with anonymous
// zero pages (the reader-slot part writable again) and marks it truncated;
// the faulting load then re-executes and reads zeros, which every structure
// of the segment reads as "no route" / "no record" (layout.h). Faults
// anywhere else get the action installed before the guard (default: death).
// Internal to lpm/.
#pragma once

#include <cstddef>

namespace podfwd::lpm::truncation_guard {

// A registration; kNone when the table of registrations is full (the mapping
// is then unguarded, as before the guard existed).
using Handle = int;
inline constexpr Handle kNone = -1;

// [base, base + size) read-only, [writable, writable + writable_size) within
// it read-write. Installs the handler on first use.
Handle add(void* base, std::size_t size, void* writable, std::size_t writable_size) noexcept;
// Before the mapping is unmapped.
void remove(Handle handle) noexcept;
// Whether a fault replaced the mapping.
bool truncated(Handle handle) noexcept;

}  // namespace podfwd::lpm::truncation_guard
