// UDP (RFC 768).
#pragma once

#include <cstdint>

#include "dataplane/proto/bytes.h"

namespace podfwd::proto {

struct UdpHdr {
    std::uint8_t src_port[2];
    std::uint8_t dst_port[2];
    std::uint8_t length[2];
    std::uint8_t checksum[2];

    static constexpr std::size_t kSize = 8;
    std::uint16_t source() const noexcept { return load_be16(src_port); }
    std::uint16_t destination() const noexcept { return load_be16(dst_port); }
    std::uint16_t total_length() const noexcept { return load_be16(length); }
};
static_assert(sizeof(UdpHdr) == UdpHdr::kSize);

}  // namespace podfwd::proto
