// Helpers shared by the lpm test suite: Result assertions, per-test segment
// names with cleanup, a naive longest-prefix-match oracle, shared memory and
// child processes for the cross-process tests, bounded polling.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <new>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/ipv4.h"
#include "common/result.h"
#include "lpm/reader.h"
#include "lpm/types.h"
#include "lpm/writer.h"

// gtest printers (found by ADL) so failures show values, not bytes.
namespace podfwd {
inline void PrintTo(Errc e, std::ostream* os) { *os << errc_name(e); }
inline void PrintTo(const Prefix4& p, std::ostream* os) { *os << p.str(); }
}  // namespace podfwd

namespace podfwd::lpm {
inline void PrintTo(const NextHop& nh, std::ostream* os) {
    *os << "{node_ip " << format_ipv4(nh.node_ip) << " vni " << nh.vni << " port " << nh.port << " mode "
        << static_cast<unsigned>(nh.mode) << " flags " << unsigned{nh.flags} << "}";
}
inline void PrintTo(const Route& r, std::ostream* os) { *os << r.prefix.str() << "->" << r.nexthop; }
}  // namespace podfwd::lpm

namespace podfwd::lpm::test {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// ---------------------------------------------------------------- assertions

template <class T>
::testing::AssertionResult IsOk(const Result<T>& r) {
    if (r)
        return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure()
           << "failed with " << errc_name(r.error().code) << ": " << r.error().message;
}

template <class T>
::testing::AssertionResult HasErrc(const Result<T>& r, Errc want) {
    if (r)
        return ::testing::AssertionFailure() << "succeeded, expected " << errc_name(want);
    if (r.error().code != want)
        return ::testing::AssertionFailure() << "failed with " << errc_name(r.error().code) << " ("
                                             << r.error().message << "), expected " << errc_name(want);
    return ::testing::AssertionSuccess();
}

inline std::string describe(const Error& e) {
    return std::string(errc_name(e.code)) + ": " + e.message;
}

inline std::string describe(const NextHop& nh) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "{node_ip %s vni %#x port %u mode %u flags %u}",
                  format_ipv4(nh.node_ip).c_str(), nh.vni, unsigned{nh.port},
                  static_cast<unsigned>(nh.mode), unsigned{nh.flags});
    return buf;
}

// ---------------------------------------------------------------- segments

// "podfwd-test-<pid>-<Suite>.<Test>[-tag]": unique per process and test, so
// parallel runs and parallel suites never share a segment.
inline std::string unique_segment_name(std::string_view tag = {}) {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = "podfwd-test-" + std::to_string(::getpid()) + "-";
    name += info ? std::string(info->test_suite_name()) + "." + info->name() : "global";
    if (!tag.empty())
        name += "-" + std::string(tag);
    // Parameterised test names contain '/', which is not allowed in a shm name.
    for (char& c : name)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.')
            c = '_';
    return name;
}

inline std::string shm_path(const std::string& name) { return "/dev/shm/" + name; }

// Owns a segment name for one test: unlinks it when the test ends, however
// it ends (assertion failure, exception), so runs leave nothing in /dev/shm.
class SegmentGuard {
public:
    explicit SegmentGuard(std::string_view tag = {}) : name_(unique_segment_name(tag)) {
        remove();   // a stale segment of an earlier run whose pid was reused
    }
    ~SegmentGuard() {
        if (::getpid() == owner_)   // a forked child must never clean up the parent's segment
            remove();
    }
    SegmentGuard(const SegmentGuard&) = delete;
    SegmentGuard& operator=(const SegmentGuard&) = delete;

    const std::string& name() const noexcept { return name_; }
    std::string path() const { return shm_path(name_); }

private:
    void remove() const {
        (void)TableWriter::unlink(name_);
        // Files some tests write by hand (garbage segments) must go too, even
        // if unlink() refuses them; unlink() itself is tested separately.
        std::error_code ec;
        std::filesystem::remove(path(), ec);
    }

