// libFuzzer target: lookups on a segment whose body the input overwrites.
//
// Input: 8-byte records (offset u32, value u32, little endian); each stores
// `value` at body word `offset` (modulo the words of the directory, leaves,
// groups, next-hop map and dense window). Then a fixed set of addresses is looked up,
// singly and in bulk, and every answer resolved with nexthop(). A load
// outside the mapping faults (ASan does not know mmap()ed regions: the guard
// windows' end is the judge); any id is a valid answer, but nexthop() must
// give nullptr or a record of the records region. The
// overwritten words are restored afterwards, so every input starts from the
// same table.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "lpm/layout.h"
#include "lpm/reader.h"
#include "lpm/writer.h"

namespace {

using namespace podfwd;
using namespace podfwd::lpm;

[[noreturn]] void die(const std::string& what) {
    std::fprintf(stderr, "lookup_fuzz: %s\n", what.c_str());
    std::abort();
}

struct Region {
    std::uint64_t offset, words;
};

struct Fixture {
    // run_fuzz.sh removes /dev/shm/podfwd-fuzz.<pid> if the target crashes.
    std::string name = "podfwd-fuzz." + std::to_string(::getpid());
    TableWriter writer;
    TableView view;
    ReaderSlot slot;
    std::uint32_t* body = nullptr;   // the segment through a writable mapping
    std::size_t size = 0;
    std::vector<Region> regions;
    std::uint64_t total_words = 0;
    std::vector<Ipv4Addr> probes;

    static TableWriter make_writer(const std::string& name) {
        (void)TableWriter::unlink(name);
        TableWriter::Options o;
        o.capacity = Capacity{.max_routes = 1024, .max_nexthops = 64, .reader_slots = 4, .max_groups = 64};
        auto w = TableWriter::open(name, o);
        if (!w)
            die("TableWriter::open: " + w.error().message);
        return std::move(*w);
    }
    static TableView make_view(const std::string& name) {
        auto v = TableView::open(name);
        if (!v)
            die("TableView::open: " + v.error().message);
        return std::move(*v);
    }

    Fixture() : writer(make_writer(name)), view(make_view(name)), slot(*view.register_reader()) {
        std::vector<NextHopId> ids;
        for (std::uint32_t i = 1; i <= 16; ++i) {
            NextHop nh;
            nh.node_ip = 0xc0a80000u | i;
            nh.mode = ForwardMode::kVxlan;
            ids.push_back(*writer.nexthop_add(nh));
        }
        // Directory, leaf-array and group routes around the probes.
        const std::pair<const char*, unsigned> routes[] = {
            {"10.0.0.0/8", 0},     {"10.1.0.0/16", 1},     {"10.1.2.0/24", 2}, {"10.1.2.128/25", 3},
            {"10.1.2.7/32", 4},    {"10.200.16.0/20", 5},  {"172.16.0.0/12", 6}, {"192.168.1.0/24", 7},
            {"192.168.1.64/26", 8}, {"0.0.0.0/0", 9},
        };
        for (const auto& [text, nh] : routes) {
            auto p = Prefix4::parse(text);
            if (!p || !writer.route_add(*p, ids[nh]))
                die(std::string("route_add ") + text);
        }
        if (!writer.commit())
            die("commit");
        for (const char* a : {"10.1.2.7", "10.1.2.200", "10.1.2.1", "10.1.3.1", "10.200.17.5", "10.9.9.9",
                              "172.20.1.1", "192.168.1.70", "192.168.1.5", "8.8.8.8", "255.255.255.255", "0.0.0.0"})
            probes.push_back(*parse_ipv4(a));

        const int fd = ::open(("/dev/shm/" + name).c_str(), O_RDWR | O_CLOEXEC);
        if (fd < 0)
            die("open segment");
        size = static_cast<std::size_t>(::lseek(fd, 0, SEEK_END));
        void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        ::close(fd);
        if (p == MAP_FAILED)
            die("mmap segment");
        body = static_cast<std::uint32_t*>(p);
        const auto& h = *static_cast<const SegmentHeader*>(p);
        regions = {{h.dir_offset / 4, std::uint64_t{kDirEntries} * 2},
                   {h.leaves_offset / 4, h.leaf_capacity},
                   {h.groups_offset / 4, std::uint64_t{h.group_capacity} * kGroupEntries},
                   {h.nh_map_offset / 4, std::uint64_t{h.capacity.max_nexthops} + 1},
                   {h.window_offset / 4, h.window_bytes / 4}};
        for (const Region& r : regions)
            total_words += r.words;
    }
    ~Fixture() {
        if (body != nullptr)
            ::munmap(body, size);
        (void)TableWriter::unlink(name);
    }

    std::uint32_t* word(std::uint64_t index) const {
        index %= total_words;
        for (const Region& r : regions) {
            if (index < r.words)
                return body + r.offset + index;
            index -= r.words;
        }
        return body;   // unreachable: index < total_words
    }
};

Fixture& fixture() {
    static Fixture f;
    return f;
}

void check(const Fixture& f, NextHopId id) {
    const NextHopTable& table = f.view.nexthops();
    // ASan does not know the regions of an mmap()ed segment: judge the
    // pointer against the records region itself, then load through it.
    if (const NextHop* nh = f.view.nexthop(id)) {
        if (nh < table.records || nh >= table.records + table.record_capacity)
            die("nexthop(" + std::to_string(id) + ") outside the records region");
        volatile std::uint32_t sink = nh->node_ip;
        (void)sink;
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    Fixture& f = fixture();
    struct Saved {
        std::uint32_t* at;
        std::uint32_t value;
    };
    std::vector<Saved> saved;
    for (std::size_t i = 0; i + 8 <= size; i += 8) {
        std::uint32_t offset, value;
        std::memcpy(&offset, data + i, 4);
        std::memcpy(&value, data + i + 4, 4);
        std::uint32_t* at = f.word(offset);
        saved.push_back({at, *at});
        *at = value;
    }
    std::array<NextHopId, 16> out{};
    f.view.lookup_bulk(f.probes.data(), out.data(), f.probes.size());
    for (std::size_t k = 0; k < f.probes.size(); ++k) {
        check(f, out[k]);
        check(f, f.view.lookup(f.probes[k]));
        check(f, f.view.lookup(f.probes[k] ^ static_cast<Ipv4Addr>(size * 2654435761u)));
    }
    f.slot.quiescent();
    // Newest first, so a word written twice gets its original value back.
    for (auto it = saved.rbegin(); it != saved.rend(); ++it)
        *it->at = it->value;
    return 0;
}
