#include "perf/etcd_bench_run.h"

#include <sched.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <thread>

#include "lpm/reader.h"
#include "perf/bench_util.h"
#include "perf/control_bench_proc.h"

namespace podfwd::perf {

namespace {

constexpr auto kSyncTimeout = std::chrono::seconds(60);
constexpr auto kVisibleTimeout = std::chrono::seconds(5);
constexpr std::size_t kWarmupRounds = 3;   // add + change + delete each

Ipv4Addr ip4(unsigned a, unsigned b, unsigned c, unsigned d) {
    return static_cast<Ipv4Addr>(a << 24 | b << 16 | c << 8 | d);
}

// The subnet key component Flannel and Calico write: 10.1.2.0-24.
std::string key_component(const Prefix4& p) { return format_ipv4(p.addr) + "-" + std::to_string(p.len); }

// A process of ours, stopped (SIGTERM, by PID) when this goes.
struct Child {
    pid_t pid = -1;
    Child() = default;
    explicit Child(pid_t p) : pid(p) { track_child(p); }
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;
    ~Child() { end(); }
    void end() {
        if (pid > 0) {
            stop(pid);
            untrack_child(pid);
        }
        pid = -1;
    }
};

// The daemon's table and files for one layout; fresh for every start.
struct DaemonFiles {
    std::string table, socket, state, log;
    DaemonFiles(const Env& env, const std::string& layout)
        : table(env.base + "." + layout),
          socket(env.tmpdir + "/" + layout + ".sock"),
          state(env.tmpdir + "/" + layout + ".state"),
          log(env.tmpdir + "/" + layout + ".log") {}
    void reset() const {
        Cleanup::remove_segment(table);
        std::error_code ec;
        std::filesystem::remove_all(state, ec);
        std::filesystem::remove(socket, ec);
        std::filesystem::remove(log, ec);
        std::filesystem::create_directories(state);
        Cleanup::add_segment(table);
    }
};

pid_t spawn_daemon(const Env& env, const Dataset& data, const DaemonFiles& f) {
    std::vector<std::string> argv = {env.control, "--node-ip", kNodeIp, "--uplink", kUplink, "--gateway", kGateway,
                                     "--table", f.table, "--socket", f.socket, "--state-dir", f.state,
                                     "--max-routes", "65536", "--etcd-endpoints", env.url, "--accept", "10.0.0.0/8", "--etcd-layout",
                                     data.layout, "--node-name", kNodeName, "--log-level", "info"};
    if (data.layout == "flannel") {
        argv.push_back("--pod-cidr");
        argv.push_back(kFlannelPodCidr);
    }
    return spawn(argv, f.log);
}

// The table as a dataplane sees it, opened once the daemon has created it.
class TablePoller {
public:
    explicit TablePoller(std::string table) : table_(std::move(table)) {}
    ~TablePoller() {
        slot_.reset();   // before the view it belongs to
        view_.reset();
    }
    bool open() {
        if (view_)
            return true;
        auto view = lpm::TableView::open(table_);
        if (!view)
            return false;   // not there yet, or being created
        view_.emplace(std::move(*view));
        slot_.emplace(must(view_->register_reader(), "register a reader on " + table_));
        slot_->offline();
        return true;
    }
    std::uint32_t routes() const { return view_->stats().routes; }
    // Every expected address answers its node and mode.
    bool all_right(const std::vector<Expect>& expect) {
        slot_->online();
        bool right = true;
        for (const Expect& e : expect) {
            const lpm::NextHop* nh = view_->nexthop(view_->lookup(e.addr));
            if (nh == nullptr || nh->node_ip != e.via || nh->mode != e.mode) {
                right = false;
                break;
            }
        }
        slot_->quiescent();
        slot_->offline();
        return right;
    }
    std::string first_wrong(const std::vector<Expect>& expect) {
        slot_->online();
        std::string out = "every address right";
        for (const Expect& e : expect) {
            const lpm::NextHopId id = view_->lookup(e.addr);
            const lpm::NextHop* nh = view_->nexthop(id);
            if (nh == nullptr || nh->node_ip != e.via || nh->mode != e.mode) {
                out = format_ipv4(e.addr) + " answers next hop " + std::to_string(id) +
                      (nh ? std::string(" (") + lpm::mode_name(nh->mode) + " via " + format_ipv4(nh->node_ip) + ")" : "") +
                      ", expected " + lpm::mode_name(e.mode) + " via " + format_ipv4(e.via);
                break;
            }
        }
        slot_->quiescent();
        slot_->offline();
        return out;
    }
    const lpm::TableView& view() const { return *view_; }
    lpm::ReaderSlot& slot() { return *slot_; }

private:
    std::string table_;
    std::optional<lpm::TableView> view_;
    std::optional<lpm::ReaderSlot> slot_;
};

// Milliseconds since the epoch of a spdlog stamp "2024-12-02T05:10:11.123" (local time).
std::optional<double> log_stamp_ms(const std::string& line) {
    std::tm tm{};
    const char* rest = ::strptime(line.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
    if (rest == nullptr || *rest != '.')
        return std::nullopt;
    tm.tm_isdst = -1;
    const std::time_t t = std::mktime(&tm);
    return static_cast<double>(t) * 1000.0 + std::atof(rest + 1);
}

double epoch_ms(std::chrono::system_clock::time_point t) {
    return std::chrono::duration<double, std::milli>(t.time_since_epoch()).count();
}

// Spawns the daemon on `data` and polls (every 100 µs) until the table
// answers every expected address; the time from the spawn.
SyncSample sync_daemon(const Env& env, const Dataset& data, const DaemonFiles& f, Child& daemon,
                       TablePoller& table) {
    const auto wall0 = std::chrono::system_clock::now();
    const auto t0 = Clock::now();
    daemon.pid = spawn_daemon(env, data, f);
    track_child(daemon.pid);
    SyncSample s;
    for (;;) {
        throw_if_interrupted();
        int status = 0;
        if (!alive(daemon.pid, &status)) {
            untrack_child(daemon.pid);
            daemon.pid = -1;
            throw std::runtime_error("podfwd-control exited (" + describe_status(status) + "):\n" + read_file(f.log));
        }
        if (table.open() && table.routes() >= data.expect.size() && table.all_right(data.expect)) {
            s.ms = ms_since(t0, Clock::now());
            s.routes = table.routes();
            break;
        }
        if (Clock::now() - t0 > kSyncTimeout)
            throw std::runtime_error("podfwd-control: the table did not hold " + data.what + " within 60 s (" +
                                     (table.open() ? std::to_string(table.routes()) + " routes; " +
                                                         table.first_wrong(data.expect)
                                                   : std::string("no table")) +
                                     "); its log:\n" + read_file(f.log));
        std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    // Not timed: the daemon goes on to listen on its socket; its stamp is in the log.
    for (const auto until = Clock::now() + std::chrono::seconds(5);
         read_file(f.log, 1 << 20).find("listening on") == std::string::npos && Clock::now() < until;)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    std::ifstream log(f.log);
    const double base = epoch_ms(wall0);
    for (std::string line; std::getline(log, line);) {
        const auto stamp = log_stamp_ms(line);
        if (!stamp)
            continue;
        const double at = *stamp - base;
        if (s.read_ms < 0 && line.find("etcd: read ") != std::string::npos)
            s.read_ms = at;
        else if (s.reconciled_ms < 0 && line.find("table '") != std::string::npos && line.find(" created") != std::string::npos)
            s.reconciled_ms = at;
        else if (s.listening_ms < 0 && line.find("listening on") != std::string::npos)
            s.listening_ms = at;
    }
    return s;
}

// One timed operation: the times (from just before the send) at which the
// table answered, etcd acknowledged, and the bench's own watch saw the event.
struct Times {
    double table = 0, ack = 0, watch = 0;
};

template <class Answered>
Times timed_op(HttpConnection& http, WatchStream& watch, TablePoller& table, const std::string& path,
               const std::string& body, const std::string& key, Answered answered, const std::string& what) {
    std::optional<double> t_table, t_ack, t_watch;
    lpm::ReaderSlot& slot = table.slot();
    const auto t0 = Clock::now();
    http.send_post(path, body);
    slot.online();
    for (;;) {
        if (!t_table && answered(table.view()))
            t_table = ms_since(t0, Clock::now());
        slot.quiescent();
        if (!t_ack && http.response_ready())
            t_ack = ms_since(t0, Clock::now());
        if (!t_watch && watch.saw(key))
            t_watch = ms_since(t0, Clock::now());
        if (t_table && t_ack && t_watch)
            break;
        if (Clock::now() - t0 > kVisibleTimeout || interrupted()) {
            slot.offline();
            throw_if_interrupted();
            throw std::runtime_error(what + ": not done after 5 s (table " + (t_table ? "yes" : "no") +
                                     ", etcd's answer " + (t_ack ? "yes" : "no") + ", watch event " +
                                     (t_watch ? "yes" : "no") + ")");
        }
        ::sched_yield();   // lets the daemon or etcd run if they share this CPU
    }
    slot.offline();
    const std::string answer = http.read_response();
    if (answer.find("\"header\"") == std::string::npos)
        throw std::runtime_error(what + ": etcd answered " + answer.substr(0, 200));
    return Times{*t_table, *t_ack, *t_watch};
}

}  // namespace

std::string flannel_subnets_dir() { return "/coreos.com/network/subnets/"; }

std::string flannel_lease_value(Ipv4Addr public_ip) {
    return R"({"PublicIP":")" + format_ipv4(public_ip) +
           R"(","PublicIPv6":null,"BackendType":"host-gw","BackendData":null})";
}

