// The exception path against independent computations: the token bucket's
// arithmetic worked out by hand, ARP replies read back at fixed byte
// offsets, ICMP errors compared with frames built here field by field (the
// checksums by a plain byte loop), every RFC 1812 case where no error may be
// sent, the rate limit, and random frames for the invariants (the view
// stays in its buffer, every packet counted exactly once).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "common/ipv4.h"
#include "dataplane/exception.h"
#include "dataplane/proto/arp.h"
#include "dataplane/proto/icmp.h"
#include "frame_bytes.h"
#include "lpm/reader.h"
#include "lpm/writer.h"

namespace podfwd::dp {
namespace {

constexpr MacAddr kUplinkMac{0x02, 0, 0, 0, 0, 0x02};
constexpr MacAddr kHostMac{0x02, 0, 0, 0, 0, 0x01};
constexpr MacAddr kPeerMac{0x02, 0, 0, 0, 0, 0x10};
constexpr MacAddr kBroadcast{0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
constexpr std::uint16_t kIdStart = 0x1234;
constexpr std::uint32_t kMbufHeadroom = 128;

Ipv4Addr ip(const char* text) { return *parse_ipv4(text); }

// ---- frames, built byte by byte (frame_bytes.h) ----

using namespace frame_bytes;

struct IpPacket {
    Ipv4Addr src = 0;
    Ipv4Addr dst = 0;
    unsigned protocol = 17;
    unsigned ttl = 1;
    unsigned frag = 0x4000;   // DF
    unsigned tos = 0;
    Bytes options;            // a multiple of 4 bytes
    Bytes payload;
    MacAddr eth_dst = kUplinkMac;
    MacAddr eth_src = kPeerMac;
    std::size_t pad_to = 0;   // Ethernet padding after the IP packet
};

Bytes frame_of(const IpPacket& p) {
    Bytes b;
    put_mac(b, p.eth_dst);
    put_mac(b, p.eth_src);
    put16(b, 0x0800);
    const std::size_t header = 20 + p.options.size();
    put8(b, 0x40 | header / 4);
    put8(b, p.tos);
    put16(b, static_cast<unsigned>(header + p.payload.size()));
    put16(b, 0xbeef);
    put16(b, p.frag);
    put8(b, p.ttl);
    put8(b, p.protocol);
    put16(b, 0);
    put32(b, p.src);
    put32(b, p.dst);
    b.insert(b.end(), p.options.begin(), p.options.end());
    const unsigned sum = naive_checksum(b, 14, header);
    b[24] = static_cast<std::uint8_t>(sum >> 8);
    b[25] = static_cast<std::uint8_t>(sum);
    b.insert(b.end(), p.payload.begin(), p.payload.end());
    if (b.size() < p.pad_to)
        b.resize(p.pad_to, 0xee);
    return b;
}

Bytes counting_bytes(std::size_t n, unsigned first = 0x30) {
    Bytes b(n);
    for (std::size_t i = 0; i < n; ++i)
        b[i] = static_cast<std::uint8_t>(first + i);
    return b;
}

// A UDP datagram (8-byte header, then `data` bytes) from a remote pod to another.
IpPacket udp_packet(std::size_t data = 100) {
    IpPacket p;
    p.src = ip("10.244.1.7");
    p.dst = ip("10.244.2.9");
    p.payload = counting_bytes(8 + data);
    return p;
}

IpPacket icmp_packet(unsigned type, std::size_t length = 36) {
    IpPacket p = udp_packet();
    p.protocol = 1;
    p.payload = counting_bytes(length);
    if (length > 0)
        p.payload[0] = static_cast<std::uint8_t>(type);
    if (length > 1)
        p.payload[1] = 0;
    return p;
}

struct Expected {
    unsigned type = 11;
    unsigned code = 0;
    unsigned mtu = 0;
    unsigned id = kIdStart;
    MacAddr eth_dst = kUplinkMac;
    MacAddr eth_src = kHostMac;
};

// The error RFC 792 describes, from the original frame's fields.
Bytes expected_error(const Bytes& original, const Expected& e) {
    const std::size_t header = (original[14] & 0x0f) * 4u;
    const std::size_t quoted = std::min<std::size_t>(get16(original, 16), header + 8);
    Bytes b;
    put_mac(b, e.eth_dst);
    put_mac(b, e.eth_src);
    put16(b, 0x0800);
    put8(b, 0x45);
    put8(b, 0xc0);
    put16(b, static_cast<unsigned>(20 + 8 + quoted));
    put16(b, e.id);
    put16(b, 0);   // DF clear, offset 0
    put8(b, 64);
    put8(b, 1);
    put16(b, 0);
    put32(b, ip("10.168.0.2"));
    put32(b, get32(original, 26));   // back to the source
    const unsigned ip_sum = naive_checksum(b, 14, 20);
    b[24] = static_cast<std::uint8_t>(ip_sum >> 8);
    b[25] = static_cast<std::uint8_t>(ip_sum);
    put8(b, e.type);
    put8(b, e.code);
    put16(b, 0);
    put16(b, 0);
    put16(b, e.mtu);
    b.insert(b.end(), original.begin() + 14, original.begin() + 14 + static_cast<std::ptrdiff_t>(quoted));
    const unsigned icmp_sum = naive_checksum(b, 34, b.size() - 34);
    b[36] = static_cast<std::uint8_t>(icmp_sum >> 8);
    b[37] = static_cast<std::uint8_t>(icmp_sum);
    return b;
}

struct ArpFrame {
    MacAddr eth_dst = kBroadcast;
    MacAddr eth_src = kPeerMac;
    unsigned ether_type = 0x0806;
    unsigned htype = 1, ptype = 0x0800, hlen = 6, plen = 4, op = 1;
    MacAddr sha = kPeerMac;
    Ipv4Addr spa = ip("10.168.0.9");
    MacAddr tha{};
    Ipv4Addr tpa = ip("10.168.0.2");
    std::size_t size = 60;   // as received from a NIC: padded
};

Bytes frame_of(const ArpFrame& a) {
    Bytes b;
    put_mac(b, a.eth_dst);
    put_mac(b, a.eth_src);
    put16(b, a.ether_type);
    put16(b, a.htype);
    put16(b, a.ptype);
    put8(b, a.hlen);
    put8(b, a.plen);
    put16(b, a.op);
    put_mac(b, a.sha);
    put32(b, a.spa);
    put_mac(b, a.tha);
    put32(b, a.tpa);
    b.resize(a.size, 0xee);
    return b;
}

// ---- a buffer like an mbuf: headroom, then the frame ----

struct Buffer {
    Bytes storage;
    PacketView view{};

    explicit Buffer(const Bytes& frame, std::uint32_t headroom = kMbufHeadroom) : storage(headroom + frame.size()) {
        std::copy(frame.begin(), frame.end(), storage.begin() + headroom);
        view = PacketView{storage.data() + headroom, static_cast<std::uint32_t>(frame.size()), headroom};
    }
    Bytes frame() const { return Bytes(view.data, view.data + view.len); }
    bool consistent() const {
        return view.data >= storage.data() && view.data + view.len <= storage.data() + storage.size() &&
               view.data - storage.data() == static_cast<std::ptrdiff_t>(view.headroom);
    }
};

std::uint64_t counted(const LcoreCounters& c) {
    std::uint64_t n = 0;
    for (auto v : c.actions)
        n += v;
    for (auto v : c.drops)
        n += v;
    return n;
}

// ---- the table: one next hop per mode ----

class ExceptionPathTest : public ::testing::Test {
protected:
    static NodeConfig node() {
        NodeConfig c;
        c.node_ip = ip("10.168.0.2");
        c.uplink_mac = kUplinkMac;
        c.vtep_mac = {0x02, 0, 0, 0, 0, 0x0c};
        c.host_mac = kHostMac;
        c.mtu = 1500;
        c.outer_ip_id_start = kIdStart;
        return c;
    }

    static lpm::TableWriter make_table(const std::string& name) {
        (void)lpm::TableWriter::unlink(name);
        lpm::TableWriter::Options options;
        options.capacity = lpm::Capacity{.max_routes = 64, .max_nexthops = 16, .reader_slots = 4, .max_groups = 16};
        auto writer = std::move(lpm::TableWriter::open(name, options)).value();
        const auto add = [&](const char* node_ip, lpm::ForwardMode mode, const char* prefix) {
            lpm::NextHop nh;
            nh.node_ip = ip(node_ip);
            nh.mode = mode;
            nh.mac = kPeerMac;
            nh.flags = lpm::NextHop::kMacResolved;
            const lpm::NextHopId id = *writer.nexthop_add(nh);
            EXPECT_TRUE(writer.route_add(*Prefix4::parse(prefix), id));
        };
        add("10.168.0.3", lpm::ForwardMode::kHostGw, "10.244.1.0/24");
        add("192.168.5.9", lpm::ForwardMode::kIpip, "10.244.2.0/24");
        add("192.168.5.10", lpm::ForwardMode::kVxlan, "10.244.3.0/24");
        add("10.168.0.2", lpm::ForwardMode::kLocal, "10.244.0.0/24");
        add("10.168.0.5", lpm::ForwardMode::kDrop, "10.244.5.0/24");
        EXPECT_TRUE(writer.commit());
        return writer;
    }

    ExceptionPathTest()
        : name_("podfwd-test-exception-" + std::to_string(::getpid())), writer_(make_table(name_)),
          view_(*lpm::TableView::open(name_)), slot_(*view_.register_reader()) {}
    ~ExceptionPathTest() override { (void)lpm::TableWriter::unlink(name_); }

    // Handles one packet and checks it was counted exactly once.
    ExceptionResult run(ExceptionPath& path, PortRole from, Verdict punt, Buffer& buf, std::uint64_t now_ns = 0) {
        const std::uint64_t before = counted(counters_);
        const ExceptionResult r = path.handle(from, punt, buf.view, now_ns, counters_);
        EXPECT_EQ(counted(counters_), before + 1) << "a punted packet is counted exactly once";
        EXPECT_TRUE(buf.consistent());
        return r;
    }
    ExceptionResult run(PortRole from, Verdict punt, Buffer& buf, std::uint64_t now_ns = 0) {
        return run(path_, from, punt, buf, now_ns);
    }

    std::string name_;
    lpm::TableWriter writer_;
    lpm::TableView view_;
    lpm::ReaderSlot slot_;
    ExceptionPath path_{node(), view_};
    LcoreCounters counters_;
};

// ---- TokenBucket ----

TEST(TokenBucket, StartsFullWithTheBurst) {
    TokenBucket b(1000, 100);
    for (int i = 0; i < 100; ++i)
        ASSERT_TRUE(b.take(0)) << i;
    EXPECT_FALSE(b.take(0));
}

TEST(TokenBucket, RefillsOneTokenPerIntervalOfTheRate) {
    TokenBucket b(1000, 1);
    ASSERT_TRUE(b.take(0));
    EXPECT_FALSE(b.take(999'999));
    EXPECT_TRUE(b.take(1'000'000));
    EXPECT_FALSE(b.take(1'000'000));
    EXPECT_FALSE(b.take(1'999'999));
    EXPECT_TRUE(b.take(2'000'000));
}

// Rate 3: a token every 10^9/3 ns. In units of 10^-9 token: 3 per ns, so
// the first token is complete at ceil(10^9 / 3) = 333,333,334 ns with 2
// units over; the carried units make the third land on exactly 1 s. (A
// burst of 2, so that the cap at the burst never cuts the carry.)
TEST(TokenBucket, FractionsOfATokenCarryOver) {
    TokenBucket b(3, 2);
    ASSERT_TRUE(b.take(0));
    ASSERT_TRUE(b.take(0));
    EXPECT_FALSE(b.take(333'333'333));
    EXPECT_TRUE(b.take(333'333'334));   // 2 units left
    EXPECT_FALSE(b.take(666'666'666));  // 2 + 3 * 333,333,332 = 999,999,998
    EXPECT_TRUE(b.take(666'666'667));   // 10^9 + 1: 1 left
    EXPECT_FALSE(b.take(999'999'999));
    EXPECT_TRUE(b.take(1'000'000'000));
    EXPECT_FALSE(b.take(1'000'000'000));
}

// Polled every 100 us for 10 s: the burst, then exactly rate * 10 s (the
// bucket never fills while it is being drained, so nothing is lost).
TEST(TokenBucket, LongRunIsBurstPlusRateTimesTime) {
    TokenBucket b(1000, 100);
    unsigned taken = 0;
    for (std::uint64_t t = 0; t <= 10'000'000'000; t += 100'000)
        taken += b.take(t);
    EXPECT_EQ(taken, 100u + 10'000u);
}

TEST(TokenBucket, IdleTimeFillsNoMoreThanTheBurst) {
    TokenBucket b(1000, 5);
    for (int i = 0; i < 5; ++i)
        ASSERT_TRUE(b.take(0));
    const std::uint64_t hour = 3600ull * 1'000'000'000;
    for (int i = 0; i < 5; ++i)
        EXPECT_TRUE(b.take(hour)) << i;
    EXPECT_FALSE(b.take(hour));
}

TEST(TokenBucket, ExtremeValuesDoNotOverflow) {
    TokenBucket b(UINT32_MAX, UINT32_MAX);
    EXPECT_TRUE(b.take(UINT64_MAX / 2));
    TokenBucket small(UINT32_MAX, 2);
    ASSERT_TRUE(small.take(0));
    ASSERT_TRUE(small.take(0));
    ASSERT_FALSE(small.take(0));
    EXPECT_TRUE(small.take(UINT64_MAX));   // refill of ~2^96 units, capped at 2 tokens
    EXPECT_TRUE(small.take(UINT64_MAX));
    EXPECT_FALSE(small.take(UINT64_MAX));
}

// The bucket holds `burst` tokens at most, fractions included: with a burst
// of 1 the 2 units over each token are lost, so a token comes every
// 333,333,334 ns, not every 10^9/3.
TEST(TokenBucket, CreditBeyondTheBurstIsLost) {
    TokenBucket b(3, 1);
    ASSERT_TRUE(b.take(0));
    EXPECT_TRUE(b.take(333'333'334));    // 10^9 + 2, capped at 10^9
    EXPECT_FALSE(b.take(666'666'667));   // 999,999,999
    EXPECT_TRUE(b.take(666'666'668));
}

TEST(TokenBucket, ClockGoingBackRefillsNothing) {
    TokenBucket b(1000, 1);
    ASSERT_TRUE(b.take(5'000'000));
    EXPECT_FALSE(b.take(1'000'000));
    EXPECT_FALSE(b.take(5'999'999));
    EXPECT_TRUE(b.take(6'000'000));
}

TEST(TokenBucket, RateZeroGivesOnlyTheBurst) {
    TokenBucket b(0, 2);
    EXPECT_TRUE(b.take(0));
    EXPECT_TRUE(b.take(1'000'000'000));
    EXPECT_FALSE(b.take(UINT64_MAX));
}

// ---- ARP ----

TEST(ArpBuilders, RequestAndAnnouncementBytes) {
    std::array<std::uint8_t, 42> f{};
    ASSERT_EQ(proto::write_arp_request(f.data(), kUplinkMac, ip("10.168.0.2"), ip("10.168.0.1")), 42u);
    Bytes b(f.begin(), f.end());
    EXPECT_EQ(get_mac(b, 0), kBroadcast);
    EXPECT_EQ(get_mac(b, 6), kUplinkMac);
    EXPECT_EQ(get16(b, 12), 0x0806u);
    EXPECT_EQ(get16(b, 14), 1u);
    EXPECT_EQ(get16(b, 16), 0x0800u);
    EXPECT_EQ(b[18], 6);
    EXPECT_EQ(b[19], 4);
    EXPECT_EQ(get16(b, 20), 1u);
    EXPECT_EQ(get_mac(b, 22), kUplinkMac);
    EXPECT_EQ(get32(b, 28), ip("10.168.0.2"));
    EXPECT_EQ(get_mac(b, 32), MacAddr{});
    EXPECT_EQ(get32(b, 38), ip("10.168.0.1"));

    f.fill(0xaa);
    ASSERT_EQ(proto::write_gratuitous_arp(f.data(), kUplinkMac, ip("10.168.0.2")), 42u);
    b.assign(f.begin(), f.end());
    EXPECT_EQ(get_mac(b, 0), kBroadcast);
    EXPECT_EQ(get16(b, 20), 1u);   // RFC 5227: an announcement is a request
    EXPECT_EQ(get32(b, 28), ip("10.168.0.2"));
    EXPECT_EQ(get_mac(b, 32), MacAddr{});
    EXPECT_EQ(get32(b, 38), ip("10.168.0.2"));
    const auto* arp = proto::arp_of_frame(f.data(), f.size());
    ASSERT_NE(arp, nullptr);
    EXPECT_TRUE(arp->is_gratuitous());
    EXPECT_FALSE(arp->is_probe());
}

void expect_reply(const Bytes& b, const MacAddr& sender_mac, Ipv4Addr sender_ip, const MacAddr& target_mac,
                  Ipv4Addr target_ip) {
    ASSERT_EQ(b.size(), 42u);
    EXPECT_EQ(get_mac(b, 0), target_mac);
    EXPECT_EQ(get_mac(b, 6), sender_mac);
    EXPECT_EQ(get16(b, 12), 0x0806u);
    EXPECT_EQ(get16(b, 14), 1u);
    EXPECT_EQ(get16(b, 16), 0x0800u);
    EXPECT_EQ(b[18], 6);
    EXPECT_EQ(b[19], 4);
    EXPECT_EQ(get16(b, 20), 2u);
    EXPECT_EQ(get_mac(b, 22), sender_mac);
    EXPECT_EQ(get32(b, 28), sender_ip);
    EXPECT_EQ(get_mac(b, 32), target_mac);
    EXPECT_EQ(get32(b, 38), target_ip);
}

TEST_F(ExceptionPathTest, UplinkRequestForTheNodeIpIsAnsweredInPlace) {
    Buffer buf(frame_of(ArpFrame{}));
    std::uint8_t* const start = buf.view.data;
    EXPECT_EQ(run(PortRole::kUplink, Verdict::kPuntArp, buf), ExceptionResult::kToUplink);
    EXPECT_EQ(buf.view.data, start);
    expect_reply(buf.frame(), kUplinkMac, ip("10.168.0.2"), kPeerMac, ip("10.168.0.9"));
    EXPECT_EQ(counters_.of(Action::kArpReply), 1u);
}

TEST_F(ExceptionPathTest, UplinkUnicastRequestToOurMacIsAnswered) {
    ArpFrame a;
    a.eth_dst = kUplinkMac;   // Linux revalidating its cache entry
    a.tha = kUplinkMac;
    Buffer buf(frame_of(a));
    EXPECT_EQ(run(PortRole::kUplink, Verdict::kPuntArp, buf), ExceptionResult::kToUplink);
    expect_reply(buf.frame(), kUplinkMac, ip("10.168.0.2"), kPeerMac, ip("10.168.0.9"));
}

TEST_F(ExceptionPathTest, UplinkProbeForTheNodeIpIsAnsweredToDefendIt) {
    ArpFrame a;
    a.spa = 0;
    Buffer buf(frame_of(a));
    EXPECT_EQ(run(PortRole::kUplink, Verdict::kPuntArp, buf), ExceptionResult::kToUplink);
    expect_reply(buf.frame(), kUplinkMac, ip("10.168.0.2"), kPeerMac, 0);
}

TEST_F(ExceptionPathTest, HostRequestsAreProxiedWithTheUplinkMac) {
    for (const char* target : {"10.168.0.1", "10.244.1.7", "8.8.8.8"}) {
        ArpFrame a;
        a.eth_src = a.sha = kHostMac;
        a.spa = ip("10.168.0.2");
        a.tpa = ip(target);
        a.size = 42;   // the kernel does not pad on a TAP
        Buffer buf(frame_of(a));
        EXPECT_EQ(run(PortRole::kHost, Verdict::kPuntArp, buf), ExceptionResult::kToHost) << target;
        expect_reply(buf.frame(), kUplinkMac, ip(target), kHostMac, ip("10.168.0.2"));
    }
    EXPECT_EQ(counters_.of(Action::kArpReply), 3u);
}

TEST_F(ExceptionPathTest, ArpThatIsNotAnsweredIsIgnored) {
    struct Case {
        const char* what;
        PortRole from;
        ArpFrame frame;
    };
    std::vector<Case> cases;
    const auto add = [&](const char* what, PortRole from, auto&& change) {
        ArpFrame a;
        if (from == PortRole::kHost) {
            a.eth_src = a.sha = kHostMac;
            a.spa = ip("10.168.0.2");
            a.tpa = ip("10.168.0.1");
        }
        change(a);
        cases.push_back({what, from, a});
    };
    const PortRole up = PortRole::kUplink, host = PortRole::kHost;
    add("uplink: another target", up, [](ArpFrame& a) { a.tpa = ip("10.168.0.3"); });
    add("uplink: unicast to another MAC", up, [](ArpFrame& a) { a.eth_dst = {0x02, 0, 0, 0, 0, 0x99}; });
    add("uplink: a reply", up, [](ArpFrame& a) { a.op = 2; });
    add("uplink: gratuitous for the peer", up, [](ArpFrame& a) { a.tpa = a.spa; });
    add("uplink: gratuitous for the node IP", up, [](ArpFrame& a) { a.spa = ip("10.168.0.2"); });
    add("uplink: broadcast sender MAC", up, [](ArpFrame& a) { a.sha = kBroadcast; });
    add("uplink: zero sender MAC", up, [](ArpFrame& a) { a.sha = MacAddr{}; });
    add("uplink: hardware type 6", up, [](ArpFrame& a) { a.htype = 6; });
    add("uplink: protocol IPv6", up, [](ArpFrame& a) { a.ptype = 0x86dd; });
    add("uplink: hardware length 8", up, [](ArpFrame& a) { a.hlen = 8; });
    add("uplink: protocol length 16", up, [](ArpFrame& a) { a.plen = 16; });
    add("uplink: RARP opcode 3", up, [](ArpFrame& a) { a.op = 3; });
    add("uplink: truncated", up, [](ArpFrame& a) { a.size = 41; });
    add("uplink: EtherType IPv4", up, [](ArpFrame& a) { a.ether_type = 0x0800; });
    add("host: for the node IP", host, [](ArpFrame& a) { a.tpa = ip("10.168.0.2"); });
    add("host: a probe", host, [](ArpFrame& a) { a.spa = 0; });
    add("host: target 0", host, [](ArpFrame& a) { a.tpa = 0; });
    add("host: a reply", host, [](ArpFrame& a) { a.op = 2; });
    add("host: gratuitous", host, [](ArpFrame& a) { a.tpa = a.spa; });
    for (const Case& c : cases) {
        const Bytes original = frame_of(c.frame);
        Buffer buf(original);
        EXPECT_EQ(run(c.from, Verdict::kPuntArp, buf), ExceptionResult::kDrop) << c.what;
        EXPECT_EQ(buf.frame(), original) << c.what << ": a dropped packet is left alone";
    }
    EXPECT_EQ(counters_.of(Drop::kArpIgnored), cases.size());
    EXPECT_EQ(counters_.of(Action::kArpReply), 0u);
}

// ---- ICMP errors ----

TEST_F(ExceptionPathTest, TimeExceededMatchesTheReference) {
    const Bytes original = frame_of(udp_packet());
    Buffer buf(original);
    EXPECT_EQ(run(PortRole::kUplink, Verdict::kPuntTtlExceeded, buf), ExceptionResult::kRoute);
    EXPECT_EQ(buf.frame(), expected_error(original, {}));
    EXPECT_EQ(buf.view.headroom, kMbufHeadroom - 28);   // grown into the headroom, nothing moved
    EXPECT_EQ(counters_.of(Action::kIcmpTimeExceeded), 1u);
}

TEST_F(ExceptionPathTest, EchoRequestsAndFirstFragmentsGetErrors) {
    IpPacket echo = icmp_packet(8);
    IpPacket first_fragment = udp_packet();
    first_fragment.frag = 0x2000;   // MF, offset 0: has the ports
    for (const IpPacket& p : {echo, first_fragment}) {
        const Bytes original = frame_of(p);
        Buffer buf(original);
        ASSERT_EQ(run(PortRole::kUplink, Verdict::kPuntTtlExceeded, buf), ExceptionResult::kRoute);
        Expected e;
        e.id = kIdStart + static_cast<unsigned>(counters_.of(Action::kIcmpTimeExceeded)) - 1;
        EXPECT_EQ(buf.frame(), expected_error(original, e));
    }
}

// Without headroom the quoted bytes move on over the rest of the packet;
// with some, only what is missing. Same bytes either way.
TEST_F(ExceptionPathTest, LittleOrNoHeadroomMovesTheQuotedBytes) {
    const Bytes original = frame_of(udp_packet(40));
    unsigned id = kIdStart;
    for (std::uint32_t headroom : {0u, 1u, 10u, 27u, 28u}) {
        Buffer buf(original, headroom);
        ASSERT_EQ(run(PortRole::kUplink, Verdict::kPuntTtlExceeded, buf), ExceptionResult::kRoute) << headroom;
        Expected e;
        e.id = id++;
        EXPECT_EQ(buf.frame(), expected_error(original, e)) << "headroom " << headroom;
        EXPECT_EQ(buf.view.headroom, 0u) << headroom;
    }
}

TEST_F(ExceptionPathTest, NoRoomForTheErrorIsACountedDrop) {
    // 14 + 20 + 8 bytes, no headroom: the error needs 70.
    const Bytes original = frame_of(udp_packet(0));
    ASSERT_EQ(original.size(), 42u);
    Buffer buf(original, 0);
    EXPECT_EQ(run(PortRole::kUplink, Verdict::kPuntTtlExceeded, buf), ExceptionResult::kDrop);
    EXPECT_EQ(counters_.of(Drop::kNoHeadroom), 1u);
    EXPECT_EQ(buf.frame(), original);
    // 28 bytes too short of the 70: 27 of headroom are not enough either.
    Buffer almost(original, 27);
    EXPECT_EQ(run(PortRole::kUplink, Verdict::kPuntTtlExceeded, almost), ExceptionResult::kDrop);
    Buffer enough(original, 28);
    EXPECT_EQ(run(PortRole::kUplink, Verdict::kPuntTtlExceeded, enough), ExceptionResult::kRoute);
    EXPECT_EQ(enough.frame(), expected_error(original, {}));
}

// Less than 8 bytes after the header: quote what there is (an odd length
// here, which the checksum pads), and never the Ethernet padding.
TEST_F(ExceptionPathTest, ShortPacketsAreQuotedAsTheyAre) {
    IpPacket p = udp_packet();
    p.payload = counting_bytes(3);
    p.pad_to = 60;
    const Bytes original = frame_of(p);
    Buffer buf(original, 0);   // the padding does not count as room either
    EXPECT_EQ(run(PortRole::kUplink, Verdict::kPuntTtlExceeded, buf), ExceptionResult::kDrop);
    EXPECT_EQ(counters_.of(Drop::kNoHeadroom), 1u);
    Buffer roomy(original);
    ASSERT_EQ(run(PortRole::kUplink, Verdict::kPuntTtlExceeded, roomy), ExceptionResult::kRoute);
    const Bytes got = roomy.frame();
    EXPECT_EQ(got.size(), 14u + 20 + 8 + 23);
    EXPECT_EQ(got, expected_error(original, {}));
}

TEST_F(ExceptionPathTest, OptionsAreQuotedWithTheHeader) {
    IpPacket p = udp_packet();
    p.options = {0x94, 0x04, 0x00, 0x00};   // Router Alert
    const Bytes original = frame_of(p);
    Buffer buf(original);
    ASSERT_EQ(run(PortRole::kUplink, Verdict::kPuntTtlExceeded, buf), ExceptionResult::kRoute);
    EXPECT_EQ(buf.frame().size(), 14u + 20 + 8 + 24 + 8);
    EXPECT_EQ(buf.frame(), expected_error(original, {}));
}

TEST_F(ExceptionPathTest, FragmentationNeededCarriesTheNextHopMtu) {
    struct Case {
        const char* dst;
        unsigned mtu;
    };
    const Case cases[] = {
        {"10.244.1.9", 1500},   // host-gw
        {"10.244.2.9", 1480},   // IPIP: 20
        {"10.244.3.9", 1450},   // VXLAN: 14 + 20 + 8 + 8
        {"10.244.0.9", 1500},   // local
        {"10.99.0.1", 1500},    // no route (any more)
    };
    unsigned id = kIdStart;
    for (const Case& c : cases) {
        IpPacket p = udp_packet(1500);
        p.ttl = 64;
        p.dst = ip(c.dst);
        const Bytes original = frame_of(p);
        Buffer buf(original);
        ASSERT_EQ(run(PortRole::kUplink, Verdict::kPuntFragNeeded, buf), ExceptionResult::kRoute) << c.dst;
        Expected e;
        e.type = 3;
        e.code = 4;
        e.mtu = c.mtu;
        e.id = id++;
        EXPECT_EQ(buf.frame(), expected_error(original, e)) << c.dst;
    }
    EXPECT_EQ(counters_.of(Action::kIcmpFragNeeded), std::size(cases));
}

TEST_F(ExceptionPathTest, NextHopMtuNeverBelowIpv4Minimum) {
    NodeConfig config = node();
    config.mtu = 100;
    ExceptionPath path(config, view_);
    IpPacket p = udp_packet(200);
    p.dst = ip("10.244.3.9");   // 100 - 50 = 50 < 68
    const Bytes original = frame_of(p);
    Buffer buf(original);
    ASSERT_EQ(run(path, PortRole::kUplink, Verdict::kPuntFragNeeded, buf), ExceptionResult::kRoute);
    EXPECT_EQ(get16(buf.frame(), 40), 68u);
}

// The kernel's own packet (from the host port, the node IP as source): the
// error goes straight back to it.
TEST_F(ExceptionPathTest, ErrorsAboutTheKernelsPacketsGoToTheHost) {
    IpPacket p = udp_packet(2000);   // DF over the MTU: the kernel learns the path MTU
    p.ttl = 64;
    p.src = ip("10.168.0.2");
    p.eth_src = kHostMac;
    p.eth_dst = kUplinkMac;
    const Bytes original = frame_of(p);
    Buffer buf(original);
    ASSERT_EQ(run(PortRole::kHost, Verdict::kPuntFragNeeded, buf), ExceptionResult::kToHost);
    EXPECT_EQ(counters_.of(Action::kIcmpFragNeeded), 1u);
    EXPECT_EQ(buf.frame()[14 + 20], 3) << "destination unreachable";
    EXPECT_EQ(get_mac(buf.frame(), 0), kHostMac);
    EXPECT_EQ(get_mac(buf.frame(), 6), kUplinkMac);
}

TEST_F(ExceptionPathTest, TheKernelsOwnTtlOneIsPassedOnUnexpired) {
    IpPacket p = udp_packet();
    p.src = ip("10.168.0.2");
    p.eth_src = kHostMac;
    p.eth_dst = kUplinkMac;
    Bytes original = frame_of(p);
    Buffer buf(original);
    ASSERT_EQ(run(PortRole::kHost, Verdict::kPuntTtlExceeded, buf), ExceptionResult::kRoute);
    EXPECT_EQ(counters_.of(Action::kLocalTtlOne), 1u);
    // TTL 2 with a checksum summed from scratch: the forwarder's decrement
    // gives back exactly what the kernel sent.
    original[14 + 8] = 2;
    original[14 + 10] = original[14 + 11] = 0;
    const unsigned sum = naive_checksum(original, 14, 20);
    original[14 + 10] = static_cast<std::uint8_t>(sum >> 8);
    original[14 + 11] = static_cast<std::uint8_t>(sum);
    EXPECT_EQ(buf.frame(), original);
    // Only TTL 1 and only from the host port: a spoofed one from the uplink gets nothing.
    Buffer spoofed(frame_of(p));
    EXPECT_EQ(run(PortRole::kUplink, Verdict::kPuntTtlExceeded, spoofed), ExceptionResult::kDrop);
}

TEST_F(ExceptionPathTest, IpIdsCountUpAndWrap) {
    NodeConfig config = node();
    config.outer_ip_id_start = 0xffff;
    ExceptionPath path(config, view_);
    const Bytes original = frame_of(udp_packet());
    for (unsigned want : {0xffffu, 0u, 1u}) {
        Buffer buf(original);
        ASSERT_EQ(run(path, PortRole::kUplink, Verdict::kPuntTtlExceeded, buf), ExceptionResult::kRoute);
        EXPECT_EQ(get16(buf.frame(), 18), want);
    }
}

// RFC 1812 section 4.3.2.7 (and RFC 1191, RFC 1122): no error about these.
// They are counted under the punt's own drop, cost no token and are left
// as they were.
TEST_F(ExceptionPathTest, NoErrorWhereRfc1812ForbidsOne) {
    struct Case {
        std::string what;
        IpPacket packet;
        PortRole from = PortRole::kUplink;
        Verdict punt = Verdict::kPuntTtlExceeded;
        std::size_t truncate = 0;
        std::function<void(Bytes&)> corrupt{};
    };
    std::vector<Case> cases;
    for (unsigned type : {3u, 4u, 5u, 11u, 12u})
        cases.push_back({"ICMP error type " + std::to_string(type), icmp_packet(type)});
    cases.push_back({"ICMP without a type byte", icmp_packet(0, 0)});
    {
        IpPacket p = udp_packet();
        p.frag = 0x2001;   // MF, offset 8 bytes
        cases.push_back({"a later fragment", p});
        p.frag = 0x0010;   // the last one
        cases.push_back({"the last fragment", p});
    }
    for (const char* dst : {"224.0.0.5", "239.1.2.3", "255.255.255.255"}) {
        IpPacket p = udp_packet();
        p.dst = ip(dst);
        cases.push_back({std::string("destination ") + dst, p});
    }
    for (const char* src : {"0.0.0.0", "0.1.2.3", "127.0.0.1", "127.9.9.9", "224.0.0.1", "239.255.255.250",
                            "240.0.0.1", "255.255.255.255"}) {
        IpPacket p = udp_packet();
        p.src = ip(src);
        cases.push_back({std::string("source ") + src, p});
    }
    for (MacAddr mac : {kBroadcast, MacAddr{0x01, 0x00, 0x5e, 0x00, 0x00, 0x05}, MacAddr{0x33, 0x33, 0, 0, 0, 1}}) {
        IpPacket p = udp_packet();
        p.eth_dst = mac;
        cases.push_back({"link-layer group " + format_mac(mac), p});
    }
    {
        IpPacket p = udp_packet();
        p.src = ip("10.168.0.2");
        cases.push_back({"our own source from the uplink", p});
    }
    {
        IpPacket p = udp_packet(1500);
        p.frag = 0;
        cases.push_back({"fragmentation needed without DF", p, PortRole::kUplink, Verdict::kPuntFragNeeded});
        p.frag = 0x4000;
        p.dst = ip("239.1.1.1");
        cases.push_back({"fragmentation needed to multicast", p, PortRole::kUplink, Verdict::kPuntFragNeeded});
    }
    const auto corrupted = [&](const char* what, std::function<void(Bytes&)> f, std::size_t truncate = 0) {
        Case c{what, udp_packet()};
        c.corrupt = std::move(f);
        c.truncate = truncate;
        cases.push_back(std::move(c));
    };
    corrupted("IPv6 version", [](Bytes& b) { b[14] = 0x65; });
    corrupted("IHL 4", [](Bytes& b) { b[14] = 0x44; });
    corrupted("IHL past the total length", [](Bytes& b) { b[14] = 0x4f; b[16] = 0; b[17] = 40; });
    corrupted("not IPv4 at all", [](Bytes& b) { b[12] = 0x86; b[13] = 0xdd; });
    corrupted("shorter than an IP header", [](Bytes&) {}, 33);

    std::uint64_t ttl_drops = 0, mtu_drops = 0;
    ExceptionPath path(node(), view_, 1000, 1);   // one token: proves the refusals took none
    for (const Case& c : cases) {
        Bytes original = frame_of(c.packet);
        if (c.corrupt)
            c.corrupt(original);
        if (c.truncate)
            original.resize(c.truncate);
        Buffer buf(original);
        EXPECT_EQ(run(path, c.from, c.punt, buf), ExceptionResult::kDrop) << c.what;
        EXPECT_EQ(buf.frame(), original) << c.what;
        (c.punt == Verdict::kPuntTtlExceeded ? ttl_drops : mtu_drops) += 1;
    }
    EXPECT_EQ(counters_.of(Drop::kTtlExceeded), ttl_drops);
    EXPECT_EQ(counters_.of(Drop::kMtuExceeded), mtu_drops);
    Buffer good(frame_of(udp_packet()));
    EXPECT_EQ(run(path, PortRole::kUplink, Verdict::kPuntTtlExceeded, good), ExceptionResult::kRoute);
}

TEST_F(ExceptionPathTest, ErrorsAreRateLimited) {
    ExceptionPath path(node(), view_, 10, 2);   // a token per 100 ms, two in the bucket
    const Bytes original = frame_of(udp_packet());
    const auto once = [&](std::uint64_t now_ns, Verdict punt = Verdict::kPuntTtlExceeded) {
        Buffer buf(original);
        return run(path, PortRole::kUplink, punt, buf, now_ns);
    };
    EXPECT_EQ(once(0), ExceptionResult::kRoute);
    EXPECT_EQ(once(0, Verdict::kPuntFragNeeded), ExceptionResult::kRoute);   // one bucket for both
    EXPECT_EQ(once(1), ExceptionResult::kDrop);
    EXPECT_EQ(once(99'999'999), ExceptionResult::kDrop);
    EXPECT_EQ(once(100'000'000), ExceptionResult::kRoute);
    EXPECT_EQ(once(100'000'000), ExceptionResult::kDrop);
    EXPECT_EQ(counters_.of(Drop::kIcmpRateLimited), 3u);
    EXPECT_EQ(counters_.of(Action::kIcmpTimeExceeded), 2u);
    EXPECT_EQ(counters_.of(Action::kIcmpFragNeeded), 1u);
    // Frames ARP answers are not limited.
    Buffer arp(frame_of(ArpFrame{}));
    EXPECT_EQ(run(path, PortRole::kUplink, Verdict::kPuntArp, arp, 100'000'000), ExceptionResult::kToUplink);
}

// Random frames, valid ones mutated and plain noise, with random headroom:
// whatever comes out stays in its buffer, holds a whole reply or error, and
// every packet is counted once (run() checks both).
TEST_F(ExceptionPathTest, RandomFramesKeepTheInvariants) {
    std::mt19937 rng(16);
    const Bytes seeds[] = {frame_of(udp_packet()), frame_of(udp_packet(0)), frame_of(icmp_packet(8)),
                           frame_of(ArpFrame{}), frame_of(udp_packet(1500))};
    const Verdict punts[] = {Verdict::kPuntArp, Verdict::kPuntTtlExceeded, Verdict::kPuntFragNeeded};
    std::array<unsigned, 4> results{};
    for (int round = 0; round < 50000; ++round) {
        Bytes frame = seeds[rng() % std::size(seeds)];
        if (rng() % 8 == 0)
            frame.resize(rng() % 80);
        for (unsigned flips = rng() % 4; flips > 0 && !frame.empty(); --flips)
            frame[rng() % std::min<std::size_t>(frame.size(), 60)] = static_cast<std::uint8_t>(rng());
        Buffer buf(frame, rng() % 2 ? kMbufHeadroom : static_cast<std::uint32_t>(rng() % 40));
        const PortRole from = rng() % 2 ? PortRole::kUplink : PortRole::kHost;
        const ExceptionResult r = run(from, punts[rng() % 3], buf, static_cast<std::uint64_t>(round) * 1'000'000);
        ++results[static_cast<unsigned>(r)];
        if (r != ExceptionResult::kDrop) {
            ASSERT_GE(buf.view.len, 42u) << "round " << round;
        }
        if (r == ExceptionResult::kRoute || (r == ExceptionResult::kToHost && buf.view.len > 42)) {
            const Bytes out = buf.frame();
            ASSERT_EQ(naive_checksum(out, 14, 20), 0u) << "round " << round;
            ASSERT_EQ(naive_checksum(out, 34, out.size() - 34), 0u) << "round " << round;
        }
    }
    for (unsigned r = 0; r < results.size(); ++r)
        EXPECT_GT(results[r], 100u) << "result " << r << " too rare for the test to mean much";
}

}  // namespace
}  // namespace podfwd::dp
