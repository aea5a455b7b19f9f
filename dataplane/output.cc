// The output side of the burst through the next-hop record, out of its
// loop: next hops without a template (nexthop_cache.h) and packets failing
// a template's check, each rewritten by its next hop's mode (host-gw, IPIP,
// VXLAN, to the host port), punted, or dropped; the resolver's finish().
#include <cstddef>
#include <cstring>
#include <iterator>

#include "dataplane/fastpath.h"
#include "dataplane/fastpath_inline.h"
#include "dataplane/nexthop_cache.h"
#include "dataplane/proto/ipv4.h"
#include "dataplane/proto/udp.h"
#include "dataplane/proto/vxlan.h"

namespace podfwd::dp {

using namespace proto;
using namespace detail;

namespace {

constexpr std::uint8_t kOuterTtl = 64;

// ---- the rewrites ----

std::uint32_t ipip_outer_length(const PacketView& p) noexcept { return p.len - EtherHdr::kSize + kIpipOverhead; }
std::uint32_t vxlan_outer_length(const PacketView& p) noexcept {
    return Ipv4Hdr::kSize + UdpHdr::kSize + VxlanHdr::kSize + p.len;   // the whole inner frame
}

// An Ethernet header for an IPv4 frame in two 8-byte stores: the
// destination from `dst8` (a MAC and the 2 bytes after it, overwritten by
// the second store), then source MAC and EtherType.
[[gnu::always_inline]] inline void put_ether(std::uint8_t* frame, const std::uint8_t* dst8,
                                             std::uint64_t src_and_type) noexcept {
    std::uint64_t dst;
    std::memcpy(&dst, dst8, 8);
    std::memcpy(frame, &dst, 8);
    std::memcpy(frame + 6, &src_and_type, 8);
}
// Next-hop MACs are read 8 bytes at a time (see put_ether).
static_assert(offsetof(lpm::NextHop, mac) + 8 <= sizeof(lpm::NextHop));
static_assert(offsetof(lpm::NextHop, vtep_mac) + 8 <= sizeof(lpm::NextHop));

// host-gw through the record, as general() and finish() take it (the
// burst's common case uses the next hop's template instead).
// The MAC last: a packet punted for its MAC has passed every other check,
// so the resolver never owes it an ICMP error (Linux too checks the TTL
// before the neighbour).
// A connected record never carries kMacResolved (lpm/types.h): one bit
// tells both ways of having no MAC.
[[gnu::always_inline]] inline bool has_mac(const lpm::NextHop& nh) noexcept { return nh.mac_resolved(); }
[[gnu::always_inline]] inline Drop host_gw_check(const PacketView& pkt, const lpm::NextHop& nh,
                                                 std::uint32_t mtu) noexcept {
    if (ip_of(pkt).ttl <= 1)
        return Drop::kTtlExceeded;
    if (pkt.len - EtherHdr::kSize > mtu)
        return Drop::kMtuExceeded;
    if (!has_mac(nh))
        return Drop::kUnresolvedNextHop;
    return Drop::kCount;
}
[[gnu::always_inline]] inline void host_gw(PacketView& pkt, const lpm::NextHop& nh,
                                           std::uint64_t src_and_type) noexcept {
    ipv4_decrement_ttl(ip_of(pkt));
    put_ether(pkt.data, nh.mac.data(), src_and_type);
}

// A failed check's verdict. TTL expiry, and the MTU with DF set, owe the
// source an ICMP error (RFC 1812 4.3.2, RFC 1191): the exception path's, with
// the packet as it came. DF clear over the MTU is dropped: we do not
// fragment (the kernel would; a pod network whose MTU fits the uplink never
// needs it).
[[gnu::always_inline]] inline Verdict unforwarded(const PacketView& pkt, Drop d, Drop& drop) noexcept {
    if (d == Drop::kTtlExceeded)
        return Verdict::kPuntTtlExceeded;
    if (d == Drop::kUnresolvedNextHop)
        return Verdict::kPuntUnresolved;
    if (d == Drop::kMtuExceeded && (ip_of(pkt).frag_field() & kIpv4FlagDf) != 0)
        return Verdict::kPuntFragNeeded;
    drop = d;
    return Verdict::kDrop;
}

}  // namespace

std::uint16_t vxlan_source_port(const std::uint8_t* inner_ip, std::uint32_t len) noexcept {
    return flow_source_port(inner_ip, len);
}

// The checks before an encapsulation, in the order their verdicts are
// given; Drop::kCount when the packet may go. The packet is plain IPv4 and
// pkt.len its IP length plus the Ethernet header.
Drop Forwarder::encap_check(const PacketView& pkt, const lpm::NextHop& nh, std::uint32_t outer_ip_len,
                            std::uint32_t overhead) const noexcept {
    if (ip_of(pkt).ttl <= 1)
        return Drop::kTtlExceeded;
    if (outer_ip_len > config_.mtu)
        return Drop::kMtuExceeded;
    if (pkt.headroom < overhead)
        return Drop::kNoHeadroom;
    if (!has_mac(nh))
        return Drop::kUnresolvedNextHop;
    return Drop::kCount;
}

// The rewrites, once their checks passed.

// The kernel routes it on to the pod (and decrements the TTL).
void Forwarder::deliver_to_host(PacketView& pkt) noexcept {
    put_ether(pkt.data, host_dst_.data(), uplink_src_and_type_);
}

// RFC 2003. The outer header goes where the Ethernet header and the 6
// bytes before it were; the new Ethernet header is written whole, so the
// old one need not move.
void Forwarder::ipip_encap(PacketView& pkt, const lpm::NextHop& nh) noexcept {
    Ipv4Hdr& inner = ip_of(pkt);
    const auto outer_len = static_cast<std::uint16_t>(ipip_outer_length(pkt));
    ipv4_decrement_ttl(inner);
    const std::uint16_t df = inner.frag_field() & kIpv4FlagDf;
    const std::uint8_t tos = inner.tos;
    pkt.data -= kIpipOverhead;
    pkt.len += kIpipOverhead;
    pkt.headroom -= kIpipOverhead;
    ipv4_write(ip_of(pkt), config_.node_ip, nh.node_ip, kProtoIpip, outer_len, kOuterTtl, df, tos, outer_ip_id(df));
    put_ether(pkt.data, nh.mac.data(), uplink_src_and_type_);
}

// RFC 7348: outer Ethernet, IPv4, UDP and VXLAN headers before the inner
// frame, whose MACs become the VTEPs'.
void Forwarder::vxlan_encap(PacketView& pkt, const lpm::NextHop& nh) noexcept {
    const auto outer_len = static_cast<std::uint16_t>(vxlan_outer_length(pkt));
    ipv4_decrement_ttl(ip_of(pkt));
    const std::uint16_t source_port = flow_source_port(pkt.data + EtherHdr::kSize, pkt.len - EtherHdr::kSize);
    put_ether(pkt.data, nh.vtep_mac.data(), vtep_src_and_type_);

    pkt.data -= kVxlanOverhead;
    pkt.len += kVxlanOverhead;
    pkt.headroom -= kVxlanOverhead;
    put_ether(pkt.data, nh.mac.data(), uplink_src_and_type_);
    ipv4_write(ip_of(pkt), config_.node_ip, nh.node_ip, kProtoUdp, outer_len, kOuterTtl, 0, 0, outer_ip_id(0));
    auto& udp = *reinterpret_cast<UdpHdr*>(pkt.data + kEthIp);
    store_be16(udp.src_port, source_port);
    store_be16(udp.dst_port, config_.vxlan_port);
    store_be16(udp.length, static_cast<std::uint16_t>(outer_len - Ipv4Hdr::kSize));
    store_be16(udp.checksum, 0);   // RFC 7348: zero over IPv4
    reinterpret_cast<VxlanHdr*>(pkt.data + kEthIp + UdpHdr::kSize)->set(nh.vni != 0 ? nh.vni : config_.vni);
}

// The whole decision for one packet with a next hop, every check in the
// order its verdicts are given: the packet rewritten and `action` set,
// dropped with `drop` set, or punted untouched (the caller counts the first
// two).
Verdict Forwarder::decide(PacketView& pkt, const lpm::NextHop& nh, Action& action, Drop& drop) noexcept {
    Drop d = Drop::kBlackhole;
    switch (nh.mode) {
    case lpm::ForwardMode::kLocal:
        deliver_to_host(pkt);
        action = Action::kToHost;
        return Verdict::kHost;
    case lpm::ForwardMode::kHostGw:
        if (d = host_gw_check(pkt, nh, config_.mtu); d == Drop::kCount) {
            host_gw(pkt, nh, uplink_src_and_type_);
            action = Action::kHostGw;
            return Verdict::kUplink;
        }
        break;
    case lpm::ForwardMode::kIpip:
        if (d = encap_check(pkt, nh, ipip_outer_length(pkt), kIpipOverhead); d == Drop::kCount) {
            ipip_encap(pkt, nh);
            action = Action::kIpipEncap;
            return Verdict::kUplink;
        }
        break;
    case lpm::ForwardMode::kVxlan:
        if (d = encap_check(pkt, nh, vxlan_outer_length(pkt), kVxlanOverhead); d == Drop::kCount) {
            vxlan_encap(pkt, nh);
            action = Action::kVxlanEncap;
            return Verdict::kUplink;
        }
        break;
    case lpm::ForwardMode::kDrop:
        break;
    }
    return unforwarded(pkt, d, drop);
}

// ---- the pass ----

// A packet whose next hop has no template (nexthop_cache.h), or that
// failed a template's check: the record read and every check made in the order
// its verdict is given. Out of line: the loop keeps its registers.
Verdict Forwarder::general(PacketView& pkt, lpm::NextHopId id, LcoreCounters& counters) noexcept {
    const lpm::NextHop* nh = table_.nexthops().get(id);
    if (nh == nullptr) {
        counters.count(id == lpm::kNoRoute ? Drop::kNoRoute : Drop::kNextHopGone);
        return Verdict::kDrop;
    }
    Action action = Action::kCount;
    Drop drop = Drop::kCount;
    const Verdict v = decide(pkt, *nh, action, drop);
    if (v == Verdict::kDrop)
        counters.count(drop);
    else if (!is_punt(v))
        counters.count(action);
    return v;
}

// Out of the burst (the resolver's, rare): the record as it would be with
// the MAC, through the same decision as the pass.
Verdict Forwarder::finish(PacketView& pkt, const lpm::NextHop& nh, const MacAddr& mac,
                          LcoreCounters& counters) noexcept {
    lpm::NextHop resolved = nh;
    resolved.mac = mac;
    resolved.flags = static_cast<std::uint8_t>((resolved.flags | lpm::NextHop::kMacResolved) &
                                               ~lpm::NextHop::kConnected);
    Action action = Action::kCount;
    Drop drop = Drop::kCount;
    switch (const Verdict v = decide(pkt, resolved, action, drop)) {
    case Verdict::kUplink:
    case Verdict::kHost:
        counters.count(action);
        return v;
    case Verdict::kPuntTtlExceeded:
        counters.count(Drop::kTtlExceeded);
        return Verdict::kDrop;
    case Verdict::kPuntFragNeeded:
        counters.count(Drop::kMtuExceeded);
        return Verdict::kDrop;
    default:
        counters.count(drop == Drop::kCount ? Drop::kUnresolvedNextHop : drop);
        return Verdict::kDrop;
    }
}

}  // namespace podfwd::dp
