#include "dataplane/resolver.h"

#include <algorithm>

#include "dataplane/proto/arp.h"
#include "dataplane/proto/ipv4.h"

namespace podfwd::dp {

using namespace proto;

namespace {

ResolveOutcome from_verdict(Verdict v) noexcept {
    return v == Verdict::kUplink ? ResolveOutcome::kToUplink
           : v == Verdict::kHost ? ResolveOutcome::kToHost
                                 : ResolveOutcome::kDrop;
}

Drop refused(HoldOutcome o) noexcept {
    switch (o) {
    case HoldOutcome::kQueueFull: return Drop::kHoldQueueFull;
    case HoldOutcome::kTableFull: return Drop::kNeighbourTableFull;
    case HoldOutcome::kFailed: return Drop::kNeighbourFailed;
    default: return Drop::kUnresolvedNextHop;   // no L2 IP; kResolved cannot follow resolve() without a MAC
    }
}

}  // namespace

// ---- Pending ----

template <typename T>
std::span<T> Resolver::Pending<T>::room() noexcept {
    if (head != 0) {
        std::copy(buffer.begin() + static_cast<std::ptrdiff_t>(head), buffer.begin() + static_cast<std::ptrdiff_t>(tail),
                  buffer.begin());
        tail -= head;
        head = 0;
    }
    return std::span<T>(buffer).subspan(tail);
}

template <typename T>
bool Resolver::Pending<T>::push(const T& v) noexcept {
    if (tail == buffer.size() && room().empty())
        return false;
    buffer[tail++] = v;
    return true;
}

template <typename T>
std::size_t Resolver::Pending<T>::take(std::span<T> out) noexcept {
    const std::size_t n = std::min(out.size(), size());
    std::copy_n(buffer.begin() + static_cast<std::ptrdiff_t>(head), n, out.begin());
    head += n;
    if (head == tail)
        head = tail = 0;
    return n;
}

// ---- Resolver ----

Resolver::Resolver(const NodeConfig& config, const lpm::TableView& table, Forwarder& forwarder,
                   ExceptionPath& exception, const NeighbourConfig& neighbour, std::uint64_t tick_ns)
    : config_(config), table_(table), forwarder_(forwarder), exception_(exception), cache_(neighbour),
      tick_ns_(tick_ns) {
    // Every entry may want a request in one tick; every handle may be
    // released or freed at once, and as many held again meanwhile.
    requests_.reserve(neighbour.entries + 64);
    released_.reserve(2 * std::size_t{neighbour.hold_total} + neighbour.hold_per_neighbour);
    freed_.reserve(2 * std::size_t{neighbour.hold_total} + neighbour.hold_per_neighbour);
    failed_.resize(neighbour.entries);
    wanted_.reserve(table.capacity().max_nexthops);
}

void Resolver::request(const std::optional<ArpRequest>& r) noexcept {
    // A request lost to a full buffer is the retransmission's to repeat.
    if (r)
        requests_.push(*r);
}

std::size_t Resolver::write_request(std::uint8_t* frame, const ArpRequest& r) const noexcept {
    // Target MAC zero even when unicast, as Linux sends its probes.
    return write_arp(frame, r.dst, kArpOpRequest, config_.uplink_mac, config_.node_ip, MacAddr{}, r.target);
}

std::size_t Resolver::write_announcement(std::uint8_t* frame) const noexcept {
    return write_gratuitous_arp(frame, config_.uplink_mac, config_.node_ip);
}

// ARP from the uplink about a tracked neighbour: its MAC, and held packets
// to send. Only a reply addressed to us confirms reachability.
bool Resolver::learn(const PacketView& pkt, std::uint64_t now_ns) noexcept {
    const ArpHdr* arp = arp_of_frame(pkt.data, pkt.len);
    if (arp == nullptr || arp->sender_ip() == config_.node_ip)
        return false;
    const bool reply_to_us = arp->opcode() == kArpOpReply && arp->target_ip() == config_.node_ip &&
                             same_mac(reinterpret_cast<const EtherHdr*>(pkt.data)->dst, config_.uplink_mac);
    const std::span<std::uintptr_t> room = released_.room();
    const ArpUpdate u = cache_.on_arp(arp->sender_ip(), arp->sender_mac, now_ns, reply_to_us, room);
    released_.commit(u.released);
    if (u.updated)
        ++version_;
    return u.updated;
}

ResolveOutcome Resolver::handle(PortRole from, Verdict punt, PacketView& pkt, std::uintptr_t handle,
                                std::uint64_t now_ns, LcoreCounters& counters) noexcept {
    if (punt == Verdict::kPuntUnresolved)
        return unresolved(pkt, handle, now_ns, counters, false);
    if (punt == Verdict::kPuntArp) {
        // From the host port: the kernel's ARP, nothing about the wire.
        const bool learned = from == PortRole::kUplink && learn(pkt, now_ns);
        return outcome_of(exception_.arp(from, pkt, counters, learned));
    }
    return outcome_of(exception_.handle(from, punt, pkt, now_ns, counters));
}

ResolveOutcome Resolver::release(PacketView& pkt, std::uintptr_t handle, std::uint64_t now_ns,
                                 LcoreCounters& counters) noexcept {
    return unresolved(pkt, handle, now_ns, counters, true);
}

// The packet is plain IPv4 (the fast path checked it) with its Ethernet
// header as received. Looked up again: the table may have changed since.
ResolveOutcome Resolver::unresolved(PacketView& pkt, std::uintptr_t handle, std::uint64_t now_ns,
                                    LcoreCounters& counters, bool released) noexcept {
    const Ipv4Addr dst = reinterpret_cast<const Ipv4Hdr*>(pkt.data + EtherHdr::kSize)->destination();
    const lpm::NextHopId id = table_.lookup(dst);
    const lpm::NextHop* nh = table_.nexthop(id);
    if (nh == nullptr) {
        counters.count(id == lpm::kNoRoute ? Drop::kNoRoute : Drop::kNextHopGone);
        return ResolveOutcome::kDrop;
    }
    const bool needs_mac = (nh->mode == lpm::ForwardMode::kHostGw || nh->mode == lpm::ForwardMode::kIpip ||
                            nh->mode == lpm::ForwardMode::kVxlan) &&
                           (nh->connected() || !nh->mac_resolved());
    std::optional<MacAddr> mac;
    if (!needs_mac) {
        mac = nh->mac;   // resolved meanwhile (or no MAC needed): as the fast path would
    } else {
        const Ipv4Addr l2 = nh->connected() ? dst : nh->l2_nexthop();
        ResolveResult r = cache_.resolve(l2, now_ns);
        if (r.request) {
            request(r.request);
            ++version_;
        }
        mac = r.mac;
        if (!mac) {
            const HoldResult h = cache_.hold(l2, handle, now_ns);
            request(h.request);
            if (h.outcome != HoldOutcome::kHeld) {
                counters.count(refused(h.outcome));
                return ResolveOutcome::kDrop;
            }
            ++version_;
            return ResolveOutcome::kHeld;
        }
    }
    const Verdict v = forwarder_.finish(pkt, *nh, *mac, counters);
    if (released && v != Verdict::kDrop)
        counters.count(Action::kHeldSent);
    return from_verdict(v);
}

void Resolver::rebuild_nexthops() {
    nexthop_generation_ = table_.nexthop_generation();
    wanted_.clear();
    const std::uint32_t max = table_.capacity().max_nexthops;
    for (lpm::NextHopId id = 1; id <= max; ++id) {
        const lpm::NextHop* nh = table_.nexthop(id);
        if (nh == nullptr || nh->connected())
            continue;
        if (nh->mode != lpm::ForwardMode::kHostGw && nh->mode != lpm::ForwardMode::kIpip &&
            nh->mode != lpm::ForwardMode::kVxlan)
            continue;
        if (const Ipv4Addr l2 = nh->l2_nexthop(); l2 != 0)
            wanted_.push_back(Wanted{l2, nh->mac_resolved()});
    }
    // One entry per L2 IP, unresolved if any record naming it is.
    std::sort(wanted_.begin(), wanted_.end(),
              [](const Wanted& a, const Wanted& b) { return a.ip != b.ip ? a.ip < b.ip : a.resolved < b.resolved; });
    wanted_.erase(std::unique(wanted_.begin(), wanted_.end(),
                              [](const Wanted& a, const Wanted& b) { return a.ip == b.ip; }),
                  wanted_.end());
}

bool Resolver::tick(std::uint64_t now_ns, LcoreCounters& counters) noexcept {
    if (ticked_ && now_ns < next_tick_ns_)
        return false;
    ticked_ = true;
    next_tick_ns_ = now_ns + tick_ns_;
    if (table_.nexthop_generation() != nexthop_generation_)
        rebuild_nexthops();   // within the capacity reserved: no allocation
    for (const Wanted& w : wanted_) {
        // Unresolved: asked for now. Resolved: used, so probed once stale
        // (the fast path sends with the record's MAC without asking us);
        // a MAC that is not ours (static) is left alone.
        std::optional<ArpRequest> r = w.resolved ? cache_.resolve(w.ip, now_ns).request : cache_.want(w.ip, now_ns);
        if (r) {
            request(r);
            ++version_;
        }
    }
    // A full buffer stops the cache's tick; the next one carries on.
    for (int round = 0; round < 4; ++round) {
        const std::span<ArpRequest> requests = requests_.room();
        const std::span<std::uintptr_t> freed = freed_.room();
        const TickResult t = cache_.tick(now_ns, TickSpans{requests, failed_, freed});
        requests_.commit(t.requests);
        freed_.commit(t.freed);
        for (std::size_t i = 0; i < t.freed; ++i)
            counters.count(Drop::kNeighbourFailed);
        if (t.requests + t.failed + t.removed != 0)
            ++version_;
        if (t.complete)
            break;
    }
    return true;
}

void Resolver::flush(LcoreCounters& counters) noexcept {
    // Room for every held handle beside the freed ones not taken yet: the
    // cache erases an entry only when all its handles fit, so a short
    // buffer would never empty it. At exit an allocation is fine.
    freed_.room();
    if (freed_.buffer.size() < freed_.tail + cache_.held())
        freed_.buffer.resize(freed_.tail + cache_.held());
    NeighbourInfo some[16];
    while (cache_.size() != 0) {
        const std::size_t n = cache_.snapshot(0, some);
        for (std::size_t k = 0; k < n; ++k) {
            const std::span<std::uintptr_t> room = freed_.room();
            const EraseResult r = cache_.erase(some[k].ip, room);
            freed_.commit(r.freed);
            for (std::size_t i = 0; i < r.freed; ++i)
                counters.count(Drop::kHeldAtExit);
        }
    }
    ++version_;
}

std::size_t Resolver::take_requests(std::span<ArpRequest> out) noexcept { return requests_.take(out); }
std::size_t Resolver::take_released(std::span<std::uintptr_t> out) noexcept { return released_.take(out); }
std::size_t Resolver::take_freed(std::span<std::uintptr_t> out) noexcept { return freed_.take(out); }

}  // namespace podfwd::dp
