// The per-packet work of podfwd-dataplane, on plain packet views: no DPDK
// here, so the same code runs under the poll loop, the pcap tool, the unit
// tests and the fuzzer.
//
// A burst goes through one pass (fastpath.cc, forward_burst): each plain
// IPv4 packet for us is decapsulated first where tunnelled to the node,
// looked up, then rewritten or encapsulated from its next hop's ready-made
// headers (nexthop_cache.h, output from fastpath_inline.h), with no arrays
// between the steps. The rest takes a call: rejected() (input.cc) for
// frames that are not plain IPv4 for us, general() (output.cc) for next
// hops without a template and failed checks, each finding the exact
// verdict. What the fast path
// does not handle itself (ARP, TTL expiry, fragmentation needed) leaves it
// as a punt verdict, the packet untouched. Nothing allocates, locks, throws
// or makes a virtual call.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "common/ipv4.h"
#include "dataplane/counters.h"
#include "dataplane/nexthop_cache.h"
#include "dataplane/proto/ether.h"
#include "lpm/reader.h"

namespace podfwd::dp {

struct NodeConfig {
    Ipv4Addr node_ip = 0;
    proto::MacAddr uplink_mac{};    // source of every frame sent on the uplink
    proto::MacAddr vtep_mac{};      // inner source of VXLAN frames (Flannel's VtepMAC of this node)
    proto::MacAddr host_mac{};      // the kernel side of the host port (destination of frames to it)
    std::uint16_t vxlan_port = 4789;
    std::uint32_t vni = 1;
    std::uint16_t mtu = 1500;       // uplink IP MTU
    // First IP ID of outer headers without DF. Give each lcore its own
    // random start; a fixed one keeps pcap runs reproducible.
    std::uint16_t outer_ip_id_start = 0;
};

// A packet in a buffer: `data` points at the Ethernet header, `headroom`
// bytes before it are free for prepending. The fast path moves `data` and
// changes `len` when it encapsulates or decapsulates.
struct PacketView {
    std::uint8_t* data;
    std::uint32_t len;
    std::uint32_t headroom;
};

// What happens to a packet after the burst. The kPunt* verdicts leave the
// burst loop for the exception path (dataplane/exception.h), which answers,
// turns the packet into an ICMP error, or drops it; the packet is untouched
// by the fast path (an inner frame after decapsulation).
enum class Verdict : std::uint8_t {
    kUplink = 0,
    kHost = 1,
    kDrop = 2,
    kPuntArp,           // an ARP frame, from either port
    kPuntTtlExceeded,   // TTL <= 1 on a packet to forward: ICMP time exceeded
    kPuntFragNeeded,    // over the MTU (after encapsulation) with DF set: ICMP fragmentation needed
    // host-gw, IPIP or VXLAN whose record has no MAC, or the connected
    // route (the MAC is the destination's): the resolver's (resolver.h).
    // Given only after the TTL and MTU checks passed.
    kPuntUnresolved,
};
inline constexpr Verdict kFirstPunt = Verdict::kPuntArp;
inline constexpr bool is_punt(Verdict v) noexcept { return v >= kFirstPunt; }

inline constexpr unsigned kMaxBurst = 64;

// The node IPs that may send us IPIP: every next hop's node. Rebuilt when
// the table's next hops change (rarely), into memory reserved up front.
class KnownNodes {
public:
    void reserve(std::uint32_t max_nodes);
    void rebuild(const lpm::TableView& table);
    // Inline: per decapsulated packet (the library is position-independent,
    // where an out-of-line member is not inlined). A tunnel's packets come
    // in runs from one peer: the last sender found is remembered, so a run
    // costs one compare a packet, not a hash probe.
    bool contains(Ipv4Addr ip) noexcept {
        if (ip == last_found_)
            return ip != 0;   // 0 is never a node: the empty value
        if (ip == 0)
            return false;
        for (std::uint32_t i = mix(ip) & mask_;; i = (i + 1) & mask_) {
            if (slots_[i] == ip) {
                last_found_ = ip;
                return true;
            }
            if (slots_[i] == 0)
                return false;
        }
    }
    std::uint64_t generation() const noexcept { return generation_; }
    static std::uint32_t mix(std::uint32_t ip) noexcept { return ip * 0x9e3779b1u; }

private:
    std::vector<Ipv4Addr> slots_;   // open addressing, 0: empty
    std::uint32_t mask_ = 0;
    Ipv4Addr last_found_ = 0;       // a member of slots_, or 0
    std::uint64_t generation_ = ~std::uint64_t{0};
};

class Forwarder {
public:
    Forwarder(const NodeConfig& config, const lpm::TableView& table);

