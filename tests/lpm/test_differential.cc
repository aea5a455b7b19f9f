// Differential test: the table against a naive reference (one hash map per
// prefix length) under 100k random inserts interleaved with deletes, next-hop
// changes and next-hop record updates, committed in random batches. After
// every commit, random lookups go through TableView::lookup, lookup_bulk and
// TableWriter::lookup and must all equal the reference. Run with the dense
// window (layout.h) over 10.0.0.0/8, over a /20 (smaller than a directory
// slot) and without one; a good share of the prefixes and addresses fall in,
// around and across the window, and now and then the writer restarts
// (recovery), sometimes over a window full of garbage.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <optional>
#include <random>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lpm/layout.h"
#include "lpm/reader.h"
#include "lpm/writer.h"
#include "tests/lpm/test_util.h"

namespace podfwd::lpm::test {
namespace {

constexpr std::size_t kInsertOps = 100'000;          // route_add of freshly drawn prefixes
constexpr std::uint64_t kTotalLookups = 10'000'000;  // after commits, over the run
constexpr std::size_t kNexthopPool = 1000;
constexpr std::size_t kMaxBatch = 1000;
constexpr std::size_t kMaxReported = 10;

std::uint64_t key_of(const Prefix4& p) { return std::uint64_t{p.len} << 32 | p.addr; }
Prefix4 prefix_of(std::uint64_t key) {
    return Prefix4{static_cast<Ipv4Addr>(key), static_cast<std::uint8_t>(key >> 32)};
}

// Weighted toward /24 and /32 (what a pod network installs), every length
// present; lengths up to /7 are rare because each one rewrites a large share
// of the directory.
constexpr std::array<double, 33> kLengthWeights = {
    0.02, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05,   // /0../7
    1.0, 0.3, 0.3, 0.3, 0.5, 0.3, 0.3, 0.3,           // /8../15
    3.0, 1.0, 2.0, 2.0, 2.0, 1.5, 2.0, 1.5,           // /16../23
    30.0, 3.0, 2.0, 2.0, 2.0, 1.5, 2.0, 1.5,          // /24../31
    25.0,                                             // /32
};

// Prefixes present once the staged changes commit: O(1) insert, erase and
// uniform pick.
class LiveSet {
public:
    bool contains(const Prefix4& p) const { return index_.contains(key_of(p)); }
    void insert(const Prefix4& p) {
        if (index_.emplace(key_of(p), items_.size()).second)
            items_.push_back(p);
    }
    void erase(const Prefix4& p) {
        auto it = index_.find(key_of(p));
        if (it == index_.end())
            return;
        const std::size_t i = it->second;
        index_.erase(it);
        if (i + 1 != items_.size()) {
            items_[i] = items_.back();
            index_[key_of(items_[i])] = i;
        }
        items_.pop_back();
    }
    const Prefix4& random(Rng& rng) const { return items_[rng.below(items_.size())]; }
    std::size_t size() const { return items_.size(); }
    bool empty() const { return items_.empty(); }

private:
    std::vector<Prefix4> items_;
    std::unordered_map<std::uint64_t, std::size_t> index_;
};

struct WindowCase {
    const char* name;
    Ipv4Addr addr;
    std::uint32_t len;   // kNoDenseWindow: none
};
const WindowCase kWindowCases[] = {
    {"Window10_8", 0x0a000000u, 8},
    {"NoWindow", 0, kNoDenseWindow},
    {"Window10_1_16_0_20", 0x0a011000u, 20},
};

class Differential : public ::testing::TestWithParam<WindowCase> {
protected:
    void SetUp() override {
        options_.capacity.reader_slots = 8;
        options_.capacity.dense_window_addr = GetParam().addr;
        options_.capacity.dense_window_len = GetParam().len;
        // Without a window the same region gets the same prefixes: the trie's answers.
        region_ = GetParam().len == kNoDenseWindow
                      ? Prefix4{0x0a000000u, 8}
                      : Prefix4{GetParam().addr, static_cast<std::uint8_t>(GetParam().len)};
        auto w = TableWriter::open(guard_.name(), options_);
        ASSERT_TRUE(IsOk(w));
        writer_.emplace(*std::move(w));
        EXPECT_FALSE(writer_->recovered());
        auto v = TableView::open(guard_.name());
        ASSERT_TRUE(IsOk(v));
        view_.emplace(*std::move(v));
        auto s = view_->register_reader();
        ASSERT_TRUE(IsOk(s));
        slot_.emplace(*std::move(s));
        slot_->offline();   // online only while this thread reads
        for (auto& region : hot12_)
            region = Prefix4{rng_.u32() & prefix_mask(12), 12};
        for (std::size_t i = 0; i < 6; ++i)   // around the window
            hot12_[i] = Prefix4{random_inside(rng_, region_) & prefix_mask(12), 12};
        // Prefixes containing the window, equal to it, next to it, and
        // straddling its edges and a directory slot's.
        const unsigned len = region_.len;
        for (const unsigned shorter : {0u, 1u, 2u, len - 1, len})
            specials_.push_back(Prefix4{region_.addr & prefix_mask(shorter), static_cast<std::uint8_t>(shorter)});
        // Beside it: the same length, and one shorter (10.0.0.0/8: 11.0.0.0/8, 8.0.0.0/7).
        specials_.push_back(Prefix4{(region_.addr ^ (1u << (32 - len))) & prefix_mask(len), static_cast<std::uint8_t>(len)});
        specials_.push_back(Prefix4{(region_.addr ^ (1u << (33 - len))) & prefix_mask(len - 1),
                                    static_cast<std::uint8_t>(len - 1)});
        for (const unsigned inner : {len + 1, len + 3, 17u, 18u, 19u, 24u, 25u, 32u})
            if (inner <= 32 && inner > len - 3)
                specials_.push_back(Prefix4{random_inside(rng_, region_) & prefix_mask(inner), static_cast<std::uint8_t>(inner)});
        specials_.push_back(Prefix4{region_.addr & prefix_mask(len - 3), static_cast<std::uint8_t>(len - 3)});
        for (auto& region : hot22_)
            region = Prefix4{random_inside(rng_, rng_.pick(hot12_)) & prefix_mask(22), 22};
    }

