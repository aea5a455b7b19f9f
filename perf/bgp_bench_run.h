// bgp_bench: one timed round, BIRD -> a receiver (the bare gobgpd, or
// podfwd-control with its own gobgpd), from the session coming up to every
// prefix received, then the withdrawal of all of them.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/ipv4.h"
#include "perf/bgp_bench_bird.h"

namespace podfwd::perf::bgp {

enum class Side { kGobgpd, kPodfwd };
const char* side_name(Side s) noexcept;

struct Env {
    std::string control;    // podfwd-control
    std::string gobgpd;
    std::string tmpdir;
    std::string base;       // table and file names: <base>.<n>
    std::chrono::microseconds poll{5000};
    bool split = true;      // podfwd rounds also poll their gobgpd's RIB (as the bare one is polled)
    std::uint32_t restart_time = 120;   // graceful restart, as podfwd-control's default
    std::string keep_logs;  // copy each round's podfwd-control and gobgpd logs here ("" : no)
};

// One round. Times in ms; -1: not seen.
struct Round {
    Side side = Side::kGobgpd;
    std::size_t prefixes = 0;
    double start_ms = 0;        // receiver spawn -> configured and listening for BIRD
    double up_lag_ms = -1;      // receiver's ListPeer said established, minus BIRD's "up" stamp
    double first_ms = -1;       // BIRD up -> the first prefix counted
    double all_ms = -1;         // -> every one (the timed figure)
    double gap_ms = 0;          // its resolution: the last poll short of it was this much earlier
    double gobgpd_all_ms = -1;  // podfwd rounds with split: -> its gobgpd's RIB holds every one
    double rib_gap_ms = 0;
    double withdraw_ms = -1;    // `disable pods` sent -> none left
    double wd_gap_ms = 0;
    double gobgpd_withdraw_ms = -1;
    std::size_t polls = 0, gettables = 0;
    double gettable_mean_ms = 0, gettable_max_ms = 0;   // the RIB count's cost (GetTable walks gobgpd's RIB)
    double gettable_idle_ms = -1;                       // bare rounds: one GetTable on the full, idle RIB
    // CPU time (user + system) from `enable` to every prefix counted.
    double cpu_control_ms = -1, cpu_gobgpd_ms = -1, cpu_bird_ms = -1;
    double wd_cpu_control_ms = -1, wd_cpu_gobgpd_ms = -1;
    double rate() const { return all_ms > 0 ? static_cast<double>(prefixes) / (all_ms / 1e3) : 0; }
    double withdraw_rate() const { return withdraw_ms > 0 ? static_cast<double>(prefixes) / (withdraw_ms / 1e3) : 0; }
};

// Starts the receiver, enables BIRD's session, polls until every prefix is
// counted, checks podfwd's table (every prefix answers host-gw via BIRD),
// disables BIRD's static protocol and polls until none is left; then
// disables the session, stops the receiver and restores BIRD's routes.
// `index` names the round's files.
Round run_round(const Env& env, Bird& bird, Side side, const std::vector<Prefix4>& prefixes, unsigned index);

// user + system CPU of pid so far (ms), -1 if it is gone.
double cpu_ms(pid_t pid);

}  // namespace podfwd::perf::bgp
