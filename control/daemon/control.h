// podfwd-control's state and behaviour, apart from its event loop: the
// sources feed the RIB, the RIB's best routes go to the table (TableSync),
// and CLI requests are answered here. Single-threaded: every method runs
// on the event loop's thread.
#pragma once

#include <array>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "control/bgp/bgp_source.h"
#include "control/core/accept.h"
#include "control/core/neighbours.h"
#include "control/core/rib.h"
#include "control/core/table_sync.h"
#include "control/daemon/json_codec.h"
#include "control/daemon/neigh_segment_reader.h"
#include "control/daemon/options.h"
#include "control/etcd/etcd_source.h"
#include "control/kernel/kernel_source.h"
#include "lpm/writer.h"

namespace podfwd::control {

// Where a source stands, for `podfwdctl sources`.
enum class SourcePhase : std::uint8_t {
    kDown,      // not configured
    kSyncing,   // reading its first (or a new) full state
    kUp,        // following changes
    kError,     // cannot reach or read it; what it stated before stays
};
const char* phase_name(SourcePhase) noexcept;   // "down", "syncing", "up", "error"

struct SourceState {
    bool enabled = false;
    SourcePhase phase = SourcePhase::kDown;
    std::string detail;                     // one line: where it reads from, how far it got
    std::uint64_t refused = 0;
    std::optional<std::string> last_error;
    std::uint64_t changes = 0;              // its routes added, changed or removed
};

// An fd the daemon's loop watches for a source, and what to do when it is readable.
struct SourceFd {
    int fd = -1;
    std::function<void()> on_readable;
};

class Control {
public:
    // route.list's page size (control/PROTOCOL.md): a page's answer is
    // built in memory and sent while the daemon waits, so it is bounded.
    static constexpr std::size_t kRouteListDefaultLimit = 10'000;
    static constexpr std::size_t kRouteListMaxLimit = 100'000;

    // Opens (or re-attaches to) the table, loads every source, then makes
    // the table equal their best routes, touching only what differs. A bad
    // static file or CLI state refuses to start: starting without them
    // would withdraw their routes from a running dataplane.
    static Result<std::unique_ptr<Control>> start(const DaemonOptions& options);

    // One control-socket request line; the response line. Route changes are
    // committed before it returns.
    std::string handle_line(std::string_view request);
    nlohmann::json handle(const nlohmann::json& request);

    // SIGHUP: re-read the static file and apply the difference.
    void reload_static();
    // The network sources' fds (netlink, etcd, BGP), for the event loop.
    std::vector<SourceFd> source_fds();
    // Periodic (and at exit): flush the CLI's saved state to disk, delete
    // next hops unused past their grace period, retry refused routes and a
    // failed kernel resynchronisation.
    void tick();
    // At exit: the last tick, and the network sources' routes saved for the
    // next start whatever their saving pace.
    void stop();
    // Every kNeighbourPoll: the dataplane's neighbour segment, the "arp"
    // source. Changed MACs are written into the next-hop records at once.
    static constexpr std::chrono::milliseconds kNeighbourPoll{100};
    void poll_neighbours();

    const Rib& rib() const noexcept { return rib_; }

    // Use start(); public for make_unique.
    Control(const DaemonOptions& options, lpm::TableWriter writer);

private:
    using json = nlohmann::json;

    // Records `error` against `source` and logs it as one line.
    void refuse(Source source, const std::string& error);
    SourceState& state(Source s) { return sources_[static_cast<unsigned>(s)]; }

