#include "dataplane/app/port.h"

#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <bit>
#include <utility>

#include "dataplane/proto/vxlan.h"

namespace podfwd::dp::app {

namespace {

constexpr std::uint16_t kRxDesc = 1024;
constexpr std::uint16_t kTxDesc = 1024;
constexpr unsigned kPoolCache = 256;

// VXLAN encapsulation prepends its outer headers in place.
static_assert(RTE_PKTMBUF_HEADROOM >= proto::kVxlanOverhead, "mbuf headroom too small for VXLAN");

Error dpdk_error(const std::string& what, int rc) {
    return Error{Errc::kSystem, what + ": " + rte_strerror(rc < 0 ? -rc : rc)};
}

}  // namespace

void MempoolDeleter::operator()(rte_mempool* pool) const noexcept { rte_mempool_free(pool); }

Result<MempoolPtr> make_mbuf_pool(unsigned ports, unsigned queues, unsigned lcores, unsigned kept) {
    const unsigned needed = ports * queues * (kRxDesc + kTxDesc) + lcores * (kPoolCache + 64) + kept + 1024;
    const unsigned n = std::max(8191u, std::bit_ceil(needed + 1) - 1);
    rte_mempool* pool =
        rte_pktmbuf_pool_create("podfwd_mbufs", n, kPoolCache, 0, RTE_MBUF_DEFAULT_BUF_SIZE, rte_socket_id());
    if (pool == nullptr)
        return dpdk_error("cannot create a pool of " + std::to_string(n) + " mbufs", rte_errno);
    spdlog::info("mbuf pool: {} mbufs of {} bytes", n, RTE_MBUF_DEFAULT_BUF_SIZE);
    return MempoolPtr(pool);
}

Result<PortLimits> port_limits(std::uint16_t port) {
    rte_eth_dev_info info{};
    if (const int rc = rte_eth_dev_info_get(port, &info); rc != 0)
        return dpdk_error("port " + std::to_string(port) + ": device info", rc);
    return PortLimits{info.max_rx_queues, info.max_tx_queues, info.driver_name ? info.driver_name : "?"};
}

Result<Port> Port::configure(std::uint16_t id, std::uint16_t queues, rte_mempool* pool, std::uint16_t mtu) {
    const std::string name = "port " + std::to_string(id);
    rte_eth_dev_info info{};
    if (const int rc = rte_eth_dev_info_get(id, &info); rc != 0)
        return dpdk_error(name + ": device info", rc);

    rte_eth_conf conf{};
    // The one RX offload: IPv4 header checksums verified by the NIC where it
    // can (the poll loop then tells the fast path which packets need no
    // software check: ip4-input-nochecksum in VPP). Without it (net_pcap,
    // the pcap tool) the fast path verifies every header itself.
    conf.rxmode.offloads = info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_IPV4_CKSUM;
    const std::uint64_t rss = info.flow_type_rss_offloads & (RTE_ETH_RSS_IP | RTE_ETH_RSS_UDP | RTE_ETH_RSS_TCP);
    if (queues > 1 && rss != 0) {
        conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
        conf.rx_adv_conf.rss_conf.rss_hf = rss;
    } else if (queues > 1) {
        spdlog::warn("{}: no RSS; only queue 0 will receive", name);
    }
    if (mtu >= info.min_mtu && mtu <= info.max_mtu)
        conf.rxmode.mtu = mtu;
    // Every mbuf comes from one pool with refcount 1: the PMD may free them fast.
    if (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE)
        conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE;

    if (const int rc = rte_eth_dev_configure(id, queues, queues, &conf); rc != 0)
        return dpdk_error(name + ": configure", rc);
    Port port(id);   // from here on the destructor closes it

    std::uint16_t rxd = kRxDesc;
    std::uint16_t txd = kTxDesc;
    if (const int rc = rte_eth_dev_adjust_nb_rx_tx_desc(id, &rxd, &txd); rc != 0)
        return dpdk_error(name + ": descriptor counts", rc);
    const int socket = rte_eth_dev_socket_id(id);
    rte_eth_rxconf rxconf = info.default_rxconf;
    rxconf.offloads = conf.rxmode.offloads;
    rte_eth_txconf txconf = info.default_txconf;
    txconf.offloads = conf.txmode.offloads;
    for (std::uint16_t q = 0; q < queues; ++q) {
        if (const int rc = rte_eth_rx_queue_setup(id, q, rxd, static_cast<unsigned>(socket), &rxconf, pool); rc != 0)
            return dpdk_error(name + ": RX queue " + std::to_string(q), rc);
        if (const int rc = rte_eth_tx_queue_setup(id, q, txd, static_cast<unsigned>(socket), &txconf); rc != 0)
            return dpdk_error(name + ": TX queue " + std::to_string(q), rc);
    }
    spdlog::info("{} ({}): {} queue(s), {} RX / {} TX descriptors{}{}", name, info.driver_name, queues, rxd, txd,
                 conf.rxmode.mq_mode == RTE_ETH_MQ_RX_RSS ? ", RSS" : "",
                 conf.rxmode.offloads & RTE_ETH_RX_OFFLOAD_IPV4_CKSUM ? ", IPv4 checksum offload" : "");
    return port;
}

Port::Port(Port&& other) noexcept
    : id_(other.id_), owned_(std::exchange(other.owned_, false)), started_(std::exchange(other.started_, false)) {}

Port::~Port() {
    if (!owned_)
        return;
    stop();
    rte_eth_dev_close(id_);
}

Status Port::start() {
    if (const int rc = rte_eth_dev_start(id_); rc != 0)
        return dpdk_error("port " + std::to_string(id_) + ": start", rc);
    started_ = true;
    // Both ports start promiscuous: the host port must take frames to any
    // pod's MAC. The uplink's worker turns it off again where the PMD can
    // filter by MAC (worker.cc, filter_uplink), as it knows the node MAC.
    if (const int rc = rte_eth_promiscuous_enable(id_); rc != 0)
        spdlog::warn("port {}: cannot enable promiscuous mode: {}", id_, rte_strerror(-rc));
    return ok();
}

void Port::stop() noexcept {
    if (!started_)
        return;
    started_ = false;
    if (const int rc = rte_eth_dev_stop(id_); rc != 0)
        spdlog::warn("port {}: stop: {}", id_, rte_strerror(-rc));
}

}  // namespace podfwd::dp::app
