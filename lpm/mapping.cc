#include "lpm/mapping.h"

#include "lpm/truncation_guard.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <algorithm>
#include <new>

namespace podfwd::lpm {
namespace {

std::string errno_text(const char* what, const std::string& name) {
    return std::string(what) + " " + segment_path(name) + ": " + std::strerror(errno);
}

Status check_name(const std::string& name) {
    if (name.empty() || name.size() > 200 || name.find('/') != std::string::npos)
        return Error{Errc::kInvalidArgument, "invalid segment name '" + name + "' (1..200 characters, no '/')"};
    return ok();
}

// Closes the descriptor unless released: keeps the error paths short.
struct FdGuard {
    int fd;
    ~FdGuard() {
        if (fd >= 0)
            ::close(fd);
    }
    int release() { return std::exchange(fd, -1); }
};

void initialise(SegmentHeader& header, const Capacity& capacity, const Geometry& g) {
    header.layout_version = kLayoutVersion;
    header.header_bytes = sizeof(SegmentHeader);
    header.segment_bytes = g.segment_bytes;
    header.capacity = capacity;
    header.group_capacity = g.group_capacity;
    header.leaf_capacity = g.leaf_capacity;
    header.nh_record_capacity = g.nh_record_capacity;
    header.readers_offset = g.readers_offset;
    header.readers_bytes = g.readers_bytes;
    header.dir_offset = g.dir_offset;
    header.window_offset = g.window_offset;
    header.window_bytes = g.window_bytes;
    header.leaves_offset = g.leaves_offset;
    header.groups_offset = g.groups_offset;
    header.nh_map_offset = g.nh_map_offset;
    header.nh_records_offset = g.nh_records_offset;
    header.routes_offset = g.routes_offset;
    header.epoch.store(1, std::memory_order_relaxed);
    // The directory starts zeroed (every slot empty); leaves[0..2] is the
    // empty slots' leaf array: leafvec 1, one run of kNoRoute.
    auto* leaves = reinterpret_cast<NextHopId*>(reinterpret_cast<std::byte*>(&header) + g.leaves_offset);
    leaves[0] = 1;
    // Readers check the magic first: it is written last, after a fence.
    std::atomic_thread_fence(std::memory_order_release);
    std::atomic_ref<std::uint64_t>(header.magic).store(kSegmentMagic, std::memory_order_release);
}

Result<Geometry> validate(const SegmentHeader& header, std::size_t file_size, const std::string& name) {
    const std::uint64_t magic = std::atomic_ref<const std::uint64_t>(header.magic).load(std::memory_order_acquire);
    if (magic == 0)
        return Error{Errc::kNotReady, segment_path(name) + " is still being initialised by its writer"};
    if (magic != kSegmentMagic)
        return Error{Errc::kIncompatible, segment_path(name) + " is not a podfwd route table (bad magic)"};
    if (header.layout_version != kLayoutVersion)
        return Error{Errc::kIncompatible, segment_path(name) + " has layout version " +
                                              std::to_string(header.layout_version) + ", this build understands " +
                                              std::to_string(kLayoutVersion)};
    // One copy of the capacity, so every field the geometry derives from was
    // range-checked: a writer racing this open cannot slip in another.
    const Capacity capacity = header.capacity;
    auto geometry = Geometry::of(capacity);
    if (!geometry || !geometry->matches(header) || geometry->segment_bytes != file_size)
        return Error{Errc::kIncompatible, segment_path(name) + " has an inconsistent size or geometry (file " +
                                              std::to_string(file_size) + " bytes, header says " +
                                              std::to_string(header.segment_bytes) + ")"};
    return *geometry;
}

// Every reader trusts what the segment says, and the writer adopts an
// existing one: only root or our own user may own it, nobody else may write
// it, and it must be a plain file (shm_open refuses symbolic links itself).
Status check_access(int fd, const std::string& name) {
    struct stat st{};
    if (::fstat(fd, &st) != 0)
        return Error{Errc::kSystem, errno_text("cannot stat", name)};
    const uid_t self = ::geteuid();
    const bool trusted_owner = st.st_uid == 0 || st.st_uid == self;
    const bool others_may_write = (st.st_mode & (S_IWGRP | S_IWOTH)) != 0;
    if (S_ISREG(st.st_mode) && trusted_owner && !others_may_write)
        return ok();
    char mode[16];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    const std::string why = !S_ISREG(st.st_mode) ? "it is not a regular file"
                            : !trusted_owner     ? "its owner is neither root nor uid " + std::to_string(self)
                                                 : "it is writable by group or others";
    return Error{Errc::kIncompatible, "refusing " + segment_path(name) + " (owner uid " + std::to_string(st.st_uid) +
                                          ", mode " + mode + "): " + why};
}

}  // namespace

std::string segment_path(const std::string& name) { return "/dev/shm/" + name; }

Result<Geometry> Geometry::of(const Capacity& c) {
    // Groups below kMaxGroups: 2 * max_groups + 1 group ids must stay below
    // 2^23, or group_leaf(2^23) would be kGroupFlag, group 0's leaf.
    if (c.max_routes == 0 || c.max_routes > (1u << 24) || c.max_nexthops == 0 || c.max_nexthops > (1u << 22) ||
        c.reader_slots == 0 || c.reader_slots > 4096 || c.max_groups == 0 || c.max_groups > kMaxGroups)
        return Error{Errc::kInvalidArgument,
                     "capacity out of range (routes 1..16M, next hops 1..4M, readers 1..4096, groups 1..4M-1)"};
    if (c.dense_window_len == kNoDenseWindow ? c.dense_window_addr != 0
                                             : c.dense_window_len < kMinDenseWindowLen ||
                                                   c.dense_window_len > kMaxDenseWindowLen ||
                                                   (c.dense_window_addr & ~prefix_mask(c.dense_window_len)) != 0)
        return Error{Errc::kInvalidArgument,
                     "dense window " + format_ipv4(c.dense_window_addr) + "/" + std::to_string(c.dense_window_len) +
                         " is not a prefix of length " + std::to_string(kMinDenseWindowLen) + ".." +
                         std::to_string(kMaxDenseWindowLen) + " without host bits (length " +
                         std::to_string(kNoDenseWindow) + " with address 0.0.0.0: no window)"};
    Geometry g;
    g.capacity = c;
    // A route adds at most two runs of leaves to its slot, a slot adds a
    // two-word header; the slack absorbs copy-on-write garbage awaiting its
    // grace period. Untouched capacity is never backed by memory (the segment
    // is sparse). Group 0 is reserved, and so are the first leaves (layout.h).
    // Groups: twice the limit, so that a restarted writer can rebuild a full
    // table beside the published one (copy-on-write at the scale of the table).
    g.group_capacity = 2 * c.max_groups + 1;
    g.leaf_capacity = 6 * c.max_routes + 4 * kDirEntries;
    g.nh_record_capacity = 2 * c.max_nexthops + 2;   // each id can have a record retiring while a new one is live
    g.readers_offset = kPage;
    g.readers_bytes = align_up(std::uint64_t{c.reader_slots} * sizeof(ReaderSlotData), kPage);
    g.dir_offset = align_up(g.readers_offset + g.readers_bytes, kLargeAlign);
    // The window after the directory: both are read by every lookup.
    g.window_base = c.dense_window_addr;
    g.window_span = lpm::window_span(c.dense_window_len);
    g.window_offset = g.dir_offset + std::uint64_t{kDirEntries} * sizeof(std::uint64_t);
    g.window_bytes = align_up(std::uint64_t{g.window_span >> 8} * sizeof(std::uint64_t), kPage);
    g.leaves_offset = align_up(g.window_offset + g.window_bytes, kLargeAlign);
    g.groups_offset = align_up(g.leaves_offset + std::uint64_t{g.leaf_capacity} * sizeof(NextHopId), kLargeAlign);
    g.nh_map_offset = align_up(g.groups_offset + std::uint64_t{g.group_capacity} * kGroupEntries * sizeof(NextHopId),
                               kPage);
    g.nh_records_offset = align_up(g.nh_map_offset + (std::uint64_t{c.max_nexthops} + 1) * 4, kPage);
    g.routes_offset = align_up(g.nh_records_offset + std::uint64_t{g.nh_record_capacity} * sizeof(NextHop), kPage);
    g.segment_bytes = align_up(g.routes_offset + std::uint64_t{c.max_routes} * 8, kPage);
    return g;
}

bool Geometry::matches(const SegmentHeader& h) const noexcept {
    return h.group_capacity == group_capacity && h.leaf_capacity == leaf_capacity &&
           h.nh_record_capacity == nh_record_capacity && h.readers_offset == readers_offset &&
           h.readers_bytes == readers_bytes && h.dir_offset == dir_offset && h.window_offset == window_offset &&
           h.window_bytes == window_bytes && h.leaves_offset == leaves_offset &&
           h.groups_offset == groups_offset && h.nh_map_offset == nh_map_offset &&
           h.nh_records_offset == nh_records_offset && h.routes_offset == routes_offset &&
           h.segment_bytes == segment_bytes;
}

Result<std::shared_ptr<Mapping>> Mapping::open_writer(const std::string& name, const Capacity& capacity,
                                                      bool& created) {
    if (auto s = check_name(name); !s)
        return std::move(s).error();
    auto geometry = Geometry::of(capacity);
    if (!geometry)
        return std::move(geometry).error();

    // Created exclusively, so that a file someone else put there first is
    // never taken for ours; an existing one is adopted only after
    // check_access, and then only as a segment of our layout (validate) or
    // the remains of a writer that died creating it (magic still zero).
    FdGuard fd{::shm_open(("/" + name).c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600)};
    if (fd.fd < 0 && errno == EEXIST)
        fd.fd = ::shm_open(("/" + name).c_str(), O_RDWR | O_CLOEXEC, 0);
    if (fd.fd < 0)
        return Error{Errc::kSystem, errno_text("cannot open", name)};
    if (auto s = check_access(fd.fd, name); !s)
        return std::move(s).error();
    // The lock is the single-writer rule; the kernel drops it if we die.
    if (::flock(fd.fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno != EWOULDBLOCK)
            return Error{Errc::kSystem, errno_text("cannot lock", name)};
        std::string owner;
        SegmentHeader peek{};
        if (::pread(fd.fd, &peek, sizeof peek, 0) == static_cast<ssize_t>(sizeof peek))
            owner = " (writer pid " + std::to_string(peek.writer_pid.load()) + ")";
        return Error{Errc::kBusy, segment_path(name) + " is owned by another writer" + owner};
    }
    struct stat st{};
    if (::fstat(fd.fd, &st) != 0)
        return Error{Errc::kSystem, errno_text("cannot stat", name)};

    // An empty file is new; a file whose magic is still zero was left by a
    // writer that died while creating it, before any reader could use it.
    bool fresh = st.st_size == 0;
    if (!fresh && static_cast<std::size_t>(st.st_size) >= sizeof(SegmentHeader)) {
        SegmentHeader peek{};
        if (::pread(fd.fd, &peek, sizeof peek, 0) != static_cast<ssize_t>(sizeof peek))
            return Error{Errc::kSystem, errno_text("cannot read", name)};
        fresh = peek.magic == 0;
    }
    if (fresh) {
        if (::ftruncate(fd.fd, 0) != 0 || ::ftruncate(fd.fd, static_cast<off_t>(geometry->segment_bytes)) != 0)
            return Error{Errc::kSystem, errno_text("cannot size", name)};
        st.st_size = static_cast<off_t>(geometry->segment_bytes);
    }
    const auto size = static_cast<std::size_t>(st.st_size);
    if (size < sizeof(SegmentHeader))
        return Error{Errc::kIncompatible, segment_path(name) + " is truncated (" + std::to_string(size) + " bytes)"};
    void* base = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd.fd, 0);
    if (base == MAP_FAILED)
        return Error{Errc::kSystem, errno_text("cannot map", name)};
    std::shared_ptr<Mapping> mapping(new Mapping(fd.release(), base, size, *geometry));
    // Huge pages where the tmpfs allows them (scripts/setup mounts /dev/shm
    // with huge=advise): the directory and leaves are read at random, and
    // 4 KiB pages would cost a TLB miss per lookup on large tables.
    ::madvise(base, size, MADV_HUGEPAGE);

