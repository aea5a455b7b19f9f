// The dataplane's neighbour cache: which MAC answers for an IPv4 next hop on
// the uplink, learned with ARP (RFC 826) by the dataplane itself once the NIC
// is bound to DPDK and the kernel no longer sees the wire. Pure logic: no
// DPDK, no I/O, no clock reads (every call takes `now_ns`, any monotonic
// clock), so the exception path, the tests and a model of it run the same
// code. One cache per lcore that resolves, like the ExceptionPath beside it.
//
//   resolve(ip, now)              → the MAC to send with, and maybe an ARP request to send
//   hold(ip, handle, now)         → unknown neighbour: queue the packet, maybe a broadcast request
//   want(ip, now)                 → resolve ahead of traffic: maybe a broadcast request
//   on_arp(ip, mac, now, reply)   → learned: the held packets to send now, in order
//   tick(now, spans)              → retransmissions, failures (held packets to free), ageing, gc
//
// The states follow Linux's neighbour table (net/core/neighbour.c),
// simplified:
//
//   (unknown)   hold() ─▶ INCOMPLETE, first broadcast request now
//   INCOMPLETE  a broadcast request every retrans_ns; an ARP reply to us
//               ─▶ REACHABLE, other ARP from it ─▶ STALE (either way the
//               held packets go out); max_multicast_probes unanswered ─▶ FAILED
//   REACHABLE   reachable_ns after the last reply to us ─▶ STALE
//   STALE       used (resolve()) ─▶ PROBE, first unicast request now;
//               unused for gc_stale_ns ─▶ removed
//   PROBE       a unicast request every retrans_ns, still sending with the
//               MAC; a reply to us ─▶ REACHABLE; max_unicast_probes
//               unanswered ─▶ FAILED
//   FAILED      held packets returned for freeing; hold() drops packets for
//               failed_hold_ns, then starts over (INCOMPLETE); tick()
//               removes it after failed_hold_ns
//   any with a MAC: a reply to us ─▶ REACHABLE (with the MAC it gives);
//               other ARP with a different MAC ─▶ STALE with that MAC
//
// - No DELAY state: Linux waits 5 s after using a stale entry, hoping that
//   upper-layer confirmation (TCP ACKs) makes the probe unnecessary; a
//   router has no upper layer to confirm anything, so a used stale entry is
//   probed at once. It is still used while probed: the MAC was right
//   recently, and dropping traffic for a probe's round trip would be worse
//   than sending a few packets to a MAC that moved.
// - A REACHABLE entry older than reachable_ns counts as STALE wherever it is
//   looked at, whether or not tick() has run since: resolve() probes it.
// - ARP that is not a reply to us (requests, gratuitous ARP, replies to
//   someone else) only updates neighbours already tracked: anyone may send
//   it, and creating entries from it would let the segment fill the table.
//   (Linux, following RFC 826's merge rule, does create a STALE entry for
//   the sender of a request addressed to it; a router resolving only its
//   next hops has no use for one.) A changed MAC from it makes the
//   entry STALE (to be probed on next use) rather than REACHABLE: nobody
//   asked, so nothing confirms it.
// - Every held handle comes back exactly once: with a MAC from on_arp(), or
//   for freeing from tick() (failure) or erase(). The per-neighbour and the
//   global hold limits keep an unreachable next hop from starving the mbuf
//   pool; a handle refused (HoldOutcome other than kHeld) is never kept.
//
// Memory is allocated once, by the constructor; nothing after it allocates,
// throws, locks or makes a system call.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "common/ipv4.h"
#include "common/mac.h"

namespace podfwd::dp {

enum class NeighbourState : std::uint8_t {
    kIncomplete,   // broadcast requests sent, no answer yet; packets may be held
    kReachable,    // an ARP reply to us within reachable_ns
    kStale,        // the MAC is older than that: still used, probed when used
    kProbe,        // stale and used: unicast requests sent to the known MAC
    kFailed,       // no answer: packets to it are dropped until failed_hold_ns passed
};
const char* neighbour_state_name(NeighbourState) noexcept;

struct NeighbourConfig {
    std::uint32_t entries = 1024;             // neighbours tracked at once
    std::uint32_t hold_per_neighbour = 8;     // packets held per unresolved neighbour
    std::uint32_t hold_total = 256;           // packets held in all: the mbuf pool must not starve
    std::uint64_t reachable_ns = 30'000'000'000;    // Linux's base_reachable_time
    std::uint64_t retrans_ns = 1'000'000'000;       // between requests (Linux's retrans_time)
    std::uint32_t max_multicast_probes = 3;   // broadcast requests while incomplete
    std::uint32_t max_unicast_probes = 3;     // unicast requests while probing
    // A failed neighbour stays failed this long, so that packets to a dead
    // next hop are dropped at once instead of each starting a resolution
    // (and a broadcast) again.
    std::uint64_t failed_hold_ns = 3'000'000'000;
    std::uint64_t gc_stale_ns = 60'000'000'000;     // stale and unused this long: removed (Linux's gc_staletime)
    // Entries looked at per tick() call; 0: all. A later call carries on
    // where the last one stopped.
    std::uint32_t tick_visit_limit = 0;
};

