// The exception path: what the fast path punts (Verdict::kPunt*) is answered
// here, one packet at a time, in its own buffer. No DPDK, like the fast path,
// so the poll loop, the pcap tool and the tests run the same code; per
// packet no allocation, lock, system call, exception or virtual call.
//
//   ExceptionPath exception(config, table);        // one per lcore, beside its Forwarder
//   forwarder.process(from, pkts, verdicts, n, counters);
//   for each i with is_punt(verdicts[i]):
//       switch (exception.handle(from, verdicts[i], pkts[i], now_ns, counters)):
//       kToUplink, kToHost: send pkts[i] there;  kDrop: free it (already counted);
//       kRoute: collect it, then forwarder.process(PortRole::kHost, collected...)
//
// - ARP (RFC 826): requests for the node IP on the uplink are answered; on
//   the host port (the kernel's end of a point-to-point TAP) every request
//   is answered with the uplink MAC (proxy ARP), so that the kernel hands
//   all its traffic to the dataplane; except those for the node IP itself,
//   for 0.0.0.0, probes and announcements (the kernel's duplicate-address
//   checks must see no answer).
// - The node's own packets with TTL 1 (source the node IP, from the host
//   port) are passed on unexpired: for the kernel the dataplane is its NIC.
// - Learning neighbours from ARP and holding packets for them
//   (kPuntUnresolved) is the Resolver's (resolver.h), which runs beside this
//   on one lcore and hands it the ARP frames after reading them: an ARP
//   frame not answered is counted kArpLearned when it told the resolver a
//   tracked neighbour's MAC, else kArpIgnored. A kPuntUnresolved given to
//   handle() (an lcore without a resolver) is dropped as kUnresolvedNextHop.
// - ICMP errors (RFC 792, RFC 1191, RFC 1812 section 4.3.2): the packet
//   becomes a time exceeded or fragmentation needed to its source, from the
//   node IP, unless RFC 1812 forbids an error about it; errors are
//   rate-limited per lcore by a token bucket.
#pragma once

#include <cstdint>

#include "dataplane/counters.h"
#include "dataplane/fastpath.h"
#include "lpm/reader.h"

namespace podfwd::dp {

// A token bucket in integer arithmetic: credit in units of 1/10^9 token, so
// `rate` tokens per second is `rate` units per nanosecond, exactly, and the
// fraction of a token earned between two calls carries over. Deterministic
// given the times passed in (tests, pcap timestamps).
class TokenBucket {
public:
    // Starts full. rate 0: only the first `burst` tokens, ever.
    TokenBucket(std::uint32_t rate_per_second, std::uint32_t burst) noexcept;

    // Refills for the time since the last call (none if `now_ns` went back),
    // then takes one token if there is one.
    bool take(std::uint64_t now_ns) noexcept;

    std::uint32_t rate() const noexcept { return rate_; }
    std::uint32_t burst() const noexcept { return burst_; }

private:
    static constexpr std::uint64_t kUnitsPerToken = 1'000'000'000;

    std::uint32_t rate_;
    std::uint32_t burst_;
    std::uint64_t capacity_;   // burst_ tokens, in units
    std::uint64_t credit_;     // in units, <= capacity_
    std::uint64_t last_ns_ = 0;
};

// What to do with a punted packet after handle().
enum class ExceptionResult : std::uint8_t {
    kToUplink,   // send on the uplink as rewritten
    kToHost,     // send to the host port as rewritten
    kDrop,       // free it: counted already
    // Route it with Forwarder::process as if the host port had sent it
    // (its Ethernet header says so: host_mac to uplink_mac): an ICMP error
    // from the node IP to a remote source, or the node's own TTL-1 packet
    // passed on unexpired. The forwarder counts it again, under what it
    // does with it, as it counts a decapsulated packet twice.
    kRoute,
};

class ExceptionPath {
public:
    // As Linux's net.ipv4.icmp_msgs_per_sec (1000). Linux's icmp_msgs_burst
    // is 50 for the whole host; 100 here per lcore lets a traceroute's
    // probes (3 per hop, several hops punted in the same millisecond) and a
    // burst of oversized packets through. Linux's per-destination limit
    // (icmp_ratelimit, 1 per second per peer) needs per-peer state: not done.
    static constexpr std::uint32_t kDefaultIcmpRate = 1000;
    static constexpr std::uint32_t kDefaultIcmpBurst = 100;
    static constexpr std::uint8_t kIcmpTtl = 64;
    // Precedence "internetwork control" (DSCP CS6), as Linux's icmp_send.
    static constexpr std::uint8_t kIcmpTos = 0xc0;

    // The table is looked up for fragmentation-needed errors (the next hop's
    // encapsulation overhead); the caller's ReaderSlot covers it, as for the
    // Forwarder.
    ExceptionPath(const NodeConfig& config, const lpm::TableView& table,
                  std::uint32_t icmp_rate_per_second = kDefaultIcmpRate,
                  std::uint32_t icmp_burst = kDefaultIcmpBurst) noexcept;

    // One punted packet (is_punt(punt)), received on `from`, as the fast
    // path left it: the Ethernet header first (for a decapsulated packet,
    // the inner frame). Rewrites it in place (moving pkt.data into the
    // headroom when it must grow) and counts it exactly once in `counters`:
    // under Action::kArpReply / kIcmpTimeExceeded / kIcmpFragNeeded, or the
    // Drop saying why not. `now_ns`: any monotonic clock, for the ICMP rate
    // limit.
    ExceptionResult handle(PortRole from, Verdict punt, PacketView& pkt, std::uint64_t now_ns,
                           LcoreCounters& counters) noexcept;

    // The ARP part of handle(): answers, or drops counting kArpLearned when
    // `learned` (the resolver took a neighbour's MAC from it), else kArpIgnored.
    ExceptionResult arp(PortRole from, PacketView& pkt, LcoreCounters& counters, bool learned = false) const noexcept;

    const NodeConfig& config() const noexcept { return config_; }

private:
    ExceptionResult icmp_error(PortRole from, Verdict punt, PacketView& pkt, std::uint64_t now_ns,
                               LcoreCounters& counters) noexcept;
    // RFC 1191's Next-Hop MTU for a packet to `dst`: the uplink MTU less
    // what the next hop's encapsulation adds.
    std::uint16_t next_hop_mtu(std::uint32_t dst) const noexcept;

    NodeConfig config_;
    const lpm::TableView& table_;
    TokenBucket icmp_tokens_;
    // RFC 6864: the errors are not atomic datagrams (DF clear), so they need
    // IDs unique per source, destination and protocol; one counter per lcore.
    std::uint16_t next_ip_id_;
};

}  // namespace podfwd::dp
