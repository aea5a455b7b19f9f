// IPv4 (RFC 791), its header checksum (RFC 1071) and the incremental update
// of that checksum (RFC 1624), shared by forwarding, encap and decap.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "dataplane/proto/bytes.h"

namespace podfwd::proto {

inline constexpr std::uint8_t kProtoIpip = 4;    // IPv4-in-IPv4 (RFC 2003)
inline constexpr std::uint8_t kProtoUdp = 17;
inline constexpr std::uint16_t kIpv4FlagDf = 0x4000;
inline constexpr std::uint16_t kIpv4FlagMf = 0x2000;
inline constexpr std::uint16_t kIpv4OffsetMask = 0x1fff;

struct Ipv4Hdr {
    std::uint8_t version_ihl;
    std::uint8_t tos;
    std::uint8_t total_length[2];
    std::uint8_t id[2];
    std::uint8_t frag[2];          // flags (3 bits) and fragment offset (13)
    std::uint8_t ttl;
    std::uint8_t protocol;
    std::uint8_t checksum[2];
    std::uint8_t src[4];
    std::uint8_t dst[4];

    static constexpr std::size_t kSize = 20;   // without options

    unsigned version() const noexcept { return version_ihl >> 4; }
    unsigned header_length() const noexcept { return (version_ihl & 0x0f) * 4u; }
    std::uint16_t length() const noexcept { return load_be16(total_length); }
    std::uint16_t frag_field() const noexcept { return load_be16(frag); }
    bool is_fragment() const noexcept { return (frag_field() & (kIpv4FlagMf | kIpv4OffsetMask)) != 0; }
    std::uint32_t source() const noexcept { return load_be32(src); }
    std::uint32_t destination() const noexcept { return load_be32(dst); }
    std::uint16_t header_checksum() const noexcept { return load_be16(checksum); }
};
static_assert(sizeof(Ipv4Hdr) == Ipv4Hdr::kSize);

// One's-complement sum of `len` bytes (len even), not yet folded.
inline std::uint32_t ones_sum(const void* data, std::size_t len, std::uint32_t sum = 0) noexcept {
    const auto* p = static_cast<const std::uint8_t*>(data);
    for (std::size_t i = 0; i + 1 < len; i += 2)
        sum += load_be16(p + i);
    return sum;
}
inline std::uint16_t fold(std::uint32_t sum) noexcept {
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<std::uint16_t>(sum);
}

// The checksum field's value for a header of `len` bytes (field itself zero).
inline std::uint16_t ipv4_checksum(const void* header, std::size_t len) noexcept {
    return static_cast<std::uint16_t>(~fold(ones_sum(header, len)));
}
// True when the header's checksum verifies (the sum including it is 0xffff).
inline bool ipv4_checksum_ok(const void* header, std::size_t len) noexcept {
    return fold(ones_sum(header, len)) == 0xffff;
}

// The same for a 20-byte header, on the fast path. 2^16 = 1 (mod 2^16 - 1),
// so the one's-complement sum of the header's 16-bit words is 0xffff exactly
// when the plain sum of its five native 32-bit words is a non-zero multiple
// of 0xffff (a zero header fails the version check first); byte order does
// not matter (RFC 1071 section 2B).
inline bool ipv4_header_checksum_ok(const void* header) noexcept {
    const auto* p = static_cast<const std::uint8_t*>(header);
    std::uint64_t a, b;
    std::uint32_t c;
    std::memcpy(&a, p, 8);
    std::memcpy(&b, p + 8, 8);
    std::memcpy(&c, p + 16, 4);
    const std::uint64_t sum = (a & 0xffffffff) + (a >> 32) + (b & 0xffffffff) + (b >> 32) + c;
    return sum % 0xffff == 0 && sum != 0;
}

// The TTL moved by one with the checksum updated incrementally (RFC 1624
// eqn. 3: HC' = ~(~HC + ~m + m')), m being the 16-bit word holding TTL and
// protocol. With m' = m -/+ 0x0100, ~m + m' is always 0xfeff / 0x0100.
// Done on the checksum as it lies in memory, without byte swaps: one's
// complement sums commute with swapping bytes (RFC 1071 section 2B), so
// on a little-endian machine the constant is swapped (the same result as
// the byte-swapped form for every one of the 65536 checksums).
inline void ipv4_add_to_checksum(Ipv4Hdr& h, std::uint16_t big_endian_delta) noexcept {
    const std::uint16_t delta = std::endian::native == std::endian::little
                                    ? static_cast<std::uint16_t>(big_endian_delta << 8 | big_endian_delta >> 8)
                                    : big_endian_delta;
    std::uint16_t raw;
    std::memcpy(&raw, h.checksum, 2);
    std::uint32_t sum = static_cast<std::uint16_t>(~raw) + std::uint32_t{delta};
    sum = (sum & 0xffff) + (sum >> 16);
    raw = static_cast<std::uint16_t>(~sum);
    std::memcpy(h.checksum, &raw, 2);
}

inline void ipv4_decrement_ttl(Ipv4Hdr& h) noexcept {
    --h.ttl;
    ipv4_add_to_checksum(h, 0xfeff);
}

// The inverse: only for a packet about to pass a decrement it must not pay
// (TTL <= 254).
inline void ipv4_increment_ttl(Ipv4Hdr& h) noexcept {
    ++h.ttl;
    ipv4_add_to_checksum(h, 0x0100);
}

// Writes a 20-byte header with its checksum, summed from the values being
// written rather than read back from the packet (encapsulation does this
// per packet).
inline void ipv4_write(Ipv4Hdr& h, std::uint32_t src, std::uint32_t dst, std::uint8_t protocol,
                       std::uint16_t total_length, std::uint8_t ttl, std::uint16_t frag_field, std::uint8_t tos = 0,
                       std::uint16_t id = 0) noexcept {
    h.version_ihl = 0x45;
    h.tos = tos;
    store_be16(h.total_length, total_length);
    store_be16(h.id, id);
    store_be16(h.frag, frag_field);
    h.ttl = ttl;
    h.protocol = protocol;
    store_be32(h.src, src);
    store_be32(h.dst, dst);
    const std::uint32_t sum = (0x4500u | tos) + total_length + id + frag_field + (std::uint32_t{ttl} << 8 | protocol) +
                              (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff);
    store_be16(h.checksum, static_cast<std::uint16_t>(~fold(sum)));
}

}  // namespace podfwd::proto
