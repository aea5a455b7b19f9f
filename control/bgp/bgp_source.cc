// The BGP source: gobgpd's threads on one side (bgp_session.cc), the
// daemon's thread on the other. See bgp_source.h.
#include "control/bgp/bgp_source.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <poll.h>

#include "control/bgp/bgp_session.h"

namespace podfwd::control::bgp {

class BgpSource::Impl {
public:
    Impl(BgpOptions options, Handlers handlers, int event_fd)
        : options_(std::move(options)),
          handlers_(std::move(handlers)),
          event_fd_(event_fd),
          routes_(options_.filter, options_.node_ip),
          session_(options_, [this] { wake(); }) {}

    ~Impl() {
        session_.stop();
        ::close(event_fd_);
    }

    void start(std::vector<BgpRoute> initial) {
        if (!initial.empty()) {
            routes_.load_stale(initial);
            arm_sweep_deadline();
        }
        session_.start();
    }

    int fd() const noexcept { return event_fd_; }
    bool synced() const noexcept { return synced_; }

    void dispatch() {
        std::uint64_t ignored = 0;
        [[maybe_unused]] auto n = ::read(event_fd_, &ignored, sizeof ignored);
        std::vector<SessionEvent> events = session_.take_events();
        std::vector<BgpChange> changes;
        std::vector<Refusal> refusals;
        bool snapshot = false;
        for (SessionEvent& event : events)
            std::visit([&](auto& e) { on(e, changes, refusals, snapshot); }, event);
        maybe_sweep(changes);
        for (const Refusal& r : refusals)
            if (handlers_.refused)
                handlers_.refused(r.route, r.reason);
        if (snapshot) {
            // The first dump: every route, held or stale, at once; the daemon
            // replaces the source's routes by difference.
            synced_ = true;
            handlers_.snapshot(routes_.routes());
        } else if (!changes.empty() && synced_) {
            handlers_.changes(changes);
        }
    }

    void tick() {
        std::vector<BgpChange> changes;
        maybe_sweep(changes);
        // Before the first snapshot, what was swept is simply not in it.
        if (!changes.empty() && synced_)
            handlers_.changes(changes);
        session_.set_fast_polling(routes_.stale() > 0);
    }

    void run_until_synced(std::chrono::milliseconds wait) {
        const auto deadline = std::chrono::steady_clock::now() + wait;
        while (!synced_) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) {
                // gobgpd has not answered: the routes held (saved by the last
                // run, stale) stand in for its RIB, so the table keeps them.
                synced_ = true;
                handlers_.snapshot(routes_.routes());
                return;
            }
            pollfd p{event_fd_, POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(std::min<std::int64_t>(left.count(), 100))) > 0)
                dispatch();
        }
    }

    BgpStatus status() const {
        BgpStatus s;
        s.phase = phase_;
        s.api = session_.api();
        s.gobgpd_pid = gobgpd_pid_;
        s.gobgpd_starts = gobgpd_starts_;
        s.routes = routes_.routes().size();
        s.stale = routes_.stale();
        s.refused = routes_.refused();
        s.events = events_;
        s.peers = options_.peers.size();
        s.established = static_cast<std::size_t>(std::count_if(peers_.begin(), peers_.end(), [](const PeerStatus& p) {
            return p.state == SessionState::kEstablished;
        }));
        s.last_error = last_error_;
        return s;
    }

    std::vector<PeerStatus> peers() const {
        const auto accepted = routes_.accepted_per_peer();
        const auto& counters = routes_.peer_counters();
        std::vector<PeerStatus> out;
        // Every configured peer, in configuration order, whatever gobgpd knows.
        for (const PeerConfig& config : options_.peers) {
            PeerStatus s;
            auto polled = std::find_if(peers_.begin(), peers_.end(),
                                       [&](const PeerStatus& p) { return p.address == config.address; });
            if (polled != peers_.end())
                s = *polled;
            s.address = config.address;
            s.port = config.port;
            s.remote_as = config.remote_as;
            s.passive = config.passive;
            if (auto it = accepted.find(config.address); it != accepted.end())
                s.accepted = it->second;
            if (auto it = counters.find(config.address); it != counters.end()) {
                s.refused = it->second.refused;
                s.last_error = it->second.last_refusal;
            }
            if (auto it = session_errors_.find(config.address); it != session_errors_.end())
                s.last_error = it->second;
            out.push_back(std::move(s));
        }
        return out;
    }

