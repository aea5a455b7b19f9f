#include "dataplane/app/worker.h"

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <spdlog/spdlog.h>
#include <ctime>

#include <algorithm>
#include <cstring>
#include <optional>
#include <random>

#include "dataplane/exception.h"
#include "dataplane/proto/arp.h"
#include "dataplane/proto/ether.h"
#include "dataplane/resolver.h"

namespace podfwd::dp::app {

namespace {

// Idle back-off, as grout's main loop: spin while traffic may be arriving,
// then sleep for a growing interval so an idle dataplane leaves the core to
// others (two instances share a 2-core machine). The cap bounds the latency
// added to the first packet after a lull.
constexpr unsigned kSpinsBeforeSleep = 256;
constexpr unsigned kMaxSleepUs = 500;

constexpr PortRole kRoles[] = {PortRole::kUplink, PortRole::kHost};

// The neighbour segment is rewritten when the resolver's state moved, at
// most this often (a burst of resolutions is one rewrite), and at least
// this often when nothing moved, so the ages readers see stay fresh.
constexpr std::uint64_t kPublishMinNs = 10'000'000;
constexpr std::uint64_t kPublishMaxNs = 1'000'000'000;
// How often the resolver's lcore checks that the route table's file is whole.
constexpr std::uint64_t kTableCheckNs = 100'000'000;
constexpr std::uint32_t kMinFrameSize = 60;   // Ethernet's minimum without the FCS: ARP frames are padded to it

// Each lcore numbers its outer IP IDs from its own random start, so lcores
// and restarts do not reuse each other's IDs toward the same peer.
NodeConfig with_random_ip_id(NodeConfig config) {
    config.outer_ip_id_start = static_cast<std::uint16_t>(std::random_device{}());
    return config;
}

// Whether the RX queue was set up to verify IPv4 header checksums
// (port.cc enables it where the PMD offers it).
bool verifies_ip_checksums(std::uint16_t port, std::uint16_t queue) noexcept {
    rte_eth_rxq_info info{};
    return rte_eth_rx_queue_info_get(port, queue, &info) == 0 &&
           (info.conf.offloads & RTE_ETH_RX_OFFLOAD_IPV4_CKSUM) != 0;
}

// The uplink receives only frames for the node, its broadcasts and
// multicasts, where the PMD can filter them: the fast path drops unicast to
// other MACs anyway (not_for_us), but the NIC doing it costs no CPU. The node
// MAC may not be the port's own (--node-mac): it is added as a secondary
// address first, and without that promiscuous mode stays on. Any failure
// only costs the filter, not correctness.
void filter_uplink(std::uint16_t port, const proto::MacAddr& node_mac) noexcept {
    rte_ether_addr own{};
    rte_ether_addr wanted{};
    std::copy(node_mac.begin(), node_mac.end(), wanted.addr_bytes);
    if (rte_eth_macaddr_get(port, &own) != 0 || !rte_is_same_ether_addr(&own, &wanted)) {
        if (const int rc = rte_eth_dev_mac_addr_add(port, &wanted, 0); rc != 0) {
            spdlog::debug("port {}: cannot add the node MAC ({}): staying promiscuous", port, rte_strerror(-rc));
            return;
        }
    }
    if (const int rc = rte_eth_allmulticast_enable(port); rc != 0)
        spdlog::debug("port {}: cannot enable all-multicast: {}", port, rte_strerror(-rc));
    if (const int rc = rte_eth_promiscuous_disable(port); rc != 0)
        spdlog::debug("port {}: cannot leave promiscuous mode ({}): the fast path drops frames not for us",
                      port, rte_strerror(-rc));
    else
        spdlog::info("port {} (uplink): promiscuous mode off", port);
}

void sleep_us(unsigned us) noexcept {
    timespec ts{0, static_cast<long>(us) * 1000};
    nanosleep(&ts, nullptr);
}

// The mbufs of one loop iteration, sorted by what happens to them.
struct Burst {
    rte_mbuf* rx[kMaxBurst];
    PacketView views[kMaxBurst];
    Verdict verdicts[kMaxBurst];
    // Both ports' RX can send to either port: room for two bursts per port.
    rte_mbuf* tx[kPortRoles][2 * kMaxBurst];
    unsigned tx_count[kPortRoles];
    rte_mbuf* dropped[kMaxBurst];
    // Punts, rare: which packets of the burst.
    std::uint8_t punted[kMaxBurst];
};

PacketView view_of(rte_mbuf* m) noexcept {
    return PacketView{static_cast<std::uint8_t*>(m->buf_addr) + m->data_off, m->data_len, m->data_off};
}

// The view's bounds into the mbuf: the fast path and the exception path
// move the frame's start (decapsulation, an ICMP error built in front) and
// its end (Ethernet padding dropped) in the view only. Before an mbuf is
// sent, or kept to be rebuilt with view_of() later (held, or handed over
// the ring).
void store_view(rte_mbuf* m, const PacketView& p) noexcept {
    m->data_off = static_cast<std::uint16_t>(p.headroom);
    m->data_len = static_cast<std::uint16_t>(p.len);
    m->pkt_len = p.len;
}


// TSC cycles to nanoseconds without overflow (cycles * 10^9 would wrap
// after a few seconds of uptime): whole seconds and the remainder apart.
std::uint64_t tsc_to_ns(std::uint64_t cycles, std::uint64_t hz) noexcept {
    return cycles / hz * 1'000'000'000 + cycles % hz * 1'000'000'000 / hz;
}

class Loop {
public:
    Loop(const WorkerContext& ctx, lpm::ReaderSlot& slot)
        : ctx_(ctx), slot_(slot), forwarder_(with_random_ip_id(ctx.config), *ctx.table),
          exception_(with_random_ip_id(ctx.config), *ctx.table, ctx.icmp_rate, ctx.icmp_burst),
          stats_(*ctx.stats), counters_(ctx.stats->counters), tsc_hz_(std::max<std::uint64_t>(rte_get_tsc_hz(), 1)) {
        for (unsigned r = 0; r < kPortRoles; ++r)
            checksum_offload_[r] = verifies_ip_checksums(ctx.ports[r], ctx.queue);
        if (ctx.neighbours != nullptr)
            resolver_.emplace(ctx.config, *ctx.table, forwarder_, exception_, ctx.neighbour);
    }

