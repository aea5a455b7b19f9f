// The words of BGP options and states: peer specs, state names.
#include "control/bgp/bgp_source.h"

#include <charconv>

namespace podfwd::control::bgp {

namespace {

Error invalid(std::string_view spec, const std::string& why) {
    return Error{Errc::kInvalidArgument, "--bgp-peer '" + std::string(spec) + "': " + why};
}

template <class T>
bool parse_number(std::string_view text, T min, T max, T& out) {
    std::uint64_t v = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || end != text.data() + text.size() || v < min || v > max)
        return false;
    out = static_cast<T>(v);
    return true;
}

}  // namespace

Result<PeerConfig> parse_peer(std::string_view spec, std::uint32_t hold_time, std::uint32_t restart_time) {
    PeerConfig peer;
    peer.hold_time = hold_time;
    peer.restart_time = restart_time;
    std::size_t start = 0;
    bool first = true;
    bool have_as = false;
    while (start <= spec.size()) {
        const std::size_t comma = std::min(spec.find(',', start), spec.size());
        const std::string_view item = spec.substr(start, comma - start);
        start = comma + 1;
        if (first) {
            auto address = parse_ipv4(item);
            if (!address)
                return invalid(spec, "'" + std::string(item) + "' is not an IPv4 address");
            peer.address = *address;
            first = false;
            continue;
        }
        const std::size_t eq = item.find('=');
        const std::string_view key = item.substr(0, eq);
        const std::string_view value = eq == std::string_view::npos ? std::string_view() : item.substr(eq + 1);
        if (key == "passive" && eq == std::string_view::npos) {
            peer.passive = true;
        } else if (key == "as") {
            if (!parse_number<std::uint32_t>(value, 1, 4294967295u, peer.remote_as))
                return invalid(spec, "as=N with N in 1..4294967295");
            have_as = true;
        } else if (key == "password") {
            // TCP MD5 keys are at most 80 bytes (TCP_MD5SIG_MAXKEYLEN).
            if (value.empty() || value.size() > 80)
                return invalid(spec, "password=P with 1..80 characters (no comma)");
            peer.password = value;
        } else if (key == "port") {
            if (!parse_number<std::uint16_t>(value, 1, 65535, peer.port))
                return invalid(spec, "port=N with N in 1..65535");
        } else if (key == "hold") {
            // RFC 4271 allows 0 (no keepalives), but gobgpd takes 0 for its default of 90.
            if (!parse_number<std::uint32_t>(value, 3, 65535, peer.hold_time))
                return invalid(spec, "hold=S with S in 3..65535");
        } else if (key == "restart-time") {
            if (!parse_number<std::uint32_t>(value, 0, 4095, peer.restart_time))
                return invalid(spec, "restart-time=S with S in 0..4095 (0: no graceful restart)");
        } else {
            return invalid(spec, "unknown '" + std::string(item) +
                                     "' (expected as=N, password=P, passive, port=N, hold=S, restart-time=S)");
        }
    }
    if (!have_as)
        return invalid(spec, "as=N is required");
    return peer;
}

const char* session_state_name(SessionState s) noexcept {
    switch (s) {
    case SessionState::kIdle: return "idle";
    case SessionState::kConnect: return "connect";
    case SessionState::kActive: return "active";
    case SessionState::kOpenSent: return "opensent";
    case SessionState::kOpenConfirm: return "openconfirm";
    case SessionState::kEstablished: return "established";
    case SessionState::kUnknown: break;
    }
    return "unknown";
}

const char* phase_name(Phase p) noexcept {
    switch (p) {
    case Phase::kStarting: return "starting";
    case Phase::kSyncing: return "syncing";
    case Phase::kUp: return "up";
    case Phase::kError: return "error";
    }
    return "unknown";
}

}  // namespace podfwd::control::bgp
