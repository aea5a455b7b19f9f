#include "perf/route_sets.h"

#include <algorithm>
#include <stdexcept>
#include <unordered_set>

namespace podfwd::perf {

using lpm::NextHopId;
using lpm::Route;

std::uint64_t splitmix64(std::uint64_t& state) noexcept {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

Rng::Rng(std::uint64_t seed) noexcept {
    for (auto& word : s_)
        word = splitmix64(seed);
}

std::uint64_t Rng::next() noexcept {
    const auto rotl = [](std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); };
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
}

namespace {

// Each generator gets its own stream, so changing one set never shifts another.
constexpr std::uint64_t kPodStream = 0x706f64;     // "pod"
constexpr std::uint64_t kInetStream = 0x696e6574;  // "inet"
constexpr std::uint64_t kShortStream = 0x73686f72; // "shor"

// Keeps prefixes distinct: one key per (address, length).
class PrefixSet {
public:
    explicit PrefixSet(std::size_t expected) { seen_.reserve(expected); }
    bool insert(const Prefix4& p) { return seen_.insert(std::uint64_t{p.addr} << 6 | p.len).second; }

private:
    std::unordered_set<std::uint64_t> seen_;
};

Prefix4 prefix(Ipv4Addr addr, unsigned len) {
    return Prefix4{addr & prefix_mask(len), static_cast<std::uint8_t>(len)};
}

// Public unicast space as a BGP table sees it: 1.0.0.0 - 223.255.255.255 without
// 10/8 (private; the pod network lives there) and 127/8 (loopback).
Ipv4Addr unicast_address(Rng& rng) {
    static constexpr auto kFirstOctets = [] {
        std::array<std::uint8_t, 221> octets{};
        std::size_t n = 0;
        for (unsigned o = 1; o <= 223; ++o)
            if (o != 10 && o != 127)
                octets[n++] = static_cast<std::uint8_t>(o);
        return octets;
    }();
    const Ipv4Addr first = kFirstOctets[rng.below(kFirstOctets.size())];
    return first << 24 | (rng.next32() & 0x00ffffffu);
}

// Draws `count` new distinct prefixes of length `len` from `draw`; gives up
// (rather than spin) if the space is too crowded to find them.
template <class Draw>
void add_distinct(std::vector<Route>& out, PrefixSet& seen, std::size_t count, unsigned len,
                  Draw&& draw, Rng& rng, std::uint32_t nexthops) {
    std::size_t attempts = 0;
    for (std::size_t added = 0; added < count;) {
        if (++attempts > 64 * count + 1024)
            throw std::runtime_error("route generator: cannot find " + std::to_string(count) +
                                     " distinct /" + std::to_string(len) + " prefixes");
        const Prefix4 p = prefix(draw(), len);
        if (!seen.insert(p))
            continue;
        out.push_back(Route{p, 1 + rng.below(nexthops)});
        ++added;
    }
}

}  // namespace

RouteSet make_pod_set(std::uint64_t seed) {
    constexpr std::uint32_t kNodes = 5000;
    constexpr std::size_t kPods = 150000;
    constexpr std::size_t kSupernets = 8;
    Rng rng(seed ^ kPodStream);
    RouteSet set{"pod", {}, kNodes};
    PrefixSet seen(kNodes + kPods + kSupernets + 1);
    const auto in_10_8 = [&rng] { return Ipv4Addr{10} << 24 | (rng.next32() & 0x00ffffffu); };

    set.routes.push_back(Route{Prefix4{0, 0}, 1});   // towards the node's gateway
    add_distinct(set.routes, seen, kSupernets, 16, in_10_8, rng, kNodes);

    // One /24 block per node; node i owns block i and next hop i + 1.
    std::vector<Ipv4Addr> blocks;
    while (blocks.size() < kNodes) {
        const Prefix4 p = prefix(in_10_8(), 24);
        if (!seen.insert(p))
            continue;
        blocks.push_back(p.addr);
        set.routes.push_back(Route{p, static_cast<NextHopId>(blocks.size())});
    }
    // Pod /32s exist because a pod is not where its block says (a borrowed or
    // migrated address, per-pod routing), so each points at a random node:
    // a /32 with its block's next hop changes no lookup result, and rte_fib
    // would (rightly) install nothing for it, measuring nothing.
    const auto pod_address = [&] { return blocks[rng.below(kNodes)] | (1 + rng.below(254)); };
    add_distinct(set.routes, seen, kPods, 32, pod_address, rng, kNodes);

    shuffle(set.routes, rng);   // insertion order must not favour any implementation
    return set;
}

RouteSet make_inet_set(std::uint64_t seed) {
    constexpr std::size_t kRoutes = 1000000;
    constexpr std::uint32_t kNextHops = 1000;
    // Prefixes per million by length, after the public BGP table (~60% /24,
    // then /22, /23, /20, /21, /19, /16; about 0.1% longer than /24). /24
    // takes whatever the others leave. Very short prefixes are capped by the
    // space there is: only 221 unicast /8s exist.
    static constexpr std::pair<unsigned, std::size_t> kPerMillion[] = {
        {8, 20},     {9, 50},     {10, 100},   {11, 300},   {12, 600},   {13, 1500},
        {14, 2500},  {15, 4000},  {16, 25000}, {17, 10000}, {18, 15000}, {19, 30000},
        {20, 50000}, {21, 50000}, {22, 100000}, {23, 90000}, {25, 400},  {26, 200},
        {27, 150},   {28, 100},   {29, 70},    {30, 40},    {31, 10},    {32, 30},
    };
    Rng rng(seed ^ kInetStream);
    RouteSet set{"inet", {}, kNextHops};
    set.routes.reserve(kRoutes);
    PrefixSet seen(kRoutes);
    const auto draw = [&rng] { return unicast_address(rng); };

    std::size_t others = 0;
    for (const auto& [len, per_million] : kPerMillion) {
        const std::size_t count = kRoutes / 1000000 * per_million;
        add_distinct(set.routes, seen, count, len, draw, rng, kNextHops);
        others += count;
    }
    add_distinct(set.routes, seen, kRoutes - others, 24, draw, rng, kNextHops);
    shuffle(set.routes, rng);
    return set;
}

std::vector<Route> make_short_routes(std::uint64_t seed, std::size_t count, std::uint32_t nexthops) {
    // Weighted towards /16 as real short prefixes are; /8 stays rare because
    // there are only 221 of them.
    static constexpr std::pair<unsigned, std::size_t> kPerThousand[] = {
        {8, 5}, {9, 10}, {10, 20}, {11, 30}, {12, 50}, {13, 80}, {14, 120}, {15, 185}, {16, 500},
    };
    Rng rng(seed ^ kShortStream);
    std::vector<Route> routes;
    routes.reserve(count);
    PrefixSet seen(count);
    const auto draw = [&rng] { return unicast_address(rng); };
    std::size_t done = 0;
    for (const auto& [len, per_thousand] : kPerThousand) {
        const std::size_t n = len == 16 ? count - done : count * per_thousand / 1000;
        add_distinct(routes, seen, n, len, draw, rng, nexthops);
        done += n;
    }
    shuffle(routes, rng);
    return routes;
}

std::vector<Ipv4Addr> drawn_destinations(std::span<const Route> routes, std::size_t n, Rng& rng) {
    std::vector<Ipv4Addr> out(n);
    const auto count = static_cast<std::uint32_t>(routes.size());
    for (auto& addr : out) {
        const Prefix4& p = routes[rng.below(count)].prefix;
        addr = p.addr | (rng.next32() & ~prefix_mask(p.len));
    }
    return out;
}

std::vector<Ipv4Addr> uniform_destinations(std::size_t n, Rng& rng) {
    std::vector<Ipv4Addr> out(n);
    for (auto& addr : out)
        addr = rng.next32();
    return out;
}

std::size_t count_tbl8_groups(std::span<const Route> routes) {
    std::unordered_set<Ipv4Addr> blocks;
    for (const Route& r : routes)
        if (r.prefix.len > 24)
            blocks.insert(r.prefix.addr >> 8);
    return blocks.size();
}

std::string length_summary(std::span<const Route> routes) {
    std::array<std::size_t, 33> count{};
    for (const Route& r : routes)
        ++count[r.prefix.len];
    std::string out;
    for (unsigned len = 0; len <= 32; ++len) {
        if (count[len] == 0)
            continue;
        if (!out.empty())
            out += ' ';
        out += '/' + std::to_string(len) + ':' + std::to_string(count[len]);
    }
    return out;
}

ReferenceLpm::ReferenceLpm(std::span<const Route> routes) {
    for (const Route& r : routes)
        by_len_[r.prefix.len][r.prefix.addr] = r.nexthop;
    for (unsigned len = 33; len-- > 0;)
        if (!by_len_[len].empty())
            lengths_.push_back(len);
}

std::optional<Route> ReferenceLpm::match(Ipv4Addr addr) const {
    for (const unsigned len : lengths_) {
        const Ipv4Addr key = addr & prefix_mask(len);
        if (const auto it = by_len_[len].find(key); it != by_len_[len].end())
            return Route{Prefix4{key, static_cast<std::uint8_t>(len)}, it->second};
    }
    return std::nullopt;
}

}  // namespace podfwd::perf
