#include "perf/etcd_bench_range.h"

#include <curl/curl.h>

#include <chrono>
#include <stdexcept>

#include "control/etcd/protowire.h"
#include "perf/etcd_bench_etcd.h"

namespace podfwd::perf {

namespace protowire = control::etcd::protowire;

namespace {

struct Answer {
    std::string body;
    std::string headers;   // headers and (HTTP/2) trailers, as received
};

std::size_t on_body(char* data, std::size_t size, std::size_t n, void* user) {
    static_cast<Answer*>(user)->body.append(data, size * n);
    return size * n;
}

std::size_t on_header(char* data, std::size_t size, std::size_t n, void* user) {
    static_cast<Answer*>(user)->headers.append(data, size * n);
    return size * n;
}

// RangeRequest{key = 1, range_end = 2}, framed as one gRPC message.
std::string range_request(const std::string& key, const std::string& range_end) {
    std::string m;
    protowire::put_bytes(m, 1, key);
    protowire::put_bytes(m, 2, range_end);
    return protowire::grpc_frame(m);
}

// RangeResponse{header = 1, kvs = 2 (repeated), more = 3, count = 4}: the kvs seen and the count.
std::pair<std::int64_t, std::int64_t> range_response_keys(const std::string& body) {
    const auto message = protowire::grpc_unframe(body);
    if (!message)
        throw std::runtime_error("gRPC Range: not one uncompressed message (" + std::to_string(body.size()) + " bytes)");
    std::int64_t kvs = 0, count = 0;
    protowire::Reader r(*message);
    while (const auto f = r.next()) {
        if (f->number == 4 && f->type == protowire::kVarint)
            count = static_cast<std::int64_t>(f->value);
        kvs += f->number == 2 && f->type == protowire::kBytes;
    }
    if (r.error())
        throw std::runtime_error("gRPC Range: a malformed RangeResponse");
    return {kvs, count};
}

CURL* handle() {
    CURL* c = curl_easy_init();
    if (c == nullptr)
        throw std::runtime_error("curl_easy_init");
    // A connection per Range, as the daemon's first read has (and libcurl
    // 7.88 fails reusing an h2c connection etcd has kept idle).
    curl_easy_setopt(c, CURLOPT_FRESH_CONNECT, 1L);
    curl_easy_setopt(c, CURLOPT_FORBID_REUSE, 1L);
    curl_easy_setopt(c, CURLOPT_BUFFERSIZE, 512L * 1024);
    return c;
}

double perform(CURL* c, const std::string& what) {
    // Through a multi handle polled with a 1 ms timeout: libcurl 7.88's
    // HTTP/2 otherwise stalls for 200 ms (now and then, on answers of a few
    // MiB) with data left inside nghttp2 while the socket is drained.
    CURLM* m = curl_multi_init();
    curl_multi_add_handle(m, c);
    const auto t0 = std::chrono::steady_clock::now();
    int running = 1;
    CURLMcode mc = CURLM_OK;
    while (running != 0 && mc == CURLM_OK && interrupted() == 0) {
        mc = curl_multi_perform(m, &running);
        if (running != 0 && mc == CURLM_OK)
            mc = curl_multi_poll(m, nullptr, 0, 1, nullptr);
    }
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    CURLcode rc = CURLE_OK;
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(m, &left))
        if (msg->msg == CURLMSG_DONE)
            rc = msg->data.result;
    curl_multi_remove_handle(m, c);
    curl_multi_cleanup(m);
    throw_if_interrupted();
    if (mc != CURLM_OK)
        throw std::runtime_error(what + ": " + curl_multi_strerror(mc));
    if (rc != CURLE_OK)
        throw std::runtime_error(what + ": " + curl_easy_strerror(rc));
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200)
        throw std::runtime_error(what + ": HTTP status " + std::to_string(status));
    return ms;
}

}  // namespace

RangeClients::RangeClients(std::string url) : url_(std::move(url)) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    grpc_ = handle();
    json_ = handle();
}

RangeClients::~RangeClients() {
    curl_easy_cleanup(static_cast<CURL*>(grpc_));
    curl_easy_cleanup(static_cast<CURL*>(json_));
}

RangeTiming RangeClients::grpc(const std::string& key, const std::string& range_end) {
    auto* c = static_cast<CURL*>(grpc_);
    const std::string request = range_request(key, range_end);
    Answer answer;
    const std::string url = url_ + "/etcdserverpb.KV/Range";
    curl_slist* headers = curl_slist_append(nullptr, "content-type: application/grpc");
    headers = curl_slist_append(headers, "te: trailers");
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE));
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, request.data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(request.size()));
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &answer);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &answer);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 60000L);
    double ms = 0;
    try {
        ms = perform(c, "gRPC Range " + key);
    } catch (...) {
        curl_slist_free_all(headers);
        throw;
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, nullptr);
    curl_slist_free_all(headers);
    if (answer.headers.find("grpc-status: 0") == std::string::npos)
        throw std::runtime_error("gRPC Range " + key + ": no grpc-status 0 in\n" + answer.headers);
    const auto [kvs, count] = range_response_keys(answer.body);
    if (kvs != count)
        throw std::runtime_error("gRPC Range " + key + ": " + std::to_string(kvs) + " kvs, count " + std::to_string(count));
    return RangeTiming{ms, answer.body.size(), count};
}

RangeTiming RangeClients::json(const std::string& key, const std::string& range_end) {
    auto* c = static_cast<CURL*>(json_);
    const std::string request = R"({"key":")" + base64(key) + R"(","range_end":")" + base64(range_end) + "\"}";
    Answer answer;
    const std::string url = url_ + "/v3/kv/range";
    curl_slist* headers = curl_slist_append(nullptr, "content-type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, request.data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(request.size()));
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &answer);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 60000L);
    double ms = 0;
    try {
        ms = perform(c, "JSON Range " + key);
    } catch (...) {
        curl_slist_free_all(headers);
        throw;
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, nullptr);
    curl_slist_free_all(headers);
    const auto at = answer.body.find("\"count\":\"");
    const std::int64_t count = at == std::string::npos ? 0 : std::stoll(answer.body.substr(at + 9, 20));
    return RangeTiming{ms, answer.body.size(), count};
}

}  // namespace podfwd::perf
