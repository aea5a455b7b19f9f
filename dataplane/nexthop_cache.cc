// The per-lcore header templates (nexthop_cache.h): built from the table's
// records, with the packet formats of dataplane/proto.
#include "dataplane/nexthop_cache.h"

#include "dataplane/fastpath.h"

#include <sys/mman.h>

#include <algorithm>
#include <new>

#include "dataplane/proto/ipv4.h"
#include "dataplane/proto/udp.h"
#include "dataplane/proto/vxlan.h"

namespace podfwd::dp {

using namespace proto;

namespace {

constexpr std::uint8_t kOuterTtl = 64;

void put_ether(std::uint8_t* at, const MacAddr& dst, const MacAddr& src) noexcept {
    auto& eth = *reinterpret_cast<EtherHdr*>(at);
    eth.dst = dst;
    eth.src = src;
    eth.set_ether_type(kEtherTypeIpv4);
}

// The outer IPv4 header with its per-packet fields zero; returns the
// header's one's-complement sum (the complement of the checksum written).
std::uint16_t put_outer_ipv4(std::uint8_t* at, Ipv4Addr src, Ipv4Addr dst, std::uint8_t protocol) noexcept {
    auto& ip = *reinterpret_cast<Ipv4Hdr*>(at);
    ipv4_write(ip, src, dst, protocol, 0, kOuterTtl, 0, 0, 0);
    return static_cast<std::uint16_t>(~ip.header_checksum());
}

}  // namespace

FastNextHop build_fast_nexthop(const lpm::NextHop& nh, const NodeConfig& config) noexcept {
    FastNextHop f;
    std::uint8_t* h = f.headers.data();
    const MacAddr mac{nh.mac[0], nh.mac[1], nh.mac[2], nh.mac[3], nh.mac[4], nh.mac[5]};
    switch (nh.mode) {
    case lpm::ForwardMode::kLocal:
        put_ether(h, config.host_mac, config.uplink_mac);
        f.kind = FastKind::kLocal;
        break;
    case lpm::ForwardMode::kHostGw:
        if (!nh.mac_resolved())
            break;
        put_ether(h, mac, config.uplink_mac);
        f.kind = FastKind::kHostGw;
        break;
    case lpm::ForwardMode::kIpip:
        if (!nh.mac_resolved())
            break;
        put_ether(h, mac, config.uplink_mac);
        f.outer_sum = put_outer_ipv4(h + EtherHdr::kSize, config.node_ip, nh.node_ip, kProtoIpip);
        f.kind = FastKind::kIpip;
        break;
    case lpm::ForwardMode::kVxlan: {
        if (!nh.mac_resolved())
            break;
        put_ether(h, mac, config.uplink_mac);
        f.outer_sum = put_outer_ipv4(h + EtherHdr::kSize, config.node_ip, nh.node_ip, kProtoUdp);
        auto& udp = *reinterpret_cast<UdpHdr*>(h + EtherHdr::kSize + Ipv4Hdr::kSize);
        store_be16(udp.dst_port, config.vxlan_port);   // source port, length: per packet; checksum 0 (RFC 7348)
        reinterpret_cast<VxlanHdr*>(h + EtherHdr::kSize + Ipv4Hdr::kSize + UdpHdr::kSize)
            ->set(nh.vni != 0 ? nh.vni : config.vni);
        const MacAddr vtep{nh.vtep_mac[0], nh.vtep_mac[1], nh.vtep_mac[2],
                           nh.vtep_mac[3], nh.vtep_mac[4], nh.vtep_mac[5]};
        put_ether(h + kVxlanOverhead, vtep, config.vtep_mac);
        f.kind = FastKind::kVxlan;
        break;
    }
    case lpm::ForwardMode::kDrop:
        break;
    }
    return f;
}

void UnmapEntries::operator()(FastNextHop* p) const noexcept { ::munmap(p, bytes); }

void NextHopCache::reserve(std::uint32_t max_nexthops) {
    const std::size_t bytes = (std::size_t{max_nexthops} + 1) * sizeof(FastNextHop);
    // Anonymous memory reads as zero (kSlow) and is taken page by page as
    // ids are used: 64k ids reserve 8 MiB of address space.
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        throw std::bad_alloc();
    entries_ = std::unique_ptr<FastNextHop[], UnmapEntries>(static_cast<FastNextHop*>(p), UnmapEntries{bytes});
    built_.assign(std::size_t{max_nexthops} + 1, false);
    max_id_ = max_nexthops;
    generation_ = ~std::uint64_t{0};
}

// The generation first: a record published during the scan bumps it again,
// and the next burst scans again.
void NextHopCache::refresh(const lpm::TableView& table, const NodeConfig& config) noexcept {
    generation_ = table.nexthop_generation();
    const lpm::NextHopTable nexthops = table.nexthops();
    const std::uint32_t last = std::min(max_id_, nexthops.max_id);
    FastNextHop* entries = entries_.get();
    for (lpm::NextHopId id = 1; id <= last; ++id) {
        FastNextHop& entry = entries[id];
        const lpm::NextHop* nh = nexthops.get(id);
        const bool was_built = built_[id];
        if (nh == nullptr) {
            if (was_built) {
                entry = FastNextHop{};
                built_[id] = false;
            }
            continue;
        }
        if (was_built && *nh == entry.source)
            continue;
        entry = build_fast_nexthop(*nh, config);
        entry.source = *nh;
        built_[id] = true;
    }
}

}  // namespace podfwd::dp