    // The contract every network source keeps (sources.cc): a full
    // snapshot, then changes. A snapshot replaces the source's routes by
    // their difference; a route policy refuses is counted, logged and left
    // out (a change to one withdraws the source's old route for the prefix).
    // Changes are staged: the caller commits once per batch.
    void replace_source_routes(Source source, std::span<const RouteSpec> routes);
    void set_source_route(const RouteSpec& spec);
    void withdraw(const Prefix4& prefix, Source source);
    // A network source's routes as the RIB holds them, written atomically
    // where the next start finds them: once they have been quiet for 2 s,
    // at most every 30 s while they keep changing (each write is the whole
    // set: a million routes take a second), and at exit (now_or_never).
    struct SavedRoutes {
        bool unsaved = false;   // changed since last written
        std::chrono::steady_clock::time_point at{};           // last written
        std::chrono::steady_clock::time_point changed_at{};   // last changed
        void changed() {
            unsaved = true;
            changed_at = std::chrono::steady_clock::now();
        }
    };
    void save_source_routes(Source source, const std::string& path, SavedRoutes& saved, bool now_or_never = false);

    // Pushes the best forwarding of each prefix to the table (staged).
    Status push(std::span<const Prefix4> changed);
    Status push(const Prefix4& prefix) { return push(std::span(&prefix, 1)); }
    Status push_neighbours(std::span<const Ipv4Addr> changed);
    // Commits staged changes; a failure is logged (the next commit retries).
    Status commit();

    // The node config's own routes: the uplink subnet (connected) and the
    // default route via --gateway.
    void add_node_routes();
    // The connected source's routes: the uplink subnet, and a /32 host-gw
    // route to each neighbour on it that has a MAC (from any source), so
    // traffic to other nodes takes the fast path, not the resolver's.
    // Staged; called whenever neighbours change.
    void sync_connected_routes();
    void refresh_arp_state();
    json neighbour_json(Ipv4Addr ip) const;

    Status load_static(bool at_start);
    Status load_static_at_start();
    Status load_cli_state();
    template <class Apply, class Undo>
    Status cli_transaction(CliState next, Apply apply, Undo undo);
    void flush_cli_state();
    // kernel_feed.cc
    Status load_kernel();
    void apply_kernel_snapshot(const KernelSnapshot& snapshot);
    void on_kernel_readable();
    void resync_kernel();
    bool kernel_route_wanted(const KernelRoute& route);   // inside --accept; others counted
    void refresh_kernel_detail();
    // etcd_feed.cc
    Status start_etcd();
    void on_etcd_readable();
    void refresh_etcd_state();
    Status load_saved_etcd_routes();
    json etcd_json() const;
    // bgp_feed.cc
    Status start_bgp();
    void on_bgp_readable();
    void tick_bgp();
    void refresh_bgp_state();
    json bgp_json() const;

    json route_add(const json& request);
    json route_del(const json& request);
    // Every request handler has this shape, for handle()'s table.
    json route_list(const json& request);
    json route_get(const json& request);
    json neigh_add(const json& request);
    json neigh_del(const json& request);
    json neigh_list(const json&);
    json sources(const json&);
    json status(const json&);
    json bgp_peers(const json&);
    json route_json(const RibRoute& route, bool best) const;

    DaemonOptions options_;
    lpm::TableWriter writer_;
    Rib rib_;
    NeighbourTable neighbours_;
    TableSync sync_;
    AcceptFilter accept_;          // --accept, for the kernel and etcd sources (BGP has its own copy)
    std::optional<KernelSource> kernel_;
    std::set<Prefix4> kernel_ignored_;   // the kernel states them, outside --accept
    std::string last_kernel_ignored_;
    std::unique_ptr<etcd::EtcdSource> etcd_;
    std::unique_ptr<bgp::BgpSource> bgp_;
    std::array<SourceState, kSourceCount> sources_{};
    CliState cli_;                 // what the CLI added, saved across restarts
    bool reconciled_ = false;      // until start() reconciles, changes only go to the RIB
    bool cli_unflushed_ = false;   // saved, not yet fsync'd
    bool kernel_resync_ = false;   // a netlink error: notifications lost, dump again
    SavedRoutes etcd_saved_;       // etcd_state_path()
    SavedRoutes bgp_saved_;        // bgp_state_path()
    std::set<Ipv4Addr> pending_neighbours_;   // records not yet rewritten for a MAC change
    NeighSegmentReader arp_;                  // the dataplane's resolver's neighbours
    std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

}  // namespace podfwd::control
