#include "control/daemon/server.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

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

const char* file_kind(mode_t mode) noexcept {
    return S_ISREG(mode) ? "a regular file" : S_ISLNK(mode) ? "a symlink" : S_ISDIR(mode) ? "a directory" : "not a socket";
}

// A socket a dead daemon left is replaced; anything else at the path (a
// file, a symlink to one, a directory) is someone's, never unlinked.
Status remove_stale_socket(const std::string& path) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0)
        return errno == ENOENT ? ok() : Status(system_error("cannot check " + path));
    if (!S_ISSOCK(st.st_mode))
        return Error{Errc::kInvalidArgument, "--socket " + path + " is " + file_kind(st.st_mode) +
                                                 ", not a stale socket: refusing to replace it (remove it, or choose "
                                                 "another --socket)"};
    if (::unlink(path.c_str()) != 0 && errno != ENOENT)
        return system_error("cannot remove the stale socket " + path);
    return ok();
}

constexpr std::string_view kLineTooLong =
    R"({"ok":false,"code":"invalid_argument","error":"request line longer than 64 KiB"})" "\n";

}  // namespace

Result<std::unique_ptr<Server>> Server::listen(const std::string& path, EventLoop& loop, Handler handler,
                                               std::chrono::milliseconds idle_timeout) {
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
    if (auto s = remove_stale_socket(path); !s)
        return s.error();

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
    auto server = std::make_unique<Server>(Key{}, path, fd, loop, std::move(handler), idle_timeout);
    if (auto s = loop.watch(fd, [s = server.get()] { s->accept_clients(); }); !s)
        return s.error();
    // One timer for all clients: a client goes between idle_timeout and a
    // quarter of it (at most a second) later.
    using std::chrono::milliseconds;
    const milliseconds scan = std::clamp(idle_timeout / 4, milliseconds(10), milliseconds(1000));
    auto timer = loop.add_timer(scan, scan, [s = server.get()] { s->close_idle_clients(); });
    if (!timer)
        return timer.error();
    server->idle_timer_ = *timer;
    return server;
}

Server::Server(Key, std::string path, int fd, EventLoop& loop, Handler handler, std::chrono::milliseconds idle_timeout)
    : path_(std::move(path)), listen_fd_(fd), loop_(loop), handler_(std::move(handler)), idle_timeout_(idle_timeout) {}

Server::~Server() {
    loop_.cancel(idle_timer_);
    for (const auto& [fd, client] : clients_) {
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
        if (clients_.size() >= kMaxClients) {
            spdlog::warn("control socket: {} clients already connected; refusing another", kMaxClients);
            ::close(fd);
            continue;
        }
        Client& client = clients_[fd];
        client.events = EPOLLIN;
        client.last_progress = Clock::now();
        if (!loop_.watch_io(fd, client.events, [this, fd](std::uint32_t events) { on_client(fd, events); })) {
            clients_.erase(fd);
            ::close(fd);
        }
    }
}

// Reads, answers, writes as far as the socket lets, then decides what to
// wait for: input while the output is within its bound, writability while
// output is pending.
void Server::on_client(int fd, std::uint32_t events) {
    const auto it = clients_.find(fd);
    if (it == clients_.end())
        return;
    Client& client = it->second;
    if ((events & EPOLLIN) && client.wants_input() && !receive(fd, client))
        return close_client(fd);
    // Answering stops at the output bound; when the socket took all of it,
    // the requests that waited are answered now (no event would come for them).
    do {
        answer_lines(client);
        if (!flush(fd, client))
            return close_client(fd);
    } while (!client.closing && client.pending_output() == 0 && client.in.find('\n') != std::string::npos);

    if (client.closing && client.pending_output() == 0) {   // its last answer is written
        discard_input(fd);
        return close_client(fd);
    }
    if ((events & (EPOLLHUP | EPOLLERR)) && !client.wants_input())
        return close_client(fd);   // the peer is gone: nobody reads what is left
    const std::uint32_t wanted = (client.wants_input() ? EPOLLIN : 0u) | (client.pending_output() > 0 ? EPOLLOUT : 0u);
    if (wanted != client.events) {
        if (!loop_.modify(fd, wanted))
            return close_client(fd);
        client.events = wanted;
    }
}

