// bgp_bench: podfwd-control's BGP source against a bare gobgpd.
//
// A BIRD 2 peer of the bench's own originates pod prefixes (nine in ten /26,
// one in ten /32, from 10.0.0.0 up) over eBGP. Each round starts a receiver:
//  - podfwd-control --bgp-as … (its own gobgpd as a child), timed from the
//    session coming up to every prefix in its table (a TableView reader's
//    route count), then from BIRD's `disable pods` to none left;
//  - a bare gobgpd (started and configured over gRPC by the bench, as
//    podfwd-control configures its own), timed from the session coming up to
//    GetTable(GLOBAL, ipv4 unicast).num_destination holding every prefix,
//    then to none.
// "The session coming up" is BIRD's own log stamp of the BGP protocol going
// up (`pfpeer: State changed to up`, 1 ms grain), the same for both sides.
// Rounds alternate (ABBA), medians reported; --quick: 100,000 prefixes, 3
// rounds each; the full run adds 1,000,000 prefixes. Ends with the lines
// bgp_prefixes_per_s=, bgp_vs_gobgpd=, bgp_withdraw_per_s=.
//
// Runs in a private network namespace (root); its files in a temporary
// directory removed at exit, also on failure or a signal.
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "perf/bench_util.h"
#include "perf/bgp_bench_bird.h"
#include "perf/bgp_bench_gobgp.h"
#include "perf/bgp_bench_run.h"
#include "perf/control_bench_proc.h"

