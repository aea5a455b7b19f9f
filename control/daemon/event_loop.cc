#include "control/daemon/event_loop.h"

#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace podfwd::control {

namespace {

Error system_error(const char* what) { return Error{Errc::kSystem, std::string(what) + ": " + std::strerror(errno)}; }

// An event carries the fd and the generation of the watch it was fetched for.
std::uint64_t event_key(int fd, std::uint32_t generation) {
    return (std::uint64_t{generation} << 32) | static_cast<std::uint32_t>(fd);
}

timespec to_timespec(std::chrono::milliseconds ms) {
    const auto count = ms.count() < 0 ? 0 : ms.count();
    return timespec{static_cast<time_t>(count / 1000), static_cast<long>(count % 1000) * 1'000'000};
}

}  // namespace

Result<EventLoop> EventLoop::create() {
    const int fd = ::epoll_create1(EPOLL_CLOEXEC);
    if (fd < 0)
        return system_error("epoll_create1");
    return EventLoop(fd);
}

// The loop's own callbacks capture no pointer to the loop, so moving it
// (out of create()'s Result, say) leaves nothing dangling.
EventLoop::EventLoop(EventLoop&& other) noexcept
    : epoll_fd_(std::exchange(other.epoll_fd_, -1)),
      next_generation_(other.next_generation_),
      watches_(std::move(other.watches_)),
      timers_(std::move(other.timers_)) {
    other.watches_.clear();
    other.timers_.clear();
}

EventLoop::~EventLoop() {
    for (const auto& [id, timer_fd] : timers_)
        ::close(timer_fd);
    if (epoll_fd_ >= 0)
        ::close(epoll_fd_);
}

Status EventLoop::watch(int fd, Callback on_readable) {
    return watch_io(fd, EPOLLIN, [on_readable = std::move(on_readable)](std::uint32_t) { on_readable(); });
}

Status EventLoop::watch_io(int fd, std::uint32_t events, IoCallback callback) {
    return add_watch(fd, events, std::move(callback), Kind::kIo);
}

Status EventLoop::add_watch(int fd, std::uint32_t events, IoCallback callback, Kind kind) {
    const std::uint32_t generation = next_generation_++;
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = event_key(fd, generation);
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0)
        return system_error("epoll_ctl(add)");
    watches_[fd] = Watch{std::move(callback), generation, kind};
    return ok();
}

Status EventLoop::modify(int fd, std::uint32_t events) {
    const auto it = watches_.find(fd);
    if (it == watches_.end())
        return Error{Errc::kNotFound, "fd " + std::to_string(fd) + " is not watched"};
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = event_key(fd, it->second.generation);
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev) != 0)
        return system_error("epoll_ctl(modify)");
    return ok();
}

void EventLoop::unwatch(int fd) {
    // Fails harmlessly when fd was closed already (which left the epoll set).
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
    watches_.erase(fd);
}

Result<EventLoop::TimerId> EventLoop::add_timer(std::chrono::milliseconds first, std::chrono::milliseconds interval,
                                                Callback callback) {
    const int fd = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (fd < 0)
        return system_error("timerfd_create");
    itimerspec spec{};
    spec.it_interval = to_timespec(interval);
    spec.it_value = to_timespec(first);
    if (spec.it_value.tv_sec == 0 && spec.it_value.tv_nsec == 0)
        spec.it_value.tv_nsec = 1;   // zero would disarm the timer; "now" is meant
    if (::timerfd_settime(fd, 0, &spec, nullptr) != 0) {
        auto error = system_error("timerfd_settime");
        ::close(fd);
        return error;
    }
    const Kind kind = interval.count() > 0 ? Kind::kPeriodicTimer : Kind::kOneShotTimer;
    if (auto s = add_watch(fd, EPOLLIN, [callback = std::move(callback)](std::uint32_t) { callback(); }, kind); !s) {
        ::close(fd);
        return std::move(s).error();
    }
    timers_[fd] = fd;
    return fd;
}

void EventLoop::cancel(TimerId timer) {
    const auto it = timers_.find(timer);
    if (it == timers_.end())
        return;
    const int fd = it->second;
    timers_.erase(it);
    unwatch(fd);
    ::close(fd);
}

Status EventLoop::run_once(int timeout_ms) {
    epoll_event events[64];
    const int n = ::epoll_wait(epoll_fd_, events, 64, timeout_ms);
    if (n < 0)
        return errno == EINTR ? ok() : system_error("epoll_wait");
    for (int i = 0; i < n; ++i) {
        const int fd = static_cast<int>(static_cast<std::uint32_t>(events[i].data.u64));
        const auto generation = static_cast<std::uint32_t>(events[i].data.u64 >> 32);
        // A callback earlier in this batch may have unwatched fd, closed it,
        // and even watched a new fd of the same number: skip the stale event.
        const auto it = watches_.find(fd);
        if (it == watches_.end() || it->second.generation != generation)
            continue;
        const Kind kind = it->second.kind;
        if (kind != Kind::kIo) {
            // Once per wake, however many intervals passed; nothing to read
            // means the timer did not expire after all.
            std::uint64_t expirations = 0;
            if (::read(fd, &expirations, sizeof expirations) != static_cast<ssize_t>(sizeof expirations))
                continue;
        }
        IoCallback callback = it->second.callback;   // a copy: the callback may unwatch itself
        callback(events[i].events);
        // A one-shot timer goes once it fired, unless its callback cancelled
        // it already (and maybe added a timer that re-uses its fd number).
        if (kind == Kind::kOneShotTimer) {
            const auto again = watches_.find(fd);
            if (again != watches_.end() && again->second.generation == generation)
                cancel(fd);
        }
    }
    return ok();
}

}  // namespace podfwd::control
