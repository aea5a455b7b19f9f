#include "control/etcd/client.h"

#include "control/etcd/protowire.h"

#include <nlohmann/json.hpp>

#include <array>
#include <charconv>

namespace podfwd::control::etcd {

using json = nlohmann::json;

namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::array<std::int8_t, 256> decode_table() {
    std::array<std::int8_t, 256> t{};
    for (auto& v : t)
        v = -1;
    for (int i = 0; i < 64; ++i)
        t[static_cast<unsigned char>(kAlphabet[i])] = static_cast<std::int8_t>(i);
    return t;
}

Error bad_answer(const std::string& what) { return Error{Errc::kSystem, "etcd answered " + what}; }

// The gateway writes 64-bit integers as strings and leaves zero values out.
std::int64_t int64_of(const json& object, const char* name) {
    const auto it = object.find(name);
    if (it == object.end() || it->is_null())
        return 0;
    if (it->is_number_integer())
        return it->get<std::int64_t>();
    const auto& text = it->get_ref<const std::string&>();
    std::int64_t value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size())
        throw std::invalid_argument(std::string(name) + " is not an integer");
    return value;
}

std::string bytes_of(const json& object, const char* name) {
    const auto it = object.find(name);
    if (it == object.end() || it->is_null())
        return {};
    auto decoded = base64_decode(it->get_ref<const std::string&>());
    if (!decoded)
        throw std::invalid_argument(std::string(name) + " is not base64");
    return std::move(*decoded);
}

Kv kv_of(const json& j) {
    return Kv{bytes_of(j, "key"), bytes_of(j, "value"), int64_of(j, "mod_revision"), int64_of(j, "lease")};
}

std::vector<Kv> kvs_of(const json& j) {
    std::vector<Kv> kvs;
    if (const auto it = j.find("kvs"); it != j.end() && it->is_array()) {
        kvs.reserve(it->size());
        for (const json& kv : *it)
            kvs.push_back(kv_of(kv));
    }
    return kvs;
}

std::int64_t header_revision(const json& j) {
    const auto it = j.find("header");
    return it == j.end() ? 0 : int64_of(*it, "revision");
}

// Parses an answer body with `read`, turning every malformed shape into an Error.
template <class T, class Read>
Result<T> parse(const Result<std::string>& body, Read read) {
    if (!body)
        return body.error();
    try {
        return read(json::parse(*body));
    } catch (const std::runtime_error& e) {   // etcd's own error
        return Error{Errc::kSystem, std::string("etcd: ") + e.what()};
    } catch (const std::exception& e) {
        return bad_answer(std::string("something unexpected: ") + e.what());
    }
}

// A gRPC answer's status: a trailer (or a header, for an answer with no
// message). Its message is percent-encoded.
Status grpc_status(const HttpResponse& response) {
    if (response.status != 200)
        return Error{Errc::kSystem, "etcd: HTTP status " + std::to_string(response.status)};
    const std::string* code = response.header("grpc-status");
    if (code == nullptr)
        return Error{Errc::kSystem, "etcd answered without a grpc-status"};
    if (*code == "0")
        return ok();
    std::string message = "gRPC status " + *code;
    if (const std::string* text = response.header("grpc-message")) {
        message += ": ";
        const auto hex = [](char c) -> int {
            return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        };
        for (std::size_t i = 0; i < text->size(); ++i) {
            const char c = (*text)[i];
            if (c == '%' && i + 2 < text->size() && hex((*text)[i + 1]) >= 0 && hex((*text)[i + 2]) >= 0) {
                message += static_cast<char>(hex((*text)[i + 1]) << 4 | hex((*text)[i + 2]));
                i += 2;
            } else {
                message += c;   // not an escape: kept as it came
            }
        }
    }
    return Error{Errc::kSystem, "etcd: " + message};
}

// mvccpb.KeyValue {key 1, create_revision 2, mod_revision 3, version 4, value 5, lease 6}
std::optional<Kv> decode_kv(std::string_view message) {
    Kv kv;
    protowire::Reader r(message);
    while (const auto f = r.next()) {
        if (f->number == 1 && f->type == protowire::kBytes)
            kv.key = f->bytes;
        else if (f->number == 3 && f->type == protowire::kVarint)
            kv.mod_revision = static_cast<std::int64_t>(f->value);
        else if (f->number == 5 && f->type == protowire::kBytes)
            kv.value = f->bytes;
        else if (f->number == 6 && f->type == protowire::kVarint)
            kv.lease = static_cast<std::int64_t>(f->value);
    }
    if (r.error())
        return std::nullopt;
    return kv;
}

