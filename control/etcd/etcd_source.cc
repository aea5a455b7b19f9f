#include "control/etcd/etcd_source.h"

#include "control/etcd/watch_liveness.h"

#include <poll.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>

namespace podfwd::control::etcd {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

const char* layout_name(LayoutKind k) noexcept { return k == LayoutKind::kFlannel ? "flannel" : "calico"; }

std::optional<LayoutKind> parse_layout(std::string_view text) noexcept {
    if (text == "flannel")
        return LayoutKind::kFlannel;
    if (text == "calico")
        return LayoutKind::kCalico;
    return std::nullopt;
}

const char* lease_state_name(LeaseState s) noexcept {
    switch (s) {
    case LeaseState::kWaiting: return "waiting";
    case LeaseState::kAcquiring: return "acquiring";
    case LeaseState::kHeld: return "held";
    case LeaseState::kConflict: return "conflict";
    case LeaseState::kError: return "error";
    }
    return "?";
}

const char* default_prefix(LayoutKind k) noexcept {
    return k == LayoutKind::kFlannel ? "/coreos.com/network" : "/calico";
}

namespace {

std::unique_ptr<Layout> make_layout(const EtcdSourceOptions& o) {
    const std::string prefix = o.prefix.empty() ? default_prefix(o.layout) : o.prefix;
    if (o.layout == LayoutKind::kCalico)
        return std::make_unique<CalicoLayout>(CalicoLayout::Options{prefix, o.node_name});
    return std::make_unique<FlannelLayout>(FlannelLayout::Options{prefix, o.pod_cidr, o.node_ip});
}

}  // namespace

class EtcdSource::Impl {
public:
    Impl(EtcdSourceOptions options, Handlers handlers, HttpClient http, int epoll_fd, int timer_fd)
        : options_(std::move(options)),
          handlers_(std::move(handlers)),
          http_(std::move(http)),
          client_(http_, options_.client),
          layout_(make_layout(options_)),
          epoll_fd_(epoll_fd),
          timer_fd_(timer_fd),
          random_(std::random_device{}()) {
        if (options_.layout == LayoutKind::kFlannel && options_.pod_cidr) {
            flannel_ = static_cast<FlannelLayout*>(layout_.get());
            lease_.key = flannel_->lease_key(*options_.pod_cidr);
            lease_.state = LeaseState::kWaiting;
        }
    }

    ~Impl() {
        ::close(timer_fd_);
        ::close(epoll_fd_);
    }

    int fd() const noexcept { return epoll_fd_; }
    bool synced() const noexcept { return syncs_ != 0; }

    void begin() { connect(); }

    void dispatch() {
        epoll_event events[4];
        const int n = ::epoll_wait(epoll_fd_, events, 4, 0);
        for (int i = 0; i < n; ++i) {
            if (events[i].data.fd == timer_fd_) {
                std::uint64_t expirations = 0;
                (void)!::read(timer_fd_, &expirations, sizeof expirations);
                on_timer();
            } else {
                http_.dispatch();
            }
        }
    }

    void run_until_synced(milliseconds deadline) {
        const auto end = Clock::now() + deadline;
        while (!synced() && Clock::now() < end) {
            pollfd p{epoll_fd_, POLLIN, 0};
            if (::poll(&p, 1, 50) > 0)
                dispatch();
        }
    }

    EtcdStatus status() const {
        EtcdStatus s;
        s.phase = phase_;
        s.endpoint = client_.endpoint();
        s.layout = layout_->name();
        s.revision = revision_;
        s.counters = layout_->counters();
        s.routes = layout_->routes().size();
        if (flannel_ != nullptr)
            s.lease = lease_;
        s.syncs = syncs_;
        s.events = events_;
        s.watch_checks = watch_checks_;
        s.watch_restarts = watch_restarts_;
        s.last_error = last_error_;
        return s;
    }

