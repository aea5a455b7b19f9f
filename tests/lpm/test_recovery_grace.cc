// A writer killed -9 leaves retired memory that readers may still hold: a
// tbl8 group, a leaf array, a next-hop id and record it unpublished while a
// reader had not passed a quiescent state. The writer that recovers the
// segment must retire all of it behind a grace period, like any release:
// here a reader holds such memory, never passes a quiescent state, and the
// new writer churns; what the reader holds must stay byte for byte as it
// was (checksums taken before the kill), and the id must never name
// another next hop.
#include <gtest/gtest.h>

#include <span>

#include "lpm/layout.h"
#include "tests/lpm/test_util.h"

namespace podfwd::lpm::test {
namespace {

constexpr unsigned kHeldRoutes = 8;   // 10.1.k.1/32, k < kHeldRoutes; the last one is deleted

const TableWriter::Options kGraceOptions{
    .capacity = Capacity{.max_routes = 256, .max_nexthops = 64, .reader_slots = 4, .max_groups = 64},
    .reclaim_timeout = 100ms};

NextHop record_of(unsigned k) { return numbered_nexthop(k, ForwardMode::kHostGw, /*mac_resolved=*/true); }

Ipv4Addr held_addr(unsigned k) { return 0x0a010001u | k << 8; }

struct Handshake {
    std::atomic<std::uint32_t> built{0};     // the writer committed the held routes
    std::atomic<std::uint32_t> held{0};      // the reader took its checksums
    std::atomic<std::uint32_t> churned{0};   // the writer retired the held memory and churned
    SharedLog<4> log;
};

std::uint64_t checksum(std::span<const std::uint32_t> words) {
    std::uint64_t h = 0xcbf29ce484222325ULL;
    for (std::uint32_t w : words)
        h = (h ^ w) * 0x100000001b3ULL;
    return h;
}

// The dead writer: builds the held routes, waits for the reader, deletes
// the last route and its next hop (retired: the reader is not quiescent),
// churns a little in another /18, then waits to be killed.
int first_writer(const std::string& name, Handshake& hs) {
    auto w = TableWriter::open(name, kGraceOptions);
    if (!w) {
        hs.log.add("open: " + describe(w.error()));
        return kChildFailed;
    }
    std::vector<NextHopId> ids;
    for (unsigned k = 0; k < kHeldRoutes; ++k) {
        auto id = w->nexthop_add(record_of(k));
        if (!id || !w->route_add(Prefix4{held_addr(k), 32}, *id)) {
            hs.log.add("building the held routes failed");
            return kChildFailed;
        }
        ids.push_back(*id);
    }
    if (!w->commit())
        return kChildFailed;
    hs.built.store(1);
    if (!poll_until([&] { return hs.held.load() != 0; }, 20s))
        return kChildFailed;
    const Prefix4 last{held_addr(kHeldRoutes - 1), 32};
    if (!w->route_del(last) || !w->commit() || !w->nexthop_del(ids.back())) {
        hs.log.add("deleting the held route failed");
        return kChildFailed;
    }
    for (unsigned i = 0; i < 20; ++i) {   // garbage above the held memory, then nothing of it live
        const Prefix4 churn{0x0a400001u | (i % 4) << 8, 32};
        (void)w->route_add(churn, ids[i % (kHeldRoutes - 1)]);
        (void)w->commit();
        (void)w->route_del(churn);
        (void)w->commit();
    }
    hs.churned.store(1);
    poll_until([] { return false; }, 30s, 10ms);   // until killed
    return kChildOk;
}

TEST(RecoveryGrace, MemoryADeadWriterRetiredWaitsForTheReaderThatHoldsIt) {
    SegmentGuard guard;
    Shared<Handshake> hs;
    ChildProcess writer = ChildProcess::spawn([&] { return first_writer(guard.name(), *hs); });
    ASSERT_TRUE(poll_until([&] { return hs->built.load() != 0; }, 20s)) << hs->log.joined();

    auto view = TableView::open(guard.name());
    ASSERT_TRUE(IsOk(view));
    auto slot = view->register_reader();   // online, and never quiescent until the end
    ASSERT_TRUE(IsOk(slot));
    const TrieView& trie = view->trie();
    const Ipv4Addr addr = held_addr(kHeldRoutes - 1);
    const NextHopId held_id = view->lookup(addr);
    const NextHop* held_record = view->nexthop(held_id);
    ASSERT_NE(held_record, nullptr);
    const NextHop record_copy = *held_record;
    const std::uint64_t entry = trie.dir[addr >> kDirShift].load();
    const std::uint32_t leaf_base = leaf_base_of(entry);
    const NextHopId leaf = trie.leaves[TrieView::leaf_index(trie.leaves, leaf_base, addr)];
    ASSERT_TRUE(leaf & kGroupFlag);
    const std::span<const std::uint32_t> group(trie.groups + std::size_t{group_of_leaf(leaf)} * kGroupEntries,
                                               kGroupEntries);
    std::uint64_t leafvec;
    std::memcpy(&leafvec, &trie.leaves[leaf_base], sizeof leafvec);
    const std::span<const std::uint32_t> leaves(trie.leaves + leaf_base,
                                                kLeafHeader + static_cast<unsigned>(__builtin_popcountll(leafvec)));
    const std::uint64_t group_sum = checksum(group), leaves_sum = checksum(leaves);
    hs->held.store(1);

    ASSERT_TRUE(poll_until([&] { return hs->churned.load() != 0; }, 20s)) << hs->log.joined();
    writer.kill_and_reap();

    auto w = TableWriter::open(guard.name(), kGraceOptions);
    ASSERT_TRUE(IsOk(w));
    ASSERT_TRUE(w->recovered());
    for (unsigned i = 0; i < 40; ++i) {   // new next hops and groups, commit after commit
        auto id = w->nexthop_add(record_of(100 + i));
        ASSERT_TRUE(IsOk(id)) << "op " << i;
        EXPECT_NE(*id, held_id) << "the id the reader holds was handed out again";
        ASSERT_TRUE(IsOk(w->route_add(Prefix4{0x0a800001u | i << 8, 32}, *id))) << "op " << i;
        ASSERT_TRUE(IsOk(w->commit())) << "op " << i;
    }
    EXPECT_EQ(checksum(group), group_sum) << "the tbl8 group the reader holds was overwritten";
    EXPECT_EQ(checksum(leaves), leaves_sum) << "the leaf array the reader holds was overwritten";
    EXPECT_EQ(*held_record, record_copy) << "the next-hop record the reader holds was overwritten";
    const NextHop* now = view->nexthop(held_id);
    EXPECT_TRUE(now == nullptr || *now == record_copy) << "the id the reader holds names another next hop";
    EXPECT_GT(w->stats().retired_pending, 0u);

    // Once the reader lets go, the memory comes back.
    slot->offline();
    ASSERT_TRUE(IsOk(w->route_del(Prefix4{0x0a800001u, 32})));
    ASSERT_TRUE(IsOk(w->commit()));
    EXPECT_EQ(w->stats().retired_pending, 0u);
    slot->online();
    EXPECT_EQ(w->lookup(held_addr(0)), view->lookup(held_addr(0)));
    EXPECT_EQ(view->lookup(addr), kNoRoute);
}

}  // namespace
}  // namespace podfwd::lpm::test
