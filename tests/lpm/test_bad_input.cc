// Bad input: every refused call returns its documented error code, and
// nothing already in the table is lost (checked after every failure through
// routes(), the writer's lookup and a reader's lookup).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <fstream>
#include <map>
#include <stdexcept>
#include <optional>
#include <string>
#include <vector>

#include "lpm/layout.h"
#include "lpm/reader.h"
#include "lpm/writer.h"
#include "tests/lpm/test_util.h"

namespace podfwd::lpm::test {
namespace {

constexpr Capacity kSmall{.max_routes = 64, .max_nexthops = 4, .reader_slots = 4};

TableWriter::Options small_options() {
    TableWriter::Options o;
    o.capacity = kSmall;
    o.reclaim_timeout = std::chrono::milliseconds(500);
    return o;
}

Prefix4 pfx(const char* text) {
    auto p = Prefix4::parse(text);
    if (!p)
        throw std::invalid_argument(p.error().message);
    return *p;
}

NextHop record(std::uint32_t n) {
    NextHop nh;
    nh.node_ip = 0xc0a80000u + n;
    nh.vni = 100 + n;
    nh.port = static_cast<std::uint16_t>(n % 2);
    nh.mode = ForwardMode::kVxlan;
    nh.flags = NextHop::kMacResolved;
    nh.mac = {0x02, 0, 0, 0, 0, static_cast<std::uint8_t>(n)};
    return nh;
}

// Exit status of a child reporting a Result: 0 ok, 10 + Errc otherwise.
template <class T>
int exit_code_of(const Result<T>& r) { return r ? 0 : 10 + static_cast<int>(r.error().code); }
int exit_code_for(Errc e) { return 10 + static_cast<int>(e); }

class BadInput : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_NO_FATAL_FAILURE(open_writer(/*expect_recovered=*/false));
        auto v = TableView::open(guard_.name());
        ASSERT_TRUE(IsOk(v));
        view_.emplace(*std::move(v));
        auto s = view_->register_reader();
        ASSERT_TRUE(IsOk(s));
        slot_.emplace(*std::move(s));
        slot_->offline();   // online only while checking, as an idle lcore would be
        ASSERT_NO_FATAL_FAILURE(install_baseline());
        ASSERT_NO_FATAL_FAILURE(expect_intact("baseline"));
    }

    void open_writer(bool expect_recovered) {
        auto w = TableWriter::open(guard_.name(), small_options());
        ASSERT_TRUE(IsOk(w));
        writer_.emplace(*std::move(w));
        EXPECT_EQ(writer_->recovered(), expect_recovered);
    }

    void install_baseline() {
        for (std::uint32_t n = 1; n <= 3; ++n) {
            auto id = writer_->nexthop_add(record(n));
            ASSERT_TRUE(IsOk(id));
            nh_.push_back(*id);
            records_[*id] = record(n);
        }
        const std::vector<std::pair<const char*, int>> routes = {
            {"10.0.0.0/8", 0},      {"10.1.0.0/16", 1},    {"10.1.192.0/18", 2}, {"10.1.2.0/24", 2},
            {"10.1.2.128/25", 0},   {"10.1.2.4/31", 1},    {"10.1.2.8/30", 0},   {"10.1.2.3/32", 1},
            {"192.168.0.0/19", 1},  {"172.16.0.0/12", 0},
        };
        for (const auto& [text, which] : routes)
            ASSERT_NO_FATAL_FAILURE(add_route(pfx(text), nh_[which]));
        ASSERT_TRUE(IsOk(writer_->commit()));
        Rng rng(0x5eed);   // fixed: the probes only need to be spread, not new each run
        for (int i = 0; i < 2000; ++i)
            probes_.push_back(random_inside(rng, pfx("10.0.0.0/8")));
        for (int i = 0; i < 500; ++i)
            probes_.push_back(rng.u32());
    }

    void add_route(const Prefix4& p, NextHopId nh) {
        ASSERT_TRUE(IsOk(writer_->route_add(p, nh))) << p.str();
        routes_[p] = nh;
    }

