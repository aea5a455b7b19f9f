#include "perf/etcd_bench_etcd.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <thread>

#include "perf/bench_util.h"
#include "perf/control_bench_proc.h"

namespace podfwd::perf {

namespace {

constexpr auto kIoTimeout = std::chrono::seconds(10);

// ---- interruption ----

constexpr std::size_t kChildSlots = 16;
std::array<volatile pid_t, kChildSlots> g_children{};
volatile sig_atomic_t g_signal = 0;

void on_interrupt(int sig) {
    g_signal = sig;
    for (const pid_t pid : g_children)
        if (pid > 0)
            ::kill(pid, SIGKILL);
}

int connect_to(int port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        throw system_error("socket");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
        const int e = errno;
        ::close(fd);
        errno = e;
        return -1;
    }
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    timeval tv{static_cast<time_t>(kIoTimeout.count()), 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    return fd;
}

void send_all(int fd, const std::string& data) {
    std::size_t off = 0;
    while (off < data.size()) {
        const ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
        if (n <= 0) {
            throw_if_interrupted();
            throw system_error("send to etcd");
        }
        off += static_cast<std::size_t>(n);
    }
}

// Reads what the socket has (block: waits for at least one byte). False when
// nothing was there (non-blocking) ; throws on EOF or an error.
bool receive(int fd, std::string& into, bool block, const char* what) {
    char buf[65536];
    const ssize_t n = ::recv(fd, buf, sizeof buf, block ? 0 : MSG_DONTWAIT);
    if (n > 0) {
        into.append(buf, static_cast<std::size_t>(n));
        return true;
    }
    if (n < 0 && !block && (errno == EAGAIN || errno == EWOULDBLOCK))
        return false;
    throw_if_interrupted();
    if (n == 0)
        throw std::runtime_error(std::string(what) + ": etcd closed the connection");
    throw system_error(std::string(what) + ": no answer from etcd");
}

std::string lower(std::string s) {
    for (char& c : s)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

// "name: value" of a header block (lower-cased), or "".
std::string header_value(const std::string& headers_lower, const std::string& name) {
    const std::string needle = "\r\n" + name + ":";
    const auto at = headers_lower.find(needle);
    if (at == std::string::npos)
        return {};
    auto begin = at + needle.size();
    const auto end = headers_lower.find("\r\n", begin);
    while (begin < end && headers_lower[begin] == ' ')
        ++begin;
    return headers_lower.substr(begin, end - begin);
}

std::string request(const char* method, const std::string& path, int port, const std::string& body) {
    std::string r = method;
    r += ' ';
    r += path;
    r += " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) + "\r\n";
    if (!body.empty() || std::strcmp(method, "POST") == 0)
        r += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
    r += "\r\n";
    r += body;
    return r;
}

// Chunks of `raw` appended to `body` as far as they are complete; consumed
// bytes erased. True when the last (empty) chunk was read.
bool dechunk(std::string& raw, std::string& body) {
    std::size_t pos = 0;
    for (;;) {
        const auto eol = raw.find("\r\n", pos);
        if (eol == std::string::npos)
            break;
        const std::size_t size = std::stoul(raw.substr(pos, eol - pos), nullptr, 16);
        if (raw.size() < eol + 2 + size + 2)
            break;
        body.append(raw, eol + 2, size);
        pos = eol + 2 + size + 2;
        if (size == 0) {
            raw.erase(0, pos);
            return true;
        }
    }
    raw.erase(0, pos);
    return false;
}

std::int64_t int_field(const std::string& json, const std::string& name) {
    const std::string needle = "\"" + name + "\":";
    const auto at = json.find(needle);
    if (at == std::string::npos)
        return 0;   // the gateway leaves zero values out
    std::size_t p = at + needle.size();
    if (p < json.size() && json[p] == '"')
        ++p;
    return std::stoll(json.substr(p, 24));
}

int free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        throw system_error("socket");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
        ::close(fd);
        throw system_error("bind 127.0.0.1:0");
    }
    ::close(fd);
    return ntohs(addr.sin_port);
}

}  // namespace

