// libFuzzer target for the fast path and its exception path: any bytes,
// received on either port, against a table holding every forwarding mode,
// handled as the poll loop handles them (punts answered, ICMP errors routed
// once more from the host port, a second punt handled and never routed).
// Beyond the sanitizers' checks, it asserts what must hold for every packet:
// the view stays inside its buffer with its headroom where it says, a punt
// keeps room for an Ethernet and an IPv4 header (an Ethernet header for
// ARP), what the exception path sends is a whole ARP reply or an ICMP error
// with valid checksums, each punt is counted exactly once (one action or
// one drop), and every drop was counted exactly once.
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "dataplane/exception.h"
#include "dataplane/fastpath.h"
#include "dataplane/proto/arp.h"
#include "dataplane/proto/icmp.h"
#include "lpm/writer.h"

using namespace podfwd;
using namespace podfwd::lpm;

namespace {

constexpr std::uint32_t kHeadroom = 128;
constexpr std::uint32_t kMaxPacket = 4096 - kHeadroom;

// One packet's buffer: the headroom (the fast path prepends outer headers,
// the exception path grows an answer into it), then exactly the packet, so
// that ASan reports a read even one byte past its end.
struct PacketBuffer {
    std::unique_ptr<std::uint8_t[]> bytes;
    std::uint32_t size = 0;

    static PacketBuffer holding(const std::uint8_t* packet, std::uint32_t len) {
        PacketBuffer buffer{std::make_unique<std::uint8_t[]>(kHeadroom + len), kHeadroom + len};
        std::memcpy(buffer.bytes.get() + kHeadroom, packet, len);
        return buffer;
    }
    const std::uint8_t* begin() const noexcept { return bytes.get(); }
    const std::uint8_t* end() const noexcept { return bytes.get() + size; }
};

struct Fixture {
    std::string name = "podfwd-fuzz." + std::to_string(::getpid());
    TableWriter writer;
    TableView view;
    ReaderSlot slot;
    dp::Forwarder forwarder;

    static TableWriter make_writer(const std::string& name) {
        (void)TableWriter::unlink(name);
        TableWriter::Options options;
        options.capacity.max_routes = 1024;
        options.capacity.max_nexthops = 64;
        options.capacity.max_groups = 64;
        auto w = TableWriter::open(name, options);
        if (!w) {
            std::fprintf(stderr, "fuzz: %s\n", w.error().message.c_str());
            std::abort();
        }
        auto writer = std::move(w).value();
        const auto add = [&](const char* node, ForwardMode mode, bool resolved, const char* prefix) {
            NextHop nh;
            nh.node_ip = *parse_ipv4(node);
            nh.mode = mode;
            nh.vni = 7;
            nh.mac = {2, 0, 0, 0, 0, 3};
            nh.vtep_mac = {2, 0, 0, 0, 0, 4};
            nh.flags = resolved ? NextHop::kMacResolved : 0;
            const NextHopId id = *writer.nexthop_add(nh);
            (void)writer.route_add(*Prefix4::parse(prefix), id);
        };
        add("10.168.0.3", ForwardMode::kHostGw, true, "10.244.1.0/24");
        add("192.168.5.9", ForwardMode::kIpip, true, "10.244.2.0/24");
        add("192.168.5.10", ForwardMode::kVxlan, true, "10.244.3.0/24");
        add("10.168.0.2", ForwardMode::kLocal, true, "10.244.0.0/24");
        add("10.168.0.4", ForwardMode::kHostGw, false, "10.244.4.0/24");
        add("10.168.0.5", ForwardMode::kDrop, true, "10.244.5.0/24");
        add("10.168.0.6", ForwardMode::kIpip, true, "10.244.6.128/25");
        (void)writer.commit();
        return writer;
    }
    static dp::NodeConfig node() {
        dp::NodeConfig c;
        c.node_ip = *parse_ipv4("10.168.0.2");
        c.uplink_mac = {2, 0, 0, 0, 0, 2};
        c.vtep_mac = {2, 0, 0, 0, 0, 12};
        c.host_mac = {2, 0, 0, 0, 0, 1};
        c.vni = 1;
        return c;
    }