    std::vector<Rejection> rejections(std::size_t max) const {
        std::vector<Rejection> all = layout_->rejections();
        if (all.size() > max)
            all.resize(max);
        return all;
    }

private:
    // ---- reading and watching ----

    void connect() {
        reconnect_at_.reset();
        watch_deadline_.reset();
        stop_watch_check();
        if (request_ != 0)
            http_.cancel(std::exchange(request_, 0));
        if (revision_ == 0 || resync_needed_)
            read_all();
        else
            watch_from(revision_ + 1);
    }

    void read_all() {
        request_ = client_.range(layout_->range_begin(), layout_->range_end(), [this](Result<RangeAnswer> answer) {
            request_ = 0;
            if (!answer)
                return fail("read " + layout_->range_begin() + ": " + answer.error().message);
            std::vector<KeyValue> snapshot;
            snapshot.reserve(answer->kvs.size());
            std::optional<std::int64_t> own_revision;
            for (Kv& kv : answer->kvs) {
                if (flannel_ != nullptr && kv.key == lease_.key) {
                    own_revision = kv.mod_revision;
                    if (lease_.id == 0)
                        note_earlier_lease(kv);
                }
                snapshot.push_back({std::move(kv.key), std::move(kv.value)});
            }
            // A re-read after a gap: our key may have been deleted or taken
            // meanwhile, which no event will tell any more.
            if (lease_.state == LeaseState::kHeld && own_revision != lease_mod_revision_)
                own_key_lost();
            const LayoutUpdate update = layout_->resync(snapshot);
            report(update.rejected);
            const bool first = syncs_ == 0;
            revision_ = answer->revision;
            resync_needed_ = false;
            ++syncs_;
            spdlog::info("etcd: {} {} keys at revision {} from {}: {} routes, {} changed, {} keys rejected",
                         first ? "read" : "re-read", snapshot.size(), revision_, client_.endpoint(),
                         layout_->routes().size(), update.changes.size(), layout_->counters().rejected);
            handlers_.snapshot(layout_->routes());
            watch_from(revision_ + 1);
            ensure_lease();
        });
    }

    void watch_from(std::int64_t start) {
        if (phase_ != Phase::kUp)
            phase_ = Phase::kSyncing;
        request_ = client_.watch(
            layout_->range_begin(), layout_->range_end(), start,
            [this](Result<WatchMessage> message) { on_watch(std::move(message)); },
            [this](Status end) {
                request_ = 0;
                if (!end && end.error().code == Errc::kCapacity)   // too large to take: the same would come again
                    resync_needed_ = true;
                fail(end ? std::string("the watch stream ended") : "watch: " + end.error().message);
            });
        // A member without a leader, or one that never answers, must not
        // hold the watch: no "created" in time is a failure (fail-over).
        watch_deadline_ = Clock::now() + options_.client.request_timeout;
        arm_timer();
    }

