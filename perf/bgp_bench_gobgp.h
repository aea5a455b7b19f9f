// bgp_bench: the bare gobgpd beside podfwd-control, driven by the bench over
// GoBGP's gRPC API (stubs generated at build time: control/bgp/meson.build),
// configured as podfwd-control configures its own child (the same global and
// peer settings: passive, graceful restart, timers), its RIB counted through
// the same API. No dependency on control/bgp/: the bench does not share the
// daemon's client, it measures it.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace podfwd::perf::bgp {

// A client of one gobgpd API ("unix:///path").
class GobgpClient {
public:
    explicit GobgpClient(const std::string& target);
    ~GobgpClient();
    GobgpClient(const GobgpClient&) = delete;
    GobgpClient& operator=(const GobgpClient&) = delete;

    // GetBgp answers (the API is up).
    bool answers();
    // StartBgp and AddPeer for BIRD, as podfwd-control configures its gobgpd
    // (restart_time: graceful restart, 0 off). Throws on a refusal.
    void configure(std::uint32_t restart_time);
    // GetTable(GLOBAL, ipv4 unicast).num_destination; nullopt when the call
    // failed. *call_ms gets its duration.
    std::optional<std::uint64_t> destinations(double* call_ms = nullptr);
    // ListPeer: BIRD's session state (PeerState.session_state: 6 is
    // established); -1 when BIRD is not a configured peer (yet) or the call failed.
    int peer_state();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// gobgpd started by the bench as podfwd-control starts its own
// (--api-hosts=unix://…, --pprof-disable, --log-plain, --log-level=info),
// its log in `dir`. Stopped (SIGTERM, by PID) by stop() or the destructor.
class BareGobgpd {
public:
    BareGobgpd(std::string binary, std::string dir);
    ~BareGobgpd();
    BareGobgpd(const BareGobgpd&) = delete;
    BareGobgpd& operator=(const BareGobgpd&) = delete;

    // Spawns, waits for the API (bounded), configures. ms from spawn to configured.
    double start(std::uint32_t restart_time);
    void stop();
    GobgpClient& api() { return *client_; }
    pid_t pid() const noexcept { return pid_; }
    const std::string& log() const noexcept { return log_; }
    std::string version() const;

private:
    std::string binary_, dir_, socket_, log_;
    pid_t pid_ = -1;
    std::unique_ptr<GobgpClient> client_;
};

}  // namespace podfwd::perf::bgp
