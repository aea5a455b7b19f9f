// BGP as a source of podfwd-control (control/bgp/): gobgpd's best paths
// translated into the source contract (sources.cc), its state into
// `podfwdctl sources` and `podfwdctl bgp peers`.
#include <sys/stat.h>

#include <spdlog/spdlog.h>

#include <filesystem>

#include "control/daemon/control.h"

namespace podfwd::control {

namespace {

RouteSpec bgp_spec(const bgp::BgpRoute& route) {
    return RouteSpec{route.prefix, Source::kBgp, route.next_hop, ModeRequest::kDefault, 0, std::nullopt};
}

Status ensure_directory(const std::filesystem::path& dir, bool private_dir) {
    std::error_code ec;
    if (dir.empty() || std::filesystem::exists(dir, ec))
        return ok();
    std::filesystem::create_directories(dir, ec);
    if (ec)
        return Error{Errc::kSystem, "cannot create " + dir.string() + ": " + ec.message()};
    if (private_dir)
        ::chmod(dir.c_str(), 0700);
    return ok();
}

}  // namespace

Status Control::start_bgp() {
    if (!options_.bgp)
        return ok();
    const bgp::BgpOptions& o = *options_.bgp;
    state(Source::kBgp) = SourceState{true, SourcePhase::kSyncing, {}, 0, std::nullopt, 0};
    if (o.api.empty()) {
        // gobgpd's API socket lives beside ours, in a directory only root
        // may enter: whoever reaches that API controls the node's routing.
        if (auto s = ensure_directory(std::filesystem::path(o.child_api_socket).parent_path(), true); !s)
            return Error{s.error().code, "bgp: " + s.error().message};
        if (auto s = ensure_directory(std::filesystem::path(o.child_log).parent_path(), false); !s)
            return Error{s.error().code, "bgp: " + s.error().message};
    }
    // Routes BGP stated before a restart stay, stale, until gobgpd relearns
    // them or the graceful-restart window ends: a restart does not flap the table.
    std::vector<bgp::BgpRoute> initial;
    if (auto saved = control::load_cli_state(options_.bgp_state_path()); saved) {
        for (const RouteSpec& spec : saved->routes)
            initial.push_back({spec.prefix, spec.via, 0});
    } else {
        spdlog::warn("bgp: the routes of the last run: {}", saved.error().message);
    }

    bgp::BgpSource::Handlers handlers;
    handlers.snapshot = [this](const std::map<Prefix4, bgp::BgpRoute>& routes) {
        std::vector<RouteSpec> specs;
        specs.reserve(routes.size());
        for (const auto& [prefix, route] : routes)
            specs.push_back(bgp_spec(route));
        replace_source_routes(Source::kBgp, specs);
        bgp_saved_.changed();
        if (reconciled_)
            (void)commit();
    };
    handlers.changes = [this](std::span<const bgp::BgpChange> changes) {
        for (const bgp::BgpChange& change : changes) {
            if (change.route)
                set_source_route(bgp_spec(*change.route));
            else
                withdraw(change.prefix, Source::kBgp);
        }
        bgp_saved_.changed();
        if (reconciled_)
            (void)commit();
    };
    handlers.refused = [this](const bgp::BgpRoute& route, const std::string& reason) {
        refuse(Source::kBgp, route.prefix.str() + " via " + format_ipv4(route.next_hop) + " from peer " +
                                 format_ipv4(route.peer) + ": " + reason);
    };
    auto source = bgp::BgpSource::start(o, std::move(handlers), std::move(initial));
    if (!source)
        return Error{source.error().code, "bgp: " + source.error().message};
    bgp_ = std::move(*source);
    // A gobgpd that already runs (--gobgp-api, or ours after a crash of
    // podfwd-control) answers at once with its whole RIB; a new one has
    // nothing yet and the saved routes stand in for it.
    bgp_->run_until_synced(std::chrono::milliseconds(1000));
    refresh_bgp_state();
    return ok();
}

void Control::on_bgp_readable() {
    bgp_->dispatch();
    refresh_bgp_state();
}

void Control::tick_bgp() {
    if (!bgp_)
        return;
    bgp_->tick();
    refresh_bgp_state();
    save_source_routes(Source::kBgp, options_.bgp_state_path(), bgp_saved_);
}

void Control::refresh_bgp_state() {
    if (!bgp_)
        return;
    const bgp::BgpStatus s = bgp_->status();
    SourceState& st = state(Source::kBgp);
    st.phase = s.phase == bgp::Phase::kUp ? SourcePhase::kUp
             : s.phase == bgp::Phase::kError ? SourcePhase::kError
                                             : SourcePhase::kSyncing;
    st.detail = "gobgpd at " + s.api + ", AS " + std::to_string(options_.bgp->asn) + ", " +
                std::to_string(s.established) + "/" + std::to_string(s.peers) + " peers established, " +
                std::to_string(s.routes) + " routes";
    if (s.stale > 0)
        st.detail += " (" + std::to_string(s.stale) + " stale)";
    st.detail += ", " + std::to_string(s.refused) + " refused";
    if (s.last_error)
        st.last_error = s.last_error;
}

Control::json Control::bgp_json() const {
    if (!bgp_)
        return nullptr;
    const bgp::BgpStatus s = bgp_->status();
    json accept = json::array();
    for (const Prefix4& p : options_.accept)
        accept.push_back(p.str());
    return {{"asn", options_.bgp->asn},
            {"router_id", format_ipv4(options_.bgp->router_id)},
            {"phase", bgp::phase_name(s.phase)},
            {"api", s.api},
            {"gobgpd_pid", s.gobgpd_pid ? json(*s.gobgpd_pid) : json(nullptr)},
            {"gobgpd_starts", s.gobgpd_starts},
            {"routes", s.routes},
            {"stale", s.stale},
            {"refused", s.refused},
            {"events", s.events},
            {"accept", std::move(accept)},
            {"last_error", s.last_error ? json(*s.last_error) : json(nullptr)}};
}

Control::json Control::bgp_peers(const json&) {
    if (!bgp_)
        return json{{"ok", false}, {"code", "not_found"}, {"error", "BGP is not configured (--bgp-as)"}};
    json peers = json::array();
    for (const bgp::PeerStatus& p : bgp_->peers())
        peers.push_back({{"address", format_ipv4(p.address)},
                         {"port", p.port},
                         {"remote_as", p.remote_as},
                         {"passive", p.passive},
                         {"state", bgp::session_state_name(p.state)},
                         {"uptime_s", p.uptime ? json(p.uptime->count()) : json(nullptr)},
                         {"received", p.received},
                         {"accepted", p.accepted},
                         {"refused", p.refused},
                         {"advertised", p.advertised},
                         {"end_of_rib", p.end_of_rib},
                         {"last_error", p.last_error ? json(*p.last_error) : json(nullptr)}});
    return json{{"bgp", bgp_json()}, {"peers", std::move(peers)}};
}

}  // namespace podfwd::control