    void on_watch(Result<WatchMessage> message) {
        liveness_.on_message(Clock::now());
        if (!message) {
            // A message we cannot read would come again from the same
            // revision: read everything instead (etcd's own errors, as when
            // it stops, are worth a plain retry).
            if (!message.error().message.starts_with("etcd: "))
                resync_needed_ = true;
            http_.cancel(std::exchange(request_, 0));
            return fail("watch: " + message.error().message);
        }
        if (message->revision != 0 && message->revision < revision_) {
            // A store restored from a backup, or another cluster behind the
            // endpoint: a watch "from the future" would be silent.
            spdlog::warn("etcd: the store's revision went back from {} to {}: reading everything again", revision_,
                         message->revision);
            http_.cancel(std::exchange(request_, 0));
            resync_needed_ = true;
            return connect();
        }
        if (message->canceled) {
            http_.cancel(std::exchange(request_, 0));
            if (message->compact_revision != 0) {
                spdlog::warn("etcd: revision {} was compacted (now {}): reading everything again", revision_ + 1,
                             message->compact_revision);
                resync_needed_ = true;
                return connect();
            }
            return fail("the watch was cancelled: " + message->cancel_reason);
        }
        if (message->created) {
            watch_deadline_.reset();
            phase_ = Phase::kUp;
            attempts_ = 0;
            last_error_.reset();
            liveness_.reset(Clock::now());
            schedule_watch_check();
        }
        // Several events of one message may touch one prefix: its last state wins.
        std::map<Prefix4, std::optional<EtcdRoute>> changed;
        bool own_key_changed = false;
        // A reconnect may replay what was applied already: revisions tell.
        // Compared with the revision before this message, since the events
        // of one transaction share one revision (and come in one message).
        const std::int64_t applied = revision_;
        for (const WatchEvent& event : message->events) {
            if (event.kv.mod_revision <= applied)
                continue;
            revision_ = event.kv.mod_revision;
            ++events_;
            LayoutUpdate update = layout_->apply(event.kv.key, event.deleted ? std::nullopt
                                                                              : std::optional<std::string_view>(event.kv.value));
            report(update.rejected);
            for (RouteChange& c : update.changes)
                changed[c.prefix] = std::move(c.route);
            if (flannel_ != nullptr && event.kv.key == lease_.key && event.kv.mod_revision != lease_mod_revision_) {
                own_key_changed = true;
                own_key_lost();
            }
            own_key_changed |= flannel_ != nullptr && event.kv.key == flannel_->config_key();
        }
        if (!changed.empty()) {
            std::vector<RouteChange> changes;
            changes.reserve(changed.size());
            for (auto& [prefix, route] : changed)
                changes.push_back({prefix, std::move(route)});
            handlers_.changes(changes);
        }
        if (own_key_changed)
            ensure_lease();
    }



    // ---- a watch that went silent (watch_liveness.h) ----

    void schedule_watch_check() {
        watch_check_at_ = liveness_.next_check();
        arm_timer();
    }

    void stop_watch_check() {
        watch_check_at_.reset();
        if (probe_request_ != 0)
            client_.cancel(std::exchange(probe_request_, 0));
    }

    // The timer is set lazily: messages only move the liveness's clock, and
    // a check that is not due yet sets the timer again.
    void check_watch() {
        if (phase_ != Phase::kUp || request_ == 0 || probe_request_ != 0)
            return;
        if (!liveness_.due(Clock::now()))
            return schedule_watch_check();
        const std::uint64_t messages_at_probe = liveness_.messages();
        ++watch_checks_;
        probe_request_ = client_.latest(layout_->range_begin(), layout_->range_end(),
                                        [this, messages_at_probe](Result<RangeAnswer> answer) {
            probe_request_ = 0;
            if (!answer && last_probe_error_ != answer.error().message) {
                last_probe_error_ = answer.error().message;
                spdlog::warn("etcd: checking the watch: {}", last_probe_error_);
            }
            std::optional<std::int64_t> newest;
            if (answer && !answer->kvs.empty())
                newest = answer->kvs.front().mod_revision;
            switch (liveness_.on_probe(messages_at_probe, newest, revision_, Clock::now())) {
            case WatchLiveness::Verdict::kAlive:
            case WatchLiveness::Verdict::kLookAgain:
                return schedule_watch_check();
            case WatchLiveness::Verdict::kStalled:
                break;
            }
            ++watch_restarts_;
            spdlog::warn("etcd: the watch is silent at revision {} while {} changed at {}: starting it again",
                         revision_, answer->kvs.front().key, *newest);
            stop_watch_check();
            http_.cancel(std::exchange(request_, 0));
            watch_from(revision_ + 1);
        });
    }

    void report(const std::vector<Rejection>& rejected) {
        for (const Rejection& r : rejected)
            handlers_.rejected(r);
    }

