// etcd's v3 API, the handful of calls a route source needs: the full read
// by gRPC (KV/Range over HTTP/2), the rest through the JSON gateway (HTTP
// POST, keys and values base64, 64-bit numbers as JSON strings).
// Asynchronous on HttpClient; one endpoint in use at a time, fail_over()
// moves to the next.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "control/etcd/http.h"

namespace podfwd::control::etcd {

std::string base64_encode(std::string_view bytes);
// Standard alphabet, padding optional; nullopt on any other character.
std::optional<std::string> base64_decode(std::string_view text);

struct ClientOptions {
    std::vector<std::string> endpoints;   // http://127.0.0.1:2379, https://…
    TlsFiles tls;
    std::chrono::milliseconds request_timeout{10'000};
};

struct Kv {
    std::string key;
    std::string value;
    std::int64_t mod_revision = 0;
    std::int64_t lease = 0;
};

struct RangeAnswer {
    std::vector<Kv> kvs;
    std::int64_t revision = 0;   // the store's revision the read saw
};

struct WatchEvent {
    bool deleted = false;
    Kv kv;
};

struct WatchMessage {
    std::int64_t revision = 0;          // header revision
    bool created = false;
    bool canceled = false;
    std::int64_t compact_revision = 0;  // non-zero: the start revision was compacted
    std::string cancel_reason;
    std::vector<WatchEvent> events;
};

struct TxnAnswer {
    bool succeeded = false;
    std::int64_t revision = 0;
    std::vector<Kv> range;   // the failure branch's read, when it had one
};

class EtcdClient {
public:
    using RequestId = HttpClient::RequestId;

    EtcdClient(HttpClient& http, ClientOptions options);

    const std::string& endpoint() const noexcept { return options_.endpoints[current_]; }
    void fail_over() noexcept { current_ = (current_ + 1) % options_.endpoints.size(); }

    RequestId range(const std::string& key, const std::string& range_end,
                    std::function<void(Result<RangeAnswer>)> done);
    // The key of [key, range_end) changed last (its name and mod_revision
    // only; no kvs when the range is empty): a small answer, but etcd sorts
    // the whole range for it (a sorted Range ignores the limit until after
    // the sort). Serializable: this member's store.
    RequestId latest(const std::string& key, const std::string& range_end,
                     std::function<void(Result<RangeAnswer>)> done);
    // Every change in [key, range_end) from start_revision on. on_message per
    // message (a parse failure is an Error message); on_end once.
    RequestId watch(const std::string& key, const std::string& range_end, std::int64_t start_revision,
                    std::function<void(Result<WatchMessage>)> on_message, std::function<void(Status)> on_end);
    RequestId lease_grant(std::int64_t ttl_s, std::function<void(Result<std::int64_t>)> done);   // the lease id
    // The lease's remaining TTL; 0 when it has expired (renewal failed).
    RequestId lease_keepalive(std::int64_t lease, std::function<void(Result<std::int64_t>)> done);
    // put(key, value, lease) if the key's mod_revision is `expected_mod_revision`
    // (0: the key must not exist); otherwise reads the key.
    RequestId put_if(const std::string& key, std::int64_t expected_mod_revision, const std::string& value,
                     std::int64_t lease, std::function<void(Result<TxnAnswer>)> done);
    void cancel(RequestId id) { http_.cancel(id); }

private:
    RequestId send_range(std::string message, bool limited, std::function<void(Result<RangeAnswer>)> done);
    RequestId post(const char* path, std::string body, std::function<void(Result<std::string>)> done);

    HttpClient& http_;
    ClientOptions options_;
    std::size_t current_ = 0;
};

}  // namespace podfwd::control::etcd
