// etcd_bench: the bench's own etcd (started, watched and removed by PID, in
// a temporary directory) and a minimal blocking HTTP/1.1 client for etcd's
// JSON gateway: keep-alive POSTs (puts, txns of many puts, ranges) and one
// watch stream read without blocking. No dependency on control/etcd/: the
// bench measures the daemon's client, it does not share it.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace podfwd::perf {

std::string base64(std::string_view bytes);

// SIGINT/SIGTERM/SIGHUP: the processes registered here are killed (SIGKILL,
// by PID) and interrupted() turns true, so the run unwinds and its
// destructors remove the temporary directory (etcd's data too) and the
// table segments. install_interrupt_handler() after Cleanup's own.
void install_interrupt_handler();
void track_child(pid_t pid);
void untrack_child(pid_t pid);
int interrupted() noexcept;      // the signal, or 0
void throw_if_interrupted();
// The end of the key range holding every key that starts with `prefix`.
std::string prefix_end(std::string prefix);

using KeyValues = std::vector<std::pair<std::string, std::string>>;

// One keep-alive connection to 127.0.0.1:port. Every call throws on a
// transport error or a status other than 200 (naming the path and the body).
class HttpConnection {
public:
    explicit HttpConnection(int port);
    HttpConnection(const HttpConnection&) = delete;
    HttpConnection& operator=(const HttpConnection&) = delete;
    ~HttpConnection();

    // POST and wait for the answer; its body.
    std::string post(const std::string& path, const std::string& body);
    // The two halves, for timing: send, then either poll or wait.
    void send_post(const std::string& path, const std::string& body);
    bool response_ready();          // reads what has arrived, never blocks
    std::string read_response();    // blocks (up to 10 s)
    std::string get(const std::string& path);

private:
    bool parse_response();   // a whole response in buf_: moves its body to body_
    void fill(bool block);

    int fd_ = -1;
    int port_;
    std::string path_;       // of the request in flight
    std::string buf_;
    std::optional<std::string> body_;
};

// POST /v3/watch on a connection of its own: the chunked stream of watch
// messages, read without blocking. Constructed once the watch is created.
class WatchStream {
public:
    WatchStream(int port, const std::string& key, const std::string& range_end);
    WatchStream(const WatchStream&) = delete;
    WatchStream& operator=(const WatchStream&) = delete;
    ~WatchStream();

    // Reads what has arrived; true once a message naming `key` has come
    // since the last call that returned true (the key's event: put or delete).
    bool saw(const std::string& key);
    std::uint64_t messages() const noexcept { return messages_; }

private:
    void read_available(bool block);
    void decode();

    int fd_ = -1;
    std::string raw_;       // bytes as received (chunked)
    std::string body_;      // de-chunked, not yet split into messages
    std::string seen_;      // messages received since the last match
    bool headers_done_ = false;
    std::uint64_t messages_ = 0;
};

// PUT of every pair, in transactions of `per_txn` puts (etcd's --max-txn-ops
// is 128 by default). Returns the store's revision after the last one.
std::int64_t put_all(HttpConnection& http, const KeyValues& kvs, std::size_t per_txn = 128);
std::int64_t count_range(HttpConnection& http, const std::string& key, const std::string& range_end);
std::string put_body(const std::string& key, const std::string& value);

// etcd's WAL fsyncs so far (GET /metrics: etcd_disk_wal_fsync_duration_seconds).
struct FsyncStats {
    double count = 0;
    double seconds = 0;
    double over_8ms = 0;   // count minus the le="0.008" bucket
};
FsyncStats wal_fsyncs(int port);
std::string delete_body(const std::string& key);

// An etcd of the bench's own: free ports on 127.0.0.1, a data directory
// inside `dir`, its log in `dir`/etcd.log. start() polls /health (bounded);
// the destructor stops it (SIGTERM, by PID). The data directory goes with
// the bench's temporary directory.
class EtcdServer {
public:
    EtcdServer(std::string binary, std::string dir) : binary_(std::move(binary)), dir_(std::move(dir)) {}
    EtcdServer(const EtcdServer&) = delete;
    EtcdServer& operator=(const EtcdServer&) = delete;
    ~EtcdServer();

    void start();
    void stop();
    pid_t pid() const noexcept { return pid_; }
    int port() const noexcept { return client_port_; }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(client_port_); }
    std::string version() const;
    double started_ms() const noexcept { return started_ms_; }

private:
    bool try_start(std::string& why);

    std::string binary_;
    std::string dir_;
    pid_t pid_ = -1;
    int client_port_ = 0;
    double started_ms_ = 0;
};

}  // namespace podfwd::perf
