#include "control/core/static_file.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <iterator>

#include "control/core/route_text.h"

namespace podfwd::control {

Result<StaticConfig> parse_static(std::string_view text, std::string_view origin) {
    StaticConfig config;
    std::map<Prefix4, unsigned> route_lines;
    std::map<Ipv4Addr, unsigned> neigh_lines;
    unsigned line_no = 0;
    const auto at = [&](const std::string& message) {
        return Error{Errc::kInvalidArgument, std::string(origin) + ":" + std::to_string(line_no) + ": " + message};
    };
    while (!text.empty()) {
        const auto eol = text.find('\n');
        const std::string_view line = text.substr(0, eol);
        text = eol == std::string_view::npos ? std::string_view{} : text.substr(eol + 1);
        ++line_no;
        const auto words = split_words(line);
        if (words.empty())
            continue;
        // Editors end every line; a writer caught half-way may not, and a
        // line cut short can still parse ("via 10.168.0.3" of ".31").
        if (eol == std::string_view::npos)
            return at("the last line has no end of line: a file still being written? (end it with a newline)");
        const std::span<const std::string_view> args(words.data() + 1, words.size() - 1);
        if (words[0] == "route") {
            auto route = parse_route_words(args, Source::kStatic);
            if (!route)
                return at(route.error().message);
            if (auto [it, fresh] = route_lines.emplace(route->prefix, line_no); !fresh)
                return at(route->prefix.str() + " is already routed on line " + std::to_string(it->second));
            config.routes.push_back(*route);
        } else if (words[0] == "neigh") {
            auto n = parse_neighbour_words(args, Source::kStatic);
            if (!n)
                return at(n.error().message);
            if (auto [it, fresh] = neigh_lines.emplace(n->ip, line_no); !fresh)
                return at(format_ipv4(n->ip) + " already has a MAC on line " + std::to_string(it->second));
            config.neighbours.push_back(*n);
        } else {
            return at("unknown keyword '" + std::string(words[0]) + "' (route, neigh)");
        }
    }
    return config;
}

Result<StaticConfig> load_static_file(const std::string& path) {
    // A directory opens as an empty stream: it must not read as "no routes".
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec))
        return Error{Errc::kSystem, "cannot read " + path + ": " +
                                        (ec ? ec.message() : std::string("not a regular file"))};
    std::ifstream in(path, std::ios::binary);
    if (!in)
        return Error{Errc::kSystem, "cannot read " + path + ": " + std::strerror(errno)};
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad())
        return Error{Errc::kSystem, "cannot read " + path + ": " + std::strerror(errno)};
    return parse_static(text, path);
}

}  // namespace podfwd::control
