#include "control/etcd/http.h"

#include <curl/curl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

namespace podfwd::control::etcd {

namespace {

// A unary answer larger than this is refused rather than held (a range of
// 20,000 Calico blocks is about 10 MiB); so is a longer streamed line.
constexpr std::size_t kMaxBody = 512u << 20;
constexpr std::size_t kMaxLine = 64u << 20;

Error system_error(const char* what) { return Error{Errc::kSystem, std::string(what) + ": " + std::strerror(errno)}; }

void init_curl_once() {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct Transfer {
    HttpClient::RequestId id = 0;
    CURL* easy = nullptr;
    curl_slist* header_list = nullptr;
    bool streaming = false;
    bool http2 = false;
    bool too_large = false;
    std::string body;                 // unary: the answer; stream: a partial line
    std::vector<std::pair<std::string, std::string>> headers;
    std::deque<std::string> lines;    // stream: complete lines not yet delivered
    HttpClient::OnResponse on_response;
    HttpClient::OnMessage on_message;
    HttpClient::OnEnd on_end;
    char error[CURL_ERROR_SIZE] = {};

    ~Transfer() {
        if (easy != nullptr)
            curl_easy_cleanup(easy);
        curl_slist_free_all(header_list);
    }
};

// Runs inside curl: only buffers. Lines go out from dispatch().
std::size_t on_write(char* data, std::size_t size, std::size_t count, void* user) {
    auto& t = *static_cast<Transfer*>(user);
    const std::size_t n = size * count;
    if (!t.streaming) {
        if (t.body.size() + n > kMaxBody) {
            t.too_large = true;
            return 0;   // aborts the transfer (CURLE_WRITE_ERROR)
        }
        t.body.append(data, n);
        return n;
    }
    std::string_view chunk(data, n);
    for (std::size_t eol; (eol = chunk.find('\n')) != std::string_view::npos; chunk.remove_prefix(eol + 1)) {
        t.body.append(chunk.substr(0, eol));
        if (!t.body.empty())
            t.lines.push_back(std::move(t.body));
        t.body.clear();
    }
    t.body.append(chunk);
    if (t.body.size() > kMaxLine) {
        t.too_large = true;
        return 0;
    }
    return n;
}

// Runs inside curl: keeps "name: value" lines (trailers come this way too).
std::size_t on_header(char* data, std::size_t size, std::size_t count, void* user) {
    auto& t = *static_cast<Transfer*>(user);
    const std::size_t n = size * count;
    std::string_view line(data, n);
    const auto colon = line.find(':');
    if (colon == std::string_view::npos || line.starts_with("HTTP/"))
        return n;
    std::string name(line.substr(0, colon));
    for (char& c : name)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
        value.remove_prefix(1);
    while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' '))
        value.remove_suffix(1);
    t.headers.emplace_back(std::move(name), std::string(value));
    return n;
}

}  // namespace

const std::string* HttpResponse::header(std::string_view name) const {
    for (const auto& [n, v] : headers)
        if (n == name)
            return &v;
    return nullptr;
}

class HttpClient::Impl {
    using Transfers = std::unordered_map<HttpClient::RequestId, std::unique_ptr<Transfer>>;

public:
    Impl(CURLM* multi, int epoll_fd, int timer_fd) : multi_(multi), epoll_fd_(epoll_fd), timer_fd_(timer_fd) {
        curl_multi_setopt(multi_, CURLMOPT_SOCKETFUNCTION, &Impl::on_socket);
        curl_multi_setopt(multi_, CURLMOPT_SOCKETDATA, this);
        curl_multi_setopt(multi_, CURLMOPT_TIMERFUNCTION, &Impl::on_timer);
        curl_multi_setopt(multi_, CURLMOPT_TIMERDATA, this);
    }
    ~Impl() {
        for (auto& [id, t] : transfers_)
            curl_multi_remove_handle(multi_, t->easy);
        transfers_.clear();
        curl_multi_cleanup(multi_);
        ::close(timer_fd_);
        ::close(epoll_fd_);
    }

    int fd() const noexcept { return epoll_fd_; }
    std::size_t in_flight() const noexcept { return transfers_.size(); }

