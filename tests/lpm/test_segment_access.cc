// Who may create and open a table segment: the writer creates it exclusively
// and adopts an existing file only if it is a segment of ours; writer and
// readers refuse a segment owned by another user or writable by others.
// The tests run as root (chown).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <iterator>

#include "tests/lpm/test_util.h"

namespace podfwd::lpm::test {
namespace {

TableWriter::Options small() {
    TableWriter::Options o;
    o.capacity = Capacity{.max_routes = 64, .max_nexthops = 16, .reader_slots = 4, .max_groups = 16};
    return o;
}

// A segment with one route, its writer gone.
void make_segment(const std::string& name) {
    auto w = TableWriter::open(name, small());
    ASSERT_TRUE(IsOk(w));
    NextHop nh;
    nh.node_ip = 0x0a000001;
    auto id = w->nexthop_add(nh);
    ASSERT_TRUE(IsOk(id));
    ASSERT_TRUE(IsOk(w->route_add(*Prefix4::parse("10.1.0.0/16"), *id)));
    ASSERT_TRUE(IsOk(w->commit()));
}

std::string file_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The error names the path, the owner and the mode.
template <class T>
::testing::AssertionResult RefusedNaming(const Result<T>& r, const std::string& path, const std::string& owner,
                                         const std::string& mode) {
    if (r)
        return ::testing::AssertionFailure() << "succeeded";
    const std::string& m = r.error().message;
    if (r.error().code != Errc::kIncompatible || m.find(path) == std::string::npos ||
        m.find("uid " + owner) == std::string::npos || m.find("mode " + mode) == std::string::npos)
        return ::testing::AssertionFailure() << describe(r.error());
    return ::testing::AssertionSuccess() << m;
}

TEST(SegmentAccess, CreatedPrivateToItsWriter) {
    SegmentGuard guard;
    ASSERT_NO_FATAL_FAILURE(make_segment(guard.name()));
    struct stat st{};
    ASSERT_EQ(::stat(guard.path().c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, ::geteuid());
    EXPECT_EQ(st.st_mode & 077, 0u) << std::oct << st.st_mode;
}

TEST(SegmentAccess, OwnStaleSegmentIsAdopted) {
    SegmentGuard guard;
    ASSERT_NO_FATAL_FAILURE(make_segment(guard.name()));
    auto w = TableWriter::open(guard.name(), small());
    ASSERT_TRUE(IsOk(w));
    EXPECT_EQ(w->routes().size(), 1u);
    EXPECT_TRUE(IsOk(TableView::open(guard.name())));
}

TEST(SegmentAccess, SegmentOfAnotherUserIsRefused) {
    SegmentGuard guard;
    ASSERT_NO_FATAL_FAILURE(make_segment(guard.name()));
    ASSERT_EQ(::chown(guard.path().c_str(), 65534, 65534), 0) << std::strerror(errno);
    EXPECT_TRUE(RefusedNaming(TableWriter::open(guard.name(), small()), guard.path(), "65534", "0600"));
    EXPECT_TRUE(RefusedNaming(TableView::open(guard.name()), guard.path(), "65534", "0600"));
}

TEST(SegmentAccess, SegmentWritableByOthersIsRefused) {
    SegmentGuard guard;
    ASSERT_NO_FATAL_FAILURE(make_segment(guard.name()));
    for (const auto& [mode, text] : {std::pair{0666, "0666"}, std::pair{0620, "0620"}}) {
        ASSERT_EQ(::chmod(guard.path().c_str(), static_cast<mode_t>(mode)), 0);
        const std::string self = std::to_string(::geteuid());
        EXPECT_TRUE(RefusedNaming(TableWriter::open(guard.name(), small()), guard.path(), self, text));
        EXPECT_TRUE(RefusedNaming(TableView::open(guard.name()), guard.path(), self, text));
    }
    // Read access for others is fine: only writing is a threat.
    ASSERT_EQ(::chmod(guard.path().c_str(), 0644), 0);
    EXPECT_TRUE(IsOk(TableView::open(guard.name())));
}

TEST(SegmentAccess, PreCreatedFileThatIsNotASegmentIsRefusedAndKept) {
    SegmentGuard guard;
    {
        std::ofstream out(guard.path(), std::ios::binary);
        out << std::string(8192, 'x');
    }
    ASSERT_EQ(::chmod(guard.path().c_str(), 0600), 0);
    const std::string before = file_bytes(guard.path());
    auto w = TableWriter::open(guard.name(), small());
    EXPECT_TRUE(HasErrc(w, Errc::kIncompatible));
    EXPECT_EQ(file_bytes(guard.path()), before) << "the writer changed a file that is not its segment";
    EXPECT_TRUE(HasErrc(TableView::open(guard.name()), Errc::kIncompatible));
}

TEST(SegmentAccess, PreCreatedFileOfAnotherUserIsNeverInitialised) {
    // An empty file someone else put there first would otherwise be sized
    // and initialised as a fresh segment.
    SegmentGuard guard;
    const int fd = ::open(guard.path().c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::fchown(fd, 65534, 65534), 0);
    ::close(fd);
    EXPECT_TRUE(RefusedNaming(TableWriter::open(guard.name(), small()), guard.path(), "65534", "0600"));
    struct stat st{};
    ASSERT_EQ(::stat(guard.path().c_str(), &st), 0);
    EXPECT_EQ(st.st_size, 0) << "the refused file was written";
}

TEST(SegmentAccess, SymbolicLinkIsNotFollowed) {
    SegmentGuard guard;
    const std::string target = "/tmp/" + guard.name() + ".target";
    { std::ofstream(target) << "keep"; }
    ASSERT_EQ(::symlink(target.c_str(), guard.path().c_str()), 0);
    EXPECT_FALSE(TableWriter::open(guard.name(), small()).has_value());
    EXPECT_FALSE(TableView::open(guard.name()).has_value());
    EXPECT_EQ(file_bytes(target), "keep");
    ::unlink(target.c_str());
}

}  // namespace
}  // namespace podfwd::lpm::test
