#include "common/process.h"

#include <signal.h>

#include <cerrno>
#include <charconv>
#include <climits>
#include <fstream>
#include <string>

namespace podfwd {

std::optional<std::uint32_t> pid_suffix(std::string_view file_name, std::string_view prefix) noexcept {
    if (!file_name.starts_with(prefix) || file_name.size() == prefix.size())
        return std::nullopt;
    const auto digits = file_name.substr(prefix.size());
    std::uint32_t pid = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), pid);
    if (ec != std::errc{} || end != digits.data() + digits.size() || pid == 0)
        return std::nullopt;
    return pid;
}

bool process_alive(std::uint32_t pid) {
    if (pid == 0 || pid > static_cast<std::uint32_t>(INT_MAX))
        return false;
    if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH)
        return false;
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    std::getline(stat, line);
    const auto name_end = line.rfind(") ");   // "pid (comm) state ...", comm may hold anything
    return name_end == std::string::npos || name_end + 2 >= line.size() || line[name_end + 2] != 'Z';
}

}  // namespace podfwd
