// MAC addresses as values and as text, for options, config, the CLI and
// tests and the exception path (the fast path copies them as bytes).
#pragma once

#include <array>
#include <cstring>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>

namespace podfwd {

using MacAddr = std::array<std::uint8_t, 6>;

// "02:00:5e:10:00:01" (or with '-'); exactly six two-digit hex groups.
inline std::optional<MacAddr> parse_mac(std::string_view text) {
    const auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9')
            return c - '0';
        if (c >= 'a' && c <= 'f')
            return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
            return c - 'A' + 10;
        return -1;
    };
    if (text.size() != 17)
        return std::nullopt;
    MacAddr mac{};
    for (unsigned i = 0; i < 6; ++i) {
        const int hi = hex(text[3 * i]);
        const int lo = hex(text[3 * i + 1]);
        if (hi < 0 || lo < 0)
            return std::nullopt;
        if (i < 5 && text[3 * i + 2] != ':' && text[3 * i + 2] != '-')
            return std::nullopt;
        mac[i] = static_cast<std::uint8_t>(hi << 4 | lo);
    }
    return mac;
}

inline std::string format_mac(const MacAddr& mac) {
    char buf[18];
    std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
    return buf;
}

// The six octets as one integer: comparisons in two loads, where
// std::array's operator== calls memcmp (a quarter of the ARP punt path's
// time under an ARP flood).
inline std::uint64_t mac_bits(const MacAddr& mac) noexcept {
    std::uint64_t bits = 0;
    std::memcpy(&bits, mac.data(), mac.size());
    return bits;
}
inline bool same_mac(const MacAddr& a, const MacAddr& b) noexcept { return mac_bits(a) == mac_bits(b); }

// A frame's source must be unicast and not all-zero (the I/G bit is bit 0 of
// the first octet).
inline bool is_unicast(const MacAddr& mac) noexcept {
    return (mac[0] & 1) == 0 && mac_bits(mac) != 0;
}

}  // namespace podfwd
