// The shared-memory segment: its layout and the lookup that reads it.
//
// Everything in the segment is addressed by offsets and indices, never by
// pointers, so processes built from different binaries can map it anywhere.
// The lookup structure is an 18/6/8 multibit trie:
//
//   dir[addr >> 14]   2^18 entries of 64 bits: the best next hop among
//                     prefixes up to /18 ("fallback") and the base of the
//                     slot's leaf array.
//   leaf array        a Poptrie node (Asai & Ohara, SIGCOMM 2015) for bits
//                     13..8: a 64-bit leafvec with a bit per /24 position
//                     that starts a run of equal leaves, then the runs; the
//                     leaf of a position is run number popcount(leafvec up to
//                     it). A leaf is a next hop (prefixes /19../24, pushed
//                     to the /24s they cover), kNoRoute (the fallback
//                     applies), or kGroupFlag | g << 8, naming
//   tbl8[g][addr & 255]  a DIR-24-8 group of 256 next hops for /25../32.
//
// A lookup is one directory load, two loads from the leaf array (usually one
// cache line) and, under a prefix longer than /24, one group load. The
// directory is 2 MiB and leaves are run-compressed, so an Internet-sized
// table stays cache-resident where DIR-24-8's 64 MiB tbl24 does not, and a
// /8 rewrites 1,024 directory entries, not 65,536.
//
// The dense window: inside one prefix fixed at creation (Capacity, default
// 10.0.0.0/8, the pod supernet) the trie is also stored uncompressed, as
//
//   window[(addr - window_base) >> 8]  a 64-bit entry per /24: the fallback
//                     of its /18 slot (high word) and its leaf (low word),
//                     the leaf array expanded. A lookup there is one load,
//                     plus a group load under a prefix longer than /24:
//                     DIR-24-8's cost, in 512 KiB for a /8 instead of 64 MiB.
//
// Window entries carry the fallback beside the leaf, not folded into it,
// because a group's entries are kNoRoute where only the fallback covers them
// (groups are shared with the leaf arrays, and a fallback change must not
// copy every group below it). Readers never read the directory for an
// address inside the window; the writer keeps both, the trie (which
// recovery traces) and its expansion, and stores a slot's window entries
// right after its directory entry.
//
// Concurrency: one writer, wait-free readers. Leaf arrays and groups are
// immutable while reachable: the writer builds new ones (copy-on-write) and
// switches a slot with one 64-bit store of its directory entry, which carries
// the fallback with it, so a reader sees each slot wholly as it was before or
// after a commit. In the window the unit is the /24: each entry switches
// from its old value to its new one in one 64-bit store (never through
// "no route"), after the groups it names were written. Unreachable arrays
// and groups (unlinked from the directory's leaf arrays and from the window)
// are reused only after every registered reader has passed a quiescent
// state (QSBR).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "lpm/types.h"

