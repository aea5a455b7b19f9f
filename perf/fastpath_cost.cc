// fastpath_cost: the fast path alone, without DPDK or I/O, on 64-byte
// frames in bursts of 32, per mode. Prints ns per packet; under
// `valgrind --tool=callgrind` its instruction counts per packet are exact
// and repeatable, which the shared machine's timings are not.
//
//   build/perf/fastpath_cost [iterations [case [nic_checksums]]]
// (nic_checksums: every outer IPv4 header marked verified by the NIC, as
// with RX checksum offload)
//   valgrind --tool=callgrind --toggle-collect='podfwd::dp::Forwarder::process*'
//       build/perf/fastpath_cost 10 host_gw        (instructions / (10 * 1024))
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <string>
#include <vector>

#include "dataplane/fastpath.h"
#include "dataplane/proto/ipv4.h"
#include "dataplane/proto/vxlan.h"
#include "lpm/writer.h"

using namespace podfwd;
using namespace podfwd::dp;

namespace {

constexpr unsigned kBurst = 32;
constexpr unsigned kPackets = 1024;
constexpr std::uint32_t kHeadroom = 128;
constexpr std::uint32_t kFrame = 60;   // 64 bytes on the wire with the FCS

struct Case {
    const char* name;
    PortRole from;
    Ipv4Addr outer_src;   // 0: a plain pod packet; else tunnelled from this node to us
    std::uint32_t overhead = 0;   // 20: IPIP; 50: VXLAN
};

// A UDP pod packet to 10.244.<mode>.x, or that packet in IPIP or VXLAN to
// the node (with the default VXLAN port and VNI).
void build(std::uint8_t* frame, Ipv4Addr dst, const Case& c, Ipv4Addr node) {
    using namespace proto;
    std::memset(frame, 0, kFrame + c.overhead);
    auto& eth = *reinterpret_cast<EtherHdr*>(frame);
    eth.dst = {2, 0, 0, 0, 0, 2};
    eth.src = {2, 0, 0, 0, 0, 9};
    eth.set_ether_type(kEtherTypeIpv4);
    std::uint8_t* ip = frame + EtherHdr::kSize;
    if (c.overhead == kIpipOverhead) {
        ipv4_write(*reinterpret_cast<Ipv4Hdr*>(ip), c.outer_src, node, kProtoIpip, kFrame - 14 + 20, 64, kIpv4FlagDf);
        ip += Ipv4Hdr::kSize;
    } else if (c.overhead == kVxlanOverhead) {
        const auto outer_len = static_cast<std::uint16_t>(kFrame + kVxlanOverhead - EtherHdr::kSize);
        ipv4_write(*reinterpret_cast<Ipv4Hdr*>(ip), c.outer_src, node, kProtoUdp, outer_len, 64, 0);
        auto& udp = *reinterpret_cast<UdpHdr*>(ip + Ipv4Hdr::kSize);
        store_be16(udp.src_port, 50000);
        store_be16(udp.dst_port, kVxlanPortIana);
        store_be16(udp.length, static_cast<std::uint16_t>(outer_len - Ipv4Hdr::kSize));
        reinterpret_cast<VxlanHdr*>(ip + Ipv4Hdr::kSize + UdpHdr::kSize)->set(1);
        std::memcpy(frame + kVxlanOverhead, frame, EtherHdr::kSize);   // the inner Ethernet header
        ip = frame + kVxlanOverhead + EtherHdr::kSize;
    }
    ipv4_write(*reinterpret_cast<Ipv4Hdr*>(ip), *parse_ipv4("10.247.0.5"), dst, kProtoUdp, kFrame - 14, 64,
               kIpv4FlagDf);
}

}  // namespace

