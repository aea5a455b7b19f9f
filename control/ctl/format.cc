#include "control/ctl/format.h"

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "control/ctl/text_table.h"

namespace podfwd::ctl {

namespace {

using nlohmann::json;
using Fields = std::vector<std::pair<std::string, std::string>>;

const json& field(const json& object, const char* key) {
    static const json kNull;
    if (!object.is_object())
        return kNull;
    const auto it = object.find(key);
    return it == object.end() ? kNull : *it;
}

bool is_true(const json& object, const char* key) {
    const json& value = field(object, key);
    return value.is_boolean() && value.get<bool>();
}

const json& list(const json& result, const char* key) {
    static const json kEmpty = json::array();
    const json& value = field(result, key);
    return value.is_array() ? value : kEmpty;
}

// A route without "mode" asked for none: the daemon's --default-mode applies.
std::string mode_text(const json& route) {
    return field(route, "mode").is_null() ? "default" : field_text(route, "mode");
}

std::string render_or(const TextTable& table, const char* when_empty) {
    return table.empty() ? std::string(when_empty) + '\n' : table.render();
}

// "10.244.1.0/24 via 192.168.1.2 mode ipip [cli, preference 10]"
std::string describe_route(const json& route) {
    std::string text = field_text(route, "prefix");
    if (!field(route, "via").is_null())
        text += " via " + field_text(route, "via");
    text += " mode " + mode_text(route);
    if (const auto effective = field_text(route, "effective_mode"); effective != mode_text(route))
        text += " (" + effective + ")";
    return text + " [" + field_text(route, "source") + ", preference " + field_text(route, "preference") + "]";
}

std::string route_change(const char* verb, const json& result) {
    const json& route = field(result, "route");
    std::string text = std::string(verb) + " route " + describe_route(route);
    if (std::string_view(verb) == "added")
        text += std::string(": ") + (is_true(route, "best") ? "best" : "not best") + ", " +
                (is_true(route, "installed") ? "installed" : "not installed");
    return text + '\n';
}

std::string route_list(const json& result) {
    TextTable table({{"PREFIX"}, {"SOURCE"}, {"PREF", Align::kRight}, {"VIA"}, {"MODE"}, {"EFFECTIVE"}, {"BEST"},
                     {"INSTALLED"}, {"L2-NEXTHOP"}, {"MAC"}});
    for (const json& route : list(result, "routes"))
        table.add_row({field_text(route, "prefix"), field_text(route, "source"), field_text(route, "preference"),
                       field_text(route, "via"), mode_text(route), field_text(route, "effective_mode"),
                       is_true(route, "best") ? "*" : "", field_text(route, "installed"),
                       field_text(route, "l2_nexthop"), field_text(route, "mac")});
    return render_or(table, "no routes");
}

std::string route_get(const json& result) {
    const json& route = field(result, "route");
    const std::string ip = field_text(result, "ip");
    const std::string table_nexthop = field_text(result, "table_nexthop");
    if (!route.is_object()) {
        // The table and the RIB disagreeing is worth a word.
        const bool table_agrees = table_nexthop == "0" || table_nexthop == "-";
        return ip + ": no route" + (table_agrees ? "" : " (but the table answers next hop " + table_nexthop + ")") +
               '\n';
    }
    Fields fields = {{"ip", ip},
                     {"prefix", field_text(route, "prefix")},
                     {"source", field_text(route, "source")},
                     {"preference", field_text(route, "preference")},
                     {"via", field_text(route, "via")},
                     {"mode", mode_text(route)},
                     {"effective mode", field_text(route, "effective_mode")}};
    if (!field(route, "vni").is_null())
        fields.emplace_back("vni", field_text(route, "vni"));
    if (!field(route, "vtep_mac").is_null())
        fields.emplace_back("vtep mac", field_text(route, "vtep_mac"));
    fields.insert(fields.end(), {{"l2 next hop", field_text(route, "l2_nexthop")},
                                 {"mac", field_text(route, "mac")},
                                 {"installed", field_text(route, "installed")},
                                 {"next hop id", field_text(route, "nexthop_id")},
                                 {"table next hop", table_nexthop}});
    return render_fields(fields);
}

std::string neighbour_change(const char* verb, const json& result) {
    const json& neighbour = field(result, "neighbour");
    return std::string(verb) + " neighbour " + field_text(neighbour, "ip") + " at " + field_text(neighbour, "mac") +
           '\n';
}

// STATE, PROBES and QUEUED are the dataplane resolver's view ("-" for a
// neighbour it does not know); MAC and SOURCE the MAC the next hops use.
std::string neighbour_list(const json& result) {
    TextTable table({{"IP"}, {"MAC"}, {"SOURCE"}, {"STATE"}, {"PROBES", Align::kRight}, {"QUEUED", Align::kRight},
                     {"NEXTHOPS", Align::kRight}});
    for (const json& neighbour : list(result, "neighbours"))
        table.add_row({field_text(neighbour, "ip"), field_text(neighbour, "mac"), field_text(neighbour, "source"),
                       field_text(neighbour, "state"), field_text(neighbour, "probes"), field_text(neighbour, "queued"),
                       field_text(neighbour, "nexthops")});
    return render_or(table, "no neighbours");
}

std::string sources(const json& result) {
    TextTable table({{"NAME"}, {"ENABLED"}, {"STATE"}, {"ROUTES", Align::kRight}, {"BEST", Align::kRight},
                     {"REFUSED", Align::kRight}, {"CHANGES", Align::kRight}, {"DETAIL"}, {"LAST-ERROR"}});
    for (const json& source : list(result, "sources"))
        table.add_row({field_text(source, "name"), field_text(source, "enabled"), field_text(source, "state"),
                       field_text(source, "routes"), field_text(source, "best"), field_text(source, "refused"),
                       field_text(source, "changes"), field_text(source, "detail"), field_text(source, "last_error")});
    return render_or(table, "no sources");
}

// "reader pid 1234 (slot 3) stalled for 12 s; 4096 retired elements pinned;
// reserve 10% used", or "healthy, 2 readers online, 0 retired elements pending".
std::string table_health_text(const json& health) {
    const json& stalled = field(health, "stalled_reader");
    const std::string pending = field_text(health, "retired_pending");
    if (!stalled.is_object())
        return "healthy, " + field_text(health, "readers_online") + " readers online, " + pending +
               " retired elements pending";
    const json& seconds = field(stalled, "stalled_s");
    return "reader pid " + field_text(stalled, "pid") + " (slot " + field_text(stalled, "slot") + ") stalled for " +
           (seconds.is_number() ? std::to_string(static_cast<std::uint64_t>(seconds.get<double>())) : cell_text(seconds)) +
           " s; " + pending + " retired elements pinned; reserve " + field_text(health, "reserve_used_pct") + "% used";
}

std::string status(const json& result) {
    static const std::pair<const char*, const char*> kKnown[] = {
        {"node_ip", "node ip"}, {"uplink", "uplink"},        {"gateway", "gateway"},
        {"table", "table"},     {"pod_cidrs", "pod CIDRs"}, {"default_mode", "default mode"},
        {"routes", "routes"},   {"installed", "installed"}, {"nexthops", "next hops"},
        {"pid", "pid"},         {"uptime_s", "uptime"},     {"table_health", "table health"}};
    Fields fields;
    for (const auto& [key, label] : kKnown) {
        const json& value = field(result, key);
        const bool seconds = std::string_view(key) == "uptime_s" && value.is_number() && value >= 0;
        if (std::string_view(key) == "table_health") {
            if (value.is_object())   // an older daemon sends none
                fields.emplace_back(label, table_health_text(value));
        } else
            fields.emplace_back(label, seconds ? duration_text(static_cast<std::uint64_t>(value.get<double>()))
                                               : cell_text(value));
    }
    // Fields a newer daemon added: shown as they come.
    if (result.is_object())
        for (const auto& item : result.items()) {
            const std::string& key = item.key();
            if (std::none_of(std::begin(kKnown), std::end(kKnown),
                             [&](const auto& known) { return key == known.first; }))
                fields.emplace_back(key, cell_text(item.value()));
        }
    return render_fields(fields);
}

// A non-negative number the daemon sent (seconds, a count), whole; else nothing.
std::optional<std::uint64_t> whole_number(const json& value) {
    if (value.is_number_unsigned())
        return value.get<std::uint64_t>();
    if (value.is_number_integer())
        return value.get<std::int64_t>() >= 0 ? std::optional<std::uint64_t>(value.get<std::int64_t>()) : std::nullopt;
    if (value.is_number_float() && value.get<double>() >= 0 && value.get<double>() < 1e18)
        return static_cast<std::uint64_t>(value.get<double>());
    return std::nullopt;
}

// "AS 64512, router id 10.168.0.2, gobgpd pid 1234 (started 1×), phase up,
// 120 routes (0 stale), 3 refused, accept 10.244.0.0/16"
std::string bgp_summary(const json& bgp) {
    std::string text = "AS " + field_text(bgp, "asn") + ", router id " + field_text(bgp, "router_id");
    const json& pid = field(bgp, "gobgpd_pid");
    const auto starts = whole_number(field(bgp, "gobgpd_starts"));
    if (!pid.is_null())
        text += ", gobgpd pid " + cell_text(pid);
    else if (starts && *starts > 0)
        text += ", gobgpd not running";
    else   // a gobgpd someone else runs (or ours not started yet): where we reach it
        text += ", gobgpd at " + field_text(bgp, "api");
    if (starts && *starts > 0)
        text += " (started " + std::to_string(*starts) + "×)";
    text += ", phase " + field_text(bgp, "phase");
    text += ", " + field_text(bgp, "routes") + " routes (" + field_text(bgp, "stale") + " stale), " +
            field_text(bgp, "refused") + " refused";
    const json& accept = field(bgp, "accept");
    text += ", accept " + (accept.is_array() && accept.empty() ? std::string("nothing") : cell_text(accept));
    text += '\n';
    if (const json& error = field(bgp, "last_error"); !error.is_null())
        text += "last error: " + cell_text(error) + '\n';
    return text;
}

// The speaker's summary, then one row per configured peer.
std::string bgp_peers(const json& result) {
    TextTable table({{"PEER"}, {"AS", Align::kRight}, {"STATE"}, {"UPTIME", Align::kRight},
                     {"RECEIVED", Align::kRight}, {"ACCEPTED", Align::kRight}, {"REFUSED", Align::kRight},
                     {"ADVERTISED", Align::kRight}, {"LAST-ERROR"}});
    for (const json& peer : list(result, "peers")) {
        std::string address = field_text(peer, "address");
        if (const json& port = field(peer, "port"); !port.is_null() && port != 179)
            address += ':' + cell_text(port);
        const json& uptime = field(peer, "uptime_s");
        const auto seconds = whole_number(uptime);
        table.add_row({address, field_text(peer, "remote_as"), field_text(peer, "state"),
                       seconds ? short_duration_text(*seconds) : cell_text(uptime), field_text(peer, "received"),
                       field_text(peer, "accepted"), field_text(peer, "refused"), field_text(peer, "advertised"),
                       field_text(peer, "last_error")});
    }
    return bgp_summary(field(result, "bgp")) + render_or(table, "no peers");
}

}  // namespace

std::string cell_text(const json& value) {
    if (value.is_null())
        return "-";
    if (value.is_string())
        return value.get<std::string>();
    if (value.is_boolean())
        return value.get<bool>() ? "yes" : "no";
    if (value.is_array()) {
        std::string text;
        for (const json& item : value) {
            if (!text.empty())
                text += ',';
            text += cell_text(item);
        }
        return text.empty() ? "-" : text;
    }
    return value.dump();
}

std::string field_text(const json& object, const char* key) { return cell_text(field(object, key)); }

std::string duration_text(std::uint64_t seconds) {
    const auto part = [](std::uint64_t value, const char* unit, bool pad) {
        std::string digits = std::to_string(value);
        if (pad && digits.size() < 2)
            digits.insert(digits.begin(), '0');
        return digits + unit;
    };
    const std::uint64_t days = seconds / 86400, hours = seconds / 3600 % 24, minutes = seconds / 60 % 60;
    if (days > 0)
        return part(days, "d", false) + part(hours, "h", true) + part(minutes, "m", true);
    if (hours > 0)
        return part(hours, "h", false) + part(minutes, "m", true) + part(seconds % 60, "s", true);
    if (minutes > 0)
        return part(minutes, "m", false) + part(seconds % 60, "s", true);
    return part(seconds, "s", false);
}

std::string short_duration_text(std::uint64_t seconds) {
    const auto two = [](std::uint64_t major, const char* major_unit, std::uint64_t minor, const char* minor_unit) {
        std::string text = std::to_string(major) + major_unit;
        if (minor < 10)
            text += '0';
        return text + std::to_string(minor) + minor_unit;
    };
    if (seconds >= 86400)
        return two(seconds / 86400, "d", seconds / 3600 % 24, "h");
    if (seconds >= 3600)
        return two(seconds / 3600, "h", seconds / 60 % 60, "m");
    if (seconds >= 60)
        return two(seconds / 60, "m", seconds % 60, "s");
    return std::to_string(seconds) + "s";
}

std::string format_result(View view, const json& result) {
    switch (view) {
    case View::kRouteAdded: return route_change("added", result);
    case View::kRouteRemoved: return route_change("removed", result);
    case View::kRouteList: return route_list(result);
    case View::kRouteGet: return route_get(result);
    case View::kNeighbourAdded: return neighbour_change("added", result);
    case View::kNeighbourRemoved: return neighbour_change("removed", result);
    case View::kNeighbourList: return neighbour_list(result);
    case View::kSources: return sources(result);
    case View::kStatus: return status(result);
    case View::kBgpPeers: return bgp_peers(result);
    }
    return result.dump() + '\n';
}

}  // namespace podfwd::ctl