    // -- generators

    Ipv4Addr random_address() {
        const auto r = rng_.below(100);
        if (r < 5)
            return random_inside(rng_, rng_.pick(hot22_));   // dense deep subtrees
        if (r < 50)
            return random_inside(rng_, rng_.pick(hot12_));   // overlapping prefixes
        if (r < 70)
            return random_inside(rng_, region_);             // the window
        return rng_.u32();
    }
    Prefix4 random_prefix() {
        const auto len = static_cast<unsigned>(length_dist_(rng_.engine()));
        return Prefix4{random_address() & prefix_mask(len), static_cast<std::uint8_t>(len)};
    }
    // Unique records (node_ip from a bijective serial), so nexthop_ensure of a
    // record has exactly one right answer.
    NextHop fresh_record() {
        NextHop nh;
        nh.node_ip = static_cast<Ipv4Addr>(++record_serial_ * 0x9E3779B1u);
        nh.vni = rng_.u32() & 0xffffff;
        nh.port = static_cast<std::uint16_t>(rng_.below(4));
        nh.mode = static_cast<ForwardMode>(rng_.below(5));
        nh.flags = rng_.chance(0.8) ? NextHop::kMacResolved : 0;
        for (auto& b : nh.mac)
            b = static_cast<std::uint8_t>(rng_.below(256));
        return nh;
    }
    NextHopId random_nexthop() { return rng_.pick(nh_pool_); }

    // The next hop `p` has once the staged changes commit.
    NextHopId pending_value(const Prefix4& p) const {
        if (auto it = staged_.find(key_of(p)); it != staged_.end())
            return it->second;
        const NextHopId* v = committed_.get(p);
        return v ? *v : kNoRoute;
    }

    // -- operations (each staged in the writer and in the reference)