    // Addresses at and around every route's edges, plus the fixed random set.
    std::vector<Ipv4Addr> probe_addresses() const {
        std::vector<Ipv4Addr> out = probes_;
        for (const auto& [p, nh] : routes_) {
            const Ipv4Addr last = p.addr | ~prefix_mask(p.len);
            for (Ipv4Addr a : {p.addr, last, p.addr - 1, last + 1, p.addr + (last - p.addr) / 2})
                out.push_back(a);
        }
        return out;
    }

    // The table still holds exactly routes_ and records_.
    void expect_intact(const std::string& context) {
        SCOPED_TRACE("after: " + context);
        NaiveLpm<NextHopId> ref;
        std::vector<Route> want;
        for (const auto& [p, nh] : routes_) {
            ref.set(p, nh);
            want.push_back(Route{p, nh});
        }
        EXPECT_EQ(sorted_routes(writer_->routes()), sorted_routes(want));
        EXPECT_EQ(writer_->route_count(), routes_.size());
        slot_->online();
        std::size_t bad = 0;
        for (Ipv4Addr a : probe_addresses()) {
            const auto m = ref.lookup(a);
            const NextHopId expected = m ? m->second : kNoRoute;
            const NextHopId w = writer_->lookup(a), v = view_->lookup(a);
            if ((w != expected || v != expected) && ++bad <= 5)
                ADD_FAILURE() << format_ipv4(a) << ": expected " << expected << ", writer " << w << ", reader " << v;
        }
        EXPECT_EQ(bad, 0u) << "lookups changed";
        for (const auto& [id, rec] : records_) {
            EXPECT_EQ(writer_->nexthop(id), rec) << "writer record " << id;
            const NextHop* seen = view_->nexthop(id);
            EXPECT_TRUE(seen && *seen == rec) << "reader record " << id;
        }
        slot_->quiescent();
        slot_->offline();
    }

    // A next-hop id in [1, max_nexthops] that is not allocated.
    NextHopId unused_id() const {
        for (NextHopId id = 1; id <= kSmall.max_nexthops; ++id)
            if (!records_.contains(id))
                return id;
        return kSmall.max_nexthops + 1;
    }

    // The fixture's writer goes away (readers stay): for the reopen tests.
    void close_writer() { writer_.reset(); }

    SegmentGuard guard_;
    std::optional<TableWriter> writer_;
    std::optional<TableView> view_;
    std::optional<ReaderSlot> slot_;
    std::vector<NextHopId> nh_;
    std::map<NextHopId, NextHop> records_;
    std::map<Prefix4, NextHopId> routes_;
    std::vector<Ipv4Addr> probes_;
};

TEST_F(BadInput, RouteAddWithUnknownNexthopIsNotFound) {
    auto extra = writer_->nexthop_add(record(9));
    ASSERT_TRUE(IsOk(extra));
    ASSERT_TRUE(IsOk(writer_->nexthop_del(*extra)));   // a deleted id is unknown too
    const std::vector<NextHopId> unknown = {unused_id(), *extra, kNoRoute, kSmall.max_nexthops + 1, 0xffffffu};
    for (NextHopId id : unknown) {
        EXPECT_TRUE(HasErrc(writer_->route_add(pfx("10.7.0.0/16"), id), Errc::kNotFound)) << "new prefix, nh " << id;
        EXPECT_TRUE(HasErrc(writer_->route_add(pfx("10.1.2.0/24"), id), Errc::kNotFound)) << "existing prefix, nh " << id;
        expect_intact("route_add with next hop " + std::to_string(id));
    }
    ASSERT_TRUE(IsOk(writer_->commit()));
    expect_intact("commit after the refused route_adds");
}

TEST_F(BadInput, RouteDelOfAbsentPrefixIsNotFound) {
    for (const char* text : {"10.2.0.0/16", "10.1.2.0/23", "10.1.2.0/25", "0.0.0.0/0", "10.1.2.2/31", "10.1.2.2/32",
                             "11.0.0.0/8", "192.168.0.0/18"}) {
        EXPECT_TRUE(HasErrc(writer_->route_del(pfx(text)), Errc::kNotFound)) << text;
        expect_intact(std::string("route_del ") + text);
    }
    // Deleted and committed: absent again.
    ASSERT_TRUE(IsOk(writer_->route_del(pfx("10.1.2.3/32"))));
    routes_.erase(pfx("10.1.2.3/32"));
    ASSERT_TRUE(IsOk(writer_->commit()));
    EXPECT_TRUE(HasErrc(writer_->route_del(pfx("10.1.2.3/32")), Errc::kNotFound));
    ASSERT_TRUE(IsOk(writer_->commit()));
    expect_intact("route_del of a deleted route");
}

