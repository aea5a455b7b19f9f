// The protocol helpers against independent computations: RFC 1071's worked
// example, a from-scratch checksum after every incremental TTL update, and
// Linux's choice of VXLAN source ports.
#include <gtest/gtest.h>

#include <array>
#include <random>

#include "dataplane/fastpath.h"
#include "dataplane/proto/ipv4.h"
#include "dataplane/proto/vxlan.h"

namespace podfwd::proto {
namespace {

// RFC 1071 section 3: the bytes 00 01 f2 03 f4 f5 f6 f7 sum to ddf2.
TEST(Checksum, Rfc1071Example) {
    const std::array<std::uint8_t, 8> bytes{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
    EXPECT_EQ(fold(ones_sum(bytes.data(), bytes.size())), 0xddf2);
}

// A header captured from the wire (Wikipedia's IPv4 checksum example):
// 4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7.
TEST(Checksum, KnownHeaderVerifiesAndRecomputes) {
    std::array<std::uint8_t, 20> h{0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                                   0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
    EXPECT_TRUE(ipv4_checksum_ok(h.data(), h.size()));
    h[10] = h[11] = 0;
    EXPECT_EQ(ipv4_checksum(h.data(), h.size()), 0xb861);
    h[10] = 0xb8;
    h[11] = 0x60;
    EXPECT_FALSE(ipv4_checksum_ok(h.data(), h.size()));
}

// RFC 1624's incremental update must equal a full recomputation, for every
// TTL and random headers (including the 0x0000/0xffff corner RFC 1624 fixes).
TEST(Checksum, IncrementalTtlDecrementMatchesFullRecompute) {
    std::mt19937 rng(1624);
    for (int round = 0; round < 200000; ++round) {
        Ipv4Hdr h{};
        ipv4_write(h, rng(), rng(), static_cast<std::uint8_t>(rng()), static_cast<std::uint16_t>(20 + rng() % 1480),
                   static_cast<std::uint8_t>(2 + rng() % 254), static_cast<std::uint16_t>(rng() & 0x4000),
                   static_cast<std::uint8_t>(rng()), static_cast<std::uint16_t>(rng()));
        ASSERT_TRUE(ipv4_checksum_ok(&h, sizeof h));
        ipv4_decrement_ttl(h);
        ASSERT_TRUE(ipv4_checksum_ok(&h, sizeof h)) << "round " << round;
        const std::uint16_t incremental = h.header_checksum();
        store_be16(h.checksum, 0);
        ASSERT_EQ(incremental, ipv4_checksum(&h, sizeof h)) << "round " << round;
    }
}

// The fast path's 32-bit-word check agrees with RFC 1071's 16-bit sum on
// valid headers and on every single-bit corruption of them.
TEST(Checksum, WordwiseCheckAgreesWithRfc1071Sum) {
    std::mt19937 rng(1071);
    for (int round = 0; round < 20000; ++round) {
        std::array<std::uint8_t, 20> h{};
        for (auto& b : h)
            b = static_cast<std::uint8_t>(rng());
        h[10] = h[11] = 0;
        store_be16(&h[10], ipv4_checksum(h.data(), h.size()));
        ASSERT_TRUE(ipv4_header_checksum_ok(h.data()));
        const unsigned bit = rng() % 160;
        h[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
        ASSERT_EQ(ipv4_header_checksum_ok(h.data()), ipv4_checksum_ok(h.data(), h.size())) << "round " << round;
        ASSERT_FALSE(ipv4_header_checksum_ok(h.data()));
    }
}

TEST(Vxlan, HeaderRoundTrip) {
    VxlanHdr v{};
    v.set(0xabcdef);
    EXPECT_EQ(v.flags, kVxlanFlagVni);
    EXPECT_EQ(v.vni(), 0xabcdefu);
    EXPECT_EQ(v.vni_reserved[3], 0);
}

TEST(Vxlan, SourcePortIsInLinuxRangeAndFollowsTheFlow) {
    std::array<std::uint8_t, 28> pkt{};
    auto& ip = *reinterpret_cast<Ipv4Hdr*>(pkt.data());
    std::mt19937 rng(7348);
    std::array<unsigned, 4> quarter{};
    for (int i = 0; i < 20000; ++i) {
        ipv4_write(ip, rng(), rng(), kProtoUdp, 28, 64, 0);
        store_be32(pkt.data() + 20, rng());   // ports
        const std::uint16_t port = dp::vxlan_source_port(pkt.data(), 28);
        ASSERT_GE(port, 49152);
        EXPECT_EQ(port, dp::vxlan_source_port(pkt.data(), 28));
        ++quarter[(port - 49152) / 4096];
    }
    for (unsigned q : quarter)   // spread over the range, not stuck in a corner
        EXPECT_GT(q, 4000u);
}

}  // namespace
}  // namespace podfwd::proto
