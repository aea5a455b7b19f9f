// The resolver driven directly, as the poll loop drives it, for what the
// golden pcap tests (tests/dataplane/fastpath/test_resolver.py) cannot set
// up: handles the caller has not taken yet when the dataplane stops, and
// the order of what comes back.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/ipv4.h"
#include "dataplane/proto/arp.h"
#include "dataplane/proto/ipv4.h"
#include "dataplane/resolver.h"
#include "lpm/writer.h"

namespace podfwd::dp {
namespace {

constexpr MacAddr kUplinkMac{0x02, 0, 0, 0, 0, 0x02};
constexpr std::uint32_t kHeadroom = 128;
constexpr std::uint64_t kSecond = 1'000'000'000;

Ipv4Addr ip(const char* text) { return *parse_ipv4(text); }

// The uplink subnet as the connected route: every destination in it is a
// neighbour of its own.
class ResolverTest : public ::testing::Test {
protected:
    void SetUp() override {
        name_ = "podfwd-test-resolver." + std::to_string(::getpid());
        (void)lpm::TableWriter::unlink(name_);
        lpm::TableWriter::Options options;
        options.capacity.max_routes = 16;
        options.capacity.max_nexthops = 8;
        options.capacity.max_groups = 8;
        writer_.emplace(*lpm::TableWriter::open(name_, options));
        lpm::NextHop connected;
        connected.mode = lpm::ForwardMode::kHostGw;
        connected.flags = lpm::NextHop::kConnected;
        ASSERT_TRUE(writer_->route_add(*Prefix4::parse("10.168.0.0/24"), *writer_->nexthop_add(connected)));
        ASSERT_TRUE(writer_->commit());
        view_.emplace(*lpm::TableView::open(name_));
        slot_.emplace(*view_->register_reader());
        config_.node_ip = ip("10.168.0.2");
        config_.uplink_mac = kUplinkMac;
        config_.host_mac = {0x02, 0, 0, 0, 0, 0x01};
        forwarder_.emplace(config_, *view_);
        exception_.emplace(config_, *view_, 1000, 100);
    }
    void TearDown() override { (void)lpm::TableWriter::unlink(name_); }

    Resolver make(const NeighbourConfig& neighbours) {
        return Resolver(config_, *view_, *forwarder_, *exception_, neighbours, kSecond / 10);
    }

    // A UDP packet from the kernel (host port) to `dst`, in buffer `i`.
    PacketView packet(unsigned i, Ipv4Addr dst) {
        std::uint8_t* frame = buffers_[i].data() + kHeadroom;
        std::fill_n(frame, 64, 0);
        auto& eth = *reinterpret_cast<proto::EtherHdr*>(frame);
        eth.dst = kUplinkMac;
        eth.src = config_.host_mac;
        frame[12] = 0x08;
        std::uint8_t* h = frame + proto::EtherHdr::kSize;
        h[0] = 0x45;
        h[3] = 28;   // total length: 20 + 8
        h[8] = 64;
        h[9] = 17;
        const Ipv4Addr src = config_.node_ip;
        for (int k = 0; k < 4; ++k) {
            h[12 + k] = static_cast<std::uint8_t>(src >> (24 - 8 * k));
            h[16 + k] = static_cast<std::uint8_t>(dst >> (24 - 8 * k));
        }
        const std::uint16_t checksum = proto::ipv4_checksum(h, 20);
        h[10] = static_cast<std::uint8_t>(checksum >> 8);
        h[11] = static_cast<std::uint8_t>(checksum & 0xff);
        return PacketView{frame, 42, kHeadroom};
    }

    ResolveOutcome punt(Resolver& r, unsigned i, Ipv4Addr dst, std::uint64_t now) {
        PacketView p = packet(i, dst);
        Verdict v;
        forwarder_->process(PortRole::kHost, &p, &v, 1, counters_);
        EXPECT_EQ(v, Verdict::kPuntUnresolved);
        return r.handle(PortRole::kHost, v, p, i, now, counters_);
    }

