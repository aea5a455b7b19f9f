// The output pass's header templates (dataplane/nexthop_cache.h) against
// frames built here field by field, checksums by a plain byte loop: IPIP
// and VXLAN encapsulation over random TOS, DF, TTL and lengths (the outer
// checksum is a precomputed partial sum plus per-packet fields, so every
// field has to be covered); and the cache following the table: a record
// changed, deleted, its id reused with other contents, and ids past the
// table.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "common/ipv4.h"
#include "dataplane/fastpath.h"
#include "dataplane/nexthop_cache.h"
#include "lpm/reader.h"
#include "frame_bytes.h"
#include "lpm/writer.h"

namespace podfwd::dp {
namespace {

using namespace frame_bytes;

constexpr MacAddr kUplinkMac{0x02, 0, 0, 0, 0, 0x02};
constexpr MacAddr kVtepMac{0x02, 0, 0, 0, 0, 0x03};
constexpr MacAddr kPeerMac{0x02, 0, 0, 0, 0, 0x10};
constexpr MacAddr kOtherMac{0x02, 0, 0, 0, 0, 0x11};
constexpr MacAddr kPeerVtep{0x02, 0, 0, 0, 0, 0x20};
constexpr std::uint32_t kHeadroom = 128;
constexpr std::uint16_t kIdStart = 0xfffe;   // wraps during the test

Ipv4Addr ip(const char* text) { return *parse_ipv4(text); }

// An IPv4 header with its checksum, appended to `b`.
void put_ipv4(Bytes& b, unsigned tos, unsigned total, unsigned id, unsigned frag, unsigned ttl, unsigned proto,
              Ipv4Addr src, Ipv4Addr dst) {
    const std::size_t at = b.size();
    put8(b, 0x45);
    put8(b, tos);
    put16(b, total);
    put16(b, id);
    put16(b, frag);
    put8(b, ttl);
    put8(b, proto);
    put16(b, 0);
    put32(b, src);
    put32(b, dst);
    const unsigned sum = naive_checksum(b, at, 20);
    b[at + 10] = static_cast<std::uint8_t>(sum >> 8);
    b[at + 11] = static_cast<std::uint8_t>(sum);
}

struct Inner {
    unsigned tos = 0;
    unsigned frag = 0;
    unsigned ttl = 64;
    std::size_t payload = 26;
    Ipv4Addr src = 0;
    Ipv4Addr dst = 0;
};

// Random per-packet fields: TOS, DF, TTL, length; a destination in `net`.
Inner random_inner(std::mt19937& rng, Ipv4Addr net) {
    Inner in;
    in.tos = rng() & 0xff;
    in.frag = (rng() & 1) != 0 ? 0x4000 : 0;
    in.ttl = 2 + rng() % 254;
    in.payload = 8 + rng() % 1400;
    in.src = ip("10.244.0.5");
    in.dst = net | (rng() & 0xff);
    return in;
}

// An Ethernet frame holding a UDP-protocol IPv4 packet (payload bytes
// numbered), with `ttl` as given.
Bytes pod_frame(const Inner& in, unsigned ttl, const MacAddr& dst, const MacAddr& src) {
    Bytes b;
    put_mac(b, dst);
    put_mac(b, src);
    put16(b, 0x0800);
    put_ipv4(b, in.tos, static_cast<unsigned>(20 + in.payload), 0x4242, in.frag, ttl, 17, in.src, in.dst);
    for (std::size_t i = 0; i < in.payload; ++i)
        put8(b, static_cast<unsigned>(i * 7 + 1));
    return b;
}

// A pod packet to 10.244.1.7 from the host side, TTL 64.
Bytes frame_to_10_244_1_7() {
    Inner in;
    in.src = ip("10.244.0.5");
    in.dst = ip("10.244.1.7");
    return pod_frame(in, 64, kUplinkMac, kPeerMac);
}

class NextHopCacheTest : public ::testing::Test {
protected:
    NextHopCacheTest() : name_("podfwd-test-nhcache." + std::to_string(::getpid())) {
        (void)lpm::TableWriter::unlink(name_);
        lpm::TableWriter::Options options;
        options.capacity = lpm::Capacity{.max_routes = 64, .max_nexthops = 16, .reader_slots = 4, .max_groups = 16};
        writer_.emplace(std::move(lpm::TableWriter::open(name_, options)).value());
        view_.emplace(std::move(lpm::TableView::open(name_)).value());
        slot_.emplace(std::move(view_->register_reader()).value());
        config_.node_ip = ip("192.168.0.1");
        config_.uplink_mac = kUplinkMac;
        config_.vtep_mac = kVtepMac;
        config_.vxlan_port = 8472;
        config_.vni = 7;
        config_.outer_ip_id_start = kIdStart;
        forwarder_.emplace(config_, *view_);
    }
    ~NextHopCacheTest() override {
        slot_.reset();
        view_.reset();
        writer_.reset();
        (void)lpm::TableWriter::unlink(name_);
    }

