// control_bench: child processes and clean-up. Every process the bench
// starts is ended by its PID; segments and the temporary directory are
// removed at exit, also when the run is interrupted (SIGINT/SIGTERM).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace podfwd::perf {

using Clock = std::chrono::steady_clock;

inline double ms_since(Clock::time_point t0, Clock::time_point t1) {
    return std::chrono::duration<double, std::milli>(t1 - t0).count();
}

// Starts argv[0] (a path, or a name looked up in PATH) with stdout and stderr
// appended to `log` ("" : /dev/null). Throws when it cannot start.
pid_t spawn(const std::vector<std::string>& argv, const std::string& log = "");
// Waits up to `timeout` for pid to exit; its wait status. On timeout the
// process is killed (SIGKILL, by PID) and reaped, and this throws.
int reap(pid_t pid, std::chrono::milliseconds timeout, const std::string& what);
// spawn + reap; throws unless it exits 0 (naming the command and its output).
void run(const std::vector<std::string>& argv, std::chrono::milliseconds timeout = std::chrono::seconds(60));
// spawn + reap, timed from before the spawn to after the reap; seconds.
double run_timed(const std::vector<std::string>& argv, std::chrono::milliseconds timeout);
// SIGTERM, a bounded wait, SIGKILL if it hangs. No-op for pid <= 0.
void stop(pid_t pid, std::chrono::milliseconds timeout = std::chrono::seconds(10));
// True while pid has not exited (reaps it if it has: *status gets its status).
bool alive(pid_t pid, int* status = nullptr);
std::string describe_status(int status);

// Clean-up registry, honoured by the destructor of Cleanup and by the signal
// handler it installs: segments (/dev/shm/<name>) unlinked, processes
// killed, the temporary directory removed.
class Cleanup {
public:
    Cleanup();
    ~Cleanup();
    Cleanup(const Cleanup&) = delete;
    Cleanup& operator=(const Cleanup&) = delete;

    // A fresh directory under /tmp; removed (recursively) at exit.
    const std::string& tmpdir() const noexcept { return tmpdir_; }
    static void add_segment(const std::string& name);
    static void remove_segment(const std::string& name);   // unlinks now
    // Files and directories inside tmpdir() that a signal must remove
    // (the handler cannot walk directories).
    static void add_file(const std::string& path);
    static void add_dir(const std::string& path);
    static void add_process(pid_t pid);
    static void forget_process(pid_t pid);

private:
    std::string tmpdir_;
};

std::string read_file(const std::string& path, std::size_t max_bytes = 4096);

}  // namespace podfwd::perf
