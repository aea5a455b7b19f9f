// libFuzzer target: the control protocol's JSON decoders (a route, a
// neighbour: control/daemon/json_codec.h, control/core/route_json.h) and the
// CLI state file (parse_cli_state), fed any text.
// Oracle: no exception escapes; an error has a message (the state file's
// names the file); what decodes round-trips: encoded again and decoded, it
// is the same route, neighbour, state.
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "control/core/route_json.h"
#include "control/daemon/json_codec.h"

using namespace podfwd;
using namespace podfwd::control;
using nlohmann::json;

namespace {

json neighbour_json(const Neighbour& n) { return json{{"ip", format_ipv4(n.ip)}, {"mac", format_mac(n.mac)}}; }

void check_route(const json& j) {
    const auto spec = route_spec_from_json(j, Source::kCli);
    if (!spec) {
        if (spec.error().message.empty())
            std::abort();
        return;
    }
    const auto again = route_spec_from_json(route_spec_to_json(*spec), Source::kCli);
    if (!again || !(*again == *spec))
        std::abort();
}

void check_neighbour(const json& j) {
    const auto neighbour = neighbour_from_json(j, Source::kCli);
    if (!neighbour) {
        if (neighbour.error().message.empty())
            std::abort();
        return;
    }
    const auto again = neighbour_from_json(neighbour_json(*neighbour), Source::kCli);
    if (!again || !(*again == *neighbour))
        std::abort();
}

void check_state(std::string_view text) {
    const auto state = parse_cli_state(text, "cli-state.json");
    if (!state) {
        if (state.error().message.rfind("cli-state.json", 0) != 0)
            std::abort();   // an error that does not name the file
        return;
    }
    json routes = json::array(), neighbours = json::array();
    for (const RouteSpec& r : state->routes)
        routes.push_back(route_spec_to_json(r));
    for (const Neighbour& n : state->neighbours)
        neighbours.push_back(neighbour_json(n));
    const auto again =
        parse_cli_state(json{{"routes", routes}, {"neighbours", neighbours}}.dump(), "cli-state.json");
    if (!again || again->routes != state->routes || again->neighbours != state->neighbours)
        std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    // The text in an exactly-sized buffer: a read one past it is reported.
    const auto copy = std::make_unique<char[]>(size);
    std::copy(data, data + size, copy.get());
    const std::string_view text(copy.get(), size);

    check_state(text);
    const json j = json::parse(text, nullptr, false);
    if (j.is_discarded())
        return 0;
    check_route(j);
    check_neighbour(j);
    // A request's "routes" or "neighbours" array, element by element.
    if (j.is_object())
        for (const char* key : {"routes", "neighbours"})
            if (const auto it = j.find(key); it != j.end() && it->is_array())
                for (const json& element : *it) {
                    check_route(element);
                    check_neighbour(element);
                }
    return 0;
}
