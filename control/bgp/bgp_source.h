// The BGP route source: podfwd-control drives gobgpd (GoBGP 3.10) through
// its gRPC API. We do not speak BGP ourselves: gobgpd holds the sessions
// (MD5, graceful restart, route reflection, RFC 7606 error handling) and we
// configure it (StartBgp, AddPeer, AddPath of this node's pod CIDRs with
// next hop self) and follow its best paths (WatchEvent with init).
//
// The contract every network source keeps with the daemon: a full snapshot,
// then changes. The first snapshot follows gobgpd's first best-path dump;
// a snapshot never shrinks the route set by itself: routes stated before
// (by a previous gobgpd, or saved by a previous podfwd-control and handed
// in as `initial`) stay, marked stale, until relearned, or withdrawn as
// changes once every configured peer has sent its End-of-RIB, or when the
// graceful-restart window (`restart_time`) ends, whichever comes first.
//
// Threads: gRPC runs its own. Two threads of ours talk to gobgpd (one
// configures it and reads the WatchEvent stream, one polls the peers);
// they hand their results to the daemon's thread through a queue and an
// eventfd (fd()). Everything the daemon sees happens in dispatch(), on its
// thread: handlers are called there and only there.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/ipv4.h"
#include "common/result.h"
#include "control/core/accept.h"

namespace podfwd::control::bgp {

struct PeerConfig {
    Ipv4Addr address = 0;
    std::uint32_t remote_as = 0;
    std::string password;                          // TCP MD5 (RFC 2385); empty: none
    bool passive = false;                          // wait for the peer to connect
    std::uint16_t port = 179;
    std::uint32_t hold_time = 90;                  // seconds; keepalives at a third
    std::uint32_t restart_time = 120;              // graceful restart; 0: off for this peer

    friend bool operator==(const PeerConfig&, const PeerConfig&) = default;
};

// "ADDR,as=N[,password=P][,passive][,port=N][,hold=S][,restart-time=S]";
// hold and restart time default to the given values.
Result<PeerConfig> parse_peer(std::string_view text, std::uint32_t hold_time, std::uint32_t restart_time);

struct BgpOptions {
    std::uint32_t asn = 0;
    Ipv4Addr router_id = 0;
    Ipv4Addr node_ip = 0;                          // next hop self; the address we listen and connect from
    int listen_port = 179;                         // 0: do not listen (active sessions only)
    std::vector<PeerConfig> peers;
    std::vector<Prefix4> advertise;                // this node's pod CIDRs
    AcceptFilter filter;
    std::uint32_t restart_time = 120;              // seconds gobgpd's routes outlive gobgpd
    // gobgpd run as our child, its API on a Unix socket; or, with `api`
    // set (host:port or unix:///path), a gobgpd someone else runs.
    std::string gobgpd = "gobgpd";
    std::string api;
    std::string child_api_socket;                  // where the child's API listens
    std::string child_log;                         // the child's stdout and stderr
    std::chrono::milliseconds backoff_min{200};
    std::chrono::milliseconds backoff_max{10'000};
    std::chrono::milliseconds call_timeout{5'000}; // each unary API call
};

struct BgpRoute {
    Prefix4 prefix;
    Ipv4Addr next_hop = 0;
    Ipv4Addr peer = 0;                             // learned from (a route reflector's own address)

    friend bool operator==(const BgpRoute&, const BgpRoute&) = default;
};

struct BgpChange {
    Prefix4 prefix;
    std::optional<BgpRoute> route;                 // nullopt: withdrawn
};

enum class SessionState : std::uint8_t { kUnknown, kIdle, kConnect, kActive, kOpenSent, kOpenConfirm, kEstablished };
const char* session_state_name(SessionState) noexcept;   // "idle", …, "established"

struct PeerStatus {
    Ipv4Addr address = 0;
    std::uint16_t port = 179;
    std::uint32_t remote_as = 0;
    bool passive = false;
    SessionState state = SessionState::kUnknown;
    std::optional<std::chrono::seconds> uptime;    // while established
    std::uint64_t received = 0;                    // gobgpd's Adj-RIB-In
    std::uint64_t accepted = 0;                    // best paths of this peer now in our routes
    std::uint64_t refused = 0;                     // best paths of this peer the accept filter refused (ever)
    std::uint64_t advertised = 0;
    bool end_of_rib = false;
    std::uint64_t notifications_sent = 0;          // since gobgpd started: why sessions went down
    std::uint64_t notifications_received = 0;
    std::optional<std::string> last_error;         // the last refusal, or why the session went down
};

enum class Phase : std::uint8_t {
    kStarting,    // gobgpd being started or configured
    kSyncing,     // configured, waiting for the first best-path dump
    kUp,
    kError,       // gobgpd unreachable or refusing our configuration; routes kept
};
const char* phase_name(Phase) noexcept;

struct BgpStatus {
    Phase phase = Phase::kStarting;
    std::string api;                               // where gobgpd's API is
    std::optional<pid_t> gobgpd_pid;               // our child, while it runs
    std::uint32_t gobgpd_starts = 0;               // child starts (1 + restarts)
    std::size_t routes = 0;
    std::size_t stale = 0;                         // kept from before, not yet relearned
    std::uint64_t refused = 0;
    std::uint64_t events = 0;                      // best-path events applied
    std::size_t peers = 0;
    std::size_t established = 0;
    std::optional<std::string> last_error;
};

class BgpSource {
public:
    struct Handlers {
        std::function<void(const std::map<Prefix4, BgpRoute>&)> snapshot;
        std::function<void(std::span<const BgpChange>)> changes;
        // A best path the accept filter refused (logged once per prefix and peer).
        std::function<void(const BgpRoute&, const std::string& reason)> refused;
    };

    // Starts gobgpd (unless options.api) and the threads. `initial`: the
    // routes this source stated before a restart of podfwd-control, kept
    // (stale) until relearned or swept. Fails only on local resources.
    static Result<std::unique_ptr<BgpSource>> start(BgpOptions options, Handlers handlers,
                                                    std::vector<BgpRoute> initial = {});
    // Stops the threads and a child gobgpd (SIGKILL: peers keep our routes
    // through their graceful restart, see gobgpd_process.h).
    ~BgpSource();
    BgpSource(const BgpSource&) = delete;
    BgpSource& operator=(const BgpSource&) = delete;

    int fd() const noexcept;       // eventfd: readable when there is something to dispatch
    void dispatch();
    // Called every tick: the stale sweep's deadline.
    void tick();
    bool synced() const noexcept;  // a first snapshot was delivered
    // Start-up: dispatches until gobgpd's first dump, or at the deadline
    // delivers what it holds (the `initial` routes) as the first snapshot.
    void run_until_synced(std::chrono::milliseconds deadline);
    BgpStatus status() const;
    std::vector<PeerStatus> peers() const;

    class Impl;
    explicit BgpSource(std::unique_ptr<Impl> impl);

private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace podfwd::control::bgp
