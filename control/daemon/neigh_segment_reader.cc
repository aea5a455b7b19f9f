#include "control/daemon/neigh_segment_reader.h"

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>

#include <spdlog/spdlog.h>

#include "common/process.h"
#include "dataplane/neigh_layout.h"

namespace podfwd::control {

namespace {

// dp::NeighbourState (dataplane/neighbour.h), by value: this side builds without the dataplane.
constexpr const char* kStateNames[] = {"incomplete", "reachable", "stale", "probe", "failed"};

const dp::NeighHeader* header_of(const void* map) { return static_cast<const dp::NeighHeader*>(map); }
const dp::NeighEntry* entries_of(const void* map) {
    return reinterpret_cast<const dp::NeighEntry*>(static_cast<const std::byte*>(map) + sizeof(dp::NeighHeader));
}

// The writer changes these while we read: loaded once each, atomically.
std::uint32_t load_count(const dp::NeighHeader* h) { return __atomic_load_n(&h->count, __ATOMIC_RELAXED); }
std::uint64_t load_published(const dp::NeighHeader* h) {
    return __atomic_load_n(&h->published_unix_ns, __ATOMIC_RELAXED);
}

// A read-only mapping, unmapped unless released.
struct Mapped {
    const void* base = nullptr;
    std::size_t size = 0;
    Mapped() = default;
    Mapped(const Mapped&) = delete;
    Mapped& operator=(const Mapped&) = delete;
    ~Mapped() {
        if (base != nullptr)
            ::munmap(const_cast<void*>(base), size);
    }
    void release() { base = nullptr; }
};

}  // namespace

bool ArpEntry::has_mac() const noexcept { return state >= 1 && state <= 3 && mac != MacAddr{}; }

const char* arp_state_name(std::uint8_t state) noexcept {
    return state < std::size(kStateNames) ? kStateNames[state] : "unknown";
}

NeighSegmentReader::NeighSegmentReader(std::string table, std::string directory)
    : table_(std::move(table)), directory_(std::move(directory)) {}

NeighSegmentReader::~NeighSegmentReader() { unmap(); }

void NeighSegmentReader::unmap() {
    if (map_ != nullptr)
        ::munmap(const_cast<void*>(map_), map_size_);
    map_ = nullptr;
    map_size_ = 0;
    capacity_ = 0;
    have_seq_ = false;
}

void NeighSegmentReader::note_bad(const std::string& path, const std::string& why) {
    auto [it, inserted] = bad_.try_emplace(path, why);
    if (!inserted && it->second == why)
        return;   // said already
    it->second = why;
    ++bad_total_;
    last_error_ = path + ": " + why;
    spdlog::warn("arp: ignoring neighbour segment {}: {}", path, why);
}

Result<NeighSegmentReader::Candidate> NeighSegmentReader::open_segment(const std::string& path, std::uint32_t file_pid,
                                                                        const void** map, std::size_t* size) {
    const auto bad = [&](std::string why) { return Error{Errc::kIncompatible, std::move(why)}; };
    const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return Error{Errc::kNotFound, std::strerror(errno)};   // gone meanwhile
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        ::close(fd);
        return Error{Errc::kNotFound, std::strerror(errno)};
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        return bad("not a regular file");
    }
    // /dev/shm is writable by anyone: a segment from another user could
    // point this node's traffic anywhere.
    if (st.st_uid != 0 && st.st_uid != ::geteuid()) {
        ::close(fd);
        return bad("owned by uid " + std::to_string(st.st_uid) + ", not root or this daemon");
    }
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
        ::close(fd);
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
        return bad(std::string("mode ") + mode + ": writable by group or others");
    }
    const auto file_size = static_cast<std::uint64_t>(st.st_size);
    if (file_size == 0) {
        ::close(fd);
        return Error{Errc::kNotReady, "empty: being created"};
    }
    if (file_size < sizeof(dp::NeighHeader)) {
        ::close(fd);
        return bad("truncated: " + std::to_string(file_size) + " bytes, shorter than its header");
    }
    const std::uint64_t most = sizeof(dp::NeighHeader) + std::uint64_t{kMaxCapacity} * sizeof(dp::NeighEntry);
    Mapped m;
    m.size = static_cast<std::size_t>(std::min(file_size, most));
    void* base = ::mmap(nullptr, m.size, PROT_READ, MAP_SHARED, fd, 0);
    ::close(fd);
    if (base == MAP_FAILED)
        return bad(std::string("mmap: ") + std::strerror(errno));
    m.base = base;

    const dp::NeighHeader* h = header_of(m.base);
    // The writer stores the magic last (release): a reader that sees it sees the rest.
    const std::uint64_t magic = __atomic_load_n(&h->magic, __ATOMIC_ACQUIRE);
    if (magic == 0)
        return Error{Errc::kNotReady, "header not written yet"};
    if (magic != dp::kNeighMagic)
        return bad("not a neighbour segment (magic)");
    if (h->version != dp::kNeighVersion)
        return bad("layout version " + std::to_string(h->version) + ", this podfwd-control reads " +
                   std::to_string(dp::kNeighVersion));
    if (h->entry_size != sizeof(dp::NeighEntry))
        return bad("entry size " + std::to_string(h->entry_size) + ", expected " +
                   std::to_string(sizeof(dp::NeighEntry)));
    if (h->capacity > kMaxCapacity)
        return bad("capacity " + std::to_string(h->capacity) + " past " + std::to_string(kMaxCapacity));
    if (sizeof(dp::NeighHeader) + std::uint64_t{h->capacity} * sizeof(dp::NeighEntry) > m.size)
        return bad("truncated: " + std::to_string(file_size) + " bytes, too short for " +
                   std::to_string(h->capacity) + " entries");
    if (h->pid != file_pid)
        return bad("pid " + std::to_string(h->pid) + " in the header, " + std::to_string(file_pid) + " in the name");
    Candidate c{path, h->pid, load_published(h)};
    *map = m.base;
    *size = m.size;
    m.release();
    return c;
}