Dataset flannel_dataset(std::size_t leases) {
    if (leases > 60000)
        throw std::invalid_argument("at most 60,000 leases");
    Dataset d;
    d.layout = "flannel";
    d.what = with_commas(leases) + " Flannel leases";
    d.kvs.emplace_back("/coreos.com/network/config",
                       R"({"Network":"10.0.0.0/8","SubnetLen":24,"Backend":{"Type":"host-gw"}})");
    for (std::size_t i = 0; i < leases; ++i) {
        const Prefix4 subnet{ip4(10, 1 + static_cast<unsigned>(i / 256), i % 256, 0), 24};
        const Ipv4Addr node = ip4(10, 168, 1 + static_cast<unsigned>(i / 250), 1 + i % 250);
        d.kvs.emplace_back(flannel_subnets_dir() + key_component(subnet), flannel_lease_value(node));
        d.expect.push_back({subnet.addr | 0x2a, node, lpm::ForwardMode::kHostGw});
    }
    d.range_begin = "/coreos.com/network/";
    d.range_end = prefix_end(d.range_begin);
    return d;
}

Dataset calico_dataset(std::size_t nodes, std::size_t per_node) {
    if (nodes > 10000 || nodes * per_node > 200000)
        throw std::invalid_argument("at most 10,000 nodes and 200,000 blocks");
    Dataset d;
    d.layout = "calico";
    d.what = with_commas(nodes * per_node) + " Calico blocks (" + std::to_string(nodes) + " nodes)";
    const std::string res = "/calico/resources/v3/projectcalico.org/";
    d.kvs.emplace_back(res + "ippools/default",
                       R"({"kind":"IPPool","apiVersion":"projectcalico.org/v3","metadata":{"name":"default"},)"
                       R"("spec":{"cidr":"10.0.0.0/8","ipipMode":"Always","vxlanMode":"Never","blockSize":26}})");
    for (std::size_t n = 0; n < nodes; ++n) {
        char name[32];
        std::snprintf(name, sizeof name, "node-%04zu", n);
        const Ipv4Addr node = ip4(10, 168, 1 + static_cast<unsigned>(n / 250), 1 + n % 250);
        d.kvs.emplace_back(res + "nodes/" + name, R"({"kind":"Node","spec":{"bgp":{"ipv4Address":")" +
                                                      format_ipv4(node) + R"(/16"}}})");
        for (std::size_t b = 0; b < per_node; ++b) {
            const std::size_t i = n * per_node + b;
            const Prefix4 block{ip4(10, 1 + static_cast<unsigned>(i / 1024), (i % 1024) / 4, (i % 4) * 64), 26};
            d.kvs.emplace_back("/calico/ipam/v2/assignment/ipv4/block/" + key_component(block),
                               R"({"cidr":")" + block.str() + R"(","affinity":"host:)" + name +
                                   R"(","allocations":[],"unallocated":[],"attributes":[]})");
            d.expect.push_back({block.addr | 0x2a, node, lpm::ForwardMode::kIpip});
        }
    }
    d.range_begin = "/calico/ipam/v2/assignment/ipv4/block/";
    d.range_end = prefix_end(res + "nodes/");
    return d;
}

