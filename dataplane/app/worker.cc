#include "dataplane/app/worker.h"

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <spdlog/spdlog.h>
#include <ctime>

#include <algorithm>
#include <random>

#include "dataplane/exception.h"

namespace podfwd::dp::app {

namespace {

// Idle back-off, as grout's main loop: spin while traffic may be arriving,
// then sleep for a growing interval so an idle dataplane leaves the core to
// others (two instances share a 2-core machine). The cap bounds the latency
// added to the first packet after a lull.
constexpr unsigned kSpinsBeforeSleep = 256;
constexpr unsigned kMaxSleepUs = 500;

constexpr PortRole kRoles[] = {PortRole::kUplink, PortRole::kHost};

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
    // Punts, rare: which packets of the burst; the ICMP errors to route
    // (mbufs, views, verdicts of their one pass through the forwarder).
    std::uint8_t punted[kMaxBurst];
    rte_mbuf* routed[kMaxBurst];
    PacketView routed_views[kMaxBurst];
    Verdict routed_verdicts[kMaxBurst];
};

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
    }

    void run() noexcept {
        unsigned idle_polls = 0;
        unsigned sleep = 0;
        while (!ctx_.stop->load(std::memory_order_relaxed)) {
            unsigned received = 0;
            b_.tx_count[0] = b_.tx_count[1] = 0;
            for (PortRole role : kRoles)
                received += receive(role);
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
            const PacketView& p = b_.views[i];
            m->data_off = static_cast<std::uint16_t>(p.headroom);
            m->data_len = static_cast<std::uint16_t>(p.len);
            m->pkt_len = p.len;
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

    // The burst's punted packets through the exception path, out of the
    // burst loop (ARP, TTL expiry, DF over the MTU are rare). Each result is
    // queued for TX or appended to b_.dropped from `dropped` on; returns the
    // new drop count. ICMP errors to remote sources are routed by one more
    // pass of the forwarder, as if the kernel had sent them.
    [[gnu::noinline]] unsigned handle_punts(PortRole role, unsigned punted, unsigned dropped) noexcept {
        // One clock read per burst: the rate limit needs no finer grain.
        const std::uint64_t now_ns = tsc_to_ns(rte_get_tsc_cycles(), tsc_hz_);
        unsigned routed = 0;
        for (unsigned k = 0; k < punted; ++k) {
            const unsigned i = b_.punted[k];
            rte_mbuf* m = b_.rx[i];
            PacketView& p = b_.views[i];
            switch (exception_.handle(role, b_.verdicts[i], p, now_ns, counters_)) {
            case ExceptionResult::kToUplink:
                send(PortRole::kUplink, m, p);
                break;
            case ExceptionResult::kToHost:
                send(PortRole::kHost, m, p);
                break;
            case ExceptionResult::kDrop:
                b_.dropped[dropped++] = m;
                break;
            case ExceptionResult::kRoute:
                b_.routed[routed] = m;
                b_.routed_views[routed++] = p;
                break;
            }
        }
        if (routed == 0)
            return dropped;
        forwarder_.process(PortRole::kHost, b_.routed_views, b_.routed_verdicts, routed, counters_);
        for (unsigned i = 0; i < routed; ++i) {
            rte_mbuf* m = b_.routed[i];
            PacketView& p = b_.routed_views[i];
            Verdict v = b_.routed_verdicts[i];
            // A second punt ends here, whatever the exception path says:
            // nothing goes round again. Routed ICMP errors are small (at
            // most 96 bytes of IP), TTL 64 and DF clear, and are never
            // answered with an error (RFC 1812 4.3.2.7); the node's own
            // TTL-1 packet, passed on, may still be over the MTU with DF
            // set: its fragmentation needed goes to the kernel.
            if (is_punt(v)) [[unlikely]] {
                const ExceptionResult again = exception_.handle(PortRole::kHost, v, p, now_ns, counters_);
                v = again == ExceptionResult::kToUplink ? Verdict::kUplink
                    : again == ExceptionResult::kToHost ? Verdict::kHost
                                                         : Verdict::kDrop;
            }
            if (v == Verdict::kDrop)
                b_.dropped[dropped++] = m;
            else
                send(v == Verdict::kUplink ? PortRole::kUplink : PortRole::kHost, m, p);
        }
        return dropped;
    }

    // Queues `m` for TX on `to` with the view's bounds.
    void send(PortRole to, rte_mbuf* m, const PacketView& p) noexcept {
        m->data_off = static_cast<std::uint16_t>(p.headroom);
        m->data_len = static_cast<std::uint16_t>(p.len);
        m->pkt_len = p.len;
        const auto t = static_cast<unsigned>(to);
        b_.tx[t][b_.tx_count[t]++] = m;
    }

    void transmit(PortRole role) noexcept {
        const auto r = static_cast<unsigned>(role);
        const unsigned n = b_.tx_count[r];
        if (n == 0)
            return;
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