    if (fresh) {
        initialise(mapping->header(), capacity, *geometry);
    } else {
        if (auto s = validate(mapping->header(), size, name); !s)
            return std::move(s).error();
        if (const Capacity& had = mapping->header().capacity; !(had == capacity))
            return Error{Errc::kIncompatible,
                         segment_path(name) + " was created with another capacity (routes " +
                             std::to_string(had.max_routes) + ", next hops " + std::to_string(had.max_nexthops) +
                             ", readers " + std::to_string(had.reader_slots) + ", groups " +
                             std::to_string(had.max_groups) + ", dense window " +
                             (had.dense_window_len == kNoDenseWindow
                                  ? std::string("none")
                                  : format_ipv4(had.dense_window_addr) + "/" + std::to_string(had.dense_window_len)) +
                             ")"};
    }
    mapping->header().writer_pid.store(static_cast<std::uint32_t>(::getpid()), std::memory_order_relaxed);
    created = fresh;
    return mapping;
}

Result<std::shared_ptr<Mapping>> Mapping::open_reader(const std::string& name) {
    if (auto s = check_name(name); !s)
        return std::move(s).error();
    // Read-write only so that the reader-slot region can be mapped writable;
    // the table itself is mapped read-only.
    FdGuard fd{::shm_open(("/" + name).c_str(), O_RDWR | O_CLOEXEC, 0)};
    if (fd.fd < 0) {
        if (errno == ENOENT)
            return Error{Errc::kNotFound, "no route table at " + segment_path(name) + " (is podfwd-control running?)"};
        return Error{Errc::kSystem, errno_text("cannot open", name)};
    }
    if (auto s = check_access(fd.fd, name); !s)
        return std::move(s).error();
    struct stat st{};
    if (::fstat(fd.fd, &st) != 0)
        return Error{Errc::kSystem, errno_text("cannot stat", name)};
    const auto size = static_cast<std::size_t>(st.st_size);
    if (size == 0)
        return Error{Errc::kNotReady, segment_path(name) + " is still being created by its writer"};
    if (size < sizeof(SegmentHeader))
        return Error{Errc::kIncompatible, segment_path(name) + " is truncated (" + std::to_string(size) + " bytes)"};
    void* base = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd.fd, 0);
    if (base == MAP_FAILED)
        return Error{Errc::kSystem, errno_text("cannot map", name)};
    std::shared_ptr<Mapping> mapping(new Mapping(fd.release(), base, size, Geometry{}));
    ::madvise(base, size, MADV_HUGEPAGE);
    auto geometry = validate(mapping->header(), size, name);
    if (!geometry)
        return std::move(geometry).error();
    const Geometry& g = mapping->geometry_ = *geometry;
    void* slots = ::mmap(static_cast<std::byte*>(base) + g.readers_offset, g.readers_bytes, PROT_READ | PROT_WRITE,
                         MAP_SHARED | MAP_FIXED, mapping->fd_, static_cast<off_t>(g.readers_offset));
    if (slots == MAP_FAILED)
        return Error{Errc::kSystem, errno_text("cannot map reader slots of", name)};
    // The base first: it holds the directory every lookup reads, so if the
    // guard's table is full, a window is what goes unguarded.
    mapping->truncation_guard_ = truncation_guard::add(base, size, slots, g.readers_bytes);
    auto leaves = GuardWindow::map(mapping->fd_, g.leaves_offset, g.groups_offset - g.leaves_offset,
                                   kLeafWindowBytes, "leaves");
    if (!leaves)
        return std::move(leaves).error();
    auto groups = GuardWindow::map(mapping->fd_, g.groups_offset, g.nh_map_offset - g.groups_offset,
                                   kGroupWindowBytes, "groups");
    if (!groups)
        return std::move(groups).error();
    mapping->leaf_window_ = std::move(*leaves);
    mapping->group_window_ = std::move(*groups);
    return mapping;
}

