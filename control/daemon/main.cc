// podfwd-control: the route table's only writer. See control/README.md.
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <cstring>

#include "control/daemon/control.h"
#include "control/daemon/event_loop.h"
#include "control/daemon/server.h"

using namespace podfwd;
using namespace podfwd::control;

namespace {

// Signals arrive as readable events on the loop, never as handlers that
// interrupt the RIB half-way through a change.
int block_signals_into_fd() {
    sigset_t set;
    sigemptyset(&set);
    for (int s : {SIGHUP, SIGINT, SIGTERM})
        sigaddset(&set, s);
    sigprocmask(SIG_BLOCK, &set, nullptr);
    ::signal(SIGPIPE, SIG_IGN);
    return ::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

int fail(const std::string& message) {
    spdlog::error("{}", message);
    return 1;
}

}  // namespace

int main(int argc, char** argv) {
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ podfwd-control: %v");
    auto parsed = parse_daemon_options(argc, argv);
    if (!parsed) {
        std::fprintf(stderr, "podfwd-control: %s\n", parsed.error().message.c_str());
        return 2;
    }
    if (parsed->help) {
        std::printf("%s", daemon_usage().c_str());
        return 0;
    }
    const DaemonOptions& options = parsed->options;
    spdlog::set_level(spdlog::level::from_str(options.log_level));

    const int signal_fd = block_signals_into_fd();
    if (signal_fd < 0)
        return fail(std::string("signalfd: ") + std::strerror(errno));
    auto loop = EventLoop::create();
    if (!loop)
        return fail(loop.error().message);

    auto control = Control::start(options);
    if (!control)
        return fail(control.error().message);
    Control& c = **control;

    auto server = Server::listen(options.socket, *loop, [&c](std::string_view request) { return c.handle_line(request); });
    if (!server)
        return fail(server.error().message);

    bool running = true;
    auto watched = loop->watch(signal_fd, [&] {
        signalfd_siginfo info{};
        while (::read(signal_fd, &info, sizeof info) == sizeof info) {
            if (info.ssi_signo == SIGHUP) {
                spdlog::info("SIGHUP: re-reading the static routes");
                c.reload_static();
            } else {
                spdlog::info("{}: stopping; the table stays as it is for the dataplane", strsignal(static_cast<int>(info.ssi_signo)));
                running = false;
            }
        }
    });
    if (!watched)
        return fail(watched.error().message);
    for (SourceFd& source : c.source_fds())
        if (auto s = loop->watch(source.fd, std::move(source.on_readable)); !s)
            return fail(s.error().message);

    spdlog::info("node {} on {}, listening on {}", format_ipv4(options.node.node_ip), options.node.uplink.str(),
                 options.socket);
    // The periodic work (the CLI's fsync, retries of refused routes) runs
    // on a timer, so the loop sleeps until something happens.
    auto ticker = loop->add_timer(std::chrono::milliseconds(200), std::chrono::milliseconds(200), [&c] { c.tick(); });
    if (!ticker)
        return fail(ticker.error().message);
    // The dataplane's resolved neighbours: a load of the segment's sequence
    // when nothing changed, so a MAC reaches the next-hop records within 100 ms.
    auto neighbours = loop->add_timer(Control::kNeighbourPoll, Control::kNeighbourPoll, [&c] { c.poll_neighbours(); });
    if (!neighbours)
        return fail(neighbours.error().message);
    while (running) {
        if (auto s = loop->run_once(-1); !s)
            return fail(s.error().message);
    }
    c.stop();   // the CLI's last changes, etcd's and BGP's routes reach the disk
    ::close(signal_fd);
    return 0;
}
