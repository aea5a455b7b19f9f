// The layout of the dataplane's neighbour segment, /dev/shm/<table>.neigh.<pid>:
// the neighbours its resolver learned with ARP, with their states. The
// dataplane writes it; podfwd-control reads it as a neighbour source (below
// the CLI and the static file) and writes the MACs into the next-hop
// records, so every route through a next hop follows at once; podfwdctl
// shows it in `neigh list`. Free of DPDK, like stats_layout.h, so that
// readers build without the dataplane binary.
//
// One writer (the resolver lcore), any number of readers in other
// processes, no lock: a sequence counter. The writer makes `seq` odd,
// rewrites `count` and the entries, then makes it even again (release); a
// reader loads `seq` (acquire), copies count and entries, loads `seq`
// again after an acquire fence, and retries when it was odd or changed.
#pragma once

#include <atomic>
#include <cstdint>

namespace podfwd::dp {

inline constexpr std::uint64_t kNeighMagic = 0x4749454e44574650;   // "PFWDNEIG" little-endian
inline constexpr std::uint32_t kNeighVersion = 1;

struct NeighHeader {
    std::uint64_t magic;
    std::uint32_t version;
    std::uint32_t capacity;            // entry slots after the header
    std::uint32_t entry_size;          // bytes per entry (sizeof(NeighEntry))
    std::uint32_t pid;                 // the dataplane's
    std::atomic<std::uint64_t> seq;    // odd while the writer rewrites the entries
    std::uint32_t count;               // valid entries, <= capacity
    std::uint32_t reserved0;
    std::uint64_t published_unix_ns;   // when the entries were written: their ages count from it
    std::uint64_t reserved1[2];
};
static_assert(sizeof(NeighHeader) == 64);
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);

// One neighbour, as NeighbourCache::snapshot() gives it.
struct NeighEntry {
    std::uint32_t ip;                  // host byte order
    std::uint8_t state;                // dp::NeighbourState (dataplane/neighbour.h)
    std::uint8_t reserved0;
    std::uint8_t mac[6];               // zero while incomplete or failed
    std::uint32_t probes;              // requests sent in the current incomplete or probe phase
    std::uint32_t queued;              // packets held for it
    std::uint32_t confirmed_age_ms;    // since the last ARP reply to us (saturates)
    std::uint32_t used_age_ms;         // since a packet last needed it (saturates)
    std::uint32_t reserved1;
};
static_assert(sizeof(NeighEntry) == 32);
static_assert(alignof(NeighEntry) == 4);

}  // namespace podfwd::dp
