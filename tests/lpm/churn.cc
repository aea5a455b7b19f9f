#include "tests/lpm/churn.h"

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <map>

namespace podfwd::lpm::test {
namespace {

std::uint64_t key_of(const Prefix4& p) { return std::uint64_t{p.len} << 32 | p.addr; }

// Mixes node_ip so that the derived fields look unrelated: a torn record
// (fields of two versions) fails the check with near certainty.
std::uint32_t mix(std::uint32_t x) {
    x ^= x >> 16;
    x *= 0x7feb352du;
    x ^= x >> 15;
    x *= 0x846ca68bu;
    x ^= x >> 16;
    return x;
}

constexpr std::array<unsigned, 11> kChainLengths = {12, 16, 18, 19, 21, 24, 25, 27, 30, 31, 32};
constexpr std::array<std::uint8_t, 4> kFirstOctets = {10, 44, 100, 172};

std::string prefix_list(const Universe& u, std::span<const std::uint32_t> idx) {
    std::string s;
    for (auto i : idx)
        s += " " + u.prefixes[i].str();
    return s;
}

}  // namespace

NextHop churn_record(std::uint32_t prefix_index, unsigned slot, std::uint8_t version) {
    NextHop nh;
    nh.node_ip = prefix_index << 12 | slot << 8 | version;
    const std::uint32_t h = mix(nh.node_ip);
    nh.vni = nh.node_ip ^ 0x5a5a5a5au;
    nh.port = static_cast<std::uint16_t>(h);
    nh.mode = static_cast<ForwardMode>(1 + (h >> 16) % 4);
    nh.flags = NextHop::kMacResolved;
    nh.mac = {0x02, static_cast<std::uint8_t>(h >> 24), static_cast<std::uint8_t>(h >> 16),
              static_cast<std::uint8_t>(h >> 8), static_cast<std::uint8_t>(h), static_cast<std::uint8_t>(slot)};
    return nh;
}

std::optional<RecordOwner> decode_record(const NextHop& rec, std::size_t universe_size) {
    const RecordOwner o{rec.node_ip >> 12, (rec.node_ip >> 8) & 0xf, rec.node_ip & 0xff};
    if (o.prefix_index >= universe_size || o.slot >= kSlots)
        return std::nullopt;
    if (!(rec == churn_record(o.prefix_index, o.slot, static_cast<std::uint8_t>(o.version))))
        return std::nullopt;
    return o;
}

std::optional<std::uint32_t> Universe::find(const Prefix4& p) const {
    auto it = index_of.find(key_of(p));
    return it == index_of.end() ? std::nullopt : std::optional(it->second);
}

Universe Universe::build(std::uint64_t seed, std::size_t target, std::size_t probe_count) {
    Universe u;
    Rng rng(seed);
    auto add = [&](const Prefix4& p, bool permanent) {
        if (u.index_of.emplace(key_of(p), static_cast<std::uint32_t>(u.prefixes.size())).second) {
            u.prefixes.push_back(p);
            u.permanent.push_back(permanent);
        }
    };
    for (auto octet : kFirstOctets)
        add(Prefix4{Ipv4Addr{octet} << 24, 8}, true);
    while (u.prefixes.size() < target) {
        // Few second octets per /8 so chains share their /12../21 prefixes.
        const Ipv4Addr a = Ipv4Addr{rng.pick(kFirstOctets)} << 24 | static_cast<Ipv4Addr>(rng.below(4)) << 16 |
                           static_cast<Ipv4Addr>(rng.below(1 << 16));
        for (unsigned len : kChainLengths)
            if (u.prefixes.size() < target)
                add(Prefix4{a & prefix_mask(len), static_cast<std::uint8_t>(len)}, false);
    }
    // Probes inside random prefixes: every level of every chain is probed.
    u.cover_begin.push_back(0);
    for (std::size_t i = 0; i < probe_count; ++i) {
        const Ipv4Addr a = random_inside(rng, rng.pick(u.prefixes));
        std::vector<std::uint32_t> cov;
        for (std::uint32_t k = 0; k < u.prefixes.size(); ++k)
            if (u.prefixes[k].contains(a))
                cov.push_back(k);
        std::sort(cov.begin(), cov.end(), [&](auto x, auto y) { return u.prefixes[x].len > u.prefixes[y].len; });
        u.probes.push_back(a);
        u.cover.insert(u.cover.end(), cov.begin(), cov.end());
        u.cover_begin.push_back(static_cast<std::uint32_t>(u.cover.size()));
    }
    return u;
}

Assignment random_assignment(const Universe& u, std::uint64_t seed) {
    Rng rng(seed);
    Assignment a(u.size());
    for (std::size_t i = 0; i < u.size(); ++i)
        a[i] = (u.permanent[i] || rng.chance(0.5)) ? static_cast<std::int8_t>(rng.below(kSlots)) : -1;
    return a;
}

std::optional<std::string> judge_answer(const TableView& view, const Universe& u, std::size_t probe,
                                        NextHopId answer) {
    const auto cov = u.covering(probe);
    // Built only for a bad answer: this runs for every lookup.
    auto where = [&] { return format_ipv4(u.probes[probe]) + " (covered by" + prefix_list(u, cov) + ")"; };
    if (answer == kNoRoute)
        return "no route for " + where();
    const NextHop* rec = view.nexthop(answer);
    if (!rec)
        return "next hop " + std::to_string(answer) + " without a record for " + where();
    const NextHop copy = *rec;
    const auto owner = decode_record(copy, u.size());
    if (!owner)
        return "inconsistent record " + describe(copy) + " of next hop " + std::to_string(answer) + " for " + where();
    if (std::find(cov.begin(), cov.end(), owner->prefix_index) == cov.end())
        return "next hop " + std::to_string(answer) + " of " + u.prefixes[owner->prefix_index].str() + " for " +
               where();
    return std::nullopt;
}

void WriterReport::publish(const TableStats& s) noexcept {
    generation.store(s.generation);
    reclaimed_total.store(s.reclaimed_total);
    retired_pending.store(s.retired_pending);
    atomic_max(pending_max, s.retired_pending);
    dead_readers_reaped.store(s.dead_readers_reaped);
    readers_online.store(s.readers_online);
}

// ---------------------------------------------------------------- reader

namespace {

// Fails only on the first few so that a broken table does not flood the log.
void record_invalid(ReaderReport& r, const char* path, const std::string& what) {
    r.invalid.fetch_add(1, std::memory_order_relaxed);
    r.log.add(std::string(path) + ": " + what);
}

Result<TableView> open_view(const std::string& segment, Clock::time_point deadline) {
    for (;;) {
        auto v = TableView::open(segment);
        if (v || (v.error().code != Errc::kNotFound && v.error().code != Errc::kNotReady) || Clock::now() >= deadline)
            return v;
        std::this_thread::sleep_for(1ms);
    }
}

}  // namespace

int run_reader(const std::string& segment, const Universe& u, ReaderReport& report,
               const std::atomic<std::uint32_t>& stop, Clock::time_point deadline, std::uint64_t seed) {
    auto view = open_view(segment, std::min(deadline, Clock::now() + 30s));
    if (!view) {
        report.log.add("TableView::open: " + describe(view.error()));
        return kChildFailed;
    }
    auto slot = view->register_reader();
    if (!slot) {
        report.log.add("register_reader: " + describe(slot.error()));
        return kChildFailed;
    }
    report.ready.store(1);
    Rng rng(seed);
    constexpr std::size_t kMaxBatch = 32;
    std::array<std::size_t, kMaxBatch> probe{};
    std::array<Ipv4Addr, kMaxBatch> addrs{};
    std::array<NextHopId, kMaxBatch> bulk{};
    for (std::uint64_t it = 0; !stop.load(std::memory_order_relaxed) && Clock::now() < deadline; ++it) {
        const std::size_t n = rng.between(1, kMaxBatch);
        for (std::size_t k = 0; k < n; ++k) {
            probe[k] = rng.below(u.probes.size());
            addrs[k] = u.probes[probe[k]];
        }
        view->lookup_bulk(addrs.data(), bulk.data(), n);
        for (std::size_t k = 0; k < n; ++k) {
            if (auto bad = judge_answer(*view, u, probe[k], bulk[k]))
                record_invalid(report, "lookup_bulk", *bad);
            if (auto bad = judge_answer(*view, u, probe[k], view->lookup(addrs[k])))
                record_invalid(report, "lookup", *bad);
        }
        slot->quiescent();
        // Now and then go idle the documented way, as a sleeping lcore would.
        if (it % 4096 == 4095) {
            slot->offline();
            slot->online();
        }
        report.lookups.fetch_add(2 * n, std::memory_order_relaxed);
        report.iterations.fetch_add(1, std::memory_order_relaxed);
    }
    return report.invalid.load() == 0 ? kChildOk : kChildFailed;
}

// ---------------------------------------------------------------- writer

Churner::Churner(TableWriter& writer, const Universe& u, std::uint64_t seed)
    : w_(writer), u_(u), rng_(seed), ids_(u.size()), versions_(u.size()), state_(u.size(), -1) {}

Status Churner::ensure_nexthops(std::size_t& ignored_existing) {
    // The ids that already hold each record: ensure must answer one of them.
    std::unordered_map<Ipv4Addr, std::vector<std::pair<NextHopId, NextHop>>> existing;
    std::unordered_map<NextHopId, NextHop> taken;   // ids in use before: never handed out anew
    for (const auto& [id, rec] : w_.nexthops()) {
        existing[rec.node_ip].emplace_back(id, rec);
        taken[id] = rec;
    }
    ignored_existing = 0;
    for (std::uint32_t i = 0; i < u_.size(); ++i) {
        for (unsigned s = 0; s < kSlots; ++s) {
            const NextHop rec = churn_record(i, s, 0);
            auto id = w_.nexthop_ensure(rec);
            if (!id)
                return Error{id.error().code, "nexthop_ensure " + describe(rec) + ": " + id.error().message};
            if (w_.nexthop(*id) != rec)
                return Error{Errc::kInvalidArgument, "nexthop_ensure returned id " + std::to_string(*id) +
                                                         " whose record differs from " + describe(rec)};
            bool had_identical = false, returned_it = false;
            for (const auto& [e, erec] : existing[rec.node_ip]) {
                had_identical |= erec == rec;
                returned_it |= erec == rec && e == *id;
            }
            ignored_existing += had_identical && !returned_it;
            if (!returned_it && taken.contains(*id))
                return Error{Errc::kInvalidArgument, "nexthop_ensure handed out id " + std::to_string(*id) +
                                                         ", which already held " + describe(taken[*id])};
            ids_[i][s] = *id;
            versions_[i][s] = 0;
        }
    }
    return ok();
}

Status Churner::reconcile(const Assignment& desired) {
    std::vector<Route> routes;
    for (std::uint32_t i = 0; i < u_.size(); ++i)
        if (desired[i] >= 0)
            routes.push_back(Route{u_.prefixes[i], ids_[i][static_cast<unsigned>(desired[i])]});
    if (auto s = w_.reconcile(routes); !s)
        return Error{s.error().code, "reconcile: " + s.error().message};
    state_ = desired;
    return ok();
}

Status Churner::route_op(std::uint32_t idx) {
    const Prefix4& p = u_.prefixes[idx];
    const std::int8_t cur = state_[idx];
    if (cur >= 0 && !u_.permanent[idx] && rng_.chance(0.4)) {
        if (auto s = w_.route_del(p); !s)
            return Error{s.error().code, "route_del " + p.str() + ": " + s.error().message};
        state_[idx] = -1;
        return ok();
    }
    // Add, or move to another slot.
    const auto slot = static_cast<std::int8_t>(cur < 0 ? rng_.below(kSlots) : (cur + 1 + rng_.below(kSlots - 1)) % kSlots);
    const NextHopId nh = ids_[idx][static_cast<unsigned>(slot)];
    if (auto s = w_.route_add(p, nh); !s)
        return Error{s.error().code, "route_add " + p.str() + " -> " + std::to_string(nh) + ": " + s.error().message};
    state_[idx] = slot;
    return ok();
}

Status Churner::nexthop_op(std::uint32_t idx, unsigned slot) {
    const auto version = static_cast<std::uint8_t>(++versions_[idx][slot]);
    const NextHop rec = churn_record(idx, slot, version);
    if (auto s = w_.nexthop_update(ids_[idx][slot], rec); !s)
        return Error{s.error().code, "nexthop_update " + std::to_string(ids_[idx][slot]) + ": " + s.error().message};
    return ok();
}

Status Churner::churn_batch(std::size_t ops, WriterReport& report) {
    for (std::size_t k = 0; k < ops; ++k) {
        const auto idx = static_cast<std::uint32_t>(rng_.below(u_.size()));
        if (rng_.chance(0.85)) {
            if (auto s = route_op(idx); !s)
                return s;
            report.route_ops.fetch_add(1, std::memory_order_relaxed);
        } else {
            if (auto s = nexthop_op(idx, static_cast<unsigned>(rng_.below(kSlots))); !s)
                return s;
            report.nh_updates.fetch_add(1, std::memory_order_relaxed);
        }
    }
    if (auto s = w_.commit(); !s)
        return Error{s.error().code, "commit: " + s.error().message};
    report.commits.fetch_add(1, std::memory_order_relaxed);
    report.publish(w_.stats());
    return ok();
}

NextHopId Churner::expected(std::size_t probe) const {
    for (std::uint32_t idx : u_.covering(probe))   // longest first
        if (state_[idx] >= 0)
            return ids_[idx][static_cast<unsigned>(state_[idx])];
    return kNoRoute;
}

std::size_t Churner::check_writer(WriterReport& report) const {
    std::size_t bad = 0;
    std::vector<Route> want;
    for (std::uint32_t i = 0; i < u_.size(); ++i)
        if (state_[i] >= 0)
            want.push_back(Route{u_.prefixes[i], ids_[i][static_cast<unsigned>(state_[i])]});
    const auto got = sorted_routes(w_.routes());
    want = sorted_routes(std::move(want));
    if (got != want) {
        ++bad;
        report.fail("routes(): " + std::to_string(got.size()) + " routes, model " + std::to_string(want.size()));
    }
    for (std::size_t p = 0; p < u_.probes.size(); ++p) {
        const NextHopId w = w_.lookup(u_.probes[p]), e = expected(p);
        if (w != e && ++bad <= 3)
            report.fail("writer.lookup(" + format_ipv4(u_.probes[p]) + ") = " + std::to_string(w) + ", model " +
                        std::to_string(e));
    }
    return bad;
}

std::size_t Churner::check_view(const TableView& view, WriterReport& report) const {
    std::size_t bad = 0;
    for (std::size_t p = 0; p < u_.probes.size(); ++p) {
        const NextHopId v = view.lookup(u_.probes[p]), e = expected(p);
        if (v != e && ++bad <= 3)
            report.fail("view.lookup(" + format_ipv4(u_.probes[p]) + ") = " + std::to_string(v) + ", model " +
                        std::to_string(e));
    }
    return bad;
}

// ---------------------------------------------------------------- a churn run with killed readers

namespace {

// Pools small enough that a writer which cannot reclaim (a dead reader it
// does not reap) runs dry within seconds and fails with kCapacity: the writer
// retires millions of elements per second.
const TableWriter::Options kChurnOptions{
    .capacity = Capacity{.max_routes = 4096, .max_nexthops = 8192, .reader_slots = 16, .max_groups = 4096},
    .reclaim_timeout = 2000ms};

int run_churn_writer(const std::string& segment, const Universe& u, WriterReport& report,
                     const std::atomic<std::uint32_t>& stop, Clock::time_point deadline, std::uint64_t seed,
                     std::size_t max_batch) {
    auto w = TableWriter::open(segment, kChurnOptions);
    if (!w) {
        report.fail("TableWriter::open: " + describe(w.error()));
        return kChildFailed;
    }
    report.opened.store(1);
    Churner churner(*w, u, seed);
    std::size_t ignored = 0;
    if (auto s = churner.ensure_nexthops(ignored); !s) {
        report.fail(describe(s.error()));
        return kChildFailed;
    }
    if (auto s = churner.reconcile(random_assignment(u, seed + 1)); !s) {
        report.fail(describe(s.error()));
        return kChildFailed;
    }
    if (churner.check_writer(report) != 0)
        return kChildFailed;
    report.publish(w->stats());
    report.ready.store(1);
    Rng rng(seed + 2);
    while (!stop.load(std::memory_order_relaxed) && Clock::now() < deadline) {
        if (auto s = churner.churn_batch(rng.log_uniform(1, max_batch), report); !s) {
            report.fail(describe(s.error()));
            return kChildFailed;
        }
    }
    // The writer's own view must still agree with what it did.
    const std::size_t bad = churner.check_writer(report);
    report.finished.store(1);
    return bad == 0 ? kChildOk : kChildFailed;
}

}  // namespace

ChildProcess spawn_churn_writer(const std::string& segment, const Universe& u, WriterReport& report,
                                const std::atomic<std::uint32_t>& stop, Clock::time_point deadline,
                                std::uint64_t seed, std::size_t max_batch) {
    return ChildProcess::spawn(
        [&] { return run_churn_writer(segment, u, report, stop, deadline, seed, max_batch); });
}

::testing::AssertionResult writer_ready(const WriterReport& writer, Clock::duration timeout) {
    if (!poll_until([&] { return writer.ready.load() || writer.failures.load(); }, timeout))
        return ::testing::AssertionFailure() << "writer did not get ready";
    if (writer.failures.load() != 0)
        return ::testing::AssertionFailure() << "writer failed:" << writer.log.joined();
    return ::testing::AssertionSuccess();
}

::testing::AssertionResult readers_registered(std::span<const ReaderReport> readers, Clock::duration timeout) {
    const bool settled = poll_until(
        [&] {
            return std::all_of(readers.begin(), readers.end(),
                               [](const ReaderReport& r) { return r.ready.load() || r.log.count.load() != 0; });
        },
        timeout);
    if (!settled)
        return ::testing::AssertionFailure() << "readers did not register";
    for (std::size_t i = 0; i < readers.size(); ++i)
        if (!readers[i].ready.load())
            return ::testing::AssertionFailure() << "reader " << i << " gave up:" << readers[i].log.joined();
    return ::testing::AssertionSuccess();
}

bool writer_healthy_until(Clock::time_point until, const WriterReport& report, ChildProcess& writer) {
    while (Clock::now() < until) {
        if (report.failures.load() != 0 || writer.wait_for(0s))
            return false;
        std::this_thread::sleep_for(20ms);
    }
    return true;
}

void expect_reaped_and_reclaiming(const WriterReport& report, std::uint64_t reclaimed_at_kill,
                                  Clock::time_point kill_time, Clock::duration reap_timeout) {
    const bool reaped =
        poll_until([&] { return report.dead_readers_reaped.load() >= 1 || report.failures.load(); }, reap_timeout);
    const auto reap_time = Clock::now();
    EXPECT_TRUE(reaped && report.failures.load() == 0)
        << "the writer did not reap the killed reader (dead_readers_reaped " << report.dead_readers_reaped.load()
        << ")" << report.log.joined();
    const std::uint64_t reclaimed_at_reap = report.reclaimed_total.load();
    EXPECT_TRUE(poll_until([&] { return report.reclaimed_total.load() > reclaimed_at_reap; }, 10s))
        << "reclamation did not resume after the reap: reclaimed_total stuck at " << reclaimed_at_reap;
    EXPECT_GT(report.reclaimed_total.load(), reclaimed_at_kill);
    std::cout << "[   INFO   ] killed reader reaped " << std::chrono::duration<double>(reap_time - kill_time).count()
              << " s after the kill" << std::endl;
}

}  // namespace podfwd::lpm::test
