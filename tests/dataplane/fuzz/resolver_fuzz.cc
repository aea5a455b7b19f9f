// libFuzzer target for the resolver (dataplane/resolver.h) as the poll loop
// drives it: packets from either port through the fast path, their punts to
// the resolver, ARP frames (random, or well-formed from the next hops and
// strangers so the fuzzer reaches learning), time passing with the timers,
// and at the end flush(). Beyond the sanitizers' checks it asserts what must
// hold whatever the input:
// - every packet the resolver keeps comes back exactly once, released or
//   freed, and nothing it never kept comes back (no double free, no leak);
// - held packets come back with their buffer untouched until then, and sent
//   ones carry the MAC the neighbour answered with;
// - every ARP request it writes is a whole request from the node;
// - each received packet is counted exactly once (an action or a drop).
//
// Input: records of [op][len][len bytes]. op & 3: 0 a frame from the
// uplink, 1 from the host port, 2 time passes (len x 20 ms) and the timers
// run, 3 an ARP frame built from the bytes (who answers, with which MAC,
// reply or request, to us or not).
#include <unistd.h>

#include <algorithm>
#include <array>
#include <bitset>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/fastpath.h"
#include "dataplane/proto/arp.h"
#include "dataplane/resolver.h"
#include "lpm/writer.h"

using namespace podfwd;
using namespace podfwd::lpm;

namespace {

constexpr std::uint32_t kHeadroom = 128;
constexpr unsigned kSlots = 64;   // packet buffers; the hold limits below are smaller
constexpr const char* kNodeIp = "10.168.0.2";
// Whom the table's records resolve: a host-gw node, the gateway (IPIP off
// the subnet), and any address of the connected subnet.
constexpr const char* kNeighbours[] = {"10.168.0.4", "10.168.0.1", "10.168.0.9", "10.168.0.77"};

struct Fixture {
    std::string name = "podfwd-fuzz." + std::to_string(::getpid());
    TableWriter writer;
    TableView view;
    ReaderSlot slot;

    static TableWriter make_writer(const std::string& name) {
        (void)TableWriter::unlink(name);
        TableWriter::Options options;
        options.capacity.max_routes = 64;
        options.capacity.max_nexthops = 16;
        options.capacity.max_groups = 16;
        auto w = TableWriter::open(name, options);
        if (!w) {
            std::fprintf(stderr, "fuzz: %s\n", w.error().message.c_str());
            std::abort();
        }
        auto writer = std::move(w).value();
        const auto add = [&](const char* node, const char* l2, ForwardMode mode, std::uint8_t flags,
                             const char* prefix) {
            NextHop nh;
            nh.node_ip = node ? *parse_ipv4(node) : 0;
            nh.l2_ip = l2 ? *parse_ipv4(l2) : 0;
            nh.mode = mode;
            nh.vni = 7;
            nh.mac = {2, 0, 0, 0, 0, 3};
            nh.vtep_mac = {2, 0, 0, 0, 0, 4};
            nh.flags = flags;
            const NextHopId id = *writer.nexthop_add(nh);
            (void)writer.route_add(*Prefix4::parse(prefix), id);
        };
        add("10.168.0.4", nullptr, ForwardMode::kHostGw, 0, "10.244.4.0/24");
        add("192.168.5.9", "10.168.0.1", ForwardMode::kIpip, 0, "10.244.2.0/24");
        add("192.168.5.10", "10.168.0.1", ForwardMode::kVxlan, 0, "10.244.3.0/24");
        add("10.168.0.3", nullptr, ForwardMode::kHostGw, NextHop::kMacResolved, "10.244.1.0/24");
        add(kNodeIp, nullptr, ForwardMode::kLocal, NextHop::kMacResolved, "10.244.0.0/24");
        add(nullptr, nullptr, ForwardMode::kHostGw, NextHop::kConnected, "10.168.0.0/24");
        (void)writer.commit();
        return writer;
    }
    static dp::NodeConfig node() {
        dp::NodeConfig c;
        c.node_ip = *parse_ipv4(kNodeIp);
        c.uplink_mac = {2, 0, 0, 0, 0, 2};
        c.vtep_mac = {2, 0, 0, 0, 0, 12};
        c.host_mac = {2, 0, 0, 0, 0, 1};
        c.vni = 1;
        return c;
    }

