#include "perf/bgp_bench_bird.h"

#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <thread>

#include "perf/bench_util.h"
#include "perf/control_bench_proc.h"

namespace podfwd::perf::bgp {

namespace {

constexpr std::size_t kChildSlots = 16;
std::array<volatile pid_t, kChildSlots> g_children{};
volatile sig_atomic_t g_signal = 0;

void on_interrupt(int sig) {
    g_signal = sig;
    for (const pid_t pid : g_children)
        if (pid > 0)
            ::kill(pid, SIGKILL);
}

Ipv4Addr ip4(const char* text) { return must(parse_ipv4(text), text); }

}  // namespace

void enter_private_netns() {
    if (::unshare(CLONE_NEWNET) != 0)
        throw system_error("unshare(CLONE_NEWNET) (needs root)");
    run({"ip", "link", "set", "lo", "up"});
    run({"ip", "link", "add", kVethNode, "type", "veth", "peer", "name", kVethBird});
    run({"ip", "addr", "add", std::string(kNodeIp) + "/24", "dev", kVethNode});
    run({"ip", "addr", "add", std::string(kBirdIp) + "/24", "dev", kVethBird});
    run({"ip", "link", "set", kVethNode, "up"});
    run({"ip", "link", "set", kVethBird, "up"});
}

void install_interrupt_handler() {
    struct sigaction sa {};
    sa.sa_handler = on_interrupt;   // no SA_RESTART: a blocked read returns EINTR
    ::sigemptyset(&sa.sa_mask);
    // SIGPIPE too: output piped into a reader that went away (`| head`)
    // must not leave BIRD and gobgpd behind.
    for (int s : {SIGINT, SIGTERM, SIGHUP, SIGPIPE})
        ::sigaction(s, &sa, nullptr);
}

void track_child(pid_t pid) {
    for (auto& slot : g_children)
        if (slot <= 0) {
            slot = pid;
            return;
        }
}

void untrack_child(pid_t pid) {
    for (auto& slot : g_children)
        if (slot == pid)
            slot = 0;
}

int interrupted() noexcept { return g_signal; }

void throw_if_interrupted() {
    if (g_signal != 0)
        throw std::runtime_error(std::string("interrupted by ") + strsignal(g_signal));
}

void nap(std::chrono::microseconds d) {
    throw_if_interrupted();
    std::this_thread::sleep_for(d);
    throw_if_interrupted();
}

std::vector<Prefix4> pod_prefixes(std::size_t n) {
    const Ipv4Addr base = ip4("10.0.0.0");
    std::vector<Prefix4> out;
    out.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        Prefix4 p;
        if (i % 10 == 9) {
            p.addr = base + static_cast<Ipv4Addr>(64 * (9 * (i / 10)) + 33);
            p.len = 32;
        } else {
            p.addr = base + static_cast<Ipv4Addr>(64 * (i - i / 10));
            p.len = 26;
        }
        out.push_back(p);
    }
    return out;
}

Prefix4 covering_prefix(const std::vector<Prefix4>& prefixes) {
    if (prefixes.empty())
        return Prefix4{};
    Ipv4Addr lo = prefixes.front().addr, hi = lo;
    for (const Prefix4& p : prefixes) {
        lo = std::min(lo, p.addr);
        hi = std::max(hi, p.addr | ~prefix_mask(p.len));
    }
    unsigned len = 32;
    while (len > 0 && (lo & prefix_mask(len)) != (hi & prefix_mask(len)))
        --len;
    return Prefix4{lo & prefix_mask(len), static_cast<std::uint8_t>(len)};
}

double epoch_ms(std::chrono::system_clock::time_point t) {
    return std::chrono::duration<double, std::milli>(t.time_since_epoch()).count();
}

std::optional<double> stamp_epoch_ms(const std::string& text) {
    std::tm tm{};
    const char* rest = ::strptime(text.c_str(), "%Y-%m-%d %H:%M:%S", &tm);
    if (rest == nullptr || *rest != '.')
        return std::nullopt;
    tm.tm_isdst = -1;
    const std::time_t t = std::mktime(&tm);
    return static_cast<double>(t) * 1000.0 + std::atof(rest + 1);
}

// ---- Bird ----

Bird::~Bird() { stop(); }

void Bird::stop() {
    if (fd_ >= 0) {
        ::close(fd_);
        fd_ = -1;
    }
    if (pid_ > 0) {
        perf::stop(pid_);
        untrack_child(pid_);
        pid_ = -1;
    }
}

