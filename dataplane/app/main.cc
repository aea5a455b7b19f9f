// podfwd-dataplane [EAL args] -- [options]: the DPDK poll-mode forwarder.
//
// Start-up order: options (fail fast, before the EAL), EAL, ports (checked,
// configured), the counters segment, then wait for the route table (the
// control plane may start later), start the ports and run one poll loop per
// forwarding lcore until a terminating signal (SIGINT, SIGTERM, SIGHUP, ...).
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <memory>
#include <optional>
#include <string_view>
#include <thread>
#include <vector>

#include "dataplane/app/mac.h"
#include "dataplane/app/neigh_segment.h"
#include "dataplane/app/options.h"
#include "dataplane/app/port.h"
#include "dataplane/app/stats_segment.h"
#include "dataplane/app/worker.h"
#include "lpm/reader.h"

namespace podfwd::dp::app {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;
constexpr auto kTablePollInterval = std::chrono::milliseconds(100);

// Other lcores' packets for the resolver's (unresolved next hops, the
// uplink's ARP): a few bursts' worth; past it they are counted resolver_busy.
constexpr unsigned kResolverRingSize = 1024;

struct RingDeleter {
    void operator()(rte_ring* ring) const noexcept { rte_ring_free(ring); }
};
using RingPtr = std::unique_ptr<rte_ring, RingDeleter>;

std::atomic<bool> g_stop{false};
static_assert(std::atomic<bool>::is_always_lock_free, "used from a signal handler");

extern "C" void on_signal(int) { g_stop.store(true); }

// Every signal whose default would end the process without stopping the
// ports or removing the segments ends the loops instead. SIGPIPE is
// ignored: a closed stdout must not take the dataplane down (the final
// counters' write then just fails).
void install_signal_handlers() {
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    for (const int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2})
        sigaction(sig, &sa, nullptr);
    signal(SIGPIPE, SIG_IGN);
}

int usage_error(const std::string& message) {
    std::fprintf(stderr, "podfwd-dataplane: %s\n", message.c_str());
    return kExitUsage;
}

// Polls until the control plane has created the table; nullopt if signalled
// first or if the segment is unusable (then `error` is set).
std::optional<lpm::TableView> wait_for_table(const std::string& name, bool& error) {
    bool logged = false;
    while (!g_stop.load()) {
        auto view = lpm::TableView::open(name);
        if (view)
            return std::move(*view);
        if (view.error().code != Errc::kNotFound && view.error().code != Errc::kNotReady) {
            spdlog::error("route table /dev/shm/{}: {}", name, view.error().message);
            error = true;
            return std::nullopt;
        }
        if (!logged) {
            spdlog::info("waiting for the route table /dev/shm/{} (polling every {} ms)", name,
                         kTablePollInterval.count());
            logged = true;
        }
        std::this_thread::sleep_for(kTablePollInterval);
    }
    return std::nullopt;
}

void print_final_counters(StatsSegment& stats) {
    LcoreCounters sum{};
    for (unsigned l = 0; l < stats.lcores(); ++l) {
        const LcoreStats& s = stats.lcore(l);
        for (unsigned r = 0; r < kPortRoles; ++r) {
            sum.rx_packets[r] += s.counters.rx_packets[r];
            sum.tx_packets[r] += s.counters.tx_packets[r];
            sum.tx_dropped[r] += s.counters.tx_dropped[r];
        }
        for (unsigned a = 0; a < sum.actions.size(); ++a)
            sum.actions[a] += s.counters.actions[a];
        for (unsigned d = 0; d < sum.drops.size(); ++d)
            sum.drops[d] += s.counters.drops[d];
    }
    constexpr const char* kRoleNames[] = {"uplink", "host"};
    std::printf("podfwd-dataplane: final counters\n");
    for (unsigned r = 0; r < kPortRoles; ++r)
        std::printf("  %-6s rx %llu tx %llu tx_dropped %llu\n", kRoleNames[r],
                    static_cast<unsigned long long>(sum.rx_packets[r]),
                    static_cast<unsigned long long>(sum.tx_packets[r]),
                    static_cast<unsigned long long>(sum.tx_dropped[r]));
    for (unsigned a = 0; a < sum.actions.size(); ++a)
        if (sum.actions[a] != 0)
            std::printf("  action %s %llu\n", action_name(static_cast<Action>(a)),
                        static_cast<unsigned long long>(sum.actions[a]));
    for (unsigned d = 0; d < sum.drops.size(); ++d)
        if (sum.drops[d] != 0)
            std::printf("  drop %s %llu\n", drop_name(static_cast<Drop>(d)),
                        static_cast<unsigned long long>(sum.drops[d]));
    std::fflush(stdout);
}

