// The staging contract in its smallest form (lpm/README.md, "Invariants"):
// route changes are invisible until commit(), then visible exactly; a batch
// replacing a more specific route by a covering one never falls through. In
// the trie and in dense windows (layout.h) over the probed addresses.
#include <gtest/gtest.h>

#include <array>
#include <optional>
#include <string>

#include "lpm/reader.h"
#include "lpm/writer.h"
#include "tests/lpm/test_util.h"

namespace podfwd::lpm::test {
namespace {

struct WindowCase {
    const char* name;
    Ipv4Addr addr;
    std::uint32_t len;   // kNoDenseWindow: none
};

const WindowCase kStagingWindows[] = {
    {"NoWindow", 0, kNoDenseWindow},
    {"Window79_8", 0x4f000000u, 8},
    {"Window79_199_182_0_24", 0x4fc7b600u, 24},
};

class Staging : public ::testing::TestWithParam<WindowCase> {
protected:
    void SetUp() override {
        TableWriter::Options options;
        options.capacity.dense_window_addr = GetParam().addr;
        options.capacity.dense_window_len = GetParam().len;
        auto w = TableWriter::open(guard_.name(), options);
        ASSERT_TRUE(IsOk(w));
        w_.emplace(*std::move(w));
        auto v = TableView::open(guard_.name());
        ASSERT_TRUE(IsOk(v));
        v_.emplace(*std::move(v));
        for (std::uint32_t i = 0; i < nh_.size(); ++i) {
            NextHop rec;
            rec.node_ip = i + 1;
            auto id = w_->nexthop_add(rec);
            ASSERT_TRUE(IsOk(id));
            nh_[i] = *id;
        }
        ASSERT_TRUE(IsOk(w_->route_add(Prefix4{0x4f000000u, 8}, nh_[0])));   // 79.0.0.0/8
        ASSERT_TRUE(IsOk(w_->commit()));
    }

    // Adds, changes and deletes `text`; `check(before, after, when)` judges
    // each staged state, then the committed value is required exactly.
    template <class Check>
    void cycle(const char* text, Check&& check) {
        SCOPED_TRACE(text);
        const Prefix4 p = *Prefix4::parse(text);
        a_ = p.addr | (~prefix_mask(p.len) & 6);
        ASSERT_TRUE(IsOk(w_->route_add(p, nh_[1])));
        check(nh_[0], nh_[1], "add staged");
        ASSERT_TRUE(IsOk(w_->commit()));
        expect(nh_[1], "add committed");
        ASSERT_TRUE(IsOk(w_->route_add(p, nh_[2])));
        check(nh_[1], nh_[2], "change staged");
        ASSERT_TRUE(IsOk(w_->commit()));
        expect(nh_[2], "change committed");
        ASSERT_TRUE(IsOk(w_->route_del(p)));
        check(nh_[2], nh_[0], "delete staged");
        ASSERT_TRUE(IsOk(w_->commit()));
        expect(nh_[0], "delete committed");
    }
    void expect(NextHopId want, const char* when) {
        EXPECT_EQ(w_->lookup(a_), want) << "writer.lookup, " << when;
        EXPECT_EQ(v_->lookup(a_), want) << "view.lookup, " << when;
    }
    SegmentGuard guard_;
    std::optional<TableWriter> w_;
    std::optional<TableView> v_;
    std::array<NextHopId, 3> nh_{};
    Ipv4Addr a_ = 0;
};

// The directory and leaf arrays are copy-on-write: nothing shows before commit().
TEST_P(Staging, ChangesOutsideGroupsAreInvisibleUntilCommit) {
    for (const char* text : {"79.199.128.0/18", "79.199.176.0/20", "79.199.182.0/24", "79.1.0.0/16", "79.0.0.0/12"})
        cycle(text, [&](NextHopId before, NextHopId, const char* when) { expect(before, when); });
}

// tbl8 groups are copy-on-write too: nothing under a /24 with a group shows
// before commit() either.
TEST_P(Staging, ChangesInsideGroupsAreInvisibleUntilCommit) {
    ASSERT_TRUE(IsOk(w_->route_add(*Prefix4::parse("79.199.182.255/32"), nh_[0])));   // gives the /24 a group
    ASSERT_TRUE(IsOk(w_->commit()));
    for (const char* text : {"79.199.182.208/28", "79.199.182.214/32", "79.199.182.0/24", "79.199.182.0/25"})
        cycle(text, [&](NextHopId before, NextHopId, const char* when) { expect(before, when); });
}

// One batch replacing a more specific by a covering prefix, as reconcile()
// does: before commit the address answers the old prefix, after it the new
// one, never the /8 below both.
TEST_P(Staging, ReplacingAMoreSpecificNeverFallsThrough) {
    ASSERT_TRUE(IsOk(w_->route_add(*Prefix4::parse("79.1.2.128/25"), nh_[0])));   // the /24 has a group
    for (const char* cover : {"79.1.2.0/24", "79.1.2.0/23", "79.1.0.0/16"}) {
        SCOPED_TRACE(std::string("79.1.2.5/32 replaced by ") + cover);
        const Prefix4 host = *Prefix4::parse("79.1.2.5/32"), wide = *Prefix4::parse(cover);
        a_ = host.addr;
        ASSERT_TRUE(IsOk(w_->route_add(host, nh_[1])));
        ASSERT_TRUE(IsOk(w_->commit()));
        ASSERT_TRUE(IsOk(w_->route_add(wide, nh_[2])));
        ASSERT_TRUE(IsOk(w_->route_del(host)));
        expect(nh_[1], "replacement staged");
        ASSERT_TRUE(IsOk(w_->commit()));
        expect(nh_[2], "replacement committed");
        ASSERT_TRUE(IsOk(w_->route_del(wide)));
        ASSERT_TRUE(IsOk(w_->commit()));
    }
}

INSTANTIATE_TEST_SUITE_P(Windows, Staging, ::testing::ValuesIn(kStagingWindows),
                         [](const ::testing::TestParamInfo<WindowCase>& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace podfwd::lpm::test
