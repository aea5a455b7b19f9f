#include "perf/bgp_bench_run.h"

#include <dirent.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>

#include "lpm/reader.h"
#include "perf/bench_util.h"
#include "perf/bgp_bench_gobgp.h"
#include "perf/control_bench_proc.h"

namespace podfwd::perf::bgp {

namespace {

constexpr auto kConvergeTimeout = std::chrono::seconds(900);
constexpr auto kStartTimeout = std::chrono::seconds(30);
constexpr int kEstablished = 6;   // apipb::PeerState::ESTABLISHED
constexpr double kStallMs = 30000;   // podfwd's table still while its gobgpd's RIB is complete
// After a GetTable that took t ms, the next one waits at least this many t:
// at most a third of the time with a walk of the RIB in flight.
constexpr double kGetTableBackoff = 2.0;

// A process of ours, stopped (SIGTERM, by PID) when this goes.
struct Child {
    pid_t pid = -1;
    ~Child() { end(); }
    void end() {
        if (pid > 0) {
            stop(pid);
            untrack_child(pid);
        }
        pid = -1;
    }
};

// One request line on a fresh connection to the daemon's control socket;
// its answer line, or "" when the socket is not there (yet).
std::string control_request(const std::string& path, const std::string& request) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        throw system_error("socket");
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), std::min(path.size() + 1, sizeof addr.sun_path - 1));
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string answer;
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0) {
        const std::string line = request + "\n";
        if (::send(fd, line.data(), line.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(line.size())) {
            char buf[4096];
            for (;;) {
                const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
                if (n <= 0)
                    break;
                answer.append(buf, static_cast<std::size_t>(n));
                if (answer.find('\n') != std::string::npos)
                    break;
            }
        }
    }
    ::close(fd);
    return answer;
}

// The child gobgpd of `parent` (podfwd-control's), or -1.
pid_t child_named(pid_t parent, const std::string& comm) {
    DIR* d = ::opendir("/proc");
    if (d == nullptr)
        return -1;
    pid_t found = -1;
    while (const dirent* e = ::readdir(d)) {
        const pid_t pid = static_cast<pid_t>(std::atoi(e->d_name));
        if (pid <= 0)
            continue;
        std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
        std::string stat;
        std::getline(in, stat);
        const auto open = stat.find('('), close = stat.rfind(')');
        if (open == std::string::npos || close == std::string::npos || stat.substr(open + 1, close - open - 1) != comm)
            continue;
        std::istringstream rest(stat.substr(close + 2));
        std::string state;
        long ppid = 0;
        rest >> state >> ppid;
        if (ppid == parent) {
            found = pid;
            break;
        }
    }
    ::closedir(d);
    return found;
}

struct Cpu {
    double control = -1, gobgpd = -1, bird = -1;
};

Cpu cpu_now(pid_t control, pid_t gobgpd, pid_t bird) { return Cpu{cpu_ms(control), cpu_ms(gobgpd), cpu_ms(bird)}; }

double delta(double a, double b) { return a < 0 || b < 0 ? -1 : b - a; }

// podfwd-control with BGP on, its files fresh; the table it writes.
struct Daemon {
    std::string table, socket, state, log, gobgp_socket, gobgpd_log;
    Child proc;
    pid_t gobgpd = -1;
    std::optional<lpm::TableView> view;
    std::optional<lpm::ReaderSlot> slot;

    Daemon(const Env& env, unsigned index)
        : table(env.base + "." + std::to_string(index)),
          socket(env.tmpdir + "/c" + std::to_string(index) + ".sock"),
          state(env.tmpdir + "/state" + std::to_string(index)),
          log(env.tmpdir + "/control" + std::to_string(index) + ".log"),
          gobgp_socket(env.tmpdir + "/" + table + ".gobgp.sock"),
          gobgpd_log(state + "/" + table + ".gobgpd.log") {}
    ~Daemon() {
        slot.reset();
        view.reset();
        proc.end();
        if (gobgpd > 0) {   // gone with the daemon; after a kill -9, by PID
            stop(gobgpd, std::chrono::seconds(5));
            untrack_child(gobgpd);
        }
        Cleanup::remove_segment(table);
    }