    void run() noexcept {
        unsigned idle_polls = 0;
        unsigned sleep = 0;
        if (resolver_)
            announce();
        while (!ctx_.stop->load(std::memory_order_relaxed)) {
            unsigned received = 0;
            for (PortRole role : kRoles)
                received += receive(role);
            if (resolver_)
                received += run_resolver();
            for (PortRole role : kRoles)
                transmit(role);
            // No pointer into the table survives the iteration.
            slot_.quiescent();

            if (received != 0) {
                ++stats_.busy_polls;
                idle_polls = 0;
                sleep = 0;
                continue;
            }
            if (++idle_polls < kSpinsBeforeSleep)
                continue;
            sleep = std::min(kMaxSleepUs, sleep == 0 ? 1 : sleep * 2);
            ++stats_.idle_sleeps;
            // Offline, the table's writer need not wait for us while we sleep.
            slot_.offline();
            sleep_us(sleep);
            slot_.online();
        }
        if (resolver_)
            stop_resolver();
    }

private:
    // One RX burst of `role`'s port through the fast path; returns how many
    // packets came in.
    unsigned receive(PortRole role) noexcept {
        const auto r = static_cast<unsigned>(role);
        const std::uint16_t n = rte_eth_rx_burst(ctx_.ports[r], ctx_.queue, b_.rx, static_cast<std::uint16_t>(ctx_.burst));
        if (n == 0)
            return 0;
        counters_.rx_packets[r] += n;

        unsigned kept = 0;
        unsigned dropped = 0;
        for (unsigned i = 0; i < n; ++i) {
            rte_mbuf* m = b_.rx[i];
            if (m->nb_segs != 1) [[unlikely]] {   // the fast path works on one contiguous buffer
                b_.dropped[dropped++] = m;
                counters_.count(Drop::kMultiSegment);
                continue;
            }
            b_.rx[kept] = m;
            b_.views[kept++] = PacketView{static_cast<std::uint8_t*>(m->buf_addr) + m->data_off, m->data_len, m->data_off};
        }
        // Headers the NIC found good skip the software checksum; BAD and
        // UNKNOWN are summed in software, which counts the exact reason.
        std::uint64_t verified = 0;
        if (checksum_offload_[r])
            for (unsigned i = 0; i < kept; ++i)
                verified |= std::uint64_t{(b_.rx[i]->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK) ==
                                          RTE_MBUF_F_RX_IP_CKSUM_GOOD}
                            << i;
        forwarder_.process(role, b_.views, b_.verdicts, kept, counters_, verified);

        // TX counts in locals: the stores into mbufs below could alias
        // b_.tx_count, which would chain every iteration through memory.
        unsigned to_uplink = b_.tx_count[static_cast<unsigned>(PortRole::kUplink)];
        unsigned to_host = b_.tx_count[static_cast<unsigned>(PortRole::kHost)];
        rte_mbuf** const uplink_tx = b_.tx[static_cast<unsigned>(PortRole::kUplink)];
        rte_mbuf** const host_tx = b_.tx[static_cast<unsigned>(PortRole::kHost)];
        unsigned punted = 0;
        for (unsigned i = 0; i < kept; ++i) {
            rte_mbuf* m = b_.rx[i];
            const Verdict v = b_.verdicts[i];
            if (v >= Verdict::kDrop) [[unlikely]] {
                // Punts wait for the end of the burst: the branch is the
                // drops' anyway, so forwarded packets pay nothing for them.
                if (is_punt(v))
                    b_.punted[punted++] = static_cast<std::uint8_t>(i);
                else
                    b_.dropped[dropped++] = m;
                continue;
            }
            // Encapsulation moved the start of the frame into the headroom
            // (decapsulation out of it): the view's headroom is the offset.
            store_view(m, b_.views[i]);
            if (v == Verdict::kUplink)
                uplink_tx[to_uplink++] = m;
            else
                host_tx[to_host++] = m;
        }
        b_.tx_count[static_cast<unsigned>(PortRole::kUplink)] = to_uplink;
        b_.tx_count[static_cast<unsigned>(PortRole::kHost)] = to_host;
        if (punted != 0) [[unlikely]]
            dropped = handle_punts(role, punted, dropped);
        if (dropped != 0)
            rte_pktmbuf_free_bulk(b_.dropped, dropped);
        return n;
    }