    RequestId start(const HttpRequest& request, const TlsFiles& tls, bool streaming, OnResponse on_response,
                    OnMessage on_message, OnEnd on_end) {
        const std::string& url = request.url;
        const std::string& body = request.body;
        const auto timeout = request.timeout;
        auto t = std::make_unique<Transfer>();
        t->id = ++last_id_;
        t->streaming = streaming;
        t->on_response = std::move(on_response);
        t->on_message = std::move(on_message);
        t->on_end = std::move(on_end);
        t->easy = curl_easy_init();
        if (t->easy == nullptr)
            return fail_later(std::move(t), "curl_easy_init failed");
        CURL* e = t->easy;
        for (const std::string& header : request.headers)
            t->header_list = curl_slist_append(t->header_list, header.c_str());
        t->header_list = curl_slist_append(t->header_list, "Expect:");
        curl_easy_setopt(e, CURLOPT_URL, url.c_str());
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->header_list);
        curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &on_header);
        curl_easy_setopt(e, CURLOPT_HEADERDATA, t.get());
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
        curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, body.c_str());
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &on_write);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, t.get());
        curl_easy_setopt(e, CURLOPT_PRIVATE, t.get());
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->error);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e, CURLOPT_NOPROXY, "*");   // etcd is reached directly, never through $http_proxy
        if (request.http2) {
            t->http2 = true;
            ++http2_in_flight_;
            curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 512L * 1024);   // fewer passes over a large answer
            curl_easy_setopt(e, CURLOPT_HTTP_VERSION,
                             static_cast<long>(url.starts_with("https:") ? CURL_HTTP_VERSION_2TLS
                                                                         : CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE));
            // libcurl 7.88 fails to reuse an h2c connection etcd kept idle:
            // gRPC calls (rare: a full read) get a connection each.
            curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
            curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
        } else {
            curl_easy_setopt(e, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1));
        }
        curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
        curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, 10L);
        curl_easy_setopt(e, CURLOPT_TCP_KEEPINTVL, 5L);
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(timeout.count()));
        if (!streaming)
            curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
        if (!tls.ca_file.empty())
            curl_easy_setopt(e, CURLOPT_CAINFO, tls.ca_file.c_str());
        if (!tls.cert_file.empty())
            curl_easy_setopt(e, CURLOPT_SSLCERT, tls.cert_file.c_str());
        if (!tls.key_file.empty())
            curl_easy_setopt(e, CURLOPT_SSLKEY, tls.key_file.c_str());
        if (const CURLMcode code = curl_multi_add_handle(multi_, e); code != CURLM_OK)
            return fail_later(std::move(t), curl_multi_strerror(code));
        const RequestId id = t->id;
        transfers_.emplace(id, std::move(t));
        return id;
    }

    // A request that could not start still answers, from the next
    // dispatch(), never from inside the call that made it.
    RequestId fail_later(std::unique_ptr<Transfer> t, const char* why) {
        const RequestId id = t->id;
        if (t->http2)
            --http2_in_flight_;
        std::snprintf(t->error, sizeof t->error, "%s", why);
        failed_to_start_.push_back(std::move(t));
        arm_timer();   // wakes dispatch() now
        return id;
    }

    void cancel(RequestId id) {
        if (id == finishing_)
            finishing_cancelled_ = true;
        auto it = transfers_.find(id);
        if (it != transfers_.end())
            (void)take(it);
        std::erase_if(failed_to_start_, [id](const auto& t) { return t->id == id; });
    }

    // Takes a transfer out of curl and of transfers_.
    std::unique_ptr<Transfer> take(Transfers::iterator it) {
        std::unique_ptr<Transfer> t = std::move(it->second);
        transfers_.erase(it);
        curl_multi_remove_handle(multi_, t->easy);
        if (t->http2 && --http2_in_flight_ == 0)
            arm_timer();
        return t;
    }

    void dispatch() {
        epoll_event events[64];
        const int n = ::epoll_wait(epoll_fd_, events, 64, 0);
        int running = 0;
        for (int i = 0; i < n; ++i) {
            const int fd = events[i].data.fd;
            if (fd == timer_fd_) {
                std::uint64_t expirations = 0;
                (void)!::read(timer_fd_, &expirations, sizeof expirations);
                curl_multi_socket_action(multi_, CURL_SOCKET_TIMEOUT, 0, &running);
                continue;
            }
            int flags = 0;
            if (events[i].events & EPOLLIN)
                flags |= CURL_CSELECT_IN;
            if (events[i].events & EPOLLOUT)
                flags |= CURL_CSELECT_OUT;
            if (events[i].events & (EPOLLERR | EPOLLHUP))
                flags |= CURL_CSELECT_ERR;
            curl_multi_socket_action(multi_, fd, flags, &running);
        }
        deliver();
    }

    void run_until(const std::function<bool()>& done, std::chrono::milliseconds deadline) {
        const auto end = std::chrono::steady_clock::now() + deadline;
        while (!done()) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
            if (left.count() <= 0)
                return;
            pollfd p{epoll_fd_, POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(std::min<long long>(left.count(), 100))) > 0)
                dispatch();
        }
    }

