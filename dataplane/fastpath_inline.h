// Private to the fast path (fastpath.cc, input.cc, output.cc): what more
// than one of its files reads packets with. Everything here is inline: the
// library is position-independent, where GCC does not inline a function
// with external linkage (it could be interposed), so a helper shared as an
// out-of-line function would cost a call per packet.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>

#include "dataplane/fastpath.h"
#include "dataplane/proto/ether.h"
#include "dataplane/proto/ipv4.h"

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

}  // namespace podfwd::dp::detail
