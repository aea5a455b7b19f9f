#include "control/daemon/json_codec.h"


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
