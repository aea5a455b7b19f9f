#include "control/bgp/bgp_session.h"

#include <sys/stat.h>
#include <sys/wait.h>

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <random>
#include <set>

#include "control/bgp/gobgp_api.h"
#include "gobgp.grpc.pb.h"

namespace podfwd::control::bgp {

namespace {

using Stub = apipb::GobgpApi::Stub;

std::int64_t unix_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string describe(const grpc::Status& s) {
    return s.error_message().empty() ? "gRPC code " + std::to_string(static_cast<int>(s.error_code()))
                                     : s.error_message();
}


std::shared_ptr<grpc::Channel> open_channel(const std::string& target) {
    grpc::ChannelArguments args;
    // gobgpd's first best-path dump is one message: a million paths are
    // ~100 MB, beyond gRPC's default 4 MB.
    args.SetMaxReceiveMessageSize(-1);
    // A gobgpd just started takes a moment to listen: retry its socket in
    // tens of milliseconds, not gRPC's default of a second and growing.
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 50);
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 50);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
}

}  // namespace

// One call's context, bounded, and cancelled by stop(): shutdown never
// waits out a timeout.
class GobgpSession::Call {
public:
    Call(GobgpSession& session, std::chrono::milliseconds timeout) : session_(session) {
        std::lock_guard lock(session_.mu_);
        ctx_.set_deadline(std::chrono::system_clock::now() +
                          (session_.stopping_ ? std::chrono::milliseconds(0) : timeout));
        session_.calls_.insert(&ctx_);
    }
    ~Call() {
        std::lock_guard lock(session_.mu_);
        session_.calls_.erase(&ctx_);
    }
    Call(const Call&) = delete;
    Call& operator=(const Call&) = delete;
    grpc::ClientContext* get() noexcept { return &ctx_; }

private:
    GobgpSession& session_;
    grpc::ClientContext ctx_;
};

GobgpSession::GobgpSession(const BgpOptions& options, std::function<void()> wake)
    : options_(options), wake_(std::move(wake)) {
    api_ = options_.api.empty() ? "unix://" + options_.child_api_socket : options_.api;
}

void GobgpSession::start() {
    session_thread_ = std::thread([this] { run_sessions(); });
    poller_thread_ = std::thread([this] {
        for (;;) {
            std::unique_lock lock(mu_);
            // Listing peers walks gobgpd's RIB (Adj-RIB-In counts) on its main
            // loop: seldom, but at once on a session change and often while
            // stale routes wait on End-of-RIB.
            cv_.wait_for(lock, fast_polling_ ? std::chrono::milliseconds(250) : std::chrono::milliseconds(5000),
                         [this] { return stopping_ || peer_changed_; });
            if (stopping_)
                return;
            lock.unlock();
            poll_peers();
        }
    });
}

void GobgpSession::stop() {
    {
        std::lock_guard lock(mu_);
        if (stopping_ && !session_thread_.joinable())
            return;
        stopping_ = true;
        for (grpc::ClientContext* call : calls_)
            call->TryCancel();
    }
    cv_.notify_all();
    if (poller_thread_.joinable())
        poller_thread_.join();
    if (session_thread_.joinable())
        session_thread_.join();
    // Our gobgpd ends without a word to its peers (see gobgpd_process.h);
    // someone else's keeps advertising our pod CIDRs, as their graceful
    // restart would: the dataplane forwards on while we are away.
    child_.stop();
}

bool GobgpSession::stopping() const {
    std::lock_guard lock(mu_);
    return stopping_;
}

bool GobgpSession::pause(std::chrono::milliseconds d) {
    std::unique_lock lock(mu_);
    return !cv_.wait_for(lock, d, [this] { return stopping_; });
}

void GobgpSession::post(SessionEvent event) {
    bool was_empty = false;
    {
        std::lock_guard lock(mu_);
        was_empty = queue_.empty();
        queue_.push_back(std::move(event));
    }
    if (was_empty)
        wake_();
}

std::vector<SessionEvent> GobgpSession::take_events() {
    std::lock_guard lock(mu_);
    return std::exchange(queue_, {});
}