    void stage(const Prefix4& p, NextHopId nh) {
        staged_[key_of(p)] = nh;
        staged_list_.push_back(Route{p, nh});
        if (nh == kNoRoute)
            live_.erase(p);
        else
            live_.insert(p);
    }
    void op_insert() {
        const Prefix4 p = random_prefix();
        const NextHopId nh = random_nexthop();
        ASSERT_TRUE(IsOk(writer_->route_add(p, nh))) << p.str();
        stage(p, nh);
        ++inserts_;
    }
    void op_delete() {
        if (live_.empty())
            return op_insert();
        const Prefix4 p = live_.random(rng_);
        ASSERT_TRUE(IsOk(writer_->route_del(p))) << p.str();
        stage(p, kNoRoute);
    }
    void op_change() {
        if (live_.empty())
            return op_insert();
        const Prefix4 p = live_.random(rng_);
        const NextHopId old = pending_value(p);
        NextHopId nh = random_nexthop();
        while (nh == old)
            nh = random_nexthop();
        ASSERT_TRUE(IsOk(writer_->route_add(p, nh))) << p.str() << " -> " << nh;
        stage(p, nh);
    }
    void op_nexthop_update() {
        const NextHopId id = random_nexthop();
        const NextHop rec = fresh_record();
        ASSERT_TRUE(IsOk(writer_->nexthop_update(id, rec))) << id;
        nh_records_[id] = rec;
        // Record changes do not wait for commit().
        EXPECT_EQ(writer_->nexthop(id), rec) << "writer, nexthop " << id;
        slot_->online();
        const NextHop* seen = view_->nexthop(id);
        ASSERT_NE(seen, nullptr) << "reader, nexthop " << id;
        EXPECT_EQ(*seen, rec) << "reader sees the old record of nexthop " << id;
        slot_->quiescent();
        slot_->offline();
    }
    // A prefix around the window: added, changed or deleted.
    void op_special() {
        const Prefix4 p = rng_.pick(specials_);
        if (pending_value(p) != kNoRoute && rng_.chance(0.5)) {
            ASSERT_TRUE(IsOk(writer_->route_del(p))) << p.str();
            stage(p, kNoRoute);
            return;
        }
        const NextHopId nh = random_nexthop();
        ASSERT_TRUE(IsOk(writer_->route_add(p, nh))) << p.str();
        stage(p, nh);
    }
    void random_op() {
        const auto r = rng_.below(100);
        if (r < 2)
            op_special();
        else if (r < 55)
            op_insert();
        else if (r < 75)
            op_delete();
        else if (r < 90)
            op_change();
        else
            op_nexthop_update();
    }

    void commit() {
        const std::uint64_t gen_before = view_->stats().generation;
        ASSERT_TRUE(IsOk(writer_->commit())) << "round " << round_;
        for (const auto& [key, nh] : staged_) {
            const Prefix4 p = prefix_of(key);
            if (const NextHopId* old = committed_.get(p))
                --refcount_[*old];
            if (nh == kNoRoute) {
                committed_.erase(p);
            } else {
                committed_.set(p, nh);
                ++refcount_[nh];
            }
        }
        const std::uint64_t gen_after = view_->stats().generation;
        if (!staged_.empty()) {
            EXPECT_GT(gen_after, gen_before) << "commit did not bump the generation";
        }
        EXPECT_GE(gen_after, gen_before);
        staged_.clear();
        staged_list_.clear();
    }

    // -- checks

    NextHopId expected(Ipv4Addr a) const {
        auto m = committed_.lookup(a);
        return m ? m->second : kNoRoute;
    }

    std::string describe_mismatch(Ipv4Addr a, NextHopId want, NextHopId view, NextHopId bulk, NextHopId writer) const {
        std::string covering;
        for (const auto& [p, nh] : committed_.covering(a))
            covering += " " + p.str() + "->" + std::to_string(nh);
        return "round " + std::to_string(round_) + ", " + format_ipv4(a) + ": reference " + std::to_string(want) +
               ", view.lookup " + std::to_string(view) + ", lookup_bulk " + std::to_string(bulk) +
               ", writer.lookup " + std::to_string(writer) + "; committed prefixes covering it:" +
               (covering.empty() ? " none" : covering);
    }
    void report_mismatch(Ipv4Addr a, NextHopId want, NextHopId view, NextHopId bulk, NextHopId writer) {
        if (++mismatches_ <= kMaxReported)
            ADD_FAILURE() << "mismatch after commit, " << describe_mismatch(a, want, view, bulk, writer);
    }
    // Kept apart and reported at the end: a staging bug must neither stop the
    // run nor hide what commits do.
    void report_staged_mismatch(Ipv4Addr a, NextHopId want, NextHopId view, NextHopId writer) {
        if (++staged_mismatches_ <= kMaxReported)
            staged_reports_ += "\n  " + describe_mismatch(a, want, view, view, writer);
    }

