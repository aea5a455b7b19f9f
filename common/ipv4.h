// IPv4 addresses and prefixes as value types. Addresses are host byte order
// everywhere above the packet layer; the dataplane converts once at parse time.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace podfwd {

using Ipv4Addr = std::uint32_t;   // host byte order

// Mask with the top `len` bits set; len in [0, 32].
constexpr Ipv4Addr prefix_mask(unsigned len) noexcept {
    return len == 0 ? 0 : ~Ipv4Addr{0} << (32 - len);
}

struct Prefix4 {
    Ipv4Addr addr = 0;   // network address: host bits are always zero
    std::uint8_t len = 0;

    // Rejects len > 32 and set host bits ("10.1.2.3/24" is an error naming
    // 10.1.2.0/24): a route with host bits set is almost always a typo, and
    // silently normalising it would install something the operator did not write.
    static Result<Prefix4> make(Ipv4Addr addr, unsigned len);
    // "a.b.c.d/len"; a bare address means /32.
    static Result<Prefix4> parse(std::string_view text);

    bool contains(Ipv4Addr a) const noexcept { return (a & prefix_mask(len)) == addr; }
    std::string str() const;

    friend bool operator==(const Prefix4&, const Prefix4&) = default;
    friend auto operator<=>(const Prefix4&, const Prefix4&) = default;
};

// Dotted quad, four decimal octets 0..255 without leading zeros ("010" is
// refused: octal to inet_aton, decimal to others), nothing around it.
Result<Ipv4Addr> parse_ipv4(std::string_view text);
std::string format_ipv4(Ipv4Addr addr);

}  // namespace podfwd