    // The burst's punted packets through the exception path (or the
    // resolver), out of the burst loop: ARP, TTL expiry, DF over the MTU and
    // unresolved next hops are rare. Each result is queued for TX, routed,
    // kept by the resolver, or appended to b_.dropped from `dropped` on;
    // returns the new drop count.
    [[gnu::noinline]] unsigned handle_punts(PortRole role, unsigned punted, unsigned dropped) noexcept {
        // One clock read per burst: the rate limit needs no finer grain.
        const std::uint64_t now_ns = clock_ns();
        for (unsigned k = 0; k < punted; ++k) {
            const unsigned i = b_.punted[k];
            rte_mbuf* m = b_.rx[i];
            PacketView& p = b_.views[i];
            const Verdict v = b_.verdicts[i];
            ResolveOutcome outcome;
            if (resolver_) {
                outcome = resolver_->handle(role, v, p, reinterpret_cast<std::uintptr_t>(m), now_ns, counters_);
            } else if (ctx_.to_resolver != nullptr &&
                       (v == Verdict::kPuntUnresolved || (v == Verdict::kPuntArp && role == PortRole::kUplink))) {
                // The resolver's lcore owns the neighbours: it answers and
                // learns from the uplink's ARP, and holds or finishes these.
                store_view(m, p);
                if (rte_ring_mp_enqueue(ctx_.to_resolver, m) == 0)
                    continue;
                counters_.count(Drop::kResolverBusy);
                outcome = ResolveOutcome::kDrop;
            } else {
                outcome = outcome_of(exception_.handle(role, v, p, now_ns, counters_));
            }
            if (outcome == ResolveOutcome::kDrop)
                b_.dropped[dropped++] = m;
            else
                dispatch(outcome, m, p, now_ns);
        }
        return dropped;
    }