TEST_F(BadInput, NexthopDelWhileReferencedIsInUse) {
    for (NextHopId id : nh_) {
        EXPECT_TRUE(HasErrc(writer_->nexthop_del(id), Errc::kInUse)) << "nexthop " << id;
        std::uint32_t refs = 0;
        for (const auto& [p, nh] : routes_)
            refs += nh == id;
        EXPECT_EQ(writer_->nexthop_refcount(id), refs) << "nexthop " << id;
        expect_intact("nexthop_del " + std::to_string(id));
    }
    // A route staged but not committed references its next hop already: deleting
    // it would leave commit() a dangling id.
    auto fresh = writer_->nexthop_add(record(4));
    ASSERT_TRUE(IsOk(fresh));
    records_[*fresh] = record(4);
    ASSERT_NO_FATAL_FAILURE(add_route(pfx("10.50.0.0/16"), *fresh));
    EXPECT_TRUE(HasErrc(writer_->nexthop_del(*fresh), Errc::kInUse)) << "next hop of a staged route";
    ASSERT_TRUE(IsOk(writer_->commit()));
    expect_intact("nexthop_del of a staged route's next hop");

    EXPECT_TRUE(HasErrc(writer_->nexthop_del(kSmall.max_nexthops + 1), Errc::kNotFound));
    EXPECT_TRUE(HasErrc(writer_->nexthop_del(kNoRoute), Errc::kNotFound));
    expect_intact("nexthop_del of unknown ids");
}

TEST_F(BadInput, NexthopTableFullIsCapacity) {
    auto fourth = writer_->nexthop_add(record(4));
    ASSERT_TRUE(IsOk(fourth)) << "the 4th of max_nexthops=4";
    records_[*fourth] = record(4);
    EXPECT_TRUE(HasErrc(writer_->nexthop_add(record(5)), Errc::kCapacity));
    expect_intact("nexthop_add into a full table");
    EXPECT_TRUE(HasErrc(writer_->nexthop_ensure(record(5)), Errc::kCapacity));
    expect_intact("nexthop_ensure of a new record into a full table");
    // An existing record needs no room.
    auto same = writer_->nexthop_ensure(record(2));
    ASSERT_TRUE(IsOk(same));
    EXPECT_EQ(*same, nh_[1]);
    // Freeing one makes room again.
    ASSERT_TRUE(IsOk(writer_->nexthop_del(*fourth)));
    records_.erase(*fourth);
    auto again = writer_->nexthop_add(record(6));
    ASSERT_TRUE(IsOk(again)) << "after nexthop_del";
    records_[*again] = record(6);
    expect_intact("nexthop_del + nexthop_add in a full table");
}

// A deleted id is reused once readers have passed a quiescent state; an
// operation that needs it waits for that (reclaim_timeout) instead of failing.
TEST_F(BadInput, NexthopIdFreedAfterGracePeriodIsReusable) {
    auto fourth = writer_->nexthop_add(record(4));
    ASSERT_TRUE(IsOk(fourth));
    slot_->online();   // a reader that may still hold the id from a lookup
    ASSERT_TRUE(IsOk(writer_->nexthop_del(*fourth)));
    slot_->quiescent();   // ... and then lets go of it
    auto again = writer_->nexthop_add(record(6));
    ASSERT_TRUE(IsOk(again)) << "the id's grace period is over";
    records_[*again] = record(6);
    slot_->offline();
    expect_intact("nexthop id reuse after a grace period");
}

TEST_F(BadInput, NexthopUpdateOfUnknownIdIsNotFound) {
    auto gone = writer_->nexthop_add(record(4));
    ASSERT_TRUE(IsOk(gone));
    ASSERT_TRUE(IsOk(writer_->nexthop_del(*gone)));
    for (NextHopId id : {unused_id(), *gone, kNoRoute, kSmall.max_nexthops + 1, 0xffffffffu}) {
        EXPECT_TRUE(HasErrc(writer_->nexthop_update(id, record(7)), Errc::kNotFound)) << "nexthop " << id;
        expect_intact("nexthop_update " + std::to_string(id));
    }
}