    // The daemon's last error lines (the table refusing routes, say).
    std::string errors() const {
        std::ifstream in(log);
        std::string out, last;
        std::size_t n = 0;
        for (std::string line; std::getline(in, line);)
            if (line.find(" error ") != std::string::npos) {
                if (++n <= 3)
                    out += "\n  " + line.substr(0, 300);
                last = line.substr(0, 300);
            }
        if (n > 3)
            out += "\n  ... (" + std::to_string(n) + " error lines; the last:)\n  " + last;
        return out;
    }

    void start(const Env& env, const std::vector<Prefix4>& prefixes) {
        std::error_code ec;
        std::filesystem::remove_all(state, ec);
        std::filesystem::create_directories(state);
        Cleanup::add_segment(table);
        const std::string peer = std::string(kBirdIp) + ",as=" + std::to_string(kBirdAs) + ",passive,port=" +
                                 std::to_string(kBirdPort);
        proc.pid = spawn({env.control, "--node-ip", kNodeIp, "--uplink", kUplink, "--table", table, "--socket", socket,
                          "--state-dir", state, "--max-routes", std::to_string(prefixes.size() + 4096),
                          // Four /26 blocks share a /24 group: a million need 225,000 (the default holds 131,072).
                          "--max-groups", std::to_string(std::max<std::size_t>(prefixes.size() / 4 + 4096, 1u << 17)),
                          "--bgp-as",
                          std::to_string(kNodeAs), "--bgp-router-id", kNodeIp, "--bgp-listen-port",
                          std::to_string(kBgpPort), "--bgp-peer", peer, "--accept", covering_prefix(prefixes).str(),
                          "--gobgpd", env.gobgpd, "--log-level", "info"},
                         log);
        track_child(proc.pid);
    }

    void check_alive() {
        int status = 0;
        if (!alive(proc.pid, &status)) {
            untrack_child(proc.pid);
            proc.pid = -1;
            throw std::runtime_error("podfwd-control exited (" + describe_status(status) + "):\n" + read_file(log) +
                                     "\ngobgpd's log:\n" + read_file(gobgpd_log, 2000));
        }
    }

    // Its socket answers, the table is there, its gobgpd has BIRD as a peer.
    void wait_ready(GobgpClient*& api, std::unique_ptr<GobgpClient>& holder) {
        const auto t0 = Clock::now();
        for (;;) {
            check_alive();
            if (!view && control_request(socket, R"({"op":"status"})").find("\"ok\":true") != std::string::npos) {
                view.emplace(must(lpm::TableView::open(table), "open the daemon's table " + table));
                slot.emplace(must(view->register_reader(), "register a reader on " + table));
                slot->offline();
            }
            if (view && !holder && ::access(gobgp_socket.c_str(), F_OK) == 0)
                holder = std::make_unique<GobgpClient>("unix://" + gobgp_socket);
            if (holder && holder->peer_state() >= 0) {
                api = holder.get();
                gobgpd = child_named(proc.pid, "gobgpd");
                if (gobgpd > 0)
                    track_child(gobgpd);
                return;
            }
            if (Clock::now() - t0 > kStartTimeout)
                throw std::runtime_error("podfwd-control: not ready (socket, table, gobgpd with BIRD as a peer) within 30 s:\n" +
                                         read_file(log) + "\ngobgpd's log:\n" + read_file(gobgpd_log, 2000));
            nap(std::chrono::milliseconds(2));
        }
    }

    std::size_t routes() const { return view->stats().routes; }

