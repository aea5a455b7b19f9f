#include "control/daemon/server.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace podfwd::control {

namespace {

Error system_error(const std::string& what) { return Error{Errc::kSystem, what + ": " + std::strerror(errno)}; }

// A connect that succeeds means a daemon is alive behind the socket file.
bool someone_listens(const sockaddr_un& addr) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    const bool alive = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    return alive;
}

}  // namespace

Result<std::unique_ptr<Server>> Server::listen(const std::string& path, EventLoop& loop, Handler handler) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path)
        return Error{Errc::kInvalidArgument, "socket path '" + path + "' is too long"};
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);

    const auto dir = std::filesystem::path(path).parent_path();
    std::error_code ec;
    if (!dir.empty() && !std::filesystem::exists(dir, ec)) {
        std::filesystem::create_directories(dir, ec);
        if (ec)
            return Error{Errc::kSystem, "cannot create " + dir.string() + ": " + ec.message()};
        ::chmod(dir.c_str(), 0700);
    }
    if (someone_listens(addr))
        return Error{Errc::kBusy, "another podfwd-control is listening on " + path};
    ::unlink(path.c_str());

    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return system_error("socket");
    // The socket is born 0600: no window in which others could connect.
    const mode_t old_mask = ::umask(0177);
    const int bound = ::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
    ::umask(old_mask);
    if (bound != 0 || ::listen(fd, 16) != 0) {
        auto error = system_error("cannot listen on " + path);
        ::close(fd);
        return error;
    }
    auto server = std::make_unique<Server>(Key{}, path, fd, loop, std::move(handler));
    if (auto s = loop.watch(fd, [s = server.get()] { s->accept_clients(); }); !s)
        return s.error();
    return server;
}

Server::Server(Key, std::string path, int fd, EventLoop& loop, Handler handler)
    : path_(std::move(path)), listen_fd_(fd), loop_(loop), handler_(std::move(handler)) {}

Server::~Server() {
    for (auto& [fd, buffer] : pending_) {
        loop_.unwatch(fd);
        ::close(fd);
    }
    loop_.unwatch(listen_fd_);
    ::close(listen_fd_);
    ::unlink(path_.c_str());
}

void Server::accept_clients() {
    for (;;) {
        const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                spdlog::warn("control socket: accept: {}", std::strerror(errno));
            return;
        }
        ucred cred{};
        socklen_t len = sizeof cred;
        if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
            (cred.uid != 0 && cred.uid != ::geteuid())) {
            spdlog::warn("control socket: refused a client of uid {}", cred.uid);
            ::close(fd);
            continue;
        }
        if (pending_.size() >= kMaxClients) {
            spdlog::warn("control socket: {} clients already connected; refusing another", kMaxClients);
            ::close(fd);
            continue;
        }
        pending_.emplace(fd, std::string{});
        if (!loop_.watch(fd, [this, fd] { read_client(fd); })) {
            pending_.erase(fd);
            ::close(fd);
        }
    }
}

void Server::read_client(int fd) {
    char buf[16384];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    std::string& pending = pending_[fd];
    const bool closed = n <= 0;
    if (!closed)
        pending.append(buf, static_cast<std::size_t>(n));
    std::size_t start = 0;
    for (std::size_t eol; (eol = pending.find('\n', start)) != std::string::npos; start = eol + 1)
        if (!answer(fd, std::string_view(pending).substr(start, eol - start))) {
            close_client(fd);
            return;
        }
    pending.erase(0, start);
    // A last request without its newline still gets its answer.
    if (closed && !pending.empty())
        (void)answer(fd, pending);
    if (closed || pending.size() > kMaxLine)
        close_client(fd);
}

// One request line, one response line; false when the client must go (its
// line was too long, or it does not read).
bool Server::answer(int fd, std::string_view request) {
    if (request.size() > kMaxLine) {
        send_all(fd, R"({"ok":false,"code":"invalid_argument","error":"request line longer than 64 KiB"})" "\n");
        return false;
    }
    std::string response;
    try {
        response = handler_(request);
    } catch (const std::exception& e) {   // out of memory building a huge answer, say
        spdlog::error("control socket: request failed: {}", e.what());
        response = R"({"ok":false,"code":"system","error":"the daemon could not answer this request"})";
    }
    response += '\n';
    return send_all(fd, response);
}

// Responses are small and clients read them at once; a client that does not
// read within a second is dropped rather than allowed to stall the daemon.
bool Server::send_all(int fd, const std::string& data) {
    std::size_t sent = 0;
    while (sent < data.size()) {
        const ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
        if (n > 0) {
            sent += static_cast<std::size_t>(n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            pollfd p{fd, POLLOUT, 0};
            if (::poll(&p, 1, 1000) > 0)
                continue;
        }
        return false;
    }
    return true;
}

void Server::close_client(int fd) {
    loop_.unwatch(fd);
    pending_.erase(fd);
    ::close(fd);
}

}  // namespace podfwd::control