TEST_F(BadInput, RouteTableFullIsCapacity) {
    // Fill to max_routes with /32s next to the baseline.
    for (std::uint32_t i = 0; routes_.size() < kSmall.max_routes; ++i)
        ASSERT_NO_FATAL_FAILURE(add_route(Prefix4{0x0a090000u + i, 32}, nh_[i % 3]));
    ASSERT_TRUE(IsOk(writer_->commit()));
    expect_intact("filling the route table");

    for (const char* text : {"10.9.1.0/24", "10.200.0.0/16", "0.0.0.0/0", "10.9.0.255/32"}) {
        EXPECT_TRUE(HasErrc(writer_->route_add(pfx(text), nh_[0]), Errc::kCapacity)) << text;
        expect_intact(std::string("route_add into a full table: ") + text);
    }
    ASSERT_TRUE(IsOk(writer_->commit()));
    expect_intact("commit after the refused route_adds");

    // Replacing the next hop of an existing route needs no new route.
    ASSERT_NO_FATAL_FAILURE(add_route(pfx("10.1.2.0/24"), nh_[0]));
    ASSERT_TRUE(IsOk(writer_->commit()));
    expect_intact("replacing a route in a full table");

    // A deletion makes room.
    ASSERT_TRUE(IsOk(writer_->route_del(pfx("10.9.0.0/32"))));
    routes_.erase(pfx("10.9.0.0/32"));
    ASSERT_TRUE(IsOk(writer_->commit()));
    ASSERT_NO_FATAL_FAILURE(add_route(pfx("10.9.1.0/24"), nh_[2]));
    ASSERT_TRUE(IsOk(writer_->commit()));
    expect_intact("delete then add in a full table");
}

TEST_F(BadInput, ReaderSlotsExhaustedIsCapacity) {
    std::vector<ReaderSlot> slots;   // the fixture holds one of the 4
    for (unsigned i = 1; i < kSmall.reader_slots; ++i) {
        auto s = view_->register_reader();
        ASSERT_TRUE(IsOk(s)) << "slot " << i;
        slots.push_back(*std::move(s));
    }
    EXPECT_TRUE(HasErrc(view_->register_reader(), Errc::kCapacity));
    auto other_view = TableView::open(guard_.name());
    ASSERT_TRUE(IsOk(other_view));
    EXPECT_TRUE(HasErrc(other_view->register_reader(), Errc::kCapacity)) << "through a second view";
    expect_intact("register_reader with all slots taken");
    slots.pop_back();   // a released slot is free again
    auto s = view_->register_reader();
    EXPECT_TRUE(IsOk(s)) << "after releasing one";
}

TEST_F(BadInput, ViewOpenOfMissingSegmentIsNotFound) {
    SegmentGuard missing("missing");
    EXPECT_TRUE(HasErrc(TableView::open(missing.name()), Errc::kNotFound));
}

TEST_F(BadInput, SecondWriterFromAnotherProcessIsBusy) {
    const std::string name = guard_.name();
    auto child = ChildProcess::spawn([&] { return exit_code_of(TableWriter::open(name, small_options())); });
    const auto st = child.wait_for(30s);
    ASSERT_TRUE(st.has_value()) << "the second writer hung";
    ASSERT_TRUE(WIFEXITED(*st)) << describe_status(st);
    EXPECT_EQ(WEXITSTATUS(*st), exit_code_for(Errc::kBusy)) << "exit 0: ok, 10+n: Errc n";
    expect_intact("a second writer was refused");
    // Once the first writer is gone, a new one takes over what it left.
    close_writer();
    ASSERT_NO_FATAL_FAILURE(open_writer(/*expect_recovered=*/true));
    expect_intact("reopen after the first writer closed");
}

TEST_F(BadInput, SecondWriterInSameProcessIsBusy) {
    EXPECT_TRUE(HasErrc(TableWriter::open(guard_.name(), small_options()), Errc::kBusy));
    expect_intact("a second writer in the same process was refused");
}