    // The stream or a read failed: keep every route, try the next endpoint
    // after a backoff.
    void fail(const std::string& error) {
        if (last_error_ != error)
            spdlog::warn("etcd: {} ({}); retrying", error, client_.endpoint());
        last_error_ = error;
        phase_ = Phase::kError;
        watch_deadline_.reset();
        stop_watch_check();
        if (request_ != 0)
            http_.cancel(std::exchange(request_, 0));
        client_.fail_over();
        const double base = std::min<double>(static_cast<double>(options_.backoff_max.count()),
                                              static_cast<double>(options_.backoff_min.count()) * (1u << std::min(attempts_, 16u)));
        ++attempts_;
        const double jitter = std::uniform_real_distribution<double>(0.75, 1.25)(random_);
        reconnect_at_ = Clock::now() + milliseconds(static_cast<std::int64_t>(base * jitter));
        arm_timer();
    }

    // ---- this node's Flannel lease ----

    void ensure_lease() {
        if (flannel_ == nullptr || !synced())
            return;
        if (lease_request_ != 0) {   // one lease step at a time; look again when it is done
            lease_dirty_ = true;
            return;
        }
        lease_dirty_ = false;
        const auto& config = flannel_->config();
        if (!config)
            return lease_problem(LeaseState::kWaiting, "no valid " + flannel_->config_key() + " yet");
        if (!config->network.contains(options_.pod_cidr->addr) || options_.pod_cidr->len < config->network.len)
            return lease_problem(LeaseState::kError, options_.pod_cidr->str() + " is not inside the Network " + config->network.str());
        FlannelLease mine{options_.node_ip, config->backend_type, 0, std::nullopt};
        if (config->backend_type == "vxlan") {
            if (!options_.vtep_mac)
                return lease_problem(LeaseState::kError, "the vxlan backend needs --vtep-mac for this node's lease");
            mine.vni = config->vni;
            mine.vtep_mac = options_.vtep_mac;
        }
        const std::string value = flannel_lease_json(mine);
        if (lease_.state == LeaseState::kHeld && value == lease_value_)
            return;
        if (lease_.id == 0 && earlier_lease_ != 0) {
            // Our key from an earlier run: keep its etcd lease if it is alive,
            // rather than leave one lease a restart behind until it expires.
            lease_.state = LeaseState::kAcquiring;
            const std::int64_t id = std::exchange(earlier_lease_, 0);
            lease_request_ = client_.lease_keepalive(id, [this, id](Result<std::int64_t> ttl) {
                lease_request_ = 0;
                if (ttl && *ttl > 0) {
                    lease_.id = id;
                    spdlog::info("etcd: {} is ours from an earlier run: keeping lease {:x}", lease_.key, id);
                    schedule_renewal(std::chrono::seconds(*ttl));
                } else {
                    lease_mod_revision_ = 0;
                }
                ensure_lease();
            });
            return;
        }
        if (lease_.id == 0) {
            lease_.state = LeaseState::kAcquiring;
            lease_request_ = client_.lease_grant(options_.lease_ttl.count(), [this](Result<std::int64_t> id) {
                lease_request_ = 0;
                if (!id)
                    return lease_retry("lease grant: " + id.error().message);
                lease_.id = *id;
                schedule_renewal(options_.lease_ttl);
                ensure_lease();
            });
            return;
        }
        write_lease(value, lease_mod_revision_);
    }

    // put_if: our key as we last wrote it (or absent); otherwise look at who holds it.
    void write_lease(const std::string& value, std::int64_t expected) {
        lease_request_ = client_.put_if(lease_.key, expected, value, lease_.id, [this, value](Result<TxnAnswer> answer) {
            lease_request_ = 0;
            if (!answer) {
                // The lease expired (etcd unreachable for its TTL, say): the
                // next try grants a new one. Any other error keeps it.
                if (answer.error().message.find("lease not found") != std::string::npos)
                    lease_.id = 0;
                return lease_retry("write " + lease_.key + ": " + answer.error().message);
            }
            if (answer->succeeded) {
                lease_mod_revision_ = answer->revision;
                lease_value_ = value;
                if (lease_.state != LeaseState::kHeld)
                    spdlog::info("etcd: holding {} (lease {:x}, TTL {} s)", lease_.key, lease_.id, options_.lease_ttl.count());
                lease_.state = LeaseState::kHeld;
                lease_.detail.clear();
                return lease_dirty_ ? ensure_lease() : void();
            }
            if (answer->range.empty())   // gone meanwhile: create it
                return write_lease(value, 0);
            const Kv& held = answer->range.front();
            auto other = parse_flannel_lease(held.value);
            if (other && other->public_ip == options_.node_ip)   // ours, from an earlier run
                return write_lease(value, held.mod_revision);
            const std::string holder = other ? format_ipv4(other->public_ip) : "a value that does not parse";
            lease_problem(LeaseState::kConflict, options_.pod_cidr->str() + " is leased to " + holder + " (" + lease_.key +
                                          "); not overwritten");
            lease_retry_at_ = Clock::now() + std::chrono::seconds(10);
            arm_timer();
        });
    }

