#include "lpm/truncation_guard.h"

#include <signal.h>
#include <sys/mman.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>

namespace podfwd::lpm::truncation_guard {
namespace {

// Fixed storage the handler can walk without locks or allocation. `base`
// is written last on registration and cleared first on removal, so the
// handler never acts on a half-written entry.
struct Entry {
    std::atomic<std::uintptr_t> base{0};
    std::atomic<std::size_t> size{0};
    std::atomic<std::uintptr_t> writable{0};
    std::atomic<std::size_t> writable_size{0};
    std::atomic<bool> truncated{false};
};
constexpr std::size_t kMaxEntries = 256;   // mappings per process, three per view (lpm/mapping.cc): not lcores
std::array<Entry, kMaxEntries> g_entries;
std::atomic<bool> g_claimed[kMaxEntries];

struct sigaction g_previous{};
std::once_flag g_installed;

void pass_on(int sig, siginfo_t* info, void* context) {
    if ((g_previous.sa_flags & SA_SIGINFO) != 0 && g_previous.sa_sigaction != nullptr) {
        g_previous.sa_sigaction(sig, info, context);
        return;
    }
    if (g_previous.sa_handler != SIG_DFL && g_previous.sa_handler != SIG_IGN && g_previous.sa_handler != nullptr) {
        g_previous.sa_handler(sig);
        return;
    }
    // Default action: restore it and return; the load faults again and the
    // kernel ends the process with SIGBUS, as without the guard.
    struct sigaction dfl{};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    ::sigaction(SIGBUS, &dfl, nullptr);
}

// Async-signal-safe: atomics, mmap and mprotect only.
void on_sigbus(int sig, siginfo_t* info, void* context) {
    const auto addr = reinterpret_cast<std::uintptr_t>(info->si_addr);
    for (Entry& e : g_entries) {
        const std::uintptr_t base = e.base.load(std::memory_order_acquire);
        const std::size_t size = e.size.load(std::memory_order_relaxed);
        if (base == 0 || addr < base || addr - base >= size)
            continue;
        // With a writable part: writable first, then the table read-only
        // again, since another thread storing to its reader slot meanwhile
        // must never find it read-only. Without (a guard window): read-only
        // from the start, never charged as writable memory.
        const std::uintptr_t w = e.writable.load(std::memory_order_relaxed);
        const std::size_t w_size = e.writable_size.load(std::memory_order_relaxed);
        const int prot = w_size == 0 ? PROT_READ : PROT_READ | PROT_WRITE;
        void* p = ::mmap(reinterpret_cast<void*>(base), size, prot,
                         MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED)
            break;   // cannot recover: let the fault take its course
        if (w_size != 0) {
            ::mprotect(p, w - base, PROT_READ);
            ::mprotect(reinterpret_cast<void*>(w + w_size), base + size - (w + w_size), PROT_READ);
        }
        e.truncated.store(true, std::memory_order_release);
        return;
    }
    pass_on(sig, info, context);
}

void install() {
    struct sigaction action{};
    action.sa_sigaction = on_sigbus;
    action.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
    sigemptyset(&action.sa_mask);
    ::sigaction(SIGBUS, &action, &g_previous);
}

}  // namespace

Handle add(void* base, std::size_t size, void* writable, std::size_t writable_size) noexcept {
    std::call_once(g_installed, install);
    for (std::size_t i = 0; i < kMaxEntries; ++i) {
        bool expected = false;
        if (!g_claimed[i].compare_exchange_strong(expected, true))
            continue;
        Entry& e = g_entries[i];
        e.size.store(size, std::memory_order_relaxed);
        e.writable.store(reinterpret_cast<std::uintptr_t>(writable), std::memory_order_relaxed);
        e.writable_size.store(writable_size, std::memory_order_relaxed);
        e.truncated.store(false, std::memory_order_relaxed);
        e.base.store(reinterpret_cast<std::uintptr_t>(base), std::memory_order_release);
        return static_cast<Handle>(i);
    }
    return kNone;
}

void remove(Handle handle) noexcept {
    if (handle < 0 || static_cast<std::size_t>(handle) >= kMaxEntries)
        return;
    g_entries[static_cast<std::size_t>(handle)].base.store(0, std::memory_order_release);
    g_claimed[static_cast<std::size_t>(handle)].store(false, std::memory_order_release);
}

bool truncated(Handle handle) noexcept {
    if (handle < 0 || static_cast<std::size_t>(handle) >= kMaxEntries)
        return false;
    return g_entries[static_cast<std::size_t>(handle)].truncated.load(std::memory_order_acquire);
}

}  // namespace podfwd::lpm::truncation_guard
