// gobgpd run as podfwd-control's child: its API on a Unix socket of ours,
// its log in a file, and SIGTERM for it when we die (PR_SET_PDEATHSIG), so
// a podfwd-control killed -9 leaves no gobgpd holding the BGP port.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>

#include "common/result.h"

namespace podfwd::control::bgp {

class GobgpdProcess {
public:
    // Starts `binary --api-hosts unix://<api_socket>`; its output appended to `log`.
    static Result<GobgpdProcess> spawn(const std::string& binary, const std::string& api_socket,
                                       const std::string& log);
    GobgpdProcess() = default;
    GobgpdProcess(GobgpdProcess&& other) noexcept : pid_(std::exchange(other.pid_, -1)) {}
    GobgpdProcess& operator=(GobgpdProcess&& other) noexcept;
    ~GobgpdProcess() { stop(std::chrono::seconds(2)); }

    pid_t pid() const noexcept { return pid_; }
    bool running() const noexcept { return pid_ > 0; }
    // Non-blocking: when it has exited, how ("exited with 1", "killed by signal 9"); it is then reaped.
    std::optional<std::string> exited();
    // SIGTERM, then SIGKILL after `grace`; reaped.
    void stop(std::chrono::milliseconds grace);

private:
    explicit GobgpdProcess(pid_t pid) : pid_(pid) {}
    pid_t pid_ = -1;
};

}  // namespace podfwd::control::bgp
