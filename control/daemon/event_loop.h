// The daemon's one thread: an epoll loop with callbacks per fd (readable,
// writable), and timers (timerfd). Nothing in it blocks but the wait.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <unordered_map>

#include "common/result.h"

namespace podfwd::control {

class EventLoop {
public:
    using Callback = std::function<void()>;
    // Called with the epoll events that fired (EPOLLIN, EPOLLOUT, EPOLLERR, EPOLLHUP).
    using IoCallback = std::function<void(std::uint32_t events)>;
    using TimerId = int;

    static Result<EventLoop> create();
    EventLoop(EventLoop&& other) noexcept;
    EventLoop& operator=(EventLoop&&) = delete;
    ~EventLoop();

    // on_readable runs while fd is readable (level-triggered).
    Status watch(int fd, Callback on_readable);
    // `events`: EPOLLIN and/or EPOLLOUT; change them with modify().
    Status watch_io(int fd, std::uint32_t events, IoCallback callback);
    Status modify(int fd, std::uint32_t events);
    void unwatch(int fd);

    // Runs `callback` after `first`, then every `interval` (zero: once).
    // The id stays valid until cancel() or a one-shot timer has fired.
    Result<TimerId> add_timer(std::chrono::milliseconds first, std::chrono::milliseconds interval,
                              Callback callback);
    void cancel(TimerId timer);

    // Waits up to timeout_ms (-1: until something happens) and runs the
    // callbacks of what happened.
    Status run_once(int timeout_ms = -1);

private:
    enum class Kind { kIo, kPeriodicTimer, kOneShotTimer };
    struct Watch {
        IoCallback callback;
        // Tells this watch from an earlier one of the same fd number: an
        // event fetched before the fd was unwatched (and maybe closed and
        // re-used) is not delivered to the new watch.
        std::uint32_t generation = 0;
        Kind kind = Kind::kIo;
    };

    explicit EventLoop(int epoll_fd) : epoll_fd_(epoll_fd) {}
    Status add_watch(int fd, std::uint32_t events, IoCallback callback, Kind kind);

    int epoll_fd_ = -1;
    std::uint32_t next_generation_ = 0;
    std::unordered_map<int, Watch> watches_;
    std::unordered_map<TimerId, int> timers_;   // id -> timerfd (the id is the fd)
};

}  // namespace podfwd::control
