#include "control/daemon/event_loop.h"

#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

namespace podfwd::control {

namespace {
Error system_error(const char* what) { return Error{Errc::kSystem, std::string(what) + ": " + std::strerror(errno)}; }
}  // namespace

Result<EventLoop> EventLoop::create() {
    const int fd = ::epoll_create1(EPOLL_CLOEXEC);
    if (fd < 0)
        return system_error("epoll_create1");
    return EventLoop(fd);
}

EventLoop::EventLoop(EventLoop&& other) noexcept
    : epoll_fd_(std::exchange(other.epoll_fd_, -1)), callbacks_(std::move(other.callbacks_)) {}

EventLoop::~EventLoop() {
    if (epoll_fd_ >= 0)
        ::close(epoll_fd_);
}

Status EventLoop::watch(int fd, Callback on_readable) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0)
        return system_error("epoll_ctl");
    callbacks_[fd] = std::move(on_readable);
    return ok();
}

void EventLoop::unwatch(int fd) {
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
    callbacks_.erase(fd);
}

Status EventLoop::run_once(int timeout_ms) {
    epoll_event events[32];
    const int n = ::epoll_wait(epoll_fd_, events, 32, timeout_ms);
    if (n < 0)
        return errno == EINTR ? ok() : system_error("epoll_wait");
    for (int i = 0; i < n; ++i) {
        // A callback may unwatch (close) another fd of this batch.
        auto it = callbacks_.find(events[i].data.fd);
        if (it == callbacks_.end())
            continue;
        Callback callback = it->second;   // a copy: the callback may unwatch itself
        callback();
    }
    return ok();
}

}  // namespace podfwd::control