SyncSample sync_once(const Env& env, const Dataset& data) {
    const DaemonFiles f(env, data.layout);
    f.reset();
    Child daemon;
    SyncSample s;
    {
        TablePoller table(f.table);
        s = sync_daemon(env, data, f, daemon, table);
    }
    daemon.end();
    Cleanup::remove_segment(f.table);
    return s;
}

std::vector<std::string> etcdctl_argv(const Env& env, const Dataset& data) {
    std::vector<std::string> argv = {env.etcdctl, "--endpoints", env.url, "get"};
    if (data.range_end == prefix_end(data.range_begin)) {
        argv.push_back("--prefix");
        argv.push_back(data.range_begin);
    } else {
        argv.push_back(data.range_begin);
        argv.push_back(data.range_end);
    }
    return argv;
}

double etcdctl_once(const Env& env, const Dataset& data) {
    const std::vector<std::string> argv = etcdctl_argv(env, data);
    const auto t0 = Clock::now();
    const pid_t pid = spawn(argv);   // stdout and stderr to /dev/null
    track_child(pid);
    const int status = reap(pid, std::chrono::seconds(60), "etcdctl");
    const double ms = ms_since(t0, Clock::now());
    untrack_child(pid);
    throw_if_interrupted();
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        const std::string log = env.tmpdir + "/etcdctl.out";
        const pid_t again = spawn(argv, log);
        (void)reap(again, std::chrono::seconds(60), "etcdctl");
        throw std::runtime_error("etcdctl get: " + describe_status(status) + ": " + read_file(log, 1000));
    }
    return ms;
}

