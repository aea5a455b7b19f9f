#include "control/daemon/json_codec.h"


#include <fcntl.h>
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
    // A power loss between the rename and the flush can leave a file of no
    // bytes on some file systems: the last changes are lost, not the node.
    if (in.peek() == std::ifstream::traits_type::eof())
        return Error{Errc::kNotFound, path + " is empty (a power loss before it reached the disk?)"};
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

    // Written to a temporary file and renamed over the old one: a daemon
    // killed at any point leaves the old state or the new one. Reaching the
    // disk is flush_cli_state()'s job, off the request path.
    std::error_code ec;
    const std::filesystem::path file(path);
    std::filesystem::create_directories(file.parent_path(), ec);
    const std::string text = j.dump(1) + "\n";
    const std::string tmp = path + ".tmp";
    const auto fail = [&](const std::string& what) {
        return Error{Errc::kSystem, "cannot " + what + ": " + std::strerror(errno)};
    };
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return fail("create " + tmp);
    std::size_t written = 0;
    while (written < text.size()) {
        const ssize_t n = ::write(fd, text.data() + written, text.size() - written);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            auto error = fail("write " + tmp);
            ::close(fd);
            return error;
        }
        written += static_cast<std::size_t>(n);
    }
    ::close(fd);
    if (std::rename(tmp.c_str(), path.c_str()) != 0)
        return fail("rename " + tmp);
    return ok();
}

Status flush_cli_state(const std::string& path) {
    const auto sync = [](const char* what, int flags) -> Status {
        const int fd = ::open(what, flags | O_CLOEXEC);
        if (fd < 0 || ::fsync(fd) != 0) {
            Error error{Errc::kSystem, std::string("cannot flush ") + what + ": " + std::strerror(errno)};
            if (fd >= 0)
                ::close(fd);
            return error;
        }
        ::close(fd);
        return ok();
    };
    if (auto s = sync(path.c_str(), O_RDONLY); !s)
        return s;
    const auto dir = std::filesystem::path(path).parent_path();
    return sync(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY);
}

}  // namespace podfwd::control