// etcdserverpb.RangeResponse {header 1 {revision 3}, kvs 2, more 3, count 4}.
// `limited`: the request had a limit, so more keys beyond it are expected.
Result<RangeAnswer> decode_range(const HttpResponse& response, bool limited) {
    if (auto s = grpc_status(response); !s)
        return std::move(s).error();
    const auto message = protowire::grpc_unframe(response.body);
    if (!message)
        return bad_answer("a Range body that is not one gRPC message");
    RangeAnswer answer;
    protowire::Reader r(*message);
    while (const auto f = r.next()) {
        if (f->number == 1 && f->type == protowire::kBytes) {
            protowire::Reader header(f->bytes);
            while (const auto h = header.next())
                if (h->number == 3 && h->type == protowire::kVarint)
                    answer.revision = static_cast<std::int64_t>(h->value);
        } else if (f->number == 2 && f->type == protowire::kBytes) {
            auto kv = decode_kv(f->bytes);
            if (!kv)
                return bad_answer("a malformed KeyValue");
            answer.kvs.push_back(std::move(*kv));
        } else if (f->number == 3 && f->type == protowire::kVarint && f->value != 0 && !limited) {
            return bad_answer("a partial Range (more: true) without a limit");
        }
    }
    if (r.error() || answer.revision == 0)
        return bad_answer("a malformed RangeResponse");
    return answer;
}

// "hasleader": a member cut off from its cluster's leader refuses the call
// (watch, keepalive) instead of holding it open while events stop
// (etcd-io/etcd#10819), so the source fails over.
std::vector<std::string> gateway_headers() {
    return {"Content-Type: application/json", "Grpc-Metadata-hasleader: true"};
}

}  // namespace

std::string base64_encode(std::string_view bytes) {
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 2 < bytes.size(); i += 3) {
        const unsigned v = static_cast<unsigned char>(bytes[i]) << 16 | static_cast<unsigned char>(bytes[i + 1]) << 8 |
                           static_cast<unsigned char>(bytes[i + 2]);
        for (int shift : {18, 12, 6, 0})
            out += kAlphabet[(v >> shift) & 63];
    }
    if (const std::size_t rest = bytes.size() - i; rest != 0) {
        unsigned v = static_cast<unsigned char>(bytes[i]) << 16;
        if (rest == 2)
            v |= static_cast<unsigned char>(bytes[i + 1]) << 8;
        out += kAlphabet[(v >> 18) & 63];
        out += kAlphabet[(v >> 12) & 63];
        out += rest == 2 ? kAlphabet[(v >> 6) & 63] : '=';
        out += '=';
    }
    return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
    static constexpr auto kTable = decode_table();
    while (!text.empty() && text.back() == '=')
        text.remove_suffix(1);
    if (text.size() % 4 == 1)
        return std::nullopt;
    std::string out;
    out.reserve(text.size() * 3 / 4);
    unsigned bits = 0;
    int count = 0;
    for (char c : text) {
        const int v = kTable[static_cast<unsigned char>(c)];
        if (v < 0)
            return std::nullopt;
        bits = bits << 6 | static_cast<unsigned>(v);
        if ((count += 6) >= 8) {
            count -= 8;
            out += static_cast<char>((bits >> count) & 0xff);
        }
    }
    return out;
}

EtcdClient::EtcdClient(HttpClient& http, ClientOptions options) : http_(http), options_(std::move(options)) {
    if (options_.endpoints.empty())
        options_.endpoints.push_back("http://127.0.0.1:2379");
}

EtcdClient::RequestId EtcdClient::post(const char* path, std::string body,
                                       std::function<void(Result<std::string>)> done) {
    return http_.send(HttpRequest{endpoint() + path, std::move(body), gateway_headers(), false, options_.request_timeout},
                      options_.tls, [done = std::move(done)](Result<HttpResponse> response) {
                          if (!response)
                              return done(std::move(response).error());
                          if (response->status == 200)
                              return done(std::move(response->body));
                          // The gateway's error: {"error": "...", "message": "...", "code": N}
                          std::string message = "HTTP status " + std::to_string(response->status);
                          try {
                              const json j = json::parse(response->body);
                              if (j.contains("message") && j["message"].is_string())
                                  message += ": " + j["message"].get<std::string>();
                          } catch (const std::exception&) {
                          }
                          done(Error{Errc::kSystem, message});
                      });
}

// The full read goes over gRPC (HTTP/2, protobuf), not the JSON gateway:
// etcd builds a gateway answer of 5,000 keys in 55-60 ms and the gRPC one in
// 7-13 ms, and the client skips JSON and base64 (perf/RESULTS.md, etcd).
EtcdClient::RequestId EtcdClient::range(const std::string& key, const std::string& range_end,
                                        std::function<void(Result<RangeAnswer>)> done) {
    std::string message;
    protowire::put_bytes(message, 1, key);         // RangeRequest.key
    protowire::put_bytes(message, 2, range_end);   // RangeRequest.range_end
    return send_range(std::move(message), false, std::move(done));
}

EtcdClient::RequestId EtcdClient::latest(const std::string& key, const std::string& range_end,
                                         std::function<void(Result<RangeAnswer>)> done) {
    std::string message;
    protowire::put_bytes(message, 1, key);
    protowire::put_bytes(message, 2, range_end);
    protowire::put_uint(message, 3, 1);   // limit
    protowire::put_uint(message, 5, 2);   // sort_order DESCEND
    protowire::put_uint(message, 6, 3);   // sort_target MOD
    // From the member's own store, as the watch is: no round through the
    // leader for a question only about what this member has sent us.
    protowire::put_uint(message, 7, 1);   // serializable
    protowire::put_uint(message, 8, 1);   // keys_only
    return send_range(std::move(message), true, std::move(done));
}

