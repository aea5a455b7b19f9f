// Frames built byte by byte, for tests that compare the fast and exception
// paths' output with an independent construction: big-endian puts and gets,
// and the RFC 1071 checksum the slow way.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "dataplane/proto/ether.h"

namespace podfwd::dp::frame_bytes {

using Bytes = std::vector<std::uint8_t>;

inline void put8(Bytes& b, unsigned v) { b.push_back(static_cast<std::uint8_t>(v)); }
inline void put16(Bytes& b, unsigned v) {
    put8(b, v >> 8);
    put8(b, v & 0xff);
}
inline void put32(Bytes& b, std::uint32_t v) {
    put16(b, v >> 16);
    put16(b, v & 0xffff);
}
inline void put_mac(Bytes& b, const proto::MacAddr& m) { b.insert(b.end(), m.begin(), m.end()); }
inline unsigned get16(const Bytes& b, std::size_t at) { return unsigned{b[at]} << 8 | b[at + 1]; }
inline std::uint32_t get32(const Bytes& b, std::size_t at) {
    return std::uint32_t{get16(b, at)} << 16 | get16(b, at + 2);
}
inline proto::MacAddr get_mac(const Bytes& b, std::size_t at) {
    proto::MacAddr m;
    std::copy_n(b.begin() + static_cast<std::ptrdiff_t>(at), 6, m.begin());
    return m;
}

// RFC 1071 the slow way: even bytes high, odd bytes low, carries folded at the end.
inline unsigned naive_checksum(const Bytes& b, std::size_t from, std::size_t len) {
    std::uint64_t sum = 0;
    for (std::size_t i = 0; i < len; ++i)
        sum += i % 2 == 0 ? std::uint64_t{b[from + i]} << 8 : b[from + i];
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<unsigned>(~sum & 0xffff);
}

}  // namespace podfwd::dp::frame_bytes