private:
    // Lines and completions are handed out here, outside curl, so that a
    // callback may start or cancel anything (itself included).
    void deliver() {
        // Completions are read first: the line callbacks below may cancel
        // (and so free) a transfer that curl has already reported done.
        std::vector<std::pair<RequestId, CURLcode>> finished;
        int queued = 0;
        while (CURLMsg* msg = curl_multi_info_read(multi_, &queued))
            if (msg->msg == CURLMSG_DONE) {
                Transfer* t = nullptr;
                curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &t);
                finished.emplace_back(t->id, msg->data.result);
            }

        std::vector<RequestId> with_lines;
        for (auto& [id, t] : transfers_)
            if (!t->lines.empty())
                with_lines.push_back(id);
        for (RequestId id : with_lines)
            for (;;) {
                auto it = transfers_.find(id);
                if (it == transfers_.end() || it->second->lines.empty())
                    break;
                std::string line = std::move(it->second->lines.front());
                it->second->lines.pop_front();
                OnMessage on_message = it->second->on_message;   // a copy: the callback may cancel
                on_message(line);
            }

        for (auto& t : std::exchange(failed_to_start_, {})) {
            finishing_ = t->id;
            finishing_cancelled_ = false;
            finish(*t, CURLE_FAILED_INIT, 0);
            finishing_ = 0;
        }

        for (auto [id, code] : finished) {
            auto it = transfers_.find(id);
            if (it == transfers_.end())
                continue;
            std::unique_ptr<Transfer> t = take(it);
            long status = 0;
            curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
            finishing_ = id;
            finishing_cancelled_ = false;
            finish(*t, code, status);
            finishing_ = 0;
        }
    }

    // The transfer has left transfers_; a callback may still cancel it (by
    // id), after which nothing more of it is delivered.
    void finish(Transfer& t, CURLcode code, long status) {
        std::optional<Error> error;
        if (t.too_large)
            error = Error{Errc::kCapacity, t.streaming ? "a streamed message is too large" : "the answer is too large"};
        else if (code != CURLE_OK)
            error = Error{Errc::kSystem, t.error[0] != '\0' ? std::string(t.error) : curl_easy_strerror(code)};
        if (!t.streaming) {
            if (error)
                t.on_response(std::move(*error));
            else
                t.on_response(HttpResponse{status, std::move(t.body), std::move(t.headers)});
            return;
        }
        for (std::string& line : t.lines) {   // what arrived with the end
            if (finishing_cancelled_)
                return;
            t.on_message(line);
        }
        if (!t.body.empty() && !error && !finishing_cancelled_)
            t.on_message(t.body);
        if (finishing_cancelled_)
            return;
        if (!error && status != 200)
            error = Error{Errc::kSystem, "HTTP status " + std::to_string(status)};
        t.on_end(error ? Status(std::move(*error)) : ok());
    }

    static int on_socket(CURL*, curl_socket_t s, int what, void* user, void*) {
        auto& self = *static_cast<Impl*>(user);
        if (what == CURL_POLL_REMOVE) {
            ::epoll_ctl(self.epoll_fd_, EPOLL_CTL_DEL, s, nullptr);
            self.sockets_.erase(s);
            return 0;
        }
        epoll_event ev{};
        ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0u) | (what & CURL_POLL_OUT ? EPOLLOUT : 0u);
        ev.data.fd = s;
        const bool known = self.sockets_.emplace(s, true).second == false;
        if (::epoll_ctl(self.epoll_fd_, known ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, s, &ev) != 0 && errno == ENOENT)
            ::epoll_ctl(self.epoll_fd_, EPOLL_CTL_ADD, s, &ev);   // curl reused a number we had removed
        return 0;
    }

    static int on_timer(CURLM*, long timeout_ms, void* user) {
        auto& self = *static_cast<Impl*>(user);
        self.curl_timeout_ms_ = timeout_ms;
        self.arm_timer();
        return 0;
    }

    // curl's timeout, or 1 ms while an HTTP/2 transfer runs: libcurl 7.88
    // can leave received HTTP/2 data buffered with the socket drained and
    // no timeout asked for, stalling the answer by 150-200 ms
    // (perf/RESULTS.md, etcd); the tick costs nothing between full reads.
    void arm_timer() {
        long timeout_ms = curl_timeout_ms_;
        if (http2_in_flight_ != 0 && (timeout_ms < 0 || timeout_ms > 1))
            timeout_ms = 1;
        if (!failed_to_start_.empty())
            timeout_ms = 0;
        itimerspec spec{};
        if (timeout_ms >= 0) {
            // Zero means "now": the smallest non-zero expiry, since zero disarms.
            spec.it_value.tv_sec = timeout_ms / 1000;
            spec.it_value.tv_nsec = timeout_ms == 0 ? 1 : (timeout_ms % 1000) * 1'000'000;
        }
        ::timerfd_settime(timer_fd_, 0, &spec, nullptr);
    }

    CURLM* multi_;
    int epoll_fd_;
    int timer_fd_;
    RequestId last_id_ = 0;
    long curl_timeout_ms_ = -1;
    std::size_t http2_in_flight_ = 0;
    RequestId finishing_ = 0;
    bool finishing_cancelled_ = false;
    Transfers transfers_;
    std::vector<std::unique_ptr<Transfer>> failed_to_start_;
    std::unordered_map<curl_socket_t, bool> sockets_;
};

