#include "control/daemon/control.h"

#include <filesystem>

#include <spdlog/spdlog.h>

#include "control/core/static_file.h"

namespace podfwd::control {

Control::Control(const DaemonOptions& options, lpm::TableWriter writer)
    : options_(options), writer_(std::move(writer)), rib_(options.preferences), sync_(writer_, neighbours_) {}

Result<std::unique_ptr<Control>> Control::start(const DaemonOptions& options) {
    lpm::TableWriter::Options table_options;
    table_options.capacity = options.capacity;
    auto writer = lpm::TableWriter::open(options.table, table_options);
    if (!writer) {
        if (writer.error().code == Errc::kBusy)
            return Error{Errc::kBusy, "another podfwd-control owns table '" + options.table + "'"};
        return Error{writer.error().code, "table '" + options.table + "': " + writer.error().message +
                                              (writer.error().code == Errc::kIncompatible
                                                   ? " (--max-routes and --max-nexthops must match the existing table)"
                                                   : "")};
    }
    const bool recovered = writer->recovered();
    auto control = std::make_unique<Control>(options, std::move(*writer));
    Control& c = *control;

    c.state(Source::kLocal) = SourceState{true, "up", 0, std::nullopt, 0};
    for (const Prefix4& cidr : options.node.pod_cidrs) {
        const RouteSpec local{cidr, Source::kLocal, 0, ModeRequest::kLocal, 0, std::nullopt};
        c.rib_.set(local, Forwarding{lpm::ForwardMode::kLocal});
    }
    for (auto load : {&Control::load_static_at_start, &Control::load_cli_state, &Control::load_kernel})
        if (auto s = (c.*load)(); !s)
            return std::move(s).error();

    if (auto s = c.sync_.reconcile(c.rib_); !s)
        return Error{s.error().code, "cannot bring the table in line with the sources: " + s.error().message};
    c.reconciled_ = true;
    spdlog::info("table '{}' {}: {} routes from {} prefixes, {} next hops", options.table,
                 recovered ? "re-attached and reconciled" : "created", c.sync_.installed(), c.rib_.prefixes(),
                 c.sync_.nexthops());
    return control;
}

// ---- pushing to the table ----

void Control::refuse(Source source, const std::string& error) {
    SourceState& s = state(source);
    ++s.refused;
    s.last_error = error;
    spdlog::warn("{}: refused: {}", source_name(source), error);
}

Status Control::push(std::span<const Prefix4> changed) {
    if (!reconciled_)
        return ok();   // start() pushes everything at once
    Status first;
    for (const Prefix4& prefix : changed) {
        const RibRoute* best = rib_.best(prefix);
        if (auto s = sync_.stage(prefix, best != nullptr ? &best->forwarding : nullptr); !s) {
            spdlog::error("table: {}: {}", prefix.str(), s.error().message);
            if (first)
                first = s;
        }
    }
    return first;
}

// Every changed neighbour is tried; one whose records could not all be
// rewritten is retried on the next tick.
Status Control::push_neighbours(std::span<const Ipv4Addr> changed) {
    if (!reconciled_)
        return ok();
    Status first;
    for (Ipv4Addr ip : changed)
        if (auto s = sync_.neighbour_changed(ip); !s) {
            spdlog::error("table: next hops of {}: {} (retried)", format_ipv4(ip), s.error().message);
            pending_neighbours_.insert(ip);
            if (first)
                first = s;
        }
    return first;
}

Status Control::commit() {
    auto s = sync_.commit();
    if (!s)
        spdlog::error("table: commit: {}", s.error().message);
    return s;
}

// ---- static file ----

Status Control::load_static(bool at_start) {
    if (options_.static_routes.empty())
        return ok();
    SourceState& st = state(Source::kStatic);
    st.enabled = true;
    const auto fail = [&](const std::string& message) -> Status {
        if (at_start)
            return Error{Errc::kInvalidArgument, message};
        refuse(Source::kStatic, message + " (the routes already loaded are kept)");
        st.state = "error";
        return ok();
    };
    auto config = load_static_file(options_.static_routes);
    if (!config)
        return fail(config.error().message);
    std::vector<ResolvedRoute> routes;
    for (const RouteSpec& spec : config->routes) {
        auto forwarding = resolve(options_.node, spec);
        if (!forwarding)
            return fail(options_.static_routes + ": " + forwarding.error().message);
        routes.push_back({spec, *forwarding});
    }
    const auto macs = neighbours_.replace_source(Source::kStatic, config->neighbours);
    (void)push_neighbours(macs);
    const auto changed = rib_.replace_source(Source::kStatic, routes);
    (void)push(changed);
    if (reconciled_)
        (void)commit();
    st.state = "up";
    st.last_error.reset();
    st.changes += changed.size();
    spdlog::info("static: {} routes, {} neighbours from {}; {} prefixes changed", routes.size(),
                 config->neighbours.size(), options_.static_routes, changed.size());
    return ok();
}

Status Control::load_static_at_start() { return load_static(true); }

void Control::reload_static() {
    if (options_.static_routes.empty()) {
        spdlog::info("SIGHUP: no --static-routes file to re-read");
        return;
    }
    (void)load_static(false);
}

// ---- the CLI's routes ----

Status Control::load_cli_state() {
    SourceState& st = state(Source::kCli);
    st = SourceState{true, "up", 0, std::nullopt, 0};
    auto saved = control::load_cli_state(options_.cli_state_path());
    if (!saved && saved.error().code == Errc::kNotFound) {
        spdlog::error("cli: {}; starting without the CLI's routes", saved.error().message);
        saved = CliState{};
    }
    if (!saved)
        return Error{saved.error().code, "CLI state: " + saved.error().message};
    for (const Neighbour& n : saved->neighbours) {
        neighbours_.set(n);
        cli_.neighbours.push_back(n);
    }
    for (const RouteSpec& spec : saved->routes) {
        // Kept (and saved again) even when the node's config no longer
        // resolves it: the next start with the right config still has it.
        cli_.routes.push_back(spec);
        auto forwarding = resolve(options_.node, spec);
        if (!forwarding) {
            refuse(Source::kCli, "saved route " + describe(spec) + ": " + forwarding.error().message +
                                     " (kept in the saved state; route del removes it)");
            continue;
        }
        rib_.set(spec, *forwarding);
    }
    if (writer_.recovered() && !std::filesystem::exists(options_.cli_state_path()))
        spdlog::warn("cli: no saved state at {}: a previous run's CLI routes, if any, are withdrawn",
                     options_.cli_state_path());
    return ok();
}

// ---- kernel ----

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
    state(Source::kKernel) = SourceState{true, "up", 0, std::nullopt, 0};
    apply_kernel_snapshot(*snapshot);
    return ok();
}

