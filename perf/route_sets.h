// Route tables and destination streams for the LPM benchmark, generated from
// a seed so that every run (and every implementation in a run) sees exactly
// the same routes and the same addresses.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/ipv4.h"
#include "lpm/types.h"

namespace podfwd::perf {

std::uint64_t splitmix64(std::uint64_t& state) noexcept;

// xoshiro256** seeded through splitmix64: fast, statistically sound for this
// use, and identical on every platform (unlike std:: distributions), so a
// seed names a table exactly.
class Rng {
public:
    explicit Rng(std::uint64_t seed) noexcept;
    std::uint64_t next() noexcept;
    std::uint32_t next32() noexcept { return static_cast<std::uint32_t>(next() >> 32); }
    // Uniform in [0, n), n > 0: multiply-shift (Lemire); the bias, below
    // n / 2^32, is far under anything a benchmark could notice.
    std::uint32_t below(std::uint32_t n) noexcept {
        return static_cast<std::uint32_t>((std::uint64_t{next32()} * n) >> 32);
    }

private:
    std::array<std::uint64_t, 4> s_{};
};

template <class T>
void shuffle(std::vector<T>& v, Rng& rng) {   // Fisher-Yates
    for (std::size_t i = v.size(); i > 1; --i)
        std::swap(v[i - 1], v[rng.below(static_cast<std::uint32_t>(i))]);
}

// A generated table. Route::nexthop holds a next-hop *index* in [1, nexthops];
// the benchmark maps indices to the ids its tables hand out.
struct RouteSet {
    std::string name;
    std::vector<lpm::Route> routes;
    std::uint32_t nexthops = 0;
};

// Pod network: 0.0.0.0/0, 8 /16s, 5,000 node /24s and 150,000 pod /32s, all
// but the default inside 10.0.0.0/8; one next hop per node.
RouteSet make_pod_set(std::uint64_t seed);
// Internet-like: 1,000,000 distinct unicast prefixes with a BGP-like length
// mix (~62% /24, 0.1% longer than /24), 1,000 next hops.
RouteSet make_inet_set(std::uint64_t seed);
// `count` distinct /8../16 prefixes from unicast space outside 10/8 and 127/8,
// next hops drawn from [1, nexthops].
std::vector<lpm::Route> make_short_routes(std::uint64_t seed, std::size_t count, std::uint32_t nexthops);

// Destinations a table actually serves: a random route, then a random host in it.
std::vector<Ipv4Addr> drawn_destinations(std::span<const lpm::Route> routes, std::size_t n, Rng& rng);
// Any IPv4 address, uniformly: mostly misses or the default route.
std::vector<Ipv4Addr> uniform_destinations(std::size_t n, Rng& rng);

// Distinct /24 blocks holding a prefix longer than /24: the tbl8 groups a
// DIR-24-8 table (rte_lpm, rte_fib) needs for these routes.
std::size_t count_tbl8_groups(std::span<const lpm::Route> routes);
// Route count per prefix length, e.g. "/0:1 /16:8 /24:5000 /32:150000".
std::string length_summary(std::span<const lpm::Route> routes);

// Obviously-correct longest-prefix match: one hash map per prefix length,
// probed longest first. The arbiter of the cross-check: when implementations
// disagree it says which one is wrong, and which route should have matched.
class ReferenceLpm {
public:
    ReferenceLpm() = default;   // matches nothing
    explicit ReferenceLpm(std::span<const lpm::Route> routes);
    std::optional<lpm::Route> match(Ipv4Addr addr) const;
    lpm::NextHopId lookup(Ipv4Addr addr) const {
        const auto m = match(addr);
        return m ? m->nexthop : lpm::kNoRoute;
    }

private:
    std::array<std::unordered_map<Ipv4Addr, lpm::NextHopId>, 33> by_len_;
    std::vector<unsigned> lengths_;   // lengths present, longest first
};

}  // namespace podfwd::perf