    lpm::NextHopId route(const char* prefix, lpm::ForwardMode mode, const MacAddr& mac, std::uint32_t vni = 0) {
        lpm::NextHop nh;
        nh.mode = mode;
        nh.node_ip = ip("192.168.0.9");
        nh.vni = vni;
        nh.flags = lpm::NextHop::kMacResolved;
        std::copy(mac.begin(), mac.end(), nh.mac.begin());
        std::copy(kPeerVtep.begin(), kPeerVtep.end(), nh.vtep_mac.begin());
        const lpm::NextHopId id = *writer_->nexthop_add(nh);
        EXPECT_TRUE(writer_->route_add(*Prefix4::parse(prefix), id));
        EXPECT_TRUE(writer_->commit());
        return id;
    }

    // One packet from the host port through the fast path: the verdict, the
    // frame as it leaves (out).
    Verdict forward(const Bytes& frame, Bytes& out) {
        std::vector<std::uint8_t> buffer(kHeadroom + frame.size() + 64);
        std::memcpy(buffer.data() + kHeadroom, frame.data(), frame.size());
        PacketView view{buffer.data() + kHeadroom, static_cast<std::uint32_t>(frame.size()), kHeadroom};
        Verdict verdict = Verdict::kDrop;
        forwarder_->process(PortRole::kHost, &view, &verdict, 1, counters_);
        slot_->quiescent();
        out.assign(view.data, view.data + view.len);
        return verdict;
    }

