// VXLAN (RFC 7348): 8 bytes after UDP; flags with the I bit, a 24-bit VNI.
#pragma once

#include <cstdint>

#include "dataplane/proto/bytes.h"
#include "dataplane/proto/ether.h"
#include "dataplane/proto/ipv4.h"
#include "dataplane/proto/udp.h"

namespace podfwd::proto {

inline constexpr std::uint16_t kVxlanPortIana = 4789;     // RFC 7348; Calico
inline constexpr std::uint16_t kVxlanPortFlannel = 8472;  // Linux's historical default
inline constexpr std::uint8_t kVxlanFlagVni = 0x08;       // the I flag: VNI valid

struct VxlanHdr {
    std::uint8_t flags;
    std::uint8_t reserved1[3];
    std::uint8_t vni_reserved[4];   // VNI (24 bits), reserved (8)

    static constexpr std::size_t kSize = 8;
    std::uint32_t vni() const noexcept { return load_be32(vni_reserved) >> 8; }
    void set(std::uint32_t vni) noexcept {
        flags = kVxlanFlagVni;
        reserved1[0] = reserved1[1] = reserved1[2] = 0;
        store_be32(vni_reserved, vni << 8);
    }
};
static_assert(sizeof(VxlanHdr) == VxlanHdr::kSize);

// What VXLAN puts in front of the inner Ethernet frame.
inline constexpr std::size_t kVxlanOverhead = EtherHdr::kSize + Ipv4Hdr::kSize + UdpHdr::kSize + VxlanHdr::kSize;
// What IPIP puts in front of the inner IPv4 packet (the Ethernet header is reused).
inline constexpr std::size_t kIpipOverhead = Ipv4Hdr::kSize;

}  // namespace podfwd::proto