namespace podfwd::lpm {

inline constexpr std::uint64_t kSegmentMagic = 0x31544c4457464f50ULL;   // "POFWDLT1"
// 2: reader liveness is an OFD lock per slot (lpm/README.md), not pid + start
// time; a reader of version 1 would take no lock and be reaped at once.
// 3: the dense window (a region, its offsets and two capacity fields).
inline constexpr std::uint32_t kLayoutVersion = 3;

inline constexpr unsigned kDirBits = 18;
inline constexpr std::uint32_t kDirEntries = 1u << kDirBits;
inline constexpr unsigned kDirShift = 32 - kDirBits;
inline constexpr std::uint32_t kGroupFlag = 1u << 31;   // next-hop ids stay below 2^24
inline constexpr std::uint32_t kGroupEntries = 256;
constexpr NextHopId group_leaf(std::uint32_t group) noexcept { return kGroupFlag | group << 8; }
constexpr std::uint32_t group_of_leaf(NextHopId leaf) noexcept { return (leaf & ~kGroupFlag) >> 8; }

// A leaf array: leafvec (two 32-bit words, low first), then the runs.
inline constexpr std::uint32_t kLeafHeader = 2;
// leaves[0..2] is the array of every empty slot: one run of kNoRoute. A
// zeroed directory entry (base 0, fallback kNoRoute) therefore means "no route".
inline constexpr std::uint32_t kEmptyLeafArray = 0;
inline constexpr std::uint32_t kReservedLeaves = 3;

constexpr std::uint64_t dir_entry(std::uint32_t leaf_base, NextHopId fallback) noexcept {
    return std::uint64_t{fallback} << 32 | leaf_base;
}
constexpr std::uint32_t leaf_base_of(std::uint64_t entry) noexcept { return static_cast<std::uint32_t>(entry); }
constexpr NextHopId fallback_of(std::uint64_t entry) noexcept { return static_cast<NextHopId>(entry >> 32); }

// A window entry: like a directory entry, the fallback in the high word, but
// the low word is the leaf itself (a next hop, kNoRoute or a group leaf).
// Zero: no route.
constexpr std::uint64_t window_entry(NextHopId leaf, NextHopId fallback) noexcept {
    return std::uint64_t{fallback} << 32 | leaf;
}
constexpr NextHopId leaf_of(std::uint64_t window_entry) noexcept { return static_cast<NextHopId>(window_entry); }
// The window of a capacity: its first address and its size in addresses
// (0: no window, so that `addr - base < span` never holds).
constexpr std::uint32_t window_span(std::uint32_t len) noexcept {
    return len == kNoDenseWindow ? 0 : std::uint32_t{1} << (32 - len);
}

// One reader registration (an lcore, a CLI invocation). Written by the reader;
// the writer only reads it, except to free the slot of a reader that died.
// Whoever changes `state` away from kReaderFree, or frees the slot of a dead
// owner, holds the slot's liveness lock (byte kLivenessLockBase + index of the
// segment file, an OFD write lock): the owner for the slot's whole life, a
// reaper only while it frees the slot. The kernel drops the owner's lock when
// the owner dies, in whatever PID namespace it ran.
struct alignas(64) ReaderSlotData {
    std::atomic<std::uint32_t> pid;          // the owner's pid in its own namespace: information only
    std::atomic<std::uint32_t> state;        // ReaderState
    std::atomic<std::uint64_t> seen_epoch;   // last epoch observed at a quiescent point
    // Dead owners of this slot freed by registering readers, which cannot
    // count in the read-only header; stats() adds them to the writer's count.
    std::atomic<std::uint64_t> dead_owners_freed;
};

// kReaderRegistering: claimed and locked, seen_epoch not yet published; the
// writer neither waits for it nor reaps it (online() orders it, see reader.cc).
enum ReaderState : std::uint32_t { kReaderFree = 0, kReaderRegistering = 1, kReaderOnline = 2, kReaderOffline = 3 };

// Byte offsets of the liveness locks: far past the end of any segment (fcntl
// locks may lie beyond EOF), so they never overlap a region's bytes.
inline constexpr std::int64_t kLivenessLockBase = std::int64_t{1} << 40;

struct alignas(64) SegmentHeader {
    std::uint64_t magic;
    std::uint32_t layout_version;
    std::uint32_t header_bytes;
    std::uint64_t segment_bytes;

    Capacity capacity;
    std::uint32_t group_capacity;
    std::uint32_t leaf_capacity;
    std::uint32_t nh_record_capacity;

    // Region offsets from the start of the segment. The reader region is
    // page-aligned and is the only part readers map writable.
    std::uint64_t readers_offset;
    std::uint64_t readers_bytes;
    std::uint64_t dir_offset;
    std::uint64_t window_offset;
    std::uint64_t window_bytes;   // 8 per /24 of the window, page-aligned; 0: no window
    std::uint64_t leaves_offset;
    std::uint64_t groups_offset;
    std::uint64_t nh_map_offset;
    std::uint64_t nh_records_offset;
    std::uint64_t routes_offset;