void GobgpSession::run_sessions() {
    std::mt19937 jitter(std::random_device{}());
    auto backoff = options_.backoff_min;
    while (!stopping()) {
        bool configured = false;
        bool child_exited = false;
        std::string error = run_session(configured, child_exited);
        {
            std::lock_guard lock(mu_);
            channel_.reset();
        }
        if (stopping())
            return;
        post(Lost{std::move(error), child_exited});
        if (configured)
            backoff = options_.backoff_min;
        // Up to a quarter more, so that nodes restarted together do not retry in step.
        const auto extra = std::uniform_int_distribution<std::int64_t>(0, backoff.count() / 4)(jitter);
        if (!pause(backoff + std::chrono::milliseconds(extra)))
            return;
        backoff = std::min(backoff * 2, options_.backoff_max);
    }
}

std::string GobgpSession::run_session(bool& configured, bool& child_exited) {
    if (options_.api.empty() && !child_.running()) {
        auto child = GobgpdProcess::spawn(options_.gobgpd, options_.child_api_socket, options_.child_log);
        if (!child)
            return "cannot start gobgpd: " + child.error().message;
        child_ = std::move(*child);
        post(GobgpdStarted{child_.pid(), ++child_starts_});
    }
    std::string error;
    auto channel = wait_for_api(error);
    if (!channel || !configure(channel, error)) {
        if (options_.api.empty())
            if (auto how = child_.exited()) {
                child_exited = true;
                return "gobgpd " + *how + " (its log: " + options_.child_log + ")";
            }
        return error;
    }
    {
        std::lock_guard lock(mu_);
        channel_ = channel;
    }
    configured = true;
    post(Configured{});

    // The event stream first, without gobgpd's dump: a RIB of a million
    // paths would be one message past gobgpd's 256 MB send limit. Once the
    // watch is registered (gobgpd then says END_OF_INIT of its peers), the
    // RIB is listed a destination per message; the events meanwhile wait in
    // the stream and are applied after it, so the last word on each prefix
    // is the newest.
    Call watch(*this, std::chrono::hours(24 * 365));
    auto stub = apipb::GobgpApi::NewStub(channel);
    apipb::WatchEventRequest request;
    request.mutable_peer();
    request.mutable_table()->add_filters()->set_type(apipb::WatchEventRequest::Table::Filter::BEST);
    auto reader = stub->WatchEvent(watch.get(), request);
    apipb::WatchEventResponse response;
    bool registered = false;
    while (!registered && reader->Read(&response))
        registered = response.has_peer() && response.peer().type() == apipb::WatchEventResponse::PeerEvent::END_OF_INIT;
    if (registered) {
        Dump dump;
        if (auto listed = list_rib(*stub, dump); !listed.empty()) {
            watch.get()->TryCancel();
            (void)reader->Finish();
            return listed;
        }
        post(std::move(dump));
    }
    while (registered && reader->Read(&response)) {
        if (response.has_table()) {
            Paths paths;
            paths.paths.reserve(static_cast<std::size_t>(response.table().paths_size()));
            for (const apipb::Path& path : response.table().paths())
                add_update(path, paths.paths, paths.unreadable);
            post(std::move(paths));
        } else if (response.has_peer()) {
            peer_changed_ = true;
            cv_.notify_all();   // the poller looks at once
        }
    }
    const grpc::Status status = reader->Finish();
    if (options_.api.empty()) {
        // The stream ends as gobgpd dies; give the exit a moment to be reaped.
        for (int i = 0; i < 50; ++i) {
            if (auto how = child_.exited()) {
                child_exited = true;
                return "gobgpd " + *how + " (its log: " + options_.child_log + ")";
            }
            if (!pause(std::chrono::milliseconds(20)))
                break;
        }
    }
    return "gobgpd's event stream ended: " + describe(status);
}

std::shared_ptr<grpc::Channel> GobgpSession::wait_for_api(std::string& error) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!stopping()) {
        // A connection tried before our child listens leaves the channel in
        // gRPC's reconnect backoff for seconds: wait for the socket first,
        // and try each time on a fresh channel.
        struct stat st {};
        const bool listening = !options_.api.empty() ||
                               (::stat(options_.child_api_socket.c_str(), &st) == 0 && S_ISSOCK(st.st_mode));
        if (listening) {
            auto channel = open_channel(api_);
            auto stub = apipb::GobgpApi::NewStub(channel);
            Call ctx(*this, std::chrono::milliseconds(1000));
            apipb::GetBgpResponse response;
            const grpc::Status s = stub->GetBgp(ctx.get(), apipb::GetBgpRequest(), &response);
            if (s.ok())
                return channel;
            error = "gobgpd's API at " + api_ + " does not answer: " + describe(s);
        } else {
            error = "gobgpd did not open its API socket " + options_.child_api_socket;
        }
        if (std::chrono::steady_clock::now() >= deadline)
            return nullptr;
        if (options_.api.empty() && child_.pid() > 0) {
            // A child that exits at once (a bad binary, a busy port) is not waited for.
            siginfo_t info{};
            if (::waitid(P_PID, static_cast<id_t>(child_.pid()), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
                info.si_pid != 0)
                return nullptr;
        }
        if (!pause(std::chrono::milliseconds(20)))
            return nullptr;
    }
    return nullptr;
}