    std::string name_;
    std::optional<lpm::TableWriter> writer_;
    std::optional<lpm::TableView> view_;
    std::optional<lpm::ReaderSlot> slot_;
    NodeConfig config_;
    std::optional<Forwarder> forwarder_;
    LcoreCounters counters_;
};

TEST_F(NextHopCacheTest, IpipMatchesAFrameBuiltFieldByField) {
    route("10.244.1.0/24", lpm::ForwardMode::kIpip, kPeerMac);
    std::mt19937 rng(1);
    std::uint16_t next_id = kIdStart;
    for (int n = 0; n < 500; ++n) {
        const Inner in = random_inner(rng, ip("10.244.1.0"));
        Bytes out;
        ASSERT_EQ(forward(pod_frame(in, in.ttl, kUplinkMac, kPeerMac), out), Verdict::kUplink);

        Bytes want;
        put_mac(want, kPeerMac);
        put_mac(want, kUplinkMac);
        put16(want, 0x0800);
        const unsigned id = in.frag != 0 ? 0 : next_id++;
        put_ipv4(want, in.tos, static_cast<unsigned>(40 + in.payload), id, in.frag, 64, 4, config_.node_ip,
                 ip("192.168.0.9"));
        const Bytes inner = pod_frame(in, in.ttl - 1, kPeerMac, kUplinkMac);
        want.insert(want.end(), inner.begin() + 14, inner.end());
        ASSERT_EQ(out, want) << "packet " << n << " tos " << in.tos << " frag " << in.frag << " len " << in.payload;
    }
    EXPECT_EQ(counters_.of(Action::kIpipEncap), 500u);
}

TEST_F(NextHopCacheTest, VxlanMatchesAFrameBuiltFieldByField) {
    route("10.244.2.0/24", lpm::ForwardMode::kVxlan, kPeerMac);            // the node's VNI
    route("10.244.3.0/24", lpm::ForwardMode::kVxlan, kPeerMac, 0xabcdef);  // its own
    std::mt19937 rng(2);
    std::uint16_t next_id = kIdStart;
    for (int n = 0; n < 500; ++n) {
        const bool own_vni = (rng() & 1) != 0;
        const Inner in = random_inner(rng, own_vni ? ip("10.244.3.0") : ip("10.244.2.0"));
        Bytes out;
        const Bytes frame = pod_frame(in, in.ttl, kUplinkMac, kPeerMac);
        ASSERT_EQ(forward(frame, out), Verdict::kUplink);

        const Bytes inner = pod_frame(in, in.ttl - 1, kPeerVtep, kVtepMac);
        const unsigned udp_len = static_cast<unsigned>(16 + inner.size());
        Bytes want;
        put_mac(want, kPeerMac);
        put_mac(want, kUplinkMac);
        put16(want, 0x0800);
        put_ipv4(want, 0, 20 + udp_len, next_id++, 0, 64, 17, config_.node_ip, ip("192.168.0.9"));
        put16(want, vxlan_source_port(inner.data() + 14, static_cast<std::uint32_t>(inner.size() - 14)));
        put16(want, 8472);
        put16(want, udp_len);
        put16(want, 0);
        put32(want, 0x08000000);
        put32(want, (own_vni ? 0xabcdefu : 7u) << 8);
        want.insert(want.end(), inner.begin(), inner.end());
        ASSERT_EQ(out, want) << "packet " << n;
    }
    EXPECT_EQ(counters_.of(Action::kVxlanEncap), 500u);
}

TEST_F(NextHopCacheTest, RecordChangesAreFollowedAtTheNextBurst) {
    const lpm::NextHopId id = route("10.244.1.0/24", lpm::ForwardMode::kHostGw, kPeerMac);
    const Bytes frame = frame_to_10_244_1_7();
    Bytes out;
    ASSERT_EQ(forward(frame, out), Verdict::kUplink);
    EXPECT_TRUE(std::equal(kPeerMac.begin(), kPeerMac.end(), out.begin()));

    // The MAC moves: the next burst rewrites with the new one.
    lpm::NextHop nh = *view_->nexthop(id);
    std::copy(kOtherMac.begin(), kOtherMac.end(), nh.mac.begin());
    ASSERT_TRUE(writer_->nexthop_update(id, nh));
    ASSERT_EQ(forward(frame, out), Verdict::kUplink);
    EXPECT_TRUE(std::equal(kOtherMac.begin(), kOtherMac.end(), out.begin()));

    // The MAC is lost: the resolver's, through the general path.
    nh.flags = 0;
    ASSERT_TRUE(writer_->nexthop_update(id, nh));
    EXPECT_EQ(forward(frame, out), Verdict::kPuntUnresolved);

    // The mode changes to IPIP.
    nh.flags = lpm::NextHop::kMacResolved;
    nh.mode = lpm::ForwardMode::kIpip;
    ASSERT_TRUE(writer_->nexthop_update(id, nh));
    ASSERT_EQ(forward(frame, out), Verdict::kUplink);
    EXPECT_EQ(out.size(), frame.size() + 20);
    EXPECT_EQ(out[23], 4u);   // outer protocol

    // Route and next hop gone: a drop under its reason, not the template.
    ASSERT_TRUE(writer_->route_del(*Prefix4::parse("10.244.1.0/24")));
    ASSERT_TRUE(writer_->commit());
    ASSERT_TRUE(writer_->nexthop_del(id));
    EXPECT_EQ(forward(frame, out), Verdict::kDrop);
    EXPECT_EQ(counters_.drops[static_cast<unsigned>(Drop::kNoRoute)], 1u);
}

TEST_F(NextHopCacheTest, AnIdReusedForOtherContentsIsRebuilt) {
    const lpm::NextHopId first = route("10.244.1.0/24", lpm::ForwardMode::kHostGw, kPeerMac);
    const Bytes frame = frame_to_10_244_1_7();
    Bytes out;
    ASSERT_EQ(forward(frame, out), Verdict::kUplink);
    ASSERT_TRUE(writer_->route_del(*Prefix4::parse("10.244.1.0/24")));
    ASSERT_TRUE(writer_->commit());
    ASSERT_TRUE(writer_->nexthop_del(first));
    // While this lcore forwards nothing (but passes quiescent states, as an
    // idle lcore does), the id comes back with other contents.
    for (int grace = 0; grace < 3; ++grace) {
        slot_->quiescent();
        ASSERT_TRUE(writer_->commit());
    }
    const lpm::NextHopId again = route("10.244.1.0/24", lpm::ForwardMode::kHostGw, kOtherMac);
    ASSERT_EQ(again, first) << "the writer did not reuse the id: the test proves nothing";
    ASSERT_EQ(forward(frame, out), Verdict::kUplink);
    EXPECT_TRUE(std::equal(kOtherMac.begin(), kOtherMac.end(), out.begin()));
}

TEST(NextHopCache, IdsPastTheTableReadTheSlowEntry) {
    NextHopCache cache;
    cache.reserve(8);
    for (const lpm::NextHopId id : {0u, 9u, 1000u, 0x7fffffffu, 0xffffffffu})
        EXPECT_EQ(cache.get(id).kind, FastKind::kSlow) << id;
}

TEST(NextHopCache, TemplatesChecksumTheConstantFields) {
    NodeConfig config;
    config.node_ip = ip("192.168.0.1");
    lpm::NextHop nh;
    nh.mode = lpm::ForwardMode::kIpip;
    nh.node_ip = ip("192.168.7.9");
    nh.flags = lpm::NextHop::kMacResolved;
    const FastNextHop f = build_fast_nexthop(nh, config);
    ASSERT_EQ(f.kind, FastKind::kIpip);
    const Bytes header(f.headers.begin() + 14, f.headers.begin() + 34);
    // With the per-packet fields zero the header's checksum is the
    // complement of the partial sum, and the header verifies.
    EXPECT_EQ(naive_checksum(header, 0, 20), 0u);
    EXPECT_EQ(static_cast<unsigned>(f.outer_sum), (~(unsigned{header[10]} << 8 | header[11])) & 0xffff);
}

}  // namespace
}  // namespace podfwd::dp
