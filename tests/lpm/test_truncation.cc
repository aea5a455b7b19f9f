// A segment file truncated under an attached reader: the reader keeps
// looking up without a SIGBUS, gets kNoRoute and no records, and
// TableView::truncated() says so. A SIGBUS outside any segment still kills.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tests/lpm/test_util.h"

namespace podfwd::lpm::test {
namespace {

TEST(Truncation, ReaderOfATruncatedSegmentGetsNoRouteNotSigbus) {
    SegmentGuard guard;
    TableWriter::Options o;
    o.capacity = Capacity{.max_routes = 256, .max_nexthops = 16, .reader_slots = 4, .max_groups = 16};
    auto w = TableWriter::open(guard.name(), o);
    ASSERT_TRUE(IsOk(w));
    NextHop nh;
    nh.node_ip = 0x0a000001;
    auto id = w->nexthop_add(nh);
    ASSERT_TRUE(IsOk(id));
    // A directory route, a leaf-array route and a group route.
    for (const char* p : {"10.0.0.0/8", "10.1.2.0/24", "10.1.2.7/32"})
        ASSERT_TRUE(IsOk(w->route_add(*Prefix4::parse(p), *id)));
    ASSERT_TRUE(IsOk(w->commit()));

    auto view = TableView::open(guard.name());
    ASSERT_TRUE(IsOk(view));
    auto slot = view->register_reader();
    ASSERT_TRUE(IsOk(slot));
    const Ipv4Addr addrs[] = {*parse_ipv4("10.9.9.9"), *parse_ipv4("10.1.2.9"), *parse_ipv4("10.1.2.7")};
    for (Ipv4Addr a : addrs)
        ASSERT_EQ(view->lookup(a), *id);
    EXPECT_FALSE(view->truncated());

    for (const off_t length : {off_t{8192}, off_t{0}}) {
        const int fd = ::open(guard.path().c_str(), O_RDWR | O_CLOEXEC);
        ASSERT_GE(fd, 0);
        ASSERT_EQ(::ftruncate(fd, length), 0);
        ::close(fd);
        EXPECT_TRUE(view->truncated()) << "after truncating to " << length;
        for (Ipv4Addr a : addrs) {
            EXPECT_EQ(view->lookup(a), kNoRoute) << format_ipv4(a);
            NextHopId bulk[3];
            view->lookup_bulk(addrs, bulk, 3);
            for (NextHopId b : bulk)
                EXPECT_EQ(b, kNoRoute);
        }
        EXPECT_EQ(view->nexthop(*id), nullptr);
        slot->quiescent();   // the slot region stays writable
        slot->offline();
        slot->online();
        EXPECT_EQ(view->stats().routes, 0u);
    }
}

TEST(Truncation, SigbusOutsideASegmentStillKills) {
    SegmentGuard guard;   // makes sure the guard is installed in this process
    {
        auto w = TableWriter::open(guard.name());
        ASSERT_TRUE(IsOk(w));
        ASSERT_TRUE(IsOk(TableView::open(guard.name())));
    }
    const std::string path = "/dev/shm/" + guard.name() + ".other";
    ChildProcess child = ChildProcess::spawn([&] {
        auto view = TableView::open(guard.name());   // a guarded mapping in this process too
        const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (!view || fd < 0 || ::ftruncate(fd, 4096) != 0)
            return kChildFailed;
        auto* p = static_cast<volatile char*>(::mmap(nullptr, 4096, PROT_READ, MAP_SHARED, fd, 0));
        if (::ftruncate(fd, 0) != 0)
            return kChildFailed;
        return p[100] == 0 ? kChildOk : kChildFailed;   // must not get here
    });
    const auto st = child.wait_for(10s);
    ::unlink(path.c_str());
    ASSERT_TRUE(st.has_value());
    EXPECT_FALSE(exited_ok(st)) << "a load past the end of an unguarded file returned";
#if defined(__SANITIZE_ADDRESS__)
    // The guard hands the fault to the handler installed before it: ASan's,
    // which reports the SIGBUS and exits.
    if (WIFSIGNALED(*st)) {
        EXPECT_EQ(WTERMSIG(*st), SIGBUS) << describe_status(st);
    }
#else
    EXPECT_TRUE(WIFSIGNALED(*st) && WTERMSIG(*st) == SIGBUS) << describe_status(st);
#endif
}

}  // namespace
}  // namespace podfwd::lpm::test
