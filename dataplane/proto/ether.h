// Ethernet II (IEEE 802.3 framing with an EtherType).
#pragma once

#include <array>
#include <cstdint>

#include "common/mac.h"
#include "dataplane/proto/bytes.h"

namespace podfwd::proto {

using MacAddr = podfwd::MacAddr;

inline constexpr std::uint16_t kEtherTypeIpv4 = 0x0800;
inline constexpr std::uint16_t kEtherTypeArp = 0x0806;
inline constexpr std::uint16_t kEtherTypeVlan = 0x8100;

struct EtherHdr {
    MacAddr dst;
    MacAddr src;
    std::uint8_t type[2];   // big-endian EtherType

    static constexpr std::size_t kSize = 14;
    std::uint16_t ether_type() const noexcept { return load_be16(type); }
    void set_ether_type(std::uint16_t t) noexcept { store_be16(type, t); }
};
static_assert(sizeof(EtherHdr) == EtherHdr::kSize);

}  // namespace podfwd::proto