void install_interrupt_handler() {
    struct sigaction sa {};
    sa.sa_handler = on_interrupt;   // no SA_RESTART: a blocked recv returns EINTR
    ::sigemptyset(&sa.sa_mask);
    for (int s : {SIGINT, SIGTERM, SIGHUP})
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

std::string base64(std::string_view bytes) {
    static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    for (std::size_t i = 0; i < bytes.size(); i += 3) {
        const std::size_t n = std::min<std::size_t>(3, bytes.size() - i);
        std::uint32_t v = 0;
        for (std::size_t k = 0; k < 3; ++k)
            v = v << 8 | (k < n ? static_cast<unsigned char>(bytes[i + k]) : 0u);
        for (std::size_t k = 0; k < 4; ++k)
            out += k <= n ? kAlphabet[(v >> (18 - 6 * k)) & 63] : '=';
    }
    return out;
}

std::string prefix_end(std::string prefix) {
    while (!prefix.empty() && static_cast<unsigned char>(prefix.back()) == 0xff)
        prefix.pop_back();
    if (prefix.empty())
        return std::string(1, '\0');
    prefix.back() = static_cast<char>(prefix.back() + 1);
    return prefix;
}

// ---- HttpConnection ----

HttpConnection::HttpConnection(int port) : fd_(connect_to(port)), port_(port) {
    if (fd_ < 0)
        throw system_error("connect 127.0.0.1:" + std::to_string(port));
}

HttpConnection::~HttpConnection() {
    if (fd_ >= 0)
        ::close(fd_);
}

void HttpConnection::send_post(const std::string& path, const std::string& body) {
    if (!path_.empty())
        throw std::runtime_error("HTTP: " + path + " sent before the answer to " + path_ + " was read");
    path_ = path;
    send_all(fd_, request("POST", path, port_, body));
}

void HttpConnection::fill(bool block) { (void)receive(fd_, buf_, block, path_.c_str()); }

bool HttpConnection::parse_response() {
    const auto head_end = buf_.find("\r\n\r\n");
    if (head_end == std::string::npos)
        return false;
    const std::string head = lower(buf_.substr(0, head_end + 2));
    const auto space = head.find(' ');
    const int status = space == std::string::npos ? 0 : std::atoi(head.c_str() + space + 1);
    std::string body;
    std::size_t consumed = 0;
    if (const std::string length = header_value(head, "content-length"); !length.empty()) {
        const std::size_t n = std::stoul(length);
        if (buf_.size() < head_end + 4 + n)
            return false;
        body = buf_.substr(head_end + 4, n);
        consumed = head_end + 4 + n;
    } else if (header_value(head, "transfer-encoding").find("chunked") != std::string::npos) {
        std::string rest = buf_.substr(head_end + 4);
        const std::size_t before = rest.size();
        if (!dechunk(rest, body))
            return false;
        consumed = head_end + 4 + (before - rest.size());
    } else {
        throw std::runtime_error("HTTP " + path_ + ": an answer with neither a length nor chunks");
    }
    buf_.erase(0, consumed);
    if (status != 200)
        throw std::runtime_error("HTTP " + path_ + ": status " + std::to_string(status) + ": " + body.substr(0, 400));
    body_ = std::move(body);
    return true;
}

bool HttpConnection::response_ready() {
    if (body_)
        return true;
    if (path_.empty())
        throw std::runtime_error("HTTP: no request in flight");
    // One read per call: enough for a small answer, and the caller spins.
    const bool more = receive(fd_, buf_, false, path_.c_str());
    return (more || !buf_.empty()) && parse_response();
}

std::string HttpConnection::read_response() {
    while (!body_ && !parse_response())
        fill(true);
    std::string body = std::move(*body_);
    body_.reset();
    path_.clear();
    return body;
}

std::string HttpConnection::post(const std::string& path, const std::string& body) {
    send_post(path, body);
    return read_response();
}

std::string HttpConnection::get(const std::string& path) {
    path_ = path;
    send_all(fd_, request("GET", path, port_, ""));
    return read_response();
}

// ---- WatchStream ----

WatchStream::WatchStream(int port, const std::string& key, const std::string& range_end) : fd_(connect_to(port)) {
    if (fd_ < 0)
        throw system_error("connect 127.0.0.1:" + std::to_string(port));
    const std::string body =
        R"({"create_request":{"key":")" + base64(key) + R"(","range_end":")" + base64(range_end) + "\"}}";
    send_all(fd_, request("POST", "/v3/watch", port, body));
    const auto deadline = Clock::now() + kIoTimeout;
    while (seen_.find("\"created\":true") == std::string::npos) {
        if (Clock::now() > deadline)
            throw std::runtime_error("watch " + key + ": not created within 10 s");
        read_available(true);
    }
    seen_.clear();
}

WatchStream::~WatchStream() {
    if (fd_ >= 0)
        ::close(fd_);
}

void WatchStream::read_available(bool block) {
    while (receive(fd_, raw_, block, "/v3/watch")) {
        block = false;
        decode();
    }
}

void WatchStream::decode() {
    if (!headers_done_) {
        const auto head_end = raw_.find("\r\n\r\n");
        if (head_end == std::string::npos)
            return;
        const std::string head = lower(raw_.substr(0, head_end + 2));
        if (head.find(" 200") == std::string::npos || header_value(head, "transfer-encoding") != "chunked")
            throw std::runtime_error("watch: unexpected answer: " + raw_.substr(0, head_end));
        raw_.erase(0, head_end + 4);
        headers_done_ = true;
    }
    if (dechunk(raw_, body_))
        throw std::runtime_error("watch: etcd ended the stream");
    for (auto eol = body_.find('\n'); eol != std::string::npos; eol = body_.find('\n')) {
        seen_.append(body_, 0, eol + 1);
        body_.erase(0, eol + 1);
        ++messages_;
    }
}