    std::string name_;
    std::optional<lpm::TableWriter> writer_;
    std::optional<lpm::TableView> view_;
    std::optional<lpm::ReaderSlot> slot_;
    NodeConfig config_;
    std::optional<Forwarder> forwarder_;
    std::optional<ExceptionPath> exception_;
    LcoreCounters counters_;
    std::array<std::array<std::uint8_t, 512>, 16> buffers_{};
};

std::vector<std::uintptr_t> take_all_freed(Resolver& r) {
    std::vector<std::uintptr_t> all;
    std::uintptr_t some[4];
    while (const std::size_t n = r.take_freed(some))
        all.insert(all.end(), some, some + n);
    return all;
}

// The dataplane stops with failed neighbours' packets not yet taken and
// others still held: flush() must give back every one (it once looped for
// ever when the freed buffer could not take a whole queue).
TEST_F(ResolverTest, FlushReturnsEverythingWithFreedHandlesNotTaken) {
    NeighbourConfig nc;
    nc.hold_per_neighbour = 2;
    nc.hold_total = 2;
    nc.max_multicast_probes = 1;
    nc.retrans_ns = kSecond / 10;
    Resolver r = make(nc);
    std::uint64_t now = kSecond;
    // Three neighbours fail in turn, two packets each; nobody takes them.
    unsigned next = 0;
    for (const char* dst : {"10.168.0.11", "10.168.0.12", "10.168.0.13"}) {
        EXPECT_EQ(punt(r, next, ip(dst), now), ResolveOutcome::kHeld);
        EXPECT_EQ(punt(r, next + 1, ip(dst), now), ResolveOutcome::kHeld);
        next += 2;
        now += kSecond;
        r.tick(now, counters_);
    }
    // A fourth holds two more; then the stop.
    EXPECT_EQ(punt(r, next, ip("10.168.0.14"), now), ResolveOutcome::kHeld);
    EXPECT_EQ(punt(r, next + 1, ip("10.168.0.14"), now), ResolveOutcome::kHeld);
    next += 2;
    r.flush(counters_);

    std::vector<std::uintptr_t> freed = take_all_freed(r);
    std::sort(freed.begin(), freed.end());
    std::vector<std::uintptr_t> all(next);
    for (unsigned i = 0; i < next; ++i)
        all[i] = i;
    EXPECT_EQ(freed, all);   // each exactly once
    EXPECT_EQ(counters_.of(Drop::kNeighbourFailed), 6u);
    EXPECT_EQ(counters_.of(Drop::kHeldAtExit), 2u);
    EXPECT_EQ(r.cache().size(), 0u);
}

// An answer sends the held packets in their order, with its MAC; the
// connected route's destination is the neighbour asked for.
TEST_F(ResolverTest, ReplyReleasesHeldPacketsInOrderWithTheMac) {
    Resolver r = make(NeighbourConfig{});
    const std::uint64_t now = kSecond;
    for (unsigned i = 0; i < 3; ++i)
        EXPECT_EQ(punt(r, i, ip("10.168.0.20"), now), ResolveOutcome::kHeld);
    ArpRequest requests[4];
    ASSERT_EQ(r.take_requests(requests), 1u);
    EXPECT_EQ(requests[0].target, ip("10.168.0.20"));
    EXPECT_FALSE(requests[0].unicast);

    const MacAddr peer{0x02, 0, 0, 0, 0, 0x20};
    std::array<std::uint8_t, kHeadroom + 64> reply_buffer{};
    std::uint8_t* frame = reply_buffer.data() + kHeadroom;
    const std::size_t len =
        proto::write_arp(frame, kUplinkMac, proto::kArpOpReply, peer, ip("10.168.0.20"), kUplinkMac, config_.node_ip);
    PacketView reply{frame, static_cast<std::uint32_t>(len), kHeadroom};
    EXPECT_EQ(r.handle(PortRole::kUplink, Verdict::kPuntArp, reply, 99, now + 1000, counters_),
              ResolveOutcome::kDrop);
    EXPECT_EQ(counters_.of(Action::kArpLearned), 1u);

    std::uintptr_t released[8];
    ASSERT_EQ(r.take_released(released), 3u);
    for (unsigned k = 0; k < 3; ++k) {
        EXPECT_EQ(released[k], k);
        PacketView p{buffers_[k].data() + kHeadroom, 42, kHeadroom};
        EXPECT_EQ(r.release(p, released[k], now + 2000, counters_), ResolveOutcome::kToUplink);
        const auto& eth = *reinterpret_cast<const proto::EtherHdr*>(p.data);
        EXPECT_EQ(eth.dst, peer);
        EXPECT_EQ(eth.src, kUplinkMac);
        EXPECT_EQ(p.data[proto::EtherHdr::kSize + 8], 63);   // TTL, once
    }
    EXPECT_EQ(counters_.of(Action::kHeldSent), 3u);
    EXPECT_EQ(counters_.of(Action::kHostGw), 3u);
    // Known now: the next packet is finished at once.
    PacketView p = packet(5, ip("10.168.0.20"));
    Verdict v;
    forwarder_->process(PortRole::kHost, &p, &v, 1, counters_);
    EXPECT_EQ(r.handle(PortRole::kHost, v, p, 5, now + 3000, counters_), ResolveOutcome::kToUplink);
}

}  // namespace
}  // namespace podfwd::dp
