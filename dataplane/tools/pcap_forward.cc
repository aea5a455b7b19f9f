// podfwd-pcap-forward: the fast path (podfwd::dp::Forwarder), its exception
// path (podfwd::dp::ExceptionPath) and, when the config has a "neighbour"
// object, the resolver (podfwd::dp::Resolver: ARP for next hops without a
// MAC) over the packets of pcap files, without DPDK. Builds a route table
// from a JSON config (pcap_config.h) in a private shared-memory segment,
// feeds the packets in bursts, and writes what is sent to each port into a
// pcap of its own, as the poll loop does it (app/worker.cc): punts answered
// after their burst, ICMP errors to remote sources routed by one more pass
// from the host port. The clock is the pcap's timestamps, so runs are
// reproducible: the ICMP rate limit's, and the resolver's, whose timer runs
// every tick_ms from the first packet on (also between packets far apart).
//
//   podfwd-pcap-forward --config cfg.json --out-uplink up.pcap --out-host host.pcap
//       (--in in.pcap --from uplink|host | --in-uplink a.pcap | --in-host b.pcap)...
//       [--counters counters.json] [--burst N] [--announce] [--run-after-ms N]
//
// Inputs, bursts, the resolver's timer and what is held: README.md. Every
// input packet is sent or counted as dropped exactly once: the tool fails
// (status 1) when one is not.
//
// Exit status: 0 done, 1 runtime error (pcap, segment, a packet lost), 2 usage or config error.

#include <unistd.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/ipv4.h"
#include "common/result.h"
#include "dataplane/counters.h"
#include "dataplane/exception.h"
#include "dataplane/fastpath.h"
#include "dataplane/proto/arp.h"
#include "dataplane/resolver.h"
#include "dataplane/tools/pcap_config.h"
#include "dataplane/tools/pcap_file.h"
#include "lpm/reader.h"
#include "lpm/types.h"
#include "lpm/writer.h"

namespace {

using namespace podfwd;
using pcaptool::Config;
using pcaptool::ConfigError;
using pcaptool::fail;

constexpr std::uint32_t kHeadroom = 128;   // RTE_PKTMBUF_HEADROOM
constexpr int kExitRuntime = 1;
constexpr int kExitUsage = 2;
constexpr std::uint64_t kNsPerSec = 1'000'000'000;
// Timer runs between two packets further apart than this are skipped (one
// tick at the later one instead): a pcap spanning days must not take days.
constexpr std::uint64_t kMaxCatchUpTicks = 100'000;

const char kUsage[] =
    "usage: podfwd-pcap-forward --config cfg.json --out-uplink up.pcap --out-host host.pcap\n"
    "                           (--in in.pcap --from uplink|host | --in-uplink a.pcap | --in-host b.pcap)...\n"
    "                           [--counters counters.json] [--burst N] [--announce] [--run-after-ms N]\n";

struct InputFile {
    std::string path;
    dp::PortRole port;
};

struct Options {
    std::string config, out_uplink, out_host, counters;
    std::vector<InputFile> inputs;   // at most one per port
    unsigned burst = 32;
    bool announce = false;
    std::uint32_t run_after_ms = 0;
};

unsigned parse_uint(std::string_view what, std::string_view text, unsigned min, unsigned max) {
    unsigned v = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc{} || end != text.data() + text.size() || v < min || v > max)
        fail(std::string(what) + ": '" + std::string(text) + "' is not an integer in " + std::to_string(min) + ".." +
             std::to_string(max));
    return v;
}

