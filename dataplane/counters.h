// Per-lcore counters of the fast path: what happened to every packet, and
// why every dropped one was dropped. Plain integers written by one lcore
// only; readers (the CLI) tolerate a value one burst old.
#pragma once

#include <array>
#include <cstdint>

namespace podfwd::dp {

enum class PortRole : std::uint8_t { kUplink = 0, kHost = 1 };
inline constexpr unsigned kPortRoles = 2;

enum class Action : std::uint8_t {
    kHostGw,       // MACs rewritten, out the uplink
    kIpipEncap,
    kVxlanEncap,
    kIpipDecap,    // then forwarded by the inner destination: counted again
    kVxlanDecap,
    kToHost,       // to the node's kernel: a local pod, or addressed to the node
    // The exception path: a punted packet answered or turned into an error.
    kArpReply,          // an ARP request for us answered (the packet became the reply)
    kIcmpTimeExceeded,  // the packet became an ICMP time exceeded (RFC 792) to its source
    kIcmpFragNeeded,    // the packet became an ICMP fragmentation needed (RFC 1191) with the next-hop MTU
    kLocalTtlOne,       // the node's own packet sent with TTL 1, passed on unexpired (then counted as routed)
    // The resolver (resolver.h): ARP on the wire for next hops without a MAC.
    kArpRequest,        // an ARP request sent (broadcast, unicast probe, or our announcement): a frame of its own
    kArpLearned,        // an ARP frame not answered that told a tracked neighbour's MAC (replies to us among them)
    kHeldSent,          // a packet held for its neighbour, sent once it answered (then counted as routed too)
    kCount
};

enum class Drop : std::uint8_t {
    kShortFrame,
    kNotForUs,           // uplink unicast to another MAC (a flooded frame): never routed again
    kNotIpv4,            // neither IPv4 nor ARP
    kBadVersion,
    kBadHeaderLength,    // IHL < 5
    kIpv4Options,        // IHL > 5: not supported on the fast path
    kBadTotalLength,
    kBadChecksum,
    kTtlExceeded,        // TTL <= 1 on a packet to forward, no ICMP error allowed about it
    kNoRoute,
    kBlackhole,          // route to a drop next hop
    kNextHopGone,        // route's next hop deleted under us
    kUnresolvedNextHop,  // no MAC and no L2 IP to resolve, or no resolver on this lcore
    kIpipUnknownSource,  // IPIP from a node that is no route's next hop
    kVxlanBadHeader,     // I flag missing, or UDP length wrong
    kVxlanWrongVni,
    kVxlanUnknownSource, // VXLAN from a node that is no route's next hop
    kTunnelFragment,     // fragments of tunnelled packets are not reassembled
    kMtuExceeded,        // over the uplink MTU (after encapsulation): DF clear (not fragmented), or no ICMP allowed
    kNoHeadroom,         // no room to prepend the outer headers
    kMultiSegment,       // chained buffers: the fast path wants one contiguous buffer
    // The exception path. A punted packet is counted once: under the action
    // it became, or under one of these (or kTtlExceeded / kMtuExceeded when
    // no ICMP error may be sent about it: an ICMP error, a fragment other
    // than the first, a broadcast or multicast).
    kArpIgnored,         // malformed, not a request for us, or not IPv4-over-Ethernet
    kIcmpRateLimited,    // the lcore's ICMP token bucket was empty
    // The resolver: a packet whose next hop has no MAC, not held.
    kHoldQueueFull,      // its neighbour's hold queue (or all of them together) was full
    kNeighbourFailed,    // its neighbour did not answer: refused while failed, or held and freed when it failed
    kNeighbourTableFull, // no room for another neighbour
    kResolverBusy,       // another lcore's packet: the ring to the resolver lcore was full
    kHeldAtExit,         // still held when the dataplane stopped
    kCount
};

const char* action_name(Action) noexcept;
const char* drop_name(Drop) noexcept;

struct alignas(64) LcoreCounters {
    std::array<std::uint64_t, kPortRoles> rx_packets{};
    std::array<std::uint64_t, kPortRoles> tx_packets{};
    std::array<std::uint64_t, kPortRoles> tx_dropped{};   // the port's queue was full
    std::array<std::uint64_t, static_cast<unsigned>(Action::kCount)> actions{};
    std::array<std::uint64_t, static_cast<unsigned>(Drop::kCount)> drops{};

    void count(Action a) noexcept { ++actions[static_cast<unsigned>(a)]; }
    void count(Drop d) noexcept { ++drops[static_cast<unsigned>(d)]; }
    std::uint64_t of(Action a) const noexcept { return actions[static_cast<unsigned>(a)]; }
    std::uint64_t of(Drop d) const noexcept { return drops[static_cast<unsigned>(d)]; }
};

}  // namespace podfwd::dp
