#include "dataplane/fastpath.h"

#include <nmmintrin.h>

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstring>

#include "dataplane/proto/ipv4.h"
#include "dataplane/proto/udp.h"
#include "dataplane/proto/vxlan.h"

namespace podfwd::dp {

using namespace proto;

namespace {

constexpr std::uint32_t kEthIp = EtherHdr::kSize + Ipv4Hdr::kSize;
constexpr std::uint8_t kOuterTtl = 64;

EtherHdr& eth_of(const PacketView& p) noexcept { return *reinterpret_cast<EtherHdr*>(p.data); }
Ipv4Hdr& ip_of(const PacketView& p) noexcept { return *reinterpret_cast<Ipv4Hdr*>(p.data + EtherHdr::kSize); }

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

// The common case in one pass, branch-light: an IPv4 frame (EtherType
// 0x0800) whose header has no options (first byte 0x45), a total length
// that fits the frame, and a good checksum (unless the NIC verified it).
// Anything else goes through check_ipv4() for its exact drop reason.
[[gnu::always_inline]] inline bool plain_ipv4(const PacketView& p, bool checksum_verified = false) noexcept {
    if (p.len < kEthIp)
        return false;
    // Frame bytes 12..14 are 08 00 45 (byte 15, the TOS, is free), read as
    // one native word.
    constexpr bool kLittle = std::endian::native == std::endian::little;
    constexpr std::uint32_t kMask = kLittle ? 0x00ffffffu : 0xffffff00u;
    constexpr std::uint32_t kWant = kLittle ? 0x00450008u : 0x08004500u;
    std::uint32_t type_and_version;
    std::memcpy(&type_and_version, p.data + 12, 4);
    const std::uint16_t total = load_be16(p.data + EtherHdr::kSize + 2);
    const bool shape = (type_and_version & kMask) == kWant;
    const bool length = total >= Ipv4Hdr::kSize && total <= p.len - EtherHdr::kSize;
    return shape & length & (checksum_verified || ipv4_header_checksum_ok(p.data + EtherHdr::kSize));
}

// The same test for an IPv4 header at `ip` with `room` bytes from it to
// the end of the frame (at least 20), when the EtherType is known.
[[gnu::always_inline]] inline bool plain_ipv4_header(const std::uint8_t* ip, std::uint32_t room) noexcept {
    const std::uint16_t total = load_be16(ip + 2);
    return (ip[0] == 0x45) & (total >= Ipv4Hdr::kSize) & (total <= room) & ipv4_header_checksum_ok(ip);
}

// Drop::kCount when the frame is IPv4 fit to forward, else why not: the
// common case in one branch-light test, the exact reason only on failure.
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

const char* action_name(Action a) noexcept {
    static constexpr const char* kNames[] = {"host_gw", "ipip_encap", "vxlan_encap", "ipip_decap", "vxlan_decap",
                                             "to_host"};
    static_assert(std::size(kNames) == static_cast<unsigned>(Action::kCount));
    return kNames[static_cast<unsigned>(a)];
}

const char* drop_name(Drop d) noexcept {
    static constexpr const char* kNames[] = {
        "short_frame",      "not_ipv4",           "bad_version",         "bad_header_length",
        "ipv4_options",     "bad_total_length",   "bad_checksum",        "ttl_exceeded",
        "no_route",         "blackhole",          "nexthop_gone",        "unresolved_nexthop",
        "ipip_unknown_source", "vxlan_bad_header", "vxlan_wrong_vni",    "vxlan_unknown_source",
        "tunnel_fragment",  "mtu_exceeded",       "no_headroom",         "multi_segment"};
    static_assert(std::size(kNames) == static_cast<unsigned>(Drop::kCount));
    return kNames[static_cast<unsigned>(d)];
}

namespace {

// Frame bytes 6..13 of an IPv4 frame from `src`: source MAC and EtherType.
std::uint64_t src_and_type(const MacAddr& src) noexcept {
    std::uint8_t bytes[8];
    std::memcpy(bytes, src.data(), 6);
    store_be16(bytes + 6, kEtherTypeIpv4);
    std::uint64_t v;
    std::memcpy(&v, bytes, 8);
    return v;
}

}  // namespace

Forwarder::Forwarder(const NodeConfig& config, const lpm::TableView& table)
    : config_(config), uplink_src_and_type_(src_and_type(config.uplink_mac)),
      vtep_src_and_type_(src_and_type(config.vtep_mac)), table_(table), next_ip_id_(config.outer_ip_id_start) {
    std::memcpy(host_dst_.data(), config.host_mac.data(), 6);
    known_nodes_.reserve(table.capacity().max_nexthops);
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


// ---- flow hash ----

namespace {

// vxlan_source_port(), inline in the encapsulation: the library is built
// position-independent, where GCC does not inline a function with external
// linkage (it could be interposed).
[[gnu::always_inline]] inline std::uint16_t flow_source_port(const std::uint8_t* inner_ip, std::uint32_t len) noexcept {
    const auto& ip = *reinterpret_cast<const Ipv4Hdr*>(inner_ip);
    std::uint32_t h = _mm_crc32_u32(0, ip.source());
    h = _mm_crc32_u32(h, ip.destination());
    h = _mm_crc32_u8(h, ip.protocol);
    const bool has_ports = (ip.protocol == 6 || ip.protocol == kProtoUdp) && !ip.is_fragment() &&
                           len >= ip.header_length() + 4u;
    if (has_ports)
        h = _mm_crc32_u32(h, load_be32(inner_ip + ip.header_length()));
    return static_cast<std::uint16_t>(49152 + ((std::uint64_t{h} * 16384) >> 32));
}

}  // namespace

std::uint16_t vxlan_source_port(const std::uint8_t* inner_ip, std::uint32_t len) noexcept {
    return flow_source_port(inner_ip, len);
}

// ---- the rewrites ----

namespace {

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

// host-gw, the common case. Its check and rewrite take the MTU and the
// uplink's source MAC as arguments: the burst loop keeps them in registers
// (stores into packet bytes could alias any member, so the compiler would
// reload a member after each one).
[[gnu::always_inline]] inline Drop host_gw_check(const PacketView& pkt, const lpm::NextHop& nh,
                                                 std::uint32_t mtu) noexcept {
    if (!nh.mac_resolved())
        return Drop::kUnresolvedNextHop;
    if (ip_of(pkt).ttl <= 1)
        return Drop::kTtlExceeded;
    if (pkt.len - EtherHdr::kSize > mtu)
        return Drop::kMtuExceeded;
    return Drop::kCount;
}
[[gnu::always_inline]] inline void host_gw(PacketView& pkt, const lpm::NextHop& nh,
                                           std::uint64_t src_and_type) noexcept {
    ipv4_decrement_ttl(ip_of(pkt));
    put_ether(pkt.data, nh.mac.data(), src_and_type);
}

}  // namespace

// The checks before a rewrite, in the order their drops are counted;
// Drop::kCount when the packet may go. The packet is plain IPv4 and
// pkt.len its IP length plus the Ethernet header.
Drop Forwarder::encap_check(const PacketView& pkt, const lpm::NextHop& nh, std::uint32_t outer_ip_len,
                            std::uint32_t overhead) const noexcept {
    if (!nh.mac_resolved())
        return Drop::kUnresolvedNextHop;
    if (ip_of(pkt).ttl <= 1)
        return Drop::kTtlExceeded;
    if (outer_ip_len > config_.mtu)
        return Drop::kMtuExceeded;
    if (pkt.headroom < overhead)
        return Drop::kNoHeadroom;
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

// The whole decision for one looked-up packet, every check in the order
// its drops are counted: the packet rewritten and `action` set, or why it
// is dropped (the caller counts either).
Drop Forwarder::decide(PacketView& pkt, lpm::NextHopId id, const lpm::NextHop* nh, Action& action) noexcept {
    if (id == lpm::kNoRoute)
        return Drop::kNoRoute;
    if (nh == nullptr)
        return Drop::kNextHopGone;
    Drop d = Drop::kBlackhole;
    switch (nh->mode) {
    case lpm::ForwardMode::kLocal:
        deliver_to_host(pkt);
        action = Action::kToHost;
        return Drop::kCount;
    case lpm::ForwardMode::kHostGw:
        if (d = host_gw_check(pkt, *nh, config_.mtu); d == Drop::kCount) {
            host_gw(pkt, *nh, uplink_src_and_type_);
            action = Action::kHostGw;
        }
        break;
    case lpm::ForwardMode::kIpip:
        if (d = encap_check(pkt, *nh, ipip_outer_length(pkt), kIpipOverhead); d == Drop::kCount) {
            ipip_encap(pkt, *nh);
            action = Action::kIpipEncap;
        }
        break;
    case lpm::ForwardMode::kVxlan:
        if (d = encap_check(pkt, *nh, vxlan_outer_length(pkt), kVxlanOverhead); d == Drop::kCount) {
            vxlan_encap(pkt, *nh);
            action = Action::kVxlanEncap;
        }
        break;
    case lpm::ForwardMode::kDrop:
        break;
    }
    return d;
}

// ---- the burst ----

// Pass 1: the common packet (plain IPv4, not for the node) is checked
// inline and queued for the lookup; anything else takes a call. Returns how
// many were queued. Compiled twice: with and without the NIC's checksum
// verdicts, so the usual case (none) pays nothing for them.
template <bool kNicChecksums>
unsigned Forwarder::parse_burst(PortRole from, PacketView* pkts, Verdict* verdicts, unsigned n,
                                LcoreCounters& counters, std::uint64_t checksum_verified, Ipv4Addr* dst,
                                std::uint8_t* index) noexcept {
    unsigned lookups = 0;
    const bool uplink = from == PortRole::kUplink;
    const Ipv4Addr node_ip = config_.node_ip;
    for (unsigned i = 0; i < n; ++i) {
        PacketView& p = pkts[i];
        Step step;
        if (plain_ipv4(p, kNicChecksums && ((checksum_verified >> i) & 1))) [[likely]] {
            p.len = EtherHdr::kSize + ip_of(p).length();   // drop Ethernet padding
            const Ipv4Addr d = ip_of(p).destination();
            if (!uplink || d != node_ip) [[likely]] {
                dst[lookups] = d;
                index[lookups++] = static_cast<std::uint8_t>(i);
                continue;
            }
            step = to_node(p, counters);
        } else {
            step = rejected(from, p, counters);
        }
        if (step == Step::kLookup) {   // decapsulated: forwarded by the inner destination
            dst[lookups] = ip_of(p).destination();
            index[lookups++] = static_cast<std::uint8_t>(i);
        } else {
            verdicts[i] = step == Step::kToHost ? Verdict::kHost : Verdict::kDrop;
        }
    }
    return lookups;
}

void Forwarder::process(PortRole from, PacketView* pkts, Verdict* verdicts, unsigned n, LcoreCounters& counters,
                        std::uint64_t checksum_verified) noexcept {
    if (known_nodes_.generation() != table_.nexthop_generation()) [[unlikely]]
        known_nodes_.rebuild(table_);

    // A NIC writes frames to memory (or the LLC), not to L1: ask for every
    // header of the burst before the first is read (l3fwd prefetches a few
    // packets ahead; a whole burst is cheaper to issue and as early).
    for (unsigned i = 0; i < n; ++i)
        __builtin_prefetch(pkts[i].data + EtherHdr::kSize);

    Ipv4Addr dst[kMaxBurst];
    lpm::NextHopId ids[kMaxBurst];
    std::uint8_t index[kMaxBurst];
    const unsigned lookups =
        checksum_verified == 0
            ? parse_burst<false>(from, pkts, verdicts, n, counters, checksum_verified, dst, index)
            : parse_burst<true>(from, pkts, verdicts, n, counters, checksum_verified, dst, index);

    // Pass 2: one bulk lookup.
    table_.lookup_bulk(dst, ids, lookups);

    // Pass 3: rewrite by next hop; actions counted once per burst, drops
    // each under its reason. host-gw with nothing to drop for first, with
    // its values in registers.
    const lpm::NextHopTable nexthops = table_.nexthops();   // in locals: see NextHopTable
    const std::uint32_t mtu = config_.mtu;
    const std::uint64_t uplink_src_and_type = uplink_src_and_type_;
    std::uint32_t host_gw_count = 0;
    std::uint32_t count[static_cast<unsigned>(Action::kCount)] = {};
    for (unsigned k = 0; k < lookups; ++k) {
        const unsigned i = index[k];
        PacketView& p = pkts[i];
        const lpm::NextHop* nh = nexthops.get(ids[k]);
        if (nh != nullptr) [[likely]] {
            if (nh->mode == lpm::ForwardMode::kHostGw && host_gw_check(p, *nh, mtu) == Drop::kCount) [[likely]] {
                host_gw(p, *nh, uplink_src_and_type);
                verdicts[i] = Verdict::kUplink;
                ++host_gw_count;
                continue;
            }
        }
        Action action;
        if (const Drop d = decide(p, ids[k], nh, action); d != Drop::kCount) [[unlikely]] {
            counters.count(d);
            verdicts[i] = Verdict::kDrop;
            continue;
        }
        verdicts[i] = action == Action::kToHost ? Verdict::kHost : Verdict::kUplink;
        ++count[static_cast<unsigned>(action)];
    }
    count[static_cast<unsigned>(Action::kHostGw)] += host_gw_count;
    for (unsigned a = 0; a < std::size(count); ++a)
        counters.actions[a] += count[a];
}

// A plain IPv4 packet from the uplink addressed to the node: decapsulated
// when tunnelled to us, else the kernel's.
Forwarder::Step Forwarder::to_node(PacketView& pkt, LcoreCounters& counters) noexcept {
    const Ipv4Hdr& ip = ip_of(pkt);
    if (ip.protocol == kProtoIpip)
        return decap_ipip(pkt, counters) ? Step::kLookup : Step::kDropped;
    if (ip.protocol == kProtoUdp && pkt.len >= kEthIp + UdpHdr::kSize &&
        reinterpret_cast<const UdpHdr*>(pkt.data + kEthIp)->destination() == config_.vxlan_port)
        return decap_vxlan(pkt, counters) ? Step::kLookup : Step::kDropped;
    // The node's own services: the kernel answers.
    counters.count(Action::kToHost);
    return Step::kToHost;
}

// A packet that is not plain IPv4: dropped for its exact reason, except
// options addressed to the node itself (IGMP's Router Alert, say), which are
// the kernel's business, not the fast path's.
Forwarder::Step Forwarder::rejected(PortRole from, PacketView& pkt, LcoreCounters& counters) noexcept {
    const Drop d = pkt.len < EtherHdr::kSize              ? Drop::kShortFrame
                   : eth_of(pkt).ether_type() != kEtherTypeIpv4 ? Drop::kNotIpv4
                                                                : check_ipv4(pkt);
    if (d == Drop::kIpv4Options && from == PortRole::kUplink && ip_of(pkt).destination() == config_.node_ip) {
        counters.count(Action::kToHost);
        return Step::kToHost;
    }
    counters.count(d);
    return Step::kDropped;
}

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
    const bool inner_plain = room >= Ipv4Hdr::kSize && plain_ipv4_header(pkt.data + kEthIp, room);
    strip_after_ethernet(pkt, Ipv4Hdr::kSize);
    if (!inner_plain) [[unlikely]] {
        if (const Drop d = classify_ipv4(pkt); d != Drop::kCount) {   // the exact reason
            counters.count(d);
            return false;
        }
    }
    pkt.len = EtherHdr::kSize + ip_of(pkt).length();
    counters.count(Action::kIpipDecap);
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
    if (const Drop d = classify_ipv4(pkt); d != Drop::kCount) {
        counters.count(d);
        return false;
    }
    pkt.len = EtherHdr::kSize + ip_of(pkt).length();
    counters.count(Action::kVxlanDecap);
    return true;
}

}  // namespace podfwd::dp
