#include "control/core/route_json.h"

#include <vector>

#include "control/core/route_text.h"

namespace podfwd::control {

using nlohmann::json;

namespace {

Error invalid(std::string message) { return Error{Errc::kInvalidArgument, std::move(message)}; }

}  // namespace

Result<std::string> json_string_field(const json& j, const char* name) {
    auto it = j.find(name);
    if (it == j.end())
        return invalid(std::string("missing '") + name + "'");
    if (!it->is_string())
        return invalid(std::string("'") + name + "' must be a string");
    return it->get<std::string>();
}

// The JSON fields become the words of the one route grammar
// (control/core/route_text.h), so the socket, the state file, the static
// file and podfwdctl accept the same routes with the same messages.
Result<RouteSpec> route_spec_from_json(const json& j, Source source) {
    if (!j.is_object())
        return invalid("a route must be a JSON object");
    std::vector<std::string> words;
    auto prefix = json_string_field(j, "prefix");
    if (!prefix)
        return std::move(prefix).error();
    words.push_back(*prefix);
    const bool has_via = j.contains("via") && !j["via"].is_null();
    for (const auto& [field, word] : {std::pair{"via", "via"}, {"mode", "mode"}, {"vtep_mac", "vtep-mac"}}) {
        if (!j.contains(field) || j[field].is_null())
            continue;
        auto value = json_string_field(j, field);
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

}  // namespace podfwd::control