    // n lookups, half uniform, half inside live prefixes, through all three paths.
    void check_lookups(std::size_t n) {
        addrs_.resize(n);
        bulk_.assign(n, ~NextHopId{0});
        for (std::size_t i = 0; i < n; ++i)
            addrs_[i] = i % 4 == 1  ? random_inside(rng_, region_)
                        : i % 2 == 0 || live_.empty() ? rng_.u32()
                                                      : random_inside(rng_, live_.random(rng_));
        slot_->online();
        // Random chunk sizes exercise lookup_bulk's groups of 8 and its tail.
        for (std::size_t i = 0; i < n;) {
            const std::size_t k = std::min<std::size_t>(n - i, rng_.between(1, 64));
            view_->lookup_bulk(addrs_.data() + i, bulk_.data() + i, k);
            i += k;
        }
        for (std::size_t i = 0; i < n; ++i) {
            const Ipv4Addr a = addrs_[i];
            const NextHopId want = expected(a);
            const NextHopId v = view_->lookup(a);
            const NextHopId w = writer_->lookup(a);
            if (v != want || bulk_[i] != want || w != want)
                report_mismatch(a, want, v, bulk_[i], w);
        }
        slot_->quiescent();
        slot_->offline();
        lookups_ += n;
    }

    // What the table answers once the staged changes commit.
    NextHopId pending_expected(Ipv4Addr a) const {
        for (int len = 32; len >= 0; --len) {
            const Prefix4 p{a & prefix_mask(static_cast<unsigned>(len)), static_cast<std::uint8_t>(len)};
            if (auto it = staged_.find(key_of(p)); it != staged_.end()) {
                if (it->second != kNoRoute)
                    return it->second;
            } else if (const NextHopId* v = committed_.get(p)) {
                return *v;
            }
        }
        return kNoRoute;
    }

    // The staging contract (lpm/README.md, "Invariants"): route changes are
    // invisible until commit(); the table answers exactly as last committed.
    void check_staged_invisible() {
        slot_->online();
        for (std::size_t i = 0; i < 1000; ++i) {
            const Ipv4Addr a = (i % 2 == 0 && !staged_list_.empty())
                                   ? random_inside(rng_, rng_.pick(staged_list_).prefix)
                                   : random_address();
            const NextHopId want = expected(a);
            const NextHopId v = view_->lookup(a);
            const NextHopId w = writer_->lookup(a);
            if (v != want || w != want)
                report_staged_mismatch(a, want, v, w);
        }
        slot_->quiescent();
        slot_->offline();
    }

    void check_nexthops() {
        slot_->online();
        for (NextHopId id : nh_pool_) {
            const NextHop& rec = nh_records_.at(id);
            EXPECT_EQ(writer_->nexthop(id), rec) << "writer record " << id;
            const NextHop* seen = view_->nexthop(id);
            EXPECT_TRUE(seen && *seen == rec) << "reader record " << id;
            EXPECT_EQ(writer_->nexthop_refcount(id), refcount_[id]) << "refcount of " << id;
        }
        slot_->quiescent();
        slot_->offline();
    }

    void check_counts() {
        const TableStats ws = writer_->stats();
        const TableStats vs = view_->stats();
        EXPECT_EQ(writer_->route_count(), committed_.size());
        EXPECT_EQ(ws.routes, committed_.size());
        EXPECT_EQ(vs.routes, committed_.size());
        EXPECT_EQ(ws.nexthops, nh_pool_.size());
        EXPECT_EQ(vs.nexthops, nh_pool_.size());
    }

