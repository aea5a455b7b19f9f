#include "perf/control_bench_latency.h"

#include <arpa/inet.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <thread>

#include "lpm/reader.h"
#include "perf/bench_util.h"
#include "perf/control_bench_proc.h"
#include "perf/control_bench_push.h"

namespace podfwd::perf {

namespace {

constexpr auto kVisibleTimeout = std::chrono::seconds(5);
constexpr int kKernelTable = 100;
constexpr const char* kCliVia = "10.168.0.9";
constexpr const char* kKernelVia = "10.168.0.7";

// Path k's i-th prefix: 172.(16 + 4k + i / 256).(i % 256).0/24, 1024 per path.
Prefix4 path_prefix(unsigned path, std::size_t i) {
    if (i >= 1024)
        throw std::runtime_error("at most 1024 adds per path");
    const Ipv4Addr a = (Ipv4Addr{172} << 24) | (Ipv4Addr(16 + 4 * path + i / 256) << 16) | (Ipv4Addr(i % 256) << 8);
    return Prefix4{a, 24};
}

class Socket {
public:
    explicit Socket(int fd) : fd_(fd) {}
    Socket(const Socket&) = delete;
    Socket& operator=(const Socket&) = delete;
    ~Socket() {
        if (fd_ >= 0)
            ::close(fd_);
    }
    int fd() const noexcept { return fd_; }

private:
    int fd_;
};

// --- the control socket ---

int connect_control(const std::string& path) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        throw system_error("socket");
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
        ::close(fd);
        return -1;
    }
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

void send_line(int fd, const std::string& line) {
    if (::send(fd, line.data(), line.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(line.size()))
        throw system_error("send to the control socket");
}

std::string read_line(int fd) {
    std::string out;
    char buf[4096];
    while (out.empty() || out.back() != '\n') {
        const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
        if (n <= 0)
            throw std::runtime_error("no response on the control socket");
        out.append(buf, static_cast<std::size_t>(n));
    }
    return out;
}

bool control_answers(const std::string& path) {
    const int fd = connect_control(path);
    if (fd < 0)
        return false;
    Socket s(fd);
    try {
        send_line(fd, "{\"op\": \"status\"}\n");
        return read_line(fd).find("\"ok\":true") != std::string::npos;
    } catch (const std::exception&) {
        return false;
    }
}

// --- netlink ---

class RouteNetlink {
public:
    RouteNetlink() : sock_(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE)) {
        if (sock_.fd() < 0)
            throw system_error("netlink socket");
        timeval tv{5, 0};
        ::setsockopt(sock_.fd(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    }

    // RTM_NEWROUTE prefix via gw proto bird table 100, acknowledged.
    void send_add(const Prefix4& prefix, Ipv4Addr gw) {
        struct {
            nlmsghdr nh;
            rtmsg rt;
            std::array<char, 64> attrs;
        } req{};
        req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(rtmsg));
        req.nh.nlmsg_type = RTM_NEWROUTE;
        req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
        req.nh.nlmsg_seq = ++seq_;
        req.rt.rtm_family = AF_INET;
        req.rt.rtm_dst_len = prefix.len;
        req.rt.rtm_table = kKernelTable;
        req.rt.rtm_protocol = RTPROT_BIRD;
        req.rt.rtm_scope = RT_SCOPE_UNIVERSE;
        req.rt.rtm_type = RTN_UNICAST;
        const auto attr = [&](unsigned short type, std::uint32_t value) {
            auto* rta = reinterpret_cast<rtattr*>(reinterpret_cast<char*>(&req) + NLMSG_ALIGN(req.nh.nlmsg_len));
            rta->rta_type = type;
            rta->rta_len = RTA_LENGTH(sizeof(value));
            std::memcpy(RTA_DATA(rta), &value, sizeof(value));
            req.nh.nlmsg_len = NLMSG_ALIGN(req.nh.nlmsg_len) + RTA_ALIGN(rta->rta_len);
        };
        attr(RTA_DST, htonl(prefix.addr));
        attr(RTA_GATEWAY, htonl(gw));
        attr(RTA_TABLE, kKernelTable);
        sockaddr_nl kernel{};
        kernel.nl_family = AF_NETLINK;
        if (::sendto(sock_.fd(), &req, req.nh.nlmsg_len, 0, reinterpret_cast<const sockaddr*>(&kernel),
                     sizeof(kernel)) != static_cast<ssize_t>(req.nh.nlmsg_len))
            throw system_error("netlink send");
    }

    void read_ack() {
        alignas(nlmsghdr) char buf[4096];
        const ssize_t n = ::recv(sock_.fd(), buf, sizeof(buf), 0);
        if (n < static_cast<ssize_t>(NLMSG_LENGTH(sizeof(nlmsgerr))))
            throw system_error("netlink ack");
        const auto* nh = reinterpret_cast<const nlmsghdr*>(buf);
        const auto* err = static_cast<const nlmsgerr*>(NLMSG_DATA(nh));
        if (nh->nlmsg_type != NLMSG_ERROR || nh->nlmsg_seq != seq_ || err->error != 0)
            throw std::runtime_error(std::string("RTM_NEWROUTE refused: ") + std::strerror(-err->error));
    }

private:
    Socket sock_;
    std::uint32_t seq_ = 0;
};

// --- the table ---

// Polls the table (a registered reader, online only while polling) until
// addr resolves to a record via `node`; the time it did.
Clock::time_point wait_visible(const lpm::TableView& view, lpm::ReaderSlot& slot, Ipv4Addr addr, Ipv4Addr node,
                               const std::string& what) {
    const auto deadline = Clock::now() + kVisibleTimeout;
    slot.online();
    for (;;) {
        const lpm::NextHopId id = view.lookup(addr);
        const auto now = Clock::now();
        if (id != lpm::kNoRoute) {
            const lpm::NextHop* nh = view.nexthop(id);
            const bool right = nh != nullptr && nh->node_ip == node;
            slot.quiescent();
            slot.offline();
            if (!right)
                throw std::runtime_error(what + ": " + format_ipv4(addr) + " resolves to next hop " +
                                         std::to_string(id) + ", not a record via " + format_ipv4(node));
            return now;
        }
        slot.quiescent();
        if (now > deadline) {
            slot.offline();
            throw std::runtime_error(what + ": " + format_ipv4(addr) + " not in the table after 5 s");
        }
        // Lets the daemon (or the child) run if it shares this CPU.
        ::sched_yield();
    }
}

}  // namespace

void enter_private_netns() {
    if (::unshare(CLONE_NEWNET) != 0)
        throw system_error("unshare(CLONE_NEWNET) (needs root)");
    run({"ip", "link", "set", "lo", "up"});
    run({"ip", "link", "add", "pfbench0", "type", "veth", "peer", "name", "pfbench1"});
    run({"ip", "addr", "add", std::string(kNodeIp) + "/24", "dev", "pfbench0"});
    run({"ip", "link", "set", "pfbench0", "up"});
    run({"ip", "link", "set", "pfbench1", "up"});
}

LatencyResult run_latency(const LatencyOptions& o) {
    const std::string sock = o.tmpdir + "/control.sock";
    const std::string state = o.tmpdir + "/state";
    const std::string log = o.tmpdir + "/control.log";
    const std::string ctl_log = o.tmpdir + "/podfwdctl.log";
    const std::string cli_state = state + "/" + o.table + ".cli.json";
    for (const std::string& file : {sock, log, ctl_log, cli_state, cli_state + ".tmp"})
        Cleanup::add_file(file);
    Cleanup::add_dir(state);
    std::filesystem::create_directories(state);

    Cleanup::add_segment(o.table);
    const Placement placement(o.pin);
    placement.self_on_others();
    const pid_t daemon = spawn({o.control, "--node-ip", kNodeIp, "--uplink", kUplink, "--gateway", kGateway, "--table",
                                o.table, "--socket", sock, "--state-dir", state, "--kernel", "--kernel-table",
                                std::to_string(kKernelTable), "--kernel-protocol", "bird", "--accept", "172.16.0.0/12", "--log-level", "warn"},
                               log);
    struct Stopper {
        pid_t pid;
        ~Stopper() { stop(pid); }
    } stopper{daemon};

    placement.self_on_poller();
    const auto started = Clock::now();
    while (!control_answers(sock)) {
        int status = 0;
        if (!alive(daemon, &status))
            throw std::runtime_error("podfwd-control exited (" + describe_status(status) + "):\n" + read_file(log));
        if (Clock::now() - started > std::chrono::seconds(20))
            throw std::runtime_error("podfwd-control did not answer on its socket within 20 s:\n" + read_file(log));
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    const auto view = must(lpm::TableView::open(o.table), "open the daemon's table");
    auto slot = must(view.register_reader(), "register a reader");
    slot.offline();
    RouteNetlink netlink;
    const Ipv4Addr cli_via = must(parse_ipv4(kCliVia), "via");
    const Ipv4Addr kernel_via = must(parse_ipv4(kKernelVia), "via");

    LatencyResult r;
    r.cli = {"podfwdctl", "posix_spawn podfwdctl route add P via " + std::string(kCliVia) + " mode ipip", {}};
    r.socket = {"control socket", "route.add sent on a fresh connection by the bench (no process start)", {}};
    r.ip = {"ip route add", "posix_spawn ip route add P via " + std::string(kKernelVia) + " proto bird table 100", {}};
    r.netlink = {"RTM_NEWROUTE", "the same route sent on the bench's own netlink socket (no process start)", {}};

    const auto check_ctl = [&](pid_t pid, const std::string& prefix) {
        const int status = reap(pid, std::chrono::seconds(10), "podfwdctl");
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            throw std::runtime_error("podfwdctl route add " + prefix + ": " + describe_status(status) + ": " +
                                     read_file(ctl_log));
    };
    const auto inside = [](const Prefix4& p) { return p.addr | 0x2a; };

    // Interleaved: the four paths see the same machine.
    for (std::size_t i = 0; i < o.warmup + o.adds; ++i) {
        const bool counted = i >= o.warmup;
        {
            const Prefix4 p = path_prefix(0, i);
            const auto t0 = Clock::now();
            const pid_t pid = spawn({o.ctl, "--socket", sock, "route", "add", p.str(), "via", kCliVia, "mode", "ipip"},
                                    ctl_log);
            placement.child(pid);
            const auto t1 = wait_visible(view, slot, inside(p), cli_via, "podfwdctl route add");
            check_ctl(pid, p.str());
            if (counted)
                r.cli.ms.push_back(ms_since(t0, t1));
        }
        {
            const Prefix4 p = path_prefix(1, i);
            const int fd = connect_control(sock);
            if (fd < 0)
                throw system_error("connect " + sock);
            Socket s(fd);
            std::string line = "{\"op\":\"route.add\",\"prefix\":\"";
            line += p.str();
            line += "\",\"via\":\"";
            line += kCliVia;
            line += "\",\"mode\":\"ipip\"}\n";
            const auto t0 = Clock::now();
            send_line(fd, line);
            const auto t1 = wait_visible(view, slot, inside(p), cli_via, "route.add on the socket");
            if (const std::string response = read_line(fd); response.find("\"ok\":true") == std::string::npos)
                throw std::runtime_error("route.add " + p.str() + ": " + response);
            if (counted)
                r.socket.ms.push_back(ms_since(t0, t1));
        }
        {
            const Prefix4 p = path_prefix(2, i);
            const auto t0 = Clock::now();
            const pid_t pid = spawn({"ip", "route", "add", p.str(), "via", kKernelVia, "proto", "bird", "table",
                                     std::to_string(kKernelTable)},
                                    ctl_log);
            placement.child(pid);
            const auto t1 = wait_visible(view, slot, inside(p), kernel_via, "ip route add");
            const int status = reap(pid, std::chrono::seconds(10), "ip route add");
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                throw std::runtime_error("ip route add " + p.str() + ": " + describe_status(status) + ": " +
                                         read_file(ctl_log));
            if (counted)
                r.ip.ms.push_back(ms_since(t0, t1));
        }
        {
            const Prefix4 p = path_prefix(3, i);
            const auto t0 = Clock::now();
            netlink.send_add(p, kernel_via);
            const auto t1 = wait_visible(view, slot, inside(p), kernel_via, "RTM_NEWROUTE");
            netlink.read_ack();
            if (counted)
                r.netlink.ms.push_back(ms_since(t0, t1));
        }
    }
    for (Latencies* l : {&r.cli, &r.socket, &r.ip, &r.netlink})
        set_percentiles(*l);

    // A clean stop: the daemon exits on SIGTERM; then its segment goes.
    stop(daemon);
    stopper.pid = -1;
    Cleanup::remove_segment(o.table);
    return r;
}

}  // namespace podfwd::perf
