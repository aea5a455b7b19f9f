// etcd_bench: podfwd-control's etcd source against etcd's own client.
//
//  1. full sync of 5,000 Flannel leases: from starting podfwd-control until a
//     TableView reader sees every route, beside `etcdctl get` of the same
//     range (process start to exit), rounds interleaved, medians;
//  2. the same for 20,000 Calico IPAM blocks (200 nodes x 100 blocks);
//  3. put-to-table latency: a put of a lease (new, or a changed PublicIP) on
//     a keep-alive HTTP connection until a lookup in that subnet answers the
//     new next hop; deletes likewise; etcd's answer and a watch of the
//     bench's own as the no-daemon baselines.
//
// Starts its own etcd (free ports, data in a temporary directory removed at
// exit, also on failure or a signal). Prints a table, then the summary lines
// ending with sync_5k_nodes_ms=, sync_vs_etcdctl=, put_to_table_p99_ms=.
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <string>

#include "perf/bench_util.h"
#include "perf/control_bench_proc.h"
#include "perf/etcd_bench_etcd.h"
#include "perf/etcd_bench_range.h"
#include "perf/etcd_bench_run.h"

namespace podfwd::perf {
namespace {

struct Args {
    bool quick = false;
    std::size_t leases = 5000;
    std::size_t calico_nodes = 200;
    std::size_t blocks_per_node = 100;
    unsigned rounds = 0;
    std::size_t puts = 0;
    bool pin = true;
    std::string samples;
    std::string control, etcd = "etcd", etcdctl = "etcdctl";
};

const char* kUsage =
    "usage: etcd_bench [--quick] [--rounds N] [--puts N] [--leases N] [--calico-nodes N]\n"
    "                  [--blocks-per-node N] [--no-pin] [--samples FILE] [--control PATH] [--etcd PATH]\n"
    "                  [--etcdctl PATH]\n"
    "  --quick       200 timed puts (default 1000); 5 sync rounds either way\n"
    "  --rounds N    timed full-sync rounds per layout (and as many etcdctl reads), after one warm-up\n"
    "  --puts N      timed puts (half new leases, half changed PublicIPs) and N/2 deletes\n"
    "  --leases N    Flannel leases (default 5000); --calico-nodes, --blocks-per-node: 200 x 100\n"
    "  --samples F   write every put/delete timing to F (CSV: round,op,counted,table_ms,ack_ms,watch_ms)\n"
    "  --no-pin      latency part: the table poller, the daemon and etcd placed by the scheduler\n"
    "                (default: the poller alone on the last CPU, as a dataplane lcore; the rest on the others)\n"
    "  --control     podfwd-control (default: this build tree's); --etcd, --etcdctl: from PATH\n";

Args parse(int argc, char** argv) {
    Args a;
    a.control = build_tree_path("../control/daemon/podfwd-control");
    long rounds = -1, puts = -1;
    walk_args(argc, argv, kUsage, [&](const std::string& arg, const auto& value) {
        if (arg == "--quick")
            a.quick = true;
        else if (arg == "--rounds")
            rounds = std::stol(value());
        else if (arg == "--puts")
            puts = std::stol(value());
        else if (arg == "--leases")
            a.leases = std::stoul(value());
        else if (arg == "--calico-nodes")
            a.calico_nodes = std::stoul(value());
        else if (arg == "--blocks-per-node")
            a.blocks_per_node = std::stoul(value());
        else if (arg == "--samples")
            a.samples = value();
        else if (arg == "--no-pin")
            a.pin = false;
        else if (arg == "--control")
            a.control = value();
        else if (arg == "--etcd")
            a.etcd = value();
        else if (arg == "--etcdctl")
            a.etcdctl = value();
        else
            return false;
        return true;
    });
    a.rounds = rounds > 0 ? static_cast<unsigned>(rounds) : 5;
    a.puts = puts > 0 ? static_cast<std::size_t>(puts) : (a.quick ? 200 : 1000);
    if (a.leases < 10 || a.calico_nodes < 1 || a.blocks_per_node < 1)
        throw std::invalid_argument("--leases must be at least 10, --calico-nodes and --blocks-per-node at least 1");
    if (a.puts > 2 * 5000)
        throw std::invalid_argument("--puts must be at most 10000");
    if (::access(a.control.c_str(), X_OK) != 0)
        throw std::invalid_argument(a.control + " is not there: build the tree (ninja -C build)");
    return a;
}

std::string joined(const std::vector<std::string>& argv) {
    std::string s;
    for (const auto& a : argv)
        s += (s.empty() ? "" : " ") + (a.find_first_of(" \"") == std::string::npos ? a : "'" + a + "'");
    return s;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

std::string stamp(double ms) { return ms < 0 ? "-" : fixed(ms, 0); }

struct SyncResult {
    std::vector<SyncSample> ours;
    std::vector<double> etcdctl, grpc, json;
    double ours_median = 0, etcdctl_median = 0, grpc_median = 0, json_median = 0;
    RangeTiming grpc_last, json_last;
    double ratio() const { return ours_median / etcdctl_median; }
};

// One warm-up of each, then `rounds` of each, interleaved.
SyncResult sync_rounds(const Env& env, const Dataset& data, unsigned rounds, RangeClients& range) {
    std::printf("\n== full sync: %s (%zu keys in the range read) ; %u rounds after one warm-up, interleaved\n",
                data.what.c_str(), data.kvs.size(), rounds);
    std::printf("  podfwd-control --etcd-layout %s, a fresh table each round: spawn -> a TableView reader sees\n"
                "    every route with its node and mode (polled every 100 us, all %zu addresses checked)\n",
                data.layout.c_str(), data.expect.size());
    std::printf("  etcdctl: %s >/dev/null, spawn -> exit\n", joined(etcdctl_argv(env, data)).c_str());
    std::printf("  gRPC, JSON: the same Range by the bench on a new connection (libcurl), request -> last byte,\n"
                "    no process start: gRPC (HTTP/2 h2c, protobuf) is etcdctl's API, the JSON gateway podfwd-control's\n");
    std::fflush(stdout);
    (void)sync_once(env, data);
    (void)etcdctl_once(env, data);
    (void)range.grpc(data.range_begin, data.range_end);
    (void)range.json(data.range_begin, data.range_end);
    SyncResult r;
    std::printf("  %-6s %10s %9s %11s %10s %7s | %11s %8s %8s\n", "round", "podfwd ms", "read ms", "reconciled",
                "listening", "routes", "etcdctl ms", "gRPC ms", "JSON ms");
    for (unsigned i = 0; i < rounds; ++i) {
        r.ours.push_back(sync_once(env, data));
        r.etcdctl.push_back(etcdctl_once(env, data));
        r.grpc_last = range.grpc(data.range_begin, data.range_end);
        r.json_last = range.json(data.range_begin, data.range_end);
        for (const RangeTiming* t : {&r.grpc_last, &r.json_last})
            if (t->keys < static_cast<std::int64_t>(data.kvs.size()))
                throw std::runtime_error("a Range of " + data.range_begin + " answered " + std::to_string(t->keys) +
                                         " keys, not " + std::to_string(data.kvs.size()));
        r.grpc.push_back(r.grpc_last.ms);
        r.json.push_back(r.json_last.ms);
        const SyncSample& s = r.ours.back();
        std::printf("  %-6u %10s %9s %11s %10s %7zu | %11s %8s %8s\n", i + 1, fixed(s.ms, 1).c_str(),
                    stamp(s.read_ms).c_str(), stamp(s.reconciled_ms).c_str(), stamp(s.listening_ms).c_str(), s.routes,
                    fixed(r.etcdctl.back(), 1).c_str(), fixed(r.grpc.back(), 1).c_str(), fixed(r.json.back(), 1).c_str());
        std::fflush(stdout);
    }
    std::vector<double> ours;
    for (const SyncSample& s : r.ours)
        ours.push_back(s.ms);
    r.ours_median = median(ours);
    r.etcdctl_median = median(r.etcdctl);
    r.grpc_median = median(r.grpc);
    r.json_median = median(r.json);
    std::printf("  %-6s %10s %49s %8s %8s\n", "median", fixed(r.ours_median, 1).c_str(), fixed(r.etcdctl_median, 1).c_str(),
                fixed(r.grpc_median, 1).c_str(), fixed(r.json_median, 1).c_str());
    std::printf("  podfwd / etcdctl = %.2f; answers: gRPC %s, JSON %s for %s keys\n", r.ratio(),
                mib(r.grpc_last.bytes).c_str(), mib(r.json_last.bytes).c_str(), with_commas(r.json_last.keys).c_str());
    std::printf("  (read, reconciled, listening: the daemon's log stamps of its etcd read, its table reconciled and its\n"
                "   socket, ms since the spawn, 1 ms grain)\n");
    return r;
}

void print_latency(const LatencyResult& r, std::size_t puts, bool pin) {
    std::printf("\n== put -> table: podfwd-control (flannel, synced in %.0f ms) running; %zu puts one at a time on one\n"
                "   keep-alive HTTP connection (POST /v3/kv/put), half new leases, half changed PublicIPs, and\n"
                "   %zu deletes (POST /v3/kv/deleterange), after %d warm-up ops. From just before the send, the bench\n"
                "   busy-polls (sched_yield between polls) the table, etcd's answer and a /v3/watch stream of its own%s\n",
                r.sync_ms, puts, r.delete_table.ms.size(), 9,
                pin ? ";\n   the poller pinned alone to the last CPU (a dataplane lcore's place), etcd and the daemon on the others"
                    : ";\n   --no-pin: poller, daemon and etcd placed by the scheduler");
    std::printf("  %-24s %8s %8s %8s %8s   %s\n", "path", "p50 ms", "p99 ms", "max ms", "mean ms", "what");
    for (const Series* s : {&r.put_table, &r.add_table, &r.change_table, &r.put_ack, &r.put_watch, &r.put_daemon,
                            &r.delete_table, &r.delete_ack, &r.delete_watch})
        std::printf("  %-24s %8s %8s %8s %8s   %s\n", s->name.c_str(), fixed(s->p50, 3).c_str(), fixed(s->p99, 3).c_str(),
                    fixed(s->max, 3).c_str(), fixed(s->mean, 3).c_str(), s->what.c_str());
    std::printf("  (etcd's answer and the watch event are what any etcd client gets: the daemon's share is\n"
                "   table - watch event)\n");
    const FsyncStats& f = r.fsyncs;
    std::printf("  etcd's WAL fsyncs meanwhile (its /metrics; data on %s): %.0f, mean %.2f ms, %.0f over 8 ms\n",
                "the temporary directory's disk", f.count, f.count > 0 ? 1e3 * f.seconds / f.count : 0.0, f.over_8ms);
}

const char* met(bool ok) { return ok ? "met" : "NOT met"; }

int bench_main(int argc, char** argv) {
    const Args a = parse(argc, argv);
    const std::string load_start = load_average();
    Cleanup cleanup;
    install_interrupt_handler();   // after Cleanup's: unwinds, so etcd's data directory goes too
    Stopwatch total;

    std::printf("etcd_bench: podfwd-control's etcd source (full sync, put -> table) beside etcd's own client\n");
    std::printf("  mode: %s; machine: %s\n", a.quick ? "--quick" : "full", machine().c_str());
    std::printf("  load average at start: %s\n", load_start.c_str());

    EtcdServer etcd(a.etcd, cleanup.tmpdir());
    etcd.start();
    Env env;
    env.control = a.control;
    env.etcdctl = a.etcdctl;
    env.tmpdir = cleanup.tmpdir();
    env.base = "etcd_bench." + std::to_string(::getpid());
    env.url = etcd.url();
    env.port = etcd.port();
    env.pin = a.pin;
    env.etcd_pid = etcd.pid();
    std::printf("  etcd %s at %s (pid %d, healthy %.0f ms after the spawn), data in %s\n", etcd.version().c_str(),
                env.url.c_str(), static_cast<int>(etcd.pid()), etcd.started_ms(), cleanup.tmpdir().c_str());

    const Dataset flannel = flannel_dataset(a.leases);
    const Dataset calico = calico_dataset(a.calico_nodes, a.blocks_per_node);
    {
        HttpConnection http(env.port);
        for (const Dataset* d : {&flannel, &calico}) {
            const Stopwatch load;
            const std::int64_t revision = put_all(http, d->kvs);
            const double s = load.seconds();
            const std::int64_t n = count_range(http, d->range_begin, d->range_end);
            if (n != static_cast<std::int64_t>(d->kvs.size()))
                throw std::runtime_error(d->layout + ": etcd holds " + std::to_string(n) + " keys in the range, not " +
                                         std::to_string(d->kvs.size()));
            std::printf("  loaded %s keys (%s) in %.0f ms through /v3/kv/txn, 128 puts a txn (%s puts/s), revision %lld\n",
                        with_commas(d->kvs.size()).c_str(), d->what.c_str(), s * 1e3,
                        with_commas(static_cast<std::uint64_t>(static_cast<double>(d->kvs.size()) / s)).c_str(),
                        static_cast<long long>(revision));
        }
    }
    std::printf("  podfwd-control %s --node-ip %s --uplink %s --gateway %s --max-routes 65536 --etcd-endpoints %s --accept 10.0.0.0/8\n"
                "    --etcd-layout L --node-name %s --log-level info [flannel: --pod-cidr %s], own --table/--socket/--state-dir\n",
                env.control.c_str(), kNodeIp, kUplink, kGateway, env.url.c_str(), kNodeName, kFlannelPodCidr);
    std::fflush(stdout);

    const Pressure sync_pressure;
    RangeClients range(env.url);
    const SyncResult fl = sync_rounds(env, flannel, a.rounds, range);
    const SyncResult ca = sync_rounds(env, calico, a.rounds, range);
    std::printf("  CPU pressure during the sync part: a task waited for a CPU %s of the time\n",
                sync_pressure.share().c_str());
    std::fflush(stdout);

    const Pressure latency_pressure;
    const LatencyResult lat = run_latency(env, flannel, a.puts);
    print_latency(lat, a.puts, a.pin);
    if (!a.samples.empty()) {
        std::ofstream out(a.samples);
        out << "round,op,counted,table_ms,ack_ms,watch_ms\n" << lat.csv;
        if (!out)
            throw std::runtime_error("cannot write " + a.samples);
    }
    std::printf("  CPU pressure during the latency part: a task waited for a CPU %s of the time\n",
                latency_pressure.share().c_str());

    std::printf("\nsummary\n");
    std::printf("  run time %.1f s; load average at end: %s\n", total.seconds(), load_average().c_str());
    std::printf("  goals: sync_5k_nodes_ms < 1000 (%.1f: %s); sync_vs_etcdctl <= 2 (%.2f: %s); "
                "put_to_table_p99_ms < 10 (%.2f: %s)\n",
                fl.ours_median, met(fl.ours_median < 1000), fl.ratio(), met(fl.ratio() <= 2), lat.put_table.p99,
                met(lat.put_table.p99 < 10));
    std::printf("etcdctl_5k_ms=%.1f\n", fl.etcdctl_median);
    std::printf("grpc_range_5k_ms=%.1f\n", fl.grpc_median);
    std::printf("json_range_5k_ms=%.1f\n", fl.json_median);
    std::printf("sync_20k_blocks_ms=%.1f\n", ca.ours_median);
    std::printf("etcdctl_20k_ms=%.1f\n", ca.etcdctl_median);
    std::printf("grpc_range_20k_ms=%.1f\n", ca.grpc_median);
    std::printf("json_range_20k_ms=%.1f\n", ca.json_median);
    std::printf("sync_20k_vs_etcdctl=%.2f\n", ca.ratio());
    std::printf("put_to_table_p50_ms=%.2f\n", lat.put_table.p50);
    std::printf("put_watch_event_p99_ms=%.2f\n", lat.put_watch.p99);
    std::printf("put_daemon_share_p99_ms=%.2f\n", lat.put_daemon.p99);
    std::printf("etcd_wal_fsync_mean_ms=%.2f\n", lat.fsyncs.count > 0 ? 1e3 * lat.fsyncs.seconds / lat.fsyncs.count : 0.0);
    std::printf("delete_to_table_p99_ms=%.2f\n", lat.delete_table.p99);
    std::printf("sync_5k_nodes_ms=%.1f\n", fl.ours_median);
    std::printf("sync_vs_etcdctl=%.2f\n", fl.ratio());
    std::printf("put_to_table_p99_ms=%.2f\n", lat.put_table.p99);
    return 0;
}

}  // namespace
}  // namespace podfwd::perf

int main(int argc, char** argv) {
    int rc = 0;
    try {
        rc = podfwd::perf::bench_main(argc, argv);
    } catch (const std::invalid_argument& e) {
        std::fprintf(stderr, "etcd_bench: %s\n%s", e.what(), podfwd::perf::kUsage);
        return 2;
    } catch (const std::exception& e) {
        std::fflush(stdout);
        std::fprintf(stderr, "etcd_bench: error: %s\n", e.what());
        rc = 1;
    }
    // Everything is cleaned up by now (destructors); a signal ends us as it would have.
    if (const int sig = podfwd::perf::interrupted(); sig != 0) {
        std::signal(sig, SIG_DFL);
        std::raise(sig);
    }
    return rc;
}
