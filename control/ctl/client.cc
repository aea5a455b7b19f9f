#include "control/ctl/client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace podfwd::ctl {

namespace {

// A guard against a peer that never sends a newline, not a protocol limit:
// route.list pages keep responses to a few MB (an older daemon that does
// not page sends the whole RIB in one).
constexpr std::size_t kMaxResponseBytes = std::size_t{256} << 20;

std::string seconds_text(std::chrono::milliseconds timeout) {
    const auto ms = timeout.count();
    return ms % 1000 == 0 ? std::to_string(ms / 1000) + " s" : std::to_string(ms) + " ms";
}

Error unreachable(const std::string& path, int error) {
    std::string message = "cannot reach podfwd-control at " + path + ": " + std::strerror(error);
    if (error == ENOENT || error == ECONNREFUSED)
        message += " (is it running?)";
    else if (error == EACCES || error == EPERM)
        message += " (the socket is root's: run as root)";
    return Error{Errc::kSystem, std::move(message)};
}

}  // namespace

Client::Client(int fd, std::string socket_path, std::chrono::milliseconds timeout) noexcept
    : fd_(fd), socket_path_(std::move(socket_path)), timeout_(timeout) {}

Client::Client(Client&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), socket_path_(std::move(other.socket_path_)), timeout_(other.timeout_),
      pending_(std::move(other.pending_)) {}

Client::~Client() {
    if (fd_ >= 0)
        close(fd_);
}

Result<Client> Client::connect(const std::string& socket_path, std::chrono::milliseconds timeout) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (socket_path.empty() || socket_path.size() >= sizeof address.sun_path)
        return Error{Errc::kInvalidArgument, "socket path '" + socket_path + "' is empty or too long"};
    std::memcpy(address.sun_path, socket_path.data(), socket_path.size());

    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return Error{Errc::kSystem, std::string("socket: ") + std::strerror(errno)};
    Client client(fd, socket_path, timeout);
    // A blocking connect on a Unix socket waits (for a full backlog) at most
    // the send timeout, and so does every write.
    const timeval tv{static_cast<time_t>(timeout.count() / 1000),
                     static_cast<suseconds_t>(timeout.count() % 1000 * 1000)};
    if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0)
        return Error{Errc::kSystem, std::string("setsockopt: ") + std::strerror(errno)};
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
        if (errno == EAGAIN || errno == EINPROGRESS)
            return Error{Errc::kSystem, "cannot reach podfwd-control at " + socket_path + ": no answer within " +
                                            seconds_text(timeout) + " (is it stuck?)"};
        return unreachable(socket_path, errno);
    }
    return client;
}

Status Client::send_line(const std::string& line) {
    std::string_view rest = line;
    while (!rest.empty()) {
        const ssize_t sent = send(fd_, rest.data(), rest.size(), MSG_NOSIGNAL);
        if (sent < 0 && errno == EINTR)
            continue;
        if (sent < 0) {
            const bool timed_out = errno == EAGAIN || errno == EWOULDBLOCK;
            return Error{Errc::kSystem, "sending to podfwd-control at " + socket_path_ + ": " +
                                            (timed_out ? "timed out after " + seconds_text(timeout_)
                                                       : std::string(std::strerror(errno)))};
        }
        rest.remove_prefix(static_cast<std::size_t>(sent));
    }
    return ok();
}

Result<std::string> Client::receive_line() {
    const auto deadline = std::chrono::steady_clock::now() + timeout_;
    for (;;) {
        if (const auto newline = pending_.find('\n'); newline != std::string::npos) {
            std::string line = pending_.substr(0, newline);
            pending_.erase(0, newline + 1);
            return line;
        }
        if (pending_.size() > kMaxResponseBytes)
            return Error{Errc::kSystem, "podfwd-control at " + socket_path_ + " sent an over-long response"};
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        pollfd readable{fd_, POLLIN, 0};
        const int ready = left.count() > 0 ? poll(&readable, 1, static_cast<int>(left.count())) : 0;
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready == 0)
            return Error{Errc::kSystem,
                         "podfwd-control at " + socket_path_ + " did not answer within " + seconds_text(timeout_)};
        char chunk[65536];
        const ssize_t got = ready < 0 ? -1 : recv(fd_, chunk, sizeof chunk, 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return Error{Errc::kSystem,
                         "receiving from podfwd-control at " + socket_path_ + ": " + std::strerror(errno)};
        if (got == 0)
            return Error{Errc::kSystem, "podfwd-control at " + socket_path_ +
                                            " closed the connection without answering"
                                            " (it accepts root and its own user only)"};
        pending_.append(chunk, static_cast<std::size_t>(got));
    }
}

Result<nlohmann::json> Client::call(const nlohmann::json& request) {
    if (auto sent = send_line(request.dump() + '\n'); !sent)
        return std::move(sent).error();
    auto line = receive_line();
    if (!line)
        return std::move(line).error();
    nlohmann::json response = nlohmann::json::parse(*line, nullptr, /*allow_exceptions=*/false);
    if (response.is_discarded() || !response.is_object() || !response.contains("ok") || !response["ok"].is_boolean())
        return Error{Errc::kSystem, "podfwd-control at " + socket_path_ + " sent a malformed response: " +
                                        line->substr(0, 200)};
    return response;
}

}  // namespace podfwd::ctl