Status Mapping::unlink(const std::string& name) {
    if (auto s = check_name(name); !s)
        return s;
    if (::shm_unlink(("/" + name).c_str()) != 0 && errno != ENOENT)
        return Error{Errc::kSystem, errno_text("cannot remove", name)};
    return ok();
}

TableStats Mapping::stats() const noexcept {
    const SegmentHeader& h = header();
    TableStats s;
    s.generation = h.generation.load(std::memory_order_relaxed);
    s.epoch = h.epoch.load(std::memory_order_relaxed);
    s.routes = h.route_count.load(std::memory_order_relaxed);
    s.nexthops = h.nexthop_count.load(std::memory_order_relaxed);
    s.groups_used = h.groups_used.load(std::memory_order_relaxed);
    s.leaves_used = h.leaves_used.load(std::memory_order_relaxed);
    s.retired_pending = h.retired_pending.load(std::memory_order_relaxed);
    s.reclaimed_total = h.reclaimed_total.load(std::memory_order_relaxed);
    s.dead_readers_reaped = h.dead_readers_reaped.load(std::memory_order_relaxed);
    s.writer_pid = h.writer_pid.load(std::memory_order_relaxed);
    const ReaderSlotData* slots = reader_slots();
    for (std::uint32_t i = 0; i < geometry_.capacity.reader_slots; ++i) {
        s.readers_online += slots[i].state.load(std::memory_order_relaxed) == kReaderOnline;
        s.dead_readers_reaped += static_cast<std::uint32_t>(slots[i].dead_owners_freed.load(std::memory_order_relaxed));
    }
    return s;
}