std::optional<NeighSegmentReader::Candidate> NeighSegmentReader::scan() {
    DIR* dir = ::opendir(directory_.c_str());
    if (dir == nullptr)
        return std::nullopt;
    const std::string prefix = table_ + ".neigh.";
    std::vector<std::pair<std::string, std::uint32_t>> files;
    while (const dirent* e = ::readdir(dir))
        if (const auto pid = pid_suffix(e->d_name, prefix))
            files.emplace_back(directory_ + "/" + e->d_name, *pid);
    ::closedir(dir);

    std::optional<Candidate> best;
    std::set<std::string> seen;
    for (const auto& [path, pid] : files) {
        seen.insert(path);
        if (!process_alive(pid))
            continue;   // a dataplane that died without removing it (kill -9)
        const void* map = nullptr;
        std::size_t size = 0;
        auto candidate = open_segment(path, pid, &map, &size);
        if (!candidate) {
            if (candidate.error().code == Errc::kIncompatible)
                note_bad(path, candidate.error().message);
            continue;
        }
        ::munmap(const_cast<void*>(map), size);
        bad_.erase(path);
        if (!best || candidate->published_unix_ns > best->published_unix_ns)
            best = std::move(*candidate);
    }
    std::erase_if(bad_, [&](const auto& kv) { return !seen.contains(kv.first); });
    return best;
}

bool NeighSegmentReader::copy(ArpSnapshot& out) {
    const dp::NeighHeader* h = header_of(map_);
    const dp::NeighEntry* entries = entries_of(map_);
    std::vector<dp::NeighEntry> raw;
    for (int attempt = 0; attempt < kMaxReadTries; ++attempt) {
        if (attempt != 0)
            ::sched_yield();
        const std::uint64_t before = h->seq.load(std::memory_order_acquire);
        if (before & 1)
            continue;   // the writer is rewriting the entries
        // Never trust count: at most the capacity, which the mapping holds.
        const std::uint32_t count = std::min(load_count(h), capacity_);
        raw.resize(count);
        if (count != 0)   // memcpy's pointers must be valid even for 0 bytes
            std::memcpy(raw.data(), entries, std::size_t{count} * sizeof(dp::NeighEntry));
        const std::uint64_t published = load_published(h);
        std::atomic_thread_fence(std::memory_order_acquire);
        if (h->seq.load(std::memory_order_relaxed) != before)
            continue;
        out.published_unix_ns = published;
        out.entries.clear();
        out.entries.reserve(raw.size());
        for (const dp::NeighEntry& e : raw) {
            ArpEntry a;
            a.ip = e.ip;
            a.state = e.state;
            std::copy(std::begin(e.mac), std::end(e.mac), a.mac.begin());
            a.probes = e.probes;
            a.queued = e.queued;
            a.confirmed_age_ms = e.confirmed_age_ms;
            a.used_age_ms = e.used_age_ms;
            out.entries.push_back(a);
        }
        last_seq_ = before;
        return true;
    }
    return false;
}

NeighSegmentReader::Poll NeighSegmentReader::poll() {
    if (map_ == nullptr || ++polls_since_scan_ >= kRescanEvery) {
        polls_since_scan_ = 0;
        if (map_ != nullptr && !process_alive(current_.pid)) {
            spdlog::info("arp: dataplane {} is gone; its {} neighbours are kept until a new one publishes",
                         current_.pid, snapshot_ ? snapshot_->entries.size() : 0);
            unmap();
        }
        const auto best = scan();
        if (best && (map_ == nullptr || best->path != current_.path)) {
            const void* map = nullptr;
            std::size_t size = 0;
            auto opened = open_segment(best->path, best->pid, &map, &size);
            if (opened) {
                unmap();
                map_ = map;
                map_size_ = size;
                capacity_ = header_of(map_)->capacity;
                current_ = *opened;
                spdlog::info("arp: following dataplane {}'s neighbours in {}", current_.pid, current_.path);
            }
        }
    }
    if (map_ == nullptr)
        return Poll::kUnchanged;
    if (have_seq_ && header_of(map_)->seq.load(std::memory_order_acquire) == last_seq_)
        return Poll::kUnchanged;
    ArpSnapshot next{current_.path, current_.pid, 0, {}};
    if (!copy(next)) {
        ++busy_polls_;   // the next poll tries again; the last copy stands meanwhile
        return Poll::kUnchanged;
    }
    have_seq_ = true;
    snapshot_ = std::move(next);
    return Poll::kChanged;
}

}  // namespace podfwd::control