    Fixture()
        : writer(make_writer(name)), view(*TableView::open(name)), slot(*view.register_reader()),
          forwarder(node(), view) {
        std::atexit([] { (void)TableWriter::unlink("podfwd-fuzz." + std::to_string(::getpid())); });
    }
};

std::uint64_t drops_counted(const dp::LcoreCounters& c) {
    std::uint64_t sum = 0;
    for (auto v : c.drops)
        sum += v;
    return sum;
}

std::uint64_t exception_actions(const dp::LcoreCounters& c) {
    return c.of(dp::Action::kArpReply) + c.of(dp::Action::kIcmpTimeExceeded) + c.of(dp::Action::kIcmpFragNeeded) +
           c.of(dp::Action::kLocalTtlOne);
}

void check_view(const dp::PacketView& p, const PacketBuffer& buffer, std::uint32_t min_len) {
    if (p.data < buffer.begin() || p.data + p.len > buffer.end() ||
        p.data - buffer.begin() != static_cast<std::ptrdiff_t>(p.headroom) || p.len < min_len)
        std::abort();
}

// What the exception path sends: an ARP reply, or an ICMP error whose IP and
// ICMP checksums hold and whose lengths match the view.
void check_answer(dp::Verdict punt, const dp::PacketView& p) {
    using namespace proto;
    if (punt == dp::Verdict::kPuntArp) {
        const ArpHdr* arp = arp_of_frame(p.data, p.len);
        if (p.len != kArpFrameSize || arp == nullptr || arp->opcode() != kArpOpReply)
            std::abort();
        return;
    }
    constexpr std::uint32_t kMin = EtherHdr::kSize + Ipv4Hdr::kSize + IcmpHdr::kSize + Ipv4Hdr::kSize;
    if (p.len < kMin || load_be16(p.data + 12) != kEtherTypeIpv4)
        std::abort();
    const std::uint8_t* ip = p.data + EtherHdr::kSize;
    const auto& h = *reinterpret_cast<const Ipv4Hdr*>(ip);
    if (!ipv4_header_checksum_ok(ip) || h.length() != p.len - EtherHdr::kSize || h.protocol != kProtoIcmp)
        std::abort();
    if (icmp_checksum(ip + Ipv4Hdr::kSize, p.len - EtherHdr::kSize - Ipv4Hdr::kSize) != 0)
        std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static Fixture fixture;
    if (size < 1 || size > kMaxPacket + 1)
        return 0;
    // Byte 0 picks the receiving port and the burst size (1 or 3 copies).
    const auto from = (data[0] & 1) ? dp::PortRole::kHost : dp::PortRole::kUplink;
    const unsigned copies = (data[0] & 2) ? 3 : 1;
    const auto len = static_cast<std::uint32_t>(size - 1);
    std::array<PacketBuffer, 3> buffers;
    dp::PacketView pkts[3];
    for (unsigned i = 0; i < copies; ++i) {
        buffers[i] = PacketBuffer::holding(data + 1, len);
        pkts[i] = dp::PacketView{buffers[i].bytes.get() + kHeadroom, len, kHeadroom};
    }
    dp::Verdict verdicts[3];
    dp::LcoreCounters counters;
    fixture.forwarder.process(from, pkts, verdicts, copies, counters);
    // A fresh exception path per input keeps runs reproducible; a burst of 2
    // lets the third copy meet the rate limit.
    dp::ExceptionPath exception(Fixture::node(), fixture.view, 1000, 2);

    unsigned dropped = 0;
    dp::PacketView routed[3];
    dp::Verdict routed_verdicts[3];
    unsigned routed_index[3];
    unsigned n_routed = 0;
    const auto handle = [&](dp::PortRole port, dp::Verdict punt, dp::PacketView& p, const PacketBuffer& buffer) {
        const std::uint64_t before = drops_counted(counters) + exception_actions(counters);
        const std::uint64_t passed_on = counters.of(dp::Action::kLocalTtlOne);
        const dp::ExceptionResult r = exception.handle(port, punt, p, 0, counters);
        if (drops_counted(counters) + exception_actions(counters) != before + 1)
            std::abort();   // a punt not counted, or counted twice
        if (counters.of(dp::Action::kLocalTtlOne) != passed_on) {
            // The node's own TTL-1 packet, passed on: TTL 2 for the routing pass, checksum whole.
            check_view(p, buffer, 34);
            if (r != dp::ExceptionResult::kRoute || p.data[proto::EtherHdr::kSize + 8] != 2 ||
                !proto::ipv4_header_checksum_ok(p.data + proto::EtherHdr::kSize))
                std::abort();
        } else if (r != dp::ExceptionResult::kDrop) {
            check_view(p, buffer, 14);
            check_answer(punt, p);
        }
        return r;
    };
    for (unsigned i = 0; i < copies; ++i) {
        if (verdicts[i] == dp::Verdict::kDrop) {
            ++dropped;
            continue;
        }
        // A punted packet goes on to the exception path: its view must hold
        // as well, with an Ethernet header (ARP) or Ethernet and IPv4.
        const std::uint32_t min_len = verdicts[i] == dp::Verdict::kPuntArp ? 14 : 34;
        check_view(pkts[i], buffers[i], min_len);
        if (!dp::is_punt(verdicts[i]))
            continue;
        switch (handle(from, verdicts[i], pkts[i], buffers[i])) {
        case dp::ExceptionResult::kDrop:
            ++dropped;
            break;
        case dp::ExceptionResult::kRoute:
            routed_index[n_routed] = i;
            routed[n_routed++] = pkts[i];
            break;
        default:
            break;
        }
    }
    if (n_routed != 0) {
        fixture.forwarder.process(dp::PortRole::kHost, routed, routed_verdicts, n_routed, counters);
        for (unsigned k = 0; k < n_routed; ++k) {
            const PacketBuffer& buffer = buffers[routed_index[k]];
            if (routed_verdicts[k] == dp::Verdict::kDrop) {
                ++dropped;
                continue;
            }
            check_view(routed[k], buffer, 34);
            // The second round as the poll loop runs it: handled, never routed again.
            if (dp::is_punt(routed_verdicts[k])) {
                const dp::ExceptionResult again = handle(dp::PortRole::kHost, routed_verdicts[k], routed[k], buffer);
                if (again == dp::ExceptionResult::kRoute)
                    std::abort();   // an error about an error: the loop RFC 1812 forbids
                if (again == dp::ExceptionResult::kDrop)
                    ++dropped;
            }
        }
    }
    fixture.slot.quiescent();
    if (drops_counted(counters) != dropped)
        std::abort();   // a drop not counted, or counted twice
    return 0;
}
