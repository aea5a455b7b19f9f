// Network byte order and unaligned access, for the packet headers.
// Headers are read through these, never by casting a packet to an aligned
// integer type: an IPv4 header after a 14-byte Ethernet header is only
// 2-byte aligned.
#pragma once

#include <cstdint>
#include <cstring>

namespace podfwd::proto {

constexpr std::uint16_t bswap16(std::uint16_t v) noexcept { return static_cast<std::uint16_t>(v << 8 | v >> 8); }
constexpr std::uint32_t bswap32(std::uint32_t v) noexcept { return __builtin_bswap32(v); }

inline std::uint16_t load_be16(const void* p) noexcept {
    std::uint16_t v;
    std::memcpy(&v, p, 2);
    return bswap16(v);
}
inline std::uint32_t load_be32(const void* p) noexcept {
    std::uint32_t v;
    std::memcpy(&v, p, 4);
    return bswap32(v);
}
inline void store_be16(void* p, std::uint16_t v) noexcept {
    v = bswap16(v);
    std::memcpy(p, &v, 2);
}
inline void store_be32(void* p, std::uint32_t v) noexcept {
    v = bswap32(v);
    std::memcpy(p, &v, 4);
}

}  // namespace podfwd::proto