struct NeighbourCounters {
    std::uint64_t requests_sent = 0;   // ARP requests asked for (broadcast and unicast)
    std::uint64_t replies_seen = 0;    // on_arp() with is_reply_to_us
    std::uint64_t resolved = 0;        // neighbours that got a MAC while incomplete or failed
    std::uint64_t failed = 0;          // neighbours that became failed
    std::uint64_t held = 0;            // handles queued
    std::uint64_t hold_dropped = 0;    // handles refused (not kept): queue full, table full, failed, ip 0
    std::uint64_t released = 0;        // handles given back with a MAC, to send
    std::uint64_t freed = 0;           // handles given back without one (failure, erase), to free
    std::uint64_t removed = 0;         // entries removed by tick() (failed or stale ones aged out)
};

// An ARP request the caller should send now: who-has `target`, to `dst`
// (broadcast while incomplete, the known MAC while probing: RFC 1122
// 2.3.2.1 prefers unicast to refresh a cache entry, sparing every host on
// the segment).
struct ArpRequest {
    Ipv4Addr target = 0;
    MacAddr dst{};
    bool unicast = false;

    friend bool operator==(const ArpRequest&, const ArpRequest&) = default;
};

struct ResolveResult {
    std::optional<MacAddr> mac;            // send with this; none: hold() the packet
    std::optional<ArpRequest> request;     // send this too
};

enum class HoldOutcome : std::uint8_t {
    kHeld,        // kept; given back once later (on_arp, or tick/erase for freeing)
    kQueueFull,   // not kept: the neighbour's queue or the global cap is full
    kTableFull,   // not kept: no room for another neighbour
    kFailed,      // not kept: resolution failed less than failed_hold_ns ago
    kResolved,    // not kept, nothing wrong: the neighbour has a MAC, resolve() and send
    kInvalid,     // not kept: ip 0
};
const char* hold_outcome_name(HoldOutcome) noexcept;

struct HoldResult {
    HoldOutcome outcome = HoldOutcome::kInvalid;
    std::optional<ArpRequest> request;     // a new resolution's first broadcast
};

struct ArpUpdate {
    // False: not a tracked neighbour (or ip 0, a sender MAC that is not
    // unicast, or `released` shorter than the neighbour's queue); nothing changed.
    bool updated = false;
    // The MAC resolve() gives changed: learned, or replaced by another.
    bool mac_changed = false;
    std::size_t released = 0;   // handles written to the caller's span: send them now with the MAC
};

// Where tick() writes; it stops early (TickResult::complete false) rather
// than lose anything when one is full. `freed` should hold at least
// hold_per_neighbour handles, or a neighbour with a longer queue can never fail.
struct TickSpans {
    std::span<ArpRequest> requests;
    std::span<Ipv4Addr> failed;           // neighbours that failed: unresolve their next hops
    std::span<std::uintptr_t> freed;      // the handles they held, in order: free them
};

struct TickResult {
    std::size_t requests = 0;
    std::size_t failed = 0;
    std::size_t freed = 0;
    std::size_t removed = 0;
    bool complete = true;   // every entry looked at; false: call again (the limit, or a full span)
};

struct EraseResult {
    bool erased = false;   // false: not tracked, or `freed` shorter than its queue (nothing changed)
    std::size_t freed = 0;
};

// For listings (the CLI, tests).
struct NeighbourInfo {
    Ipv4Addr ip = 0;
    MacAddr mac{};                       // zero while incomplete or failed
    NeighbourState state = NeighbourState::kIncomplete;
    std::uint64_t confirmed_age_ns = 0;  // since the last reply to us (never confirmed: since created)
    std::uint64_t used_age_ns = 0;       // since last resolved or held for
    std::uint32_t probes = 0;            // requests sent in the current incomplete or probe phase
    std::uint32_t queued = 0;            // handles held

    friend bool operator==(const NeighbourInfo&, const NeighbourInfo&) = default;
};

class NeighbourCache {
public:
    using Config = NeighbourConfig;

    // Allocates everything it will use. Throws std::invalid_argument for
    // entries 0 or above 2^30.
    explicit NeighbourCache(const Config& config = Config{});

    // The MAC to send a packet to `ip` with, if known (reachable, stale,
    // probe). Using a stale entry starts probing it: the first unicast
    // request is due now. No entry is created: for no MAC, hold() the packet.
    ResolveResult resolve(Ipv4Addr ip, std::uint64_t now_ns) noexcept;

    // Queues a packet to a neighbour without a MAC, creating the entry (its
    // first broadcast request due now) when it is unknown, or failed longer
    // ago than failed_hold_ns.
    HoldResult hold(Ipv4Addr ip, std::uintptr_t handle, std::uint64_t now_ns) noexcept;

