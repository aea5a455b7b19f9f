// The burst (Forwarder::process): its three passes in order, and the names
// of the counters. The passes themselves: input.cc (parse, validate,
// decapsulate) and output.cc (rewrite, encapsulate).
#include "dataplane/fastpath.h"

#include <cstring>
#include <iterator>

#include "dataplane/fastpath_inline.h"

namespace podfwd::dp {

using namespace proto;

const char* action_name(Action a) noexcept {
    static constexpr const char* kNames[] = {"host_gw",     "ipip_encap", "vxlan_encap", "ipip_decap",
                                             "vxlan_decap", "to_host",    "arp_reply",   "icmp_time_exceeded",
                                             "icmp_frag_needed", "local_ttl_one", "arp_request", "arp_learned",
                                             "held_sent"};
    static_assert(std::size(kNames) == static_cast<unsigned>(Action::kCount));
    return kNames[static_cast<unsigned>(a)];
}

const char* drop_name(Drop d) noexcept {
    static constexpr const char* kNames[] = {
        "short_frame",          "not_for_us",      "not_ipv4",          "bad_version",
        "bad_header_length",    "ipv4_options",    "bad_total_length",  "bad_checksum",
        "ttl_exceeded",         "no_route",        "blackhole",         "nexthop_gone",
        "unresolved_nexthop",   "ipip_unknown_source", "vxlan_bad_header", "vxlan_wrong_vni",
        "vxlan_unknown_source", "tunnel_fragment", "mtu_exceeded",      "no_headroom",
        "multi_segment",        "arp_ignored",     "icmp_rate_limited", "hold_queue_full",
        "neighbour_failed",     "neighbour_table_full", "resolver_busy", "held_at_exit"};
    static_assert(std::size(kNames) == static_cast<unsigned>(Drop::kCount));
    return kNames[static_cast<unsigned>(d)];
}

namespace {

// Frame bytes 6..13 of an IPv4 frame from `src`: source MAC and EtherType.
std::uint64_t src_and_type(const MacAddr& src) noexcept {
    std::uint8_t bytes[8];
    std::memcpy(bytes, src.data(), 6);
    store_be16(bytes + 6, kEtherTypeIpv4);
    std::uint64_t v;
    std::memcpy(&v, bytes, 8);
    return v;
}

}  // namespace

Forwarder::Forwarder(const NodeConfig& config, const lpm::TableView& table)
    : config_(config), uplink_mac_key_(detail::mac_key(config.uplink_mac)),
      uplink_src_and_type_(src_and_type(config.uplink_mac)), vtep_src_and_type_(src_and_type(config.vtep_mac)),
      table_(table), next_ip_id_(config.outer_ip_id_start) {
    std::memcpy(host_dst_.data(), config.host_mac.data(), 6);
    known_nodes_.reserve(table.capacity().max_nexthops);
    cache_.reserve(table.capacity().max_nexthops);
}

// Next hops changed (rarely): the tunnel peers and the templates follow.
void Forwarder::refresh_nexthops() noexcept {
    known_nodes_.rebuild(table_);
    cache_.refresh(table_, config_);
}

// One call per pass, not per packet: each pass's per-packet work is inline
// in its own loop.
void Forwarder::process(PortRole from, PacketView* pkts, Verdict* verdicts, unsigned n, LcoreCounters& counters,
                        std::uint64_t checksum_verified) noexcept {
    if (known_nodes_.generation() != table_.nexthop_generation()) [[unlikely]]
        refresh_nexthops();

    // A NIC writes frames to memory (or the LLC), not to L1: ask for every
    // header of the burst before the first is read (a whole burst is
    // cheaper to issue than a prefetch a few packets ahead, and as early).
    for (unsigned i = 0; i < n; ++i)
        __builtin_prefetch(pkts[i].data + EtherHdr::kSize);

    // Pass 1: parse, validate, decapsulate (input.cc).
    const unsigned lookups = parse(from, pkts, verdicts, n, counters, checksum_verified);
    // Pass 2: one bulk lookup.
    table_.lookup_bulk(dst_, ids_, lookups);
    // Pass 3: rewrite by next hop (output.cc).
    rewrite(pkts, verdicts, lookups, counters);
}

}  // namespace podfwd::dp
