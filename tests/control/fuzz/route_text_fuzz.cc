// libFuzzer target: the route grammar (control/core/route_text.h) and the
// static routes file (control/core/static_file.h), fed any text.
// Oracle: no exception escapes; a file's error names the file and a line;
// a file that parses round-trips: written again in the grammar's words (by
// this test, not by the parser's code) it parses to the same routes and
// neighbours; each line's words give parse_route_words the same verdict as
// the file gives that line.
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "control/core/route_text.h"
#include "control/core/static_file.h"

using namespace podfwd;
using namespace podfwd::control;

namespace {

constexpr std::string_view kOrigin = "routes.conf";

std::string route_line(const RouteSpec& r) {
    std::string line = "route " + r.prefix.str();
    if (r.mode == ModeRequest::kLocal || r.mode == ModeRequest::kBlackhole)
        return line + " " + mode_request_name(r.mode) + "\n";
    line += " via " + format_ipv4(r.via);
    if (r.mode != ModeRequest::kDefault)
        line += std::string(" mode ") + mode_request_name(r.mode);
    if (r.vni != 0)
        line += " vni " + std::to_string(r.vni);
    if (r.vtep_mac)
        line += " vtep-mac " + format_mac(*r.vtep_mac);
    return line + "\n";
}

void check_file(std::string_view text) {
    const auto config = parse_static(text, kOrigin);
    if (!config) {
        if (config.error().message.rfind(std::string(kOrigin) + ":", 0) != 0)
            std::abort();
        return;
    }
    std::string again_text = "# written again by route_text_fuzz\n";
    for (const RouteSpec& r : config->routes)
        again_text += route_line(r);
    for (const Neighbour& n : config->neighbours)
        again_text += "neigh " + format_ipv4(n.ip) + " " + format_mac(n.mac) + "\n";
    const auto again = parse_static(again_text, kOrigin);
    if (!again || again->routes != config->routes || again->neighbours != config->neighbours)
        std::abort();
}

void check_words(std::string_view text) {
    for (std::size_t start = 0; start < text.size();) {
        const std::size_t end = std::min(text.find('\n', start), text.size());
        const std::vector<std::string_view> words = split_words(text.substr(start, end - start));
        for (std::string_view w : words)
            if (w.empty() || w.find_first_of(" \t#") != std::string_view::npos)
                std::abort();   // a word with a blank or a comment in it
        const auto route = parse_route_words(words, Source::kCli);
        if (!route && route.error().message.empty())
            std::abort();
        if (route) {
            // The route as the static file states it: the same route.
            const auto file = parse_static(route_line(*route), kOrigin);
            if (!file || file->routes.size() != 1 || file->routes[0].prefix != route->prefix ||
                file->routes[0].via != route->via || file->routes[0].mode != route->mode ||
                file->routes[0].vni != route->vni || file->routes[0].vtep_mac != route->vtep_mac)
                std::abort();
        }
        const auto neighbour = parse_neighbour_words(words, Source::kCli);
        if (!neighbour && neighbour.error().message.empty())
            std::abort();
        start = end + 1;
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    // The text in an exactly-sized buffer: a read one past it is reported.
    const auto copy = std::make_unique<char[]>(size);
    std::copy(data, data + size, copy.get());
    const std::string_view text(copy.get(), size);
    check_file(text);
    check_words(text);
    return 0;
}
