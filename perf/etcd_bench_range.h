// etcd_bench: one Range of a whole dataset through each of etcd's two client
// APIs, without a process start: gRPC (what etcdctl speaks: HTTP/2 cleartext
// with prior knowledge, protobuf) and the JSON gateway (what podfwd-control
// speaks: HTTP/1.1, JSON, keys and values base64). Timed from the request to
// the answer's last byte (a new connection each, as the daemon's first read
// has), unparsed beyond counting the keys.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace podfwd::perf {

struct RangeTiming {
    double ms = 0;
    std::size_t bytes = 0;    // of the answer's body
    std::int64_t keys = 0;    // the answer's count
};

class RangeClients {
public:
    explicit RangeClients(std::string url);
    RangeClients(const RangeClients&) = delete;
    RangeClients& operator=(const RangeClients&) = delete;
    ~RangeClients();

    // POST /etcdserverpb.KV/Range (application/grpc, te: trailers); throws
    // unless grpc-status is 0.
    RangeTiming grpc(const std::string& key, const std::string& range_end);
    // POST /v3/kv/range.
    RangeTiming json(const std::string& key, const std::string& range_end);

private:
    std::string url_;
    void* grpc_ = nullptr;   // CURL*
    void* json_ = nullptr;
};

}  // namespace podfwd::perf
