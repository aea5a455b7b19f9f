// etcd_bench: the datasets (Flannel leases, Calico blocks), podfwd-control
// started on them, the full-sync rounds beside etcdctl reading the same
// range, and the put/delete-to-table latency.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "common/ipv4.h"
#include "lpm/types.h"
#include "perf/etcd_bench_etcd.h"

namespace podfwd::perf {

inline constexpr const char* kNodeIp = "10.168.0.2";
inline constexpr const char* kUplink = "10.168.0.0/16";
inline constexpr const char* kGateway = "10.168.0.1";
inline constexpr const char* kFlannelPodCidr = "10.0.0.0/24";   // this node's lease
inline constexpr const char* kNodeName = "bench-node";          // no Calico block is affine to it

// One address per route the daemon must install, and what it must answer.
struct Expect {
    Ipv4Addr addr = 0;
    Ipv4Addr via = 0;
    lpm::ForwardMode mode = lpm::ForwardMode::kDrop;
};

struct Dataset {
    std::string layout;        // --etcd-layout
    std::string what;          // "5,000 Flannel leases"
    KeyValues kvs;
    std::vector<Expect> expect;
    std::string range_begin;   // the range the daemon reads (etcdctl reads the same)
    std::string range_end;
};

// Leases 10.(1 + i/256).(i%256).0/24, PublicIP 10.168.(1 + i/250).(1 + i%250),
// host-gw; the Network 10.0.0.0/8 (this node's lease is 10.0.0.0/24).
Dataset flannel_dataset(std::size_t leases);
// `nodes` nodes node-NNN at 10.168.(1 + n/250).(1 + n%250), `per_node` /26
// blocks each, pool 10.0.0.0/8 IPIP Always.
Dataset calico_dataset(std::size_t nodes, std::size_t per_node);
std::string flannel_subnets_dir();
std::string flannel_lease_value(Ipv4Addr public_ip);

struct Env {
    std::string control;    // podfwd-control
    std::string etcdctl;
    std::string tmpdir;
    std::string base;       // segment names: <base>.<layout>
    std::string url;        // etcd
    int port = 0;
    bool pin = true;
    pid_t etcd_pid = -1;
};

// One timed start: spawn -> the table answers every expected address.
struct SyncSample {
    double ms = 0;
    // From the daemon's log (spdlog, millisecond stamps), since the spawn;
    // -1 when the line is missing.
    double read_ms = -1;          // "etcd: read N keys ..."
    double reconciled_ms = -1;    // "table '…' created: …"
    double listening_ms = -1;     // "… listening on …"
    std::size_t routes = 0;       // in the table when it was complete
};

SyncSample sync_once(const Env& env, const Dataset& data);
// etcdctl get of the dataset's range, stdout to /dev/null: spawn to exit, ms.
double etcdctl_once(const Env& env, const Dataset& data);
std::vector<std::string> etcdctl_argv(const Env& env, const Dataset& data);

struct Series {
    std::string name;
    std::string what;
    std::vector<double> ms;
    double p50 = 0, p99 = 0, max = 0, mean = 0;
};

struct LatencyResult {
    // Puts (new leases and changed PublicIPs), and each kind alone; deletes.
    Series put_table, add_table, change_table, delete_table;
    Series put_ack, put_watch, delete_ack, delete_watch;
    Series put_daemon;   // per put: table - watch event (the daemon's own share)
    double sync_ms = 0;
    FsyncStats fsyncs;   // etcd's WAL fsyncs during the timed ops (warm-up included)
    std::string csv;     // every op: "round,op,counted,table_ms,ack_ms,watch_ms\n" rows
};

// podfwd-control on `flannel` (already in etcd), then `puts` puts one at a
// time on a keep-alive connection (half new leases, half changed
// PublicIPs) and puts/2 deletes of the new leases, after 6 warm-up ops.
LatencyResult run_latency(const Env& env, const Dataset& flannel, std::size_t puts);

}  // namespace podfwd::perf