TEST_F(BadInput, ReopenWithDifferentCapacityIsIncompatible) {
    close_writer();
    std::vector<Capacity> others(8, kSmall);
    others[0].max_routes *= 2;
    others[1].max_nexthops *= 2;
    others[2].reader_slots *= 2;
    others[3].max_groups /= 2;
    others[4] = Capacity{};
    others[5].dense_window_len = 16;             // another window size
    // The same geometry, only the window moved: the capacity compare refuses it.
    others[6].dense_window_addr = 0x0b000000u;
    others[7].dense_window_addr = 0;
    others[7].dense_window_len = kNoDenseWindow;
    for (const Capacity& c : others) {
        TableWriter::Options o = small_options();
        o.capacity = c;
        auto w = TableWriter::open(guard_.name(), o);
        EXPECT_TRUE(HasErrc(w, Errc::kIncompatible))
            << c.max_routes << "/" << c.max_nexthops << "/" << c.reader_slots << "/" << c.max_groups << "/"
            << format_ipv4(c.dense_window_addr) << "/" << c.dense_window_len;
        if (!w && c.dense_window_addr != kSmall.dense_window_addr) {
            EXPECT_NE(w.error().message.find("dense window 10.0.0.0/8"), std::string::npos) << w.error().message;
        }
    }
    ASSERT_NO_FATAL_FAILURE(open_writer(/*expect_recovered=*/true));
    expect_intact("reopen with the original capacity");
}

// Group ids must stay below 2^23 (a group's leaf would otherwise read as
// group 0's): the largest capacity is refused one past kMaxGroups.
TEST(BadCapacity, GroupsPastTheLeafEncodingAreRefused) {
    SegmentGuard guard;
    TableWriter::Options o;
    o.capacity = Capacity{.max_routes = 64, .max_nexthops = 4, .reader_slots = 4, .max_groups = kMaxGroups + 1};
    EXPECT_TRUE(HasErrc(TableWriter::open(guard.name(), o), Errc::kInvalidArgument));
    EXPECT_EQ(group_of_leaf(group_leaf(2 * kMaxGroups)), 2 * kMaxGroups) << "the largest group id round-trips";
    EXPECT_NE(group_leaf(2 * kMaxGroups), group_leaf(0));
}

// The dense window: /8../24 without host bits, or none (length 0, address 0).
TEST(BadCapacity, BadDenseWindowsAreRefusedWithTheirPrefix) {
    SegmentGuard guard;
    const std::pair<Ipv4Addr, std::uint32_t> bad[] = {
        {0x0a000000u, 7}, {0x0a000000u, 25}, {0x0a000000u, 32}, {0x0a000000u, 33}, {0xffffffffu, 255},
        {0x0a000001u, 8}, {0x0a010280u, 24}, {0x0a000000u, kNoDenseWindow}, {0, 1}};
    for (const auto& [addr, len] : bad) {
        TableWriter::Options o;
        o.capacity = Capacity{.max_routes = 64, .max_nexthops = 4, .reader_slots = 4, .max_groups = 4,
                              .dense_window_addr = addr, .dense_window_len = len};
        auto w = TableWriter::open(guard.name(), o);
        ASSERT_TRUE(HasErrc(w, Errc::kInvalidArgument)) << format_ipv4(addr) << "/" << len;
        EXPECT_NE(w.error().message.find("dense window " + format_ipv4(addr) + "/" + std::to_string(len)),
                  std::string::npos)
            << w.error().message;
        EXPECT_FALSE(std::filesystem::exists(guard.path())) << "a refused capacity created the segment";
    }
    for (const auto& [addr, len] : {std::pair<Ipv4Addr, std::uint32_t>{0, kNoDenseWindow}, {0x0a000000u, 8},
                                    {0x0a010200u, 24}, {0xff000000u, 8}, {0x0a100000u, 12}}) {
        SegmentGuard ok_guard;
        TableWriter::Options o;
        o.capacity = Capacity{.max_routes = 64, .max_nexthops = 4, .reader_slots = 4, .max_groups = 4,
                              .dense_window_addr = addr, .dense_window_len = len};
        EXPECT_TRUE(IsOk(TableWriter::open(ok_guard.name(), o))) << format_ipv4(addr) << "/" << len;
        EXPECT_TRUE(IsOk(TableView::open(ok_guard.name()))) << format_ipv4(addr) << "/" << len;
    }
}

