#include "common/ipv4.h"

#include <charconv>

namespace podfwd {

const char* errc_name(Errc code) noexcept {
    switch (code) {
    case Errc::kInvalidArgument: return "invalid argument";
    case Errc::kNotFound: return "not found";
    case Errc::kAlreadyExists: return "already exists";
    case Errc::kInUse: return "in use";
    case Errc::kCapacity: return "capacity exhausted";
    case Errc::kIncompatible: return "incompatible";
    case Errc::kBusy: return "busy";
    case Errc::kNotReady: return "not ready";
    case Errc::kSystem: return "system error";
    }
    return "unknown error";
}

Result<Ipv4Addr> parse_ipv4(std::string_view text) {
    Ipv4Addr addr = 0;
    const char* p = text.data();
    const char* end = text.data() + text.size();
    for (int octet = 0; octet < 4; ++octet) {
        if (octet > 0) {
            if (p == end || *p != '.')
                return Error{Errc::kInvalidArgument, "invalid IPv4 address '" + std::string(text) + "'"};
            ++p;
        }
        unsigned value = 0;
        auto [next, ec] = std::from_chars(p, end, value);
        if (ec != std::errc{} || value > 255 || next - p > 3)
            return Error{Errc::kInvalidArgument, "invalid IPv4 address '" + std::string(text) + "'"};
        // inet_aton reads "010" as octal 8, Go and Python refuse it: taking it
        // as decimal 10 would silently differ from one or the other.
        if (next - p > 1 && *p == '0')
            return Error{Errc::kInvalidArgument,
                         "invalid IPv4 address '" + std::string(text) + "' (a leading zero: octal or decimal?)"};
        addr = addr << 8 | value;
        p = next;
    }
    if (p != end)
        return Error{Errc::kInvalidArgument, "invalid IPv4 address '" + std::string(text) + "'"};
    return addr;
}

std::string format_ipv4(Ipv4Addr addr) {
    return std::to_string(addr >> 24) + '.' + std::to_string(addr >> 16 & 0xff) + '.' +
           std::to_string(addr >> 8 & 0xff) + '.' + std::to_string(addr & 0xff);
}

Result<Prefix4> Prefix4::make(Ipv4Addr addr, unsigned len) {
    if (len > 32)
        return Error{Errc::kInvalidArgument,
                     "prefix length " + std::to_string(len) + " is longer than 32"};
    if ((addr & ~prefix_mask(len)) != 0)
        return Error{Errc::kInvalidArgument,
                     format_ipv4(addr) + "/" + std::to_string(len) + " has host bits set (did you mean " +
                         format_ipv4(addr & prefix_mask(len)) + "/" + std::to_string(len) + "?)"};
    return Prefix4{addr, static_cast<std::uint8_t>(len)};
}

Result<Prefix4> Prefix4::parse(std::string_view text) {
    auto slash = text.find('/');
    auto addr = parse_ipv4(text.substr(0, slash));
    if (!addr)
        return std::move(addr).error();
    if (slash == std::string_view::npos)
        return make(*addr, 32);
    auto len_text = text.substr(slash + 1);
    unsigned len = 0;
    auto [next, ec] = std::from_chars(len_text.data(), len_text.data() + len_text.size(), len);
    if (ec != std::errc{} || next != len_text.data() + len_text.size() || len_text.empty())
        return Error{Errc::kInvalidArgument, "invalid prefix length in '" + std::string(text) + "'"};
    return make(*addr, len);
}

std::string Prefix4::str() const { return format_ipv4(addr) + "/" + std::to_string(len); }

}  // namespace podfwd