    // Resolves `ip` ahead of any packet (a next hop of the table without a
    // MAC): creates the entry, incomplete with its first broadcast due now,
    // when it is unknown, or failed longer ago than failed_hold_ns, as
    // hold() does without a packet. Otherwise (tracked, the table full, ip
    // 0) nothing changes and nothing is sent.
    std::optional<ArpRequest> want(Ipv4Addr ip, std::uint64_t now_ns) noexcept;

    // An ARP packet from `sender_ip` at `sender_mac`. `is_reply_to_us`: a
    // reply addressed to us, the only thing that confirms reachability.
    // Held handles are written to `released`, oldest first.
    ArpUpdate on_arp(Ipv4Addr sender_ip, const MacAddr& sender_mac, std::uint64_t now_ns, bool is_reply_to_us,
                     std::span<std::uintptr_t> released) noexcept;

    // Runs the timers that are due: retransmissions, failures, reachable →
    // stale, removal of failed and unused stale entries. Looks at each
    // entry at most once per call (at most tick_visit_limit of them).
    // Call it every few hundred milliseconds; an entry is handled late by
    // however late the call is.
    TickResult tick(std::uint64_t now_ns, const TickSpans& out) noexcept;

    // Forgets `ip`; its held handles are written to `freed`.
    EraseResult erase(Ipv4Addr ip, std::span<std::uintptr_t> freed) noexcept;

    std::optional<NeighbourInfo> find(Ipv4Addr ip, std::uint64_t now_ns) const noexcept;
    // Writes up to out.size() entries, in no particular order; returns how many.
    std::size_t snapshot(std::uint64_t now_ns, std::span<NeighbourInfo> out) const noexcept;
    template <typename Fn>
    void for_each(std::uint64_t now_ns, Fn&& fn) const {
        for (std::uint32_t i = 0; i < size_; ++i)
            fn(info_of(entries_[i], now_ns));
    }

    std::size_t size() const noexcept { return size_; }
    std::size_t capacity() const noexcept { return config_.entries; }
    std::size_t held() const noexcept { return held_total_; }
    const Config& config() const noexcept { return config_; }
    const NeighbourCounters& counters() const noexcept { return counters_; }

private:
    static constexpr std::uint32_t kNone = 0xffffffff;

    struct Entry {
        Ipv4Addr ip = 0;
        NeighbourState state = NeighbourState::kIncomplete;
        MacAddr mac{};
        std::uint32_t probes = 0;
        std::uint32_t queued = 0;
        std::uint32_t queue_head = kNone;   // oldest held handle (index into the hold pool)
        std::uint32_t queue_tail = kNone;
        std::uint64_t next_ns = 0;          // incomplete, probe: next request, or failure when probes are spent
        std::uint64_t failed_ns = 0;
        std::uint64_t confirmed_ns = 0;
        std::uint64_t used_ns = 0;
    };

    NeighbourState effective_state(const Entry& e, std::uint64_t now_ns) const noexcept;
    NeighbourInfo info_of(const Entry& e, std::uint64_t now_ns) const noexcept;

    std::uint32_t home_slot(Ipv4Addr ip) const noexcept;
    std::uint32_t find_slot(Ipv4Addr ip) const noexcept;   // slot holding ip's index, or kNone
    std::uint32_t find_index(Ipv4Addr ip) const noexcept;  // ip's entry, or kNone
    std::uint32_t insert(Ipv4Addr ip) noexcept;            // a new entry's index; the table has room
    void remove(std::uint32_t index) noexcept;             // its queue must be empty

    // (Re)starts resolving: incomplete, no MAC, the first broadcast now.
    std::optional<ArpRequest> start_incomplete(Entry& e, std::uint64_t now_ns) noexcept;
    // Sends the next request of the current phase if any are left (else
    // the entry fails when next_ns is due).
    std::optional<ArpRequest> next_request(Entry& e, std::uint64_t now_ns) noexcept;
    bool enqueue(Entry& e, std::uintptr_t handle) noexcept;
    // Moves every handle of e's queue to `out` (it must have room), oldest first.
    std::size_t drain(Entry& e, std::span<std::uintptr_t> out) noexcept;

    Config config_;
    NeighbourCounters counters_;

    // Open addressing with linear probing over at least twice as many slots
    // as entries (so a probe sequence is short and always meets an empty
    // slot); a slot holds an index into entries_, which stay dense (removal
    // moves the last one into the hole) so tick() walks only live entries.
    std::vector<std::uint32_t> slots_;
    std::uint32_t slot_mask_ = 0;
    unsigned slot_shift_ = 0;
    std::vector<Entry> entries_;
    std::uint32_t size_ = 0;
    std::uint32_t tick_cursor_ = 0;

    // Held handles: one pool of hold_total nodes shared by all entries
    // (singly linked FIFOs, a free list), so the global cap costs no memory
    // per entry and an entry's queue is never copied.
    std::vector<std::uintptr_t> hold_handles_;
    std::vector<std::uint32_t> hold_next_;
    std::uint32_t hold_free_ = kNone;
    std::uint32_t held_total_ = 0;
};

}  // namespace podfwd::dp