bool WatchStream::saw(const std::string& key) {
    read_available(false);
    if (seen_.find("\"key\":\"" + base64(key) + "\"") == std::string::npos)
        return false;
    seen_.clear();
    return true;
}

// ---- bulk helpers ----

std::string put_body(const std::string& key, const std::string& value) {
    return R"({"key":")" + base64(key) + R"(","value":")" + base64(value) + "\"}";
}

std::string delete_body(const std::string& key) { return R"({"key":")" + base64(key) + "\"}"; }

std::int64_t put_all(HttpConnection& http, const KeyValues& kvs, std::size_t per_txn) {
    std::int64_t revision = 0;
    for (std::size_t i = 0; i < kvs.size(); i += per_txn) {
        std::string body = R"({"success":[)";
        for (std::size_t k = i; k < kvs.size() && k < i + per_txn; ++k) {
            if (k != i)
                body += ',';
            body += R"({"request_put":)" + put_body(kvs[k].first, kvs[k].second) + "}";
        }
        body += "]}";
        const std::string answer = http.post("/v3/kv/txn", body);
        if (answer.find("\"succeeded\":true") == std::string::npos)
            throw std::runtime_error("txn of puts did not succeed: " + answer.substr(0, 300));
        revision = int_field(answer, "revision");
    }
    return revision;
}

std::int64_t count_range(HttpConnection& http, const std::string& key, const std::string& range_end) {
    const std::string answer = http.post(
        "/v3/kv/range", R"({"key":")" + base64(key) + R"(","range_end":")" + base64(range_end) + R"(","count_only":true})");
    return int_field(answer, "count");
}

FsyncStats wal_fsyncs(int port) {
    HttpConnection http(port);
    const std::string metrics = http.get("/metrics");
    const auto value = [&](const std::string& name) {
        const auto at = metrics.find("\n" + name + " ");
        if (at == std::string::npos)
            throw std::runtime_error("etcd's /metrics has no " + name);
        return std::stod(metrics.substr(at + name.size() + 2, 32));
    };
    const std::string base = "etcd_disk_wal_fsync_duration_seconds";
    FsyncStats s;
    s.count = value(base + "_count");
    s.seconds = value(base + "_sum");
    s.over_8ms = s.count - value(base + "_bucket{le=\"0.008\"}");
    return s;
}

// ---- EtcdServer ----

EtcdServer::~EtcdServer() { stop(); }

void EtcdServer::stop() {
    if (pid_ <= 0)
        return;
    perf::stop(pid_);
    untrack_child(pid_);
    pid_ = -1;
}

bool EtcdServer::try_start(std::string& why) {
    client_port_ = free_port();
    int peer_port = free_port();
    while (peer_port == client_port_)
        peer_port = free_port();
    const std::string client = url();
    const std::string peer = "http://127.0.0.1:" + std::to_string(peer_port);
    const std::string data = dir_ + "/etcd.data";
    const std::string log = dir_ + "/etcd.log";
    std::error_code ec;
    std::filesystem::remove_all(data, ec);
    const auto t0 = Clock::now();
    pid_ = spawn({binary_, "--name", "default", "--data-dir", data, "--listen-client-urls", client,
                  "--advertise-client-urls", client, "--listen-peer-urls", peer, "--initial-advertise-peer-urls",
                  peer, "--initial-cluster", "default=" + peer, "--logger", "zap", "--log-outputs", "stderr",
                  "--log-level", "warn"},
                 log);
    track_child(pid_);
    const auto deadline = t0 + std::chrono::seconds(20);
    for (;;) {
        throw_if_interrupted();
        int status = 0;
        if (!alive(pid_, &status)) {
            untrack_child(pid_);
            pid_ = -1;
            why = "etcd exited (" + describe_status(status) + "):\n" + read_file(log, 2000);
            return false;
        }
        if (const int fd = connect_to(client_port_); fd >= 0) {
            ::close(fd);
            try {
                HttpConnection http(client_port_);
                if (http.get("/health").find("\"health\":\"true\"") != std::string::npos) {
                    started_ms_ = ms_since(t0, Clock::now());
                    return true;
                }
            } catch (const std::exception&) {
                throw_if_interrupted();   // not ready yet: poll again
            }
        }
        if (Clock::now() > deadline) {
            stop();
            throw std::runtime_error("etcd did not report healthy within 20 s:\n" + read_file(log, 2000));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
}

void EtcdServer::start() {
    std::string why;
    for (int attempt = 0; attempt < 3; ++attempt)   // a port taken meanwhile: new ports
        if (try_start(why))
            return;
    throw std::runtime_error("cannot start etcd: " + why);
}

std::string EtcdServer::version() const {
    HttpConnection http(client_port_);
    const std::string answer = http.get("/version");
    const auto at = answer.find("\"etcdserver\":\"");
    return at == std::string::npos ? "?" : answer.substr(at + 14, answer.find('"', at + 14) - at - 14);
}

}  // namespace podfwd::perf