    // Between rounds: delete unreferenced next hops (refused while referenced),
    // refill the pool with nexthop_add and nexthop_ensure.
    void maintain_nexthops() {
        for (int i = 0; i < 5; ++i) {
            const std::size_t at = rng_.below(nh_pool_.size());
            const NextHopId id = nh_pool_[at];
            if (refcount_[id] > 0) {
                EXPECT_TRUE(HasErrc(writer_->nexthop_del(id), Errc::kInUse)) << "nexthop " << id;
                continue;
            }
            ASSERT_TRUE(IsOk(writer_->nexthop_del(id))) << "unreferenced nexthop " << id;
            nh_pool_[at] = nh_pool_.back();
            nh_pool_.pop_back();
            nh_records_.erase(id);
            EXPECT_EQ(writer_->nexthop(id), std::nullopt) << "deleted nexthop " << id;
            slot_->online();
            EXPECT_EQ(view_->nexthop(id), nullptr) << "deleted nexthop " << id;
            slot_->quiescent();
            slot_->offline();
        }
        const NextHopId existing = random_nexthop();
        auto same = writer_->nexthop_ensure(nh_records_.at(existing));
        ASSERT_TRUE(IsOk(same));
        EXPECT_EQ(*same, existing) << "nexthop_ensure of an existing record";
        ASSERT_NO_FATAL_FAILURE(fill_nexthop_pool());
    }

    void fill_nexthop_pool() {
        while (nh_pool_.size() < kNexthopPool) {
            const NextHop rec = fresh_record();
            auto id = rng_.chance(0.5) ? writer_->nexthop_add(rec) : writer_->nexthop_ensure(rec);
            ASSERT_TRUE(IsOk(id));
            ASSERT_NE(*id, kNoRoute);
            ASSERT_FALSE(nh_records_.contains(*id)) << "id " << *id << " handed out twice";
            nh_pool_.push_back(*id);
            nh_records_[*id] = rec;
            refcount_[*id] = 0;
        }
    }

    void check_routes_equal_reference() {
        std::vector<Route> want;
        committed_.for_each([&](const Prefix4& p, NextHopId nh) { want.push_back(Route{p, nh}); });
        const auto got = sorted_routes(writer_->routes());
        want = sorted_routes(std::move(want));
        ASSERT_EQ(got.size(), want.size());
        std::size_t diffs = 0;
        for (std::size_t i = 0; i < got.size(); ++i)
            if (!(got[i] == want[i]) && ++diffs <= kMaxReported)
                ADD_FAILURE() << "routes()[" << i << "] = " << got[i].prefix.str() << "->" << got[i].nexthop
                              << ", reference " << want[i].prefix.str() << "->" << want[i].nexthop;
        EXPECT_EQ(diffs, 0u);
        for (int i = 0; i < 1000 && !live_.empty(); ++i) {
            const Prefix4 p = live_.random(rng_);
            EXPECT_EQ(writer_->route_get(p), *committed_.get(p)) << p.str();
            const Prefix4 q = random_prefix();
            const NextHopId* v = committed_.get(q);
            EXPECT_EQ(writer_->route_get(q), v ? std::optional(*v) : std::nullopt) << q.str();
        }
    }

    // The writer goes away (as if killed: nothing of it runs on the way out
    // that recovery relies on) and a new one re-attaches while the reader
    // stays; sometimes the window is scribbled over first. The table must
    // come back exactly as committed.
    void restart() {
        writer_.reset();
        if (rng_.chance(0.5) && options_.capacity.dense_window_len != kNoDenseWindow)
            scribble_window();
        auto w = TableWriter::open(guard_.name(), options_);
        ASSERT_TRUE(IsOk(w)) << "round " << round_;
        writer_.emplace(*std::move(w));
        EXPECT_TRUE(writer_->recovered());
        ++restarts_;
    }
    void scribble_window() {
        const int fd = ::open(guard_.path().c_str(), O_RDWR | O_CLOEXEC);
        ASSERT_GE(fd, 0);
        const std::size_t size = static_cast<std::size_t>(::lseek(fd, 0, SEEK_END));
        void* base = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        ::close(fd);
        ASSERT_NE(base, MAP_FAILED);
        const auto& h = *static_cast<const SegmentHeader*>(base);
        auto* window = reinterpret_cast<std::uint64_t*>(static_cast<char*>(base) + h.window_offset);
        for (std::uint64_t i = 0; i < h.window_bytes / 8; ++i) {
            const std::uint64_t bits = rng_.engine()();
            window[i] = rng_.chance(0.3) ? bits | kGroupFlag : rng_.chance(0.5) ? bits : 0;
        }
        ::munmap(base, size);
    }