    void lease_problem(LeaseState state, const std::string& detail) {
        if (lease_.detail != detail)
            spdlog::error("etcd: this node's lease: {}", detail);
        lease_.state = state;
        lease_.detail = detail;
        lease_value_.clear();
    }

    void lease_retry(const std::string& error) {
        lease_problem(LeaseState::kError, error);
        lease_retry_at_ = Clock::now() + std::max(options_.backoff_max / 4, milliseconds(1000));
        arm_timer();
    }

    // Someone else wrote or deleted our key (or its lease expired): the
    // next ensure_lease() writes it again, or finds who holds it now.
    void own_key_lost() {
        lease_value_.clear();
        if (lease_.state == LeaseState::kHeld)
            lease_.state = LeaseState::kAcquiring;
    }

    // An earlier run's value of our key, written with our PublicIP: its
    // lease is tried first, its revision makes the first write a replace.
    void note_earlier_lease(const Kv& kv) {
        auto held = parse_flannel_lease(kv.value);
        if (!held || held->public_ip != options_.node_ip || kv.lease == 0)
            return;
        earlier_lease_ = kv.lease;
        lease_mod_revision_ = kv.mod_revision;
    }

    void schedule_renewal(std::chrono::seconds ttl) {
        renew_at_ = Clock::now() + std::max<milliseconds>(ttl / 3, milliseconds(500));
        arm_timer();
    }

    void renew() {
        if (lease_.id == 0)   // granting a new one: it schedules its own renewal
            return;
        if (lease_request_ != 0)
            return schedule_renewal(std::chrono::seconds(2));
        lease_request_ = client_.lease_keepalive(lease_.id, [this](Result<std::int64_t> ttl) {
            lease_request_ = 0;
            if (!ttl) {
                spdlog::warn("etcd: renewing lease {:x}: {}", lease_.id, ttl.error().message);
                renew_at_ = Clock::now() + std::max(options_.backoff_max / 4, milliseconds(1000));
                arm_timer();
                return;
            }
            if (*ttl == 0) {   // expired: the key went with it
                spdlog::warn("etcd: lease {:x} expired; acquiring {} again", lease_.id, lease_.key);
                lease_.id = 0;
                lease_.state = LeaseState::kAcquiring;
                lease_value_.clear();
                lease_mod_revision_ = 0;
                return ensure_lease();
            }
            schedule_renewal(std::chrono::seconds(*ttl));
            if (lease_dirty_)
                ensure_lease();
        });
    }

    // ---- one timer for reconnecting and the lease ----

    void arm_timer() {
        std::optional<Clock::time_point> next;
        for (const auto& at : {reconnect_at_, renew_at_, lease_retry_at_, watch_deadline_, watch_check_at_})
            if (at && (!next || *at < *next))
                next = at;
        itimerspec spec{};
        if (next) {
            const auto ns = std::max<std::int64_t>(1, std::chrono::duration_cast<std::chrono::nanoseconds>(*next - Clock::now()).count());
            spec.it_value.tv_sec = ns / 1'000'000'000;
            spec.it_value.tv_nsec = ns % 1'000'000'000;
        }
        ::timerfd_settime(timer_fd_, 0, &spec, nullptr);
    }

