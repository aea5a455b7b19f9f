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

// A context for one unary call, bounded.
void bound(grpc::ClientContext& ctx, std::chrono::milliseconds timeout) {
    ctx.set_deadline(std::chrono::system_clock::now() + timeout);
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

GobgpSession::GobgpSession(const BgpOptions& options, std::function<void()> wake)
    : options_(options), wake_(std::move(wake)) {
    api_ = options_.api.empty() ? "unix://" + options_.child_api_socket : options_.api;
}

void GobgpSession::start() {
    session_thread_ = std::thread([this] { run_sessions(); });
    poller_thread_ = std::thread([this] {
        for (;;) {
            std::unique_lock lock(mu_);
            cv_.wait_for(lock, fast_polling_ ? std::chrono::milliseconds(250) : std::chrono::milliseconds(1000),
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
        if (watch_ != nullptr)
            watch_->TryCancel();
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

    grpc::ClientContext ctx;
    {
        std::lock_guard lock(mu_);
        if (stopping_)
            return "stopping";
        watch_ = &ctx;
    }
    auto stub = apipb::GobgpApi::NewStub(channel);
    apipb::WatchEventRequest request;
    request.mutable_peer();
    auto* best = request.mutable_table()->add_filters();
    best->set_type(apipb::WatchEventRequest::Table::Filter::BEST);
    best->set_init(true);
    auto reader = stub->WatchEvent(&ctx, request);
    bool first_table = true;
    apipb::WatchEventResponse response;
    while (reader->Read(&response)) {
        if (response.has_table()) {
            std::vector<PathUpdate> updates;
            updates.reserve(static_cast<std::size_t>(response.table().paths_size()));
            std::uint64_t unreadable = 0;
            for (const apipb::Path& path : response.table().paths()) {
                if (auto u = path_update(path))
                    updates.push_back(*u);
                else
                    unreadable += path.family().afi() == apipb::Family::AFI_IP &&
                                  path.family().safi() == apipb::Family::SAFI_UNICAST;
            }
            if (first_table)
                post(Dump{std::move(updates), unreadable});
            else
                post(Paths{std::move(updates), unreadable});
            first_table = false;
        } else if (response.has_peer()) {
            peer_changed_ = true;
            cv_.notify_all();   // the poller looks at once
        }
    }
    const grpc::Status status = reader->Finish();
    {
        std::lock_guard lock(mu_);
        watch_ = nullptr;
    }
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
            grpc::ClientContext ctx;
            bound(ctx, std::chrono::milliseconds(1000));
            apipb::GetBgpResponse response;
            const grpc::Status s = stub->GetBgp(&ctx, apipb::GetBgpRequest(), &response);
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

bool GobgpSession::configure(const std::shared_ptr<grpc::Channel>& channel, std::string& error) {
    auto stub = apipb::GobgpApi::NewStub(channel);
    {
        grpc::ClientContext ctx;
        bound(ctx, options_.call_timeout);
        apipb::GetBgpResponse current;
        if (auto s = stub->GetBgp(&ctx, apipb::GetBgpRequest(), &current); !s.ok()) {
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
            grpc::ClientContext start_ctx;
            bound(start_ctx, options_.call_timeout);
            apipb::StartBgpRequest request;
            *request.mutable_global() = global_config(options_);
            google::protobuf::Empty empty;
            if (auto s = stub->StartBgp(&start_ctx, request, &empty); !s.ok()) {
                error = "StartBgp (AS " + std::to_string(options_.asn) + "): " + describe(s);
                return false;
            }
        }
    }
    std::set<Ipv4Addr> existing;
    {
        grpc::ClientContext ctx;
        bound(ctx, options_.call_timeout);
        auto reader = stub->ListPeer(&ctx, apipb::ListPeerRequest());
        apipb::ListPeerResponse response;
        while (reader->Read(&response))
            if (auto a = parse_ipv4(response.peer().conf().neighbor_address()))
                existing.insert(*a);
        if (auto s = reader->Finish(); !s.ok()) {
            error = "ListPeer: " + describe(s);
            return false;
        }
    }
    for (const PeerConfig& peer : options_.peers) {
        if (existing.count(peer.address))
            continue;
        grpc::ClientContext ctx;
        bound(ctx, options_.call_timeout);
        apipb::AddPeerRequest request;
        *request.mutable_peer() = peer_config(peer, options_);
        google::protobuf::Empty empty;
        if (auto s = stub->AddPeer(&ctx, request, &empty); !s.ok())
            post(ConfigWarning{"peer " + format_ipv4(peer.address) + " refused by gobgpd: " + describe(s), peer.address});
    }
    withdraw_stale_own_paths(*stub);
    for (const Prefix4& prefix : options_.advertise) {
        grpc::ClientContext ctx;
        bound(ctx, options_.call_timeout);
        apipb::AddPathRequest request;
        request.set_table_type(apipb::GLOBAL);
        *request.mutable_path() = own_path(prefix, options_.node_ip);
        apipb::AddPathResponse response;
        if (auto s = stub->AddPath(&ctx, request, &response); !s.ok())
            post(ConfigWarning{"advertising " + prefix.str() + ": " + describe(s), std::nullopt});
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
        grpc::ClientContext ctx;
        bound(ctx, options_.call_timeout);
        apipb::ListPathRequest request;
        request.set_table_type(apipb::GLOBAL);
        request.mutable_family()->set_afi(apipb::Family::AFI_IP);
        request.mutable_family()->set_safi(apipb::Family::SAFI_UNICAST);
        auto reader = stub.ListPath(&ctx, request);
        apipb::ListPathResponse response;
        while (reader->Read(&response))
            for (const apipb::Path& path : response.destination().paths()) {
                const auto u = path_update(path);
                if (u && u->peer == 0 && u->next_hop == options_.node_ip &&
                    std::find(options_.advertise.begin(), options_.advertise.end(), u->prefix) == options_.advertise.end())
                    stale.push_back(u->prefix);
            }
        if (auto s = reader->Finish(); !s.ok()) {
            post(ConfigWarning{"listing gobgpd's paths: " + describe(s), std::nullopt});
            return;
        }
    }
    for (const Prefix4& prefix : stale) {
        grpc::ClientContext ctx;
        bound(ctx, options_.call_timeout);
        apipb::DeletePathRequest request;
        request.set_table_type(apipb::GLOBAL);
        *request.mutable_path() = own_path(prefix, options_.node_ip);
        google::protobuf::Empty empty;
        if (auto s = stub.DeletePath(&ctx, request, &empty); !s.ok())
            post(ConfigWarning{"withdrawing " + prefix.str() + " (no longer a --pod-cidr): " + describe(s), std::nullopt});
    }
}

void GobgpSession::poll_peers() {
    std::shared_ptr<grpc::Channel> channel;
    {
        std::lock_guard lock(mu_);
        channel = channel_;
    }
    if (!channel)
        return;
    auto stub = apipb::GobgpApi::NewStub(channel);
    grpc::ClientContext ctx;
    bound(ctx, std::chrono::seconds(2));
    auto reader = stub->ListPeer(&ctx, apipb::ListPeerRequest());
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
    if (polls_++ % 10 == 0 || peer_changed_.exchange(false)) {
        for (const PeerStatus& peer : polled.peers) {
            grpc::ClientContext table_ctx;
            bound(table_ctx, std::chrono::seconds(2));
            apipb::GetTableRequest request;
            request.set_table_type(apipb::ADJ_OUT);
            request.set_name(format_ipv4(peer.address));
            request.mutable_family()->set_afi(apipb::Family::AFI_IP);
            request.mutable_family()->set_safi(apipb::Family::SAFI_UNICAST);
            apipb::GetTableResponse table;
            if (stub->GetTable(&table_ctx, request, &table).ok())
                advertised_[peer.address] = peer.state == SessionState::kEstablished ? table.num_destination() : 0;
        }
    }
    for (PeerStatus& peer : polled.peers)
        peer.advertised = advertised_[peer.address];
    polled.seq = polls_;
    post(std::move(polled));
}
}  // namespace podfwd::control::bgp
