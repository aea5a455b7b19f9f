// HTTP POSTs for etcd (its JSON gateway; gRPC over HTTP/2) on libcurl's
// multi interface, behind one pollable fd: curl's sockets and its timeout
// live in an epoll set of our own, so the daemon's loop watches fd() and
// calls dispatch() when it is readable, as it does for netlink. Nothing
// here blocks.
//
// Two kinds of request: a unary POST (the whole answer, once) and a stream
// (etcd's watch: newline-separated JSON messages as they come). Callbacks
// run from dispatch() (or run_until()), never from inside curl, so they may
// start or cancel requests freely.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"

namespace podfwd::control::etcd {

// TLS with client certificates (flanneld's --etcd-cafile/certfile/keyfile).
// Empty: plain HTTP, or the system's CAs for https.
struct TlsFiles {
    std::string ca_file;
    std::string cert_file;
    std::string key_file;
};

struct HttpRequest {
    std::string url;
    std::string body;
    std::vector<std::string> headers;   // "Name: value"
    // HTTP/2 (prior knowledge on http://, ALPN on https://), as gRPC needs;
    // on a connection of its own (see http.cc).
    bool http2 = false;
    std::chrono::milliseconds timeout{10'000};   // the whole exchange
};

struct HttpResponse {
    long status = 0;
    std::string body;
    // Headers and (HTTP/2) trailers: names lower-case, values trimmed.
    std::vector<std::pair<std::string, std::string>> headers;

    const std::string* header(std::string_view name) const;
};

class HttpClient {
public:
    using RequestId = std::uint64_t;
    using OnResponse = std::function<void(Result<HttpResponse>)>;
    using OnMessage = std::function<void(std::string_view line)>;
    using OnEnd = std::function<void(Status)>;

    static Result<HttpClient> create();
    HttpClient(HttpClient&&) noexcept;
    HttpClient& operator=(HttpClient&&) noexcept;
    ~HttpClient();

    // Readable when curl has something to do: call dispatch().
    int fd() const noexcept;
    void dispatch();
    // Drives requests itself until `done()` or the deadline: for start-up
    // and tools that have no loop of their own.
    void run_until(const std::function<bool()>& done, std::chrono::milliseconds deadline);

    // A POST. A transport error (refused, reset, timed out, TLS) is
    // kSystem; any HTTP status is a response.
    RequestId send(HttpRequest request, const TlsFiles& tls, OnResponse on_response);
    // send() of a JSON body over HTTP/1.1.
    RequestId post(const std::string& url, std::string body, const TlsFiles& tls,
                   std::chrono::milliseconds timeout, OnResponse on_response);
    // A POST whose answer streams: on_message per line, on_end once when the
    // stream ends (ok when the server closed it cleanly). Not called after
    // cancel().
    // request.timeout bounds the connection only.
    RequestId stream(HttpRequest request, const TlsFiles& tls, OnMessage on_message, OnEnd on_end);
    // Drops a request; its callbacks are not called any more.
    void cancel(RequestId id);
    std::size_t in_flight() const noexcept;

    class Impl;

private:
    explicit HttpClient(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace podfwd::control::etcd
