// The etcd client's own pieces without etcd: base64 against a bit-by-bit
// reference, and HttpClient against a scripted HTTP server on loopback
// (streamed lines split across writes, cancel from a callback, HTTP errors,
// a refused connection).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <thread>
#include <vector>

#include "control/etcd/client.h"
#include "control/etcd/http.h"

using namespace podfwd;
using namespace podfwd::control::etcd;

namespace {

// The reference: one bit at a time, as RFC 4648 describes it.
std::string naive_base64(const std::string& bytes) {
    static const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::vector<int> bits;
    for (unsigned char c : bytes)
        for (int i = 7; i >= 0; --i)
            bits.push_back((c >> i) & 1);
    std::string out;
    for (std::size_t i = 0; i < bits.size(); i += 6) {
        int v = 0;
        for (std::size_t j = i; j < i + 6; ++j)
            v = v << 1 | (j < bits.size() ? bits[j] : 0);
        out += alphabet[v];
    }
    while (out.size() % 4 != 0)
        out += '=';
    return out;
}

TEST(Base64, Rfc4648Vectors) {
    const std::pair<const char*, const char*> vectors[] = {{"", ""},         {"f", "Zg=="},     {"fo", "Zm8="},
                                                           {"foo", "Zm9v"},  {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="},
                                                           {"foobar", "Zm9vYmFy"}};
    for (auto [plain, encoded] : vectors) {
        EXPECT_EQ(base64_encode(plain), encoded);
        EXPECT_EQ(base64_decode(encoded), plain);
    }
}

TEST(Base64, RandomBytesAgainstReference) {
    std::mt19937 random(7);
    for (int round = 0; round < 2000; ++round) {
        std::string bytes(random() % 40, '\0');
        for (char& c : bytes)
            c = static_cast<char>(random());
        const std::string encoded = base64_encode(bytes);
        ASSERT_EQ(encoded, naive_base64(bytes));
        ASSERT_EQ(base64_decode(encoded), bytes);
    }
}

TEST(Base64, RejectsWhatIsNotBase64) {
    for (const char* bad : {"Zm9v!", "Z", "Zm9v\n", "Zm 9v", "Zg==Zg"})
        EXPECT_EQ(base64_decode(bad), std::nullopt) << bad;
}

// A server that accepts one connection, reads the request head and body
// (Content-Length), then writes `replies` one at a time, and closes.
class ScriptedServer {
public:
    explicit ScriptedServer(std::vector<std::string> replies) : replies_(std::move(replies)) {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof addr;
        EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
        EXPECT_EQ(::listen(fd_, 1), 0);
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
        port_ = ntohs(addr.sin_port);
        thread_ = std::thread([this] { serve(); });
    }
    ~ScriptedServer() {
        ::shutdown(fd_, SHUT_RDWR);
        thread_.join();
        ::close(fd_);
    }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
    std::string request() const { return request_; }

private:
    void serve() {
        const int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0)
            return;
        char buf[4096];
        while (request_.find("\r\n\r\n") == std::string::npos || !body_complete()) {
            const ssize_t n = ::recv(c, buf, sizeof buf, 0);
            if (n <= 0)
                break;
            request_.append(buf, static_cast<std::size_t>(n));
        }
        for (const std::string& reply : replies_) {
            (void)!::send(c, reply.data(), reply.size(), MSG_NOSIGNAL);
            std::this_thread::sleep_for(std::chrono::milliseconds(5));   // separate writes, not synchronisation
        }
        ::close(c);
    }
    bool body_complete() const {
        const auto head_end = request_.find("\r\n\r\n");
        const auto cl = request_.find("Content-Length: ");
        if (cl == std::string::npos)
            return true;
        return request_.size() - (head_end + 4) >= std::stoul(request_.substr(cl + 16));
    }

    std::vector<std::string> replies_;
    int fd_ = -1;
    int port_ = 0;
    std::thread thread_;
    std::string request_;
};

TEST(HttpClient, UnaryPostGetsTheWholeAnswer) {
    ScriptedServer server({"HTTP/1.1 200 OK\r\nContent-Length: 11\r\nConnection: close\r\n\r\n{\"a\":", "\"bcd\"}"});
    auto http = HttpClient::create();
    ASSERT_TRUE(http);
    std::optional<Result<HttpResponse>> answer;
    http->post(server.url() + "/v3/kv/range", R"({"key":"Lw=="})", {}, std::chrono::seconds(5),
               [&](Result<HttpResponse> r) { answer = std::move(r); });
    http->run_until([&] { return answer.has_value(); }, std::chrono::seconds(5));
    ASSERT_TRUE(answer && *answer);
    EXPECT_EQ((*answer)->status, 200);
    EXPECT_EQ((*answer)->body, R"({"a":"bcd"})");
    EXPECT_NE(server.request().find("POST /v3/kv/range HTTP/1.1"), std::string::npos);
    EXPECT_NE(server.request().find(R"({"key":"Lw=="})"), std::string::npos);
    EXPECT_EQ(http->in_flight(), 0u);
}

TEST(HttpClient, StreamSplitsLinesAcrossWrites) {
    ScriptedServer server({"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "6\r\none\ntw\r\n",
                           "4\r\no\nth\r\n", "5\r\nree\n\n\r\n", "0\r\n\r\n"});
    auto http = HttpClient::create();
    ASSERT_TRUE(http);
    std::vector<std::string> lines;
    std::optional<Status> end;
    http->stream(HttpRequest{server.url() + "/v3/watch", "{}", {}, false, std::chrono::seconds(5)}, {},
                 [&](std::string_view line) { lines.emplace_back(line); }, [&](Status s) { end = s; });
    http->run_until([&] { return end.has_value(); }, std::chrono::seconds(5));
    ASSERT_TRUE(end.has_value());
    EXPECT_TRUE(*end);
    EXPECT_EQ(lines, (std::vector<std::string>{"one", "two", "three"}));
}

TEST(HttpClient, CancelFromTheMessageCallbackStopsEverything) {
    ScriptedServer server({"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "8\r\na\nb\nc\nd\n\r\n", "0\r\n\r\n"});
    auto http = HttpClient::create();
    ASSERT_TRUE(http);
    std::vector<std::string> lines;
    bool ended = false;
    HttpClient::RequestId id = 0;
    id = http->stream(HttpRequest{server.url(), "{}", {}, false, std::chrono::seconds(5)}, {},
                      [&](std::string_view line) {
                          lines.emplace_back(line);
                          http->cancel(id);
                      },
                      [&](Status) { ended = true; });
    http->run_until([&] { return !lines.empty() && http->in_flight() == 0; }, std::chrono::seconds(5));
    http->run_until([] { return false; }, std::chrono::milliseconds(100));   // anything late would arrive now
    EXPECT_EQ(lines, std::vector<std::string>{"a"});
    EXPECT_FALSE(ended);
}

TEST(HttpClient, HttpErrorIsAResponseAndRefusalAnError) {
    ScriptedServer server({"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"});
    auto http = HttpClient::create();
    ASSERT_TRUE(http);
    std::optional<Result<HttpResponse>> not_found, refused;
    http->post(server.url(), "{}", {}, std::chrono::seconds(5), [&](Result<HttpResponse> r) { not_found = std::move(r); });
    http->post("http://127.0.0.1:1", "{}", {}, std::chrono::seconds(5), [&](Result<HttpResponse> r) { refused = std::move(r); });
    http->run_until([&] { return not_found && refused; }, std::chrono::seconds(5));
    ASSERT_TRUE(not_found && *not_found);
    EXPECT_EQ((*not_found)->status, 404);
    ASSERT_TRUE(refused.has_value());
    ASSERT_FALSE(*refused);
    EXPECT_EQ(refused->error().code, Errc::kSystem);
}

}  // namespace