EtcdClient::RequestId EtcdClient::send_range(std::string message, bool limited,
                                             std::function<void(Result<RangeAnswer>)> done) {
    HttpRequest request{endpoint() + "/etcdserverpb.KV/Range", protowire::grpc_frame(message),
                        {"Content-Type: application/grpc", "TE: trailers"}, true, options_.request_timeout};
    return http_.send(std::move(request), options_.tls, [limited, done = std::move(done)](Result<HttpResponse> response) {
        if (!response)
            return done(std::move(response).error());
        done(decode_range(*response, limited));
    });
}

EtcdClient::RequestId EtcdClient::watch(const std::string& key, const std::string& range_end,
                                        std::int64_t start_revision,
                                        std::function<void(Result<WatchMessage>)> on_message,
                                        std::function<void(Status)> on_end) {
    const json request = {{"create_request",
                           {{"key", base64_encode(key)},
                            {"range_end", base64_encode(range_end)},
                            {"start_revision", std::to_string(start_revision)}}}};
    auto on_line = [on_message = std::move(on_message)](std::string_view line) {
        on_message(parse<WatchMessage>(std::string(line), [](const json& j) {
            // Each message is {"result": WatchResponse}; an error is
            // {"error": {"message": ..., "http_code": ...}} (etcd stopping, say).
            if (const auto error = j.find("error"); error != j.end())
                throw std::runtime_error(error->is_object() && error->contains("message")
                                             ? error->at("message").dump() + " (HTTP " + error->value("http_code", json(0)).dump() + ")"
                                             : error->dump());
            const json& r = j.at("result");
            WatchMessage m;
            m.revision = header_revision(r);
            m.created = r.value("created", false);
            m.canceled = r.value("canceled", false);
            m.compact_revision = int64_of(r, "compact_revision");
            m.cancel_reason = r.value("cancel_reason", std::string{});
            if (const auto events = r.find("events"); events != r.end() && events->is_array())
                for (const json& e : *events)
                    m.events.push_back(WatchEvent{e.value("type", std::string{}) == "DELETE", kv_of(e.at("kv"))});
            return m;
        }));
    };
    return http_.stream(HttpRequest{endpoint() + "/v3/watch", request.dump(), gateway_headers(), false,
                                    options_.request_timeout},
                        options_.tls, std::move(on_line), std::move(on_end));
}

EtcdClient::RequestId EtcdClient::lease_grant(std::int64_t ttl_s, std::function<void(Result<std::int64_t>)> done) {
    const json request = {{"TTL", std::to_string(ttl_s)}};
    return post("/v3/lease/grant", request.dump(), [done = std::move(done)](Result<std::string> body) {
        done(parse<std::int64_t>(body, [](const json& j) {
            if (const auto error = j.find("error"); error != j.end() && !error->get<std::string>().empty())
                throw std::invalid_argument(error->get<std::string>());
            return int64_of(j, "ID");
        }));
    });
}

EtcdClient::RequestId EtcdClient::lease_keepalive(std::int64_t lease, std::function<void(Result<std::int64_t>)> done) {
    const json request = {{"ID", std::to_string(lease)}};
    return post("/v3/lease/keepalive", request.dump(), [done = std::move(done)](Result<std::string> body) {
        done(parse<std::int64_t>(body, [](const json& j) { return int64_of(j.at("result"), "TTL"); }));
    });
}

EtcdClient::RequestId EtcdClient::put_if(const std::string& key, std::int64_t expected_mod_revision,
                                         const std::string& value, std::int64_t lease,
                                         std::function<void(Result<TxnAnswer>)> done) {
    const std::string k = base64_encode(key);
    const json compare = expected_mod_revision == 0
                             ? json{{"key", k}, {"target", "CREATE"}, {"result", "EQUAL"}, {"create_revision", "0"}}
                             : json{{"key", k}, {"target", "MOD"}, {"result", "EQUAL"},
                                    {"mod_revision", std::to_string(expected_mod_revision)}};
    const json request = {
        {"compare", json::array({compare})},
        {"success", json::array({{{"request_put", {{"key", k}, {"value", base64_encode(value)}, {"lease", std::to_string(lease)}}}}})},
        {"failure", json::array({{{"request_range", {{"key", k}}}}})}};
    return post("/v3/kv/txn", request.dump(), [done = std::move(done)](Result<std::string> body) {
        done(parse<TxnAnswer>(body, [](const json& j) {
            TxnAnswer answer{j.value("succeeded", false), header_revision(j), {}};
            if (const auto responses = j.find("responses"); responses != j.end() && responses->is_array())
                for (const json& r : *responses)
                    if (const auto range = r.find("response_range"); range != r.end())
                        answer.range = kvs_of(*range);
            return answer;
        }));
    });
}

}  // namespace podfwd::control::etcd