    alignas(64) std::atomic<std::uint64_t> epoch;
    std::atomic<std::uint64_t> generation;           // any change: commits and next hops
    std::atomic<std::uint64_t> nexthop_generation;   // next-hop changes only
    std::atomic<std::uint32_t> writer_pid;
    std::atomic<std::uint32_t> route_count;
    std::atomic<std::uint32_t> nexthop_count;
    std::atomic<std::uint32_t> dead_readers_reaped;
    std::atomic<std::uint64_t> groups_used;
    std::atomic<std::uint64_t> leaves_used;
    std::atomic<std::uint64_t> retired_pending;
    std::atomic<std::uint64_t> reclaimed_total;
    // High-water marks of what writers of this segment handed out (leaf and
    // group elements, next-hop records, ids), raised before the memory is
    // written: a restarted writer treats everything below them that is not
    // live as retired (a dead writer's in-flight garbage, which readers may
    // still hold) and reuses it only after a grace period. 0: unknown, the
    // whole pool counts. Written by the writer only (writer.cc).
    std::atomic<std::uint32_t> leaves_high;
    std::atomic<std::uint32_t> groups_high;
    std::atomic<std::uint32_t> nh_records_high;
    std::atomic<std::uint32_t> nh_ids_high;
};

// Route records: the writer's persistent list of what it installed, one
// 64-bit word each so that a writer killed mid-update leaves every record
// either old or new. Bits: 0..31 address, 32..37 length, 38 valid, 40..63 next hop.
namespace route_record {
inline constexpr std::uint64_t kValid = 1ULL << 38;
constexpr std::uint64_t pack(Ipv4Addr addr, unsigned len, NextHopId nh) noexcept {
    return std::uint64_t{addr} | std::uint64_t{len} << 32 | kValid | std::uint64_t{nh} << 40;
}
constexpr bool valid(std::uint64_t r) noexcept { return r & kValid; }
constexpr Ipv4Addr addr(std::uint64_t r) noexcept { return static_cast<Ipv4Addr>(r); }
constexpr unsigned len(std::uint64_t r) noexcept { return (r >> 32) & 0x3f; }
constexpr NextHopId nexthop(std::uint64_t r) noexcept { return static_cast<NextHopId>(r >> 40); }
}  // namespace route_record

// The bytes a reader's loads can reach from `leaves` and `groups`
// (TrieView), whatever the segment holds: leaf indices are 32-bit sums
// (leaf_index wraps, never carries) and leafvec's 8-byte load at the largest
// base reads one word past it; group entries stay below 2^31 (group_index
// clears kGroupFlag).
inline constexpr std::uint64_t kLeafWindowBytes = ((std::uint64_t{1} << 32) + 1) * sizeof(NextHopId);
inline constexpr std::uint64_t kGroupWindowBytes = (std::uint64_t{1} << 31) * sizeof(NextHopId);
static_assert(sizeof(void*) == 8, "the guard windows need a 64-bit address space");

// The read side of the trie, as pointers into one process's mapping.
//
// Readers trust no index they load from the segment: a stray write, a bug in
// a writer or a hostile process sharing /dev/shm must cost wrong answers, not
// a load outside the mapping. They pay for it with address space, not
// instructions: a reader's `leaves` and `groups` point into guard windows
// (guard_window.h), each the file's region followed by zero pages up to the
// largest index the arithmetic below can form from any 64-bit directory
// entry and any leaf (kLeafWindowBytes, kGroupWindowBytes). So every load of
// lookup() stays in mapped memory whatever the segment holds; a zero page
// reads as "no route". Answers are ids as stored, possibly out of range on a
// corrupt segment: NextHopTable::get (reader.h) bounds them where they become
// an index. The writer's TrieView points into its own mapping: it reads only
// what it wrote.
//
// The dense window needs no guard window: its index is formed from the
// address and window_base/window_span alone, which come from the geometry
// validated at open (never reread from the header), and the region holds
// window_span >> 8 entries inside the mapped file. What a window entry holds
// becomes an index only as a group leaf, through group_index, which clears
// kGroupFlag: below 2^31 entries, inside the groups' guard window like any
// leaf's. Its fallback is an answer, bounded by NextHopTable::get.
struct TrieView {
    const std::atomic<std::uint64_t>* dir = nullptr;
    const NextHopId* leaves = nullptr;
    const NextHopId* groups = nullptr;
    const std::atomic<std::uint64_t>* window = nullptr;
    Ipv4Addr window_base = 0;
    std::uint32_t window_span = 0;   // 0: no window

