// control_bench, parts 2 and 3: latency from a route add to a change the
// dataplane sees (a TableView lookup answering the new route), through a
// running podfwd-control: `podfwdctl route add` and the control socket
// directly; `ip route add` and one RTM_NEWROUTE sent by the bench itself.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace podfwd::perf {

// The bench's private network namespace: unshare(CLONE_NEWNET), lo up, a
// veth pair with the node's address (kNodeIp) on one end, both ends up.
// Call before any thread starts.
void enter_private_netns();

struct LatencyOptions {
    std::size_t adds = 200;    // per path
    std::size_t warmup = 5;    // per path, not counted
    std::string control;       // podfwd-control
    std::string ctl;           // podfwdctl
    std::string tmpdir;
    std::string table;         // the daemon's segment name (unique)
    bool pin = true;           // poller alone on the last CPU, the rest elsewhere
};

struct Latencies {
    std::string name;
    std::string what;
    std::vector<double> ms;   // one per add
    double p50 = 0, p99 = 0, max = 0, mean = 0;
};

struct LatencyResult {
    Latencies cli;       // posix_spawn podfwdctl route add
    Latencies socket;    // route.add over the control socket, no process
    Latencies ip;        // posix_spawn ip route add ... proto bird table 100
    Latencies netlink;   // RTM_NEWROUTE from the bench's own netlink socket
};

// Starts podfwd-control (--kernel --kernel-table 100 --kernel-protocol bird),
// measures the four paths interleaved, stops it. Throws on any error; a
// route that does not reach the table within 5 s is an error.
LatencyResult run_latency(const LatencyOptions& options);

}  // namespace podfwd::perf
