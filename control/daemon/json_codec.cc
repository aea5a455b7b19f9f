#include "control/daemon/json_codec.h"

#include "control/core/route_text.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace podfwd::control {

using nlohmann::json;

namespace {

Error invalid(std::string message) { return Error{Errc::kInvalidArgument, std::move(message)}; }

Result<std::string> string_field(const json& j, const char* name) {
    auto it = j.find(name);
    if (it == j.end())
        return invalid(std::string("missing '") + name + "'");
    if (!it->is_string())
        return invalid(std::string("'") + name + "' must be a string");
    return it->get<std::string>();
}

}  // namespace

const char* effective_mode_name(lpm::ForwardMode mode) noexcept {
    return mode == lpm::ForwardMode::kDrop ? "blackhole" : lpm::mode_name(mode);
}

// The JSON fields become the words of the one route grammar
// (control/core/route_text.h), so the socket, the state file, the static
// file and podfwdctl accept the same routes with the same messages.
Result<RouteSpec> route_spec_from_json(const json& j, Source source) {
    if (!j.is_object())
        return invalid("a route must be a JSON object");
    std::vector<std::string> words;
    auto prefix = string_field(j, "prefix");
    if (!prefix)
        return std::move(prefix).error();
    words.push_back(*prefix);
    const bool has_via = j.contains("via") && !j["via"].is_null();
    for (const auto& [field, word] : {std::pair{"via", "via"}, {"mode", "mode"}, {"vtep_mac", "vtep-mac"}}) {
        if (!j.contains(field) || j[field].is_null())
            continue;
        auto value = string_field(j, field);
        if (!value)
            return std::move(value).error();
        if (std::string_view(field) == "mode" && (*value == "local" || *value == "blackhole")) {
            if (has_via)
                return invalid("a " + *value + " route takes no next hop (via)");
            words.push_back(*value);   // "<prefix> local"
            continue;
        }
        words.push_back(word);
        words.push_back(*value);
    }
    if (j.contains("vni") && !j["vni"].is_null()) {
        if (!j["vni"].is_number_unsigned())
            return invalid("'vni' must be a number in 1..16777215");
        words.push_back("vni");
        words.push_back(std::to_string(j["vni"].get<std::uint64_t>()));
    }
    const std::vector<std::string_view> views(words.begin(), words.end());
    return parse_route_words(views, source);
}

json route_spec_to_json(const RouteSpec& r) {
    json j{{"prefix", r.prefix.str()}};
    if (r.mode != ModeRequest::kDefault)   // absent: the node's default, whatever it is then
        j["mode"] = mode_request_name(r.mode);
    if (r.via != 0)
        j["via"] = format_ipv4(r.via);
    if (r.vni != 0)
        j["vni"] = r.vni;
    if (r.vtep_mac)
        j["vtep_mac"] = format_mac(*r.vtep_mac);
    return j;
}

Result<Neighbour> neighbour_from_json(const json& j, Source source) {
    if (!j.is_object())
        return invalid("a neighbour must be a JSON object");
    auto ip_text = string_field(j, "ip");
    auto mac_text = string_field(j, "mac");
    if (!ip_text)
        return std::move(ip_text).error();
    if (!mac_text)
        return std::move(mac_text).error();
    auto ip = parse_ipv4(*ip_text);
    if (!ip)
        return std::move(ip).error();
    auto mac = parse_mac(*mac_text);
    if (!mac || !is_unicast(*mac))
        return invalid("'" + *mac_text + "' is not a unicast MAC address (aa:bb:cc:dd:ee:ff)");
    return Neighbour{*ip, *mac, source};
}

Result<CliState> load_cli_state(const std::string& path) {
    CliState state;
    std::ifstream in(path);
    if (!in)
        return errno == ENOENT ? Result<CliState>(state)
                               : Error{Errc::kSystem, "cannot read " + path + ": " + std::strerror(errno)};
    const json j = json::parse(in, nullptr, false);
    if (j.is_discarded() || !j.is_object())
        return invalid(path + ": not a JSON object");
    for (const auto& r : j.value("routes", json::array())) {
        auto spec = route_spec_from_json(r, Source::kCli);
        if (!spec)
            return invalid(path + ": " + spec.error().message);
        state.routes.push_back(*spec);
    }
    for (const auto& n : j.value("neighbours", json::array())) {
        auto neighbour = neighbour_from_json(n, Source::kCli);
        if (!neighbour)
            return invalid(path + ": " + neighbour.error().message);
        state.neighbours.push_back(*neighbour);
    }
    return state;
}

Status save_cli_state(const std::string& path, const CliState& state) {
    json j{{"routes", json::array()}, {"neighbours", json::array()}};
    for (const RouteSpec& r : state.routes)
        j["routes"].push_back(route_spec_to_json(r));
    for (const Neighbour& n : state.neighbours)
        j["neighbours"].push_back({{"ip", format_ipv4(n.ip)}, {"mac", format_mac(n.mac)}});

    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
    const std::string tmp = path + ".tmp";
    {
        std::ofstream out(tmp, std::ios::trunc);
        out << j.dump(1) << '\n';
        out.flush();
        if (!out)
            return Error{Errc::kSystem, "cannot write " + tmp + ": " + std::strerror(errno)};
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0)
        return Error{Errc::kSystem, "cannot rename " + tmp + ": " + std::strerror(errno)};
    return ok();
}

}  // namespace podfwd::control