LatencyResult run_latency(const Env& env, const Dataset& flannel, std::size_t puts) {
    const DaemonFiles f(env, flannel.layout);
    f.reset();
    const Placement placement(env.pin);
    placement.process_on_others(env.etcd_pid);
    placement.self_on_others();   // the daemon inherits it at spawn
    Child daemon;
    LatencyResult r;
    {
        TablePoller table(f.table);
        r.sync_ms = sync_daemon(env, flannel, f, daemon, table).ms;
        placement.self_on_poller();
        HttpConnection http(env.port);
        WatchStream watch(env.port, flannel_subnets_dir(), prefix_end(flannel_subnets_dir()));

        r.put_table = {"put -> table", "a lookup in the subnet answers the lease's PublicIP (host-gw)", {}};
        r.add_table = {"  new lease", "a new /24 lease (a new node, a new next-hop record)", {}};
        r.change_table = {"  new PublicIP", "an existing lease moves to another PublicIP", {}};
        r.delete_table = {"delete -> table", "the new lease deleted: the lookup answers no route", {}};
        r.put_ack = {"put -> etcd's answer", "the HTTP response to the put (etcd: raft, WAL fsync, apply)", {}};
        r.put_watch = {"put -> watch event", "the bench's own /v3/watch stream carries the event", {}};
        r.put_daemon = {"put: table - watch", "per put: table minus watch event, the daemon's share (< 0: its stream beat ours)", {}};
        r.delete_ack = {"delete -> etcd's answer", "", {}};
        r.delete_watch = {"delete -> watch event", "", {}};

        const FsyncStats fsyncs_before = wal_fsyncs(env.port);
        const std::size_t rounds = kWarmupRounds + (puts + 1) / 2;
        for (std::size_t k = 0; k < rounds; ++k) {
            const bool counted = k >= kWarmupRounds;
            const auto j = static_cast<unsigned>(k);
            // New lease 10.(128 + j/256).(j%256).0/24 of a new node 10.168.(200 + j/250).(1 + j%250).
            const Prefix4 subnet{ip4(10, 128 + j / 256, j % 256, 0), 24};
            const std::string key = flannel_subnets_dir() + key_component(subnet);
            const Ipv4Addr node = ip4(10, 168, 200 + j / 250, 1 + j % 250);
            const Ipv4Addr addr = subnet.addr | 0x2a;
            const auto answers = [addr](Ipv4Addr via) {
                return [addr, via](const lpm::TableView& v) {
                    const lpm::NextHop* nh = v.nexthop(v.lookup(addr));
                    return nh != nullptr && nh->node_ip == via && nh->mode == lpm::ForwardMode::kHostGw;
                };
            };
            const Times add = timed_op(http, watch, table, "/v3/kv/put", put_body(key, flannel_lease_value(node)),
                                       key, answers(node), "put " + key);
            // An existing lease (spread over the set) moves to 10.168.(230 + j/250).(1 + j%250).
            const Expect& old = flannel.expect[(k * 997) % flannel.expect.size()];
            const Prefix4 moved{old.addr & prefix_mask(24), 24};
            const std::string moved_key = flannel_subnets_dir() + key_component(moved);
            const Ipv4Addr new_ip = ip4(10, 168, 230 + j / 250, 1 + j % 250);
            const auto moved_addr = old.addr;
            const Times change = timed_op(
                http, watch, table, "/v3/kv/put", put_body(moved_key, flannel_lease_value(new_ip)), moved_key,
                [moved_addr, new_ip](const lpm::TableView& v) {
                    const lpm::NextHop* nh = v.nexthop(v.lookup(moved_addr));
                    return nh != nullptr && nh->node_ip == new_ip;
                },
                "put " + moved_key);
            const Times del = timed_op(
                http, watch, table, "/v3/kv/deleterange", delete_body(key), key,
                [addr](const lpm::TableView& v) { return v.lookup(addr) == lpm::kNoRoute; }, "delete " + key);
            for (const auto& [t, op] : {std::pair{add, "add"}, std::pair{change, "change"}, std::pair{del, "delete"}}) {
                char row[160];
                std::snprintf(row, sizeof row, "%zu,%s,%d,%.4f,%.4f,%.4f\n", k, op, counted ? 1 : 0, t.table, t.ack,
                              t.watch);
                r.csv += row;
            }
            if (!counted)
                continue;
            for (const auto& [t, kind] : {std::pair{add, &r.add_table}, std::pair{change, &r.change_table}})
                if (r.put_table.ms.size() < puts) {
                    r.put_table.ms.push_back(t.table);
                    r.put_ack.ms.push_back(t.ack);
                    r.put_watch.ms.push_back(t.watch);
                    r.put_daemon.ms.push_back(t.table - t.watch);
                    kind->ms.push_back(t.table);
                }
            r.delete_table.ms.push_back(del.table);
            r.delete_ack.ms.push_back(del.ack);
            r.delete_watch.ms.push_back(del.watch);
        }
        const FsyncStats after = wal_fsyncs(env.port);
        r.fsyncs = {after.count - fsyncs_before.count, after.seconds - fsyncs_before.seconds,
                    after.over_8ms - fsyncs_before.over_8ms};
    }
    daemon.end();
    Cleanup::remove_segment(f.table);
    for (Series* s : {&r.put_table, &r.add_table, &r.change_table, &r.delete_table, &r.put_ack, &r.put_watch,
                      &r.put_daemon, &r.delete_ack, &r.delete_watch})
        set_percentiles(*s);
    return r;
}

}  // namespace podfwd::perf