void GobgpSession::add_update(const apipb::Path& path, std::vector<PathUpdate>& out, std::uint64_t& unreadable) {
    if (auto u = path_update(path)) {
        unreadable += u->unusable;
        out.push_back(*u);
    } else {
        unreadable += path.family().afi() == apipb::Family::AFI_IP && path.family().safi() == apipb::Family::SAFI_UNICAST;
    }
}

std::string GobgpSession::list_rib(Stub& stub, Dump& dump) {
    Call call(*this, std::chrono::minutes(10));
    apipb::ListPathRequest request;
    request.set_table_type(apipb::GLOBAL);
    request.mutable_family()->set_afi(apipb::Family::AFI_IP);
    request.mutable_family()->set_safi(apipb::Family::SAFI_UNICAST);
    auto reader = stub.ListPath(call.get(), request);
    apipb::ListPathResponse response;
    while (reader->Read(&response))
        for (const apipb::Path& path : response.destination().paths())
            if (path.best())
                add_update(path, dump.paths, dump.unreadable);
    if (auto s = reader->Finish(); !s.ok())
        return "listing gobgpd's RIB: " + describe(s);
    return {};
}

bool GobgpSession::configure(const std::shared_ptr<grpc::Channel>& channel, std::string& error) {
    auto stub = apipb::GobgpApi::NewStub(channel);
    {
        Call ctx(*this, options_.call_timeout);
        apipb::GetBgpResponse current;
        if (auto s = stub->GetBgp(ctx.get(), apipb::GetBgpRequest(), &current); !s.ok()) {
            error = "GetBgp: " + describe(s);
            return false;
        }
        // A gobgpd already started (ours after a lost stream, or someone
        // else's) keeps its sessions: only its AS must be ours.
        if (current.global().asn() != 0 && current.global().asn() != options_.asn) {
            error = "gobgpd at " + api_ + " runs AS " + std::to_string(current.global().asn()) + ", not " +
                    std::to_string(options_.asn);
            return false;
        }
        if (current.global().asn() == 0) {
            Call start_ctx(*this, options_.call_timeout);
            apipb::StartBgpRequest request;
            *request.mutable_global() = global_config(options_);
            google::protobuf::Empty empty;
            if (auto s = stub->StartBgp(start_ctx.get(), request, &empty); !s.ok()) {
                error = "StartBgp (AS " + std::to_string(options_.asn) + "): " + describe(s);
                return false;
            }
        }
    }
    std::set<Ipv4Addr> existing;
    {
        Call ctx(*this, options_.call_timeout);
        auto reader = stub->ListPeer(ctx.get(), apipb::ListPeerRequest());
        apipb::ListPeerResponse response;
        while (reader->Read(&response))
            if (auto a = parse_ipv4(response.peer().conf().neighbor_address()))
                existing.insert(*a);
        if (auto s = reader->Finish(); !s.ok()) {
            error = "ListPeer: " + describe(s);
            return false;
        }
    }
    // Our paths before our peers: a session up before them would send an
    // End-of-RIB without our pod CIDRs, and peers would drop them.
    withdraw_stale_own_paths(*stub);
    for (const Prefix4& prefix : options_.advertise) {
        Call ctx(*this, options_.call_timeout);
        apipb::AddPathRequest request;
        request.set_table_type(apipb::GLOBAL);
        *request.mutable_path() = own_path(prefix, options_.node_ip);
        apipb::AddPathResponse response;
        if (auto s = stub->AddPath(ctx.get(), request, &response); !s.ok())
            post(ConfigWarning{"advertising " + prefix.str() + ": " + describe(s), std::nullopt});
    }
    for (const PeerConfig& peer : options_.peers) {
        if (existing.count(peer.address))
            continue;
        Call ctx(*this, options_.call_timeout);
        apipb::AddPeerRequest request;
        *request.mutable_peer() = peer_config(peer, options_);
        google::protobuf::Empty empty;
        if (auto s = stub->AddPeer(ctx.get(), request, &empty); !s.ok())
            post(ConfigWarning{"peer " + format_ipv4(peer.address) + " refused by gobgpd: " + describe(s), peer.address});
    }
    return true;
}