// Everything after rte_eal_init; its locals are destroyed (ports stopped and
// closed, pool freed, segment unlinked) before main calls rte_eal_cleanup.
int run(const Options& options) {
    auto config = resolve_ports(options);
    if (!config)
        return usage_error(config.error().message);

    // One RX and one TX queue per forwarding lcore on each port: as many
    // lcores as both ports have queues for (vdevs often have one).
    auto uplink_limits = port_limits(options.uplink_port);
    auto host_limits = port_limits(options.host_port);
    if (!uplink_limits || !host_limits) {
        spdlog::error("{}", (!uplink_limits ? uplink_limits.error() : host_limits.error()).message);
        return kExitFailure;
    }
    if (!options.host_mac && host_limits->driver != "net_tap")
        spdlog::warn("--host-mac not given: using the host port's own MAC {}, right only for net_tap ({})",
                     format_mac(config->host_mac), host_limits->driver);
    const unsigned queues = std::min({rte_lcore_count(), unsigned{uplink_limits->max_rx_queues},
                                      unsigned{uplink_limits->max_tx_queues}, unsigned{host_limits->max_rx_queues},
                                      unsigned{host_limits->max_tx_queues}});
    if (queues == 0) {
        spdlog::error("a port has no RX or TX queue");
        return kExitFailure;
    }
    if (queues < rte_lcore_count())
        spdlog::warn("{} lcores but the ports have {} queue(s): {} lcore(s) stay idle", rte_lcore_count(), queues,
                     rte_lcore_count() - queues);
    std::vector<unsigned> lcores{rte_get_main_lcore()};
    unsigned lcore_id;
    RTE_LCORE_FOREACH_WORKER(lcore_id) {
        if (lcores.size() < queues)
            lcores.push_back(lcore_id);
    }

    auto stats = StatsSegment::create(options.table, queues);
    if (!stats) {
        spdlog::error("counters: {}", stats.error().message);
        return kExitFailure;
    }
    spdlog::info("counters in {}", stats->path());

    const NeighbourConfig neighbour_config{};
    auto neighbours = NeighSegment::create(options.table, neighbour_config.entries);
    if (!neighbours) {
        spdlog::error("neighbours: {}", neighbours.error().message);
        return kExitFailure;
    }
    spdlog::info("neighbours in {}", neighbours->path());

    // The resolver keeps mbufs too: those it holds and those in its ring.
    auto pool = make_mbuf_pool(kPortRoles, queues, queues,
                               neighbour_config.hold_total + (queues > 1 ? kResolverRingSize : 0));
    if (!pool) {
        spdlog::error("{}", pool.error().message);
        return kExitFailure;
    }
    std::vector<Port> ports;
    for (std::uint16_t id : {options.uplink_port, options.host_port}) {
        auto port = Port::configure(id, static_cast<std::uint16_t>(queues), pool->get(), options.mtu);
        if (!port) {
            spdlog::error("{}", port.error().message);
            return kExitFailure;
        }
        ports.push_back(std::move(*port));
    }

    stats->set_state(RunState::kWaitingForTable);
    bool table_error = false;
    auto table = wait_for_table(options.table, table_error);
    if (!table) {
        stats->set_state(RunState::kStopped);
        if (table_error)
            return kExitFailure;
        spdlog::info("signalled while waiting for the route table; exiting");
        return kExitOk;
    }
    spdlog::info("route table /dev/shm/{}: {} routes, {} next hops", options.table, table->stats().routes,
                 table->stats().nexthops);

    for (Port& port : ports)
        if (auto started = port.start(); !started) {
            spdlog::error("{}", started.error().message);
            return kExitFailure;
        }

    RingPtr to_resolver;
    if (lcores.size() > 1) {
        to_resolver.reset(rte_ring_create("podfwd_resolver", kResolverRingSize, rte_socket_id(), RING_F_SC_DEQ));
        if (!to_resolver) {
            spdlog::error("cannot create the resolver's ring: {}", rte_strerror(rte_errno));
            return kExitFailure;
        }
    }

    std::atomic<bool> failed{false};
    std::vector<WorkerContext> contexts(lcores.size());
    for (unsigned i = 0; i < lcores.size(); ++i) {
        LcoreStats& s = stats->lcore(i);
        s.lcore_id = lcores[i];
        s.queue = i;
        contexts[i] = WorkerContext{&*table, *config, {options.uplink_port, options.host_port},
                                    static_cast<std::uint16_t>(i), options.burst, options.icmp_rate,
                                    options.icmp_burst, &s, i == 0 ? &*neighbours : nullptr,
                                    neighbour_config, pool->get(), to_resolver.get(), &g_stop, &failed};
    }
    spdlog::info("forwarding on {} lcore(s): node {} mac {} (uplink port {}, host port {} to {})", lcores.size(),
                 format_ipv4(config->node_ip), format_mac(config->uplink_mac), options.uplink_port,
                 options.host_port, format_mac(config->host_mac));
    stats->set_state(RunState::kRunning);
    for (unsigned i = 1; i < lcores.size(); ++i)
        if (const int rc = rte_eal_remote_launch(worker_main, &contexts[i], lcores[i]); rc != 0) {
            spdlog::error("cannot launch lcore {}: {}", lcores[i], rte_strerror(-rc));
            g_stop.store(true);
            failed.store(true);
        }
    worker_main(&contexts[0]);   // the main lcore forwards too (and resolves)
    rte_eal_mp_wait_lcore();
    if (to_resolver) {
        void* left = nullptr;
        while (rte_ring_sc_dequeue(to_resolver.get(), &left) == 0) {
            rte_pktmbuf_free(static_cast<rte_mbuf*>(left));
            stats->lcore(0).counters.count(Drop::kHeldAtExit);
        }
    }

    for (Port& port : ports)
        port.stop();
    stats->set_state(RunState::kStopped);
    print_final_counters(*stats);
    return failed.load() ? kExitFailure : kExitOk;
}

}  // namespace
}  // namespace podfwd::dp::app