    // A slow-path packet's outcome other than in a burst: sent, routed,
    // kept (held by the resolver) or freed (counted already).
    void dispatch(ResolveOutcome outcome, rte_mbuf* m, PacketView& p, std::uint64_t now_ns) noexcept {
        switch (outcome) {
        case ResolveOutcome::kToUplink:
            send(PortRole::kUplink, m, p);
            break;
        case ResolveOutcome::kToHost:
            send(PortRole::kHost, m, p);
            break;
        case ResolveOutcome::kRoute:
            route(m, p, now_ns);
            break;
        case ResolveOutcome::kHeld:
            store_view(m, p);   // rebuilt with view_of() when released
            break;
        case ResolveOutcome::kDrop:
            rte_pktmbuf_free(m);
            break;
        }
    }

    // An ICMP error (or the node's TTL-1 packet) the exception path made:
    // one pass of the forwarder from the host port, as if the kernel had
    // sent it. A second punt ends here, whatever the exception path says:
    // nothing goes round again. Routed ICMP errors are small, TTL 64 and DF
    // clear, and are never answered with an error (RFC 1812 4.3.2.7); the
    // node's own TTL-1 packet, passed on, may still be over the MTU with DF
    // set: its fragmentation needed goes to the kernel. A next hop without a
    // MAC goes to the resolver like any other packet.
    void route(rte_mbuf* m, PacketView& p, std::uint64_t now_ns) noexcept {
        Verdict v;
        forwarder_.process(PortRole::kHost, &p, &v, 1, counters_);
        ResolveOutcome outcome = v == Verdict::kUplink ? ResolveOutcome::kToUplink
                                 : v == Verdict::kHost ? ResolveOutcome::kToHost
                                                       : ResolveOutcome::kDrop;
        if (v == Verdict::kPuntUnresolved && resolver_) {
            outcome = resolver_->handle(PortRole::kHost, v, p, reinterpret_cast<std::uintptr_t>(m), now_ns, counters_);
        } else if (v == Verdict::kPuntUnresolved && ctx_.to_resolver != nullptr) {
            store_view(m, p);
            if (rte_ring_mp_enqueue(ctx_.to_resolver, m) == 0)
                return;
            counters_.count(Drop::kResolverBusy);
        } else if (is_punt(v)) {
            outcome = outcome_of(exception_.handle(PortRole::kHost, v, p, now_ns, counters_));
        }
        if (outcome == ResolveOutcome::kRoute)   // not twice
            outcome = ResolveOutcome::kDrop;
        dispatch(outcome, m, p, now_ns);
    }

    // ---- The resolver's lcore ----

    // RFC 5227's announcement of the node IP: peers that had our IP at
    // another MAC (a previous NIC, a failover) update their caches.
    void announce() noexcept {
        if (rte_mbuf* m = arp_frame()) {
            PacketView p = view_of(m);
            resolver_->write_announcement(p.data);
            counters_.count(Action::kArpRequest);
            send(PortRole::kUplink, m, p);
            transmit(PortRole::kUplink);   // the bursts' TX room stays whole
        }
    }

