// gobgpd's side of the BGP source: two threads of ours (besides gRPC's).
// The session thread starts gobgpd (our child, unless --gobgp-api), waits
// for its API, configures it idempotently (StartBgp unless already started,
// AddPeer for peers it lacks, AddPath of our pod CIDRs) and reads the
// WatchEvent stream (best paths with init, peer states); when the stream
// ends it restarts gobgpd if it died, with capped backoff. The poller thread
// lists the peers every 5 s, at once when a session changes state, and
// every 250 ms while stale routes wait on End-of-RIB. Both hand events to the daemon's thread through a queue;
// `wake` is called when the queue becomes non-empty.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "gobgp.grpc.pb.h"

#include "control/bgp/bgp_routes.h"
#include "control/bgp/bgp_source.h"
#include "control/bgp/gobgpd_process.h"


namespace podfwd::control::bgp {

struct GobgpdStarted {
    pid_t pid = -1;
    std::uint32_t starts = 0;
};
struct Configured {};
// A configuration step gobgpd refused (a peer, a path); the rest went on.
struct ConfigWarning {
    std::string message;
    std::optional<Ipv4Addr> peer;
};
// The first table event of a watch: gobgpd's every best path.
struct Dump {
    std::vector<PathUpdate> paths;
    std::uint64_t unreadable = 0;   // IPv4 unicast paths we could not read
};
struct Paths {
    std::vector<PathUpdate> paths;
    std::uint64_t unreadable = 0;
};
// The connection (or gobgpd itself) is gone; a new one follows.
struct Lost {
    std::string error;
    bool child_exited = false;
};
struct PeersPolled {
    std::vector<PeerStatus> peers;
    std::uint64_t seq = 0;
};
using SessionEvent = std::variant<GobgpdStarted, Configured, ConfigWarning, Dump, Paths, Lost, PeersPolled>;

class GobgpSession {
public:
    GobgpSession(const BgpOptions& options, std::function<void()> wake);
    ~GobgpSession() { stop(); }
    GobgpSession(const GobgpSession&) = delete;
    GobgpSession& operator=(const GobgpSession&) = delete;

    void start();
    // Idempotent: cancels the calls in flight, ends both threads, stops our
    // child (SIGKILL, see gobgpd_process.h).
    void stop();
    std::vector<SessionEvent> take_events();
    const std::string& api() const noexcept { return api_; }
    void set_fast_polling(bool fast) noexcept { fast_polling_ = fast; }

private:
    void post(SessionEvent event);
    // Waits up to `d` or until stopped; false when stopped.
    bool pause(std::chrono::milliseconds d);
    bool stopping() const;

    void run_sessions();
    // One connection's life: start/attach, configure, watch. The error
    // that ended it; `configured` whether it got as far as watching.
    std::string run_session(bool& configured, bool& child_exited);
    // A channel on which gobgpd answers, or null (and why) after 10 s.
    std::shared_ptr<grpc::Channel> wait_for_api(std::string& error);
    bool configure(const std::shared_ptr<grpc::Channel>& channel, std::string& error);
    using Stub = apipb::GobgpApi::Stub;
    void withdraw_stale_own_paths(Stub& stub);
    // gobgpd's best paths now; empty, or why not.
    std::string list_rib(Stub& stub, Dump& dump);
    static void add_update(const apipb::Path& path, std::vector<PathUpdate>& out, std::uint64_t& unreadable);
    class Call;
    void poll_peers();

    const BgpOptions& options_;
    std::function<void()> wake_;
    std::string api_;                      // the gRPC target

    mutable std::mutex mu_;
    std::condition_variable cv_;
    bool stopping_ = false;
    std::vector<SessionEvent> queue_;
    std::shared_ptr<grpc::Channel> channel_;   // while configured
    std::set<grpc::ClientContext*> calls_;     // in flight: cancelled at stop

    std::atomic<bool> fast_polling_{false};
    std::atomic<bool> peer_changed_{false};
    std::uint64_t polls_ = 0;
    std::map<Ipv4Addr, std::uint64_t> advertised_;   // each peer's Adj-RIB-Out, counted every tenth poll
    GobgpdProcess child_;                      // session thread only
    std::uint32_t child_starts_ = 0;
    std::thread session_thread_;
    std::thread poller_thread_;
};

}  // namespace podfwd::control::bgp
