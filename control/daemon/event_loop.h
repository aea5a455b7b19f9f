// A small epoll loop: callbacks per readable fd, one thread, no timers but
// the wait's timeout (the daemon's periodic work runs after every wait).
#pragma once

#include <functional>
#include <unordered_map>

#include "common/result.h"

namespace podfwd::control {

class EventLoop {
public:
    using Callback = std::function<void()>;

    static Result<EventLoop> create();
    EventLoop(EventLoop&& other) noexcept;
    EventLoop& operator=(EventLoop&&) = delete;
    ~EventLoop();

    Status watch(int fd, Callback on_readable);
    void unwatch(int fd);
    // Waits up to timeout_ms for readable fds and runs their callbacks.
    Status run_once(int timeout_ms);

private:
    explicit EventLoop(int epoll_fd) : epoll_fd_(epoll_fd) {}
    int epoll_fd_ = -1;
    std::unordered_map<int, Callback> callbacks_;
};

}  // namespace podfwd::control
