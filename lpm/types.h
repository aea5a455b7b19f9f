// Vocabulary of the route table shared by its writer (control) and its
// readers (dataplane, CLI). Everything here is a plain value type.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "common/ipv4.h"

namespace podfwd::lpm {

// Index of a next-hop record. Routes store ids, so changing a next hop (its
// MAC resolved, its mode switched) is one write whatever the number of routes.
using NextHopId = std::uint32_t;
inline constexpr NextHopId kNoRoute = 0;   // lookup result when nothing matches

enum class ForwardMode : std::uint8_t {
    kDrop = 0,     // blackhole
    kLocal = 1,    // deliver to the node's kernel through the host port
    kHostGw = 2,   // rewrite MACs and forward on the uplink
    kIpip = 3,     // encapsulate in IPv4 (protocol 4) to node_ip
    kVxlan = 4,    // encapsulate in UDP/VXLAN to node_ip
};

const char* mode_name(ForwardMode) noexcept;

// One next-hop record, 32 bytes; immutable once published (an update writes a
// new record and switches the id to it), so a reader never sees it torn.
struct NextHop {
    Ipv4Addr node_ip = 0;              // next-hop node (host byte order)
    std::uint32_t vni = 0;             // VXLAN network identifier
    std::uint16_t port = 0;            // egress DPDK port
    ForwardMode mode = ForwardMode::kDrop;
    std::uint8_t flags = 0;            // NextHop::kMacResolved, ...
    std::array<std::uint8_t, 6> mac{}; // L2 next hop on the uplink: the node's MAC, or the gateway's
    std::array<std::uint8_t, 6> vtep_mac{};   // VXLAN: the remote VTEP's MAC (inner destination)
    // Whose MAC `mac` is (host byte order): node_ip on the uplink subnet,
    // the gateway off it. The dataplane resolves it with ARP while the MAC
    // is unknown. 0 (a record from a writer before this field): node_ip.
    Ipv4Addr l2_ip = 0;
    std::uint32_t reserved1 = 0;       // room for later fields (MTU, egress queue)

    static constexpr std::uint8_t kMacResolved = 1;
    // The uplink subnet's connected route: the L2 next hop is each packet's
    // own destination, so the record never holds a MAC; the dataplane
    // resolves and rewrites such packets in its exception path. Never set
    // together with kMacResolved: the fast path tests that bit alone.
    static constexpr std::uint8_t kConnected = 2;

    bool mac_resolved() const noexcept { return flags & kMacResolved; }
    bool connected() const noexcept { return flags & kConnected; }
    Ipv4Addr l2_nexthop() const noexcept { return l2_ip != 0 ? l2_ip : node_ip; }
    friend bool operator==(const NextHop&, const NextHop&) = default;
};
static_assert(sizeof(NextHop) == 32);

struct Route {
    Prefix4 prefix;
    NextHopId nexthop = kNoRoute;
    friend bool operator==(const Route&, const Route&) = default;
};

// The largest Capacity::max_groups: the 2 * max_groups + 1 group ids must stay
// below 2^23, where a group's leaf would collide with group 0's (layout.h).
inline constexpr std::uint32_t kMaxGroups = (1u << 22) - 1;

inline constexpr std::uint32_t kNoDenseWindow = 0;     // Capacity::dense_window_len: no window
inline constexpr unsigned kMinDenseWindowLen = 8;      // 2^16 entries, 512 KiB
inline constexpr unsigned kMaxDenseWindowLen = 24;     // one entry

// Fixed at segment creation. Pools are sized from these; the segment is sparse,
// so capacity costs address space, and memory only as it is used.
struct Capacity {
    std::uint32_t max_routes = 1u << 20;     // IPv4 prefixes
    std::uint32_t max_nexthops = 1u << 16;   // ids 1..max_nexthops
    std::uint32_t reader_slots = 64;         // concurrent reader threads (lcores, CLI)
    std::uint32_t max_groups = 1u << 17;     // /24s holding longer prefixes (1 KiB each; twice reserved for copy-on-write)
    // The dense window (layout.h): every /24 inside this prefix answered in
    // one load, 8 bytes each (a /8: 512 KiB). Lengths 8..24, host bits
    // clear; length kNoDenseWindow (with address 0): no window.
    Ipv4Addr dense_window_addr = 0x0a000000u;   // 10.0.0.0/8: the usual pod supernet
    std::uint32_t dense_window_len = 8;
    friend bool operator==(const Capacity&, const Capacity&) = default;
};

// Table-wide counters kept in the segment header, readable by any reader.
struct TableStats {
    std::uint64_t generation = 0;      // bumped by every commit and next-hop change
    std::uint64_t epoch = 0;           // QSBR grace-period counter
    std::uint32_t routes = 0;
    std::uint32_t nexthops = 0;
    std::uint64_t groups_used = 0;     // tbl8 groups, including those awaiting reuse
    std::uint64_t leaves_used = 0;
    std::uint64_t retired_pending = 0; // elements waiting for a grace period
    std::uint64_t reclaimed_total = 0;
    std::uint32_t readers_online = 0;
    std::uint32_t dead_readers_reaped = 0;
    std::uint32_t writer_pid = 0;

    // The writer's own view: filled by TableWriter::stats(), zero through a
    // TableView. A reader is stalled when a wait for it timed out
    // (TableWriter::Options::reclaim_timeout) and it has not passed a
    // quiescent state since: the writer no longer waits for it and lets
    // route changes use the pools' reserve.
    std::uint32_t stalled_reader_pid = 0;    // 0: none (pid in the reader's own namespace)
    std::uint32_t stalled_reader_slot = 0;
    std::uint64_t stalled_ms = 0;            // since the wait that timed out began
    std::uint64_t reserve_elements = 0;      // held back in the pools for a stalled reader
    std::uint64_t reserve_used = 0;          // of those, in use
    std::uint32_t reserve_used_pct = 0;      // of the pool whose reserve is most used
    std::uint64_t reclaim_waits = 0;         // waits for readers, each bounded by reclaim_timeout
    std::uint64_t reclaim_timeouts = 0;      // of those, timed out
    std::uint32_t recovery_dropped_records = 0;   // corrupt route records dropped when the writer re-attached
};

}  // namespace podfwd::lpm
