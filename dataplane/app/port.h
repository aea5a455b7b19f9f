// RAII owners of the DPDK resources: the mbuf pool and the configured ports.
// Destruction order matters (a port's queues hold mbufs of the pool): declare
// the pool before the ports that use it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/result.h"
#include "dataplane/proto/ether.h"

struct rte_mempool;

namespace podfwd::dp::app {

struct MempoolDeleter {
    void operator()(rte_mempool* pool) const noexcept;
};
using MempoolPtr = std::unique_ptr<rte_mempool, MempoolDeleter>;

// Enough mbufs to fill every RX and TX ring plus the lcore caches and
// `kept` more (held for neighbours, queued between lcores), and at least
// 8191 (the size rte_mempool likes best is 2^n - 1).
Result<MempoolPtr> make_mbuf_pool(unsigned ports, unsigned queues, unsigned lcores, unsigned kept);

// What a port can do, before it is configured.
struct PortLimits {
    std::uint16_t max_rx_queues;
    std::uint16_t max_tx_queues;
    std::string driver;
};
Result<PortLimits> port_limits(std::uint16_t port);

class Port {
public:
    // Configures `queues` RX and TX queues (RSS across them when the PMD
    // supports it), RX checksum offload off, MTU `mtu` where the PMD allows it.
    static Result<Port> configure(std::uint16_t id, std::uint16_t queues, rte_mempool* pool, std::uint16_t mtu);

    Port(Port&& other) noexcept;
    Port& operator=(Port&&) = delete;
    Port(const Port&) = delete;
    ~Port();

    // Starts the port and turns promiscuous mode on (frames to the node's
    // MAC as configured, which may not be the port's own).
    Status start();
    void stop() noexcept;
    std::uint16_t id() const noexcept { return id_; }

private:
    explicit Port(std::uint16_t id) noexcept : id_(id), owned_(true) {}

    std::uint16_t id_ = 0;
    bool owned_ = false;
    bool started_ = false;
};

}  // namespace podfwd::dp::app
