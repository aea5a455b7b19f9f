// bgp_bench: the addresses and prefixes of the run, interruption, and the
// BIRD 2 peer that originates the pod prefixes (its configuration generated
// into the run's temporary directory, its control socket spoken directly,
// its log read for the moment the session came up).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/ipv4.h"

namespace podfwd::perf::bgp {

// The bench's private network namespace: a veth pair, the node (gobgpd,
// bare or podfwd-control's) on one end, BIRD on the other. eBGP, BIRD
// active, the node passive.
inline constexpr const char* kVethNode = "pfbgpb0";
inline constexpr const char* kVethBird = "pfbgpb1";
inline constexpr const char* kNodeIp = "192.168.77.2";
inline constexpr const char* kBirdIp = "192.168.77.1";
inline constexpr const char* kUplink = "192.168.77.0/24";
inline constexpr std::uint32_t kNodeAs = 64513;
inline constexpr std::uint32_t kBirdAs = 64512;
inline constexpr int kBgpPort = 179;        // the node listens here
inline constexpr int kBirdPort = 1790;      // BIRD's own listener (strict bind), out of the node's way
inline constexpr const char* kBirdPeer = "pfpeer";   // BIRD's protocol names
inline constexpr const char* kBirdStatic = "pods";

// Before any thread exists: a network namespace of the bench's own (lo up,
// the veth pair with kNodeIp/24 and kBirdIp/24). Needs root.
void enter_private_netns();

// SIGINT/SIGTERM/SIGHUP/SIGPIPE: processes registered here are killed (SIGKILL, by
// PID) and interrupted() turns true, so the run unwinds and the destructors
// remove the temporary directory and the table segments. Install after
// Cleanup's own handler.
void install_interrupt_handler();
void track_child(pid_t pid);
void untrack_child(pid_t pid);
int interrupted() noexcept;
void throw_if_interrupted();
// Sleeps `d` unless interrupted (then throws).
void nap(std::chrono::microseconds d);

// n pod prefixes: nine in ten are /26 blocks 10.0.0.0/26, 10.0.0.64/26, ...
// in order; every tenth is a /32 borrowed from an earlier block (block
// 9j, host .33: Calico's borrowed addresses), so /32s sit inside /26s.
std::vector<Prefix4> pod_prefixes(std::size_t n);
// The smallest prefix holding every one of them (the daemon's --accept).
Prefix4 covering_prefix(const std::vector<Prefix4>& prefixes);

double epoch_ms(std::chrono::system_clock::time_point t);
// Milliseconds since the epoch of a "YYYY-MM-DD HH:MM:SS.mmm" stamp (local time).
std::optional<double> stamp_epoch_ms(const std::string& text);

// A BIRD 2 of the bench's own: `bird -f -c CONF -s SOCK -P PID`, its files in
// `dir`. The static protocol `pods` holds the prefixes (blackhole); the BGP
// protocol `pfpeer` exports them to kNodeIp:179 and starts disabled.
class Bird {
public:
    Bird(std::string binary, std::string dir) : binary_(std::move(binary)), dir_(std::move(dir)) {}
    Bird(const Bird&) = delete;
    Bird& operator=(const Bird&) = delete;
    ~Bird();

    // Writes the configuration, starts BIRD, waits (bounded) until its
    // table holds every prefix.
    void start(const std::vector<Prefix4>& prefixes);
    void stop();

    // One CLI command on the control socket (birdc's protocol); the reply's
    // text. Throws on a reply code of 8000 and up (BIRD's errors).
    std::string command(const std::string& cmd);
    // Routes in master4 ("show route count").
    std::size_t table_routes();
    // Polls (bounded) until master4 holds n routes.
    void wait_table_routes(std::size_t n, std::chrono::seconds timeout);
    // "show protocols <name>": the state column's line, for messages.
    std::string protocol_line(const std::string& name);

    // Where the log ends now; then the stamp (ms since the epoch, BIRD's
    // clock, 1 ms grain) of the first "pfpeer: State changed to up" after it.
    std::size_t log_mark() const;
    std::optional<double> peer_up_after(std::size_t mark) const;

    pid_t pid() const noexcept { return pid_; }
    double load_ms() const noexcept { return load_ms_; }
    std::size_t config_bytes() const noexcept { return config_bytes_; }
    std::string version() const { return version_; }
    const std::string& log_path() const noexcept { return log_; }

private:
    int connect_socket();
    std::string binary_, dir_, conf_, sock_, pidfile_, log_, version_;
    pid_t pid_ = -1;
    int fd_ = -1;
    std::string buf_;
    double load_ms_ = 0;
    std::size_t config_bytes_ = 0;
};

}  // namespace podfwd::perf::bgp