    std::string name_;
    pid_t owner_ = ::getpid();
};

// ---------------------------------------------------------------- randomness

// PODFWD_TEST_SEED reproduces a run; otherwise a fresh seed, printed so that a
// failure can be replayed.
inline std::uint64_t test_seed() {
    std::uint64_t seed = 0;
    if (const char* env = std::getenv("PODFWD_TEST_SEED"); env && *env)
        seed = std::strtoull(env, nullptr, 0);
    else
        seed = (std::uint64_t{std::random_device{}()} << 32) ^ std::random_device{}();
    std::cout << "[   SEED   ] PODFWD_TEST_SEED=" << seed << std::endl;
    ::testing::Test::RecordProperty("seed", std::to_string(seed));
    return seed;
}

class Rng {
public:
    explicit Rng(std::uint64_t seed) : gen_(seed) {}
    std::uint64_t next() { return gen_(); }
    std::uint32_t u32() { return static_cast<std::uint32_t>(gen_() >> 32); }
    // Uniform in [0, n); n > 0.
    std::uint64_t below(std::uint64_t n) { return std::uniform_int_distribution<std::uint64_t>(0, n - 1)(gen_); }
    std::uint64_t between(std::uint64_t lo, std::uint64_t hi) { return lo + below(hi - lo + 1); }
    bool chance(double p) { return std::uniform_real_distribution<double>(0, 1)(gen_) < p; }
    // Log-uniform in [lo, hi]: small batches as frequent as large ones per decade.
    std::size_t log_uniform(std::size_t lo, std::size_t hi) {
        const double x = std::uniform_real_distribution<double>(std::log(lo), std::log(hi + 1.0))(gen_);
        return std::clamp<std::size_t>(static_cast<std::size_t>(std::exp(x)), lo, hi);
    }
    template <class C>
    auto& pick(C& c) { return c[below(c.size())]; }
    std::mt19937_64& engine() { return gen_; }

private:
    std::mt19937_64 gen_;
};

// A random address inside `p`.
inline Ipv4Addr random_inside(Rng& rng, const Prefix4& p) {
    return p.addr | (rng.u32() & ~prefix_mask(p.len));
}

// ---------------------------------------------------------------- records

// Next hop k of a small test table: node 10.168.0.0 + k, and with
// `mac_resolved` the MAC 02:00:00:00:00:k.
inline NextHop numbered_nexthop(unsigned k, ForwardMode mode, bool mac_resolved = false) {
    NextHop nh;
    nh.node_ip = 0x0aa80000u + k;
    nh.mode = mode;
    if (mac_resolved) {
        nh.flags = NextHop::kMacResolved;
        nh.mac = {0x02, 0, 0, 0, 0, static_cast<std::uint8_t>(k)};
    }
    return nh;
}

// ---------------------------------------------------------------- oracle

// Longest-prefix match the obvious way: one hash map per prefix length, a
// lookup probes /32 down to /0. Shares nothing with the trie under test.
template <class V>
class NaiveLpm {
public:
    void set(const Prefix4& p, const V& v) { maps_[p.len][p.addr] = v; }
    bool erase(const Prefix4& p) { return maps_[p.len].erase(p.addr) > 0; }
    const V* get(const Prefix4& p) const {
        auto it = maps_[p.len].find(p.addr);
        return it == maps_[p.len].end() ? nullptr : &it->second;
    }
    std::optional<std::pair<Prefix4, V>> lookup(Ipv4Addr a) const {
        for (int len = 32; len >= 0; --len) {
            const auto& m = maps_[len];
            if (m.empty())
                continue;
            const Ipv4Addr key = a & prefix_mask(len);
            if (auto it = m.find(key); it != m.end())
                return std::pair{Prefix4{key, static_cast<std::uint8_t>(len)}, it->second};
        }
        return std::nullopt;
    }
    // Every stored prefix containing `a`, longest first (for diagnostics).
    std::vector<std::pair<Prefix4, V>> covering(Ipv4Addr a) const {
        std::vector<std::pair<Prefix4, V>> out;
        for (int len = 32; len >= 0; --len)
            if (auto it = maps_[len].find(a & prefix_mask(len)); it != maps_[len].end())
                out.emplace_back(Prefix4{it->first, static_cast<std::uint8_t>(len)}, it->second);
        return out;
    }
    std::size_t size() const {
        std::size_t n = 0;
        for (const auto& m : maps_)
            n += m.size();
        return n;
    }
    template <class F>
    void for_each(F&& f) const {
        for (unsigned len = 0; len <= 32; ++len)
            for (const auto& [addr, v] : maps_[len])
                f(Prefix4{addr, static_cast<std::uint8_t>(len)}, v);
    }

private:
    std::array<std::unordered_map<Ipv4Addr, V>, 33> maps_;
};

