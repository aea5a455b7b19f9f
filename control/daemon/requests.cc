// podfwd-control's answers to control-socket requests (control/PROTOCOL.md):
// the Control members that read or change state on a client's behalf.
#include <unistd.h>

#include <algorithm>

#include <spdlog/spdlog.h>

#include "control/daemon/control.h"

namespace podfwd::control {

using nlohmann::json;

namespace {

const char* code_name(Errc code) noexcept {
    switch (code) {
    case Errc::kInvalidArgument: return "invalid_argument";
    case Errc::kNotFound: return "not_found";
    case Errc::kAlreadyExists: return "already_exists";
    case Errc::kInUse: return "in_use";
    case Errc::kCapacity: return "capacity";
    case Errc::kIncompatible: return "incompatible";
    case Errc::kBusy: return "busy";
    case Errc::kNotReady: return "not_ready";
    case Errc::kSystem: return "system";
    }
    return "system";
}

// The error is one line even when it quotes a request's text ("\n" in a
// JSON string is a newline).
json failure(Errc code, std::string message) {
    std::replace_if(message.begin(), message.end(), [](char c) { return c == '\n' || c == '\r'; }, ' ');
    return json{{"ok", false}, {"code", code_name(code)}, {"error", std::move(message)}};
}
json failure(const Error& e) { return failure(e.code, e.message); }

json ip_or_null(Ipv4Addr ip) { return ip != 0 ? json(format_ipv4(ip)) : json(nullptr); }

Result<Ipv4Addr> ip_field(const json& request, const char* name) {
    if (!request.contains(name) || !request[name].is_string())
        return Error{Errc::kInvalidArgument, std::string("missing '") + name + "'"};
    return parse_ipv4(request[name].get<std::string>());
}

Result<Prefix4> prefix_field(const json& request) {
    if (!request.contains("prefix") || !request["prefix"].is_string())
        return Error{Errc::kInvalidArgument, "missing 'prefix'"};
    return Prefix4::parse(request["prefix"].get<std::string>());
}

}  // namespace

// ---- requests ----

std::string Control::handle_line(std::string_view request) {
    const json j = json::parse(request, nullptr, false);
    // Text quoted from files or the kernel may not be UTF-8: replaced, never thrown.
    const auto dump = [](const json& response) { return response.dump(-1, ' ', false, json::error_handler_t::replace); };
    if (j.is_discarded() || !j.is_object())
        return dump(failure(Errc::kInvalidArgument, "the request is not a JSON object"));
    return dump(handle(j));
}

json Control::handle(const json& request) {
    const auto op_it = request.find("op");
    if (op_it == request.end() || !op_it->is_string())
        return failure(Errc::kInvalidArgument, "missing 'op'");
    const std::string op = op_it->get<std::string>();
    using Op = json (Control::*)(const json&);
    static constexpr std::pair<std::string_view, Op> kOps[] = {
        {"route.add", &Control::route_add}, {"route.del", &Control::route_del},   {"route.list", &Control::route_list},
        {"route.get", &Control::route_get}, {"neigh.add", &Control::neigh_add},   {"neigh.del", &Control::neigh_del},
        {"neigh.list", &Control::neigh_list}, {"sources", &Control::sources}, {"status", &Control::status},
        {"bgp.peers", &Control::bgp_peers},
    };
    const auto found = std::find_if(std::begin(kOps), std::end(kOps), [&](const auto& o) { return o.first == op; });
    if (found == std::end(kOps))
        return failure(Errc::kInvalidArgument, "unknown op '" + op + "'");
    json response;
    try {
        response = (this->*found->second)(request);
    } catch (const json::exception& e) {   // a field of the wrong type
        return failure(Errc::kInvalidArgument, std::string("bad request: ") + e.what());
    }
    if (!response.contains("ok"))
        response["ok"] = true;
    return response;
}

// A CLI change is saved before it is applied, and applied before it is
// answered: a change that cannot be saved is refused; one the table refuses
// is undone and its saved state restored. `apply` changes the RIB or the
// neighbours and stages the result; `undo` puts both back and stages that.
template <class Apply, class Undo>
Status Control::cli_transaction(CliState next, Apply apply, Undo undo) {
    if (auto saved = control::save_cli_state(options_.cli_state_path(), next); !saved)
        return Error{Errc::kSystem, "cannot save the CLI's routes, nothing changed: " + saved.error().message};
    Status applied = apply();
    if (applied)
        applied = commit();
    if (!applied) {
        undo();
        (void)commit();
        if (auto s = control::save_cli_state(options_.cli_state_path(), cli_); !s)
            spdlog::error("cli: cannot restore the saved state after a refused change: {}", s.error().message);
        return applied;
    }
    cli_ = std::move(next);
    cli_unflushed_ = true;
    ++state(Source::kCli).changes;
    return ok();
}

// fsync costs milliseconds on some disks: done once per tick for all the
// changes since, not per request. A power loss loses at most a tick's worth.
void Control::flush_cli_state() {
    if (!cli_unflushed_)
        return;
    if (auto s = control::flush_cli_state(options_.cli_state_path()); !s) {
        spdlog::warn("cli: {} (retried)", s.error().message);
        return;
    }
    cli_unflushed_ = false;
}

json Control::route_add(const json& request) {
    auto spec = route_spec_from_json(request, Source::kCli);
    if (!spec)
        return failure(spec.error());
    auto forwarding = resolve(options_.node, *spec);
    if (!forwarding)
        return failure(forwarding.error());
    const Prefix4 prefix = spec->prefix;
    std::optional<RibRoute> previous;
    if (const RibRoute* p = rib_.find(prefix, Source::kCli))
        previous = *p;
    CliState next = cli_;
    std::erase_if(next.routes, [&](const RouteSpec& r) { return r.prefix == prefix; });
    next.routes.push_back(*spec);

    const Status done = cli_transaction(
        std::move(next),
        [&]() -> Status {
            // A refused prefix is pushed again even when the RIB did not change.
            if (!rib_.set(*spec, *forwarding) && !sync_.refused(prefix))
                return ok();
            if (auto s = push(prefix); !s)
                return Error{s.error().code, prefix.str() + ": the table refused the route: " + s.error().message};
            return ok();
        },
        [&] {
            bool unused = false;
            if (previous)
                rib_.set(previous->spec, previous->forwarding);
            else
                rib_.erase(prefix, Source::kCli, unused);
            (void)push(prefix);
        });
    if (!done)
        return failure(done.error());
    spdlog::info("cli: route {}", describe(*spec));
    const RibRoute* added = rib_.find(prefix, Source::kCli);
    return json{{"route", route_json(*added, rib_.best(prefix) == added)}};
}

json Control::route_del(const json& request) {
    auto prefix = prefix_field(request);
    if (!prefix)
        return failure(prefix.error());
    const auto saved = std::find_if(cli_.routes.begin(), cli_.routes.end(),
                                    [&](const RouteSpec& r) { return r.prefix == *prefix; });
    if (saved == cli_.routes.end())
        return failure(Errc::kNotFound, "no CLI route for " + prefix->str() +
                                            (rib_.best(*prefix) ? " (other sources' routes are theirs to remove)" : ""));
    // A saved route this node's config cannot resolve is only in the file.
    const RibRoute* route = rib_.find(*prefix, Source::kCli);
    json removed = route != nullptr ? route_json(*route, rib_.best(*prefix) == route) : route_spec_to_json(*saved);
    const std::optional<RibRoute> previous = route != nullptr ? std::optional(*route) : std::nullopt;
    CliState next = cli_;
    std::erase_if(next.routes, [&](const RouteSpec& r) { return r.prefix == *prefix; });

    const Status done = cli_transaction(
        std::move(next),
        [&] {
            // The route goes whatever happens to the next best: if the table
            // cannot take that one, it is refused (and retried), not the delete.
            withdraw(*prefix, Source::kCli);
            return ok();
        },
        [&] {
            if (previous && rib_.set(previous->spec, previous->forwarding))
                (void)push(*prefix);
        });
    if (!done)
        return failure(done.error());
    spdlog::info("cli: route {} removed", prefix->str());
    return json{{"route", removed}};
}

json Control::route_json(const RibRoute& route, bool best) const {
    const RouteSpec& spec = route.spec;
    const Forwarding& f = route.forwarding;
    const ModeRequest mode = spec.mode == ModeRequest::kDefault ? options_.node.default_mode : spec.mode;
    const auto id = best && !sync_.refused(spec.prefix) ? sync_.installed_id(spec.prefix) : std::nullopt;
    json j{{"prefix", spec.prefix.str()},
           {"source", source_name(spec.source)},
           {"preference", route.preference},
           {"via", ip_or_null(spec.via)},
           {"mode", mode_request_name(mode)},
           {"effective_mode", effective_mode_name(f.mode)},
           {"best", best},
           {"installed", id.has_value()},
           {"nexthop_id", id ? json(*id) : json(nullptr)},
           {"l2_nexthop", ip_or_null(f.l2_nexthop)},
           {"mac", nullptr}};
    if (f.l2_nexthop != 0)
        if (const auto mac = neighbours_.mac(f.l2_nexthop))
            j["mac"] = format_mac(*mac);
    if (f.mode == lpm::ForwardMode::kVxlan) {
        j["vni"] = f.vni;
        j["vtep_mac"] = format_mac(f.vtep_mac);
    }
    return j;
}

json Control::route_list(const json& request) {
    std::optional<Source> only;
    if (request.contains("source") && !request["source"].is_null()) {
        const std::string name = request["source"].get<std::string>();
        only = parse_route_source(name);
        if (!only)
            return failure(Errc::kInvalidArgument, "unknown route source '" + name + "' (" + route_source_names() + ")");
    }
    std::size_t limit = kRouteListDefaultLimit;
    if (request.contains("limit") && !request["limit"].is_null()) {
        const json& l = request["limit"];
        if (!l.is_number_integer() || l.get<std::int64_t>() < 1 ||
            l.get<std::int64_t>() > static_cast<std::int64_t>(kRouteListMaxLimit))
            return failure(Errc::kInvalidArgument,
                           "'limit' must be an integer from 1 to " + std::to_string(kRouteListMaxLimit));
        limit = static_cast<std::size_t>(l.get<std::int64_t>());
    }
    std::optional<Prefix4> after;
    if (request.contains("after") && !request["after"].is_null()) {
        if (!request["after"].is_string())
            return failure(Errc::kInvalidArgument, "'after' must be a prefix string");
        auto prefix = Prefix4::parse(request["after"].get<std::string>());
        if (!prefix)
            return failure(Errc::kInvalidArgument, "'after': " + prefix.error().message);
        after = *prefix;
    }
    json routes = json::array();
    const auto next = rib_.for_each_page(after, limit, only,
                                         [&](const RibRoute& r, bool best) { routes.push_back(route_json(r, best)); });
    return json{{"routes", std::move(routes)}, {"next", next ? json(next->str()) : json(nullptr)}};
}

json Control::route_get(const json& request) {
    auto ip = ip_field(request, "ip");
    if (!ip)
        return failure(ip.error());
    json j{{"ip", format_ipv4(*ip)}, {"route", nullptr}, {"table_nexthop", writer_.lookup(*ip)}};
    if (const auto prefix = rib_.longest_match(*ip))
        j["route"] = route_json(*rib_.best(*prefix), true);
    return j;
}

json Control::neigh_add(const json& request) {
    auto n = neighbour_from_json(request, Source::kCli);
    if (!n)
        return failure(n.error());
    const MacAddr* before = neighbours_.find(n->ip, Source::kCli);
    const std::optional<MacAddr> previous = before != nullptr ? std::optional(*before) : std::nullopt;
    CliState next = cli_;
    std::erase_if(next.neighbours, [&](const Neighbour& x) { return x.ip == n->ip; });
    next.neighbours.push_back(*n);
    const Status done = cli_transaction(
        std::move(next),
        [&] { return neighbours_.set(*n) ? push_neighbours(std::span(&n->ip, 1)) : ok(); },
        [&] {
            if (previous)
                neighbours_.set({n->ip, *previous, Source::kCli});
            else
                neighbours_.erase(n->ip, Source::kCli);
            (void)push_neighbours(std::span(&n->ip, 1));
        });
    if (!done)
        return failure(done.error());
    spdlog::info("cli: neighbour {} is {}", format_ipv4(n->ip), format_mac(n->mac));
    return json{{"neighbour", {{"ip", format_ipv4(n->ip)}, {"mac", format_mac(n->mac)}, {"source", "cli"}}}};
}

json Control::neigh_del(const json& request) {
    auto ip = ip_field(request, "ip");
    if (!ip)
        return failure(ip.error());
    const MacAddr* mac = neighbours_.find(*ip, Source::kCli);
    if (mac == nullptr)
        return failure(Errc::kNotFound, "no CLI neighbour " + format_ipv4(*ip));
    const MacAddr previous = *mac;
    json removed{{"ip", format_ipv4(*ip)}, {"mac", format_mac(previous)}, {"source", "cli"}};
    CliState next = cli_;
    std::erase_if(next.neighbours, [&](const Neighbour& x) { return x.ip == *ip; });
    const Status done = cli_transaction(
        std::move(next),
        [&] { return neighbours_.erase(*ip, Source::kCli) ? push_neighbours(std::span(&*ip, 1)) : ok(); },
        [&] {
            neighbours_.set({*ip, previous, Source::kCli});
            (void)push_neighbours(std::span(&*ip, 1));
        });
    if (!done)
        return failure(done.error());
    return json{{"neighbour", removed}};
}

json Control::sources(const json&) {
    json list = json::array();
    for (unsigned i = 0; i < kSourceCount; ++i) {
        const auto source = static_cast<Source>(i);
        const SourceState& s = sources_[i];
        json entry = {{"name", source_name(source)},
                        {"enabled", s.enabled},
                        {"state", phase_name(s.phase)},
                        {"detail", s.detail.empty() ? json(nullptr) : json(s.detail)},
                        {"routes", rib_.routes_of(source)},
                        {"best", rib_.best_of(source)},
                        {"refused", s.refused},
                        {"last_error", s.last_error ? json(*s.last_error) : json(nullptr)},
                        {"changes", s.changes}};
        if (source == Source::kEtcd && etcd_)
            entry["etcd"] = etcd_json();
        if (source == Source::kBgp && bgp_)
            entry["bgp"] = bgp_json();
        if (source == Source::kArp) {
            const auto& snapshot = arp_.snapshot();
            std::size_t with_mac = 0;
            if (snapshot)
                with_mac = static_cast<std::size_t>(std::count_if(snapshot->entries.begin(), snapshot->entries.end(),
                                                                  [](const ArpEntry& e) { return e.has_mac(); }));
            entry["arp"] = {{"following", arp_.following()},
                            {"pid", snapshot ? json(snapshot->pid) : json(nullptr)},
                            {"entries", snapshot ? snapshot->entries.size() : 0},
                            {"with_mac", with_mac},
                            {"bad_segments", arp_.bad_segments()},
                            {"busy_polls", arp_.busy_polls()}};
        }
        list.push_back(std::move(entry));
    }
    return json{{"sources", std::move(list)}};
}

namespace {
// The table's reclamation as the writer sees it: a stalled reader (online,
// not passing quiescent states) pins retired memory and eats the reserve.
json table_health_json(const lpm::TableStats& t) {
    json stalled = nullptr;
    if (t.stalled_reader_pid != 0)
        stalled = {{"pid", t.stalled_reader_pid}, {"slot", t.stalled_reader_slot}, {"stalled_s", t.stalled_ms / 1000.0}};
    return {{"readers_online", t.readers_online},
            {"retired_pending", t.retired_pending},
            {"stalled_reader", std::move(stalled)},
            {"reserve_elements", t.reserve_elements},
            {"reserve_used", t.reserve_used},
            {"reserve_used_pct", t.reserve_used_pct},   // of the pool whose reserve is most used
            {"reclaim_waits", t.reclaim_waits},
            {"reclaim_timeouts", t.reclaim_timeouts},
            {"recovery_dropped_records", t.recovery_dropped_records}};
}
}  // namespace

json Control::status(const json&) {
    json cidrs = json::array();
    for (const Prefix4& p : options_.node.pod_cidrs)
        cidrs.push_back(p.str());
    const auto uptime = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
    return json{{"node_ip", format_ipv4(options_.node.node_ip)},
                {"uplink", options_.node.uplink.str()},
                {"gateway", options_.node.gateway ? json(format_ipv4(*options_.node.gateway)) : json(nullptr)},
                {"table", options_.table},
                {"pod_cidrs", std::move(cidrs)},
                {"default_mode", mode_request_name(options_.node.default_mode)},
                {"default_route", options_.default_route && options_.node.gateway.has_value()},
                {"routes", rib_.prefixes()},
                {"installed", sync_.installed()},
                {"nexthops", sync_.nexthops()},
                {"pid", ::getpid()},
                {"uptime_s", uptime},
                {"table_health", table_health_json(writer_.stats())}};
}

}  // namespace podfwd::control