    void on_timer() {
        const auto now = Clock::now();
        if (watch_deadline_ && *watch_deadline_ <= now) {
            watch_deadline_.reset();
            fail("no answer to the watch within " + std::to_string(options_.client.request_timeout.count()) + " ms");
        }
        if (reconnect_at_ && *reconnect_at_ <= now)
            connect();
        if (watch_check_at_ && *watch_check_at_ <= now) {
            watch_check_at_.reset();
            check_watch();
        }
        if (renew_at_ && *renew_at_ <= now) {
            renew_at_.reset();
            renew();
        }
        if (lease_retry_at_ && *lease_retry_at_ <= now) {
            lease_retry_at_.reset();
            ensure_lease();
        }
        arm_timer();
    }

    EtcdSourceOptions options_;
    Handlers handlers_;
    HttpClient http_;
    EtcdClient client_;
    std::unique_ptr<Layout> layout_;
    FlannelLayout* flannel_ = nullptr;   // the layout, when this node holds a Flannel lease
    int epoll_fd_;
    int timer_fd_;
    std::mt19937 random_;

    Phase phase_ = Phase::kSyncing;
    HttpClient::RequestId request_ = 0;   // the read or the watch
    std::int64_t revision_ = 0;           // the last revision applied
    bool resync_needed_ = false;
    unsigned attempts_ = 0;
    std::optional<std::string> last_error_;
    std::uint64_t syncs_ = 0;
    std::uint64_t events_ = 0;
    std::optional<Clock::time_point> reconnect_at_;
    std::optional<Clock::time_point> watch_deadline_;   // a watch not yet "created"
    WatchLiveness liveness_{options_.watch_check};
    std::optional<Clock::time_point> watch_check_at_;
    HttpClient::RequestId probe_request_ = 0;
    std::string last_probe_error_;
    std::uint64_t watch_checks_ = 0;
    std::uint64_t watch_restarts_ = 0;

    LeaseStatus lease_;
    HttpClient::RequestId lease_request_ = 0;
    bool lease_dirty_ = false;
    std::string lease_value_;              // what we last wrote
    std::int64_t lease_mod_revision_ = 0;  // its revision
    std::int64_t earlier_lease_ = 0;       // an earlier run's lease of our key, not yet tried
    std::optional<Clock::time_point> renew_at_;
    std::optional<Clock::time_point> lease_retry_at_;
};

Result<std::unique_ptr<EtcdSource>> EtcdSource::start(EtcdSourceOptions options, Handlers handlers) {
    auto http = HttpClient::create();
    if (!http)
        return std::move(http).error();
    const int epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
    const int timer_fd = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (epoll_fd < 0 || timer_fd < 0) {
        const Error error{Errc::kSystem, std::string("etcd source: ") + std::strerror(errno)};
        if (epoll_fd >= 0)
            ::close(epoll_fd);
        if (timer_fd >= 0)
            ::close(timer_fd);
        return error;
    }
    for (int fd : {timer_fd, http->fd()}) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = fd;
        ::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev);
    }
    auto impl = std::make_unique<Impl>(std::move(options), std::move(handlers), std::move(*http), epoll_fd, timer_fd);
    impl->begin();
    return std::make_unique<EtcdSource>(std::move(impl));
}

EtcdSource::EtcdSource(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
EtcdSource::~EtcdSource() = default;
int EtcdSource::fd() const noexcept { return impl_->fd(); }
void EtcdSource::dispatch() { impl_->dispatch(); }
bool EtcdSource::synced() const noexcept { return impl_->synced(); }
void EtcdSource::run_until_synced(std::chrono::milliseconds deadline) { impl_->run_until_synced(deadline); }
EtcdStatus EtcdSource::status() const { return impl_->status(); }
std::vector<Rejection> EtcdSource::rejections(std::size_t max) const { return impl_->rejections(max); }

}  // namespace podfwd::control::etcd