namespace podfwd::perf::bgp {
namespace {

struct Args {
    bool quick = false;
    std::size_t prefixes = 100000;
    std::size_t big = 1000000;
    unsigned reps = 0;
    unsigned big_reps = 3;
    double poll_ms = 5;
    bool split = true;
    bool warmup = true;
    bool gobgpd_side = true, podfwd_side = true;
    std::uint32_t restart_time = 120;
    std::string control, gobgpd = "gobgpd", bird = "bird", keep_logs;
};

const char* kUsage =
    "usage: bgp_bench [--quick] [--prefixes N] [--reps N] [--big N] [--big-reps N] [--poll-ms MS]\n"
    "                 [--no-split] [--no-warmup] [--restart-time S] [--side gobgpd|podfwd]\n"
    "                 [--keep-logs DIR]\n"
    "                 [--control PATH] [--gobgpd PATH] [--bird PATH]\n"
    "  --quick         --prefixes rounds only (3 of each side); the full run adds --big\n"
    "  --prefixes N    pod prefixes BIRD originates (default 100000: 90% /26, 10% /32)\n"
    "  --reps N        timed rounds of each side (default 3 quick, 5 full), alternating ABBA\n"
    "  --big N         full run: the convergence part's prefixes (default 1000000; 0 skips it)\n"
    "  --big-reps N    its rounds of each side (default 3)\n"
    "  --poll-ms MS    interval between polls (default 5): the figures' resolution\n"
    "  --no-split      podfwd rounds poll only the table, not their gobgpd's RIB as well\n"
    "  --no-warmup     no untimed round of each side first\n"
    "  --side S        rounds of one side only (no ratio): gobgpd or podfwd\n"
    "  --keep-logs DIR copy each round's podfwd-control and gobgpd logs to DIR\n"
    "  --restart-time  graceful restart time both gobgpd get (default 120, podfwd-control's; 0 off)\n"
    "  --control       podfwd-control (default: this build tree's); --gobgpd, --bird: from PATH\n";

Args parse(int argc, char** argv) {
    Args a;
    a.control = build_tree_path("../control/daemon/podfwd-control");
    long reps = -1;
    walk_args(argc, argv, kUsage, [&](const std::string& arg, const auto& value) {
        if (arg == "--quick")
            a.quick = true;
        else if (arg == "--prefixes")
            a.prefixes = std::stoul(value());
        else if (arg == "--reps")
            reps = std::stol(value());
        else if (arg == "--big")
            a.big = std::stoul(value());
        else if (arg == "--big-reps")
            a.big_reps = static_cast<unsigned>(std::stoul(value()));
        else if (arg == "--poll-ms")
            a.poll_ms = std::stod(value());
        else if (arg == "--no-split")
            a.split = false;
        else if (arg == "--no-warmup")
            a.warmup = false;
        else if (arg == "--restart-time")
            a.restart_time = static_cast<std::uint32_t>(std::stoul(value()));
        else if (arg == "--side") {
            const std::string side = value();
            if (side != "gobgpd" && side != "podfwd")
                throw std::invalid_argument("--side: gobgpd or podfwd");
            a.gobgpd_side = side == "gobgpd";
            a.podfwd_side = side == "podfwd";
        } else if (arg == "--control")
            a.control = value();
        else if (arg == "--keep-logs")
            a.keep_logs = value();
        else if (arg == "--gobgpd")
            a.gobgpd = value();
        else if (arg == "--bird")
            a.bird = value();
        else
            return false;
        return true;
    });
    a.reps = reps > 0 ? static_cast<unsigned>(reps) : (a.quick ? 3 : 5);
    if (a.prefixes < 10 || a.prefixes > 4000000 || a.big > 4000000)
        throw std::invalid_argument("--prefixes must be 10..4000000, --big at most 4000000");
    if (a.poll_ms < 0.1 || a.poll_ms > 100)
        throw std::invalid_argument("--poll-ms must be 0.1..100");
    if (a.big_reps < 1)
        throw std::invalid_argument("--big-reps must be at least 1");
    if (a.podfwd_side && ::access(a.control.c_str(), X_OK) != 0)
        throw std::invalid_argument(a.control + " is not there: build the tree (ninja -C build)");
    return a;
}

double median(std::vector<double> v) {
    if (v.empty())
        return 0;
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

std::string ms(double v) { return v < 0 ? "-" : fixed(v, 0); }
std::string rate(double v) { return v <= 0 ? "-" : with_commas(static_cast<std::uint64_t>(v)); }

struct Part {
    std::size_t prefixes = 0;
    std::vector<Round> gobgpd, podfwd;
    bool both = true;
    double gobgpd_rate = 0, podfwd_rate = 0, gobgpd_wd_rate = 0, podfwd_wd_rate = 0;
    double gobgpd_ms = 0, podfwd_ms = 0, podfwd_rib_ms = 0, gobgpd_wd_ms = 0, podfwd_wd_ms = 0;
    double ratio() const { return both && gobgpd_rate > 0 ? podfwd_rate / gobgpd_rate : 0; }
};

void print_round(const char* label, const Round& r) {
    std::printf("  %-7s %-6s %6s %6s %6s %7s %4s %9s | %7s | %7s %4s %9s | %7s | %4s %5s %6s %5s | %7s %7s %5s\n", label,
                side_name(r.side), ms(r.start_ms).c_str(), ms(r.up_lag_ms).c_str(), ms(r.first_ms).c_str(),
                ms(r.all_ms).c_str(), ms(r.gap_ms).c_str(), rate(r.rate()).c_str(),
                r.side == Side::kPodfwd ? ms(r.gobgpd_all_ms).c_str() : "", ms(r.withdraw_ms).c_str(),
                ms(r.wd_gap_ms).c_str(), rate(r.withdraw_rate()).c_str(),
                r.side == Side::kPodfwd ? ms(r.gobgpd_withdraw_ms).c_str() : "", std::to_string(r.gettables).c_str(),
                r.gettables ? fixed(r.gettable_mean_ms, 1).c_str() : "-",
                r.gettables ? fixed(r.gettable_max_ms, 1).c_str() : "-",
                r.gettable_idle_ms >= 0 ? fixed(r.gettable_idle_ms, 1).c_str() : "", ms(r.cpu_control_ms).c_str(),
                ms(r.cpu_gobgpd_ms).c_str(), ms(r.cpu_bird_ms).c_str());
    std::fflush(stdout);
}

Part run_part(const Env& env, const Args& a, std::size_t n, unsigned reps, bool warmup, unsigned& index) {
    Part p;
    p.prefixes = n;
    p.both = a.gobgpd_side && a.podfwd_side;
    std::vector<Side> sides;
    if (a.gobgpd_side)
        sides.push_back(Side::kGobgpd);
    if (a.podfwd_side)
        sides.push_back(Side::kPodfwd);
    const std::vector<Prefix4> prefixes = pod_prefixes(n);
    std::printf("\n== %s pod prefixes (%s /26, %s /32) inside %s; %u rounds of each side after %s, ABBA\n",
                with_commas(n).c_str(), with_commas(n - n / 10).c_str(), with_commas(n / 10).c_str(),
                covering_prefix(prefixes).str().c_str(), reps, warmup ? "one warm-up of each" : "no warm-up");
    Bird bird(a.bird, env.tmpdir);
    bird.start(prefixes);
    std::printf("  BIRD %s (pid %d): %s of configuration, static routes loaded %.0f ms after the spawn\n",
                bird.version().c_str(), static_cast<int>(bird.pid()), mib(bird.config_bytes()).c_str(), bird.load_ms());
    std::printf("  %-7s %-6s %6s %6s %6s %7s %4s %9s | %7s | %7s %4s %9s | %7s | %4s %5s %6s %5s | %7s %7s %5s\n",
                "round", "side", "start", "up lag", "first", "all", "+-", "prefix/s", "RIB all", "wd", "+-", "wd/s", "RIB wd", "GTs",
                "GT ms", "GT max", "idle", "CPU pfc", "CPU gbd", "bird");
    std::fflush(stdout);
    if (warmup) {
        for (const Side s : sides)
            print_round("warm-up", run_round(env, bird, s, prefixes, index++));
    }
    for (unsigned i = 0; i < reps; ++i) {
        std::vector<Side> order = sides;
        if (i % 2 == 1)   // ABBA: drift cancels
            std::reverse(order.begin(), order.end());
        for (const Side s : order) {
            Round r = run_round(env, bird, s, prefixes, index++);
            print_round(std::to_string(i + 1).c_str(), r);
            (s == Side::kGobgpd ? p.gobgpd : p.podfwd).push_back(std::move(r));
        }
    }
    const auto med = [](const std::vector<Round>& rs, auto field) {
        std::vector<double> v;
        for (const Round& r : rs)
            v.push_back(field(r));
        return median(v);
    };
    p.gobgpd_rate = med(p.gobgpd, [](const Round& r) { return r.rate(); });
    p.podfwd_rate = med(p.podfwd, [](const Round& r) { return r.rate(); });
    p.gobgpd_wd_rate = med(p.gobgpd, [](const Round& r) { return r.withdraw_rate(); });
    p.podfwd_wd_rate = med(p.podfwd, [](const Round& r) { return r.withdraw_rate(); });
    p.gobgpd_ms = med(p.gobgpd, [](const Round& r) { return r.all_ms; });
    p.podfwd_ms = med(p.podfwd, [](const Round& r) { return r.all_ms; });
    p.podfwd_rib_ms = med(p.podfwd, [](const Round& r) { return r.gobgpd_all_ms; });
    p.gobgpd_wd_ms = med(p.gobgpd, [](const Round& r) { return r.withdraw_ms; });
    p.podfwd_wd_ms = med(p.podfwd, [](const Round& r) { return r.withdraw_ms; });
    std::printf("  median: gobgpd %s ms (%s prefixes/s), podfwd %s ms (%s prefixes/s; its gobgpd's RIB complete at %s ms):"
                " podfwd / gobgpd = %.2f\n",
                ms(p.gobgpd_ms).c_str(), rate(p.gobgpd_rate).c_str(), ms(p.podfwd_ms).c_str(), rate(p.podfwd_rate).c_str(),
                ms(p.podfwd_rib_ms).c_str(), p.ratio());
    std::printf("  withdrawal median: gobgpd %s ms (%s/s), podfwd %s ms (%s/s)\n", ms(p.gobgpd_wd_ms).c_str(),
                rate(p.gobgpd_wd_rate).c_str(), ms(p.podfwd_wd_ms).c_str(), rate(p.podfwd_wd_rate).c_str());
    std::fflush(stdout);
    return p;
}

const char* met(bool ok) { return ok ? "met" : "NOT met"; }

int bench_main(int argc, char** argv) {
    const Args a = parse(argc, argv);
    // Before any thread (gRPC starts its own): unshare needs a single thread.
    enter_private_netns();
    const std::string load_start = load_average();
    Cleanup cleanup;
    install_interrupt_handler();   // after Cleanup's: unwinds, so the directory goes too
    Stopwatch total;

    Env env;
    env.control = a.control;
    env.gobgpd = a.gobgpd;
    env.tmpdir = cleanup.tmpdir();
    env.base = "bgp_bench." + std::to_string(::getpid());
    env.poll = std::chrono::microseconds(static_cast<long>(a.poll_ms * 1000));
    env.split = a.split;
    env.restart_time = a.restart_time;
    env.keep_logs = a.keep_logs;

    std::printf("bgp_bench: podfwd-control's BGP source (BIRD -> gobgpd -> podfwd's table) beside a bare gobgpd\n");
    std::printf("  mode: %s; machine: %s\n", a.quick ? "--quick" : "full", machine().c_str());
    std::printf("  load average at start: %s\n", load_start.c_str());
    {
        BareGobgpd probe(a.gobgpd, env.tmpdir);
        std::printf("  gobgpd %s; files in %s; private netns: veth %s %s/24 (node: gobgpd, podfwd-control) <-> %s %s/24 (BIRD)\n",
                    probe.version().c_str(), env.tmpdir.c_str(), kVethNode, kNodeIp, kVethBird, kBirdIp);
    }
    std::printf("  eBGP: BIRD AS %u (active, %s:%d) -> node AS %u (passive, %s:%d); both gobgpd configured alike:\n"
                "    StartBgp(listen %s:%d, graceful restart %us) + AddPeer(BIRD, passive, hold 90 s, ipv4 unicast)\n",
                kBirdAs, kBirdIp, kBirdPort, kNodeAs, kNodeIp, kBgpPort, kNodeIp, kBgpPort, a.restart_time);
    std::printf("  podfwd-control %s --node-ip %s --uplink %s --bgp-as %u --bgp-router-id %s --bgp-listen-port %d\n"
                "    --bgp-peer %s,as=%u,passive,port=%d --accept <covering prefix> --max-routes <N+4096> --max-groups <N/4+4096> --log-level info,\n"
                "    own --table/--socket/--state-dir each round; bare gobgpd: %s --api-hosts=unix://… --pprof-disable\n"
                "    --log-plain --log-level=info (as podfwd-control starts its own)\n",
                env.control.c_str(), kNodeIp, kUplink, kNodeAs, kNodeIp, kBgpPort, kBirdIp, kBirdAs, kBirdPort,
                a.gobgpd.c_str());
    std::printf("  timed from BIRD's log stamp of the session up (`%s: State changed to up`, 1 ms grain, the same\n"
                "    for both sides) to every prefix counted: podfwd by a TableView reader's route count (shared\n"
                "    memory, read every %s ms), gobgpd by GetTable(GLOBAL, ipv4 unicast).num_destination: every\n"
                "    interval while the RIB is empty or nearly complete, in between after a quarter of the time its\n"
                "    progress says is left (<= 250 ms), and never sooner than 2x the last call's time after it\n"
                "    (GetTable walks the RIB on gobgpd's main loop: polled every 5 ms it took a third of gobgpd's\n"
                "    CPU at 100k). Each figure's resolution is printed (+-: the gap from the poll before).\n"
                "    Withdrawal: from sending `disable %s` to BIRD (its static routes go; it withdraws all by\n"
                "    UPDATE on the open session) to none counted. %s\n",
                kBirdPeer, fixed(a.poll_ms, 1).c_str(), kBirdStatic,
                a.split ? "podfwd rounds also poll their own gobgpd's GetTable\n"
                          "    alike (the same load on both gobgpd; the `RIB all` column: podfwd's gobgpd complete)."
                        : "--no-split: podfwd rounds poll only the table.");
    std::printf("  columns (ms): start = receiver spawn -> configured; up lag = the receiver's ListPeer saw\n"
                "    established, minus BIRD's stamp; first, all = from BIRD's stamp to the first and to every prefix\n"
                "    counted, +- = the gap to the poll before (the figure's resolution); RIB all = podfwd's gobgpd\n"
                "    complete; wd = withdrawal, RIB wd = podfwd's gobgpd empty; GTs, GT ms, GT max = GetTable calls\n"
                "    in the round, their mean and max time (a call walks the RIB on gobgpd's main loop, waiting its\n"
                "    turn); idle = one GetTable on the full idle RIB; CPU = user+system from `enable` to all (pfc\n"
                "    podfwd-control, gbd the receiving gobgpd, bird)\n");
    std::fflush(stdout);

    const Pressure pressure;
    unsigned index = 0;   // names each round's files, across parts
    const Part main_part = run_part(env, a, a.prefixes, a.reps, a.warmup, index);
    std::optional<Part> big;
    if (!a.quick && a.big > 0)
        big = run_part(env, a, a.big, a.big_reps, false, index);
    std::printf("  CPU pressure during the run: a task waited for a CPU %s of the time\n", pressure.share().c_str());

    std::printf("\nsummary\n");
    std::printf("  run time %.1f s; load average at end: %s; resolution: polls every %s ms\n", total.seconds(),
                load_average().c_str(), fixed(a.poll_ms, 1).c_str());
    std::printf("  goal: bgp_vs_gobgpd >= 0.8 (%.2f: %s)\n", main_part.ratio(), met(main_part.ratio() >= 0.8));
    std::printf("bgp_prefixes=%zu\n", main_part.prefixes);
    std::printf("bgp_convergence_ms=%.0f\n", main_part.podfwd_ms);
    std::printf("gobgpd_convergence_ms=%.0f\n", main_part.gobgpd_ms);
    std::printf("gobgpd_prefixes_per_s=%.0f\n", main_part.gobgpd_rate);
    std::printf("gobgpd_withdraw_per_s=%.0f\n", main_part.gobgpd_wd_rate);
    if (big) {
        std::printf("bgp_big_prefixes=%zu\n", big->prefixes);
        std::printf("bgp_big_convergence_ms=%.0f\n", big->podfwd_ms);
        std::printf("gobgpd_big_convergence_ms=%.0f\n", big->gobgpd_ms);
        std::printf("bgp_big_prefixes_per_s=%.0f\n", big->podfwd_rate);
        std::printf("bgp_big_vs_gobgpd=%.2f\n", big->ratio());
        std::printf("bgp_big_withdraw_ms=%.0f\n", big->podfwd_wd_ms);
        std::printf("bgp_big_withdraw_per_s=%.0f\n", big->podfwd_wd_rate);
    }
    std::printf("bgp_prefixes_per_s=%.0f\n", main_part.podfwd_rate);
    std::printf("bgp_vs_gobgpd=%.2f\n", main_part.ratio());
    std::printf("bgp_withdraw_per_s=%.0f\n", main_part.podfwd_wd_rate);
    return 0;
}

}  // namespace
}  // namespace podfwd::perf::bgp

int main(int argc, char** argv) {
    int rc = 0;
    try {
        rc = podfwd::perf::bgp::bench_main(argc, argv);
    } catch (const std::invalid_argument& e) {
        std::fprintf(stderr, "bgp_bench: %s\n%s", e.what(), podfwd::perf::bgp::kUsage);
        return 2;
    } catch (const std::exception& e) {
        std::fflush(stdout);
        std::fprintf(stderr, "bgp_bench: error: %s\n", e.what());
        rc = 1;
    }
    // Everything is cleaned up by now (destructors); a signal ends us as it would have.
    if (const int sig = podfwd::perf::bgp::interrupted(); sig != 0) {
        std::signal(sig, SIG_DFL);
        std::raise(sig);
    }
    return rc;
}
