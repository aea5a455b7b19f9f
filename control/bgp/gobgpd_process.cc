#include "control/bgp/gobgpd_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace podfwd::control::bgp {

namespace {

std::string describe_status(int status) {
    if (WIFEXITED(status))
        return "exited with " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status))
        return std::string("killed by ") + strsignal(WTERMSIG(status));
    return "stopped";
}

}  // namespace

Result<GobgpdProcess> GobgpdProcess::spawn(const std::string& binary, const std::string& api_socket,
                                           const std::string& log) {
    // A socket file left by a gobgpd that died would make the new one fail to listen.
    ::unlink(api_socket.c_str());
    const std::string api = "--api-hosts=unix://" + api_socket;
    // Everything the child needs is built before fork: after it, only
    // async-signal-safe calls (we have threads).
    std::vector<const char*> argv = {binary.c_str(), api.c_str(), "--pprof-disable", "--log-plain",
                                     "--log-level=info", nullptr};
    const int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0640);
    if (log_fd < 0)
        return Error{Errc::kSystem, "gobgpd's log " + log + ": " + std::strerror(errno)};
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) {
        const int e = errno;
        ::close(log_fd);
        return Error{Errc::kSystem, std::string("fork: ") + std::strerror(e)};
    }
    if (pid == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != parent)   // the parent died before prctl
            ::_exit(1);
        // The daemon blocks these for its signalfd; gobgpd must see them.
        sigset_t all;
        sigfillset(&all);
        ::sigprocmask(SIG_UNBLOCK, &all, nullptr);
        ::signal(SIGPIPE, SIG_DFL);
        const int null_fd = ::open("/dev/null", O_RDONLY);
        if (null_fd >= 0)
            ::dup2(null_fd, 0);
        ::dup2(log_fd, 1);
        ::dup2(log_fd, 2);
        // Other threads' descriptors opened without O_CLOEXEC are not gobgpd's.
        ::close_range(3, ~0U, 0);
        ::execvp(argv[0], const_cast<char* const*>(argv.data()));
        const char msg[] = "podfwd-control: cannot execute gobgpd\n";
        [[maybe_unused]] auto n = ::write(2, msg, sizeof msg - 1);
        ::_exit(127);
    }
    ::close(log_fd);
    return GobgpdProcess(pid);
}

GobgpdProcess& GobgpdProcess::operator=(GobgpdProcess&& other) noexcept {
    if (this != &other) {
        stop();
        pid_ = std::exchange(other.pid_, -1);
    }
    return *this;
}

std::optional<std::string> GobgpdProcess::exited() {
    if (pid_ <= 0)
        return "not running";
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == 0)
        return std::nullopt;
    pid_ = -1;
    return r < 0 ? std::string("lost: ") + std::strerror(errno) : describe_status(status);
}

void GobgpdProcess::stop() {
    if (pid_ <= 0)
        return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
}

}  // namespace podfwd::control::bgp