Options parse_args(int argc, char** argv) {
    Options o;
    std::optional<std::string> in, from;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "-h" || arg == "--help") {
            std::fputs(kUsage, stdout);
            std::exit(0);
        }
        if (arg == "--announce") {
            o.announce = true;
            continue;
        }
        if (i + 1 >= argc)
            fail("option " + std::string(arg) + " needs a value (or is unknown)");
        const std::string value = argv[++i];
        if (arg == "--config")
            o.config = value;
        else if (arg == "--in")
            in = value;
        else if (arg == "--from")
            from = value;
        else if (arg == "--in-uplink")
            o.inputs.push_back({value, dp::PortRole::kUplink});
        else if (arg == "--in-host")
            o.inputs.push_back({value, dp::PortRole::kHost});
        else if (arg == "--out-uplink")
            o.out_uplink = value;
        else if (arg == "--out-host")
            o.out_host = value;
        else if (arg == "--counters")
            o.counters = value;
        else if (arg == "--burst")
            o.burst = parse_uint("--burst", value, 1, dp::kMaxBurst);
        else if (arg == "--run-after-ms")
            o.run_after_ms = parse_uint("--run-after-ms", value, 0, 86'400'000);
        else
            fail("unknown option " + std::string(arg));
    }
    if (in.has_value() != from.has_value())
        fail("--in and --from go together");
    if (from) {
        if (*from == "uplink")
            o.inputs.push_back({*in, dp::PortRole::kUplink});
        else if (*from == "host")
            o.inputs.push_back({*in, dp::PortRole::kHost});
        else
            fail("--from: '" + *from + "' is neither uplink nor host");
    }
    if (o.config.empty() || o.inputs.empty() || o.out_uplink.empty() || o.out_host.empty())
        fail("--config, --in and --from (or --in-uplink, --in-host), --out-uplink and --out-host are required");
    if (o.inputs.size() == 2 && o.inputs[0].port == o.inputs[1].port)
        fail("one input per port");
    if (o.inputs.size() > 2)
        fail("at most two inputs, one per port");
    return o;
}

// ---- the table ----

// Unlinks the private segment however the tool ends (run() also unlinks it
// once mapped, so that a crash later leaves nothing).
class SegmentGuard {
public:
    explicit SegmentGuard(std::string name) : name_(std::move(name)) { (void)lpm::TableWriter::unlink(name_); }
    ~SegmentGuard() { (void)lpm::TableWriter::unlink(name_); }
    SegmentGuard(const SegmentGuard&) = delete;
    SegmentGuard& operator=(const SegmentGuard&) = delete;
    const std::string& name() const noexcept { return name_; }

private:
    std::string name_;
};

struct RuntimeError {
    std::string message;
};

template <class T>
T check(Result<T> r, const std::string& what) {
    if (!r)
        throw RuntimeError{what + ": " + errc_name(r.error().code) + ": " + r.error().message};
    return std::move(r).value();
}
void check(Status s, const std::string& what) {
    if (!s)
        throw RuntimeError{what + ": " + errc_name(s.error().code) + ": " + s.error().message};
}

lpm::TableWriter build_table(const std::string& name, const Config& c) {
    lpm::TableWriter::Options o;
    const auto routes = static_cast<std::uint32_t>(c.routes.size());
    o.capacity = lpm::Capacity{.max_routes = routes + 16,
                               .max_nexthops = static_cast<std::uint32_t>(c.nexthops.size()) + 16,
                               .reader_slots = 4,
                               .max_groups = routes + 16};
    auto writer = check(lpm::TableWriter::open(name, o), "creating the route table");
    std::map<std::string, lpm::NextHopId, std::less<>> ids;
    for (const pcaptool::NextHopConfig& nh : c.nexthops)
        ids[nh.name] = check(writer.nexthop_add(nh.record), "next hop " + nh.name);
    for (const pcaptool::RouteConfig& r : c.routes)
        check(writer.route_add(r.prefix, ids.at(r.via)), "route " + r.prefix.str());
    check(writer.commit(), "commit");
    return writer;
}

// ---- the input ----

struct Input {
    pcap::Packet packet;
    dp::PortRole port;
    std::uint64_t now_ns;
};

// Each file in its own order; two merged by timestamp, the uplink's packet
// first at the same instant (an ARP reply is learned before what it frees).
std::vector<Input> read_inputs(const std::vector<InputFile>& files) {
    std::vector<Input> lists[2];
    for (std::size_t i = 0; i < files.size(); ++i) {
        // Uplink's first: list 0, unless only the host port has a file.
        const bool second = files.size() == 2 && files[i].port == dp::PortRole::kHost;
        for (pcap::Packet& p : check(pcap::read_file(files[i].path), "reading input")) {
            const std::uint64_t now = std::uint64_t{p.ts_sec} * kNsPerSec + std::uint64_t{p.ts_usec} * 1000;
            lists[second ? 1 : 0].push_back(Input{std::move(p), files[i].port, now});
        }
    }
    if (lists[1].empty())
        return std::move(lists[0]);
    std::vector<Input> merged;
    merged.reserve(lists[0].size() + lists[1].size());
    std::size_t a = 0;
    std::size_t b = 0;
    while (a < lists[0].size() || b < lists[1].size()) {
        const bool take_a = b == lists[1].size() || (a < lists[0].size() && lists[0][a].now_ns <= lists[1][b].now_ns);
        merged.push_back(std::move(take_a ? lists[0][a++] : lists[1][b++]));
    }
    return merged;
}

