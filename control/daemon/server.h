// The control socket (control/PROTOCOL.md): a Unix stream socket, mode
// 0600, peers checked with SO_PEERCRED; one JSON request per line, one
// response per line. The handler runs on the event loop's thread.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

#include "control/daemon/event_loop.h"

namespace podfwd::control {

class Server {
public:
    // Takes one request line, returns one response line (without '\n').
    using Handler = std::function<std::string(std::string_view request)>;

    // Creates the directory (0700) and the socket; a stale socket file of a
    // dead daemon is replaced, a live daemon's is refused (kBusy).
    static Result<std::unique_ptr<Server>> listen(const std::string& path, EventLoop& loop, Handler handler);

    // Only listen() can make the key, so only listen() constructs.
    class Key {
        friend class Server;
        Key() = default;
    };
    Server(Key, std::string path, int fd, EventLoop& loop, Handler handler);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    static constexpr std::size_t kMaxLine = 64 * 1024;
    static constexpr std::size_t kMaxClients = 64;

private:
    void accept_clients();
    void read_client(int fd);
    bool answer(int fd, std::string_view request);
    void close_client(int fd);
    bool send_all(int fd, const std::string& data);

    std::string path_;
    int listen_fd_ = -1;
    EventLoop& loop_;
    Handler handler_;
    std::unordered_map<int, std::string> pending_;   // partial request line per client
};

}  // namespace podfwd::control