    // leaves[] index of the leaf of /24 position (addr >> 8) & 63 in the
    // array at `base`: runs started at or before the position, counted by
    // shifting the positions above it out of leafvec. Bit 0 is always set,
    // so the count is at least 1; at most 64 whatever leafvec holds. The sum
    // is 32-bit on purpose: it wraps inside the leaf window, never past it.
    static std::uint32_t leaf_index(const NextHopId* leaves, std::uint32_t base, Ipv4Addr addr) noexcept {
        std::uint64_t leafvec;
        std::memcpy(&leafvec, &leaves[base], sizeof leafvec);
        const unsigned above = (~addr >> 8) & 63;   // 63 - position
        return base + kLeafHeader - 1 + static_cast<std::uint32_t>(__builtin_popcountll(leafvec << above));
    }
    static std::uint32_t group_index(NextHopId leaf, Ipv4Addr addr) noexcept {
        return (leaf & ~kGroupFlag) | (addr & 0xff);
    }
    // Inside the window the entry is the leaf and the fallback in one load;
    // elsewhere the directory gives the fallback and the leaf array the leaf.
    NextHopId lookup(Ipv4Addr addr) const noexcept {
        std::uint64_t entry;
        NextHopId leaf;
        if (const std::uint32_t off = addr - window_base; off < window_span) {
            entry = window[off >> 8].load(std::memory_order_acquire);
            leaf = leaf_of(entry);
        } else {
            entry = dir[addr >> kDirShift].load(std::memory_order_acquire);
            leaf = leaves[leaf_index(leaves, leaf_base_of(entry), addr)];
        }
        if (leaf & kGroupFlag)
            leaf = groups[group_index(leaf, addr)];
        return leaf != kNoRoute ? leaf : fallback_of(entry);
    }

    // Bulk lookup in two passes over the burst, so that the loads of each
    // pass are independent and in flight together: window entries, or
    // directory entries and leaves, then tbl8 groups. Pass one leaves each
    // address's (fallback, leaf) pair in one 64-bit word, the window entry's
    // own format: one store and one load per address between the passes.
    // The table's pointers are copied to locals: the acquire loads are
    // compiler barriers, and members would be reloaded from memory at each
    // of them.
    void lookup_bulk(const Ipv4Addr* addrs, NextHopId* out, std::size_t n) const noexcept {
        constexpr std::size_t kChunk = 32;
        const std::atomic<std::uint64_t>* const d = dir;
        const NextHopId* const l = leaves;
        const NextHopId* const g = groups;
        const std::atomic<std::uint64_t>* const w = window;
        const Ipv4Addr w_base = window_base;
        const std::uint32_t w_span = window_span;
        std::uint64_t entry[kChunk];
        for (std::size_t i = 0; i < n; i += kChunk) {
            const std::size_t m = n - i < kChunk ? n - i : kChunk;
            const Ipv4Addr* a = addrs + i;
            NextHopId* o = out + i;
            for (std::size_t k = 0; k < m; ++k) {
                // In a local: the acquire load is a compiler barrier, a[k]
                // would be loaded again after it.
                const Ipv4Addr addr = a[k];
                if (const std::uint32_t off = addr - w_base; off < w_span) {
                    entry[k] = w[off >> 8].load(std::memory_order_acquire);
                } else {
                    const std::uint64_t e = d[addr >> kDirShift].load(std::memory_order_acquire);
                    entry[k] = window_entry(l[leaf_index(l, leaf_base_of(e), addr)], fallback_of(e));
                }
            }
            for (std::size_t k = 0; k < m; ++k) {
                NextHopId leaf = leaf_of(entry[k]);
                if (leaf & kGroupFlag)
                    leaf = g[group_index(leaf, a[k])];
                o[k] = leaf != kNoRoute ? leaf : fallback_of(entry[k]);
            }
        }
    }
};

}  // namespace podfwd::lpm
