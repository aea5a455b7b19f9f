#include "dataplane/exception.h"

#include <algorithm>
#include <cassert>
#include <cstring>

#include "dataplane/proto/arp.h"
#include "dataplane/proto/icmp.h"
#include "dataplane/proto/ipv4.h"
#include "dataplane/proto/vxlan.h"

namespace podfwd::dp {

using namespace proto;

namespace {

constexpr std::uint32_t kEthIp = EtherHdr::kSize + Ipv4Hdr::kSize;
// What an error puts in front of the bytes it quotes, which start where the
// offending packet's IP header started.
constexpr std::uint32_t kErrorGrowth = Ipv4Hdr::kSize + IcmpHdr::kSize;

EtherHdr& eth_of(const PacketView& p) noexcept { return *reinterpret_cast<EtherHdr*>(p.data); }
Ipv4Hdr& ip_of(const PacketView& p) noexcept { return *reinterpret_cast<Ipv4Hdr*>(p.data + EtherHdr::kSize); }

bool is_group_mac(const MacAddr& mac) noexcept { return (mac[0] & 1) != 0; }   // broadcast or multicast

// RFC 1812 section 4.3.2.7 and 5.3.7: a source that names no single host
// would get the error nowhere, or everywhere: 0/8 ("this network"), 127/8
// (loopback), 224/4 (multicast) and 240/4 (class E, with the limited
// broadcast 255.255.255.255).
bool is_single_host(std::uint32_t ip) noexcept {
    const std::uint32_t first = ip >> 24;
    return first != 0 && first != 127 && first < 224;
}
bool is_multicast_or_broadcast(std::uint32_t ip) noexcept { return (ip >> 28) == 0xe || ip == 0xffffffff; }

// How many bytes of `pkt`, from its IP header on, an error about it quotes
// (the header and up to 8 bytes of data, RFC 792), or 0 when no error may be
// sent about it (RFC 1812 section 4.3.2.7). Directed broadcasts of other
// subnets cannot be told from unicast here; the kernel owns the node's own.
std::uint32_t quotable(PortRole from, Verdict punt, const PacketView& pkt, std::uint32_t node_ip) noexcept {
    if (pkt.len < kEthIp || eth_of(pkt).ether_type() != kEtherTypeIpv4 || is_group_mac(eth_of(pkt).dst))
        return 0;
    const Ipv4Hdr& ip = ip_of(pkt);
    const std::uint32_t header = ip.header_length();
    // Ethernet padding is not the packet's: quote no further than its length.
    const std::uint32_t available = std::min<std::uint32_t>(ip.length(), pkt.len - EtherHdr::kSize);
    if (ip.version() != 4 || header < Ipv4Hdr::kSize || header > available)
        return 0;
    if ((ip.frag_field() & kIpv4OffsetMask) != 0)   // only the first fragment has the ports
        return 0;
    const std::uint32_t src = ip.source();
    if (!is_single_host(src) || is_multicast_or_broadcast(ip.destination()))
        return 0;
    // Our own address arriving from outside is spoofed: the kernel sent no such packet.
    if (from == PortRole::kUplink && src == node_ip)
        return 0;
    // RFC 1191: only a datagram that may not be fragmented asks for the MTU.
    if (punt == Verdict::kPuntFragNeeded && (ip.frag_field() & kIpv4FlagDf) == 0)
        return 0;
    if (ip.protocol == kProtoIcmp) {
        // An ICMP message too short to show its type might be an error.
        if (available <= header || is_icmp_error(pkt.data[EtherHdr::kSize + header]))
            return 0;
    }
    return std::min<std::uint32_t>(available, header + kIcmpQuotedData);
}

}  // namespace

// ---- TokenBucket ----

TokenBucket::TokenBucket(std::uint32_t rate_per_second, std::uint32_t burst) noexcept
    : rate_(rate_per_second), burst_(burst), capacity_(std::uint64_t{burst} * kUnitsPerToken), credit_(capacity_) {}

bool TokenBucket::take(std::uint64_t now_ns) noexcept {
    if (now_ns > last_ns_) {
        const std::uint64_t elapsed = now_ns - last_ns_;
        const std::uint64_t missing = capacity_ - credit_;
        // Compared by division first: after a long idle, elapsed * rate
        // would overflow, and the bucket is full anyway.
        if (rate_ != 0)
            credit_ = elapsed > missing / rate_ ? capacity_ : credit_ + elapsed * rate_;
        last_ns_ = now_ns;
    }
    if (credit_ < kUnitsPerToken)
        return false;
    credit_ -= kUnitsPerToken;
    return true;
}

// ---- ExceptionPath ----

ExceptionPath::ExceptionPath(const NodeConfig& config, const lpm::TableView& table,
                             std::uint32_t icmp_rate_per_second, std::uint32_t icmp_burst) noexcept
    : config_(config), table_(table), icmp_tokens_(icmp_rate_per_second, icmp_burst),
      next_ip_id_(config.outer_ip_id_start) {}

ExceptionResult ExceptionPath::handle(PortRole from, Verdict punt, PacketView& pkt, std::uint64_t now_ns,
                                      LcoreCounters& counters) noexcept {
    switch (punt) {
    case Verdict::kPuntArp:
        return arp(from, pkt, counters);
    case Verdict::kPuntTtlExceeded:
    case Verdict::kPuntFragNeeded:
        return icmp_error(from, punt, pkt, now_ns, counters);
    case Verdict::kPuntUnresolved:   // the resolver's; without one nothing can be done with it
        counters.count(Drop::kUnresolvedNextHop);
        return ExceptionResult::kDrop;
    default:
        break;
    }
    assert(!"ExceptionPath::handle takes punted packets only");
    return ExceptionResult::kDrop;
}

ExceptionResult ExceptionPath::arp(PortRole from, PacketView& pkt, LcoreCounters& counters,
                                   bool learned) const noexcept {
    const auto unanswered = [&] {
        if (learned)
            counters.count(Action::kArpLearned);
        else
            counters.count(Drop::kArpIgnored);
        return ExceptionResult::kDrop;
    };
    const ArpHdr* request = arp_of_frame(pkt.data, pkt.len);
    // Not answered: replies; announcements, which ask nothing; a group
    // sender MAC, which would make our answer a broadcast.
    if (request == nullptr || request->opcode() != kArpOpRequest || request->is_gratuitous() ||
        !is_unicast(request->sender_mac)) {
        return unanswered();
    }
    const std::uint32_t target = request->target_ip();
    bool answer;
    if (from == PortRole::kUplink) {
        // Probes for the node IP too: answering defends the address (RFC
        // 5227), as Linux does. A request unicast to another MAC was only
        // flooded to us.
        const MacAddr& dst = eth_of(pkt).dst;
        answer = target == config_.node_ip && (is_group_mac(dst) || same_mac(dst, config_.uplink_mac));
    } else {
        // The node IP is the kernel's own; a probe is the kernel checking an
        // address is free (RFC 5227), which answering would deny.
        answer = target != config_.node_ip && target != 0 && !request->is_probe();
    }
    if (!answer) {
        return unanswered();
    }
    // write_arp copies its arguments first: they may point into the request.
    pkt.len = static_cast<std::uint32_t>(
        write_arp_reply(pkt.data, config_.uplink_mac, target, request->sender_mac, request->sender_ip()));
    counters.count(Action::kArpReply);
    return from == PortRole::kUplink ? ExceptionResult::kToUplink : ExceptionResult::kToHost;
}

std::uint16_t ExceptionPath::next_hop_mtu(std::uint32_t dst) const noexcept {
    std::uint32_t overhead = 0;
    if (const lpm::NextHop* nh = table_.nexthop(table_.lookup(dst))) {
        if (nh->mode == lpm::ForwardMode::kIpip)
            overhead = kIpipOverhead;
        else if (nh->mode == lpm::ForwardMode::kVxlan)
            overhead = kVxlanOverhead;
    }
    return config_.mtu >= overhead + kIpv4MinMtu ? static_cast<std::uint16_t>(config_.mtu - overhead) : kIpv4MinMtu;
}

ExceptionResult ExceptionPath::icmp_error(PortRole from, Verdict punt, PacketView& pkt, std::uint64_t now_ns,
                                          LcoreCounters& counters) noexcept {
    const bool ttl = punt == Verdict::kPuntTtlExceeded;
    // The node's own packet with TTL 1 (single-hop eBGP, a traceroute's
    // first probe): for the kernel the dataplane is its NIC, not a hop, so
    // the packet leaves as sent. Its TTL goes up by one here, and the
    // forwarder's pass (as for any packet from the host port) takes it
    // down again.
    if (ttl && from == PortRole::kHost && pkt.len >= kEthIp && ip_of(pkt).source() == config_.node_ip &&
        ip_of(pkt).ttl == 1) {
        ipv4_increment_ttl(ip_of(pkt));
        counters.count(Action::kLocalTtlOne);
        return ExceptionResult::kRoute;
    }
    const std::uint32_t quoted = quotable(from, punt, pkt, config_.node_ip);
    if (quoted == 0) {
        counters.count(ttl ? Drop::kTtlExceeded : Drop::kMtuExceeded);
        return ExceptionResult::kDrop;
    }
    // The error's headers go in front of the quoted bytes: into the
    // headroom, or as much as is missing by moving the quoted bytes on over
    // the rest of the packet.
    const std::uint32_t back = std::min(pkt.headroom, kErrorGrowth);
    const std::uint32_t forward = kErrorGrowth - back;
    if (EtherHdr::kSize + forward + quoted > pkt.len) {
        counters.count(Drop::kNoHeadroom);
        return ExceptionResult::kDrop;
    }
    // After the checks: a packet we may not answer costs no token.
    if (!icmp_tokens_.take(now_ns)) {
        counters.count(Drop::kIcmpRateLimited);
        return ExceptionResult::kDrop;
    }

    const std::uint32_t to = ip_of(pkt).source();
    const std::uint32_t mtu = ttl ? 0 : next_hop_mtu(ip_of(pkt).destination());
    if (forward != 0)
        std::memmove(pkt.data + EtherHdr::kSize + forward, pkt.data + EtherHdr::kSize, quoted);
    pkt.data -= back;
    pkt.headroom -= back;
    pkt.len = kEthIp + IcmpHdr::kSize + quoted;

    auto& icmp = *reinterpret_cast<IcmpHdr*>(pkt.data + kEthIp);
    if (ttl)
        icmp_write_error(icmp, kIcmpTimeExceeded, kIcmpCodeTtlExceeded, 0, quoted);
    else
        icmp_write_error(icmp, kIcmpDestUnreachable, kIcmpCodeFragNeeded, mtu, quoted);
    ipv4_write(ip_of(pkt), config_.node_ip, to, kProtoIcmp, static_cast<std::uint16_t>(kErrorGrowth + quoted),
               kIcmpTtl, 0, kIcmpTos, next_ip_id_++);
    // The kernel sent the offending packet: the error is its directly.
    // Otherwise it leaves as the kernel's own packets do, from the host port.
    const bool to_kernel = to == config_.node_ip;
    EtherHdr& eth = eth_of(pkt);
    eth.dst = to_kernel ? config_.host_mac : config_.uplink_mac;
    eth.src = to_kernel ? config_.uplink_mac : config_.host_mac;
    eth.set_ether_type(kEtherTypeIpv4);
    counters.count(ttl ? Action::kIcmpTimeExceeded : Action::kIcmpFragNeeded);
    return to_kernel ? ExceptionResult::kToHost : ExceptionResult::kRoute;
}

}  // namespace podfwd::dp