// ---- the run ----

class Runner {
public:
    Runner(const Options& opt, const Config& config, std::vector<Input> inputs, const lpm::TableView& table,
           lpm::ReaderSlot& reader)
        : opt_(opt), inputs_(std::move(inputs)), reader_(reader), forwarder_(config.node, table),
          exception_(config.node, table, config.icmp_rate, config.icmp_burst), slots_(inputs_.size()),
          out_uplink_(check(pcap::Writer::create(opt.out_uplink), "output")),
          out_host_(check(pcap::Writer::create(opt.out_host), "output")) {
        if (config.resolver) {
            resolver_ = std::make_unique<dp::Resolver>(config.node, table, forwarder_, exception_,
                                                       config.resolver->neighbour, config.resolver->tick_ns);
            tick_ns_ = config.resolver->tick_ns;
        }
    }

    void run();
    void write_counters(const std::string& path) const;

private:
    enum class SlotState : std::uint8_t { kUnread, kLive, kDone };
    struct Slot {
        std::vector<std::uint8_t> buffer;
        dp::PacketView view{};
        SlotState state = SlotState::kUnread;
    };
    struct Routed {
        std::size_t index;
        std::uint64_t now_ns;
    };

    void load(std::size_t index);
    void burst(std::size_t first, unsigned n);
    void punt(std::size_t index, dp::PortRole from, dp::Verdict verdict, std::uint64_t now_ns);
    void settle(std::size_t index, dp::ResolveOutcome outcome, std::uint64_t now_ns);
    void route_pending();
    void emit(std::size_t index, dp::Verdict verdict, std::uint64_t now_ns);
    void send_frame(const std::uint8_t* frame, std::size_t len, std::uint64_t now_ns);
    void advance_to(std::uint64_t now_ns);
    void drain(std::uint64_t now_ns);
    Slot& live(std::uintptr_t handle, const char* what);
    void check_view(std::size_t index) const;

    const Options& opt_;
    std::vector<Input> inputs_;
    lpm::ReaderSlot& reader_;
    dp::Forwarder forwarder_;
    dp::ExceptionPath exception_;
    std::unique_ptr<dp::Resolver> resolver_;
    std::uint64_t tick_ns_ = 0;
    std::uint64_t next_tick_ns_ = 0;   // the resolver's timer, on a grid from the first packet
    std::vector<Slot> slots_;          // one per input packet: the handle is its index
    // Packets to route once more from the host port (ICMP errors to remote
    // sources), after the burst that made them as the poll loop does.
    std::vector<Routed> routed_;
    bool in_burst_ = false;
    pcap::Writer out_uplink_;
    pcap::Writer out_host_;
    dp::LcoreCounters counters_;
    std::uint64_t verdict_counts_[3] = {};   // input packets by final verdict
    std::uint64_t frames_sent_ = 0;          // frames of our own: ARP requests, the announcement
    std::vector<dp::NeighbourInfo> neighbours_;   // the cache at the end, before the flush
};

void Runner::run() {
    if (resolver_) {
        next_tick_ns_ = inputs_.empty() ? 0 : inputs_.front().now_ns;
        if (opt_.announce) {
            std::array<std::uint8_t, proto::kArpFrameSize> frame{};
            const std::size_t len = resolver_->write_announcement(frame.data());
            counters_.count(dp::Action::kArpRequest);
            send_frame(frame.data(), len, next_tick_ns_);
        }
    }
    // A burst: packets of one port; with the resolver, of one instant too
    // (what arrived together), or its timer and ARP would act before
    // packets that came earlier but wait for the burst's end.
    const auto joins = [&](const Input& a, const Input& b) {
        return a.port == b.port && (!resolver_ || a.now_ns == b.now_ns);
    };
    for (std::size_t first = 0; first < inputs_.size();) {
        unsigned n = 1;
        while (n < opt_.burst && first + n < inputs_.size() && joins(inputs_[first], inputs_[first + n]))
            ++n;
        burst(first, n);
        first += n;
        reader_.quiescent();
    }
    if (resolver_) {
        std::uint64_t last = 0;
        for (const Input& in : inputs_)
            last = std::max(last, in.now_ns);
        const std::uint64_t end = last + std::uint64_t{opt_.run_after_ms} * 1'000'000;
        advance_to(end);
        neighbours_.resize(resolver_->cache().size());
        neighbours_.resize(resolver_->cache().snapshot(end, neighbours_));
        std::sort(neighbours_.begin(), neighbours_.end(),
                  [](const dp::NeighbourInfo& a, const dp::NeighbourInfo& b) { return a.ip < b.ip; });
        resolver_->flush(counters_);
        drain(end);
        reader_.quiescent();
    }
    // The resolver's promise, checked: every handle it kept came back.
    for (std::size_t i = 0; i < slots_.size(); ++i)
        if (slots_[i].state != SlotState::kDone)
            throw RuntimeError{"packet " + std::to_string(i + 1) + " was neither sent nor dropped"};
    check(out_uplink_.close(), "output");
    check(out_host_.close(), "output");
}

