// A reader must survive any bytes in the segment body: garbage written over
// the directory, leaf arrays, groups and next-hop map (through a second,
// writable mapping) while a reader thread looks up. Wrong answers are
// allowed (any id: nexthop() bounds it); a crash or a next-hop pointer
// outside the records region is not. And the largest indices a segment can
// name read the guard windows' zero pages (lpm/guard_window.h): "no route".
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <optional>
#include <thread>
#include <vector>

#include "lpm/layout.h"
#include "tests/lpm/test_util.h"

namespace podfwd::lpm::test {
namespace {

// A read-write view of the segment file, as a buggy or hostile process would have.
class RawSegment {
public:
    explicit RawSegment(const std::string& path) {
        const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
        if (fd < 0)
            throw std::system_error(errno, std::generic_category(), "open " + path);
        struct stat st{};
        ::fstat(fd, &st);
        size_ = static_cast<std::size_t>(st.st_size);
        base_ = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        ::close(fd);
        if (base_ == MAP_FAILED)
            throw std::system_error(errno, std::generic_category(), "mmap " + path);
    }
    ~RawSegment() { ::munmap(base_, size_); }
    RawSegment(const RawSegment&) = delete;
    RawSegment& operator=(const RawSegment&) = delete;

    const SegmentHeader& header() const { return *static_cast<const SegmentHeader*>(base_); }
    // Relaxed atomic stores: the reader thread loads these words concurrently.
    void store32(std::uint64_t offset, std::uint32_t value) {
        std::atomic_ref<std::uint32_t>(*reinterpret_cast<std::uint32_t*>(static_cast<char*>(base_) + (offset & ~3ULL)))
            .store(value, std::memory_order_relaxed);
    }

private:
    void* base_ = nullptr;
    std::size_t size_ = 0;
};

struct Region {
    std::uint64_t offset, bytes;
};

// A table with host-gw next hops, then a reader attached to it and the raw
// writable mapping that corrupts it.
class Corruption : public ::testing::Test {
protected:
    void create(const Capacity& capacity, std::uint32_t nexthops) {
        TableWriter::Options o;
        o.capacity = capacity;
        auto w = TableWriter::open(guard_.name(), o);
        ASSERT_TRUE(IsOk(w));
        writer_.emplace(std::move(*w));
        for (std::uint32_t i = 1; i <= nexthops; ++i) {
            NextHop nh;
            nh.node_ip = 0x0a000000u | i;
            nh.mode = ForwardMode::kHostGw;
            auto id = writer_->nexthop_add(nh);
            ASSERT_TRUE(IsOk(id));
            ids_.push_back(*id);
        }
    }
    void commit_and_attach() {
        ASSERT_TRUE(IsOk(writer_->commit()));
        auto view = TableView::open(guard_.name());
        ASSERT_TRUE(IsOk(view));
        view_.emplace(std::move(*view));
        auto slot = view_->register_reader();
        ASSERT_TRUE(IsOk(slot));
        slot_.emplace(std::move(*slot));
        raw_.emplace(guard_.path());
    }

