// control_bench: how fast podfwd-control moves routes into the table.
//
//  1. push: routes/s from the RIB into the table (Rib + TableSync in this
//     process, 100k pod routes: insert, move every route, withdraw), beside
//     the kernel's FIB taking the same routes from `ip -batch`;
//  2. latency from `podfwdctl route add` (and the control socket directly)
//     to a change a dataplane reader sees;
//  3. latency from `ip route add` (and one RTM_NEWROUTE) to the same.
//
// Runs in a private network namespace of its own (root). Prints a table,
// then the summary lines push_routes_per_s=, cli_add_p99_ms=, netlink_p99_ms=.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>

#include "perf/bench_util.h"
#include "perf/control_bench_latency.h"
#include "perf/control_bench_proc.h"
#include "perf/control_bench_push.h"

namespace podfwd::perf {
namespace {

struct Args {
    bool quick = false;
    std::string samples;   // CSV of every latency sample
    PushOptions push;
    LatencyOptions latency;
};

const char* kUsage =
    "usage: control_bench [--quick] [--routes N] [--repeats N] [--adds N] [--seed N]\n"
    "                     [--no-pin] [--samples FILE] [--control PATH] [--ctl PATH]\n"
    "  --quick      3 push repeats, 200 adds per latency path (default: 5 and 1000)\n"
    "  --routes N   routes pushed (default 100000)\n"
    "  --repeats N  push repeats, fresh table each; the best counts\n"
    "  --adds N     timed adds per latency path (at most 1019)\n"
    "  --samples F  write every latency sample to F (CSV: i,path,ms, in the order taken)\n"
    "  --no-pin     latency part: leave the bench's table poller, podfwd-control and the clients\n"
    "               to the scheduler (default: the poller alone on the last CPU, as a dataplane\n"
    "               lcore would be, the rest on the others)\n"
    "  --control, --ctl  podfwd-control and podfwdctl (default: from this build tree)\n";

Args parse(int argc, char** argv) {
    Args a;
    a.latency.control = build_tree_path("../control/daemon/podfwd-control");
    a.latency.ctl = build_tree_path("../control/ctl/podfwdctl");
    long repeats = -1, adds = -1;
    walk_args(argc, argv, kUsage, [&](const std::string& arg, const auto& value) {
        if (arg == "--quick")
            a.quick = true;
        else if (arg == "--routes")
            a.push.routes = std::stoul(value());
        else if (arg == "--repeats")
            repeats = std::stol(value());
        else if (arg == "--adds")
            adds = std::stol(value());
        else if (arg == "--seed")
            a.push.seed = std::stoull(value(), nullptr, 0);
        else if (arg == "--samples")
            a.samples = value();
        else if (arg == "--no-pin")
            a.latency.pin = false;
        else if (arg == "--control")
            a.latency.control = value();
        else if (arg == "--ctl")
            a.latency.ctl = value();
        else
            return false;
        return true;
    });
    a.push.repeats = repeats > 0 ? static_cast<unsigned>(repeats) : (a.quick ? 3 : 5);
    a.latency.adds = adds > 0 ? static_cast<std::size_t>(adds) : (a.quick ? 200 : 1000);
    if (a.push.routes < 1000 || a.push.routes > 500000)
        throw std::invalid_argument("--routes must be 1000..500000");
    if (a.latency.adds + a.latency.warmup > 1024)
        throw std::invalid_argument("--adds must be at most 1019");
    for (const auto& path : {a.latency.control, a.latency.ctl})
        if (::access(path.c_str(), X_OK) != 0)
            throw std::invalid_argument(path + " is not there: build the tree (ninja -C build)");
    return a;
}

std::string rate(double v) { return with_commas(static_cast<std::uint64_t>(v + 0.5)); }

void print_push(const PushResult& p, unsigned repeats) {
    std::printf("\n== push: %s routes (%s) to %zu nodes, %zu next-hop records; best of %u rounds, fresh table each\n",
                with_commas(p.routes).c_str(), p.mix.c_str(), p.nodes, p.nexthops, repeats);
    std::printf("  ours  : Rib::set + TableSync::stage per route, one TableSync::commit (in process; policy\n"
                "          resolved beforehand); update = every route moves to another node\n");
    std::printf("  kernel: ip -batch of the same routes into table 100 (route add / replace / del), timed\n"
                "          from spawn to exit: the kernel FIB in this netns, as a routing daemon would drive it\n");
    std::printf("                              insert/s       update/s     withdraw/s\n");
    const auto row = [](const char* name, const RoundRates& r) {
        std::printf("  %-22s %14s %14s %14s\n", name, rate(r.insert).c_str(), rate(r.update).c_str(),
                    rate(r.withdraw).c_str());
    };
    row("ours (TableSync)", p.ours);
    row("kernel (ip -batch)", p.kernel);
    std::printf("  %-22s %14s %14s %14s\n", "ours / kernel", fixed(p.ours.insert / p.kernel.insert, 2).c_str(),
                fixed(p.ours.update / p.kernel.update, 2).c_str(),
                fixed(p.ours.withdraw / p.kernel.withdraw, 2).c_str());
    std::printf("  every round (insert/s: ours | kernel):");
    for (std::size_t i = 0; i < p.ours_runs.size(); ++i)
        std::printf(" %s | %s%s", rate(p.ours_runs[i].insert).c_str(), rate(p.kernel_runs[i].insert).c_str(),
                    i + 1 < p.ours_runs.size() ? ";" : "\n");
    std::printf("  checked after every round: %s addresses (half in the prefixes, half uniform in 10/8):\n"
                "  writer lookup, reader lookup and the record all agree with the RIB's best route\n",
                with_commas(p.checked).c_str());
}

void print_latency(const LatencyResult& r, std::size_t adds, bool pin) {
    std::printf("\n== latency: route add -> a TableView lookup answers the new route (podfwd-control running,\n"
                "   --kernel --kernel-table 100 --kernel-protocol bird); %zu adds per path, interleaved, after\n"
                "   5 warm-up adds each; the bench busy-polls the table (sched_yield between lookups)%s\n",
                adds,
                pin ? ",\n   pinned alone to the last CPU (a dataplane lcore's place), the daemon and the clients on the others"
                    : ",\n   --no-pin: poller, daemon and clients placed by the scheduler");
    std::printf("  %-16s %8s %8s %8s %8s   %s\n", "path", "p50 ms", "p99 ms", "max ms", "mean ms", "what");
    for (const Latencies* l : {&r.cli, &r.socket, &r.ip, &r.netlink})
        std::printf("  %-16s %8s %8s %8s %8s   %s\n", l->name.c_str(), fixed(l->p50, 3).c_str(),
                    fixed(l->p99, 3).c_str(), fixed(l->max, 3).c_str(), fixed(l->mean, 3).c_str(), l->what.c_str());
    std::printf("  (podfwdctl and ip include their process start, exec and dynamic linking: what a user sees;\n"
                "   the control socket and RTM_NEWROUTE rows are the daemon's own share)\n");
}

void write_samples(const std::string& path, const LatencyResult& r) {
    std::ofstream out(path);
    out << "i,path,ms\n";
    for (std::size_t i = 0; i < r.cli.ms.size(); ++i)
        for (const Latencies* l : {&r.cli, &r.socket, &r.ip, &r.netlink})
            out << i << ',' << l->name << ',' << fixed(l->ms[i], 4) << '\n';
    if (!out)
        throw std::runtime_error("cannot write " + path);
}

int bench_main(int argc, char** argv) {
    Args a = parse(argc, argv);
    const std::string load_start = load_average();
    Cleanup cleanup;
    // Before any thread exists: unshare needs a single-threaded process.
    enter_private_netns();
    const std::string base = "control_bench." + std::to_string(::getpid());
    a.push.tmpdir = cleanup.tmpdir();
    a.push.segment_prefix = base;
    a.latency.tmpdir = cleanup.tmpdir();
    a.latency.table = base + ".daemon";

    std::printf("control_bench: podfwd-control route push rate (vs the kernel FIB) and add-to-table latency\n");
    std::printf("  mode: %s; seed 0x%llx; private netns (veth pfbench0 %s/24)\n", a.quick ? "--quick" : "full",
                static_cast<unsigned long long>(a.push.seed), kNodeIp);
    std::printf("  machine: %s\n", machine().c_str());
    std::printf("  load average at start: %s\n", load_start.c_str());
    std::fflush(stdout);

    Stopwatch total;
    const Pressure push_pressure;
    const PushResult push = run_push(a.push);
    print_push(push, a.push.repeats);
    std::printf("  CPU pressure during the push part: a task waited for a CPU %s of the time\n",
                push_pressure.share().c_str());
    std::fflush(stdout);
    const Pressure latency_pressure;
    const LatencyResult lat = run_latency(a.latency);
    print_latency(lat, a.latency.adds, a.latency.pin);
    if (!a.samples.empty())
        write_samples(a.samples, lat);
    std::printf("  CPU pressure during the latency part: a task waited for a CPU %s of the time\n"
                "  (/proc/pressure/cpu 'some': a few %% with the bench alone on the machine; other work raises it,\n"
                "   and the p99 with it)\n",
                latency_pressure.share().c_str());

    std::printf("\nsummary\n");
    std::printf("  run time %.1f s; load average at end: %s\n", total.seconds(), load_average().c_str());
    std::printf("  goals: push_routes_per_s >= 500,000 (%s); cli_add_p99_ms <= 5 (%s); netlink_p99_ms <= 5 (%s)\n",
                push.ours.insert >= 500000 ? "met" : "NOT met", lat.cli.p99 <= 5.0 ? "met" : "NOT met",
                lat.ip.p99 <= 5.0 ? "met" : "NOT met");
    std::printf("kernel_fib_routes_per_s=%.0f\n", push.kernel.insert);
    std::printf("push_vs_kernel_ratio=%.2f\n", push.ours.insert / push.kernel.insert);
    std::printf("update_routes_per_s=%.0f\n", push.ours.update);
    std::printf("withdraw_routes_per_s=%.0f\n", push.ours.withdraw);
    std::printf("socket_add_p99_ms=%.2f\n", lat.socket.p99);
    std::printf("rtm_newroute_p99_ms=%.2f\n", lat.netlink.p99);
    std::printf("push_routes_per_s=%.0f\n", push.ours.insert);
    std::printf("cli_add_p99_ms=%.2f\n", lat.cli.p99);
    std::printf("netlink_p99_ms=%.2f\n", lat.ip.p99);
    return 0;
}

}  // namespace
}  // namespace podfwd::perf

int main(int argc, char** argv) {
    try {
        return podfwd::perf::bench_main(argc, argv);
    } catch (const std::invalid_argument& e) {
        std::fprintf(stderr, "control_bench: %s\n%s", e.what(), podfwd::perf::kUsage);
        return 2;
    } catch (const std::exception& e) {
        std::fflush(stdout);
        std::fprintf(stderr, "control_bench: error: %s\n", e.what());
        return 1;
    }
}