int main(int argc, char** argv) {
    const long iterations = argc > 1 ? std::atol(argv[1]) : 20000;
    const std::string only = argc > 2 ? argv[2] : "";
    const bool nic_checksums = argc > 3 && std::string(argv[3]) == "nic_checksums";
    const std::uint64_t verified = nic_checksums ? (std::uint64_t{1} << kBurst) - 1 : 0;
    const std::string name = "fastpath-cost." + std::to_string(::getpid());
    (void)lpm::TableWriter::unlink(name);
    auto writer = lpm::TableWriter::open(name);
    if (!writer) {
        std::fprintf(stderr, "%s\n", writer.error().message.c_str());
        return 1;
    }
    const lpm::ForwardMode modes[] = {lpm::ForwardMode::kHostGw, lpm::ForwardMode::kIpip, lpm::ForwardMode::kVxlan};
    for (unsigned m = 0; m < 3; ++m) {
        for (unsigned n = 0; n < 128; ++n) {
            lpm::NextHop nh;
            nh.mode = modes[m];
            nh.node_ip = (192u << 24) | (168u << 16) | ((m + 1) << 8) | (n + 1);
            nh.mac = {2, 0, 0, 0, static_cast<std::uint8_t>(m), static_cast<std::uint8_t>(n)};
            nh.vtep_mac = nh.mac;
            nh.flags = lpm::NextHop::kMacResolved;
            const auto id = *writer->nexthop_add(nh);
            (void)writer->route_add(Prefix4{(10u << 24) | ((244u + m) << 16) | (n << 8), 24}, id);
        }
    }
    lpm::NextHop local;
    local.mode = lpm::ForwardMode::kLocal;
    (void)writer->route_add(*Prefix4::parse("10.247.0.0/16"), *writer->nexthop_add(local));
    (void)writer->commit();
    auto view = *lpm::TableView::open(name);
    auto slot = *view.register_reader();
    NodeConfig config;
    config.node_ip = *parse_ipv4("10.168.0.2");
    config.uplink_mac = {2, 0, 0, 0, 0, 2};   // the frames' destination (else: not_for_us)
    Forwarder forwarder(config, view);

    const Ipv4Addr ipip_peer = (192u << 24) | (168u << 16) | (2u << 8) | 1;
    const Ipv4Addr vxlan_peer = (192u << 24) | (168u << 16) | (3u << 8) | 1;
    const Case cases[] = {{"host_gw", PortRole::kHost, 0},
                          {"ipip_encap", PortRole::kHost, 0},
                          {"vxlan_encap", PortRole::kHost, 0},
                          {"ipip_decap", PortRole::kUplink, ipip_peer, proto::kIpipOverhead},
                          {"vxlan_decap", PortRole::kUplink, vxlan_peer, proto::kVxlanOverhead}};
    std::vector<std::uint8_t> pristine(kPackets * 256), buffers(kPackets * 256);
    for (unsigned c = 0; c < std::size(cases); ++c) {
        if (!only.empty() && only != cases[c].name)
            continue;
        const unsigned mode = c < 3 ? c : 3;
        for (unsigned i = 0; i < kPackets; ++i) {
            const Ipv4Addr dst = mode < 3 ? (10u << 24) | ((244u + mode) << 16) | ((i % 128) << 8) | (1 + i % 200)
                                          : (10u << 24) | (247u << 16) | (1 + i % 200);
            build(&pristine[i * 256 + kHeadroom], dst, cases[c], config.node_ip);
        }
        LcoreCounters counters;
        PacketView views[kBurst];
        Verdict verdicts[kPackets];
        const std::uint32_t len = kFrame + cases[c].overhead;
        double seconds = 0;
        std::uint64_t punts = 0;
        for (long it = 0; it < iterations; ++it) {
            // Fresh packets each pass (a copy, as a PMD's RX would write them), untimed.
            std::memcpy(buffers.data(), pristine.data(), buffers.size());
            const auto start = std::chrono::steady_clock::now();
            for (unsigned b = 0; b < kPackets; b += kBurst) {
                for (unsigned k = 0; k < kBurst; ++k)
                    views[k] = PacketView{&buffers[(b + k) * 256 + kHeadroom], len, kHeadroom};
                forwarder.process(cases[c].from, views, verdicts + b, kBurst, counters, verified);
            }
            seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            // The fast path alone: punts (none expected in these cases) are
            // counted, not answered, outside the timing.
            for (const Verdict v : verdicts)
                punts += is_punt(v) ? 1 : 0;
            slot.quiescent();
        }
        std::uint64_t drops = 0;
        for (auto d : counters.drops)
            drops += d;
        std::printf("%-12s %6.2f ns/packet  (%llu drops, %llu punts)\n", cases[c].name,
                    seconds * 1e9 / (static_cast<double>(iterations) * kPackets),
                    static_cast<unsigned long long>(drops), static_cast<unsigned long long>(punts));
    }
    (void)lpm::TableWriter::unlink(name);
    return 0;
}