private:
    void wake() {
        const std::uint64_t one = 1;
        [[maybe_unused]] auto n = ::write(event_fd_, &one, sizeof one);
    }

    void arm_sweep_deadline() {
        if (!sweep_deadline_)
            sweep_deadline_ = std::chrono::steady_clock::now() + std::chrono::seconds(options_.restart_time);
    }

    void on(GobgpdStarted& e, std::vector<BgpChange>&, std::vector<Refusal>&, bool&) {
        gobgpd_pid_ = e.pid;
        gobgpd_starts_ = e.starts;
        phase_ = Phase::kStarting;
        spdlog::info("bgp: gobgpd started (pid {}, start {})", e.pid, e.starts);
    }

    void on(Configured&, std::vector<BgpChange>&, std::vector<Refusal>&, bool&) {
        phase_ = Phase::kSyncing;
        spdlog::info("bgp: gobgpd at {} configured: AS {}, {} peers, advertising {} prefixes", session_.api(),
                     options_.asn, options_.peers.size(), options_.advertise.size());
    }

    void on(ConfigWarning& e, std::vector<BgpChange>&, std::vector<Refusal>&, bool&) {
        spdlog::error("bgp: {}", e.message);
        last_error_ = e.message;
        if (e.peer)
            session_errors_[*e.peer] = e.message;
    }

    void on(Dump& e, std::vector<BgpChange>& changes, std::vector<Refusal>& refusals, bool& snapshot) {
        // What gobgpd knew before is void: held routes stay, stale, until
        // restated here or later, or swept.
        routes_.mark_all_stale();
        routes_.apply(e.paths, changes, refusals);
        ++events_;
        dumped_ = true;
        sweep_ready_poll_ = 0;
        dump_poll_mark_ = latest_poll_;
        if (routes_.stale() > 0)
            arm_sweep_deadline();
        phase_ = Phase::kUp;
        snapshot = snapshot || !synced_;
        last_paths_at_ = std::chrono::steady_clock::now();
        note_unreadable(e.unreadable);
    }

    void on(Paths& e, std::vector<BgpChange>& changes, std::vector<Refusal>& refusals, bool&) {
        routes_.apply(e.paths, changes, refusals);
        ++events_;
        last_paths_at_ = std::chrono::steady_clock::now();
        note_unreadable(e.unreadable);
    }

    void on(Lost& e, std::vector<BgpChange>& changes, std::vector<Refusal>&, bool&) {
        phase_ = Phase::kError;
        last_error_ = e.error;
        dumped_ = false;
        if (e.child_exited)
            gobgpd_pid_.reset();
        spdlog::warn("bgp: {}; its {} routes stay for {} s unless relearned", e.error, routes_.routes().size(),
                     options_.restart_time);
        routes_.mark_all_stale();
        if (options_.restart_time == 0)
            routes_.sweep(changes);
        else
            arm_sweep_deadline();
    }

    void on(PeersPolled& e, std::vector<BgpChange>&, std::vector<Refusal>&, bool&) {
        for (const PeerStatus& now : e.peers) {
            auto before = std::find_if(peers_.begin(), peers_.end(),
                                       [&](const PeerStatus& p) { return p.address == now.address; });
            const bool was_up = before != peers_.end() && before->state == SessionState::kEstablished;
            const bool is_up = now.state == SessionState::kEstablished;
            if (was_up != is_up)
                spdlog::info("bgp: peer {} {}", format_ipv4(now.address), is_up ? "established" : session_state_name(now.state));
            if (is_up)
                session_errors_.erase(now.address);
            else if (was_up)
                session_errors_[now.address] = why_down(*before, now);
        }
        peers_ = std::move(e.peers);
        latest_poll_ = e.seq;
    }

    // gobgpd's API does not say why a session went down; its NOTIFICATION
    // counters tell who closed it, its log the rest.
    std::string why_down(const PeerStatus& before, const PeerStatus& now) const {
        std::string why = now.notifications_received > before.notifications_received
                              ? "session closed by the peer (NOTIFICATION received)"
                          : now.notifications_sent > before.notifications_sent
                              ? "session closed by gobgpd (NOTIFICATION sent: hold timer expired, or the peer's "
                                "messages were invalid)"
                              : "session lost (the TCP connection closed without a NOTIFICATION)";
        if (options_.api.empty())
            why += "; details in " + options_.child_log;
        spdlog::warn("bgp: peer {}: {}", format_ipv4(now.address), why);
        return why;
    }

    void note_unreadable(std::uint64_t n) {
        if (n == 0)
            return;
        unreadable_ += n;
        last_error_ = std::to_string(unreadable_) + " IPv4 paths without a usable prefix or next hop were ignored";
    }

    // The stale routes go when the restart window ends, or once gobgpd has
    // dumped its RIB and every peer is established and has sent its
    // End-of-RIB: on two polls in a row with no path arriving in between nor
    // for kQuiet, because gobgpd's peer state and its best-path stream are
    // two RPCs whose answers may cross.
    static constexpr auto kQuiet = std::chrono::seconds(1);
    void maybe_sweep(std::vector<BgpChange>& changes) {
        if (routes_.stale() == 0) {
            sweep_deadline_.reset();
            return;
        }
        const auto now = std::chrono::steady_clock::now();
        bool sweep = sweep_deadline_ && now >= *sweep_deadline_;
        const char* why = "the graceful-restart window ended";
        const bool peers_done = dumped_ && latest_poll_ > dump_poll_mark_ && all_peers_done();
        if (!sweep && !peers_done) {
            sweep_ready_poll_ = 0;
        } else if (!sweep) {
            if (sweep_ready_poll_ == 0 || last_paths_at_ >= ready_at_) {
                sweep_ready_poll_ = latest_poll_;
                ready_at_ = now;
            } else if (latest_poll_ > sweep_ready_poll_ && now - last_paths_at_ >= kQuiet) {
                sweep = true;
                why = "every peer sent its End-of-RIB";
            }
        }
        if (!sweep)
            return;
        spdlog::info("bgp: {}: {} stale routes not relearned are withdrawn", why, routes_.stale());
        routes_.sweep(changes);
        sweep_deadline_.reset();
        sweep_ready_poll_ = 0;
    }

    // Every peer gobgpd has (a gobgpd of --gobgp-api may have more than
    // ours) and every one configured, at least one: with none, only the
    // restart window can say the RIB is whole.
    bool all_peers_done() const {
        const auto done = [](const PeerStatus& p) { return p.state == SessionState::kEstablished && p.end_of_rib; };
        return !peers_.empty() && std::all_of(peers_.begin(), peers_.end(), done) &&
               std::all_of(options_.peers.begin(), options_.peers.end(), [&](const PeerConfig& config) {
                   return std::any_of(peers_.begin(), peers_.end(),
                                      [&](const PeerStatus& p) { return p.address == config.address; });
               });
    }

    BgpOptions options_;
    Handlers handlers_;
    int event_fd_;
    BgpRoutes routes_;
    GobgpSession session_;

    Phase phase_ = Phase::kStarting;
    bool synced_ = false;
    bool dumped_ = false;                     // the current connection's dump arrived
    std::optional<pid_t> gobgpd_pid_;
    std::uint32_t gobgpd_starts_ = 0;
    std::uint64_t events_ = 0;
    std::uint64_t unreadable_ = 0;
    std::optional<std::string> last_error_;
    std::vector<PeerStatus> peers_;           // the latest poll
    std::map<Ipv4Addr, std::string> session_errors_;
    std::uint64_t latest_poll_ = 0;
    std::uint64_t dump_poll_mark_ = 0;        // polls up to this one predate the dump
    std::uint64_t sweep_ready_poll_ = 0;      // the first poll that found every peer done
    std::chrono::steady_clock::time_point ready_at_{};             // when that poll was seen
    std::chrono::steady_clock::time_point last_paths_at_{};
    std::optional<std::chrono::steady_clock::time_point> sweep_deadline_;
};

Result<std::unique_ptr<BgpSource>> BgpSource::start(BgpOptions options, Handlers handlers,
                                                    std::vector<BgpRoute> initial) {
    const int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0)
        return Error{Errc::kSystem, std::string("eventfd: ") + std::strerror(errno)};
    auto impl = std::make_unique<Impl>(std::move(options), std::move(handlers), fd);
    impl->start(std::move(initial));
    return std::make_unique<BgpSource>(std::move(impl));
}

BgpSource::BgpSource(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
BgpSource::~BgpSource() = default;
int BgpSource::fd() const noexcept { return impl_->fd(); }
void BgpSource::dispatch() { impl_->dispatch(); }
void BgpSource::tick() { impl_->tick(); }
bool BgpSource::synced() const noexcept { return impl_->synced(); }
void BgpSource::run_until_synced(std::chrono::milliseconds deadline) { impl_->run_until_synced(deadline); }
BgpStatus BgpSource::status() const { return impl_->status(); }
std::vector<PeerStatus> BgpSource::peers() const { return impl_->peers(); }

}  // namespace podfwd::control::bgp
