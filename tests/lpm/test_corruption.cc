// A reader must survive any bytes in the segment body: garbage written over
// the directory, leaf arrays, groups and next-hop map (through a second,
// writable mapping) while a reader thread looks up. Wrong answers are
// allowed; a crash, an id above max_nexthops or a next-hop pointer outside
// the records region is not.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <thread>

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

TEST(Corruption, GarbageInTheSegmentBodyNeverCrashesAReader) {
    const std::uint64_t seed = test_seed();
    SegmentGuard guard;
    TableWriter::Options o;
    o.capacity = Capacity{.max_routes = 4096, .max_nexthops = 256, .reader_slots = 4, .max_groups = 256};
    auto w = TableWriter::open(guard.name(), o);
    ASSERT_TRUE(IsOk(w));
    Rng rng(seed);
    std::vector<NextHopId> ids;
    for (std::uint32_t i = 1; i <= 64; ++i) {
        NextHop nh;
        nh.node_ip = 0x0a000000u | i;
        nh.mode = ForwardMode::kHostGw;
        auto id = w->nexthop_add(nh);
        ASSERT_TRUE(IsOk(id));
        ids.push_back(*id);
    }
    // Every kind of structure: /8s and /16s (directory), /20s and /24s (leaf
    // arrays), /28s and /32s (groups).
    const unsigned lengths[] = {8, 16, 20, 24, 28, 32};
    for (int i = 0; i < 2000; ++i) {
        const unsigned len = lengths[rng.below(std::size(lengths))];
        const Prefix4 p{rng.u32() & prefix_mask(len), static_cast<std::uint8_t>(len)};
        (void)w->route_add(p, rng.pick(ids));   // a duplicate prefix is refused: fine
    }
    ASSERT_TRUE(IsOk(w->commit()));

    auto view = TableView::open(guard.name());
    ASSERT_TRUE(IsOk(view));
    auto slot = view->register_reader();
    ASSERT_TRUE(IsOk(slot));
    RawSegment raw(guard.path());
    const SegmentHeader& h = raw.header();
    const std::uint32_t max_nexthops = h.capacity.max_nexthops;
    const NextHop* records_begin = view->nexthops().records;
    const NextHop* records_end = records_begin + h.nh_record_capacity;
    const Region regions[] = {
        {h.dir_offset, std::uint64_t{kDirEntries} * 8},
        {h.leaves_offset, std::uint64_t{h.leaf_capacity} * 4},
        {h.groups_offset, std::uint64_t{h.group_capacity} * kGroupEntries * 4},
        {h.nh_map_offset, (std::uint64_t{max_nexthops} + 1) * 4},
    };

    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> lookups{0}, bad_ids{0}, bad_pointers{0};
    std::thread reader([&] {
        Rng r(seed + 1);
        std::array<Ipv4Addr, 32> addrs{};
        std::array<NextHopId, 32> out{};
        auto judge_pointer = [&](NextHopId id) {
            if (const NextHop* nh = view->nexthop(id); nh != nullptr && (nh < records_begin || nh >= records_end))
                ++bad_pointers;
        };
        auto judge = [&](NextHopId id) {
            bad_ids += id > max_nexthops;
            judge_pointer(id);
        };
        while (!stop.load(std::memory_order_relaxed)) {
            for (auto& a : addrs)
                a = r.u32();
            view->lookup_bulk(addrs.data(), out.data(), addrs.size());
            for (std::size_t k = 0; k < addrs.size(); ++k) {
                judge(out[k]);
                judge(view->lookup(addrs[k]));
                judge_pointer(r.u32());   // ids from nowhere, as a corrupt cache might hold
            }
            lookups.fetch_add(2 * addrs.size(), std::memory_order_relaxed);
            slot->quiescent();
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
    EXPECT_EQ(bad_ids.load(), 0u) << "answers above max_nexthops " << max_nexthops;
    EXPECT_EQ(bad_pointers.load(), 0u) << "nexthop() pointers outside the records region";
}

}  // namespace
}  // namespace podfwd::lpm::test
