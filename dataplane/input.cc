// The input side of the burst, out of its loop: frames that are not plain
// IPv4 for us (RFC 1812 checks for the exact reason), decapsulation of what
// is tunnelled to the node; and the table of nodes allowed to tunnel to us.
#include <algorithm>
#include <bit>
#include <cstring>

#include "dataplane/fastpath.h"
#include "dataplane/fastpath_inline.h"
#include "dataplane/proto/ipv4.h"
#include "dataplane/proto/udp.h"
#include "dataplane/proto/vxlan.h"

namespace podfwd::dp {

using namespace proto;
using namespace detail;

namespace {

// RFC 1812-style checks of the IPv4 header after the Ethernet header;
// Drop::kCount when it is fit to forward. Options are not supported.
Drop check_ipv4(const PacketView& p) noexcept {
    if (p.len < kEthIp)
        return Drop::kShortFrame;
    const Ipv4Hdr& ip = ip_of(p);
    if (ip.version() != 4)
        return Drop::kBadVersion;
    if (ip.header_length() < Ipv4Hdr::kSize)
        return Drop::kBadHeaderLength;
    if (ip.header_length() > Ipv4Hdr::kSize)
        return Drop::kIpv4Options;
    if (ip.length() < Ipv4Hdr::kSize || ip.length() > p.len - EtherHdr::kSize)
        return Drop::kBadTotalLength;
    if (!ipv4_header_checksum_ok(&ip))
        return Drop::kBadChecksum;
    return Drop::kCount;
}

// The same test without the checksum for an IPv4 header at `ip` with
// `room` bytes from it to the end of the frame (at least 20), when the
// EtherType is known: a decapsulated header, whose checksum is verified
// only if it is forwarded again (to_node()).
[[gnu::always_inline]] inline bool plain_ipv4_shape(const std::uint8_t* ip, std::uint32_t room) noexcept {
    const std::uint16_t total = load_be16(ip + 2);
    return (ip[0] == 0x45) & (total >= Ipv4Hdr::kSize) & (total <= room);
}

// Drop::kCount when the frame is IPv4 fit to forward, else why not: the
// common case in one branch-light test, the exact reason only on failure.
// For inner frames, whose MACs are the tunnel's business.
[[gnu::always_inline]] inline Drop classify_ipv4(const PacketView& p) noexcept {
    if (plain_ipv4(p)) [[likely]]
        return Drop::kCount;
    if (p.len < EtherHdr::kSize)
        return Drop::kShortFrame;
    if (eth_of(p).ether_type() != kEtherTypeIpv4)
        return Drop::kNotIpv4;
    return check_ipv4(p);
}

// Removes `bytes` after the Ethernet header, keeping the Ethernet header.
void strip_after_ethernet(PacketView& p, std::uint32_t bytes) noexcept {
    std::memmove(p.data + bytes, p.data, EtherHdr::kSize);
    p.data += bytes;
    p.len -= bytes;
    p.headroom += bytes;
}

}  // namespace

// ---- what the burst loop (fastpath.cc) calls out of line ----

// A plain IPv4 packet from the uplink addressed to the node: decapsulated
// when tunnelled to us, else the kernel's.
Forwarder::Step Forwarder::to_node(PacketView& pkt, LcoreCounters& counters) noexcept {
    const Ipv4Hdr& ip = ip_of(pkt);
    if (ip.protocol == kProtoIpip)
        return decap_ipip(pkt, counters) ? Step::kIpipDecapped : Step::kDropped;
    if (ip.protocol == kProtoUdp && pkt.len >= kEthIp + UdpHdr::kSize &&
        reinterpret_cast<const UdpHdr*>(pkt.data + kEthIp)->destination() == config_.vxlan_port)
        return decap_vxlan(pkt, counters) ? Step::kVxlanDecapped : Step::kDropped;
    // The node's own services: the kernel answers.
    return Step::kToHost;
}

// A frame that is not plain IPv4 for us. On the uplink a unicast frame to
// another MAC (flooded by a switch, or a promiscuous port) is never routed:
// routing it would send a second copy of someone else's packet. ARP is the
// exception path's. Group-addressed IPv4 on the uplink (IGMP, DHCP, mDNS)
// and IP options addressed to the node (IGMP's Router Alert) are the
// kernel's business, not the fast path's. Anything else: dropped for its
// exact reason.
Verdict Forwarder::rejected(PortRole from, PacketView& pkt, LcoreCounters& counters) noexcept {
    if (pkt.len < EtherHdr::kSize) {
        counters.count(Drop::kShortFrame);
        return Verdict::kDrop;
    }
    const bool uplink = from == PortRole::kUplink;
    const bool group = group_addressed(pkt);
    if (uplink && !group && ((frame_head(pkt) ^ uplink_mac_key_) & kMacMask) != 0) {
        counters.count(Drop::kNotForUs);
        return Verdict::kDrop;
    }
    const std::uint16_t type = eth_of(pkt).ether_type();
    if (type == kEtherTypeArp)
        return Verdict::kPuntArp;
    const Drop d = type != kEtherTypeIpv4 ? Drop::kNotIpv4 : check_ipv4(pkt);
    const bool kernels = uplink && (d == Drop::kCount || d == Drop::kIpv4Options) &&
                         (group || ip_of(pkt).destination() == config_.node_ip);
    if (kernels) {
        counters.count(Action::kToHost);
        return Verdict::kHost;
    }
    // d is a reason here: plain_ipv4() and check_ipv4() agree on unicast
    // frames for us, and group ones went to the kernel. Checked all the same,
    // as kCount would count past the array.
    counters.count(d == Drop::kCount ? Drop::kBadChecksum : d);
    return Verdict::kDrop;
}

// ---- decapsulation ----

bool Forwarder::decap_ipip(PacketView& pkt, LcoreCounters& counters) noexcept {
    const Ipv4Hdr& outer = ip_of(pkt);
    if (outer.is_fragment()) {
        counters.count(Drop::kTunnelFragment);
        return false;
    }
    // Without this, anyone could inject packets into the pod network.
    if (!known_nodes_.contains(outer.source())) {
        counters.count(Drop::kIpipUnknownSource);
        return false;
    }
    // The inner header is checked where it lies, before the Ethernet header
    // moves over the outer one: read right after the move, its first bytes
    // would wait for the moved ones (a store-forwarding stall).
    const std::uint32_t room = pkt.len - kEthIp;
    const bool inner_plain = room >= Ipv4Hdr::kSize && plain_ipv4_shape(pkt.data + kEthIp, room);
    strip_after_ethernet(pkt, Ipv4Hdr::kSize);
    if (!inner_plain) [[unlikely]] {
        if (const Drop d = classify_ipv4(pkt); d != Drop::kCount) {   // the exact reason
            counters.count(d);
            return false;
        }
    }
    pkt.len = EtherHdr::kSize + ip_of(pkt).length();
    return true;
}

bool Forwarder::decap_vxlan(PacketView& pkt, LcoreCounters& counters) noexcept {
    const Ipv4Hdr& outer = ip_of(pkt);
    if (outer.is_fragment()) {
        counters.count(Drop::kTunnelFragment);
        return false;
    }
    if (pkt.len < kVxlanOverhead + kEthIp) {
        counters.count(Drop::kShortFrame);
        return false;
    }
    const auto& udp = *reinterpret_cast<const UdpHdr*>(pkt.data + kEthIp);
    const auto& vxlan = *reinterpret_cast<const VxlanHdr*>(pkt.data + kEthIp + UdpHdr::kSize);
    if (udp.total_length() != outer.length() - Ipv4Hdr::kSize || !(vxlan.flags & kVxlanFlagVni)) {
        counters.count(Drop::kVxlanBadHeader);
        return false;
    }
    if (vxlan.vni() != config_.vni) {
        counters.count(Drop::kVxlanWrongVni);
        return false;
    }
    // As for IPIP: only nodes we route to may put frames into the pod network.
    if (!known_nodes_.contains(outer.source())) {
        counters.count(Drop::kVxlanUnknownSource);
        return false;
    }
    pkt.data += kVxlanOverhead;
    pkt.len -= kVxlanOverhead;
    pkt.headroom += kVxlanOverhead;
    if (!plain_ipv4(pkt, /*checksum_verified=*/true)) [[unlikely]] {
        if (const Drop d = classify_ipv4(pkt); d != Drop::kCount) {   // the exact reason
            counters.count(d);
            return false;
        }
    }
    pkt.len = EtherHdr::kSize + ip_of(pkt).length();
    return true;
}

// ---- KnownNodes ----

void KnownNodes::reserve(std::uint32_t max_nodes) {
    std::uint32_t size = 16;
    while (size < 2 * std::uint64_t{max_nodes})
        size *= 2;
    slots_.assign(size, 0);
    mask_ = size - 1;
}

// Runs on the forwarding lcore when next hops change (rarely): a scan of the
// next-hop ids into the preallocated table, no allocation.
void KnownNodes::rebuild(const lpm::TableView& table) {
    generation_ = table.nexthop_generation();
    last_found_ = 0;
    std::fill(slots_.begin(), slots_.end(), 0);
    const std::uint32_t max = table.capacity().max_nexthops;
    for (lpm::NextHopId id = 1; id <= max; ++id) {
        const lpm::NextHop* nh = table.nexthop(id);
        if (nh == nullptr || nh->node_ip == 0)
            continue;
        std::uint32_t i = mix(nh->node_ip) & mask_;
        while (slots_[i] != 0 && slots_[i] != nh->node_ip)
            i = (i + 1) & mask_;
        slots_[i] = nh->node_ip;
    }
}

}  // namespace podfwd::dp
