#include "perf/update_bench.h"

#include <cstdio>
#include <stdexcept>
#include <vector>

#include "perf/dpdk_tables.h"

namespace podfwd::perf {

using lpm::NextHopId;
using lpm::Route;

namespace {

constexpr std::size_t kShortRoutes = 20000;
constexpr std::size_t kCheckAddresses = 40000;
constexpr std::uint64_t kDeleteStream = 0x64656c;   // "del"

// What the table must answer after a phase.
struct Checkpoint {
    std::string state;
    ReferenceLpm ref;
    Sample sample;
};

struct UpdatePlan {
    std::vector<Route> long_routes;   // /24 and /32, in insertion order
    std::vector<Route> rest;          // /0 and /16s
    std::vector<Route> short_routes;  // /8../16
    std::vector<Prefix4> delete_order;
    std::vector<Route> everything;    // sizes the DPDK tables
    std::vector<Checkpoint> checks;   // after insert_long, insert_short, delete
};

Checkpoint checkpoint(std::string state, const std::vector<Route>& routes, Rng& rng) {
    ReferenceLpm ref(routes);
    const auto drawn = drawn_destinations(routes, kCheckAddresses / 2, rng);
    const auto uniform = uniform_destinations(kCheckAddresses / 2, rng);
    Sample sample = make_sample(drawn, uniform, kCheckAddresses, ref);
    return Checkpoint{std::move(state), std::move(ref), std::move(sample)};
}

std::vector<Route> concat(std::initializer_list<const std::vector<Route>*> parts) {
    std::vector<Route> out;
    for (const auto* part : parts)
        out.insert(out.end(), part->begin(), part->end());
    return out;
}

UpdatePlan make_plan(const RouteSet& pod, const std::vector<NextHopId>& ids, const Options& opt) {
    UpdatePlan plan;
    for (const Route& r : with_ids(pod.routes, ids))
        (r.prefix.len >= 24 ? plan.long_routes : plan.rest).push_back(r);
    plan.short_routes = with_ids(make_short_routes(opt.seed, kShortRoutes, pod.nexthops), ids);
    Rng rng(opt.seed ^ kDeleteStream);
    for (const Route& r : plan.long_routes)
        plan.delete_order.push_back(r.prefix);
    shuffle(plan.delete_order, rng);
    plan.everything = concat({&plan.long_routes, &plan.rest, &plan.short_routes});
    plan.checks.push_back(checkpoint("insert_long", plan.long_routes, rng));
    plan.checks.push_back(checkpoint("insert_short", plan.everything, rng));
    plan.checks.push_back(checkpoint("delete", concat({&plan.rest, &plan.short_routes}), rng));
    return plan;
}

[[noreturn]] void update_failed(const std::string& what, const Prefix4& prefix, const std::string& why) {
    throw std::runtime_error(what + " " + prefix.str() + ": " + why);
}

// The three implementations behind one interface for run_suite: add/del throw
// on failure, commit publishes, one() looks up (for the checks).
class OursTarget {
public:
    OursTarget(lpm::TableWriter& writer, const lpm::TableView& view) : writer_(writer), view_(view) {}
    void add(const Route& r) {
        if (auto s = writer_.route_add(r.prefix, r.nexthop); !s)
            update_failed("route_add", r.prefix, s.error().message);
    }
    void del(const Prefix4& p) {
        if (auto s = writer_.route_del(p); !s)
            update_failed("route_del", p, s.error().message);
    }
    void commit() { must(writer_.commit(), "commit"); }
    NextHopId one(Ipv4Addr a) const noexcept { return view_.lookup(a); }

private:
    lpm::TableWriter& writer_;
    const lpm::TableView& view_;
};

class LpmTarget {
public:
    explicit LpmTarget(rte_lpm* lpm) : lpm_(lpm) {}
    void add(const Route& r) {
        if (const int rc = lpm_add(lpm_, r); rc != 0)
            update_failed("rte_lpm_add", r.prefix, std::to_string(rc));
    }
    void del(const Prefix4& p) {
        if (const int rc = lpm_del(lpm_, p); rc != 0)
            update_failed("rte_lpm_delete", p, std::to_string(rc));
    }
    void commit() noexcept {}   // changes are visible as they are made
    NextHopId one(Ipv4Addr a) const noexcept {
        std::uint32_t nh = 0;
        return rte_lpm_lookup(lpm_, a, &nh) == 0 ? nh : lpm::kNoRoute;
    }

private:
    rte_lpm* lpm_;
};

class FibTarget {
public:
    explicit FibTarget(rte_fib* fib) : fib_(fib) {}
    void add(const Route& r) {
        if (const int rc = rte_fib_add(fib_, r.prefix.addr, r.prefix.len, r.nexthop); rc != 0)
            update_failed("rte_fib_add", r.prefix, std::to_string(rc));
    }
    void del(const Prefix4& p) {
        if (const int rc = rte_fib_delete(fib_, p.addr, p.len); rc != 0)
            update_failed("rte_fib_delete", p, std::to_string(rc));
    }
    void commit() noexcept {}
    NextHopId one(Ipv4Addr a) const noexcept {
        std::uint32_t ip = a;
        std::uint64_t nh = 0;
        rte_fib_lookup_bulk(fib_, &ip, &nh, 1);
        return static_cast<NextHopId>(nh);
    }

private:
    rte_fib* fib_;
};

// Runs op(0..n-1), committing every `batch` ops and at the end; ops per second.
template <class Op, class Commit>
double per_second(std::size_t n, std::size_t batch, Op&& op, Commit&& commit) {
    const Stopwatch watch;
    for (std::size_t i = 0; i < n; ++i) {
        op(i);
        if ((i + 1) % batch == 0)
            commit();
    }
    if (n % batch != 0)
        commit();
    return static_cast<double>(n) / watch.seconds();
}

template <class Target>
UpdateRates run_suite(const std::string& who, Target& t, const UpdatePlan& plan, std::size_t batch) {
    const auto check = [&](const Checkpoint& c) { cross_check(who + " after " + c.state, t, c.sample, c.ref); };
    const auto commit = [&t] { t.commit(); };
    UpdateRates rates;
    rates.insert_long = per_second(plan.long_routes.size(), batch,
                                   [&](std::size_t i) { t.add(plan.long_routes[i]); }, commit);
    check(plan.checks[0]);
    for (const Route& r : plan.rest)
        t.add(r);
    t.commit();
    rates.insert_short = per_second(plan.short_routes.size(), batch,
                                    [&](std::size_t i) { t.add(plan.short_routes[i]); }, commit);
    check(plan.checks[1]);
    rates.del = per_second(plan.delete_order.size(), batch,
                           [&](std::size_t i) { t.del(plan.delete_order[i]); }, commit);
    check(plan.checks[2]);
    std::printf("  %-28s done\n", who.c_str());
    std::fflush(stdout);
    return rates;
}

// No reader registers on these tables: lookups for the checks happen between
// updates on this thread, and the rates are the writer's alone.
UpdateRates ours_suite(const char* suffix, const RouteSet& pod, const std::vector<NextHopId>& ids,
                       const UpdatePlan& plan, std::size_t batch, const std::string& who) {
    OurTable table = open_ours(suffix, pod.nexthops, plan.everything.size());
    if (table.ids != ids)
        throw std::runtime_error("our writer numbered the same next hops differently in two tables");
    const auto view = must(lpm::TableView::open(table.name.str()), "TableView::open");
    OursTarget target(table.writer, view);
    return run_suite(who, target, plan, batch);
}

std::string rate(double per_second) { return with_commas(static_cast<std::uint64_t>(per_second + 0.5)); }

}  // namespace

UpdateReport bench_updates(const RouteSet& pod, const Options& opt) {
    std::printf("\n== updates (pod table prefixes; one thread; no readers registered)\n");
    std::fflush(stdout);
    // The ids our writer hands out for the pod next hops; every table uses them.
    const std::vector<NextHopId> ids = open_ours("ids", pod.nexthops, 0).ids;
    const UpdatePlan plan = make_plan(pod, ids, opt);
    UpdateReport report;
    report.long_count = plan.long_routes.size();
    report.short_count = plan.short_routes.size();
    report.long_summary = length_summary(plan.long_routes);
    report.short_summary = length_summary(plan.short_routes);

    report.ours_single = ours_suite("upd1", pod, ids, plan, 1, "ours, commit per change");
    report.ours_batched = ours_suite("upd1024", pod, ids, plan, kUpdateBatch, "ours, commit per 1024");
    const DirSizing sizing = sizing_for(plan.everything);
    {
        CreatedLpm lpm = lpm_create(sizing);
        LpmTarget target(lpm.table.get());
        report.lpm = run_suite("rte_lpm", target, plan, 1);
    }
    {
        CreatedFib fib = fib_create(sizing);
        FibTarget target(fib.table.get());
        report.fib = run_suite("rte_fib", target, plan, 1);
    }
    return report;
}

void print_updates(const UpdateReport& r) {
    std::printf("\nupdate rates, routes/s (single thread; every change checked afterwards against a reference)\n");
    std::printf("  insert_long : %s prefixes (%s) into an empty table\n", with_commas(r.long_count).c_str(),
                r.long_summary.c_str());
    std::printf("  insert_short: %s prefixes (%s) into the pod table\n", with_commas(r.short_count).c_str(),
                r.short_summary.c_str());
    std::printf("  delete      : the insert_long prefixes, in another order\n");
    std::printf("  %-14s %18s %18s %14s %14s\n", "", "ours commit/op", "ours commit/1024", "rte_lpm", "rte_fib");
    const auto row = [](const char* name, double UpdateRates::*field, const UpdateReport& rep) {
        std::printf("  %-14s %18s %18s %14s %14s\n", name, rate(rep.ours_single.*field).c_str(),
                    rate(rep.ours_batched.*field).c_str(), rate(rep.lpm.*field).c_str(),
                    rate(rep.fib.*field).c_str());
    };
    row("insert_long", &UpdateRates::insert_long, r);
    row("insert_short", &UpdateRates::insert_short, r);
    row("delete", &UpdateRates::del, r);
}

}  // namespace podfwd::perf
