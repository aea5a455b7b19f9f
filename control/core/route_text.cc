#include "control/core/route_text.h"

#include <charconv>

namespace podfwd::control {

namespace {

Error invalid(std::string message) { return Error{Errc::kInvalidArgument, std::move(message)}; }

// 'text', built by appending: g++ 12 misreports "'" + std::string(...) under
// -Wrestrict (GCC bug 105329).
std::string quote(std::string_view text) {
    std::string q;
    q.reserve(text.size() + 2);
    q += '\'';
    q += text;
    q += '\'';
    return q;
}

Result<std::uint32_t> parse_vni(std::string_view text) {
    std::uint32_t v = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc{} || end != text.data() + text.size() || v == 0 || v > (1u << 24) - 1)
        return invalid("VNI " + quote(text) + " is not a number in 1..16777215");
    return v;
}

}  // namespace

std::vector<std::string_view> split_words(std::string_view line) {
    if (auto hash = line.find('#'); hash != std::string_view::npos)
        line = line.substr(0, hash);
    std::vector<std::string_view> words;
    std::size_t i = 0;
    while (i < line.size()) {
        while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'))
            ++i;
        std::size_t j = i;
        while (j < line.size() && line[j] != ' ' && line[j] != '\t' && line[j] != '\r')
            ++j;
        if (j > i)
            words.push_back(line.substr(i, j - i));
        i = j;
    }
    return words;
}

Result<RouteSpec> parse_route_words(std::span<const std::string_view> words, Source source) {
    if (words.empty())
        return invalid("a route needs a prefix");
    auto prefix = Prefix4::parse(words[0]);
    if (!prefix)
        return std::move(prefix).error();
    RouteSpec r;
    r.prefix = *prefix;
    r.source = source;
    if (words.size() == 2 && (words[1] == "local" || words[1] == "blackhole")) {
        r.mode = words[1] == "local" ? ModeRequest::kLocal : ModeRequest::kBlackhole;
        return r;
    }
    bool has_via = false;
    for (std::size_t i = 1; i < words.size(); i += 2) {
        const std::string_view key = words[i];
        if (i + 1 >= words.size())
            return invalid(quote(key) + " needs a value");
        const std::string_view value = words[i + 1];
        if (key == "via") {
            auto ip = parse_ipv4(value);
            if (!ip)
                return std::move(ip).error();
            r.via = *ip;
            has_via = true;
        } else if (key == "mode") {
            auto mode = parse_mode_request(value);
            if (!mode || *mode == ModeRequest::kLocal || *mode == ModeRequest::kBlackhole)
                return invalid("unknown mode " + quote(value) + " (host-gw, ipip, vxlan, cross-subnet)");
            r.mode = *mode;
        } else if (key == "vni") {
            auto vni = parse_vni(value);
            if (!vni)
                return std::move(vni).error();
            r.vni = *vni;
        } else if (key == "vtep-mac") {
            auto mac = parse_mac(value);
            if (!mac)
                return invalid(quote(value) + " is not a MAC address (aa:bb:cc:dd:ee:ff)");
            r.vtep_mac = *mac;
        } else {
            return invalid("unknown word " + quote(key) + " (via, mode, vni, vtep-mac)");
        }
    }
    if (!has_via)
        return invalid(r.prefix.str() + " needs 'via <node-ip>' (or 'local' / 'blackhole')");
    return r;
}

Result<Neighbour> parse_neighbour_words(std::span<const std::string_view> words, Source source) {
    if (words.size() != 2)
        return invalid("a neighbour is '<ip> <mac>'");
    auto ip = parse_ipv4(words[0]);
    if (!ip)
        return std::move(ip).error();
    auto mac = parse_mac(words[1]);
    if (!mac)
        return invalid(quote(words[1]) + " is not a MAC address (aa:bb:cc:dd:ee:ff)");
    if (!is_unicast(*mac))
        return invalid(std::string(words[1]) + " is not a unicast MAC");
    return Neighbour{*ip, *mac, source};
}

}  // namespace podfwd::control
