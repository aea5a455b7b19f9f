#include "control/core/route.h"

namespace podfwd::control {

namespace {

constexpr const char* kSourceNames[] = {"local", "cli", "static", "bgp", "etcd", "kernel", "connected", "gateway", "arp"};
static_assert(std::size(kSourceNames) == kSourceCount);

struct ModeName {
    std::string_view text;
    ModeRequest mode;
};
constexpr ModeName kModeNames[] = {
    {"host-gw", ModeRequest::kHostGw},           {"ipip", ModeRequest::kIpip},
    {"vxlan", ModeRequest::kVxlan},              {"cross-subnet", ModeRequest::kCrossSubnet},
    {"local", ModeRequest::kLocal},              {"blackhole", ModeRequest::kBlackhole},
    {"host_gw", ModeRequest::kHostGw},           {"cross_subnet", ModeRequest::kCrossSubnet},
};

}  // namespace

const char* source_name(Source s) noexcept {
    const auto i = static_cast<unsigned>(s);
    return i < kSourceCount ? kSourceNames[i] : "?";
}

std::optional<Source> parse_source(std::string_view text) noexcept {
    for (unsigned i = 0; i < kSourceCount; ++i)
        if (text == kSourceNames[i])
            return static_cast<Source>(i);
    return std::nullopt;
}

std::optional<Source> parse_route_source(std::string_view text) noexcept {
    const auto source = parse_source(text);
    return source && is_route_source(*source) ? source : std::nullopt;
}

const std::string& route_source_names() {
    static const std::string names = [] {
        std::string text;
        for (unsigned i = 0; i < kSourceCount; ++i)
            if (is_route_source(static_cast<Source>(i)))
                text += (text.empty() ? "" : ", ") + std::string(kSourceNames[i]);
        return text;
    }();
    return names;
}

// The gateway's default route is the last resort: 255, and last in the
// tie-break, so any learned route (whatever its --preference) wins.
Preferences default_preferences() noexcept { return {0, 10, 20, 30, 40, 50, 0, 255, 255}; }

const char* mode_request_name(ModeRequest m) noexcept {
    switch (m) {
    case ModeRequest::kDefault: return "default";
    case ModeRequest::kHostGw: return "host-gw";
    case ModeRequest::kIpip: return "ipip";
    case ModeRequest::kVxlan: return "vxlan";
    case ModeRequest::kCrossSubnet: return "cross-subnet";
    case ModeRequest::kLocal: return "local";
    case ModeRequest::kBlackhole: return "blackhole";
    }
    return "?";
}

std::optional<ModeRequest> parse_mode_request(std::string_view text) noexcept {
    for (const auto& [name, mode] : kModeNames)
        if (text == name)
            return mode;
    return std::nullopt;
}

std::string describe(const RouteSpec& r) {
    std::string s = r.prefix.str();
    if (r.via != 0)
        s += " via " + format_ipv4(r.via);
    s += std::string(" mode ") + mode_request_name(r.mode);
    if (r.vni != 0)
        s += " vni " + std::to_string(r.vni);
    if (r.vtep_mac)
        s += " vtep-mac " + format_mac(*r.vtep_mac);
    return s + " (" + source_name(r.source) + ")";
}

}  // namespace podfwd::control