namespace {
struct flock slot_lock_request(short type, unsigned index) {
    struct flock lock{};
    lock.l_type = type;
    lock.l_whence = SEEK_SET;
    lock.l_start = static_cast<off_t>(kLivenessLockBase + index);
    lock.l_len = 1;
    return lock;   // l_pid stays 0, as F_OFD_* requires
}
}  // namespace

bool Mapping::claim_slot_lock(unsigned index) const {
    std::lock_guard guard(slot_locks_mutex_);
    if (index >= slot_locks_held_.size())
        slot_locks_held_.resize(index + 1, false);
    if (slot_locks_held_[index])
        return false;
    // A write lock, so that two readers' claims exclude each other; it needs
    // the O_RDWR descriptor both roles open.
    struct flock lock = slot_lock_request(F_WRLCK, index);
    if (::fcntl(fd_, F_OFD_SETLK, &lock) != 0)
        return false;   // EAGAIN/EACCES: held elsewhere; anything else: never treat the owner as dead
    slot_locks_held_[index] = true;
    return true;
}

void Mapping::release_slot_lock(unsigned index) const noexcept {
    std::lock_guard guard(slot_locks_mutex_);
    if (index >= slot_locks_held_.size() || !slot_locks_held_[index])
        return;
    struct flock lock = slot_lock_request(F_UNLCK, index);
    ::fcntl(fd_, F_OFD_SETLK, &lock);
    slot_locks_held_[index] = false;
}

bool Mapping::truncated() const noexcept {
    if (truncation_guard::truncated(truncation_guard_) || leaf_window_.truncated() || group_window_.truncated())
        return true;
    struct stat st{};
    return ::fstat(fd_, &st) == 0 && static_cast<std::size_t>(st.st_size) < size_;
}

Mapping::~Mapping() {
    truncation_guard::remove(truncation_guard_);
    if (base_ != nullptr)
        ::munmap(base_, size_);
    if (fd_ >= 0)
        ::close(fd_);
}

}  // namespace podfwd::lpm
