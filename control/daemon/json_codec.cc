#include "control/daemon/json_codec.h"


#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

namespace podfwd::control {

using nlohmann::json;

namespace {

Error invalid(std::string message) { return Error{Errc::kInvalidArgument, std::move(message)}; }

}  // namespace

const char* effective_mode_name(lpm::ForwardMode mode) noexcept {
    return mode == lpm::ForwardMode::kDrop ? "blackhole" : lpm::mode_name(mode);
}

Result<Neighbour> neighbour_from_json(const json& j, Source source) {
    if (!j.is_object())
        return invalid("a neighbour must be a JSON object");
    auto ip_text = json_string_field(j, "ip");
    auto mac_text = json_string_field(j, "mac");
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
    std::ifstream in(path, std::ios::binary);
    if (!in)
        return errno == ENOENT ? Result<CliState>(CliState{})
                               : Error{Errc::kSystem, "cannot read " + path + ": " + std::strerror(errno)};
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad())
        return Error{Errc::kSystem, "cannot read " + path + ": " + std::strerror(errno)};
    return parse_cli_state(text, path);
}

Result<CliState> parse_cli_state(std::string_view text, std::string_view origin) {
    const std::string name(origin);
    // A power loss between the rename and the flush can leave a file of no
    // bytes on some file systems: the caller decides what that means.
    if (text.empty())
        return Error{Errc::kNotFound, name + " is empty (a power loss before it reached the disk?)"};
    const json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object())
        return invalid(name + ": not a JSON object");
    CliState state;
    const auto array = [&](const char* key) -> Result<json> {
        const auto it = j.find(key);
        if (it == j.end())
            return json::array();
        if (!it->is_array())
            return invalid(name + ": '" + key + "' is not an array");
        return *it;
    };
    auto routes = array("routes");
    if (!routes)
        return std::move(routes).error();
    for (const auto& r : *routes) {
        auto spec = route_spec_from_json(r, Source::kCli);
        if (!spec)
            return invalid(name + ": " + spec.error().message);
        state.routes.push_back(*spec);
    }
    auto neighbours = array("neighbours");
    if (!neighbours)
        return std::move(neighbours).error();
    for (const auto& n : *neighbours) {
        auto neighbour = neighbour_from_json(n, Source::kCli);
        if (!neighbour)
            return invalid(name + ": " + neighbour.error().message);
        state.neighbours.push_back(*neighbour);
    }
    return state;
}

Status save_cli_state(const std::string& path, const CliState& state, Durability durability) {
    json j{{"routes", json::array()}, {"neighbours", json::array()}};
    for (const RouteSpec& r : state.routes)
        j["routes"].push_back(route_spec_to_json(r));
    for (const Neighbour& n : state.neighbours)
        j["neighbours"].push_back({{"ip", format_ipv4(n.ip)}, {"mac", format_mac(n.mac)}});
    return replace_file(path, j.dump(1) + "\n", durability);
}

Status flush_cli_state(const std::string& path) { return sync_file_and_directory(path); }

}  // namespace podfwd::control