    SegmentGuard guard_;
    TableWriter::Options options_;
    Prefix4 region_;
    std::vector<Prefix4> specials_;
    std::size_t restarts_ = 0;
    std::optional<TableWriter> writer_;
    std::optional<TableView> view_;
    std::optional<ReaderSlot> slot_;

    Rng rng_{test_seed()};
    std::discrete_distribution<int> length_dist_{kLengthWeights.begin(), kLengthWeights.end()};
    std::array<Prefix4, 16> hot12_{};
    std::array<Prefix4, 64> hot22_{};
    std::uint32_t record_serial_ = 0;

    // Reference: committed routes, staged overlay, next hops.
    NaiveLpm<NextHopId> committed_;
    std::unordered_map<std::uint64_t, NextHopId> staged_;   // kNoRoute: delete
    std::vector<Route> staged_list_;   // every staged change of the round, in order (kNoRoute: delete)
    LiveSet live_;
    std::vector<NextHopId> nh_pool_;
    std::unordered_map<NextHopId, NextHop> nh_records_;
    std::unordered_map<NextHopId, std::uint32_t> refcount_;

    std::vector<Ipv4Addr> addrs_;
    std::vector<NextHopId> bulk_;
    std::size_t inserts_ = 0, round_ = 0, mismatches_ = 0, staged_mismatches_ = 0;
    std::string staged_reports_;
    std::uint64_t lookups_ = 0;
};

TEST_P(Differential, RandomChurnMatchesNaiveReference) {
    const auto start = Clock::now();
    ASSERT_NO_FATAL_FAILURE(fill_nexthop_pool());
    std::size_t ops = 0;
    while (inserts_ < kInsertOps) {
        ++round_;
        const std::size_t batch = rng_.log_uniform(1, kMaxBatch);
        for (std::size_t i = 0; i < batch && inserts_ < kInsertOps; ++i, ++ops)
            ASSERT_NO_FATAL_FAILURE(random_op()) << "round " << round_;
        if (round_ % 8 == 0)
            check_staged_invisible();
        ASSERT_NO_FATAL_FAILURE(commit());
        // Spread the lookup budget over the run in proportion to progress.
        const std::uint64_t target = kTotalLookups * inserts_ / kInsertOps;
        check_lookups(std::max<std::uint64_t>(256, target > lookups_ ? target - lookups_ : 0));
        if (round_ % 97 == 0) {
            ASSERT_NO_FATAL_FAILURE(restart());
            check_lookups(4096);
        }
        check_nexthops();
        check_counts();
        ASSERT_NO_FATAL_FAILURE(maintain_nexthops());
        if (HasFailure())
            break;   // the first failing round says it all; don't drown it
    }
    ASSERT_NO_FATAL_FAILURE(commit());
    check_routes_equal_reference();
    EXPECT_EQ(mismatches_, 0u) << "lookup mismatches after commit (first " << kMaxReported << " reported above)";
    EXPECT_EQ(staged_mismatches_, 0u) << "staged changes visible before commit; the first ones:"
                                      << staged_reports_;
    if (!HasFailure()) {
        EXPECT_GE(lookups_, kTotalLookups);
    }

    const TableStats s = writer_->stats();
    const double secs = std::chrono::duration<double>(Clock::now() - start).count();
    std::cout << "[   INFO   ] " << round_ << " commits, " << ops << " ops, " << committed_.size()
              << " routes, " << lookups_ << " checked lookups (x3 paths), " << secs << " s; generation "
              << s.generation << ", retired pending " << s.retired_pending << ", reclaimed " << s.reclaimed_total
              << ", " << restarts_ << " writer restarts" << std::endl;
}

INSTANTIATE_TEST_SUITE_P(Windows, Differential, ::testing::ValuesIn(kWindowCases),
                         [](const ::testing::TestParamInfo<WindowCase>& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace podfwd::lpm::test
