// A connection to podfwd-control's Unix socket (control/PROTOCOL.md): one
// JSON object per line each way. Every wait is bounded, so podfwdctl never
// hangs on a stuck daemon.
#pragma once

#include <chrono>
#include <string>

#include <nlohmann/json.hpp>

#include "common/result.h"

namespace podfwd::ctl {

inline constexpr std::chrono::milliseconds kDaemonTimeout{5000};

class Client {
public:
    // Errors are one line naming the socket, e.g. "cannot reach podfwd-control
    // at /run/podfwd/podfwd.sock: No such file or directory (is it running?)".
    static Result<Client> connect(const std::string& socket_path, std::chrono::milliseconds timeout = kDaemonTimeout);

    Client(Client&& other) noexcept;
    Client& operator=(Client&&) = delete;
    Client(const Client&) = delete;
    ~Client();

    // The daemon's response object, "ok" true or false alike; an error only
    // when the exchange itself fails or the answer is not a response.
    Result<nlohmann::json> call(const nlohmann::json& request);

private:
    Client(int fd, std::string socket_path, std::chrono::milliseconds timeout) noexcept;

    Status send_line(const std::string& line);
    Result<std::string> receive_line();

    int fd_ = -1;
    std::string socket_path_;
    std::chrono::milliseconds timeout_;
    std::string pending_;   // received bytes after the last complete line
};

}  // namespace podfwd::ctl
