// The resolver: ARP on the wire for next hops whose record has no MAC. The
// fast path punts such packets (Verdict::kPuntUnresolved, after every other
// check passed); the resolver looks their L2 next hop up in its
// NeighbourCache and either finishes the packet at once with the MAC it
// knows (Forwarder::finish) or holds it until the neighbour answers,
// sending the ARP requests the cache asks for. ARP frames from the uplink
// teach it MACs; held packets go out, in order, when their neighbour
// answers, and are freed when it does not. A timer resolves the table's
// next hops ahead of traffic and probes the stale ones.
//
// No DPDK, like the exception path beside it: the poll loop, the pcap
// tool, the tests and the fuzzer run the same code. Packets are named by
// opaque handles (an mbuf pointer, an index): the resolver keeps handles,
// never buffers, and gives every held one back exactly once (released or
// freed). One per process, on the lcore that owns it; the packet's own
// work allocates nothing (the buffers are sized at construction).
//
//   Resolver resolver(config, table, forwarder, exception);
//   resolver.announce(frame);                        // RFC 5227 announcement at start
//   for each punt:  resolver.handle(from, verdict, pkt, handle, now, counters)
//                   kToUplink / kToHost / kRoute / kDrop as ExceptionResult; kHeld: kept
//   every loop:     resolver.tick(now, counters)     // runs every tick_ns, returns at once otherwise
//   then drain:     take_requests  → write_request into a new frame, send on the uplink
//                   take_released  → release(view, handle, ...) and send as it says
//                   take_freed     → free (counted already)
//   at exit:        flush(counters), then take_released/take_freed once more: free them all
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "dataplane/counters.h"
#include "dataplane/exception.h"
#include "dataplane/fastpath.h"
#include "dataplane/neighbour.h"
#include "lpm/reader.h"

namespace podfwd::dp {

enum class ResolveOutcome : std::uint8_t {
    kToUplink,   // send on the uplink as rewritten
    kToHost,     // send to the host port as rewritten
    kDrop,       // free it: counted already
    kRoute,      // the exception path's kRoute (an ICMP error, the node's TTL-1 packet): route it
    kHeld,       // kept: the handle comes back through take_released() or take_freed()
};

// The exception path's result as the resolver's (the same places, kHeld aside).
inline ResolveOutcome outcome_of(ExceptionResult r) noexcept {
    switch (r) {
    case ExceptionResult::kToUplink: return ResolveOutcome::kToUplink;
    case ExceptionResult::kToHost: return ResolveOutcome::kToHost;
    case ExceptionResult::kRoute: return ResolveOutcome::kRoute;
    case ExceptionResult::kDrop: break;
    }
    return ResolveOutcome::kDrop;
}

class Resolver {
public:
    static constexpr std::uint64_t kDefaultTickNs = 100'000'000;

    // `forwarder` and `exception` are this lcore's; the table is the one
    // they read (the caller's ReaderSlot covers the resolver's lookups).
    Resolver(const NodeConfig& config, const lpm::TableView& table, Forwarder& forwarder, ExceptionPath& exception,
             const NeighbourConfig& neighbour = NeighbourConfig{}, std::uint64_t tick_ns = kDefaultTickNs);

    // Any punted packet, as ExceptionPath::handle takes it. ARP from the
    // uplink is learned from first (and counted kArpLearned instead of
    // kArpIgnored when it taught something and was not answered);
    // kPuntUnresolved is finished or held (`handle` names it); the rest is
    // the exception path's. Counts the packet once (a held one: when it
    // comes back).
    ResolveOutcome handle(PortRole from, Verdict punt, PacketView& pkt, std::uintptr_t handle, std::uint64_t now_ns,
                          LcoreCounters& counters) noexcept;

    // A handle from take_released(): its packet finished with the MAC now
    // known (counted kHeldSent as well when sent), or held again when its
    // route moved to another unresolved next hop meanwhile.
    ResolveOutcome release(PacketView& pkt, std::uintptr_t handle, std::uint64_t now_ns,
                           LcoreCounters& counters) noexcept;

    // The timers, when tick_ns has passed since the last run: the table's
    // next hops resolved ahead of traffic (those without a MAC) or kept
    // fresh (those with one: probed when stale), the cache's
    // retransmissions, failures (their held packets to take_freed(),
    // counted kNeighbourFailed) and ageing. Returns whether it ran.
    bool tick(std::uint64_t now_ns, LcoreCounters& counters) noexcept;

    // Every held handle to take_freed(), counted kHeldAtExit; the cache
    // forgets everything.
    void flush(LcoreCounters& counters) noexcept;

    // What the calls above produced, oldest first; each moves up to
    // out.size() into `out` and returns how many.
    std::size_t take_requests(std::span<ArpRequest> out) noexcept;
    std::size_t take_released(std::span<std::uintptr_t> out) noexcept;
    std::size_t take_freed(std::span<std::uintptr_t> out) noexcept;

    // The frames to send (proto::kArpFrameSize bytes; the NIC pads): a
    // request from the uplink MAC and node IP (count Action::kArpRequest
    // when sent), and the announcement of the node IP (RFC 5227 2.3).
    std::size_t write_request(std::uint8_t* frame, const ArpRequest& request) const noexcept;
    std::size_t write_announcement(std::uint8_t* frame) const noexcept;

    // Moves whenever the neighbours changed (a new entry, a state, a MAC, a
    // queue): publishing compares it with the last one published.
    std::uint64_t version() const noexcept { return version_; }
    const NeighbourCache& cache() const noexcept { return cache_; }

private:
    // A FIFO of fixed capacity in a buffer sized once: items in
    // [head, tail); room() hands the free end to a callee that writes into
    // it, commit() keeps what it wrote. Nothing is zeroed or allocated
    // after reserve(): room() runs for every ARP frame learnt from.
    template <typename T>
    struct Pending {
        std::vector<T> buffer;
        std::size_t head = 0;
        std::size_t tail = 0;
        void reserve(std::size_t n) { buffer.resize(n); }
        std::size_t size() const noexcept { return tail - head; }
        std::span<T> room() noexcept;   // the free end (compacting first)
        void commit(std::size_t n) noexcept { tail += n; }
        bool push(const T& v) noexcept;
        std::size_t take(std::span<T> out) noexcept;
    };

    ResolveOutcome unresolved(PacketView& pkt, std::uintptr_t handle, std::uint64_t now_ns, LcoreCounters& counters,
                              bool released) noexcept;
    bool learn(const PacketView& pkt, std::uint64_t now_ns) noexcept;
    void rebuild_nexthops();
    void request(const std::optional<ArpRequest>& r) noexcept;

    NodeConfig config_;
    const lpm::TableView& table_;
    Forwarder& forwarder_;
    ExceptionPath& exception_;
    NeighbourCache cache_;
    std::uint64_t tick_ns_;
    std::uint64_t next_tick_ns_ = 0;
    bool ticked_ = false;
    std::uint64_t version_ = 0;

    Pending<ArpRequest> requests_;
    Pending<std::uintptr_t> released_;
    Pending<std::uintptr_t> freed_;
    std::vector<Ipv4Addr> failed_;   // tick()'s scratch

    // The table's L2 next hops (deduplicated), and whether every record
    // naming it has the MAC: rebuilt when the next hops change.
    struct Wanted {
        Ipv4Addr ip;
        bool resolved;
    };
    std::vector<Wanted> wanted_;
    std::uint64_t nexthop_generation_ = ~std::uint64_t{0};
};

}  // namespace podfwd::dp