inline std::vector<Route> sorted_routes(std::vector<Route> routes) {
    std::sort(routes.begin(), routes.end(), [](const Route& a, const Route& b) {
        return a.prefix < b.prefix || (a.prefix == b.prefix && a.nexthop < b.nexthop);
    });
    return routes;
}

// ---------------------------------------------------------------- time

template <class Pred>
bool poll_until(Pred&& pred, Clock::duration timeout, Clock::duration interval = 1ms) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
        if (pred())
            return true;
        if (Clock::now() >= deadline)
            return false;
        std::this_thread::sleep_for(interval);
    }
}

// PODFWD_STRESS_SECONDS, default 10: how long the cross-process tests churn.
inline double stress_seconds() {
    if (const char* env = std::getenv("PODFWD_STRESS_SECONDS"); env && *env) {
        const double s = std::strtod(env, nullptr);
        if (s >= 1)
            return s;
    }
    return 10;
}

inline Clock::duration seconds_f(double s) {
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

// ---------------------------------------------------------------- shared memory

static_assert(std::atomic<std::uint64_t>::is_always_lock_free,
              "cross-process counters rely on lock-free atomics");

// One T in an anonymous shared mapping, created before fork() so parent and
// children see the same object. T holds atomics and plain buffers only.
template <class T>
class Shared {
public:
    Shared() {
        void* p = ::mmap(nullptr, sizeof(T), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            throw std::system_error(errno, std::generic_category(), "mmap shared");
        obj_ = new (p) T{};
    }
    ~Shared() {
        obj_->~T();
        ::munmap(obj_, sizeof(T));
    }
    Shared(const Shared&) = delete;
    Shared& operator=(const Shared&) = delete;
    T* operator->() const noexcept { return obj_; }
    T& operator*() const noexcept { return *obj_; }

private:
    T* obj_ = nullptr;
};

// The first N messages of many processes, in shared memory.
template <std::size_t N, std::size_t Len = 480>
struct SharedLog {
    std::atomic<std::uint32_t> count{0};
    std::array<std::atomic<std::uint32_t>, N> ready{};
    std::array<std::array<char, Len>, N> text{};

    void add(std::string_view msg) noexcept {
        const std::uint32_t i = count.fetch_add(1, std::memory_order_relaxed);
        if (i >= N)
            return;
        const std::size_t n = std::min(msg.size(), Len - 1);
        std::memcpy(text[i].data(), msg.data(), n);
        text[i][n] = '\0';
        ready[i].store(1, std::memory_order_release);
    }
    std::vector<std::string> entries() const {
        std::vector<std::string> out;
        for (std::size_t i = 0; i < std::min<std::size_t>(count.load(), N); ++i)
            if (ready[i].load(std::memory_order_acquire))
                out.emplace_back(text[i].data());
        return out;
    }
    std::string joined() const {
        std::string s;
        for (const auto& e : entries())
            s += "\n    " + e;
        return s;
    }
};

template <class T>
void atomic_max(std::atomic<T>& a, T v) noexcept {
    T cur = a.load(std::memory_order_relaxed);
    while (cur < v && !a.compare_exchange_weak(cur, v, std::memory_order_relaxed)) {
    }
}

// ---------------------------------------------------------------- processes

// Exit codes of child bodies.
inline constexpr int kChildOk = 0;
inline constexpr int kChildFailed = 1;      // the body found a problem and logged it
inline constexpr int kChildException = 2;
inline constexpr int kChildOrphan = 3;

// A forked child running `body`. The child never returns into gtest: it
// _exits with the body's result, and dies with the parent (PDEATHSIG), so a
// crashed test leaves no churning processes behind. The destructor kills and
// reaps a child that is still running.
class ChildProcess {
public:
    template <class F>
    static ChildProcess spawn(F&& body) {
        const pid_t parent = ::getpid();
        std::fflush(nullptr);   // else buffered output is printed twice
        const pid_t pid = ::fork();
        if (pid < 0)
            throw std::system_error(errno, std::generic_category(), "fork");
        if (pid == 0) {
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (::getppid() != parent)
                ::_exit(kChildOrphan);
            int code = kChildException;
            try {
                code = body();
            } catch (const std::exception& e) {
                std::fprintf(stderr, "child %d: exception: %s\n", ::getpid(), e.what());
            } catch (...) {
                std::fprintf(stderr, "child %d: unknown exception\n", ::getpid());
            }
            std::fflush(nullptr);
            ::_exit(code);
        }
        return ChildProcess(pid);
    }

    ChildProcess() = default;
    ChildProcess(ChildProcess&& o) noexcept : pid_(std::exchange(o.pid_, -1)), status_(o.status_) {}
    ChildProcess& operator=(ChildProcess&& o) noexcept {
        if (this != &o) {
            reap_forcefully();
            pid_ = std::exchange(o.pid_, -1);
            status_ = o.status_;
        }
        return *this;
    }
    ~ChildProcess() { reap_forcefully(); }

    pid_t pid() const noexcept { return pid_; }
    bool reaped() const noexcept { return pid_ < 0 && status_.has_value(); }
    std::optional<int> status() const noexcept { return status_; }

    void kill(int sig = SIGKILL) const {
        if (pid_ > 0)
            ::kill(pid_, sig);
    }

    // Waits up to `timeout` for the child to exit; its wait status, if it did.
    std::optional<int> wait_for(Clock::duration timeout) {
        if (pid_ < 0)
            return status_;
        int st = 0;
        const bool exited = poll_until([&] { return ::waitpid(pid_, &st, WNOHANG) == pid_; }, timeout, 2ms);
        if (!exited)
            return std::nullopt;
        pid_ = -1;
        status_ = st;
        return status_;
    }

    // SIGKILL then reap: returns promptly (a killed process cannot linger).
    int kill_and_reap() {
        kill(SIGKILL);
        auto st = wait_for(10s);
        return st.value_or(-1);
    }

private:
    explicit ChildProcess(pid_t pid) : pid_(pid) {}
    void reap_forcefully() noexcept {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
            pid_ = -1;
        }
    }

    pid_t pid_ = -1;
    std::optional<int> status_;
};

inline std::string describe_status(std::optional<int> st) {
    if (!st)
        return "still running";
    if (WIFEXITED(*st))
        return "exit " + std::to_string(WEXITSTATUS(*st));
    if (WIFSIGNALED(*st))
        return std::string("killed by signal ") + std::to_string(WTERMSIG(*st)) + " (" + strsignal(WTERMSIG(*st)) + ")";
    return "status " + std::to_string(*st);
}

inline bool exited_ok(std::optional<int> st) { return st && WIFEXITED(*st) && WEXITSTATUS(*st) == kChildOk; }

}  // namespace podfwd::lpm::test
