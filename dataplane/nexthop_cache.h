// Per forwarder (per lcore): every next hop's headers, ready to copy in
// front of a packet. The burst loop reads one entry by next-hop id instead
// of the id → record map and the record behind it, and writes a host-gw
// Ethernet header, an IPIP outer header or VXLAN's 64 bytes (outer Ethernet,
// IPv4, UDP, VXLAN and the inner Ethernet header) as a few wide stores, then
// patches the per-packet fields (lengths, IP ID, TOS and DF, the UDP source
// port) and folds a checksum summed in advance over the constant fields.
//
// The templates live here, not in the shared records: they hold this
// dataplane's own addresses (uplink and VTEP MACs, the VXLAN port and VNI),
// which the table's writer does not own. They are copies: built from a
// record when the table's next-hop generation moves, nothing in them points
// into the table, so they need no grace period. An entry keeps a copy of
// the record it was built from, so a refresh rewrites only ids whose record
// changed.
#pragma once

#include <array>
#include <cstdint>
#include <cstddef>
#include <memory>
#include <vector>

#include "lpm/reader.h"

namespace podfwd::dp {

struct NodeConfig;

// What the burst loop can do for a next hop without reading its record.
// kSlow (0, what a zero entry reads as) is everything else: no route, a
// deleted id, a blackhole, a record without a MAC (the resolver's), the
// connected route; those take the general path, which reads the record and
// gives the exact verdict.
enum class FastKind : std::uint8_t { kSlow = 0, kHostGw, kIpip, kVxlan, kLocal };

struct alignas(64) FastNextHop {
    FastKind kind = FastKind::kSlow;
    std::uint8_t reserved_ = 0;
    // IPv4 header checksum of the template's outer header with its
    // per-packet fields zero (length, ID, TOS, DF), summed and folded but not
    // complemented: add the per-packet fields, fold, complement.
    std::uint16_t outer_sum = 0;
    std::uint32_t reserved2_ = 0;
    // host-gw and local: the 14-byte Ethernet header; IPIP: Ethernet and the
    // outer IPv4 header (34 bytes); VXLAN: the 50 outer bytes and the inner
    // Ethernet header (64). host-gw and IPIP read one cache line with kind.
    alignas(16) std::array<std::uint8_t, 64> headers{};
    // The record this entry was built from, compared whole at refresh: a
    // record index alone could have been freed and reused for other contents
    // while this lcore was idle.
    lpm::NextHop source{};
};
static_assert(sizeof(FastNextHop) == 128);
static_assert(sizeof(FastNextHop) == 128);

// Unmaps NextHopCache's entries (an anonymous mapping of `bytes`).
struct UnmapEntries {
    std::size_t bytes = 0;
    void operator()(FastNextHop* p) const noexcept;
};

class NextHopCache {
public:
    // Room for ids 0..max_nexthops; memory is taken only for ids in use
    // (an anonymous mapping's zero pages: a zero entry is kSlow).
    void reserve(std::uint32_t max_nexthops);
    // Rebuilds the entries whose record changed since they were built.
    // Runs on the forwarding lcore when the table's next-hop generation
    // moved; no allocation.
    void refresh(const lpm::TableView& table, const NodeConfig& config) noexcept;

    // The entries as plain values, for a burst loop to hold in registers
    // (members would be reloaded after every packet byte stored).
    struct Entries {
        const FastNextHop* entries;
        std::uint32_t max_id;
        // The entry of `id`, whatever the id (a lookup on a corrupt segment
        // may answer any value): past the table's ids, entry 0 (kSlow).
        [[gnu::always_inline]] const FastNextHop& get(lpm::NextHopId id) const noexcept {
            return entries[id <= max_id ? id : 0];
        }
    };
    Entries entries() const noexcept { return {entries_.get(), max_id_}; }
    const FastNextHop& get(lpm::NextHopId id) const noexcept { return entries().get(id); }
    std::uint64_t generation() const noexcept { return generation_; }

private:
    std::unique_ptr<FastNextHop[], UnmapEntries> entries_;
    // Which entries hold a record: a refresh reads only those entries, so
    // ids never used stay untouched zero pages.
    std::vector<bool> built_;
    std::uint32_t max_id_ = 0;
    std::uint64_t generation_ = ~std::uint64_t{0};
};

// The entry for one record, as refresh() builds it (for tests).
FastNextHop build_fast_nexthop(const lpm::NextHop& nh, const NodeConfig& config) noexcept;

}  // namespace podfwd::dp