void Control::apply_kernel_snapshot(const KernelSnapshot& snapshot) {
    std::vector<ResolvedRoute> routes;
    for (const KernelRoute& k : snapshot.routes) {
        const RouteSpec spec{k.prefix, Source::kKernel, k.gateway, ModeRequest::kDefault, 0, std::nullopt};
        auto forwarding = resolve(options_.node, spec);
        if (!forwarding) {
            refuse(Source::kKernel, forwarding.error().message);
            continue;
        }
        routes.push_back({spec, *forwarding});
    }
    std::vector<Neighbour> neighbours;
    for (const KernelNeighbour& n : snapshot.neighbours)
        neighbours.push_back({n.ip, n.mac, Source::kKernel});
    (void)push_neighbours(neighbours_.replace_source(Source::kKernel, neighbours));
    const auto changed = rib_.replace_source(Source::kKernel, routes);
    (void)push(changed);
    state(Source::kKernel).changes += changed.size();
}

void Control::withdraw(const Prefix4& prefix, Source source) {
    bool best_changed = false;
    if (rib_.erase(prefix, source, best_changed)) {
        ++state(source).changes;
        if (best_changed)
            (void)push(prefix);
    }
}

void Control::apply_kernel_route(const KernelRoute& k) {
    const RouteSpec spec{k.prefix, Source::kKernel, k.gateway, ModeRequest::kDefault, 0, std::nullopt};
    auto forwarding = resolve(options_.node, spec);
    if (!forwarding) {
        // The kernel's route replaced one we could honour: ours is stale now.
        refuse(Source::kKernel, forwarding.error().message);
        withdraw(k.prefix, Source::kKernel);
        return;
    }
    ++state(Source::kKernel).changes;
    if (rib_.set(spec, *forwarding))
        (void)push(k.prefix);
}

void Control::on_kernel_readable() {
    auto events = kernel_->drain();
    if (!events) {
        SourceState& st = state(Source::kKernel);
        st.state = "error";
        st.last_error = events.error().message;
        spdlog::error("kernel: {}; resynchronising from a full dump", events.error().message);
        kernel_resync_ = true;
        resync_kernel();
        return;
    }
    for (const KernelEvent& event : *events) {
        if (const auto* added = std::get_if<RouteAdded>(&event)) {
            apply_kernel_route(added->route);
        } else if (const auto* removed = std::get_if<RouteRemoved>(&event)) {
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
    state(Source::kKernel).state = kernel_resync_ ? "syncing" : "up";
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
    state(Source::kKernel).state = kernel_resync_ ? "syncing" : "up";
    (void)commit();
}

void Control::tick() {
    flush_cli_state();
    sync_.collect();
    resync_kernel();
    // Room may have been made (routes withdrawn, records reclaimed).
    bool staged = sync_.retry_refused(rib_) != 0;
    if (!pending_neighbours_.empty()) {
        const std::vector<Ipv4Addr> retry(pending_neighbours_.begin(), pending_neighbours_.end());
        pending_neighbours_.clear();
        (void)push_neighbours(retry);   // failures go back into pending_neighbours_
        staged = true;
    }
    if (staged)
        (void)commit();
}

}  // namespace podfwd::control
