// The control socket (control/PROTOCOL.md): a Unix stream socket, mode
// 0600, peers checked with SO_PEERCRED; one JSON request per line, one
// response per line. The handler runs on the event loop's thread, and
// nothing waits for a client: each has an input and an output buffer, and
// the socket is read and written only as far as it is ready.
#pragma once

#include <chrono>
#include <cstdint>
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

    static constexpr std::size_t kMaxLine = 64 * 1024;
    static constexpr std::size_t kMaxClients = 64;
    // A client's responses not yet written; past it, its requests wait
    // unread until it reads (a client that never reads costs this much).
    static constexpr std::size_t kMaxPendingOutput = 4 * 1024 * 1024;
    // A client that neither sends nor reads for this long is closed.
    static constexpr std::chrono::milliseconds kDefaultIdleTimeout{60'000};

    // Creates the directory (0700) and the socket; a stale socket file of a
    // dead daemon is replaced, a live daemon's is refused (kBusy).
    static Result<std::unique_ptr<Server>> listen(const std::string& path, EventLoop& loop, Handler handler,
                                                  std::chrono::milliseconds idle_timeout = kDefaultIdleTimeout);

    // Only listen() can make the key, so only listen() constructs.
    class Key {
        friend class Server;
        Key() = default;
    };
    Server(Key, std::string path, int fd, EventLoop& loop, Handler handler, std::chrono::milliseconds idle_timeout);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

private:
    using Clock = std::chrono::steady_clock;

    struct Client {
        // Received, not answered yet: the start of the next request, and
        // whole lines while the output is over its bound.
        std::string in;
        std::string out;            // responses; out[0, sent) are written already
        std::size_t sent = 0;
        bool eof = false;           // the client shut down its sending side
        bool closing = false;       // answered all it will get: close once `out` is written
        std::uint32_t events = 0;   // what the loop watches the socket for
        Clock::time_point last_progress;   // last byte received or written

        std::size_t pending_output() const { return out.size() - sent; }
        bool wants_input() const { return !eof && !closing && pending_output() <= kMaxPendingOutput; }
    };

    void accept_clients();
    void on_client(int fd, std::uint32_t events);
    bool receive(int fd, Client& client);
    void discard_input(int fd);
    void answer_lines(Client& client);
    void answer(Client& client, std::string_view request);
    void refuse_long_line(Client& client);
    bool flush(int fd, Client& client);
    void close_idle_clients();
    void close_client(int fd);

    std::string path_;
    int listen_fd_ = -1;
    EventLoop& loop_;
    Handler handler_;
    std::chrono::milliseconds idle_timeout_;
    EventLoop::TimerId idle_timer_ = -1;
    std::unordered_map<int, Client> clients_;
};

}  // namespace podfwd::control
