#include "control/daemon/control.h"

#include <filesystem>

#include <spdlog/spdlog.h>

#include "control/core/static_file.h"

namespace podfwd::control {

const char* phase_name(SourcePhase p) noexcept {
    switch (p) {
    case SourcePhase::kDown: return "down";
    case SourcePhase::kSyncing: return "syncing";
    case SourcePhase::kUp: return "up";
    case SourcePhase::kError: return "error";
    }
    return "?";
}

Control::Control(const DaemonOptions& options, lpm::TableWriter writer)
    : options_(options), writer_(std::move(writer)), rib_(options.preferences), sync_(writer_, neighbours_),
      accept_(options.accept_filter()), arp_(options.table) {}

Result<std::unique_ptr<Control>> Control::start(const DaemonOptions& options) {
    lpm::TableWriter::Options table_options;
    table_options.capacity = options.capacity;
    auto writer = lpm::TableWriter::open(options.table, table_options);
    if (!writer) {
        if (writer.error().code == Errc::kBusy)
            return Error{Errc::kBusy, "another podfwd-control owns table '" + options.table + "'"};
        return Error{writer.error().code, "table '" + options.table + "': " + writer.error().message +
                                              (writer.error().code == Errc::kIncompatible
                                                   ? " (--max-routes, --max-nexthops and --max-groups must match the existing table)"
                                                   : "")};
    }
    const bool recovered = writer->recovered();
    auto control = std::make_unique<Control>(options, std::move(*writer));
    Control& c = *control;

    c.state(Source::kLocal) = SourceState{true, SourcePhase::kUp, "--pod-cidr", 0, std::nullopt, 0};
    for (const Prefix4& cidr : options.node.pod_cidrs) {
        const RouteSpec local{cidr, Source::kLocal, 0, ModeRequest::kLocal, 0, std::nullopt};
        c.rib_.set(local, Forwarding{lpm::ForwardMode::kLocal});
    }
    c.add_node_routes();
    // Before the reconcile: a restarted daemon finds the records of the
    // last run with the MACs the dataplane resolved, not without them.
    c.poll_neighbours();
    for (auto load : {&Control::load_static_at_start, &Control::load_cli_state, &Control::load_kernel,
                      &Control::start_etcd, &Control::start_bgp})
        if (auto s = (c.*load)(); !s)
            return std::move(s).error();
    c.sync_connected_routes();   // the /32s of every neighbour loaded, the CLI's included

    if (auto s = c.sync_.reconcile(c.rib_); !s)
        return Error{s.error().code, "cannot bring the table in line with the sources: " + s.error().message};
    c.reconciled_ = true;
    spdlog::info("table '{}' {}: {} routes from {} prefixes, {} next hops", options.table,
                 recovered ? "re-attached and reconciled" : "created", c.sync_.installed(), c.rib_.prefixes(),
                 c.sync_.nexthops());
    return control;
}

void Control::add_node_routes() {
    state(Source::kConnected) = SourceState{
        true, SourcePhase::kUp, "--uplink " + options_.node.uplink.str() + ", and its neighbours with a MAC",
        0, std::nullopt, 0};
    sync_connected_routes();
    SourceState& gw = state(Source::kGateway);
    const auto route = gateway_route(options_.node);
    if (!route) {
        gw.detail = "no --gateway";
        return;
    }
    if (!options_.default_route) {
        gw.detail = "--no-default-route";
        return;
    }
    gw = SourceState{true, SourcePhase::kUp, "--gateway " + format_ipv4(*options_.node.gateway), 0, std::nullopt, 0};
    auto forwarding = resolve(options_.node, *route);
    if (!forwarding) {   // NodeConfig::validate keeps the gateway on the subnet: not expected
        refuse(Source::kGateway, describe(*route) + ": " + forwarding.error().message);
        gw.phase = SourcePhase::kError;
        return;
    }
    rib_.set(*route, *forwarding);
}

void Control::sync_connected_routes() {
    const NodeConfig& node = options_.node;
    std::vector<ResolvedRoute> routes{{connected_route(node), connected_forwarding()}};
    const Ipv4Addr host_bits = node.uplink.len >= 31 ? 0 : ~Ipv4Addr{0} >> node.uplink.len;
    for (const Neighbour& n : neighbours_.list()) {
        if (!node.uplink.contains(n.ip) || n.ip == node.node_ip)
            continue;
        if (host_bits != 0 && ((n.ip & host_bits) == 0 || (n.ip & host_bits) == host_bits))
            continue;   // the subnet's network or broadcast address
        // A neighbour only the dataplane's ARP knows gets a /32 while another
        // route sends to it (a node, the gateway). One reached through the
        // connected route alone would keep itself alive: the dataplane
        // refreshes every next hop of the table, so its /32 would keep its
        // cache entry and the entry the /32; traffic to many hosts of a
        // large subnet would fill the dataplane's neighbour cache for good.
        if (n.source == Source::kArp) {
            const RibRoute* own = rib_.best(Prefix4{n.ip, 32});
            const std::size_t own_routes = own != nullptr && own->spec.source == Source::kConnected ? 1 : 0;
            if (sync_.routes_via(n.ip) <= own_routes)
                continue;
        }
        const RouteSpec host{Prefix4{n.ip, 32}, Source::kConnected, n.ip, ModeRequest::kHostGw, 0, std::nullopt};
        // The same forwarding as a host-gw route via the node: they share its record.
        if (auto forwarding = resolve(node, host))
            routes.push_back({host, *forwarding});
    }
    const auto changed = rib_.replace_source(Source::kConnected, routes);
    state(Source::kConnected).changes += changed.size();
    (void)push(changed);   // a /32 the table cannot take is refused and retried, like any route
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
    if (!changed.empty())
        sync_connected_routes();
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
        st.phase = SourcePhase::kError;
        return ok();
    };
    auto config = load_static_file(options_.static_routes);
    if (!config)
        return fail(config.error().message);
    // Truncated to nothing, or written by a tool that failed: withdrawing
    // every static route because of it would cut the node off.
    if (config->routes.empty() && config->neighbours.empty() && !options_.allow_empty_static)
        return fail(options_.static_routes +
                    ": no routes or neighbours: refused as a file cut short (--allow-empty-static if it is meant)");
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
    st.phase = SourcePhase::kUp;
    st.detail = options_.static_routes;
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
    st = SourceState{true, SourcePhase::kUp, options_.cli_state_path(), 0, std::nullopt, 0};
    auto saved = control::load_cli_state(options_.cli_state_path());
    // Empty: a power loss before the last save reached the disk. Starting
    // without the CLI's routes withdraws them from a running dataplane, so
    // it takes a person's word (--allow-empty-cli-state).
    if (!saved && saved.error().code == Errc::kNotFound) {
        if (!options_.allow_empty_cli_state)
            return Error{Errc::kNotFound, "CLI state: " + saved.error().message +
                                              ": the CLI's routes are lost; start with --allow-empty-cli-state to "
                                              "go on without them (podfwdctl route add puts them back)"};
        spdlog::error("cli: {}; starting without the CLI's routes (--allow-empty-cli-state)", saved.error().message);
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

void Control::stop() {
    tick();
    save_source_routes(Source::kEtcd, options_.etcd_state_path(), etcd_saved_, true);
    save_source_routes(Source::kBgp, options_.bgp_state_path(), bgp_saved_, true);
}

void Control::tick() {
    flush_cli_state();
    sync_.collect();
    resync_kernel();
    refresh_etcd_state();
    save_source_routes(Source::kEtcd, options_.etcd_state_path(), etcd_saved_);
    tick_bgp();
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