void Runner::load(std::size_t index) {
    const auto& data = inputs_[index].packet.data;
    Slot& s = slots_[index];
    // A fresh allocation of exactly headroom + frame, as an mbuf holding it:
    // anything the fast path touches outside is caught by ASan/valgrind (a
    // reused, larger vector would hide it).
    s.buffer = std::vector<std::uint8_t>(kHeadroom + data.size());
    std::copy(data.begin(), data.end(), s.buffer.begin() + kHeadroom);
    s.view = dp::PacketView{s.buffer.data() + kHeadroom, static_cast<std::uint32_t>(data.size()), kHeadroom};
    s.state = SlotState::kLive;
}

void Runner::check_view(std::size_t index) const {
    const Slot& s = slots_[index];
    const dp::PacketView& v = s.view;
    if (v.data < s.buffer.data() || v.data + v.len > s.buffer.data() + s.buffer.size() ||
        v.data - s.buffer.data() != static_cast<std::ptrdiff_t>(v.headroom))
        throw RuntimeError{"packet " + std::to_string(index + 1) + ": a view left its buffer"};
}

void Runner::burst(std::size_t first, unsigned n) {
    dp::PacketView views[dp::kMaxBurst];
    dp::Verdict verdicts[dp::kMaxBurst];
    const dp::PortRole from = inputs_[first].port;
    for (unsigned i = 0; i < n; ++i) {
        load(first + i);
        views[i] = slots_[first + i].view;
        verdicts[i] = dp::Verdict::kDrop;
    }
    counters_.rx_packets[static_cast<unsigned>(from)] += n;
    forwarder_.process(from, views, verdicts, n, counters_);
    in_burst_ = true;   // its kRoute packets wait for its end
    for (unsigned i = 0; i < n; ++i) {
        const std::size_t index = first + i;
        const std::uint64_t now = inputs_[index].now_ns;
        slots_[index].view = views[i];
        check_view(index);
        // The timer first: what was due before this packet happened before it.
        advance_to(now);
        if (dp::is_punt(verdicts[i]))
            punt(index, from, verdicts[i], now);
        else
            emit(index, verdicts[i], now);
    }
    in_burst_ = false;
    route_pending();
}

void Runner::punt(std::size_t index, dp::PortRole from, dp::Verdict verdict, std::uint64_t now_ns) {
    dp::PacketView& view = slots_[index].view;
    if (!resolver_) {
        const dp::ExceptionResult r = exception_.handle(from, verdict, view, now_ns, counters_);
        check_view(index);
        settle(index,
               r == dp::ExceptionResult::kToUplink ? dp::ResolveOutcome::kToUplink
               : r == dp::ExceptionResult::kToHost ? dp::ResolveOutcome::kToHost
               : r == dp::ExceptionResult::kRoute  ? dp::ResolveOutcome::kRoute
                                                   : dp::ResolveOutcome::kDrop,
               now_ns);
        return;
    }
    const dp::ResolveOutcome r = resolver_->handle(from, verdict, view, index, now_ns, counters_);
    check_view(index);
    settle(index, r, now_ns);
    drain(now_ns);
}

void Runner::settle(std::size_t index, dp::ResolveOutcome outcome, std::uint64_t now_ns) {
    switch (outcome) {
    case dp::ResolveOutcome::kToUplink: emit(index, dp::Verdict::kUplink, now_ns); return;
    case dp::ResolveOutcome::kToHost: emit(index, dp::Verdict::kHost, now_ns); return;
    case dp::ResolveOutcome::kDrop: emit(index, dp::Verdict::kDrop, now_ns); return;
    case dp::ResolveOutcome::kRoute: routed_.push_back(Routed{index, now_ns}); return;
    case dp::ResolveOutcome::kHeld: return;   // in the resolver's queue: it gives the handle back
    }
}