    // Every prefix answers a host-gw next hop via BIRD (the /32s inside
    // the /26s answer the same record: the count covers them).
    void check(const std::vector<Prefix4>& prefixes) {
        const Ipv4Addr via = must(parse_ipv4(kBirdIp), "BIRD's address");
        slot->online();
        std::string wrong;
        for (const Prefix4& p : prefixes) {
            const lpm::NextHopId id = view->lookup(p.addr);
            const lpm::NextHop* nh = view->nexthop(id);
            if (nh == nullptr || nh->node_ip != via || nh->mode != lpm::ForwardMode::kHostGw) {
                wrong = p.str() + " answers next hop " + std::to_string(id) +
                        (nh ? std::string(" (") + lpm::mode_name(nh->mode) + " via " + format_ipv4(nh->node_ip) + ")" : "");
                break;
            }
        }
        slot->quiescent();
        slot->offline();
        if (!wrong.empty())
            throw std::runtime_error("podfwd's table: " + wrong + ", expected host-gw via " + kBirdIp);
    }
};

}  // namespace

const char* side_name(Side s) noexcept { return s == Side::kGobgpd ? "gobgpd" : "podfwd"; }

double cpu_ms(pid_t pid) {
    if (pid <= 0)
        return -1;
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string stat;
    if (!std::getline(in, stat))
        return -1;
    const auto close = stat.rfind(')');
    if (close == std::string::npos)
        return -1;
    std::istringstream rest(stat.substr(close + 2));
    std::string field;
    // Fields 3..13, then utime (14) and stime (15).
    for (int i = 3; i <= 13; ++i)
        rest >> field;
    unsigned long long utime = 0, stime = 0;
    rest >> utime >> stime;
    return static_cast<double>(utime + stime) * 1000.0 / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

Round run_round(const Env& env, Bird& bird, Side side, const std::vector<Prefix4>& prefixes, unsigned index) {
    Round r;
    r.side = side;
    r.prefixes = prefixes.size();
    const std::size_t n = prefixes.size();

    // The receiver.
    std::unique_ptr<BareGobgpd> bare;
    std::unique_ptr<Daemon> daemon;
    std::unique_ptr<GobgpClient> daemon_api;
    GobgpClient* api = nullptr;   // the receiving gobgpd's API
    pid_t gobgpd_pid = -1;
    const auto t_spawn = Clock::now();
    if (side == Side::kGobgpd) {
        bare = std::make_unique<BareGobgpd>(env.gobgpd, env.tmpdir);
        r.start_ms = bare->start(env.restart_time);
        api = &bare->api();
        gobgpd_pid = bare->pid();
    } else {
        daemon = std::make_unique<Daemon>(env, index);
        daemon->start(env, prefixes);
        daemon->wait_ready(api, daemon_api);
        r.start_ms = ms_since(t_spawn, Clock::now());
        gobgpd_pid = daemon->gobgpd;
    }
    const std::size_t baseline = daemon ? daemon->routes() : 0;
    const bool poll_rib = side == Side::kGobgpd || env.split;
    const auto check_alive = [&] {
        if (daemon) {
            daemon->check_alive();
        } else {
            int status = 0;
            if (!alive(bare->pid(), &status))
                throw std::runtime_error("gobgpd exited (" + describe_status(status) + "):\n" + read_file(bare->log()));
        }
    };
    double gettable_total = 0;
    std::size_t gettables = 0;

    // Announcement: from BIRD's session up to every prefix counted.
    const std::size_t mark = bird.log_mark();
    const pid_t control_pid = daemon ? daemon->proc.pid : -1;
    const Cpu cpu0 = cpu_now(control_pid, gobgpd_pid, bird.pid());
    const auto wall0 = std::chrono::system_clock::now();
    const auto t0 = Clock::now();
    bird.command(std::string("enable ") + kBirdPeer);
    double up_seen = -1;
    static const bool trace = std::getenv("BGP_BENCH_TRACE") != nullptr;
    // One phase: polls until every prefix is counted (announce) or none is
    // left (withdraw). podfwd's table is read every interval (shared memory,
    // free); the receiving gobgpd's RIB through GetTable, which walks the
    // whole RIB on gobgpd's main loop (100k: ~30 ms idle, 50-150 ms while
    // loading; 1M: ~0.5 s idle, seconds while loading): polled every
    // interval only while it is empty or nearly done, in between after a
    // quarter of the time the progress so far says is left (at most 250 ms),
    // and never sooner than twice the last call's time after it returned.
    // The gap from the poll before (the figure's resolution) is reported.
    struct Phase {
        double done = -1, rib_done = -1, first = -1;
        double gap = 0, rib_gap = 0;   // ms between the last poll short of done and the one that saw it
    };
    const auto phase = [&](Clock::time_point start, bool announce, const char* what) {
        Phase ph;
        const auto progress = [&](std::size_t c) { return announce ? std::min(c, n) : n - std::min(c, n); };
        double last_poll = 0, last_rib_poll = 0, next_rib = 0, last_change = 0;
        std::size_t last_count = ~std::size_t{0};
        for (std::size_t i = 0;; ++i) {
            const double now = ms_since(start, Clock::now());
            if (poll_rib && ph.rib_done < 0 && now >= next_rib) {
                double call = 0;
                const auto rib = api->destinations(&call);
                gettable_total += call;
                r.gettable_max_ms = std::max(r.gettable_max_ms, call);
                ++gettables;
                const double at = ms_since(start, Clock::now());
                const std::size_t got = rib ? progress(static_cast<std::size_t>(*rib)) : 0;
                if (trace)
                    std::fprintf(stderr, "bgp_bench: %s %s GetTable at %.1f ms (%.1f ms): %s\n", side_name(side), what,
                                 at, call, rib ? std::to_string(*rib).c_str() : "failed");
                if (!daemon && ph.first < 0 && announce && got > 0)
                    ph.first = at;
                if (got >= n) {
                    ph.rib_done = at;
                    ph.rib_gap = at - last_rib_poll;
                } else {
                    const double left = got == 0 ? 0 : at * static_cast<double>(n - got) / static_cast<double>(got);
                    next_rib = at + std::max(std::clamp(left / 4, 0.0, 250.0), kGetTableBackoff * call);
                }
                last_rib_poll = at;
            }
            if (daemon && ph.done < 0) {
                const std::size_t c = daemon->routes() - baseline;
                const double at = ms_since(start, Clock::now());
                if (c != last_count) {
                    last_count = c;
                    last_change = at;
                }
                // The table stopped moving although gobgpd has them all:
                // the daemon refuses them (its errors say why).
                if (ph.rib_done >= 0 && at - last_change > kStallMs)
                    throw std::runtime_error(std::string("podfwd: ") + what + ": the table holds " +
                                             std::to_string(c) + " of " + std::to_string(n) +
                                             " prefixes and has not changed for " +
                                             std::to_string(static_cast<int>(kStallMs / 1000)) +
                                             " s; its gobgpd's RIB is complete. Daemon errors:" + daemon->errors());
                if (ph.first < 0 && announce && c > 0)
                    ph.first = at;
                if (progress(c) >= n) {
                    ph.done = at;
                    ph.gap = at - last_poll;
                }
                last_poll = at;
            }
            if (!daemon) {
                ph.done = ph.rib_done;
                ph.gap = ph.rib_gap;
            }
            ++r.polls;
            if (announce && up_seen < 0 && api->peer_state() == kEstablished)
                up_seen = ms_since(start, Clock::now());
            if (ph.done >= 0 && (!poll_rib || ph.rib_done >= 0) && (!announce || up_seen >= 0))
                return ph;
            if (i % 64 == 0)
                check_alive();
            if (Clock::now() - start > kConvergeTimeout)
                throw std::runtime_error(std::string(side_name(side)) + ": " + what + " not done after " +
                                         std::to_string(kConvergeTimeout.count()) + " s (table " +
                                         (daemon ? std::to_string(daemon->routes() - baseline) : std::string("-")) +
                                         "); BIRD: " + bird.protocol_line(kBirdPeer) +
                                         (daemon ? "; daemon errors:" + daemon->errors() : std::string()));
            nap(env.poll);
        }
    };
    const Phase in = phase(t0, true, "the announcement");
    const Cpu cpu1 = cpu_now(control_pid, gobgpd_pid, bird.pid());
    const auto up = bird.peer_up_after(mark);
    if (!up)
        throw std::runtime_error("BIRD's log has no '" + std::string(kBirdPeer) + ": State changed to up' line");
    // BIRD's stamp on the bench's steady clock: ms since t0.
    const double up_ms = *up - epoch_ms(wall0);
    r.first_ms = in.first - up_ms;
    r.all_ms = in.done - up_ms;
    r.gap_ms = in.gap;
    r.up_lag_ms = up_seen - up_ms;
    if (daemon && env.split) {
        r.gobgpd_all_ms = in.rib_done - up_ms;
        r.rib_gap_ms = in.rib_gap;
    }
    r.cpu_control_ms = delta(cpu0.control, cpu1.control);
    r.cpu_gobgpd_ms = delta(cpu0.gobgpd, cpu1.gobgpd);
    r.cpu_bird_ms = delta(cpu0.bird, cpu1.bird);
    if (daemon) {
        if (daemon->routes() != baseline + n)
            throw std::runtime_error("podfwd's table holds " + std::to_string(daemon->routes()) + " routes, not " +
                                     std::to_string(baseline + n));
        daemon->check(prefixes);
    } else {
        // What one poll costs gobgpd: GetTable on the full RIB, idle.
        std::vector<double> calls;
        for (int i = 0; i < 3; ++i) {
            double call = 0;
            (void)api->destinations(&call);
            calls.push_back(call);
        }
        std::sort(calls.begin(), calls.end());
        r.gettable_idle_ms = calls[1];
    }

    // Withdrawal: BIRD's static protocol off, every prefix withdrawn by
    // UPDATEs on the open session, until none is counted.
    const Cpu wcpu0 = cpu_now(control_pid, gobgpd_pid, bird.pid());
    const auto w0 = Clock::now();
    bird.command(std::string("disable ") + kBirdStatic);
    const Phase out = phase(w0, false, "the withdrawal");
    const Cpu wcpu1 = cpu_now(control_pid, gobgpd_pid, bird.pid());
    r.withdraw_ms = out.done;
    r.wd_gap_ms = out.gap;
    if (daemon && env.split)
        r.gobgpd_withdraw_ms = out.rib_done;
    r.wd_cpu_control_ms = delta(wcpu0.control, wcpu1.control);
    r.wd_cpu_gobgpd_ms = delta(wcpu0.gobgpd, wcpu1.gobgpd);
    r.gettables = gettables;
    r.gettable_mean_ms = gettables ? gettable_total / static_cast<double>(gettables) : 0;

    // Back to the start: session off, receiver gone, BIRD's routes back.
    bird.command(std::string("disable ") + kBirdPeer);
    if (!env.keep_logs.empty()) {
        std::error_code ec;
        std::filesystem::create_directories(env.keep_logs, ec);
        const std::string to = env.keep_logs + "/round" + std::to_string(index) + "." + side_name(side);
        if (daemon) {
            std::filesystem::copy_file(daemon->log, to + ".control.log", std::filesystem::copy_options::overwrite_existing, ec);
            std::filesystem::copy_file(daemon->gobgpd_log, to + ".gobgpd.log", std::filesystem::copy_options::overwrite_existing, ec);
        } else {
            std::filesystem::copy_file(bare->log(), to + ".gobgpd.log", std::filesystem::copy_options::overwrite_existing, ec);
        }
    }
    daemon_api.reset();
    daemon.reset();
    bare.reset();
    bird.command(std::string("enable ") + kBirdStatic);
    bird.wait_table_routes(n, std::chrono::seconds(300));
    return r;
}

}  // namespace podfwd::perf::bgp