    // A zeroed minimum-size frame for ARP, or null when the pool is empty
    // (counted as an uplink TX drop: the retransmission repeats it).
    rte_mbuf* arp_frame() noexcept {
        rte_mbuf* m = rte_pktmbuf_alloc(ctx_.pool);
        if (m == nullptr) {
            ++counters_.tx_dropped[static_cast<unsigned>(PortRole::kUplink)];
            return nullptr;
        }
        auto* data = reinterpret_cast<std::uint8_t*>(rte_pktmbuf_append(m, kMinFrameSize));
        std::memset(data, 0, kMinFrameSize);
        return m;
    }

    // The other lcores' punts, the timers, and what they produced: ARP
    // requests to send, held packets to send or free. Returns how much
    // work there was (0 lets the loop go idle).
    unsigned run_resolver() noexcept {
        const std::uint64_t now_ns = clock_ns();
        unsigned work = 0;
        if (ctx_.to_resolver != nullptr) {
            const unsigned n = rte_ring_sc_dequeue_burst(ctx_.to_resolver, reinterpret_cast<void**>(ring_rx_),
                                                         kMaxBurst, nullptr);
            for (unsigned i = 0; i < n; ++i) {
                rte_mbuf* m = ring_rx_[i];
                PacketView p = view_of(m);
                const bool arp = p.len >= proto::EtherHdr::kSize &&
                                 reinterpret_cast<const proto::EtherHdr*>(p.data)->ether_type() == proto::kEtherTypeArp;
                const PortRole from = m->port == ctx_.ports[static_cast<unsigned>(PortRole::kUplink)]
                                          ? PortRole::kUplink
                                          : PortRole::kHost;
                dispatch(resolver_->handle(from, arp ? Verdict::kPuntArp : Verdict::kPuntUnresolved, p,
                                           reinterpret_cast<std::uintptr_t>(m), now_ns, counters_),
                         m, p, now_ns);
            }
            work += n;
        }
        resolver_->tick(now_ns, counters_);

        ArpRequest requests[16];
        while (const std::size_t n = resolver_->take_requests(requests)) {
            for (std::size_t i = 0; i < n; ++i)
                if (rte_mbuf* m = arp_frame()) {
                    PacketView p = view_of(m);
                    resolver_->write_request(p.data, requests[i]);
                    counters_.count(Action::kArpRequest);
                    send(PortRole::kUplink, m, p);
                }
            work += static_cast<unsigned>(n);
        }
        std::uintptr_t handles[kMaxBurst];
        while (const std::size_t n = resolver_->take_released(handles)) {
            for (std::size_t i = 0; i < n; ++i) {
                auto* m = reinterpret_cast<rte_mbuf*>(handles[i]);
                PacketView p = view_of(m);
                dispatch(resolver_->release(p, handles[i], now_ns, counters_), m, p, now_ns);
            }
            work += static_cast<unsigned>(n);
        }
        work += free_taken();

        const std::uint64_t since = now_ns - published_ns_;
        if ((resolver_->version() != published_version_ && since >= kPublishMinNs) || since >= kPublishMaxNs) {
            ctx_.neighbours->publish(resolver_->cache(), now_ns);
            published_version_ = resolver_->version();
            published_ns_ = now_ns;
        }
        if (now_ns - table_checked_ns_ >= kTableCheckNs) {
            table_checked_ns_ = now_ns;
            check_table();
        }
        return work;
    }

    // A table file truncated under us (a bug, another process) reads as
    // zeros, so every lookup misses: rather than drop everything quietly,
    // stop and let the supervisor start a dataplane that attaches afresh.
    void check_table() noexcept {
        if (!ctx_.table->truncated())
            return;
        spdlog::critical("the route table's file was truncated under the dataplane (a bug or another process); "
                         "stopping: a restarted podfwd-dataplane attaches to the table again");
        ctx_.failed->store(true);
        ctx_.stop->store(true);
    }