int main(int argc, char** argv) {
    using namespace podfwd::dp::app;
    // EAL arguments before "--", ours after it. Ours are checked first so a
    // typo costs no EAL start-up.
    int eal_argc = argc;
    for (int i = 1; i < argc; ++i)
        if (std::string_view(argv[i]) == "--") {
            eal_argc = i;
            break;
        }
    const bool lone_help = eal_argc == 2 && (std::string_view(argv[1]) == "--help" || std::string_view(argv[1]) == "-h");
    std::vector<char*> app_argv{argv[0]};
    for (int i = eal_argc + 1; i < argc; ++i)
        app_argv.push_back(argv[i]);
    if (lone_help)
        app_argv.push_back(argv[1]);
    auto parsed = parse_options(static_cast<int>(app_argv.size()), app_argv.data());
    if (!parsed)
        return usage_error(parsed.error().message);
    if (parsed->help) {
        std::printf("%s", usage_text().c_str());
        return kExitOk;
    }

    install_signal_handlers();
    if (rte_eal_init(eal_argc, argv) < 0) {
        std::fprintf(stderr, "podfwd-dataplane: EAL initialisation failed: %s\n", rte_strerror(rte_errno));
        return kExitFailure;
    }
    const int rc = run(parsed->options);
    rte_eal_cleanup();
    return rc;
}
