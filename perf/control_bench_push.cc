#include "perf/control_bench_push.h"

#include <algorithm>
#include <fstream>
#include <random>
#include <stdexcept>
#include <unordered_set>

#include "control/core/neighbours.h"
#include "control/core/policy.h"
#include "control/core/rib.h"
#include "control/core/table_sync.h"
#include "lpm/reader.h"
#include "lpm/writer.h"
#include "perf/bench_util.h"
#include "perf/control_bench_proc.h"

namespace podfwd::perf {

namespace {

using control::Forwarding;
using control::ModeRequest;
using control::RouteSpec;
using control::Source;

constexpr unsigned kNodes = 200;             // 10.168.0.10 .. 10.168.0.209
constexpr Ipv4Addr kFirstNode = 0x0aa8000a;  // 10.168.0.10
constexpr Source kSource = Source::kBgp;
constexpr int kKernelTable = 100;

Ipv4Addr node_ip(unsigned node) { return kFirstNode + node; }

MacAddr node_mac(unsigned node) {
    return {0x02, 0x00, 0x0a, 0xa8, static_cast<std::uint8_t>(node >> 8), static_cast<std::uint8_t>(node)};
}

// A quarter of the nodes' routes ask for IPIP, the rest the default
// (cross-subnet: host-gw, every node being on the uplink).
ModeRequest mode_of(unsigned node) { return node % 4 == 3 ? ModeRequest::kIpip : ModeRequest::kCrossSubnet; }

// Pod CIDRs in disjoint ranges of 10.0.0.0/8: 35% /24s in 10.0-159, 60%
// /26s in 10.160-247 (not 10.168, the uplink), 5% /32s in 10.248-249.
std::vector<Prefix4> make_prefixes(std::size_t n, std::uint64_t seed, std::string& mix) {
    const std::size_t n32 = n / 20;
    const std::size_t n26 = n * 3 / 5;
    const std::size_t n24 = n - n26 - n32;
    std::mt19937_64 rng(seed);
    std::vector<Prefix4> out;
    out.reserve(n);
    std::unordered_set<Prefix4, control::PrefixHash> seen;
    const auto draw = [&](std::size_t count, unsigned len, Ipv4Addr lo, Ipv4Addr hi) {
        if ((std::uint64_t{hi - lo} >> (32 - len)) < count + count / 8)
            throw std::runtime_error("prefix range too small for " + std::to_string(count) + " routes");
        std::uniform_int_distribution<Ipv4Addr> dist(lo, hi);
        while (count != 0) {
            const Ipv4Addr a = dist(rng) & prefix_mask(len);
            if ((a >> 16) == 0x0aa8)
                continue;
            if (seen.insert(Prefix4{a, static_cast<std::uint8_t>(len)}).second) {
                out.push_back(Prefix4{a, static_cast<std::uint8_t>(len)});
                --count;
            }
        }
    };
    draw(n24, 24, 0x0a000000, 0x0a9fffff);
    draw(n26, 26, 0x0aa00000, 0x0af7ffff);
    draw(n32, 32, 0x0af80000, 0x0af9ffff);
    std::shuffle(out.begin(), out.end(), rng);
    mix = "/24:" + std::to_string(n24) + " /26:" + std::to_string(n26) + " /32:" + std::to_string(n32);
    return out;
}

control::NodeConfig node_config() {
    control::NodeConfig node;
    node.node_ip = must(parse_ipv4(kNodeIp), "node ip");
    node.uplink = must(Prefix4::parse(kUplink), "uplink");
    node.gateway = must(parse_ipv4(kGateway), "gateway");
    must(node.validate(), "node config");
    return node;
}

// The spec and forwarding of every route for one round: route i to node
// (i + shift) % kNodes. Resolved before the clock starts.
std::vector<control::ResolvedRoute> resolve_all(const control::NodeConfig& node, const std::vector<Prefix4>& prefixes,
                                                unsigned shift) {
    std::vector<control::ResolvedRoute> out;
    out.reserve(prefixes.size());
    for (std::size_t i = 0; i < prefixes.size(); ++i) {
        const unsigned n = static_cast<unsigned>((i + shift) % kNodes);
        RouteSpec spec{prefixes[i], kSource, node_ip(n), mode_of(n), 0, std::nullopt};
        out.push_back({spec, must(control::resolve(node, spec), "resolve")});
    }
    return out;
}

// Every sampled address: the table's answer (writer and reader) against the
// RIB's best route of its longest matching prefix, and the record's
// contents against that route's forwarding and the neighbour's MAC.
void verify(const std::string& round, const control::Rib& rib, const control::TableSync& sync,
            const control::NeighbourTable& neighbours, const lpm::TableWriter& writer, const lpm::TableView& view,
            const std::vector<Ipv4Addr>& sample) {
    std::size_t bad = 0;
    std::string details;
    const auto fail = [&](Ipv4Addr a, const std::string& why) {
        if (++bad <= 5)
            details += "\n  " + format_ipv4(a) + ": " + why;
    };
    for (const Ipv4Addr a : sample) {
        const lpm::NextHopId got = writer.lookup(a);
        if (view.lookup(a) != got)
            fail(a, "the reader answers " + std::to_string(view.lookup(a)) + ", the writer " + std::to_string(got));
        const auto match = rib.longest_match(a);
        if (!match) {
            if (got != lpm::kNoRoute)
                fail(a, "no RIB route, the table answers " + std::to_string(got));
            continue;
        }
        const auto id = sync.installed_id(*match);
        const control::RibRoute* best = rib.best(*match);
        if (!id || best == nullptr || got != *id) {
            fail(a, "RIB route " + match->str() + " installed as " + (id ? std::to_string(*id) : "nothing") +
                        ", the table answers " + std::to_string(got));
            continue;
        }
        const auto record = writer.nexthop(got);
        const Forwarding& f = best->forwarding;
        const auto mac = neighbours.mac(f.l2_nexthop);
        if (!record || record->node_ip != f.node_ip || record->mode != f.mode || !mac || !record->mac_resolved() ||
            record->mac != *mac)
            fail(a, "record " + std::to_string(got) + " does not match " + control::describe(best->spec));
    }
    if (bad != 0)
        throw std::runtime_error("push, " + round + ": the table disagrees with the RIB on " + std::to_string(bad) +
                                 " of " + std::to_string(sample.size()) + " addresses:" + details);
}

// Half the sample inside the routes' prefixes, half uniform in 10.0.0.0/8.
std::vector<Ipv4Addr> make_sample(const std::vector<Prefix4>& prefixes, std::size_t n, std::uint64_t seed) {
    std::mt19937_64 rng(seed ^ 0x5a5a);
    std::vector<Ipv4Addr> out;
    out.reserve(n);
    std::uniform_int_distribution<std::size_t> pick(0, prefixes.size() - 1);
    std::uniform_int_distribution<Ipv4Addr> any(0x0a000000, 0x0affffff);
    for (std::size_t i = 0; i < n; ++i) {
        if (i % 2 == 0) {
            const Prefix4& p = prefixes[pick(rng)];
            out.push_back(p.addr | (static_cast<Ipv4Addr>(rng()) & ~prefix_mask(p.len)));
        } else {
            out.push_back(any(rng));
        }
    }
    return out;
}

// One repeat of ours: insert, update, withdraw on a fresh table.
RoundRates run_ours(const PushOptions& o, unsigned repeat, const std::vector<Prefix4>& prefixes,
                    const std::vector<Ipv4Addr>& sample, std::size_t& nexthops) {
    const control::NodeConfig node = node_config();
    const auto inserts = resolve_all(node, prefixes, 0);
    const auto updates = resolve_all(node, prefixes, 1 + kNodes / 2);

    const std::string name = o.segment_prefix + ".push" + std::to_string(repeat);
    Cleanup::add_segment(name);
    lpm::TableWriter::Options wo;
    wo.capacity.max_routes = std::max<std::uint32_t>(wo.capacity.max_routes, static_cast<std::uint32_t>(o.routes * 2));
    auto writer = must(lpm::TableWriter::open(name, wo), "open table " + name);
    const auto view = must(lpm::TableView::open(name), "open view " + name);

    control::NeighbourTable neighbours;
    for (unsigned n = 0; n < kNodes; ++n)
        neighbours.set({node_ip(n), node_mac(n), Source::kStatic});
    control::Rib rib;
    control::TableSync sync(writer, neighbours);

    RoundRates rates;
    const double n = static_cast<double>(prefixes.size());
    const auto push_round = [&](const std::vector<control::ResolvedRoute>& routes) {
        Stopwatch clock;
        for (const auto& r : routes)
            if (rib.set(r.spec, r.forwarding))
                must(sync.stage(r.spec.prefix, &rib.best(r.spec.prefix)->forwarding), "stage");
        must(sync.commit(), "commit");
        return n / clock.seconds();
    };
    rates.insert = push_round(inserts);
    nexthops = sync.nexthops();
    verify("insert", rib, sync, neighbours, writer, view, sample);
    if (sync.installed() != prefixes.size())
        throw std::runtime_error("push: " + std::to_string(sync.installed()) + " routes installed, expected " +
                                 std::to_string(prefixes.size()));

    rates.update = push_round(updates);
    verify("update", rib, sync, neighbours, writer, view, sample);

    {
        Stopwatch clock;
        for (const Prefix4& p : prefixes) {
            bool best_changed = false;
            if (rib.erase(p, kSource, best_changed) && best_changed) {
                const control::RibRoute* best = rib.best(p);
                must(sync.stage(p, best != nullptr ? &best->forwarding : nullptr), "stage");
            }
        }
        must(sync.commit(), "commit");
        rates.withdraw = n / clock.seconds();
    }
    verify("withdraw", rib, sync, neighbours, writer, view, sample);
    if (writer.route_count() != 0 || rib.prefixes() != 0)
        throw std::runtime_error("push: routes left after the withdraw round");
    Cleanup::remove_segment(name);
    return rates;
}

// One repeat of the kernel: the same routes (same nodes) with `ip -batch`
// into table 100, replaced, then deleted. Seconds include ip's start and its
// parsing of the batch: what a routing daemon driving ip would see.
RoundRates run_kernel(const PushOptions& o, const std::vector<Prefix4>& prefixes) {
    const auto write_batch = [&](const std::string& path, const char* verb, unsigned shift, bool via) {
        Cleanup::add_file(path);
        std::ofstream out(path);
        for (std::size_t i = 0; i < prefixes.size(); ++i) {
            out << "route " << verb << ' ' << prefixes[i].str();
            if (via)
                out << " via " << format_ipv4(node_ip(static_cast<unsigned>((i + shift) % kNodes)));
            out << " table " << kKernelTable << '\n';
        }
        if (!out)
            throw std::runtime_error("cannot write " + path);
    };
    const std::string add = o.tmpdir + "/kernel_add.batch";
    const std::string replace = o.tmpdir + "/kernel_replace.batch";
    const std::string del = o.tmpdir + "/kernel_del.batch";
    write_batch(add, "add", 0, true);
    write_batch(replace, "replace", 1 + kNodes / 2, true);
    write_batch(del, "del", 0, false);
    const double n = static_cast<double>(prefixes.size());
    const std::chrono::seconds limit(60);
    RoundRates rates;
    rates.insert = n / run_timed({"ip", "-batch", add}, limit);
    rates.update = n / run_timed({"ip", "-batch", replace}, limit);
    rates.withdraw = n / run_timed({"ip", "-batch", del}, limit);
    return rates;
}

RoundRates best_of(const std::vector<RoundRates>& runs) {
    RoundRates best;
    for (const auto& r : runs) {
        best.insert = std::max(best.insert, r.insert);
        best.update = std::max(best.update, r.update);
        best.withdraw = std::max(best.withdraw, r.withdraw);
    }
    return best;
}

}  // namespace

PushResult run_push(const PushOptions& o) {
    PushResult result;
    const auto prefixes = make_prefixes(o.routes, o.seed, result.mix);
    const auto sample = make_sample(prefixes, o.sample, o.seed);
    result.routes = prefixes.size();
    result.nodes = kNodes;
    result.checked = sample.size();
    // Interleaved (ours, kernel, ours, ...) so both see the same machine.
    for (unsigned r = 0; r < o.repeats; ++r) {
        result.ours_runs.push_back(run_ours(o, r, prefixes, sample, result.nexthops));
        result.kernel_runs.push_back(run_kernel(o, prefixes));
    }
    result.ours = best_of(result.ours_runs);
    result.kernel = best_of(result.kernel_runs);
    return result;
}

}  // namespace podfwd::perf