    Fixture() : writer(make_writer(name)), view(*TableView::open(name)), slot(*view.register_reader()) {
        std::atexit([] { (void)TableWriter::unlink("podfwd-fuzz." + std::to_string(::getpid())); });
    }
};

std::uint64_t sum(const auto& values) {
    std::uint64_t s = 0;
    for (auto v : values)
        s += v;
    return s;
}

// A packet's count: every action but those that count something else (a
// frame we sent, a held packet sent, counted under its action too).
std::uint64_t packets_counted(const dp::LcoreCounters& c) {
    return sum(c.drops) + sum(c.actions) - c.of(dp::Action::kArpRequest) - c.of(dp::Action::kHeldSent);
}

struct Run {
    explicit Run(Fixture& f) : fixture(f) {}

    Fixture& fixture;
    dp::NodeConfig config = Fixture::node();
    dp::Forwarder forwarder{config, fixture.view};
    dp::ExceptionPath exception{config, fixture.view, 1000, 100};
    dp::NeighbourConfig neighbour_config = [] {
        dp::NeighbourConfig c;
        c.entries = 4;   // the connected subnet's strangers fill it
        c.hold_per_neighbour = 3;
        c.hold_total = 8;
        c.reachable_ns = 200'000'000;
        c.retrans_ns = 100'000'000;
        c.failed_hold_ns = 300'000'000;
        c.gc_stale_ns = 1'000'000'000;
        return c;
    }();
    dp::Resolver resolver{config, fixture.view, forwarder, exception, neighbour_config, 20'000'000};
    dp::LcoreCounters counters;

    // Each frame gets a buffer of exactly headroom + its length, so that ASan
    // reports a read even one byte past the packet.
    std::array<std::unique_ptr<std::uint8_t[]>, kSlots> buffers{};
    std::array<std::uint32_t, kSlots> buffer_size{};
    std::array<dp::PacketView, kSlots> views{};
    std::array<std::vector<std::uint8_t>, kSlots> copies{};   // a held packet as it was kept
    std::bitset<kSlots> held;
    std::uint64_t now_ns = 1'000'000'000;
    std::uint64_t received = 0;
    bool routed = false;   // an ICMP error to route: counted twice by design, accounting skipped

    unsigned free_slot() const {
        for (unsigned i = 0; i < kSlots; ++i)
            if (!held[i])
                return i;
        std::abort();   // more held than the limits allow
    }

    void check_view(unsigned slot) const {
        const dp::PacketView& p = views[slot];
        const std::uint8_t* begin = buffers[slot].get();
        if (p.data < begin || p.data + p.len > begin + buffer_size[slot] ||
            p.data - begin != static_cast<std::ptrdiff_t>(p.headroom))
            std::abort();
    }

    void outcome(unsigned slot, dp::ResolveOutcome o) {
        check_view(slot);
        if (o == dp::ResolveOutcome::kHeld) {
            if (held[slot])
                std::abort();
            held[slot] = true;
            copies[slot].assign(views[slot].data, views[slot].data + views[slot].len);
        } else if (o == dp::ResolveOutcome::kRoute) {
            routed = true;
        }
    }

    void frame(dp::PortRole from, const std::uint8_t* bytes, std::size_t len) {
        const unsigned slot = free_slot();
        buffer_size[slot] = kHeadroom + static_cast<std::uint32_t>(len);
        buffers[slot] = std::make_unique<std::uint8_t[]>(buffer_size[slot]);
        std::memcpy(buffers[slot].get() + kHeadroom, bytes, len);
        views[slot] = dp::PacketView{buffers[slot].get() + kHeadroom, static_cast<std::uint32_t>(len), kHeadroom};
        ++received;
        dp::Verdict verdict;
        forwarder.process(from, &views[slot], &verdict, 1, counters);
        if (dp::is_punt(verdict))
            outcome(slot, resolver.handle(from, verdict, views[slot], slot, now_ns, counters));
        drain();
    }

