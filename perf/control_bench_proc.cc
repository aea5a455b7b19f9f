#include "perf/control_bench_proc.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace podfwd::perf {

namespace {

// The registry the signal handler reads: fixed arrays, no allocation.
constexpr std::size_t kSlots = 16;
constexpr std::size_t kPathMax = 256;
std::array<volatile pid_t, kSlots> g_pids{};
std::array<std::array<char, kPathMax>, kSlots> g_segments{};   // "/name" for shm_unlink
std::array<std::array<char, kPathMax>, kSlots> g_files{};      // unlinked, in order
std::array<std::array<char, kPathMax>, kSlots> g_dirs{};       // removed (empty by then), last first
char g_tmpdir[kPathMax] = {};

void on_signal(int sig) {
    for (const pid_t pid : g_pids)
        if (pid > 0)
            ::kill(pid, SIGKILL);
    for (const auto& name : g_segments)
        if (name[0] != '\0')
            ::shm_unlink(name.data());
    for (const auto& file : g_files)
        if (file[0] != '\0')
            ::unlink(file.data());
    for (auto dir = g_dirs.rbegin(); dir != g_dirs.rend(); ++dir)
        if ((*dir)[0] != '\0')
            ::rmdir(dir->data());
    if (g_tmpdir[0] != '\0')
        ::rmdir(g_tmpdir);
    ::signal(sig, SIG_DFL);
    ::raise(sig);
}

void set_slot(std::array<char, kPathMax>& slot, const std::string& text) {
    if (text.size() + 1 > kPathMax)
        throw std::runtime_error("path too long: " + text);
    std::memcpy(slot.data(), text.c_str(), text.size() + 1);
}

// Adds text to the first free slot (once).
void add_to(std::array<std::array<char, kPathMax>, kSlots>& slots, const std::string& text) {
    for (auto& slot : slots)
        if (text == slot.data())
            return;
    for (auto& slot : slots)
        if (slot[0] == '\0') {
            set_slot(slot, text);
            return;
        }
    throw std::runtime_error("too many paths to clean up: " + text);
}

std::string joined(const std::vector<std::string>& argv) {
    std::string s;
    for (const auto& a : argv) {
        if (!s.empty())
            s += ' ';
        s += a;
    }
    return s;
}

}  // namespace

Cleanup::Cleanup() {
    char templ[] = "/tmp/control_bench.XXXXXX";
    if (::mkdtemp(templ) == nullptr)
        throw std::runtime_error(std::string("mkdtemp: ") + std::strerror(errno));
    tmpdir_ = templ;
    std::memcpy(g_tmpdir, tmpdir_.c_str(), tmpdir_.size() + 1);
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    ::sigemptyset(&sa.sa_mask);
    ::sigaction(SIGINT, &sa, nullptr);
    ::sigaction(SIGTERM, &sa, nullptr);
    ::sigaction(SIGHUP, &sa, nullptr);
}

Cleanup::~Cleanup() {
    for (auto& pid : g_pids)
        if (pid > 0) {
            stop(pid);
            pid = 0;
        }
    for (auto& name : g_segments)
        if (name[0] != '\0') {
            ::shm_unlink(name.data());
            name[0] = '\0';
        }
    std::error_code ec;
    std::filesystem::remove_all(tmpdir_, ec);
    for (auto* slots : {&g_files, &g_dirs})
        for (auto& slot : *slots)
            slot[0] = '\0';
    g_tmpdir[0] = '\0';
}

void Cleanup::add_segment(const std::string& name) { add_to(g_segments, "/" + name); }
void Cleanup::add_file(const std::string& path) { add_to(g_files, path); }
void Cleanup::add_dir(const std::string& path) { add_to(g_dirs, path); }

void Cleanup::remove_segment(const std::string& name) {
    const std::string path = "/" + name;
    ::shm_unlink(path.c_str());
    for (auto& slot : g_segments)
        if (path == slot.data())
            slot[0] = '\0';
}

void Cleanup::add_process(pid_t pid) {
    for (auto& slot : g_pids)
        if (slot <= 0) {
            slot = pid;
            return;
        }
}

void Cleanup::forget_process(pid_t pid) {
    for (auto& slot : g_pids)
        if (slot == pid)
            slot = 0;
}

pid_t spawn(const std::vector<std::string>& argv, const std::string& log) {
    std::vector<char*> args;
    for (const auto& a : argv)
        args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    ::posix_spawn_file_actions_init(&actions);
    const char* out = log.empty() ? "/dev/null" : log.c_str();
    ::posix_spawn_file_actions_addopen(&actions, 1, out, O_WRONLY | O_CREAT | O_APPEND, 0600);
    ::posix_spawn_file_actions_adddup2(&actions, 1, 2);
    pid_t pid = 0;
    const int rc = argv[0].find('/') != std::string::npos
                       ? ::posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ)
                       : ::posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
    ::posix_spawn_file_actions_destroy(&actions);
    if (rc != 0)
        throw std::runtime_error("cannot start " + argv[0] + ": " + std::strerror(rc));
    Cleanup::add_process(pid);
    return pid;
}

bool alive(pid_t pid, int* status) {
    int st = 0;
    const pid_t r = ::waitpid(pid, &st, WNOHANG);
    if (r == pid) {
        Cleanup::forget_process(pid);
        if (status != nullptr)
            *status = st;
        return false;
    }
    return r == 0;
}

int reap(pid_t pid, std::chrono::milliseconds timeout, const std::string& what) {
    const auto deadline = Clock::now() + timeout;
    int status = 0;
    // Spin briefly (the common case: the child is about to exit), then sleep.
    for (unsigned spins = 0;; ++spins) {
        const pid_t r = ::waitpid(pid, &status, WNOHANG);
        if (r == pid)
            break;
        if (r < 0)
            throw std::runtime_error("waitpid " + what + ": " + std::strerror(errno));
        if (Clock::now() > deadline) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &status, 0);
            Cleanup::forget_process(pid);
            throw std::runtime_error(what + " did not exit within " + std::to_string(timeout.count()) + " ms");
        }
        if (spins < 1000)
            std::this_thread::yield();
        else
            std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    Cleanup::forget_process(pid);
    return status;
}

std::string describe_status(int status) {
    if (WIFEXITED(status))
        return "exit " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status))
        return "signal " + std::to_string(WTERMSIG(status));
    return "status " + std::to_string(status);
}

std::string read_file(const std::string& path, std::size_t max_bytes) {
    std::ifstream in(path);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (text.size() > max_bytes)
        text = "..." + text.substr(text.size() - max_bytes);
    return text;
}

void run(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) { (void)run_timed(argv, timeout); }

double run_timed(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
    // In the run's directory (removed at exit, also on a signal).
    const std::string log = std::string(g_tmpdir) + "/run_timed.out";
    Cleanup::add_file(log);
    ::unlink(log.c_str());
    const auto t0 = Clock::now();
    const pid_t pid = spawn(argv, log);
    const int status = reap(pid, timeout, argv[0]);
    const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    const std::string output = read_file(log);
    ::unlink(log.c_str());
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        throw std::runtime_error("'" + joined(argv) + "': " + describe_status(status) + ": " + output);
    return seconds;
}

void stop(pid_t pid, std::chrono::milliseconds timeout) {
    if (pid <= 0 || !alive(pid))
        return;
    ::kill(pid, SIGTERM);
    try {
        (void)reap(pid, timeout, "pid " + std::to_string(pid));
    } catch (const std::exception&) {
        // reap killed and reaped it
    }
}

}  // namespace podfwd::perf
