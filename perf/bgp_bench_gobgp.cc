#include "perf/bgp_bench_gobgp.h"

#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <filesystem>
#include <stdexcept>

#include "gobgp.grpc.pb.h"
#include "gobgp.pb.h"

#include "perf/bench_util.h"
#include "perf/bgp_bench_bird.h"
#include "perf/control_bench_proc.h"

namespace podfwd::perf::bgp {

namespace {

apipb::Family ipv4_unicast() {
    apipb::Family f;
    f.set_afi(apipb::Family::AFI_IP);
    f.set_safi(apipb::Family::SAFI_UNICAST);
    return f;
}

void deadline(grpc::ClientContext& ctx, std::chrono::milliseconds d) {
    ctx.set_deadline(std::chrono::system_clock::now() + d);
}

std::string describe(const grpc::Status& s) {
    return "gRPC " + std::to_string(static_cast<int>(s.error_code())) + ": " + s.error_message();
}

}  // namespace

struct GobgpClient::Impl {
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<apipb::GobgpApi::Stub> stub;
};

GobgpClient::GobgpClient(const std::string& target) : impl_(std::make_unique<Impl>()) {
    impl_->channel = grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
    impl_->stub = apipb::GobgpApi::NewStub(impl_->channel);
}

GobgpClient::~GobgpClient() = default;

bool GobgpClient::answers() {
    grpc::ClientContext ctx;
    deadline(ctx, std::chrono::milliseconds(500));
    apipb::GetBgpRequest request;
    apipb::GetBgpResponse response;
    return impl_->stub->GetBgp(&ctx, request, &response).ok();
}

// The settings of control/bgp/gobgp_api.cc (global_config, peer_config) for
// one passive peer, BIRD; mirrored here so that both gobgpd do the same work.
void GobgpClient::configure(std::uint32_t restart_time) {
    {
        apipb::StartBgpRequest request;
        apipb::Global& g = *request.mutable_global();
        g.set_asn(kNodeAs);
        g.set_router_id(kNodeIp);
        g.set_listen_port(kBgpPort);
        g.add_listen_addresses(kNodeIp);
        if (restart_time > 0) {
            g.mutable_graceful_restart()->set_enabled(true);
            g.mutable_graceful_restart()->set_restart_time(restart_time);
        }
        grpc::ClientContext ctx;
        deadline(ctx, std::chrono::seconds(5));
        google::protobuf::Empty empty;
        if (auto s = impl_->stub->StartBgp(&ctx, request, &empty); !s.ok())
            throw std::runtime_error("gobgpd StartBgp: " + describe(s));
    }
    apipb::AddPeerRequest request;
    apipb::Peer& p = *request.mutable_peer();
    apipb::PeerConf& conf = *p.mutable_conf();
    conf.set_neighbor_address(kBirdIp);
    conf.set_peer_asn(kBirdAs);
    conf.set_description("podfwd");
    apipb::Transport& transport = *p.mutable_transport();
    transport.set_local_address(kNodeIp);
    transport.set_remote_port(kBirdPort);
    transport.set_passive_mode(true);
    apipb::TimersConfig& timers = *p.mutable_timers()->mutable_config();
    timers.set_hold_time(90);
    timers.set_keepalive_interval(30);
    timers.set_connect_retry(5);
    apipb::AfiSafi& family = *p.add_afi_safis();
    *family.mutable_config()->mutable_family() = ipv4_unicast();
    family.mutable_config()->set_enabled(true);
    if (restart_time > 0) {
        p.mutable_graceful_restart()->set_enabled(true);
        p.mutable_graceful_restart()->set_restart_time(restart_time);
        family.mutable_mp_graceful_restart()->mutable_config()->set_enabled(true);
    }
    grpc::ClientContext ctx;
    deadline(ctx, std::chrono::seconds(5));
    google::protobuf::Empty empty;
    if (auto s = impl_->stub->AddPeer(&ctx, request, &empty); !s.ok())
        throw std::runtime_error("gobgpd AddPeer " + std::string(kBirdIp) + ": " + describe(s));
}

std::optional<std::uint64_t> GobgpClient::destinations(double* call_ms) {
    apipb::GetTableRequest request;
    request.set_table_type(apipb::GLOBAL);
    *request.mutable_family() = ipv4_unicast();
    grpc::ClientContext ctx;
    deadline(ctx, std::chrono::seconds(10));
    apipb::GetTableResponse response;
    const auto t0 = Clock::now();
    const grpc::Status s = impl_->stub->GetTable(&ctx, request, &response);
    if (call_ms != nullptr)
        *call_ms = ms_since(t0, Clock::now());
    if (!s.ok())
        return std::nullopt;
    return response.num_destination();
}

int GobgpClient::peer_state() {
    apipb::ListPeerRequest request;
    request.set_address(kBirdIp);
    grpc::ClientContext ctx;
    deadline(ctx, std::chrono::seconds(2));
    auto reader = impl_->stub->ListPeer(&ctx, request);
    apipb::ListPeerResponse response;
    int state = -1;
    while (reader->Read(&response))
        if (response.peer().conf().neighbor_address() == kBirdIp)
            state = static_cast<int>(response.peer().state().session_state());
    return reader->Finish().ok() ? state : -1;
}

// ---- BareGobgpd ----

BareGobgpd::BareGobgpd(std::string binary, std::string dir)
    : binary_(std::move(binary)), dir_(std::move(dir)), socket_(dir_ + "/gobgpd.api"), log_(dir_ + "/gobgpd.log") {}

BareGobgpd::~BareGobgpd() { stop(); }

void BareGobgpd::stop() {
    client_.reset();
    if (pid_ > 0) {
        perf::stop(pid_);
        untrack_child(pid_);
        pid_ = -1;
    }
    std::error_code ec;
    std::filesystem::remove(socket_, ec);
}

double BareGobgpd::start(std::uint32_t restart_time) {
    stop();
    std::error_code ec;
    std::filesystem::remove(log_, ec);
    const auto t0 = Clock::now();
    pid_ = spawn({binary_, "--api-hosts=unix://" + socket_, "--pprof-disable", "--log-plain", "--log-level=info"}, log_);
    track_child(pid_);
    for (;;) {
        int status = 0;
        if (!alive(pid_, &status)) {
            untrack_child(pid_);
            pid_ = -1;
            throw std::runtime_error("gobgpd exited (" + describe_status(status) + "):\n" + read_file(log_));
        }
        // The channel only once the socket is there: a first connection
        // refused puts a gRPC channel into its reconnect backoff (1 s, 1.6 s, …).
        if (!client_ && ::access(socket_.c_str(), F_OK) == 0)
            client_ = std::make_unique<GobgpClient>("unix://" + socket_);
        if (client_ && client_->answers())
            break;
        if (Clock::now() - t0 > std::chrono::seconds(20))
            throw std::runtime_error("gobgpd: no API on " + socket_ + " within 20 s:\n" + read_file(log_));
        nap(std::chrono::milliseconds(2));
    }
    client_->configure(restart_time);
    return ms_since(t0, Clock::now());
}

std::string BareGobgpd::version() const {
    const std::string out = dir_ + "/gobgpd.version";
    try {
        (void)run_timed({"sh", "-c", "\"$0\" --version > \"$1\" 2>&1", binary_, out}, std::chrono::seconds(10));
    } catch (const std::exception&) {
        return "?";
    }
    std::string v = read_file(out, 200);
    while (!v.empty() && (v.back() == '\n' || v.back() == ' '))
        v.pop_back();
    const auto at = v.rfind(' ');
    return at == std::string::npos ? v : v.substr(at + 1);
}

}  // namespace podfwd::perf::bgp