    SegmentGuard guard_;
    std::optional<TableWriter> writer_;
    std::vector<NextHopId> ids_;
    std::optional<TableView> view_;
    std::optional<ReaderSlot> slot_;
    std::optional<RawSegment> raw_;
};

TEST_F(Corruption, GarbageInTheSegmentBodyNeverCrashesAReader) {
    const std::uint64_t seed = test_seed();
    ASSERT_NO_FATAL_FAILURE(
        create(Capacity{.max_routes = 4096, .max_nexthops = 256, .reader_slots = 4, .max_groups = 256}, 64));
    Rng rng(seed);
    // Every kind of structure: /8s and /16s (directory), /20s and /24s (leaf
    // arrays), /28s and /32s (groups).
    const unsigned lengths[] = {8, 16, 20, 24, 28, 32};
    for (int i = 0; i < 2000; ++i) {
        const unsigned len = lengths[rng.below(std::size(lengths))];
        const Prefix4 p{rng.u32() & prefix_mask(len), static_cast<std::uint8_t>(len)};
        (void)writer_->route_add(p, rng.pick(ids_));   // a duplicate prefix is refused: fine
    }
    ASSERT_NO_FATAL_FAILURE(commit_and_attach());
    const TableView* view = &*view_;
    RawSegment& raw = *raw_;
    const SegmentHeader& h = raw.header();
    const std::uint32_t max_nexthops = h.capacity.max_nexthops;   // the next-hop map's ids
    const NextHop* records_begin = view->nexthops().records;
    const NextHop* records_end = records_begin + h.nh_record_capacity;
    const Region regions[] = {
        {h.dir_offset, std::uint64_t{kDirEntries} * 8},
        {h.leaves_offset, std::uint64_t{h.leaf_capacity} * 4},
        {h.groups_offset, std::uint64_t{h.group_capacity} * kGroupEntries * 4},
        {h.nh_map_offset, (std::uint64_t{max_nexthops} + 1) * 4},
        {h.window_offset, h.window_bytes},
    };

    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> lookups{0}, bad_pointers{0};
    std::thread reader([&] {
        Rng r(seed + 1);
        std::array<Ipv4Addr, 32> addrs{};
        std::array<NextHopId, 32> out{};
        auto judge_pointer = [&](NextHopId id) {
            if (const NextHop* nh = view->nexthop(id); nh != nullptr && (nh < records_begin || nh >= records_end))
                ++bad_pointers;
        };
        while (!stop.load(std::memory_order_relaxed)) {
            // Half in the dense window (10.0.0.0/8 by default), half anywhere.
            for (auto& a : addrs)
                a = r.chance(0.5) ? r.u32() : (0x0a000000u | (r.u32() & 0x00ffffffu));
            view->lookup_bulk(addrs.data(), out.data(), addrs.size());
            for (std::size_t k = 0; k < addrs.size(); ++k) {
                judge_pointer(out[k]);
                judge_pointer(view->lookup(addrs[k]));
                judge_pointer(r.u32());   // ids from nowhere, as a corrupt cache might hold
            }
            lookups.fetch_add(2 * addrs.size(), std::memory_order_relaxed);
            slot_->quiescent();
        }
    });

    // Rounds of garbage: random words anywhere in a region, then dense runs
    // where the table lives (the first leaves and groups, directory blocks).
    for (int round = 0; round < 200; ++round) {
        for (const Region& region : regions) {
            for (int k = 0; k < 2000; ++k)
                raw.store32(region.offset + rng.below(region.bytes), rng.u32());
            const std::uint64_t start = region.offset + rng.below(std::min<std::uint64_t>(region.bytes, 1 << 16));
            for (std::uint64_t off = start; off < std::min(start + 4096, region.offset + region.bytes); off += 4)
                raw.store32(off, rng.chance(0.5) ? rng.u32() : rng.u32() | kGroupFlag);
        }
        const std::uint64_t before = lookups.load();
        poll_until([&] { return lookups.load() > before + 1000; }, 2s, 50us);
    }
    stop = true;
    reader.join();
    EXPECT_GT(lookups.load(), 100'000u);
    EXPECT_EQ(bad_pointers.load(), 0u) << "nexthop() pointers outside the records region";
}

// Directory entries and leaves naming the largest indices their bits allow:
// each lookup reads past the file's regions into the guard windows, whose
// zero pages are an empty leaf array and an empty group, so the answer is the
// entry's fallback. Before the windows, the bounds checks gave the same.
TEST_F(Corruption, IndicesAtTheirLimitsReadNoRoute) {
    // No dense window: these lookups are to read the directory and leaves.
    ASSERT_NO_FATAL_FAILURE(create(Capacity{.max_routes = 64, .max_nexthops = 16, .reader_slots = 4, .max_groups = 16,
                                            .dense_window_addr = 0, .dense_window_len = kNoDenseWindow},
                                   1));
    // A /26 gives 10.0.0.0/14 its own leaf array: the leaf to point at a group.
    ASSERT_TRUE(IsOk(writer_->route_add(Prefix4{0x0a000000u, 26}, ids_[0])));
    ASSERT_NO_FATAL_FAILURE(commit_and_attach());
    const TableView* view = &*view_;
    RawSegment& raw = *raw_;
    const SegmentHeader& h = raw.header();
    const NextHopId fallback = 7;   // an id no record has: any value is an answer
    const auto set_entry = [&](std::uint32_t dir_index, std::uint32_t base) {
        const std::uint64_t at = h.dir_offset + std::uint64_t{dir_index} * 8;
        raw.store32(at, base);
        raw.store32(at + 4, fallback);
    };
    const auto lookups_of = [&](std::uint32_t base) {
        std::vector<NextHopId> answers;
        for (std::uint32_t d = 1; d < 16; ++d)
            set_entry(d, base);
        for (std::uint32_t d = 1; d < 16; ++d) {
            const Ipv4Addr addr = d << kDirShift | 0x00ff00u;
            answers.push_back(view->lookup(addr));
            view->lookup_bulk(&addr, &answers.emplace_back(), 1);
        }
        return answers;
    };
    const std::uint32_t past_leaves = h.leaf_capacity;
    for (const std::uint32_t base : {past_leaves, past_leaves + 1, UINT32_MAX - 66})
        for (const NextHopId answer : lookups_of(base))
            EXPECT_EQ(answer, fallback) << "base " << base;
    // Near 2^32 the leaf index wraps to the first arrays: any answer, no fault.
    for (const std::uint32_t base : {UINT32_MAX - 1, UINT32_MAX})
        for (const NextHopId answer : lookups_of(base))
            EXPECT_TRUE(view->nexthop(answer) == nullptr || view->nexthop(answer)->node_ip == 0x0a000001u);
    // The /26's leaf array: every leaf a group at the top of the group space.
    const Ipv4Addr in_26 = 0x0a000001u;
    const std::uint64_t entry_at = h.dir_offset + std::uint64_t{in_26 >> kDirShift} * 8;
    std::uint32_t base = 0;
    std::memcpy(&base, reinterpret_cast<const char*>(&h) + entry_at, 4);
    raw.store32(entry_at + 4, fallback);
    for (std::uint32_t k = 0; k < 64; ++k)
        raw.store32(h.leaves_offset + (std::uint64_t{base} + kLeafHeader + k) * 4, group_leaf((1u << 23) - 1));
    EXPECT_EQ(view->lookup(in_26), fallback);
    EXPECT_EQ(view->nexthop(fallback), nullptr);
    EXPECT_FALSE(view->truncated());
}

}  // namespace
}  // namespace podfwd::lpm::test

namespace podfwd::lpm::test {
namespace {

// Every bit pattern a window entry can hold: its group leaf becomes an index
// through group_index alone, which clears kGroupFlag and so stays inside the
// groups' guard window (layout.h, TrieView). Past the file's groups the
// window's zero pages answer kNoRoute, so the lookup gives the entry's
// fallback word; below, whatever the groups hold. No fault either way.
TEST_F(Corruption, WindowEntriesOfAnyBitsNeverCrashAReader) {
    ASSERT_NO_FATAL_FAILURE(
        create(Capacity{.max_routes = 64, .max_nexthops = 16, .reader_slots = 4, .max_groups = 16}, 2));
    // Most of the window under no route at all: there the directory stays
    // zero, and only the window's own rebuild clears the garbage below.
    ASSERT_TRUE(IsOk(writer_->route_add(Prefix4{0x0a000000u, 16}, ids_[0])));
    ASSERT_TRUE(IsOk(writer_->route_add(Prefix4{0x0a010200u, 26}, ids_[1])));   // a group
    ASSERT_NO_FATAL_FAILURE(commit_and_attach());
    const TableView* view = &*view_;
    RawSegment& raw = *raw_;
    const SegmentHeader& h = raw.header();
    ASSERT_EQ(h.window_bytes, std::uint64_t{1} << 19) << "the default window: 10.0.0.0/8, 8 bytes per /24";
    const std::uint64_t entries = h.window_bytes / 8;
    const NextHopId fallback = 9;   // an id no record has
    const auto set_all = [&](std::uint32_t leaf) {
        for (std::uint64_t i = 0; i < entries; ++i) {
            raw.store32(h.window_offset + i * 8, leaf);
            raw.store32(h.window_offset + i * 8 + 4, fallback);
        }
    };
    Rng rng(test_seed());
    std::vector<Ipv4Addr> addrs(4096);
    std::vector<NextHopId> bulk(addrs.size());
    const auto lookups = [&] {
        for (auto& a : addrs)
            a = 0x0a000000u | (rng.u32() & 0x00ffffffu);
        view->lookup_bulk(addrs.data(), bulk.data(), addrs.size());
        std::vector<NextHopId> single;
        for (const Ipv4Addr a : addrs)
            single.push_back(view->lookup(a));
        EXPECT_EQ(single, bulk);
        return single;
    };
    // Group leaves past the groups region, up to the largest the bits allow.
    const std::uint32_t past_groups = h.group_capacity;
    for (const std::uint32_t leaf : {group_leaf(past_groups), group_leaf((1u << 23) - 1), 0xffffffffu, 0xffffff00u,
                                     kGroupFlag | 0x7fffff7fu}) {
        set_all(leaf);
        for (const NextHopId answer : lookups())
            EXPECT_EQ(answer, fallback) << std::hex << "leaf " << leaf;
    }
    // Any other bits: some answer, never a fault, never a pointer outside the records.
    const NextHop* records_begin = view->nexthops().records;
    const NextHop* records_end = records_begin + h.nh_record_capacity;
    for (int round = 0; round < 64; ++round) {
        for (std::uint64_t i = 0; i < entries; ++i) {
            raw.store32(h.window_offset + i * 8, rng.chance(0.5) ? rng.u32() | kGroupFlag : rng.u32());
            raw.store32(h.window_offset + i * 8 + 4, rng.u32());
        }
        for (const NextHopId answer : lookups()) {
            const NextHop* nh = view->nexthop(answer);
            EXPECT_TRUE(nh == nullptr || (nh >= records_begin && nh < records_end));
        }
    }
    // A writer that re-attaches recomputes the whole window: the garbage goes.
    slot_.reset();
    view_.reset();
    writer_.reset();
    auto w = TableWriter::open(guard_.name(), TableWriter::Options{
                                                  .capacity = Capacity{.max_routes = 64, .max_nexthops = 16,
                                                                       .reader_slots = 4, .max_groups = 16}});
    ASSERT_TRUE(IsOk(w));
    EXPECT_TRUE(w->recovered());
    auto v = TableView::open(guard_.name());
    ASSERT_TRUE(IsOk(v));
    EXPECT_EQ(v->lookup(0x0a000001u), ids_[0]);
    EXPECT_EQ(v->lookup(0x0a00ffffu), ids_[0]);
    EXPECT_EQ(v->lookup(0x0a010201u), ids_[1]);
    EXPECT_EQ(v->lookup(0x0a010241u), kNoRoute);
    EXPECT_EQ(v->lookup(0x0affffffu), kNoRoute);
    EXPECT_EQ(v->lookup(0x0b000000u), kNoRoute);
    for (std::uint64_t i = 0; i < entries; ++i) {
        std::uint64_t entry;
        std::memcpy(&entry, reinterpret_cast<const char*>(&h) + h.window_offset + i * 8, 8);
        ASSERT_EQ(fallback_of(entry), i < 256 ? ids_[0] : kNoRoute) << "window entry " << i;
        if (i != 0x0102) {   // 10.1.2.0/24, the /26's group
            ASSERT_EQ(leaf_of(entry), kNoRoute) << "window entry " << i << " kept garbage";
        } else {
            ASSERT_TRUE(leaf_of(entry) & kGroupFlag);
        }
    }
}

}  // namespace
}  // namespace podfwd::lpm::test