// One more pass from the host port, as the poll loop routes the exception
// path's kRoute packets; a second punt is the exception path's (or the
// resolver's) to count, and nothing goes round a third time.
void Runner::route_pending() {
    while (!routed_.empty()) {
        const auto n = static_cast<unsigned>(std::min<std::size_t>(routed_.size(), dp::kMaxBurst));
        dp::PacketView views[dp::kMaxBurst];
        dp::Verdict verdicts[dp::kMaxBurst];
        Routed batch[dp::kMaxBurst];
        std::copy_n(routed_.begin(), n, batch);
        routed_.erase(routed_.begin(), routed_.begin() + n);
        for (unsigned k = 0; k < n; ++k)
            views[k] = slots_[batch[k].index].view;
        forwarder_.process(dp::PortRole::kHost, views, verdicts, n, counters_);
        for (unsigned k = 0; k < n; ++k) {
            const std::size_t index = batch[k].index;
            const std::uint64_t now = batch[k].now_ns;
            dp::PacketView& view = slots_[index].view;
            view = views[k];
            check_view(index);
            if (!dp::is_punt(verdicts[k])) {
                emit(index, verdicts[k], now);
                continue;
            }
            if (!resolver_) {
                const dp::ExceptionResult r = exception_.handle(dp::PortRole::kHost, verdicts[k], view, now, counters_);
                check_view(index);
                emit(index,
                     r == dp::ExceptionResult::kToUplink ? dp::Verdict::kUplink
                     : r == dp::ExceptionResult::kToHost ? dp::Verdict::kHost
                                                         : dp::Verdict::kDrop,
                     now);
                continue;
            }
            dp::ResolveOutcome r = resolver_->handle(dp::PortRole::kHost, verdicts[k], view, index, now, counters_);
            check_view(index);
            settle(index, r == dp::ResolveOutcome::kRoute ? dp::ResolveOutcome::kDrop : r, now);
            drain(now);
        }
    }
}

void Runner::emit(std::size_t index, dp::Verdict verdict, std::uint64_t now_ns) {
    Slot& s = live(index, "sent or dropped");
    ++verdict_counts_[static_cast<unsigned>(verdict)];
    const auto sec = static_cast<std::uint32_t>(now_ns / kNsPerSec);
    const auto usec = static_cast<std::uint32_t>(now_ns % kNsPerSec / 1000);
    if (verdict == dp::Verdict::kUplink)
        check(out_uplink_.write(sec, usec, s.view.data, s.view.len), "output");
    else if (verdict == dp::Verdict::kHost)
        check(out_host_.write(sec, usec, s.view.data, s.view.len), "output");
    s = Slot{};   // the mbuf freed (by the driver once sent)
    s.state = SlotState::kDone;
}

void Runner::send_frame(const std::uint8_t* frame, std::size_t len, std::uint64_t now_ns) {
    ++frames_sent_;
    check(out_uplink_.write(static_cast<std::uint32_t>(now_ns / kNsPerSec),
                            static_cast<std::uint32_t>(now_ns % kNsPerSec / 1000), frame,
                            static_cast<std::uint32_t>(len)),
          "output");
}

Runner::Slot& Runner::live(std::uintptr_t handle, const char* what) {
    if (handle >= slots_.size() || slots_[handle].state != SlotState::kLive)
        throw RuntimeError{"packet " + std::to_string(handle + 1) + " " + what +
                           " but not live (a handle given back twice?)"};
    return slots_[handle];
}

// The poll loop calls tick() on every pass and it runs every tick_ns: here
// on a grid from the first packet, every step up to `now_ns`.
void Runner::advance_to(std::uint64_t now_ns) {
    if (!resolver_)
        return;
    if (now_ns > next_tick_ns_ && (now_ns - next_tick_ns_) / tick_ns_ > kMaxCatchUpTicks)
        next_tick_ns_ = now_ns;
    while (next_tick_ns_ <= now_ns) {
        const std::uint64_t t = next_tick_ns_;
        next_tick_ns_ += tick_ns_;
        resolver_->tick(t, counters_);
        drain(t);
        if (!in_burst_)
            route_pending();
    }
}

