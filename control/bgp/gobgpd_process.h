// gobgpd run as podfwd-control's child: its API on a Unix socket of ours,
// its log in a file, and SIGKILL for it when we die (PR_SET_PDEATHSIG), so
// a podfwd-control killed -9 leaves no gobgpd holding the BGP port.
//
// gobgpd is always ended with SIGKILL: on SIGTERM it closes every session
// with a Cease NOTIFICATION, after which peers drop this node's routes at
// once; a session that just ends lets the peers that negotiated graceful
// restart keep them while podfwd-control (and its gobgpd) restart.
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
    ~GobgpdProcess() { stop(); }

    pid_t pid() const noexcept { return pid_; }
    bool running() const noexcept { return pid_ > 0; }
    // Non-blocking: when it has exited, how ("exited with 1", "killed by signal 9"); it is then reaped.
    std::optional<std::string> exited();
    // SIGKILL, reaped.
    void stop();

private:
    explicit GobgpdProcess(pid_t pid) : pid_(pid) {}
    pid_t pid_ = -1;
};

}  // namespace podfwd::control::bgp
