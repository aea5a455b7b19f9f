// The contract between podfwd-control and every network source (kernel,
// etcd, BGP): a full snapshot, then changes. Sources speak
// RouteSpecs; policy, the RIB and the table are handled here once.
#include <spdlog/spdlog.h>

#include "control/daemon/control.h"

namespace podfwd::control {

void Control::replace_source_routes(Source source, std::span<const RouteSpec> specs) {
    SourceState& st = state(source);
    std::vector<ResolvedRoute> routes;
    routes.reserve(specs.size());
    // The source's own changes, for its counter: routes new or different,
    // and routes it held that the snapshot no longer states.
    std::uint64_t differ = 0;
    std::size_t still_held = 0;
    for (const RouteSpec& spec : specs) {
        auto forwarding = resolve(options_.node, spec);
        if (!forwarding) {
            refuse(source, describe(spec) + ": " + forwarding.error().message);
            continue;
        }
        const RibRoute* held = rib_.find(spec.prefix, source);
        still_held += held != nullptr;
        differ += held == nullptr || held->spec != spec;
        routes.push_back({spec, *forwarding});
    }
    st.changes += differ + (rib_.routes_of(source) - still_held);
    const auto changed = rib_.replace_source(source, routes);
    (void)push(changed);
}

void Control::set_source_route(const RouteSpec& spec) {
    auto forwarding = resolve(options_.node, spec);
    if (!forwarding) {
        // The source's new statement cannot be honoured: its old one is stale.
        refuse(spec.source, describe(spec) + ": " + forwarding.error().message);
        withdraw(spec.prefix, spec.source);
        return;
    }
    const RibRoute* held = rib_.find(spec.prefix, spec.source);
    if (held != nullptr && held->spec == spec)
        return;
    ++state(spec.source).changes;
    if (rib_.set(spec, *forwarding))
        (void)push(spec.prefix);
}

void Control::withdraw(const Prefix4& prefix, Source source) {
    bool best_changed = false;
    if (rib_.erase(prefix, source, best_changed)) {
        ++state(source).changes;
        if (best_changed)
            (void)push(prefix);
    }
}

void Control::save_source_routes(Source source, const std::string& path, SavedRoutes& saved, bool now_or_never) {
    constexpr auto kQuiet = std::chrono::seconds(2);
    constexpr auto kAtMost = std::chrono::seconds(30);
    const auto now = std::chrono::steady_clock::now();
    if (!saved.unsaved || (!now_or_never && now - saved.changed_at < kQuiet && now - saved.at < kAtMost))
        return;
    CliState routes;   // the CLI state's file format: routes (and no neighbours)
    rib_.for_each([&](const RibRoute& route, bool) {
        if (route.spec.source == source)
            routes.routes.push_back(route.spec);
    });
    saved.at = now;
    // Off the request path, and rarely: durable at once.
    if (auto s = control::save_cli_state(path, routes, Durability::kSynced); !s) {
        spdlog::warn("{}: cannot keep its routes for a restart: {}", source_name(source), s.error().message);
        return;
    }
    saved.unsaved = false;
}

std::vector<SourceFd> Control::source_fds() {
    std::vector<SourceFd> fds;
    if (kernel_)
        fds.push_back({kernel_->fd(), [this] { on_kernel_readable(); }});
    if (etcd_)
        fds.push_back({etcd_->fd(), [this] { on_etcd_readable(); }});
    if (bgp_)
        fds.push_back({bgp_->fd(), [this] { on_bgp_readable(); }});
    return fds;
}

}  // namespace podfwd::control
