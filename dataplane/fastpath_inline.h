// Private to the fast path (fastpath.cc, input.cc, output.cc): what more
// than one of its files reads packets with. Everything here is inline: the
// library is position-independent, where GCC does not inline a function
// with external linkage (it could be interposed), so a helper shared as an
// out-of-line function would cost a call per packet.
#pragma once

#include <nmmintrin.h>

#include <bit>
#include <cstdint>
#include <cstring>

#include "dataplane/fastpath.h"
#include "dataplane/proto/ether.h"
#include "dataplane/nexthop_cache.h"
#include "dataplane/proto/ipv4.h"
#include "dataplane/proto/udp.h"
#include "dataplane/proto/vxlan.h"

namespace podfwd::dp::detail {

inline constexpr std::uint32_t kEthIp = proto::EtherHdr::kSize + proto::Ipv4Hdr::kSize;

[[gnu::always_inline]] inline proto::EtherHdr& eth_of(const PacketView& p) noexcept {
    return *reinterpret_cast<proto::EtherHdr*>(p.data);
}
[[gnu::always_inline]] inline proto::Ipv4Hdr& ip_of(const PacketView& p) noexcept {
    return *reinterpret_cast<proto::Ipv4Hdr*>(p.data + proto::EtherHdr::kSize);
}

// Destination MACs are compared as the frame's first 8 bytes, masked to the
// 6 of the MAC: one load and one compare instead of six bytes.
inline constexpr std::uint64_t kMacMask =
    std::endian::native == std::endian::little ? 0x0000ffffffffffffu : 0xffffffffffff0000u;

// The 8-byte form of `mac` (MAC bytes first, the 2 after them zero).
inline std::uint64_t mac_key(const proto::MacAddr& mac) noexcept {
    std::uint8_t bytes[8] = {};
    std::memcpy(bytes, mac.data(), 6);
    std::uint64_t v;
    std::memcpy(&v, bytes, 8);
    return v;
}

// The frame's first 8 bytes; the caller made sure there are 8.
[[gnu::always_inline]] inline std::uint64_t frame_head(const PacketView& p) noexcept {
    std::uint64_t v;
    std::memcpy(&v, p.data, 8);
    return v;
}

// I/G bit of the destination (IEEE 802): broadcast and multicast frames.
[[gnu::always_inline]] inline bool group_addressed(const PacketView& p) noexcept { return (p.data[0] & 1) != 0; }


// The helpers below are the fast path's own: they read and write packets.
using namespace proto;

// ---- parsing ----

// The common case in one pass, branch-light: an IPv4 frame (EtherType
// 0x0800) whose header has no options (first byte 0x45), a total length
// that fits the frame, a good checksum (unless the NIC verified it) and,
// where `mac_mask` is not zero, our destination MAC (`mac_key`). Anything
// else goes through rejected() or check_ipv4() for its exact verdict.
[[gnu::always_inline]] inline bool plain_ipv4(const PacketView& p, bool checksum_verified = false,
                                              std::uint64_t mac_mask = 0, std::uint64_t mac_key = 0) noexcept {
    if (p.len < kEthIp)
        return false;
    if (((frame_head(p) ^ mac_key) & mac_mask) != 0)   // folded away where mac_mask is 0
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

// ---- VXLAN's flow hash ----

// vxlan_source_port(), inline in the encapsulation.
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

// ---- output from a next hop's template (nexthop_cache.h) ----

// What the template rewrite needs and counts over a burst, in locals: a
// member would be reloaded after every packet byte stored.
struct OutputBurst {
    std::uint32_t mtu;
    std::uint16_t ip_id;   // the forwarder's next outer IP ID
    std::uint32_t host_gw = 0;
    std::uint32_t ipip = 0;
    std::uint32_t vxlan = 0;
    std::uint32_t local = 0;

    void add_to(LcoreCounters& counters) const noexcept {
        counters.actions[static_cast<unsigned>(Action::kHostGw)] += host_gw;
        counters.actions[static_cast<unsigned>(Action::kIpipEncap)] += ipip;
        counters.actions[static_cast<unsigned>(Action::kVxlanEncap)] += vxlan;
        counters.actions[static_cast<unsigned>(Action::kToHost)] += local;
    }
};

// The packet (plain IPv4, p.len its IP length plus the Ethernet header)
// rewritten or encapsulated from its next hop's template, verdict in `v`:
// true. False, the packet untouched, where the template does not apply
// (kSlow) or a check failed (TTL, MTU, headroom): the caller's general
// path then gives the exact verdict.
[[gnu::always_inline]] inline bool output_from_template(PacketView& p, const FastNextHop& f, OutputBurst& b,
                                                        Verdict& v) noexcept {
    std::uint8_t* const data = p.data;
    const std::uint32_t len = p.len;
    Ipv4Hdr& inner = ip_of(p);
    const std::uint8_t* const h = f.headers.data();
    switch (f.kind) {
    case FastKind::kHostGw:
        if (inner.ttl > 1 && len - EtherHdr::kSize <= b.mtu) [[likely]] {
            ipv4_decrement_ttl(inner);
            std::memcpy(data, h, 8);
            std::memcpy(data + 6, h + 6, 8);
            v = Verdict::kUplink;
            ++b.host_gw;
            return true;
        }
        break;
    case FastKind::kIpip: {
        const std::uint32_t outer_len = len - EtherHdr::kSize + kIpipOverhead;
        if (inner.ttl > 1 && outer_len <= b.mtu && p.headroom >= kIpipOverhead) [[likely]] {
            ipv4_decrement_ttl(inner);
            const std::uint16_t df = inner.frag_field() & kIpv4FlagDf;
            const std::uint8_t tos = inner.tos;
            // RFC 6864: an ID only where the outer header may be fragmented.
            const std::uint16_t id = df != 0 ? 0 : b.ip_id;
            b.ip_id = static_cast<std::uint16_t>(b.ip_id + (df == 0));
            std::uint8_t* const out = data - kIpipOverhead;
            std::memcpy(out, h, 16);
            std::memcpy(out + 16, h + 16, 16);
            std::memcpy(out + 26, h + 26, 8);
            Ipv4Hdr& outer = *reinterpret_cast<Ipv4Hdr*>(out + EtherHdr::kSize);
            outer.tos = tos;
            store_be16(outer.total_length, static_cast<std::uint16_t>(outer_len));
            store_be16(outer.id, id);
            store_be16(outer.frag, df);
            store_be16(outer.checksum,
                       static_cast<std::uint16_t>(~fold(std::uint32_t{f.outer_sum} + tos + outer_len + id + df)));
            p.data = out;
            p.len = len + kIpipOverhead;
            p.headroom -= kIpipOverhead;
            v = Verdict::kUplink;
            ++b.ipip;
            return true;
        }
        break;
    }
    case FastKind::kVxlan: {
        const std::uint32_t outer_len = Ipv4Hdr::kSize + UdpHdr::kSize + VxlanHdr::kSize + len;
        if (inner.ttl > 1 && outer_len <= b.mtu && p.headroom >= kVxlanOverhead) [[likely]] {
            ipv4_decrement_ttl(inner);
            const std::uint16_t source_port = flow_source_port(data + EtherHdr::kSize, len - EtherHdr::kSize);
            const std::uint16_t id = b.ip_id++;
            std::uint8_t* const out = data - kVxlanOverhead;
            std::memcpy(out, h, 16);
            std::memcpy(out + 16, h + 16, 16);
            std::memcpy(out + 32, h + 32, 16);
            std::memcpy(out + 48, h + 48, 16);
            Ipv4Hdr& outer = *reinterpret_cast<Ipv4Hdr*>(out + EtherHdr::kSize);
            store_be16(outer.total_length, static_cast<std::uint16_t>(outer_len));
            store_be16(outer.id, id);
            store_be16(outer.checksum, static_cast<std::uint16_t>(~fold(std::uint32_t{f.outer_sum} + outer_len + id)));
            auto& udp = *reinterpret_cast<UdpHdr*>(out + kEthIp);
            store_be16(udp.src_port, source_port);
            store_be16(udp.length, static_cast<std::uint16_t>(outer_len - Ipv4Hdr::kSize));
            p.data = out;
            p.len = len + kVxlanOverhead;
            p.headroom -= kVxlanOverhead;
            v = Verdict::kUplink;
            ++b.vxlan;
            return true;
        }
        break;
    }
    case FastKind::kLocal:
        // The kernel routes it on to the pod (and decrements the TTL).
        std::memcpy(data, h, 8);
        std::memcpy(data + 6, h + 6, 8);
        v = Verdict::kHost;
        ++b.local;
        return true;
    case FastKind::kSlow:
        break;
    }
    return false;
}

}  // namespace podfwd::dp::detail