    // Processes up to kMaxBurst packets received on `from`; sets verdicts[i].
    // Every kDrop is counted under its reason, every kUplink and kHost under
    // its action; punts are not counted (their taker counts them). On the
    // uplink, unicast frames to another MAC are dropped (not_for_us) and
    // group-addressed IPv4 goes to the host port, never routed.
    // Bit i of `checksum_verified` set: the NIC found packet i's IPv4 header
    // checksum good, so it is not summed again (other checks still run, and
    // tunnelled inner headers are always summed).
    void process(PortRole from, PacketView* pkts, Verdict* verdicts, unsigned n, LcoreCounters& counters,
                 std::uint64_t checksum_verified = 0) noexcept;

    // One packet the fast path punted as kPuntUnresolved, finished with the
    // MAC the resolver found for its L2 next hop: the same checks, rewrite
    // or encapsulation and counting as the burst (general path), as if `nh`
    // carried `mac`. Returns kUplink or kHost (counted under the action), or
    // kDrop (counted; also for a TTL or MTU punt: the record changed since,
    // no ICMP error for a packet that waited).
    Verdict finish(PacketView& pkt, const lpm::NextHop& nh, const proto::MacAddr& mac,
                   LcoreCounters& counters) noexcept;

    const NodeConfig& config() const noexcept { return config_; }

private:
    // What to_node() did with a packet for the node: decapsulated (then
    // looked up by its inner destination; the pass counts the action per
    // burst; the inner header's checksum is not verified yet: the caller
    // verifies it unless the packet goes to the kernel, which verifies what
    // it receives), the kernel's, or dropped (counted).
    enum class Step : std::uint8_t { kIpipDecapped, kVxlanDecapped, kToHost, kDropped };

    [[gnu::noinline]] void refresh_nexthops() noexcept;

    // The burst in one pass (fastpath.cc): plain IPv4 for us, decapsulated
    // where tunnelled to the node, looked up and written from its next hop's
    // template, or through general(); anything else through rejected().
    template <bool kUplink, bool kNicChecksums>
    [[gnu::always_inline]] inline void forward_burst(PacketView* pkts, Verdict* verdicts, unsigned n,
                                                     LcoreCounters& counters,
                                                     std::uint64_t checksum_verified) noexcept;

    // Out of the burst loop: packets for the node, and packets that are not
    // plain IPv4 for us (counted drops, punts, or the kernel's).
    [[gnu::noinline]] Step to_node(PacketView& pkt, LcoreCounters& counters) noexcept;
    [[gnu::noinline]] Verdict rejected(PortRole from, PacketView& pkt, LcoreCounters& counters) noexcept;
    [[gnu::always_inline]] inline bool decap_ipip(PacketView& pkt, LcoreCounters& counters) noexcept;
    [[gnu::always_inline]] inline bool decap_vxlan(PacketView& pkt, LcoreCounters& counters) noexcept;

    // output.cc: a packet with a next hop the template does not cover,
    // through its record.
    [[gnu::noinline]] Verdict general(PacketView& pkt, lpm::NextHopId id, LcoreCounters& counters) noexcept;
    // The decision for one packet with a next hop: rewritten, with `action`
    // set (kUplink, kHost); `drop` set (kDrop); or punted, untouched.
    [[gnu::always_inline]] inline Verdict decide(PacketView& pkt, const lpm::NextHop& nh, Action& action,
                                                 Drop& drop) noexcept;
    // The checks before an encapsulation; Drop::kCount when the packet may go.
    [[gnu::always_inline]] inline Drop encap_check(const PacketView& pkt, const lpm::NextHop& nh,
                                                   std::uint32_t outer_ip_len, std::uint32_t overhead) const noexcept;
    // The rewrites, once the checks passed.
    [[gnu::always_inline]] inline void deliver_to_host(PacketView& pkt) noexcept;
    [[gnu::always_inline]] inline void ipip_encap(PacketView& pkt, const lpm::NextHop& nh) noexcept;
    [[gnu::always_inline]] inline void vxlan_encap(PacketView& pkt, const lpm::NextHop& nh) noexcept;

    // RFC 6864: an outer header that may be fragmented (DF clear) needs an
    // ID unique per source, destination and protocol while its fragments
    // live; one counter per forwarder (per lcore).
    std::uint16_t outer_ip_id(std::uint16_t df) noexcept { return df != 0 ? 0 : next_ip_id_++; }

    NodeConfig config_;
    std::uint64_t uplink_mac_key_;   // the uplink MAC as frames start (detail::mac_key)
    // Frame bytes 6..13 (source MAC, EtherType IPv4) on the uplink and in
    // VXLAN's inner frames; the host port's MAC and 2 bytes of padding.
    std::uint64_t uplink_src_and_type_;
    std::uint64_t vtep_src_and_type_;
    std::array<std::uint8_t, 8> host_dst_{};
    const lpm::TableView& table_;
    KnownNodes known_nodes_;
    NextHopCache cache_;
    std::uint16_t next_ip_id_;
};

// UDP source port for a VXLAN packet from the inner flow (RFC 7348 section
// 5: entropy for ECMP and RSS), in 49152..65535 as Linux picks it.
std::uint16_t vxlan_source_port(const std::uint8_t* inner_ip, std::uint32_t len) noexcept;

}  // namespace podfwd::dp
