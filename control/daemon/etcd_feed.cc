// etcd as a source of podfwd-control (control/etcd/): its snapshots and
// changes translated into the source contract (sources.cc), its status into
// `podfwdctl sources`.
#include <spdlog/spdlog.h>

#include "control/daemon/control.h"
#include "control/daemon/etcd_routes.h"

namespace podfwd::control {

Status Control::start_etcd() {
    if (!options_.etcd)
        return ok();
    state(Source::kEtcd) = SourceState{true, SourcePhase::kSyncing, {}, 0, std::nullopt, 0};
    etcd::EtcdSource::Handlers handlers;
    handlers.snapshot = [this](const std::map<Prefix4, etcd::EtcdRoute>& routes) {
        std::vector<RouteSpec> specs;
        specs.reserve(routes.size());
        for (const auto& [prefix, route] : routes) {
            if (auto spec = accepted_etcd_route(route, options_.node, accept_))
                specs.push_back(*spec);
            else
                refuse(Source::kEtcd, spec.error().message);
        }
        replace_source_routes(Source::kEtcd, specs);
        etcd_saved_.changed();
        if (reconciled_)
            (void)commit();
    };
    handlers.changes = [this](std::span<const etcd::RouteChange> changes) {
        for (const etcd::RouteChange& change : changes) {
            if (!change.route) {
                withdraw(change.prefix, Source::kEtcd);
            } else if (auto spec = accepted_etcd_route(*change.route, options_.node, accept_)) {
                set_source_route(*spec);
            } else {   // what it stated before for the prefix is stale
                refuse(Source::kEtcd, spec.error().message);
                withdraw(change.prefix, Source::kEtcd);
            }
        }
        etcd_saved_.changed();
        if (reconciled_)
            (void)commit();
    };
    handlers.rejected = [this](const etcd::Rejection& rejection) { refuse(Source::kEtcd, rejection.reason); };

    auto source = etcd::EtcdSource::start(*options_.etcd, std::move(handlers));
    if (!source)
        return Error{source.error().code, "etcd: " + source.error().message};
    etcd_ = std::move(*source);
    // The table is reconciled once, with every source loaded; a source
    // missing then would have its routes withdrawn from a running dataplane.
    etcd_->run_until_synced(options_.etcd_start_wait);
    if (!etcd_->synced())
        if (auto s = load_saved_etcd_routes(); !s)
            spdlog::error("etcd: {}", s.error().message);
    refresh_etcd_state();
    return ok();
}

// etcd did not answer at start: rather than withdraw its routes from a
// running dataplane when the table is reconciled, start from what it stated
// last; its first read replaces them by difference.
Status Control::load_saved_etcd_routes() {
    auto saved = control::load_cli_state(options_.etcd_state_path());
    if (!saved)
        return Error{saved.error().code, "its routes of the last run: " + saved.error().message};
    // Saved under another --accept perhaps: today's filter decides.
    std::erase_if(saved->routes, [&](RouteSpec& spec) {
        spec.source = Source::kEtcd;
        const std::string why =
            spec.mode == ModeRequest::kLocal ? accept_.refusal_of_own(spec.prefix) : accept_.refusal(spec.prefix);
        if (!why.empty())
            refuse(Source::kEtcd, "saved route " + describe(spec) + ": " + why);
        return !why.empty();
    });
    if (saved->routes.empty()) {
        spdlog::warn("etcd: no full read within {} ms; starting without etcd's routes (they follow once it answers)",
                     options_.etcd_start_wait.count());
        return ok();
    }
    spdlog::warn("etcd: no full read within {} ms; starting from the {} routes it stated last ({}), until it answers",
                 options_.etcd_start_wait.count(), saved->routes.size(), options_.etcd_state_path());
    replace_source_routes(Source::kEtcd, saved->routes);
    return ok();
}

void Control::on_etcd_readable() {
    etcd_->dispatch();
    refresh_etcd_state();
}

void Control::refresh_etcd_state() {
    if (!etcd_)
        return;
    const etcd::EtcdStatus s = etcd_->status();
    SourceState& st = state(Source::kEtcd);
    st.phase = s.phase == etcd::Phase::kUp ? SourcePhase::kUp
             : s.phase == etcd::Phase::kError ? SourcePhase::kError
                                              : SourcePhase::kSyncing;
    st.detail = std::string(s.layout) + " at " + s.endpoint + ", revision " + std::to_string(s.revision) + ", " +
                std::to_string(s.counters.keys) + " keys, " + std::to_string(s.counters.rejected) + " rejected";
    if (s.last_error)
        st.last_error = s.last_error;
    if (s.lease && s.lease->state != etcd::LeaseState::kHeld)
        st.detail += std::string("; lease ") + etcd::lease_state_name(s.lease->state) +
                     (s.lease->detail.empty() ? "" : ": " + s.lease->detail);
    // Routes may flow while this node's own lease cannot be held: the other
    // nodes then have no route to our pods, which is an error all the same.
    if (s.lease && (s.lease->state == etcd::LeaseState::kConflict || s.lease->state == etcd::LeaseState::kError)) {
        st.phase = SourcePhase::kError;
        st.last_error = "this node's lease: " + s.lease->detail;
    }
}

Control::json Control::etcd_json() const {
    if (!etcd_)
        return nullptr;
    const etcd::EtcdStatus s = etcd_->status();
    json rejections = json::array();
    for (const etcd::Rejection& r : etcd_->rejections(20))
        rejections.push_back({{"key", r.key}, {"reason", r.reason}});
    json lease = nullptr;
    if (s.lease)
        lease = {{"key", s.lease->key}, {"id", s.lease->id}, {"state", etcd::lease_state_name(s.lease->state)},
                 {"detail", s.lease->detail.empty() ? json(nullptr) : json(s.lease->detail)}};
    return {{"endpoint", s.endpoint},
            {"layout", s.layout},
            {"revision", s.revision},
            {"keys", s.counters.keys},
            {"routes", s.routes},
            {"rejected", s.counters.rejected},
            {"rejections", std::move(rejections)},
            {"lease", std::move(lease)},
            {"syncs", s.syncs},
            {"events", s.events},
            {"watch_checks", s.watch_checks},
            {"watch_restarts", s.watch_restarts},
            {"last_error", s.last_error ? json(*s.last_error) : json(nullptr)}};
}

}  // namespace podfwd::control