// What the resolver produced, as the poll loop sends it: its requests on
// the uplink, released packets where they go now, freed ones dropped.
void Runner::drain(std::uint64_t now_ns) {
    std::array<dp::ArpRequest, 64> requests;
    std::array<std::uintptr_t, 64> handles;
    // Releasing may hold a packet again (its route moved meanwhile), and so
    // ask for more; each round takes what the last one left.
    for (int round = 0;; ++round) {
        if (round == 10'000)
            throw RuntimeError{"the resolver keeps giving back work at one instant"};
        std::size_t work = 0;
        const std::size_t nr = resolver_->take_requests(requests);
        for (std::size_t k = 0; k < nr; ++k) {
            std::array<std::uint8_t, proto::kArpFrameSize> frame{};
            const std::size_t len = resolver_->write_request(frame.data(), requests[k]);
            counters_.count(dp::Action::kArpRequest);
            send_frame(frame.data(), len, now_ns);
        }
        work += nr;
        const std::size_t nl = resolver_->take_released(handles);
        for (std::size_t k = 0; k < nl; ++k) {
            const std::uintptr_t h = handles[k];
            Slot& s = live(h, "released");
            const dp::ResolveOutcome r = resolver_->release(s.view, h, now_ns, counters_);
            check_view(h);
            settle(h, r, now_ns);
        }
        work += nl;
        const std::size_t nf = resolver_->take_freed(handles);
        for (std::size_t k = 0; k < nf; ++k)
            emit(handles[k], dp::Verdict::kDrop, now_ns);   // counted by the resolver
        work += nf;
        if (work == 0)
            return;
    }
}

void Runner::write_counters(const std::string& path) const {
    nlohmann::ordered_json doc;   // counters in enum order
    doc["actions"] = nlohmann::ordered_json::object();
    doc["drops"] = nlohmann::ordered_json::object();
    for (unsigned a = 0; a < static_cast<unsigned>(dp::Action::kCount); ++a)
        doc["actions"][dp::action_name(static_cast<dp::Action>(a))] = counters_.actions[a];
    for (unsigned d = 0; d < static_cast<unsigned>(dp::Drop::kCount); ++d)
        doc["drops"][dp::drop_name(static_cast<dp::Drop>(d))] = counters_.drops[d];
    doc["verdicts"] = {{"uplink", verdict_counts_[0]}, {"host", verdict_counts_[1]}, {"drop", verdict_counts_[2]}};
    if (resolver_) {
        doc["frames_sent"] = frames_sent_;
        doc["neighbours"] = nlohmann::ordered_json::array();
        for (const dp::NeighbourInfo& n : neighbours_)
            doc["neighbours"].push_back({{"ip", format_ipv4(n.ip)},
                                         {"mac", format_mac(n.mac)},
                                         {"state", dp::neighbour_state_name(n.state)},
                                         {"probes", n.probes},
                                         {"queued", n.queued}});
    }
    std::ofstream out(path);
    out << doc.dump(2) << '\n';
    out.close();
    if (!out)
        throw RuntimeError{path + ": write error"};
}

int run(int argc, char** argv) {
    const Options opt = parse_args(argc, argv);
    const Config config = pcaptool::parse_config(opt.config);
    if (!config.resolver && (opt.announce || opt.run_after_ms != 0))
        fail("--announce and --run-after-ms need a \"neighbour\" object in the config (the resolver)");
    std::vector<Input> inputs = read_inputs(opt.inputs);

    SegmentGuard segment("pcapfwd." + std::to_string(::getpid()));
    lpm::TableWriter writer = build_table(segment.name(), config);
    const lpm::TableView view = check(lpm::TableView::open(segment.name()), "opening the route table");
    lpm::ReaderSlot slot = check(view.register_reader(), "registering a reader");
    // Mapped by both ends now: the name can go, so that even a crash leaves
    // nothing in /dev/shm.
    (void)lpm::TableWriter::unlink(segment.name());

    Runner runner(opt, config, std::move(inputs), view, slot);
    runner.run();
    if (!opt.counters.empty())
        runner.write_counters(opt.counters);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        return run(argc, argv);
    } catch (const ConfigError& e) {
        std::fprintf(stderr, "podfwd-pcap-forward: %s\n", e.message.c_str());
        return kExitUsage;
    } catch (const RuntimeError& e) {
        std::fprintf(stderr, "podfwd-pcap-forward: %s\n", e.message.c_str());
        return kExitRuntime;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "podfwd-pcap-forward: %s\n", e.what());
        return kExitRuntime;
    }
}
