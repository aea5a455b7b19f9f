// The burst (Forwarder::process) in one pass, and the names of the
// counters. What the pass calls out of line: input.cc (frames that are not
// plain IPv4 for us, decapsulation) and output.cc (next hops without a
// template).
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

// Each packet in one pass: plain IPv4 (EtherType, version/IHL, lengths,
// checksum; on the uplink our MAC first), decapsulated first where
// tunnelled to the node, one lookup, the rewrite from its next hop's
// template, no arrays between the steps. The lookup is the single one: the
// loop's iterations are independent, so their loads are in flight together
// as a bulk lookup's are. Anything else takes a call for its exact verdict.
// Compiled per port role (the uplink checks destination MACs and
// decapsulates) and with and without the NIC's checksum verdicts.
template <bool kUplink, bool kNicChecksums>
void Forwarder::forward_burst(PacketView* pkts, Verdict* verdicts, unsigned n, LcoreCounters& counters,
                              std::uint64_t checksum_verified) noexcept {
    using namespace detail;
    const lpm::TrieView trie = table_.trie();
    const NextHopCache::Entries cache = cache_.entries();
    const Ipv4Addr node_ip = config_.node_ip;
    const std::uint64_t mac_key = uplink_mac_key_;
    OutputBurst burst{config_.mtu, next_ip_id_};
    // Decapsulations and packets for the kernel, counted once per burst.
    std::uint32_t to_node_steps[4] = {};
    for (unsigned i = 0; i < n; ++i) {
        PacketView& p = pkts[i];
        if (!plain_ipv4(p, kNicChecksums && ((checksum_verified >> i) & 1), kUplink ? kMacMask : 0, mac_key))
            [[unlikely]] {
            verdicts[i] = rejected(kUplink ? PortRole::kUplink : PortRole::kHost, p, counters);
            continue;
        }
        p.len = EtherHdr::kSize + ip_of(p).length();   // drop Ethernet padding
        bool decapsulated = false;
        if (kUplink && ip_of(p).destination() == node_ip) {
            // Decapsulated in place (to_node sets the inner frame's length)
            // and forwarded by the inner destination, or the kernel's, or
            // dropped.
            const Step step = to_node(p, counters);
            ++to_node_steps[static_cast<unsigned>(step)];
            if (step > Step::kVxlanDecapped) {
                verdicts[i] = step == Step::kToHost ? Verdict::kHost : Verdict::kDrop;
                continue;
            }
            decapsulated = true;
        }
        const lpm::NextHopId id = trie.lookup(ip_of(p).destination());
        const FastNextHop& f = cache.get(id);
        // A decapsulated header's checksum, only where we forward it again:
        // the kernel verifies what it is given.
        if (kUplink && decapsulated && f.kind != FastKind::kLocal && !ipv4_header_checksum_ok(&ip_of(p)))
            [[unlikely]] {
            counters.count(Drop::kBadChecksum);
            verdicts[i] = Verdict::kDrop;
            continue;
        }
        if (output_from_template(p, f, burst, verdicts[i])) [[likely]]
            continue;
        next_ip_id_ = burst.ip_id;
        verdicts[i] = general(p, id, counters);
        burst.ip_id = next_ip_id_;
    }
    next_ip_id_ = burst.ip_id;
    burst.add_to(counters);
    if (kUplink) {
        const auto steps = [&](Step s) { return to_node_steps[static_cast<unsigned>(s)]; };
        counters.actions[static_cast<unsigned>(Action::kIpipDecap)] += steps(Step::kIpipDecapped);
        counters.actions[static_cast<unsigned>(Action::kVxlanDecap)] += steps(Step::kVxlanDecapped);
        counters.actions[static_cast<unsigned>(Action::kToHost)] += steps(Step::kToHost);
    }
}

void Forwarder::process(PortRole from, PacketView* pkts, Verdict* verdicts, unsigned n, LcoreCounters& counters,
                        std::uint64_t checksum_verified) noexcept {
    if (known_nodes_.generation() != table_.nexthop_generation()) [[unlikely]]
        refresh_nexthops();

    // A NIC writes frames to memory (or the LLC), not to L1: ask for every
    // header of the burst before the first is read (a whole burst is
    // cheaper to issue than a prefetch a few packets ahead, and as early).
    for (unsigned i = 0; i < n; ++i)
        __builtin_prefetch(pkts[i].data + EtherHdr::kSize);

    if (from == PortRole::kUplink) {
        if (checksum_verified == 0)
            forward_burst<true, false>(pkts, verdicts, n, counters, 0);
        else
            forward_burst<true, true>(pkts, verdicts, n, counters, checksum_verified);
    } else {
        if (checksum_verified == 0)
            forward_burst<false, false>(pkts, verdicts, n, counters, 0);
        else
            forward_burst<false, true>(pkts, verdicts, n, counters, checksum_verified);
    }
}

}  // namespace podfwd::dp
