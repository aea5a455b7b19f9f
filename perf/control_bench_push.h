// control_bench, part 1: routes pushed from the RIB into the table, in
// process (Rib + NeighbourTable + TableSync over a fresh TableWriter), and
// the kernel's own FIB insert rate for the same routes (`ip -batch`) as the
// reference measured in the same run.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/ipv4.h"

namespace podfwd::perf {

// Addressing shared by every part of the bench: the node and its uplink
// subnet (the bench's private netns gives the node this address).
inline constexpr const char* kNodeIp = "10.168.0.2";
inline constexpr const char* kUplink = "10.168.0.0/24";
inline constexpr const char* kGateway = "10.168.0.1";

struct PushOptions {
    std::size_t routes = 100000;
    unsigned repeats = 3;         // fresh table each; the best round counts
    std::size_t sample = 20000;   // addresses checked after every round
    std::uint64_t seed = 0x706f6466776400ULL;
    std::string tmpdir;           // for the kernel's batch files
    std::string segment_prefix;   // unique per run
};

// Routes per second of one round, best over the repeats.
struct RoundRates {
    double insert = 0;
    double update = 0;   // every route moves to another node
    double withdraw = 0;
};

struct PushResult {
    std::size_t routes = 0;
    std::size_t nodes = 0;
    std::size_t nexthops = 0;             // records after the insert round
    std::string mix;                      // "/24:45000 /26:50000 /32:5000"
    RoundRates ours;
    std::vector<RoundRates> ours_runs;    // every repeat
    RoundRates kernel;                    // ip -batch, table 100
    std::vector<RoundRates> kernel_runs;
    std::size_t checked = 0;              // addresses checked per round
};

// Needs the uplink (kUplink) configured on an interface that is up, for the
// kernel's routes via its nodes. Throws on any error or disagreement.
PushResult run_push(const PushOptions& options);

}  // namespace podfwd::perf
