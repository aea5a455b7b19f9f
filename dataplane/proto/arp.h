// ARP (RFC 826) for IPv4 over Ethernet: the only kind the dataplane speaks,
// 28 bytes after the Ethernet header. Gratuitous ARP and probes as RFC 5227
// names them.
#pragma once

#include <cstddef>
#include <cstdint>

#include "dataplane/proto/bytes.h"
#include "dataplane/proto/ether.h"

namespace podfwd::proto {

inline constexpr std::uint16_t kArpHardwareEthernet = 1;
inline constexpr std::uint16_t kArpOpRequest = 1;
inline constexpr std::uint16_t kArpOpReply = 2;
inline constexpr MacAddr kBroadcastMac{0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

struct ArpHdr {
    std::uint8_t hardware_type[2];
    std::uint8_t protocol_type[2];
    std::uint8_t hardware_length;
    std::uint8_t protocol_length;
    std::uint8_t op[2];
    MacAddr sender_mac;
    std::uint8_t sender_ip_bytes[4];
    MacAddr target_mac;
    std::uint8_t target_ip_bytes[4];

    static constexpr std::size_t kSize = 28;

    std::uint16_t opcode() const noexcept { return load_be16(op); }
    std::uint32_t sender_ip() const noexcept { return load_be32(sender_ip_bytes); }
    std::uint32_t target_ip() const noexcept { return load_be32(target_ip_bytes); }

    // The only shape we parse: Ethernet addresses for IPv4 ones, and an
    // opcode of RFC 826 (RARP and InARP share the header with other codes).
    bool is_ipv4_over_ethernet() const noexcept {
        const std::uint16_t code = opcode();
        return load_be16(hardware_type) == kArpHardwareEthernet && load_be16(protocol_type) == kEtherTypeIpv4 &&
               hardware_length == 6 && protocol_length == 4 && (code == kArpOpRequest || code == kArpOpReply);
    }
    // RFC 5227: an announcement repeats the sender's address as the target;
    // it asks nothing, so nobody answers it.
    bool is_gratuitous() const noexcept { return sender_ip() == target_ip(); }
    // RFC 5227: a probe (duplicate address detection) has no sender address yet.
    bool is_probe() const noexcept { return sender_ip() == 0; }
};
static_assert(sizeof(ArpHdr) == ArpHdr::kSize);

// What the builders write. Below Ethernet's 60-byte minimum: the NIC pads
// (as Linux sends ARP, 42 bytes, to the driver).
inline constexpr std::size_t kArpFrameSize = EtherHdr::kSize + ArpHdr::kSize;

// The ARP header of `frame` when it is an ARP frame of IPv4 over Ethernet
// (trailing padding allowed), else nullptr.
inline const ArpHdr* arp_of_frame(const std::uint8_t* frame, std::size_t len) noexcept {
    if (len < kArpFrameSize || load_be16(frame + 12) != kEtherTypeArp)
        return nullptr;
    const auto* arp = reinterpret_cast<const ArpHdr*>(frame + EtherHdr::kSize);
    return arp->is_ipv4_over_ethernet() ? arp : nullptr;
}

// Writes a whole ARP frame of kArpFrameSize bytes; returns that size. The
// arguments are copied before the first store, so they may point into the
// frame being overwritten (answering a request in place).
inline std::size_t write_arp(std::uint8_t* frame, const MacAddr& ether_dst, std::uint16_t opcode,
                             const MacAddr& sender_mac, std::uint32_t sender_ip, const MacAddr& target_mac,
                             std::uint32_t target_ip) noexcept {
    const MacAddr dst = ether_dst;
    const MacAddr sender = sender_mac;
    const MacAddr target = target_mac;
    auto& eth = *reinterpret_cast<EtherHdr*>(frame);
    eth.dst = dst;
    eth.src = sender;
    eth.set_ether_type(kEtherTypeArp);
    auto& arp = *reinterpret_cast<ArpHdr*>(frame + EtherHdr::kSize);
    store_be16(arp.hardware_type, kArpHardwareEthernet);
    store_be16(arp.protocol_type, kEtherTypeIpv4);
    arp.hardware_length = 6;
    arp.protocol_length = 4;
    store_be16(arp.op, opcode);
    arp.sender_mac = sender;
    store_be32(arp.sender_ip_bytes, sender_ip);
    arp.target_mac = target;
    store_be32(arp.target_ip_bytes, target_ip);
    return kArpFrameSize;
}

// Who has target_ip? Broadcast, target MAC unknown (zero, as Linux sends it).
inline std::size_t write_arp_request(std::uint8_t* frame, const MacAddr& sender_mac, std::uint32_t sender_ip,
                                     std::uint32_t target_ip) noexcept {
    return write_arp(frame, kBroadcastMac, kArpOpRequest, sender_mac, sender_ip, MacAddr{}, target_ip);
}

// sender_ip is at sender_mac; unicast to the asker (RFC 826), whose MAC and
// IP are the target.
inline std::size_t write_arp_reply(std::uint8_t* frame, const MacAddr& sender_mac, std::uint32_t sender_ip,
                                   const MacAddr& target_mac, std::uint32_t target_ip) noexcept {
    return write_arp(frame, target_mac, kArpOpReply, sender_mac, sender_ip, target_mac, target_ip);
}

// An announcement (RFC 5227 section 2.3): a broadcast request for our own
// address, so that neighbours update their caches (after a MAC change or a
// failover).
inline std::size_t write_gratuitous_arp(std::uint8_t* frame, const MacAddr& mac, std::uint32_t ip) noexcept {
    return write_arp(frame, kBroadcastMac, kArpOpRequest, mac, ip, MacAddr{}, ip);
}

}  // namespace podfwd::proto