    // The packets the resolver gave up on (counted already).
    unsigned free_taken() noexcept {
        unsigned freed = 0;
        std::uintptr_t handles[kMaxBurst];
        while (const std::size_t n = resolver_->take_freed(handles)) {
            for (std::size_t i = 0; i < n; ++i)
                rte_pktmbuf_free(reinterpret_cast<rte_mbuf*>(handles[i]));
            freed += static_cast<unsigned>(n);
        }
        return freed;
    }

    // At exit: the held packets are freed (held_at_exit). The neighbours
    // stay published as they were until the segment goes: podfwd-control
    // keeps them until a new dataplane publishes. The ring's leftovers are
    // main's, once every lcore has stopped.
    void stop_resolver() noexcept {
        resolver_->flush(counters_);
        free_taken();
        std::uintptr_t handles[kMaxBurst];
        while (const std::size_t n = resolver_->take_released(handles))   // flush releases nothing; for safety
            for (std::size_t i = 0; i < n; ++i)
                rte_pktmbuf_free(reinterpret_cast<rte_mbuf*>(handles[i]));
        ArpRequest requests[16];
        while (resolver_->take_requests(requests) != 0) {
        }
    }

    std::uint64_t clock_ns() const noexcept { return tsc_to_ns(rte_get_tsc_cycles(), tsc_hz_); }

    // Queues `m` for TX on `to` with the view's bounds; a full TX buffer
    // (the slow path can add more than a burst: held packets released) is
    // sent first.
    void send(PortRole to, rte_mbuf* m, const PacketView& p) noexcept {
        store_view(m, p);
        const auto t = static_cast<unsigned>(to);
        if (b_.tx_count[t] == std::size(b_.tx[t])) [[unlikely]]
            transmit(to);
        b_.tx[t][b_.tx_count[t]++] = m;
    }

    void transmit(PortRole role) noexcept {
        const auto r = static_cast<unsigned>(role);
        const unsigned n = b_.tx_count[r];
        if (n == 0)
            return;
        b_.tx_count[r] = 0;
        const std::uint16_t sent =
            rte_eth_tx_burst(ctx_.ports[r], ctx_.queue, b_.tx[r], static_cast<std::uint16_t>(n));
        counters_.tx_packets[r] += sent;
        if (sent < n) {   // the TX ring is full: drop rather than stall RX
            counters_.tx_dropped[r] += n - sent;
            rte_pktmbuf_free_bulk(b_.tx[r] + sent, n - sent);
        }
    }

    const WorkerContext& ctx_;
    lpm::ReaderSlot& slot_;
    Forwarder forwarder_;
    ExceptionPath exception_;
    LcoreStats& stats_;
    LcoreCounters& counters_;
    std::uint64_t tsc_hz_;
    Burst b_{};
    std::array<bool, kPortRoles> checksum_offload_{};
    // The resolver's lcore only.
    std::optional<Resolver> resolver_;
    rte_mbuf* ring_rx_[kMaxBurst];
    std::uint64_t published_version_ = ~std::uint64_t{0};
    std::uint64_t published_ns_ = 0;
    std::uint64_t table_checked_ns_ = 0;
};

}  // namespace

int worker_main(void* context) {
    const auto& ctx = *static_cast<const WorkerContext*>(context);
    auto slot = ctx.table->register_reader();
    if (!slot) {
        spdlog::error("lcore {}: cannot register as a table reader: {}", ctx.stats->lcore_id, slot.error().message);
        ctx.failed->store(true);
        ctx.stop->store(true);   // the others stop too: half a dataplane is worse than none
        return -1;
    }
    // One lcore configures the port (ethdev control calls are not meant to
    // run on several threads at once).
    if (ctx.queue == 0)
        filter_uplink(ctx.ports[static_cast<unsigned>(PortRole::kUplink)], ctx.config.uplink_mac);
    Loop loop(ctx, *slot);
    loop.run();
    slot->offline();
    return 0;
}

}  // namespace podfwd::dp::app
