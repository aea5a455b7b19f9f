// The fuzz cover of path_update (gobgpd's best paths read into PathUpdates):
// the libFuzzer tree is built without protobuf, so here, with fixed seeds.
// Random paths are checked against a naive reference that knows what the
// generator chose; arbitrary bytes against the invariants every update keeps.
// What BgpRoutes makes of updates: test_bgp_routes.cc's model test.
#include <gtest/gtest.h>

#include <google/protobuf/stubs/logging.h>

#include <array>
#include <map>
#include <optional>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "control/bgp/gobgp_api.h"

namespace podfwd::control::bgp {

// Failures print readable updates; here, not in the unnamed namespace, for
// argument-dependent lookup to find it.
void PrintTo(const PathUpdate& u, std::ostream* os) {
    *os << u.prefix.str() << " via " << format_ipv4(u.next_hop) << " peer " << format_ipv4(u.peer)
        << (u.withdrawn ? " withdrawn" : "") << (u.own ? " own" : "") << (u.unusable ? " unusable" : "");
}

namespace {

using Rng = std::mt19937_64;
using Addr = std::optional<Ipv4Addr>;
using google::protobuf::Any;

constexpr int kPaths = 60'000;
constexpr int kInputs = 60'000;
const std::string kGoogleApis = "type.googleapis.com/";

std::size_t pick(Rng& rng, std::size_t n) { return static_cast<std::size_t>(rng() % n); }
bool one_in(Rng& rng, std::size_t n) { return pick(rng, n) == 0; }
template <typename T, std::size_t N>
const T& pick_of(Rng& rng, const T (&items)[N]) { return items[pick(rng, N)]; }

std::string random_bytes(Rng& rng, std::size_t max) {
    std::string s(pick(rng, max + 1), '\0');
    for (char& c : s)
        c = static_cast<char>(rng());
    return s;
}

// The reference reader, by hand: four dot-separated decimal octets of one to
// three digits, each at most 255, no leading zero ("010": octal 8 to
// inet_aton, 10 to others; parse_ipv4 refuses it, gobgpd never writes it),
// nothing else.
Addr naive_ipv4(const std::string& text) {
    Ipv4Addr addr = 0;
    std::size_t start = 0;
    for (int i = 0; i < 4; ++i) {
        const std::size_t dot = i < 3 ? text.find('.', start) : text.size();
        if (dot == std::string::npos)
            return std::nullopt;
        const std::string part = text.substr(start, dot - start);
        if (part.empty() || part.size() > 3 || part.find_first_not_of("0123456789") != std::string::npos ||
            (part.size() > 1 && part[0] == '0') || std::stoul(part) > 255)
            return std::nullopt;
        addr = addr << 8 | static_cast<Ipv4Addr>(std::stoul(part));
        start = dot + 1;
    }
    return addr;
}

Ipv4Addr naive_mask(std::uint32_t len) {
    Ipv4Addr mask = 0;
    for (std::uint32_t bit = 0; bit < len && bit < 32; ++bit)
        mask |= Ipv4Addr{1} << (31 - bit);
    return mask;
}

struct Text {   // address text and what it says, known by construction
    std::string text;
    Addr value;
};

Ipv4Addr random_addr(Rng& rng) {
    switch (pick(rng, 8)) {
    case 0: return 0;
    case 1: return ~Ipv4Addr{0};
    case 2: return 0x0af40000 | static_cast<Ipv4Addr>(pick(rng, 0x10000));   // 10.244.x.y
    default: return static_cast<Ipv4Addr>(rng());
    }
}

Text address_text(Rng& rng) {
    static const std::string kTrailing[] = {" ", "\n", ".", "/24", ".0", "x", "%eth0", ":179", std::string(1, '\0')};
    static const std::string kLeading[] = {" ", "\t", "+", "-", "0x", "\xef\xbb\xbf"};
    static const std::string kIpv6[] = {"::", "::1", "2001:db8::1", "fe80::1", "2001:db8:0:0:0:0:0:1", "::ffff:"};
    const Ipv4Addr a = random_addr(rng);
    std::array<std::string, 4> o = {std::to_string(a >> 24), std::to_string(a >> 16 & 255),
                                    std::to_string(a >> 8 & 255), std::to_string(a & 255)};
    auto join = [&o] { return o[0] + '.' + o[1] + '.' + o[2] + '.' + o[3]; };
    std::string& one = o[pick(rng, 4)];
    switch (pick(rng, 16)) {
    case 0: case 1: case 2: case 3: return {join(), a};
    case 4: {   // zeros in front of some octets: refused if any got one
        bool padded = false;
        for (std::string& s : o) {
            const std::size_t zeros = pick(rng, 4 - s.size());
            s.insert(0, zeros, '0');
            padded |= zeros != 0;
        }
        return {join(), padded ? Addr{} : Addr{a}};
    }
    case 5: one.insert(0, 4 - one.size() + pick(rng, 3), '0'); return {join(), std::nullopt};
    case 6:
        one = one_in(rng, 2) ? std::to_string(256 + pick(rng, 744)) : "4294967306";
        return {join(), std::nullopt};
    case 7: return {join() + pick_of(rng, kTrailing), std::nullopt};
    case 8: return {pick_of(rng, kLeading) + join(), std::nullopt};
    case 9: return {one_in(rng, 2) ? o[0] + '.' + o[1] + '.' + o[2] : join() + '.' + o[3], std::nullopt};
    case 10: one.clear(); return {join(), std::nullopt};
    case 11: {
        const std::string& v6 = pick_of(rng, kIpv6);
        return {v6 == "::ffff:" ? v6 + join() : v6, std::nullopt};
    }
    case 12: one.insert(0, 300 + pick(rng, 3000), '0'); return {join(), std::nullopt};
    case 13: one = "\xef\xbc\x91"; return {join(), std::nullopt};   // a fullwidth digit one
    case 14: return {"", std::nullopt};
    default: {   // the one choice whose meaning the generator does not know
        std::string s(pick(rng, 16), '.');
        for (char& c : s)
            c = "0123456789.. x"[pick(rng, 14)];
        return {s, naive_ipv4(s)};
    }
    }
}

// Half the time a plain address: the rest would leave few paths readable.
Text likely_address(Rng& rng) {
    if (!one_in(rng, 2))
        return address_text(rng);
    const Ipv4Addr a = random_addr(rng);
    return {format_ipv4(a), a};
}

// Flips, overwrites, inserts, deletes, cuts, duplicates (a field twice, a
// repeated field longer).
std::string mutate(std::string s, Rng& rng) {
    for (std::size_t n = 1 + pick(rng, 2); n > 0; --n) {
        const std::size_t at = pick(rng, s.size() + 1);
        switch (pick(rng, 6)) {
        case 0: if (at < s.size()) s[at] = static_cast<char>(s[at] ^ (1 << pick(rng, 8))); break;
        case 1: if (at < s.size()) s[at] = static_cast<char>(rng()); break;
        case 2: s.insert(at, random_bytes(rng, 4)); break;
        case 3: s.erase(at, pick(rng, 8)); break;
        case 4: s.resize(at); break;
        default: s.insert(at, s.substr(pick(rng, s.size() + 1), pick(rng, 16))); break;
        }
    }
    return s;
}

// A message in an Any whose type URL names it (any.proto: the type is what
// follows the last '/', whatever comes before) or some other type.
Any pack(const google::protobuf::Message& m, Rng& rng, bool& named) {
    const std::string& name = m.GetDescriptor()->full_name();
    Any any;
    any.set_value(m.SerializeAsString());
    named = true;
    switch (pick(rng, 10)) {
    case 0: any.set_type_url("example.com/a/" + name); break;
    case 1: any.set_type_url("/" + name); break;
    case 2: any.set_type_url(name); named = false; break;
    case 3: any.set_type_url(kGoogleApis + name + "s"); named = false; break;
    case 4: any.set_type_url(kGoogleApis + "x." + name); named = false; break;
    default: any.set_type_url(kGoogleApis + name);
    }
    return any;
}

// Bytes under a type's name that are not that type as the generator wrote
// it: random, or a mutated serialization (of it or of another type). Only
// for these does the reference let protobuf decode: nothing else knows what
// they say.
Any odd_any(const std::string& name, const std::string& seed, Rng& rng) {
    Any any;
    any.set_type_url(kGoogleApis + name);
    any.set_value(one_in(rng, 3) ? random_bytes(rng, 32) : mutate(seed, rng));
    return any;
}

std::uint32_t random_len(Rng& rng) {
    static const std::uint32_t kOdd[] = {33, 64, 128, 255, 256, 264, 288, 0x80000000, 0xffffffff};
    return one_in(rng, 6) ? pick_of(rng, kOdd) : static_cast<std::uint32_t>(pick(rng, 33));
}

std::optional<Prefix4> reference_prefix(std::uint32_t len, const Addr& addr) {
    if (len > 32 || !addr)
        return std::nullopt;
    return Prefix4{*addr & naive_mask(len), static_cast<std::uint8_t>(len)};
}

// The NLRI and the prefix the reference reads from it.
std::optional<Prefix4> add_nlri(apipb::Path& path, Rng& rng) {
    apipb::IPAddressPrefix p;
    p.set_prefix_len(random_len(rng));
    const Text text = likely_address(rng);
    p.set_prefix(text.text);
    bool named = false;
    switch (pick(rng, 10)) {
    case 0: return std::nullopt;   // none at all
    case 1: {
        apipb::LabeledIPAddressPrefix labeled;
        labeled.add_labels(static_cast<std::uint32_t>(rng()));
        labeled.set_prefix_len(p.prefix_len());
        labeled.set_prefix(p.prefix());
        *path.mutable_nlri() = pack(labeled, rng, named);
        return std::nullopt;
    }
    case 2: {
        apipb::NextHopAttribute other;   // a string where prefix_len's varint belongs
        other.set_next_hop(text.text);
        const std::string seed = one_in(rng, 2) ? p.SerializeAsString() : other.SerializeAsString();
        *path.mutable_nlri() = odd_any(p.GetDescriptor()->full_name(), seed, rng);
        apipb::IPAddressPrefix decoded;
        if (!decoded.ParseFromString(path.nlri().value()))
            return std::nullopt;
        return reference_prefix(decoded.prefix_len(), naive_ipv4(decoded.prefix()));
    }
    default:
        *path.mutable_nlri() = pack(p, rng, named);
        return named ? reference_prefix(p.prefix_len(), text.value) : std::nullopt;
    }
}

void random_family(apipb::Family& f, Rng& rng) {
    static const std::pair<int, int> kFamilies[] = {
        {2, 1}, {1, 2}, {1, 4}, {1, 128}, {1, 133}, {25, 70}, {0, 1}, {1, 0}, {0, 0}, {3, 1}, {1, 3}, {16388, 71}};
    const auto [afi, safi] = pick_of(rng, kFamilies);
    f.set_afi(static_cast<apipb::Family::Afi>(afi));
    f.set_safi(static_cast<apipb::Family::Safi>(safi));
}

// Appends one path attribute. `next_hop`: the reference's reading so far,
// where the last NEXT_HOP, or MP_REACH with a next hop, wins.
void add_attribute(apipb::Path& path, Rng& rng, Ipv4Addr& next_hop) {
    Any& any = *path.add_pattrs();
    bool named = false;
    switch (pick(rng, 8)) {
    case 0: case 1: {
        const Text t = likely_address(rng);
        apipb::NextHopAttribute nh;
        nh.set_next_hop(t.text);
        any = pack(nh, rng, named);
        if (named)
            next_hop = t.value.value_or(0);
        return;
    }
    case 2: {
        apipb::MpReachNLRIAttribute mp;
        random_family(*mp.mutable_family(), rng);
        Addr first;
        for (std::size_t n = pick(rng, 4); n > 0; --n) {
            const Text t = one_in(rng, 2) ? Text{"2001:db8::" + std::to_string(n), std::nullopt} : address_text(rng);
            first = mp.next_hops_size() == 0 ? t.value : first;
            mp.add_next_hops(t.text);
        }
        any = pack(mp, rng, named);
        if (named && mp.next_hops_size() > 0)
            next_hop = first.value_or(0);
        return;
    }
    case 3: case 4: {   // attributes that say nothing of the next hop
        apipb::OriginAttribute origin;
        origin.set_origin(2);
        apipb::AsPathAttribute as_path;
        as_path.add_segments()->add_numbers(static_cast<std::uint32_t>(rng()));
        apipb::LocalPrefAttribute pref;
        pref.set_local_pref(100);
        const google::protobuf::Message* others[] = {&origin, &as_path, &pref};
        any = pack(*pick_of(rng, others), rng, named);
        return;
    }
    case 5: {
        apipb::NextHopAttribute seed;
        seed.set_next_hop(address_text(rng).text);
        any = odd_any(seed.GetDescriptor()->full_name(), seed.SerializeAsString(), rng);
        if (apipb::NextHopAttribute decoded; decoded.ParseFromString(any.value()))
            next_hop = naive_ipv4(decoded.next_hop()).value_or(0);
        return;
    }
    case 6: {
        apipb::MpReachNLRIAttribute seed;
        seed.add_next_hops(address_text(rng).text);
        any = odd_any(seed.GetDescriptor()->full_name(), seed.SerializeAsString(), rng);
        if (apipb::MpReachNLRIAttribute decoded; decoded.ParseFromString(any.value()) && decoded.next_hops_size() > 0)
            next_hop = naive_ipv4(decoded.next_hops(0)).value_or(0);
        return;
    }
    default:
        any.set_type_url(kGoogleApis + "apipb.Attribute" + std::to_string(pick(rng, 100)));
        any.set_value(random_bytes(rng, 16));
    }
}

struct Case {
    apipb::Path path;
    std::optional<PathUpdate> expected;
};

Case random_case(Rng& rng) {
    static const std::string kNotNil[] = {"<NIL>", " <nil>", "<nil> ", "nil", "<nil>\n"};
    Case c;
    const bool ipv4_unicast = !one_in(rng, 3);
    if (ipv4_unicast) {
        c.path.mutable_family()->set_afi(apipb::Family::AFI_IP);
        c.path.mutable_family()->set_safi(apipb::Family::SAFI_UNICAST);
    } else if (!one_in(rng, 6)) {
        random_family(*c.path.mutable_family(), rng);
    }
    const std::optional<Prefix4> prefix = add_nlri(c.path, rng);
    c.path.set_is_withdraw(one_in(rng, 4));
    Ipv4Addr peer = 0;
    switch (pick(rng, 8)) {
    case 0: break;   // AddPath's own: no neighbour
    case 1: c.path.set_neighbor_ip("<nil>"); break;
    case 2: c.path.set_neighbor_ip(pick_of(rng, kNotNil)); break;
    default: {
        const Text t = likely_address(rng);
        c.path.set_neighbor_ip(t.text);
        peer = t.value.value_or(0);
    }
    }
    const bool own = c.path.neighbor_ip().empty() || c.path.neighbor_ip() == "<nil>";
    Ipv4Addr next_hop = 0;
    for (std::size_t n = pick(rng, 6); n > 0; --n)
        add_attribute(c.path, rng, next_hop);
    // Fields the translation has no business reading.
    c.path.set_best(one_in(rng, 2));
    c.path.set_stale(one_in(rng, 2));
    c.path.set_identifier(static_cast<std::uint32_t>(rng()));
    c.path.set_source_asn(static_cast<std::uint32_t>(rng()));
    if (ipv4_unicast && prefix) {
        PathUpdate u{*prefix, 0, peer, c.path.is_withdraw(), own, false};
        if (!u.withdrawn) {
            u.next_hop = next_hop;
            u.unusable = !own && next_hop == 0;
        }
        c.expected = u;
    }
    return c;
}

// Random bytes make protobuf log (invalid UTF-8 in a string field), once per input.
struct QuietProtobuf {
    QuietProtobuf() : previous(google::protobuf::SetLogHandler(nullptr)) {}
    ~QuietProtobuf() { google::protobuf::SetLogHandler(previous); }
    google::protobuf::LogHandler* previous;
};

TEST(PathUpdate, RandomPathsAgainstNaiveReference) {
    QuietProtobuf quiet;
    Rng rng(17);
    std::map<std::string, int> seen;
    for (int i = 0; i < kPaths; ++i) {
        const Case c = random_case(rng);
        const std::optional<PathUpdate> got = path_update(c.path);
        ASSERT_EQ(got, c.expected) << "path " << i << ": " << c.path.ShortDebugString();
        const auto& e = c.expected;
        ++seen[!e ? "none" : e->withdrawn ? "withdrawn" : e->own ? "own" : e->unusable ? "unusable" : "route"];
        if (apipb::IPAddressPrefix p; e && p.ParseFromString(c.path.nlri().value()))
            seen["host bits"] += naive_ipv4(p.prefix()) != e->prefix.addr;
    }
    // Every outcome must stay common, or a generator change hollows the test.
    for (const char* outcome : {"none", "withdrawn", "own", "unusable", "route", "host bits"})
        EXPECT_GT(seen[outcome], kPaths / 100) << outcome;
}

// What any update must keep, whatever it was read from; empty if it does.
std::string broken(const PathUpdate& u, const apipb::Path& from) {
    if (from.family().afi() != apipb::Family::AFI_IP || from.family().safi() != apipb::Family::SAFI_UNICAST)
        return "not IPv4 unicast";
    if (u.prefix.len > 32 || (u.prefix.addr & ~naive_mask(u.prefix.len)) != 0)
        return "not a network prefix";
    if (u.unusable && (u.own || u.next_hop != 0))
        return "unusable with a next hop or of our own";
    if (!u.withdrawn && !u.own && u.next_hop == 0 && !u.unusable)
        return "a peer's path without a next hop taken as usable";
    if (u.withdrawn && (u.next_hop != 0 || u.unusable))
        return "a withdrawal with a next hop";
    if (u.own && u.peer != 0)
        return "our own path with a peer";
    return {};
}

// Bytes to parse as a Path: random, or a readable path mutated, either its
// serialization or the bytes inside one of its Anys (then it still parses,
// and the damage reaches path_update's own decoding).
std::string random_input(Rng& rng) {
    if (one_in(rng, 4))
        return random_bytes(rng, 64);
    Case c = random_case(rng);
    while (!c.expected)
        c = random_case(rng);
    if (one_in(rng, 2))
        return mutate(c.path.SerializeAsString(), rng);
    const int pattrs = c.path.pattrs_size();
    Any& any = pattrs == 0 || one_in(rng, 3) ? *c.path.mutable_nlri()
                                             : *c.path.mutable_pattrs(static_cast<int>(pick(rng, static_cast<std::size_t>(pattrs))));
    any.set_value(mutate(any.value(), rng));
    return c.path.SerializeAsString();
}

TEST(PathUpdate, ArbitraryBytesNeverBreakIt) {
    QuietProtobuf quiet;
    Rng rng(1717);
    int parsed = 0, updates = 0;
    for (int i = 0; i < kInputs; ++i) {
        const std::string bytes = random_input(rng);
        apipb::Path path;
        if (!path.ParseFromString(bytes))
            continue;
        ++parsed;
        if (const std::optional<PathUpdate> u = path_update(path)) {
            ++updates;
            ASSERT_EQ(broken(*u, path), "") << "input " << i << ": " << path.ShortDebugString();
        }
    }
    EXPECT_GT(parsed, kInputs / 4);
    EXPECT_GT(updates, kInputs / 10);
}

}  // namespace
}  // namespace podfwd::control::bgp