void Bird::start(const std::vector<Prefix4>& prefixes) {
    conf_ = dir_ + "/bird.conf";
    sock_ = dir_ + "/bird.ctl";
    pidfile_ = dir_ + "/bird.pid";
    log_ = dir_ + "/bird.log";
    {
        std::ofstream out(conf_);
        out << "# bgp_bench: the pod prefixes' origin. Generated; removed with the run's directory.\n"
            << "log \"" << log_ << "\" all;\n"
            << "timeformat log \"%F %T.%3f\";\n"
            << "timeformat protocol \"%F %T.%3f\";\n"
            << "router id " << kBirdIp << ";\n"
            << "debug protocols { states };\n"
            << "protocol device { scan time 60; }\n"
            << "protocol static " << kBirdStatic << " {\n  ipv4;\n";
        for (const Prefix4& p : prefixes)
            out << "  route " << p.str() << " blackhole;\n";
        out << "}\n"
            << "protocol bgp " << kBirdPeer << " {\n"
            << "  disabled yes;\n"
            << "  local " << kBirdIp << " port " << kBirdPort << " as " << kBirdAs << ";\n"
            << "  strict bind yes;\n"
            << "  neighbor " << kNodeIp << " port " << kBgpPort << " as " << kNodeAs << ";\n"
            << "  multihop;\n"          // both ends are this namespace's addresses
            << "  connect delay time 0;\n"
            << "  connect retry time 1;\n"
            << "  error wait time 1, 2;\n"
            << "  hold time 90;\n"
            << "  ipv4 { import none; export all; next hop self; };\n"
            << "}\n";
        if (!out)
            throw std::runtime_error("cannot write " + conf_);
    }
    struct stat st {};
    if (::stat(conf_.c_str(), &st) == 0)
        config_bytes_ = static_cast<std::size_t>(st.st_size);
    const auto t0 = Clock::now();
    pid_ = spawn({binary_, "-f", "-c", conf_, "-s", sock_, "-P", pidfile_}, dir_ + "/bird.out");
    track_child(pid_);
    const auto deadline = t0 + std::chrono::seconds(120);
    for (;;) {
        int status = 0;
        if (!alive(pid_, &status)) {
            untrack_child(pid_);
            pid_ = -1;
            throw std::runtime_error("bird exited (" + describe_status(status) + "):\n" + read_file(dir_ + "/bird.out") +
                                     read_file(log_));
        }
        if (fd_ < 0)
            fd_ = connect_socket();
        if (fd_ >= 0)
            break;
        if (Clock::now() > deadline)
            throw std::runtime_error("bird: no control socket within 120 s");
        nap(std::chrono::milliseconds(5));
    }
    wait_table_routes(prefixes.size(), std::chrono::seconds(120));
    load_ms_ = ms_since(t0, Clock::now());
    const std::string status = command("show status");
    const auto at = status.find("BIRD ");
    version_ = at == std::string::npos ? "?" : status.substr(at + 5, status.find('\n', at) - at - 5);
}

int Bird::connect_socket() {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        throw system_error("socket");
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (sock_.size() >= sizeof addr.sun_path)
        throw std::runtime_error("bird's socket path is too long: " + sock_);
    std::memcpy(addr.sun_path, sock_.c_str(), sock_.size() + 1);
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(fd);
        return -1;
    }
    timeval tv{30, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    buf_.clear();
    fd_ = fd;
    (void)command("");   // the greeting: "0001 BIRD 2.0.12 ready."
    return fd;
}

std::string Bird::command(const std::string& cmd) {
    if (!cmd.empty()) {
        if (fd_ < 0)
            throw std::runtime_error("bird: not connected");
        const std::string line = cmd + "\n";
        if (::send(fd_, line.data(), line.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(line.size()))
            throw system_error("bird: send '" + cmd + "'");
    }
    // Lines "DDDD-text" and " text" continue; "DDDD text" ends the reply.
    std::string reply;
    for (;;) {
        for (auto eol = buf_.find('\n'); eol != std::string::npos; eol = buf_.find('\n')) {
            const std::string line = buf_.substr(0, eol);
            buf_.erase(0, eol + 1);
            const bool coded = line.size() >= 5 && std::isdigit(static_cast<unsigned char>(line[0])) &&
                               std::isdigit(static_cast<unsigned char>(line[3]));
            reply += (coded ? line.substr(5) : line.substr(line.empty() ? 0 : 1)) + "\n";
            if (coded && line[4] == ' ') {
                if (line[0] >= '8')
                    throw std::runtime_error("bird: '" + cmd + "': " + reply);
                return reply;
            }
        }
        char chunk[65536];
        const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
        if (n <= 0) {
            throw_if_interrupted();
            throw system_error("bird: no answer to '" + cmd + "'");
        }
        buf_.append(chunk, static_cast<std::size_t>(n));
    }
}

std::size_t Bird::table_routes() {
    // "100000 of 100000 routes for 100000 networks in table master4"
    const std::string reply = command("show route count");
    const auto at = reply.find("in table master4");
    if (at == std::string::npos)
        return 0;
    const auto line = reply.rfind('\n', at);
    return std::stoul(reply.substr(line == std::string::npos ? 0 : line + 1));
}

void Bird::wait_table_routes(std::size_t n, std::chrono::seconds timeout) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
        const std::size_t have = table_routes();
        if (have == n)
            return;
        if (Clock::now() > deadline)
            throw std::runtime_error("bird: master4 holds " + std::to_string(have) + " routes, not " + std::to_string(n) +
                                     ", after " + std::to_string(timeout.count()) + " s");
        nap(std::chrono::milliseconds(20));
    }
}

std::string Bird::protocol_line(const std::string& name) {
    const std::string reply = command("show protocols " + name);
    const auto at = reply.find("\n" + name + " ");
    return at == std::string::npos ? reply : reply.substr(at + 1, reply.find('\n', at + 1) - at - 1);
}

std::size_t Bird::log_mark() const {
    struct stat st {};
    return ::stat(log_.c_str(), &st) == 0 ? static_cast<std::size_t>(st.st_size) : 0;
}

std::optional<double> Bird::peer_up_after(std::size_t mark) const {
    std::ifstream in(log_);
    in.seekg(static_cast<std::streamoff>(mark));
    const std::string needle = std::string(kBirdPeer) + ": State changed to up";
    for (std::string line; std::getline(in, line);)
        if (line.find(needle) != std::string::npos)
            return stamp_epoch_ms(line);
    return std::nullopt;
}

}  // namespace podfwd::perf::bgp
