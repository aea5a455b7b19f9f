// The etcd route source: Flannel subnet leases or Calico IPAM blocks, read
// then watched, and (Flannel) this node's own lease, held and renewed.
//
// The contract every network source keeps with the daemon: a full snapshot
// (the source's every route), then changes. A snapshot comes after the first
// read and after every resynchronisation (a compacted watch); the daemon
// replaces the source's routes by their difference. While etcd cannot be
// reached nothing is withdrawn: the routes already learned stay.
//
// Watch semantics: a range read at revision R, then a watch from R+1, so no
// event is missed or applied twice; a broken stream resumes from the last
// revision applied (on the next endpoint, with capped exponential backoff and
// jitter); a watch whose start was compacted away triggers a full read whose
// difference is all that is applied.
//
// Asynchronous: the daemon polls fd() and calls dispatch() when it is readable.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "control/etcd/client.h"
#include "control/etcd/layouts.h"

namespace podfwd::control::etcd {

enum class LayoutKind : std::uint8_t { kFlannel, kCalico };
const char* layout_name(LayoutKind) noexcept;
std::optional<LayoutKind> parse_layout(std::string_view) noexcept;
// "/coreos.com/network" or "/calico"
const char* default_prefix(LayoutKind) noexcept;

struct EtcdSourceOptions {
    ClientOptions client;
    LayoutKind layout = LayoutKind::kFlannel;
    std::string prefix;                          // empty: default_prefix(layout)
    std::string node_name;                       // Calico: this node's blocks are local
    Ipv4Addr node_ip = 0;                        // Flannel: our lease's PublicIP
    std::optional<Prefix4> pod_cidr;             // Flannel: our lease's subnet (none: no lease)
    std::optional<MacAddr> vtep_mac;             // Flannel vxlan: our lease's VtepMAC
    std::chrono::seconds lease_ttl{24 * 3600};   // flanneld's
    std::chrono::milliseconds backoff_min{200};
    std::chrono::milliseconds backoff_max{10'000};
    // Silence after which the watch is checked against the range's newest
    // key (a watch stalled by its server is restarted; watch_liveness.h).
    // A busy watch is never checked; a quiet one costs etcd one sorted
    // read of the range (serializable, keys only) per interval.
    std::chrono::milliseconds watch_check{30'000};
};

enum class Phase : std::uint8_t { kSyncing, kUp, kError };

enum class LeaseState : std::uint8_t {
    kWaiting,     // for a valid <prefix>/config
    kAcquiring,   // granting, writing
    kHeld,
    kConflict,    // another node's PublicIP holds our subnet: never overwritten
    kError,       // cannot be written (vxlan without --vtep-mac, outside Network, etcd errors)
};
const char* lease_state_name(LeaseState) noexcept;

struct LeaseStatus {
    std::string key;
    std::int64_t id = 0;
    LeaseState state = LeaseState::kWaiting;
    std::string detail;
};

struct EtcdStatus {
    Phase phase = Phase::kSyncing;
    std::string endpoint;
    const char* layout = "";
    std::int64_t revision = 0;
    LayoutCounters counters;
    std::size_t routes = 0;
    std::optional<LeaseStatus> lease;
    std::uint64_t syncs = 0;    // full reads applied
    std::uint64_t events = 0;   // watch events applied
    std::uint64_t watch_checks = 0;     // probes of a quiet watch (newest key asked for)
    std::uint64_t watch_restarts = 0;   // watches found stalled and restarted
    std::optional<std::string> last_error;
};

class EtcdSource {
public:
    struct Handlers {
        // The source's whole route set: after the first read and every resync.
        std::function<void(const std::map<Prefix4, EtcdRoute>&)> snapshot;
        // Routes added, changed or removed by watch events.
        std::function<void(std::span<const RouteChange>)> changes;
        // A key newly rejected (log it once).
        std::function<void(const Rejection&)> rejected;
    };

    // Starts reading at once; fails only on local resources (epoll, curl).
    static Result<std::unique_ptr<EtcdSource>> start(EtcdSourceOptions options, Handlers handlers);
    ~EtcdSource();

    int fd() const noexcept;
    void dispatch();
    // True once a first snapshot has been delivered.
    bool synced() const noexcept;
    // Drives the source itself until synced() or the deadline (start-up).
    void run_until_synced(std::chrono::milliseconds deadline);
    EtcdStatus status() const;
    // The keys rejected now, at most `max` of them (by key).
    std::vector<Rejection> rejections(std::size_t max) const;

    class Impl;
    explicit EtcdSource(std::unique_ptr<Impl> impl);

private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace podfwd::control::etcd