Result<HttpClient> HttpClient::create() {
    init_curl_once();
    const int epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd < 0)
        return system_error("epoll_create1");
    const int timer_fd = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (timer_fd < 0) {
        auto error = system_error("timerfd_create");
        ::close(epoll_fd);
        return error;
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = timer_fd;
    ::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, timer_fd, &ev);
    CURLM* multi = curl_multi_init();
    if (multi == nullptr) {
        ::close(timer_fd);
        ::close(epoll_fd);
        return Error{Errc::kSystem, "curl_multi_init failed"};
    }
    return HttpClient(std::make_unique<Impl>(multi, epoll_fd, timer_fd));
}

HttpClient::HttpClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpClient::HttpClient(HttpClient&&) noexcept = default;
HttpClient& HttpClient::operator=(HttpClient&&) noexcept = default;
HttpClient::~HttpClient() = default;

int HttpClient::fd() const noexcept { return impl_->fd(); }
void HttpClient::dispatch() { impl_->dispatch(); }
void HttpClient::run_until(const std::function<bool()>& done, std::chrono::milliseconds deadline) {
    impl_->run_until(done, deadline);
}
std::size_t HttpClient::in_flight() const noexcept { return impl_->in_flight(); }

HttpClient::RequestId HttpClient::send(HttpRequest request, const TlsFiles& tls, OnResponse on_response) {
    return impl_->start(request, tls, false, std::move(on_response), {}, {});
}

HttpClient::RequestId HttpClient::post(const std::string& url, std::string body, const TlsFiles& tls,
                                       std::chrono::milliseconds timeout, OnResponse on_response) {
    return send(HttpRequest{url, std::move(body), {"Content-Type: application/json"}, false, timeout}, tls,
                std::move(on_response));
}

HttpClient::RequestId HttpClient::stream(HttpRequest request, const TlsFiles& tls, OnMessage on_message, OnEnd on_end) {
    return impl_->start(request, tls, true, {}, std::move(on_message), std::move(on_end));
}

void HttpClient::cancel(RequestId id) { impl_->cancel(id); }

}  // namespace podfwd::control::etcd
