// ICMP for IPv4 (RFC 792): the 8-byte header, the types the dataplane sends
// or must recognise, the Next-Hop MTU of RFC 1191, and the checksum.
#pragma once

#include <cstddef>
#include <cstdint>

#include "dataplane/proto/bytes.h"
#include "dataplane/proto/ipv4.h"

namespace podfwd::proto {

inline constexpr std::uint8_t kProtoIcmp = 1;

inline constexpr std::uint8_t kIcmpEchoReply = 0;
inline constexpr std::uint8_t kIcmpDestUnreachable = 3;
inline constexpr std::uint8_t kIcmpSourceQuench = 4;
inline constexpr std::uint8_t kIcmpRedirect = 5;
inline constexpr std::uint8_t kIcmpEchoRequest = 8;
inline constexpr std::uint8_t kIcmpTimeExceeded = 11;
inline constexpr std::uint8_t kIcmpParameterProblem = 12;

inline constexpr std::uint8_t kIcmpCodeFragNeeded = 4;       // of kIcmpDestUnreachable (RFC 792, RFC 1191)
inline constexpr std::uint8_t kIcmpCodeTtlExceeded = 0;      // of kIcmpTimeExceeded: "in transit"

// RFC 1812 section 4.3.2.7: no ICMP error is ever sent about one of these,
// lest two routers answer each other's errors forever.
constexpr bool is_icmp_error(std::uint8_t type) noexcept {
    return type == kIcmpDestUnreachable || type == kIcmpSourceQuench || type == kIcmpRedirect ||
           type == kIcmpTimeExceeded || type == kIcmpParameterProblem;
}

struct IcmpHdr {
    std::uint8_t type;
    std::uint8_t code;
    std::uint8_t checksum[2];
    std::uint8_t rest[4];   // by type: echo id and sequence, the Next-Hop MTU, or unused (zero)

    static constexpr std::size_t kSize = 8;

    std::uint16_t header_checksum() const noexcept { return load_be16(checksum); }
    std::uint16_t echo_id() const noexcept { return load_be16(rest); }
    std::uint16_t echo_sequence() const noexcept { return load_be16(rest + 2); }
    // RFC 1191: the low 16 bits of a fragmentation-needed message; zero from
    // routers older than it.
    std::uint16_t next_hop_mtu() const noexcept { return load_be16(rest + 2); }
};
static_assert(sizeof(IcmpHdr) == IcmpHdr::kSize);

// What an error quotes of the offending datagram (RFC 792): its IP header
// and the first 64 bits of its data, enough for the sender to find the
// transport ports. Linux quotes up to 576 bytes in all; this is the minimum.
inline constexpr std::size_t kIcmpQuotedData = 8;
// RFC 1191: a router never reports a next-hop MTU below IPv4's minimum (RFC 791).
inline constexpr std::uint16_t kIpv4MinMtu = 68;

// The checksum field's value for an ICMP message of `len` bytes (header and
// data, the field itself zero). Unlike the IP header, the message may have
// an odd length: RFC 1071 pads the last byte with a zero.
inline std::uint16_t icmp_checksum(const void* message, std::size_t len) noexcept {
    std::uint32_t sum = ones_sum(message, len);
    if (len % 2 != 0)
        sum += std::uint32_t{static_cast<const std::uint8_t*>(message)[len - 1]} << 8;
    return static_cast<std::uint16_t>(~fold(sum));
}

// Writes an error's header: `rest` is the type's second word (the Next-Hop
// MTU for fragmentation needed, else zero); the checksum covers the quoted
// bytes already in place after the header, `quoted` of them.
inline void icmp_write_error(IcmpHdr& h, std::uint8_t type, std::uint8_t code, std::uint32_t rest,
                             std::size_t quoted) noexcept {
    h.type = type;
    h.code = code;
    store_be16(h.checksum, 0);
    store_be32(h.rest, rest);
    store_be16(h.checksum, icmp_checksum(&h, IcmpHdr::kSize + quoted));
}

}  // namespace podfwd::proto