// Paths of ours for pod CIDRs this node no longer has (a gobgpd that
// outlived a podfwd-control started since with other --pod-cidr): withdrawn.
// gobgpd has no query for its local paths alone: one walk of its RIB per
// connection, empty for a gobgpd just started.
void GobgpSession::withdraw_stale_own_paths(Stub& stub) {
    std::vector<Prefix4> stale;
    {
        Call ctx(*this, options_.call_timeout);
        apipb::ListPathRequest request;
        request.set_table_type(apipb::GLOBAL);
        request.mutable_family()->set_afi(apipb::Family::AFI_IP);
        request.mutable_family()->set_safi(apipb::Family::SAFI_UNICAST);
        auto reader = stub.ListPath(ctx.get(), request);
        apipb::ListPathResponse response;
        while (reader->Read(&response))
            for (const apipb::Path& path : response.destination().paths()) {
                const auto u = path_update(path);
                if (u && u->own && u->next_hop == options_.node_ip &&
                    std::find(options_.advertise.begin(), options_.advertise.end(), u->prefix) == options_.advertise.end())
                    stale.push_back(u->prefix);
            }
        if (auto s = reader->Finish(); !s.ok()) {
            post(ConfigWarning{"listing gobgpd's paths: " + describe(s), std::nullopt});
            return;
        }
    }
    for (const Prefix4& prefix : stale) {
        Call ctx(*this, options_.call_timeout);
        apipb::DeletePathRequest request;
        request.set_table_type(apipb::GLOBAL);
        *request.mutable_path() = own_path(prefix, options_.node_ip);
        google::protobuf::Empty empty;
        if (auto s = stub.DeletePath(ctx.get(), request, &empty); !s.ok())
            post(ConfigWarning{"withdrawing " + prefix.str() + " (no longer a --pod-cidr): " + describe(s), std::nullopt});
    }
}

void GobgpSession::poll_peers() {
    std::shared_ptr<grpc::Channel> channel;
    {
        std::lock_guard lock(mu_);
        channel = channel_;
    }
    // Cleared first: a flag left set would wake the poller again at once.
    const bool peer_changed = peer_changed_.exchange(false);
    if (!channel)
        return;
    auto stub = apipb::GobgpApi::NewStub(channel);
    Call ctx(*this, std::chrono::seconds(2));
    auto reader = stub->ListPeer(ctx.get(), apipb::ListPeerRequest());
    apipb::ListPeerResponse response;
    PeersPolled polled;
    const std::int64_t now = unix_now();
    while (reader->Read(&response))
        polled.peers.push_back(peer_status(response.peer(), now));
    if (!reader->Finish().ok())
        return;
    // What was advertised: the size of each peer's Adj-RIB-Out, which gobgpd
    // computes from its whole RIB on every ask (ListPeer's own count would
    // also take graceful restart's End-of-RIB for a route): every tenth
    // poll, and after a session changed state.
    if (polls_++ % 10 == 0 || peer_changed) {
        for (const PeerStatus& peer : polled.peers) {
            Call table_ctx(*this, std::chrono::seconds(2));
            apipb::GetTableRequest request;
            request.set_table_type(apipb::ADJ_OUT);
            request.set_name(format_ipv4(peer.address));
            request.mutable_family()->set_afi(apipb::Family::AFI_IP);
            request.mutable_family()->set_safi(apipb::Family::SAFI_UNICAST);
            apipb::GetTableResponse table;
            if (stub->GetTable(table_ctx.get(), request, &table).ok())
                advertised_[peer.address] = peer.state == SessionState::kEstablished ? table.num_destination() : 0;
        }
    }
    for (PeerStatus& peer : polled.peers)
        peer.advertised = advertised_[peer.address];
    polled.seq = polls_;
    post(std::move(polled));
}
}  // namespace podfwd::control::bgp
