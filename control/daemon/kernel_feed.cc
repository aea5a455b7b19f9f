// The kernel FIB as a source of podfwd-control (control/kernel/): its
// snapshot and events translated into the source contract (sources.cc).
#include <spdlog/spdlog.h>

#include "control/daemon/control.h"

namespace podfwd::control {

namespace {

RouteSpec kernel_spec(const KernelRoute& k) {
    return RouteSpec{k.prefix, Source::kKernel, k.gateway, ModeRequest::kDefault, 0, std::nullopt};
}

std::string kernel_detail(const KernelOptions& o) {
    std::string detail = "netlink";
    if (o.table)
        detail += ", table " + std::to_string(*o.table);
    if (o.protocol)
        detail += ", protocol " + std::to_string(*o.protocol);
    if (o.neighbours)
        detail += ", neighbours";
    return detail;
}

}  // namespace

Status Control::load_kernel() {
    if (!options_.kernel)
        return ok();
    auto kernel = KernelSource::open(*options_.kernel);
    if (!kernel)
        return Error{kernel.error().code, "kernel routes: " + kernel.error().message};
    kernel_.emplace(std::move(*kernel));
    auto snapshot = kernel_->dump();
    if (!snapshot)
        return Error{snapshot.error().code, "kernel routes: " + snapshot.error().message};
    state(Source::kKernel) = SourceState{true, SourcePhase::kUp, kernel_detail(*options_.kernel), 0, std::nullopt, 0};
    apply_kernel_snapshot(*snapshot);
    return ok();
}

// The kernel holds every route of the node (the default route, other
// tables, other daemons' routes): those outside --accept are none of the
// dataplane's business, so they are ignored, not refused, and only counted.
bool Control::kernel_route_wanted(const KernelRoute& route) {
    std::string why = accept_.refusal(route.prefix);
    if (why.empty()) {
        kernel_ignored_.erase(route.prefix);
        return true;
    }
    if (kernel_ignored_.insert(route.prefix).second)
        spdlog::debug("kernel: {} ignored: {}", route.prefix.str(), why);
    last_kernel_ignored_ = route.prefix.str() + ": " + why;
    return false;
}

void Control::refresh_kernel_detail() {
    SourceState& st = state(Source::kKernel);
    st.detail = kernel_detail(*options_.kernel);
    if (!kernel_ignored_.empty())
        st.detail += "; " + std::to_string(kernel_ignored_.size()) + " routes outside --accept ignored (last: " +
                     last_kernel_ignored_ + ")";
}

void Control::apply_kernel_snapshot(const KernelSnapshot& snapshot) {
    std::vector<RouteSpec> routes;
    routes.reserve(snapshot.routes.size());
    kernel_ignored_.clear();
    for (const KernelRoute& k : snapshot.routes)
        if (kernel_route_wanted(k))
            routes.push_back(kernel_spec(k));
    refresh_kernel_detail();
    std::vector<Neighbour> neighbours;
    for (const KernelNeighbour& n : snapshot.neighbours)
        neighbours.push_back({n.ip, n.mac, Source::kKernel});
    (void)push_neighbours(neighbours_.replace_source(Source::kKernel, neighbours));
    replace_source_routes(Source::kKernel, routes);
}

void Control::on_kernel_readable() {
    auto events = kernel_->drain();
    if (!events) {
        SourceState& st = state(Source::kKernel);
        st.phase = SourcePhase::kError;
        st.last_error = events.error().message;
        spdlog::error("kernel: {}; resynchronising from a full dump", events.error().message);
        kernel_resync_ = true;
        resync_kernel();
        return;
    }
    for (const KernelEvent& event : *events) {
        if (const auto* added = std::get_if<RouteAdded>(&event)) {
            if (kernel_route_wanted(added->route))
                set_source_route(kernel_spec(added->route));
        } else if (const auto* removed = std::get_if<RouteRemoved>(&event)) {
            kernel_ignored_.erase(removed->prefix);
            withdraw(removed->prefix, Source::kKernel);
        } else if (const auto* up = std::get_if<NeighbourUp>(&event)) {
            if (neighbours_.set({up->neighbour.ip, up->neighbour.mac, Source::kKernel}))
                (void)push_neighbours(std::span(&up->neighbour.ip, 1));
        } else if (const auto* down = std::get_if<NeighbourDown>(&event)) {
            if (neighbours_.erase(down->ip, Source::kKernel))
                (void)push_neighbours(std::span(&down->ip, 1));
        } else if (const auto* resync = std::get_if<Resynced>(&event)) {
            spdlog::info("kernel: resynchronised from a full dump (a link or address changed, or notifications were lost)");
            apply_kernel_snapshot(resync->snapshot);
        }
    }
    state(Source::kKernel).phase = kernel_resync_ ? SourcePhase::kSyncing : SourcePhase::kUp;
    refresh_kernel_detail();
    (void)commit();
}

// After a netlink error the notifications can no longer be trusted: the
// whole state is read again, now and on every tick until it succeeds.
void Control::resync_kernel() {
    if (!kernel_ || !kernel_resync_)
        return;
    auto snapshot = kernel_->dump();
    if (!snapshot) {
        state(Source::kKernel).last_error = snapshot.error().message;
        return;
    }
    kernel_resync_ = false;
    apply_kernel_snapshot(*snapshot);
    state(Source::kKernel).phase = SourcePhase::kUp;
    (void)commit();
}

}  // namespace podfwd::control