    void arp(const std::uint8_t* bytes, std::size_t len) {
        std::uint8_t frame_bytes[proto::kArpFrameSize];
        const std::uint8_t pick = len > 0 ? bytes[0] : 0;
        const Ipv4Addr sender = (pick & 4) && len >= 5 ? (std::uint32_t{bytes[1]} << 24 | std::uint32_t{bytes[2]} << 16 |
                                                           std::uint32_t{bytes[3]} << 8 | bytes[4])
                                                        : *parse_ipv4(kNeighbours[pick & 3]);
        const proto::MacAddr mac = {2, 0, 0, 0, static_cast<std::uint8_t>(pick >> 3), 0x42};
        const bool reply = (pick & 0x80) == 0;
        const bool to_us = (pick & 0x40) == 0;
        proto::write_arp(frame_bytes, to_us ? config.uplink_mac : proto::kBroadcastMac,
                         reply ? proto::kArpOpReply : proto::kArpOpRequest, mac, sender,
                         to_us ? config.uplink_mac : proto::MacAddr{}, to_us ? config.node_ip : sender + 1);
        frame(dp::PortRole::kUplink, frame_bytes, sizeof frame_bytes);
    }

    void advance(std::size_t steps) {
        now_ns += std::uint64_t{steps} * 20'000'000;
        resolver.tick(now_ns, counters);
        drain();
    }

    void drain() {
        dp::ArpRequest requests[8];
        while (const std::size_t n = resolver.take_requests(requests))
            for (std::size_t i = 0; i < n; ++i) {
                std::uint8_t out[proto::kArpFrameSize];
                if (resolver.write_request(out, requests[i]) != proto::kArpFrameSize)
                    std::abort();
                const proto::ArpHdr* a = proto::arp_of_frame(out, sizeof out);
                if (a == nullptr || a->opcode() != proto::kArpOpRequest || a->sender_ip() != config.node_ip ||
                    a->sender_mac != config.uplink_mac || a->target_ip() != requests[i].target)
                    std::abort();
                counters.count(dp::Action::kArpRequest);
            }
        std::uintptr_t handles[8];
        while (const std::size_t n = resolver.take_released(handles))
            for (std::size_t i = 0; i < n; ++i) {
                const unsigned slot = given_back(handles[i]);
                outcome(slot, resolver.release(views[slot], slot, now_ns, counters));
            }
        while (const std::size_t n = resolver.take_freed(handles))
            for (std::size_t i = 0; i < n; ++i)
                given_back(handles[i]);
    }

    // A handle back from the resolver: it must be held, and untouched.
    unsigned given_back(std::uintptr_t handle) {
        if (handle >= kSlots || !held[handle])
            std::abort();
        const auto slot = static_cast<unsigned>(handle);
        if (!std::equal(views[slot].data, views[slot].data + views[slot].len, copies[slot].begin(), copies[slot].end()))
            std::abort();
        held[slot] = false;
        return slot;
    }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static Fixture fixture;
    // A fresh resolver per input keeps runs reproducible.
    const auto owned = std::make_unique<Run>(fixture);
    Run& run = *owned;
    std::size_t at = 0;
    while (at + 2 <= size) {
        const std::uint8_t op = data[at];
        const std::size_t len = std::min<std::size_t>(data[at + 1], size - at - 2);
        const std::uint8_t* bytes = data + at + 2;
        switch (op & 3) {
        case 0:
        case 1:
            if (len > 0)
                run.frame(op & 1 ? dp::PortRole::kHost : dp::PortRole::kUplink, bytes, len);
            break;
        case 2:
            run.advance(len);
            break;
        case 3:
            run.arp(bytes, len);
            break;
        }
        at += 2 + ((op & 3) == 2 ? 0 : len);
    }
    run.advance(100);   // two seconds: retransmissions, failures
    run.resolver.flush(run.counters);
    run.drain();
    fixture.slot.quiescent();
    if (run.held.any())
        std::abort();   // a packet kept and never given back: a leaked mbuf
    if (!run.routed && packets_counted(run.counters) != run.received)
        std::abort();   // a packet not counted, or counted twice
    return 0;
}