TEST_F(BadInput, UnlinkRemovesTheNameNotTheMappings) {
    ASSERT_TRUE(IsOk(TableWriter::unlink(guard_.name())));
    EXPECT_FALSE(std::filesystem::exists(guard_.path()));
    EXPECT_TRUE(HasErrc(TableView::open(guard_.name()), Errc::kNotFound));
    expect_intact("unlink");
}

// ---------------------------------------------------------------- foreign files

std::vector<char> read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_file(const std::string& path, const std::vector<char>& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

template <class T>
void patch(const std::string& path, std::size_t offset, T value) {
    const int fd = ::open(path.c_str(), O_WRONLY);
    ASSERT_GE(fd, 0) << path;
    EXPECT_EQ(::pwrite(fd, &value, sizeof value, static_cast<off_t>(offset)), static_cast<ssize_t>(sizeof value));
    ::close(fd);
}

// A real segment with a few routes, its writer closed, nothing mapped.
void make_closed_segment(const std::string& name) {
    auto w = TableWriter::open(name, small_options());
    ASSERT_TRUE(IsOk(w));
    auto nh = w->nexthop_add(record(1));
    ASSERT_TRUE(IsOk(nh));
    ASSERT_TRUE(IsOk(w->route_add(pfx("10.0.0.0/8"), *nh)));
    ASSERT_TRUE(IsOk(w->commit()));
}

void expect_both_refuse(const std::string& name, Errc want, const std::string& what) {
    SCOPED_TRACE(what);
    EXPECT_TRUE(HasErrc(TableView::open(name), want)) << "TableView::open";
    EXPECT_TRUE(HasErrc(TableWriter::open(name, small_options()), want)) << "TableWriter::open";
}

TEST(BadSegment, GarbageFileIsIncompatibleAndLeftAlone) {
    SegmentGuard guard;
    Rng rng(1);
    std::vector<char> garbage(1 << 20);
    for (char& c : garbage)
        c = static_cast<char>(rng.below(256));
    write_file(guard.path(), garbage);
    expect_both_refuse(guard.name(), Errc::kIncompatible, "1 MiB of random bytes");
    EXPECT_EQ(read_file(guard.path()), garbage) << "a refused open modified the file";
}

TEST(BadSegment, OtherLayoutVersionIsIncompatible) {
    SegmentGuard guard;
    ASSERT_NO_FATAL_FAILURE(make_closed_segment(guard.name()));
    const auto offset = offsetof(SegmentHeader, layout_version);
    ASSERT_NO_FATAL_FAILURE(patch(guard.path(), offset, kLayoutVersion + 1));
    expect_both_refuse(guard.name(), Errc::kIncompatible, "layout_version + 1");
    // Restored, the segment is usable again and kept its routes.
    ASSERT_NO_FATAL_FAILURE(patch(guard.path(), offset, kLayoutVersion));
    auto w = TableWriter::open(guard.name(), small_options());
    ASSERT_TRUE(IsOk(w));
    EXPECT_TRUE(w->recovered());
    EXPECT_EQ(w->route_count(), 1u);
}

TEST(BadSegment, OtherMagicIsIncompatible) {
    SegmentGuard guard;
    ASSERT_NO_FATAL_FAILURE(make_closed_segment(guard.name()));
    ASSERT_NO_FATAL_FAILURE(patch(guard.path(), offsetof(SegmentHeader, magic), kSegmentMagic ^ 0xff));
    expect_both_refuse(guard.name(), Errc::kIncompatible, "magic changed");
}

TEST(BadSegment, TruncatedSegmentIsIncompatible) {
    SegmentGuard guard;
    ASSERT_NO_FATAL_FAILURE(make_closed_segment(guard.name()));
    struct stat st{};
    ASSERT_EQ(::stat(guard.path().c_str(), &st), 0);
    const off_t full = st.st_size;
    ASSERT_GT(full, static_cast<off_t>(sizeof(SegmentHeader)));
    ASSERT_EQ(::truncate(guard.path().c_str(), full / 2), 0);
    expect_both_refuse(guard.name(), Errc::kIncompatible, "truncated to half");
    ASSERT_EQ(::truncate(guard.path().c_str(), sizeof(SegmentHeader)), 0);
    expect_both_refuse(guard.name(), Errc::kIncompatible, "truncated to the header");
}

}  // namespace
}  // namespace podfwd::lpm::test