// One read per wake (level-triggered: more comes next time), so that one
// busy client does not keep the others waiting. False: the connection broke.
bool Server::receive(int fd, Client& client) {
    char buf[16384];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n > 0) {
        client.in.append(buf, static_cast<std::size_t>(n));
        client.last_progress = Clock::now();
    } else if (n == 0) {
        client.eof = true;
    } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        return false;
    }
    return true;
}

// A Unix socket closed with unread data resets its peer: the client would
// read ECONNRESET after our last answer rather than EOF. So what it sent
// after a refused line is read and dropped first (what is there now, up to
// 1 MiB).
void Server::discard_input(int fd) {
    char buf[16384];
    for (int i = 0; i < 64; ++i)
        if (::recv(fd, buf, sizeof buf, MSG_DONTWAIT) <= 0)
            return;
}

// Answers the whole lines received, in order, while the output is within its
// bound; then what is left: the start of a line already too long to accept,
// or a last request the client ended with EOF rather than '\n'.
void Server::answer_lines(Client& client) {
    std::size_t start = 0;
    while (!client.closing && client.pending_output() <= kMaxPendingOutput) {
        const std::size_t eol = client.in.find('\n', start);
        if (eol == std::string::npos) {
            const std::size_t rest = client.in.size() - start;
            if (rest > kMaxLine) {
                refuse_long_line(client);
            } else if (client.eof) {
                if (rest > 0)
                    answer(client, std::string_view(client.in).substr(start));
                client.closing = true;
            }
            break;
        }
        if (eol - start > kMaxLine)
            refuse_long_line(client);
        else
            answer(client, std::string_view(client.in).substr(start, eol - start));
        start = eol + 1;
    }
    if (client.closing)
        client.in.clear();
    else
        client.in.erase(0, start);
}

void Server::answer(Client& client, std::string_view request) {
    try {
        client.out += handler_(request);
    } catch (const std::exception& e) {   // out of memory building a huge answer, say
        spdlog::error("control socket: request failed: {}", e.what());
        client.out += R"({"ok":false,"code":"system","error":"the daemon could not answer this request"})";
    }
    client.out += '\n';
}

// Where such a line ends cannot be known without reading it whole: the
// client gets the reason, and the connection closes once that is written.
void Server::refuse_long_line(Client& client) {
    client.out += kLineTooLong;
    client.closing = true;
}

// Writes what the socket takes now. False: the client is gone.
bool Server::flush(int fd, Client& client) {
    while (client.sent < client.out.size()) {
        const ssize_t n = ::send(fd, client.out.data() + client.sent, client.out.size() - client.sent,
                                 MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            client.sent += static_cast<std::size_t>(n);
            client.last_progress = Clock::now();
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        return false;
    }
    // Written bytes are dropped once they are half the buffer, so a partial
    // write does not move the rest every time; a big answer's memory is not
    // kept for the rest of the connection.
    if (client.sent == client.out.size()) {
        if (client.out.capacity() > kMaxLine)
            std::string().swap(client.out);
        client.out.clear();
        client.sent = 0;
    } else if (client.sent > client.out.size() / 2) {
        client.out.erase(0, client.sent);
        client.sent = 0;
    }
    return true;
}

// A client that has sent nothing and had nothing written for idle_timeout_
// goes: one that is merely idle, and one that stopped reading its answers
// (its requests wait unread once its output passes the bound, so it cannot
// look busy by sending).
void Server::close_idle_clients() {
    const auto now = Clock::now();
    std::vector<int> idle;
    for (const auto& [fd, client] : clients_)
        if (now - client.last_progress >= idle_timeout_)
            idle.push_back(fd);
    for (const int fd : idle) {
        if (const std::size_t pending = clients_.at(fd).pending_output(); pending > 0)
            spdlog::warn("control socket: closing a client that read nothing for {} ms ({} bytes of answers unread)",
                         idle_timeout_.count(), pending);
        else
            spdlog::debug("control socket: closing a client idle for {} ms", idle_timeout_.count());
        close_client(fd);
    }
}

void Server::close_client(int fd) {
    loop_.unwatch(fd);
    clients_.erase(fd);
    ::close(fd);
}

}  // namespace podfwd::control
