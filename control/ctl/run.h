// podfwdctl as a function: arguments and environment in, text and an exit
// status out, so that tests run every command without a process.
#pragma once

#include <chrono>
#include <optional>
#include <ostream>
#include <span>
#include <string>

#include "control/ctl/client.h"

namespace podfwd::ctl {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;   // the daemon said no, or the daemon or dataplane is not there
inline constexpr int kExitUsage = 2;    // the command line is wrong; nothing was sent

struct Environment {
    std::optional<std::string> socket_env;   // PODFWD_SOCKET
    std::string shm_dir = "/dev/shm";
    std::chrono::milliseconds daemon_timeout = kDaemonTimeout;
};

// args excludes the program name. Errors: one line "podfwdctl: ..." on err.
int run(std::span<const std::string> args, const Environment& environment, std::ostream& out, std::ostream& err);

}  // namespace podfwd::ctl
