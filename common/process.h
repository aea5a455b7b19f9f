// Other processes as the segments in /dev/shm name them: the pid in a
// segment's file name (`<table>.stats.<pid>`, `<table>.neigh.<pid>`) and
// whether that process still runs.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace podfwd {

// The decimal pid after `prefix` in `file_name`, the whole rest of it; none
// when the rest is empty, not a number, or 0.
std::optional<std::uint32_t> pid_suffix(std::string_view file_name, std::string_view prefix) noexcept;

// Whether `pid` runs: kill(pid, 0) succeeds for a zombie too, and a
// dataplane killed but not yet reaped is as dead as one that is gone. Never
// signals 0 or a pid that turns negative (those name process groups).
bool process_alive(std::uint32_t pid);

}  // namespace podfwd
