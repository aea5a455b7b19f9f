// libFuzzer target: a writer re-attaching to a corrupt segment.
//
// Each input starts from the same small valid table (built afresh in
// /dev/shm/podfwd-fuzz.<pid>, removed at exit), then overwrites parts of it:
// 9-byte records (region u8, index u32, value u32, little endian) storing
// `value` at word `index` (modulo the region) of the route records, the
// next-hop map and records, the header's counters and high-water marks (not
// magic, layout or geometry: those are refused whole by the opener), the
// directory, leaves, groups, reader slots or dense window. Then TableWriter::open
// recovers it; if it succeeds, the recovered table must be coherent — every
// route well-formed with an existing next hop, the writer's and a reader's
// lookups equal to a naive LPM of routes() — before and after a few changes.
// ASan and UBSan judge every access.
#include <sys/mman.h>
#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "lpm/layout.h"
#include "lpm/reader.h"
#include "lpm/writer.h"

namespace {

using namespace podfwd;
using namespace podfwd::lpm;

[[noreturn]] void die(const std::string& what) {
    std::fprintf(stderr, "recovery_fuzz: %s\n", what.c_str());
    std::abort();
}

const std::string& segment_name() {
    // run_fuzz.sh removes /dev/shm/podfwd-fuzz.<pid> if the target crashes.
    static const std::string name = "podfwd-fuzz." + std::to_string(::getpid());
    return name;
}

TableWriter::Options options() {
    TableWriter::Options o;
    o.capacity = Capacity{.max_routes = 64, .max_nexthops = 16, .reader_slots = 4, .max_groups = 16};
    o.reclaim_timeout = std::chrono::milliseconds(1);   // no reader waits: a corrupt slot may look online
    return o;
}

Prefix4 pfx(const char* text) {
    auto p = Prefix4::parse(text);
    if (!p)
        die(p.error().message);
    return *p;
}

const std::array<Ipv4Addr, 12> kProbes = {0x0a000001u, 0x0a010001u, 0x0a010207u, 0x0a010281u, 0x0a0102ffu,
                                          0x0a020001u, 0x0a030005u, 0xc0a80101u, 0xc0a80102u, 0x01020304u,
                                          0x0a0100ffu, 0xffffffffu};

void build_table() {
    (void)TableWriter::unlink(segment_name());
    auto w = TableWriter::open(segment_name(), options());
    if (!w)
        die("open: " + w.error().message);
    std::vector<NextHopId> ids;
    for (std::uint32_t k = 1; k <= 4; ++k) {
        NextHop nh;
        nh.node_ip = 0x0aa80000u + k;
        nh.mode = ForwardMode::kIpip;
        auto id = w->nexthop_add(nh);
        if (!id)
            die("nexthop_add: " + id.error().message);
        ids.push_back(*id);
    }
    const char* routes[] = {"10.0.0.0/8",    "10.1.0.0/16",    "10.1.2.0/24", "10.1.2.128/25",
                            "10.1.2.7/32",   "10.2.0.0/20",    "192.168.1.1/32", "10.3.0.0/24"};
    unsigned k = 0;
    for (const char* r : routes)
        if (auto s = w->route_add(pfx(r), ids[k++ % ids.size()]); !s)
            die("route_add: " + s.error().message);
    if (!w->commit() || !w->route_del(pfx("10.3.0.0/24")) || !w->commit() || !w->nexthop_update(ids[0], NextHop{}))
        die("building the table failed");
}

// The recovered table must be what its own routes() say, for the writer and a reader.
void check_coherent(const TableWriter& w, const char* when) {
    std::array<std::unordered_map<Ipv4Addr, NextHopId>, 33> by_len;
    for (const Route& r : w.routes()) {
        if (r.prefix.len > 32 || (r.prefix.addr & ~prefix_mask(r.prefix.len)) != 0)
            die(std::string(when) + ": malformed route " + r.prefix.str());
        if (!w.nexthop(r.nexthop))
            die(std::string(when) + ": route " + r.prefix.str() + " names next hop " + std::to_string(r.nexthop) +
                ", which has no record");
        by_len[r.prefix.len][r.prefix.addr] = r.nexthop;
    }
    auto view = TableView::open(segment_name());
    for (Ipv4Addr a : kProbes) {
        NextHopId want = kNoRoute;
        for (int len = 32; len >= 0 && want == kNoRoute; --len)
            if (auto it = by_len[len].find(a & prefix_mask(len)); it != by_len[len].end())
                want = it->second;
        if (w.lookup(a) != want || (view && view->lookup(a) != want))
            die(std::string(when) + ": lookup(" + format_ipv4(a) + ") = " + std::to_string(w.lookup(a)) +
                " (writer), " + std::to_string(view ? view->lookup(a) : kNoRoute) + " (reader), routes() say " +
                std::to_string(want));
    }
}

struct Segment {
    std::byte* base = nullptr;
    std::size_t size = 0;
    Segment() {
        const int fd = ::shm_open(("/" + segment_name()).c_str(), O_RDWR, 0);
        if (fd < 0)
            die("shm_open");
        size = static_cast<std::size_t>(::lseek(fd, 0, SEEK_END));
        void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        ::close(fd);
        if (p == MAP_FAILED)
            die("mmap");
        base = static_cast<std::byte*>(p);
    }
    ~Segment() { ::munmap(base, size); }
    Segment(const Segment&) = delete;
    Segment& operator=(const Segment&) = delete;
    SegmentHeader& header() const { return *reinterpret_cast<SegmentHeader*>(base); }
};

void corrupt(const Segment& seg, const std::uint8_t* data, std::size_t size) {
    const SegmentHeader& h = seg.header();
    const auto counters = static_cast<std::uint64_t>(reinterpret_cast<const std::byte*>(&h.epoch) - seg.base);
    struct Region {
        std::uint64_t offset, words;
    };
    const Region regions[] = {
        {h.routes_offset, std::uint64_t{h.capacity.max_routes} * 2},
        {h.nh_map_offset, std::uint64_t{h.capacity.max_nexthops} + 1},
        {h.nh_records_offset, std::uint64_t{h.nh_record_capacity} * sizeof(NextHop) / 4},
        {counters, (sizeof(SegmentHeader) - counters) / 4},
        {h.dir_offset, std::uint64_t{kDirEntries} * 2},
        {h.leaves_offset, h.leaf_capacity},
        {h.groups_offset, std::uint64_t{h.group_capacity} * kGroupEntries},
        {h.readers_offset, h.readers_bytes / 4},
        {h.window_offset, h.window_bytes / 4},
    };
    constexpr std::size_t kRecord = 9;
    for (std::size_t i = 0; i + kRecord <= size; i += kRecord) {
        const Region& r = regions[data[i] % std::size(regions)];
        std::uint32_t index, value;
        std::memcpy(&index, data + i + 1, 4);
        std::memcpy(&value, data + i + 5, 4);
        std::memcpy(seg.base + r.offset + (index % r.words) * 4, &value, 4);
    }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    (void)segment_name();   // constructed before the handler is registered, so destroyed after it runs
    std::atexit([] { (void)TableWriter::unlink(segment_name()); });
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    build_table();
    {
        Segment seg;
        corrupt(seg, data, size);
    }
    auto w = TableWriter::open(segment_name(), options());
    if (!w)
        return 0;   // refused with an error: fine
    check_coherent(*w, "after recovery");
    NextHop nh;
    nh.node_ip = 0x0aa800ffu;
    nh.mode = ForwardMode::kVxlan;
    if (auto id = w->nexthop_ensure(nh)) {
        (void)w->route_add(pfx("10.1.2.0/24"), *id);
        (void)w->route_add(pfx("10.9.9.9/32"), *id);
        (void)w->route_del(pfx("10.1.0.0/16"));
        (void)w->commit();
        check_coherent(*w, "after changes");
        (void)w->route_del(pfx("10.9.9.9/32"));
        (void)w->route_del(pfx("10.1.2.0/24"));
        (void)w->commit();
        (void)w->nexthop_del(*id);
        check_coherent(*w, "after deletes");
    }
    return 0;
}
