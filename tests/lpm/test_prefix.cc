// Prefix4::parse / Prefix4::make: what the control plane accepts as a route.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/ipv4.h"
#include "tests/lpm/test_util.h"

namespace podfwd {
namespace {

using lpm::test::HasErrc;
using lpm::test::IsOk;

constexpr Ipv4Addr ip(unsigned a, unsigned b, unsigned c, unsigned d) { return a << 24 | b << 16 | c << 8 | d; }

TEST(PrefixMask, Edges) {
    EXPECT_EQ(prefix_mask(0), 0u);
    EXPECT_EQ(prefix_mask(1), 0x80000000u);
    EXPECT_EQ(prefix_mask(24), 0xffffff00u);
    EXPECT_EQ(prefix_mask(31), 0xfffffffeu);
    EXPECT_EQ(prefix_mask(32), 0xffffffffu);
}

TEST(PrefixMake, AcceptsEveryLengthOfACleanNetwork) {
    for (unsigned len = 0; len <= 32; ++len) {
        const Ipv4Addr addr = ip(10, 20, 30, 40) & prefix_mask(len);
        auto p = Prefix4::make(addr, len);
        ASSERT_TRUE(IsOk(p)) << "len " << len;
        EXPECT_EQ(p->addr, addr);
        EXPECT_EQ(p->len, len);
    }
}

TEST(PrefixMake, RejectsLengthAbove32) {
    for (unsigned len : {33u, 64u, 255u, 256u, 1000u, ~0u})
        EXPECT_TRUE(HasErrc(Prefix4::make(0, len), Errc::kInvalidArgument)) << "len " << len;
}

TEST(PrefixMake, RejectsHostBitsNamingTheCorrectedPrefix) {
    struct Case {
        Ipv4Addr addr;
        unsigned len;
        const char* corrected;
    };
    const std::vector<Case> cases = {
        {ip(10, 1, 2, 3), 24, "10.1.2.0/24"},
        {ip(10, 1, 2, 3), 8, "10.0.0.0/8"},
        {ip(10, 1, 2, 3), 31, "10.1.2.2/31"},
        {ip(192, 168, 1, 255), 25, "192.168.1.128/25"},
        {ip(0, 0, 0, 1), 0, "0.0.0.0/0"},
        {ip(255, 255, 255, 255), 1, "128.0.0.0/1"},
    };
    for (const auto& c : cases) {
        auto p = Prefix4::make(c.addr, c.len);
        ASSERT_TRUE(HasErrc(p, Errc::kInvalidArgument)) << format_ipv4(c.addr) << "/" << c.len;
        EXPECT_NE(p.error().message.find(c.corrected), std::string::npos)
            << "message '" << p.error().message << "' should name " << c.corrected;
    }
}

TEST(PrefixParse, ValidPrefixes) {
    struct Case {
        const char* text;
        Ipv4Addr addr;
        unsigned len;
    };
    const std::vector<Case> cases = {
        {"0.0.0.0/0", 0, 0},
        {"10.0.0.0/8", ip(10, 0, 0, 0), 8},
        {"10.1.0.0/16", ip(10, 1, 0, 0), 16},
        {"10.1.192.0/18", ip(10, 1, 192, 0), 18},
        {"10.1.2.0/24", ip(10, 1, 2, 0), 24},
        {"10.1.2.128/25", ip(10, 1, 2, 128), 25},
        {"10.1.2.2/31", ip(10, 1, 2, 2), 31},
        {"10.1.2.3/32", ip(10, 1, 2, 3), 32},
        {"255.255.255.255/32", 0xffffffffu, 32},
        {"128.0.0.0/1", 0x80000000u, 1},
    };
    for (const auto& c : cases) {
        auto p = Prefix4::parse(c.text);
        ASSERT_TRUE(IsOk(p)) << c.text;
        EXPECT_EQ(p->addr, c.addr) << c.text;
        EXPECT_EQ(p->len, c.len) << c.text;
        EXPECT_EQ(p->str(), c.text);   // round trip
    }
}

TEST(PrefixParse, BareAddressIsSlash32) {
    for (const char* text : {"10.1.2.3", "0.0.0.0", "255.255.255.255"}) {
        auto p = Prefix4::parse(text);
        ASSERT_TRUE(IsOk(p)) << text;
        EXPECT_EQ(p->len, 32) << text;
        EXPECT_EQ(p->str(), std::string(text) + "/32");
    }
}

TEST(PrefixParse, DefaultRouteContainsEverything) {
    auto p = Prefix4::parse("0.0.0.0/0");
    ASSERT_TRUE(IsOk(p));
    EXPECT_EQ(*p, (Prefix4{0, 0}));
    for (Ipv4Addr a : {0u, 1u, 0x7fffffffu, 0x80000000u, 0xffffffffu})
        EXPECT_TRUE(p->contains(a)) << format_ipv4(a);
}

TEST(PrefixParse, RejectsLengthAbove32) {
    for (const char* text : {"10.0.0.0/33", "0.0.0.0/64", "1.2.3.4/4294967296", "0.0.0.0/4294967328"})
        EXPECT_TRUE(HasErrc(Prefix4::parse(text), Errc::kInvalidArgument)) << text;
}

TEST(PrefixParse, RejectsHostBitsNamingTheCorrectedPrefix) {
    auto p = Prefix4::parse("10.1.2.3/24");
    ASSERT_TRUE(HasErrc(p, Errc::kInvalidArgument));
    EXPECT_NE(p.error().message.find("10.1.2.0/24"), std::string::npos) << p.error().message;

    p = Prefix4::parse("172.16.5.4/12");
    ASSERT_TRUE(HasErrc(p, Errc::kInvalidArgument));
    EXPECT_NE(p.error().message.find("172.16.0.0/12"), std::string::npos) << p.error().message;
}

TEST(PrefixParse, RejectsGarbage) {
    const std::vector<std::string> garbage = {
        "",
        "/",
        "/24",
        "10",
        "10.1",
        "10.1.2",
        "10.1.2.",
        "10.1.2.3.",
        "10.1.2.3.4",
        "10..2.3",
        ".10.1.2",
        "256.0.0.0",
        "10.1.2.256",
        "10.1.2.1000",
        "10.1.2.-1",
        "-1.0.0.0",
        "a.b.c.d",
        "0x0a.0.0.0",
        "010.1.2.0",   // a leading zero: inet_aton's octal 8, or 10?
        "10.01.2.0",
        "10.1.2.00",
        "10.1.2.3x",
        " 10.1.2.3",
        "10.1.2.3 ",
        "10.1.2.3/",
        "10.1.2.0/24x",
        "10.1.2.0/ 24",
        "10.1.2.0/+24",
        "10.1.2.0/-24",
        "10.1.2.0//24",
        "10.1.2.0/24/8",
        "10.1.2.0/2 4",
        "10.1.2.0\\24",
        "localhost",
        "::1",
        std::string("10.1.2.3\0", 9),
        std::string(1000, '1'),
    };
    for (const auto& text : garbage) {
        auto p = Prefix4::parse(text);
        EXPECT_TRUE(HasErrc(p, Errc::kInvalidArgument)) << "'" << text << "'";
    }
}

TEST(PrefixParse, ErrorMessagesQuoteTheInput) {
    // Operators need to see what was rejected.
    for (const char* text : {"10.1.2", "10.1.2.0/x"}) {
        auto p = Prefix4::parse(text);
        ASSERT_FALSE(p.has_value()) << text;
        EXPECT_NE(p.error().message.find(text), std::string::npos) << p.error().message;
    }
}

TEST(PrefixParse, LeadingZerosAreRefusedZerosAreNot) {
    auto p = Prefix4::parse("010.1.2.0/24");
    ASSERT_FALSE(p.has_value());
    EXPECT_NE(p.error().message.find("leading zero"), std::string::npos) << p.error().message;
    for (const char* text : {"0.0.0.0/0", "10.0.0.0/8", "100.64.0.0/10", "10.0.100.0/24"})
        EXPECT_TRUE(Prefix4::parse(text).has_value()) << text;
}

TEST(PrefixContains, Boundaries) {
    auto p = Prefix4::parse("10.1.2.128/25");
    ASSERT_TRUE(IsOk(p));
    EXPECT_FALSE(p->contains(ip(10, 1, 2, 127)));
    EXPECT_TRUE(p->contains(ip(10, 1, 2, 128)));
    EXPECT_TRUE(p->contains(ip(10, 1, 2, 255)));
    EXPECT_FALSE(p->contains(ip(10, 1, 3, 0)));

    auto host = Prefix4::parse("10.1.2.3");
    ASSERT_TRUE(IsOk(host));
    EXPECT_TRUE(host->contains(ip(10, 1, 2, 3)));
    EXPECT_FALSE(host->contains(ip(10, 1, 2, 2)));
}

TEST(PrefixOrder, ComparesByAddressThenLength) {
    const Prefix4 a{ip(10, 0, 0, 0), 8}, b{ip(10, 0, 0, 0), 16}, c{ip(10, 1, 0, 0), 16};
    EXPECT_LT(a, b);
    EXPECT_LT(b, c);
    EXPECT_NE(a, b);
}

}  // namespace
}  // namespace podfwd
