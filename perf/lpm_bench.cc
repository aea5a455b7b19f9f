// lpm_bench: our shared-memory route table (podfwd::lpm) side
// by side with DPDK's rte_lpm and rte_fib (DIR-24-8) in one run, on a pod
// network table and an Internet-sized table: lookup rates, memory, update rates.
//
// Every implementation is checked against a reference LPM before it is timed;
// a disagreement aborts the run with the addresses and the routes involved.
#include <rte_cycles.h>
#include <rte_version.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "perf/bench_util.h"
#include "perf/dpdk_tables.h"
#include "perf/route_sets.h"
#include "perf/update_bench.h"

namespace {

using namespace podfwd;
using namespace podfwd::perf;
using lpm::NextHopId;
using lpm::Route;

// Above this, --quick fills rte_lpm directly instead of calling rte_lpm_add,
// whose per-add scan of the same-depth rules makes the inet table take a minute.
constexpr std::size_t kLpmAddLimitQuick = 200000;

volatile std::uint64_t g_sink;   // lookup results go here, so no lookup is optimised away

// Timed passes, and those during which this thread lost its CPU to another
// process for more than a tenth of the pass: on a shared 2-core machine the
// figures are only worth what the machine's quiet was, so the run says so.
struct PassStats {
    unsigned passes = 0;
    unsigned preempted = 0;
} g_pass_stats;

double thread_cpu_seconds() noexcept {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// ---- the lookup paths under test: one() single lookup, bulk() up to kBurst ----
// bulk() takes a run-time count, as a dataplane passes its rx burst size.

struct OursLookup {
    const lpm::TableView* view;
    using Out = NextHopId;
    NextHopId one(Ipv4Addr a) const noexcept { return view->lookup(a); }
    void bulk(const Ipv4Addr* a, Out* out, std::size_t n) const noexcept { view->lookup_bulk(a, out, n); }
    static NextHopId value(Out v) noexcept { return v; }
};

// The reader's lookup on a plain read-only mapping of the segment, without
// the guard windows (lpm/guard_window.h) that make every index a corrupt
// segment can name land in mapped memory: the same code as TableView's,
// timed beside it, so the rows differ by what that protection costs.
class UnguardedLookup {
public:
    explicit UnguardedLookup(const std::string& segment_name) {
        const int fd = ::shm_open(("/" + segment_name).c_str(), O_RDONLY | O_CLOEXEC, 0);
        struct stat st{};
        if (fd < 0 || ::fstat(fd, &st) != 0)
            throw std::runtime_error("cannot open /dev/shm/" + segment_name);
        size_ = static_cast<std::size_t>(st.st_size);
        base_ = ::mmap(nullptr, size_, PROT_READ, MAP_SHARED, fd, 0);
        ::close(fd);
        if (base_ == MAP_FAILED)
            throw std::runtime_error("cannot map /dev/shm/" + segment_name);
        ::madvise(base_, size_, MADV_HUGEPAGE);   // as lpm's own mappings
        const auto* bytes = static_cast<const char*>(base_);
        const auto& h = *reinterpret_cast<const lpm::SegmentHeader*>(bytes);
        trie_ = lpm::TrieView{reinterpret_cast<const std::atomic<std::uint64_t>*>(bytes + h.dir_offset),
                              reinterpret_cast<const NextHopId*>(bytes + h.leaves_offset),
                              reinterpret_cast<const NextHopId*>(bytes + h.groups_offset),
                              reinterpret_cast<const std::atomic<std::uint64_t>*>(bytes + h.window_offset),
                              h.capacity.dense_window_addr, lpm::window_span(h.capacity.dense_window_len)};
    }
    ~UnguardedLookup() { ::munmap(base_, size_); }
    UnguardedLookup(const UnguardedLookup&) = delete;
    UnguardedLookup& operator=(const UnguardedLookup&) = delete;

    using Out = NextHopId;
    NextHopId one(Ipv4Addr a) const noexcept { return trie_.lookup(a); }
    void bulk(const Ipv4Addr* a, Out* out, std::size_t n) const noexcept { trie_.lookup_bulk(a, out, n); }
    static NextHopId value(Out v) noexcept { return v; }

private:
    void* base_ = nullptr;
    std::size_t size_ = 0;
    lpm::TrieView trie_;
};

struct WriterLookup {   // what TableWriter says readers will see: checked, not timed
    const lpm::TableWriter* writer;
    NextHopId one(Ipv4Addr a) const noexcept { return writer->lookup(a); }
};

struct LpmLookup {
    const rte_lpm* lpm;
    using Out = std::uint32_t;
    NextHopId one(Ipv4Addr a) const noexcept {
        std::uint32_t nh = 0;
        return rte_lpm_lookup(lpm, a, &nh) == 0 ? nh : lpm::kNoRoute;
    }
    void bulk(const Ipv4Addr* a, Out* out, std::size_t n) const noexcept {
        rte_lpm_lookup_bulk(lpm, a, out, static_cast<unsigned>(n));
    }
    // rte_lpm_lookup_bulk returns raw entries: a next hop only with the valid flag.
    static NextHopId value(Out v) noexcept {
        return (v & RTE_LPM_LOOKUP_SUCCESS) != 0 ? v & 0x00ffffffu : lpm::kNoRoute;
    }
};

// rte_lpm_lookupx4: the SSE path l3fwd uses, four addresses per call.
struct LpmX4Lookup {
    const rte_lpm* lpm;
    using Out = std::uint32_t;
    void bulk(const Ipv4Addr* a, Out* out, std::size_t n) const noexcept {
        std::size_t i = 0;
        for (; i + 4 <= n; i += 4)
            rte_lpm_lookupx4(lpm, _mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i)), out + i,
                             lpm::kNoRoute);
        for (; i < n; ++i) {
            std::uint32_t nh = 0;
            out[i] = rte_lpm_lookup(lpm, a[i], &nh) == 0 ? nh : lpm::kNoRoute;
        }
    }
    static NextHopId value(Out v) noexcept { return v; }
};

// rte_fib has no single-address lookup: one() is a bulk call with n = 1.
struct FibLookup {
    rte_fib* fib;
    using Out = std::uint64_t;
    NextHopId one(Ipv4Addr a) const noexcept {
        std::uint32_t ip = a;
        std::uint64_t nh = 0;
        rte_fib_lookup_bulk(fib, &ip, &nh, 1);
        return static_cast<NextHopId>(nh);
    }
    void bulk(const Ipv4Addr* a, Out* out, std::size_t n) const noexcept {
        // The prototype lacks const; rte_fib only reads the addresses.
        rte_fib_lookup_bulk(fib, const_cast<Ipv4Addr*>(a), out, static_cast<int>(n));
    }
    static NextHopId value(Out v) noexcept { return static_cast<NextHopId>(v); }
};

// ---- timing ----

struct Rate {
    double mlookups = -1;   // < 0: this path does not exist
    double cycles = 0;      // TSC cycles per lookup
};
enum Column { kDrawnSingle, kDrawnBulk, kUniformSingle, kUniformBulk, kColumns };
struct Row {
    std::string name;
    std::array<Rate, kColumns> rates;
    bool baseline = false;   // a DPDK row: counts towards "best rte"
    bool reference = false;  // ours without the guard windows: in no ratio
};

// Column by column, the better of two measurements of one path.
Row best_row(Row a, const Row& b) {
    for (std::size_t c = 0; c < a.rates.size(); ++c)
        if (b.rates[c].mlookups > a.rates[c].mlookups)
            a.rates[c] = b.rates[c];
    return a;
}

template <class Pass, class Quiesce>
Rate best_of(std::size_t n, unsigned repeats, Pass&& pass, Quiesce&& quiesce) {
    double best = std::numeric_limits<double>::infinity();
    std::uint64_t best_cycles = 0;
    for (unsigned r = 0; r < repeats; ++r) {
        const double cpu_start = thread_cpu_seconds();
        const Stopwatch watch;
        const std::uint64_t start = rte_rdtsc();
        const std::uint64_t sum = pass();
        const std::uint64_t cycles = rte_rdtsc() - start;
        const double seconds = watch.seconds();
        const double cpu = thread_cpu_seconds() - cpu_start;
        g_sink = g_sink + sum;
        ++g_pass_stats.passes;
        if (cpu < 0.9 * seconds)
            ++g_pass_stats.preempted;
        // A dataplane reports quiescence once per poll loop, not per lookup:
        // its cost is outside the timed pass.
        quiesce();
        if (seconds < best) {
            best = seconds;
            best_cycles = cycles;
        }
    }
    return Rate{static_cast<double>(n) / best / 1e6, static_cast<double>(best_cycles) / static_cast<double>(n)};
}

template <class Impl>
std::uint64_t single_pass(const Impl& impl, const std::vector<Ipv4Addr>& addrs) {
    std::uint64_t sum = 0;
    for (const Ipv4Addr a : addrs)
        sum += impl.one(a);
    return sum;
}

template <class Impl>
std::uint64_t bulk_pass(const Impl& impl, const std::vector<Ipv4Addr>& addrs) {
    std::uint64_t sum = 0;
    typename Impl::Out out[kBurst];
    for (std::size_t i = 0; i < addrs.size(); i += kBurst) {
        const std::size_t n = std::min(kBurst, addrs.size() - i);
        impl.bulk(&addrs[i], out, n);
        for (std::size_t k = 0; k < n; ++k)
            sum += Impl::value(out[k]);
    }
    return sum;
}

// Everything a table's lookups are measured with.
struct Workload {
    const RouteSet* set;
    std::vector<Route> routes;   // next-hop ids as installed in every implementation
    std::vector<Ipv4Addr> drawn;
    std::vector<Ipv4Addr> uniform;
    ReferenceLpm ref;
    Sample sample;
    const Options* opt;
};

template <class Impl, class Quiesce>
Row measure(std::string name, const Impl& impl, const Workload& w, bool baseline, Quiesce&& quiesce) {
    Row row{std::move(name), {}, baseline};
    const std::vector<Ipv4Addr>* arrays[] = {&w.drawn, &w.uniform};
    for (int which = 0; which < 2; ++which) {
        const auto& addrs = *arrays[which];
        if constexpr (requires { impl.one(Ipv4Addr{}); })
            row.rates[which == 0 ? kDrawnSingle : kUniformSingle] =
                best_of(addrs.size(), w.opt->repeats, [&] { return single_pass(impl, addrs); }, quiesce);
        row.rates[which == 0 ? kDrawnBulk : kUniformBulk] =
            best_of(addrs.size(), w.opt->repeats, [&] { return bulk_pass(impl, addrs); }, quiesce);
    }
    return row;
}

template <class Impl>
Row check_and_measure(const std::string& name, const Impl& impl, const Workload& w) {
    cross_check(w.set->name + " table: " + name, impl, w.sample, w.ref);
    return measure(name, impl, w, true, [] {});
}

// ---- one table, three implementations ----

struct TableResult {
    std::string name;
    std::vector<Row> rows;
    std::size_t ours_resident = 0;
    std::size_t ours_private = 0;
    MappedBytes ours_mapped;
    std::size_t lpm_heap = 0;
    std::size_t lpm_formula = 0;
    std::size_t fib_heap = 0;
    std::size_t fib_formula = 0;
    // ours bulk / best DPDK bulk
    double drawn_ratio() const { return ratio(kDrawnBulk); }
    double uniform_ratio() const { return ratio(kUniformBulk); }
    double lpm_bytes() const { return static_cast<double>(lpm_heap != 0 ? lpm_heap : lpm_formula); }

private:
    double ratio(Column c) const {
        double ours = 0;
        double best_dpdk = 0;
        for (const Row& r : rows) {
            if (r.reference)
                continue;
            double& slot = r.baseline ? best_dpdk : ours;
            slot = std::max(slot, r.rates[c].mlookups);
        }
        return ours / best_dpdk;
    }
};

// A stable per-table stream (std::hash may differ between standard libraries).
std::uint64_t fnv1a(const std::string& text) {
    std::uint64_t h = 0xcbf29ce484222325ULL;
    for (const char c : text)
        h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
    return h;
}

void note(const char* fmt, const std::string& a, double seconds) {
    std::printf(fmt, a.c_str(), seconds);
    std::fflush(stdout);
}

void bench_ours(Workload& w, TableResult& result) {
    OurTable ours = open_ours(w.set->name, w.set->nexthops, w.set->routes.size());
    w.routes = with_ids(w.set->routes, ours.ids);
    const Stopwatch watch;
    for (const Route& r : w.routes)
        if (auto s = ours.writer.route_add(r.prefix, r.nexthop); !s)
            must(s, "route_add " + r.prefix.str());
    must(ours.writer.commit(), "commit");
    note("  %-9s built in %.2f s (route_add each, one commit)\n", "ours", watch.seconds());

    w.ref = ReferenceLpm(w.routes);
    Rng rng(w.opt->seed ^ fnv1a(w.set->name));
    w.drawn = drawn_destinations(w.routes, w.opt->addresses, rng);
    w.uniform = uniform_destinations(w.opt->addresses, rng);
    w.sample = make_sample(w.drawn, w.uniform, w.opt->sample, w.ref);

    const auto view = must(lpm::TableView::open(ours.name.str()), "TableView::open");
    auto slot = must(view.register_reader(), "register_reader");
    const OursLookup impl{&view};
    cross_check(w.set->name + " table: ours (TableView)", impl, w.sample, w.ref);
    cross_check(w.set->name + " table: ours (TableWriter::lookup)", WriterLookup{&ours.writer}, w.sample, w.ref);
    const UnguardedLookup unguarded(ours.name.str());
    cross_check(w.set->name + " table: ours unguarded", unguarded, w.sample, w.ref);
    // Alternated, best of every round: drift of the shared machine between
    // the two rows would otherwise read as the cost of the guard windows.
    constexpr int kAlternations = 4;
    const auto quiesce = [&slot] { slot.quiescent(); };
    // Each row goes first in half of the rounds: the second of a pair runs
    // on caches and a CPU frequency the first warmed.
    Row checked = measure("ours", impl, w, false, quiesce);
    Row before = measure("ours unguarded", unguarded, w, false, quiesce);
    for (int round = 1; round < kAlternations; ++round) {
        if (round % 2 == 1)
            before = best_row(before, measure("ours unguarded", unguarded, w, false, quiesce));
        checked = best_row(checked, measure("ours", impl, w, false, quiesce));
        if (round % 2 == 0)
            before = best_row(before, measure("ours unguarded", unguarded, w, false, quiesce));
    }
    before.reference = true;
    result.rows.push_back(checked);
    result.rows.push_back(before);
    result.ours_resident = ours.writer.resident_bytes();
    result.ours_private = ours.writer.private_bytes();
    result.ours_mapped = mapped_bytes("/" + ours.name.str());
}

void bench_lpm(const Workload& w, TableResult& result) {
    const DirSizing sizing = sizing_for(w.routes);
    CreatedLpm lpm = lpm_create(sizing);
    result.lpm_heap = lpm.heap_bytes;
    result.lpm_formula = lpm.formula_bytes;
    const Stopwatch watch;
    if (w.opt->quick && w.routes.size() > kLpmAddLimitQuick) {
        lpm_fill_direct(lpm.table.get(), w.routes, sizing.tbl8_groups);
        note("  %-9s built in %.2f s (--quick: tbl24/tbl8 written directly, as rte_lpm_add would)\n",
             "rte_lpm", watch.seconds());
    } else {
        for (const Route& r : w.routes)
            if (const int rc = lpm_add(lpm.table.get(), r); rc != 0)
                throw std::runtime_error("rte_lpm_add " + r.prefix.str() + ": " + std::to_string(rc));
        note("  %-9s built in %.2f s (rte_lpm_add each)\n", "rte_lpm", watch.seconds());
    }
    result.rows.push_back(check_and_measure("rte_lpm", LpmLookup{lpm.table.get()}, w));
    result.rows.push_back(check_and_measure("rte_lpm x4", LpmX4Lookup{lpm.table.get()}, w));
}

void bench_fib(const Workload& w, TableResult& result) {
    CreatedFib fib = fib_create(sizing_for(w.routes));
    result.fib_heap = fib.heap_bytes;
    result.fib_formula = fib.formula_bytes;
    const Stopwatch watch;
    for (const Route& r : w.routes)
        if (const int rc = rte_fib_add(fib.table.get(), r.prefix.addr, r.prefix.len, r.nexthop); rc != 0)
            throw std::runtime_error("rte_fib_add " + r.prefix.str() + ": " + std::to_string(rc));
    note("  %-9s built in %.2f s (rte_fib_add each)\n", "rte_fib", watch.seconds());
    if (rte_fib_select_lookup(fib.table.get(), RTE_FIB_LOOKUP_DIR24_8_SCALAR_MACRO) != 0)
        throw std::runtime_error("rte_fib_select_lookup(scalar) failed");
    result.rows.push_back(check_and_measure("rte_fib", FibLookup{fib.table.get()}, w));
    if (rte_fib_select_lookup(fib.table.get(), RTE_FIB_LOOKUP_DIR24_8_VECTOR_AVX512) == 0)
        result.rows.push_back(check_and_measure("rte_fib avx512", FibLookup{fib.table.get()}, w));
    else
        std::printf("  rte_fib avx512 lookup not available on this CPU/build\n");
}

void print_rows(const TableResult& r) {
    std::printf("\n  lookups: Mlookups/s and TSC cycles per lookup, best of the passes\n");
    std::printf("  %-16s  %-27s  %s\n", "", "---- destinations in prefixes", "------- uniform random IPv4");
    std::printf("  %-16s %13s %13s  %13s %13s\n", "", "single", "bulk 32", "single", "bulk 32");
    std::printf("  %-16s", "");
    for (int c = 0; c < kColumns; ++c)
        std::printf("%s %7s %5s", c == kUniformSingle ? " " : "", "Ml/s", "cyc");
    std::printf("\n");
    for (const Row& row : r.rows) {
        std::printf("  %-16s", row.name.c_str());
        for (int c = 0; c < kColumns; ++c) {
            const Rate& rate = row.rates[static_cast<std::size_t>(c)];
            std::printf("%s", c == kUniformSingle ? " " : "");
            if (rate.mlookups < 0)
                std::printf(" %7s %5s", "-", "");
            else
                std::printf(" %7.1f %5.1f", rate.mlookups, rate.cycles);
        }
        std::printf("\n");
    }
    std::printf("  (ours: TableView::lookup / lookup_bulk; rte_lpm: rte_lpm_lookup / rte_lpm_lookup_bulk;\n"
                "   rte_lpm x4: rte_lpm_lookupx4, l3fwd's SSE path; rte_fib: rte_fib_lookup_bulk, single = n 1)\n");
    std::printf("  ours bulk / best DPDK bulk: %.3f (destinations in prefixes), %.3f (uniform)\n",
                r.drawn_ratio(), r.uniform_ratio());
    // Issue 17: bounding every index must cost under 3% of the unguarded rate.
    const Row* checked = nullptr;
    const Row* unguarded = nullptr;
    for (const Row& row : r.rows) {
        if (row.reference)
            unguarded = &row;
        else if (!row.baseline)
            checked = &row;
    }
    if (checked != nullptr && unguarded != nullptr) {
        std::printf("  bounds-check cost (ours vs ours unguarded, rate lost):");
        for (std::size_t c = 0; c < kColumns; ++c)
            std::printf(" %+.1f%%", 100.0 * (1.0 - checked->rates[c].mlookups / unguarded->rates[c].mlookups));
        std::printf("  (single, bulk; uniform single, bulk)\n");
    }
}

void print_memory(const TableResult& r) {
    std::printf("\n  memory:\n");
    std::printf("  %-9s %10s  segment resident (mincore), shared with readers\n", "ours",
                mib(r.ours_resident).c_str());
    std::printf("  %-9s %10s  writer's private index (estimate; not in memory_ratio)\n", "",
                mib(r.ours_private).c_str());
    std::printf("  %-9s %10s  of the Rss (%s) of its largest mapping here is on 2 MiB pages\n", "",
                mib(r.ours_mapped.huge).c_str(), mib(r.ours_mapped.rss).c_str());
    std::printf("  %-9s %10s  DPDK heap growth at rte_lpm_create (formula tbl24 + tbl8 + rules: %s)\n",
                "rte_lpm", mib(r.lpm_heap).c_str(), mib(r.lpm_formula).c_str());
    std::printf("  %-9s %10s  DPDK heap growth at rte_fib_create (of which tbl24 + tbl8: %s; the rest is\n"
                "  %-9s %10s  the RIB rte_fib keeps to update from)\n",
                "rte_fib", mib(r.fib_heap).c_str(), mib(r.fib_formula).c_str(), "", "");
}

TableResult bench_table(const RouteSet& set, const Options& opt) {
    std::printf("\n== %s table: %s routes (%s), %s next hops\n", set.name.c_str(),
                with_commas(set.routes.size()).c_str(), length_summary(set.routes).c_str(),
                with_commas(set.nexthops).c_str());
    Workload w{&set, {}, {}, {}, {}, {}, &opt};
    TableResult result;
    result.name = set.name;
    bench_ours(w, result);   // first: it assigns the next-hop ids
    // One DPDK table at a time: rte_fib's inet table alone takes ~470 MB.
    bench_lpm(w, result);
    bench_fib(w, result);
    std::printf("  cross-check: %s addresses (half in prefixes, half uniform): ours, rte_lpm and rte_fib "
                "all agree with a reference LPM\n",
                with_commas(w.sample.addrs.size()).c_str());
    print_rows(result);
    print_memory(result);
    return result;
}

// ---- set-up and report ----

std::string shmem_thp() {
    std::ifstream in("/sys/kernel/mm/transparent_hugepage/shmem_enabled");
    std::string line;
    std::getline(in, line);
    const auto open = line.find('[');
    const auto close = line.find(']');
    return open != std::string::npos && close > open ? line.substr(open + 1, close - open - 1) : "unknown";
}

void print_banner(const Options& opt, const EalBacking& backing) {
    std::printf("lpm_bench: podfwd::lpm vs %s rte_lpm and rte_fib (DIR24_8, 4-byte next hops)\n", rte_version());
    std::printf("  mode: %s; %s addresses per destination array, best of %u passes; seed %#llx\n",
                opt.quick ? "--quick" : "full", with_commas(opt.addresses).c_str(), opt.repeats,
                static_cast<unsigned long long>(opt.seed));
    std::printf("  DPDK memory: %s\n", backing.description.c_str());
    std::printf("  our segment: /dev/shm (tmpfs; shmem transparent hugepages: %s)\n", shmem_thp().c_str());
    std::printf("  one thread on lcore 0; TSC %.2f GHz\n", static_cast<double>(rte_get_tsc_hz()) / 1e9);
}

std::string loadavg() {
    std::ifstream in("/proc/loadavg");
    std::string one, five, fifteen;
    in >> one >> five >> fifteen;
    return one + " " + five + " " + fifteen;
}

int run(const Options& opt, const EalBacking& backing) {
    const std::string load_at_start = loadavg();
    print_banner(opt, backing);
    const RouteSet pod = make_pod_set(opt.seed);
    const TableResult pod_result = bench_table(pod, opt);
    const TableResult inet_result = bench_table(make_inet_set(opt.seed), opt);
    const UpdateReport updates = bench_updates(pod, opt);

    print_updates(updates);
    std::printf("\nsummary\n");
    std::printf("  timed lookup passes: %u, of which %u lost the CPU to another process for >10%% of the pass%s\n",
                g_pass_stats.passes, g_pass_stats.preempted,
                g_pass_stats.preempted != 0 ? " (figures disturbed: rerun on an idle machine)" : "");
    std::printf("  load average at start: %s\n", load_at_start.c_str());
    std::printf("  pod_uniform_lookup_ratio=%.3f\n", pod_result.uniform_ratio());
    std::printf("  inet_uniform_lookup_ratio=%.3f\n", inet_result.uniform_ratio());
    std::printf("  (lookup ratios: ours bulk / best of rte_lpm bulk, rte_lpm x4, rte_fib bulk (scalar, avx512))\n");
    std::printf("  (memory_ratio: our segment's resident bytes / rte_lpm's heap bytes, inet table)\n");
    std::printf("pod_lookup_ratio=%.3f\n", pod_result.drawn_ratio());
    std::printf("inet_lookup_ratio=%.3f\n", inet_result.drawn_ratio());
    std::printf("memory_ratio=%.3f\n", static_cast<double>(inet_result.ours_resident) / inet_result.lpm_bytes());
    std::printf("insert_long_per_s=%.0f\n", updates.ours_single.insert_long);
    std::printf("insert_short_per_s=%.0f\n", updates.ours_single.insert_short);
    std::printf("delete_per_s=%.0f\n", updates.ours_single.del);
    return 0;
}

void usage(const char* argv0) {
    std::printf(
        "usage: %s [--quick] [--no-huge] [--seed=N]\n"
        "  Compares podfwd's LPM table with DPDK rte_lpm and rte_fib: lookups on a pod\n"
        "  table (155k routes) and an Internet-like table (1M routes), memory, update rates.\n"
        "  --quick    under a minute: smaller address arrays, fewer passes, full-size tables\n"
        "  --no-huge  DPDK tables on ordinary pages (default: 2 MiB hugepages if enough are free)\n"
        "  --seed=N   route and address generator seed\n",
        argv0);
}

// Returns the options, or an exit status when there is nothing to run.
std::optional<Options> parse_args(int argc, char** argv, int& status) {
    Options opt;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--quick") {
            opt.quick = true;
        } else if (arg == "--no-huge") {
            opt.no_huge = true;
        } else if (arg.rfind("--seed=", 0) == 0) {
            char* end = nullptr;
            opt.seed = std::strtoull(arg.c_str() + 7, &end, 0);
            if (end == arg.c_str() + 7 || *end != '\0') {
                std::fprintf(stderr, "lpm_bench: bad seed '%s'\n", arg.c_str() + 7);
                status = 2;
                return std::nullopt;
            }
        } else {
            const bool help = arg == "--help" || arg == "-h";
            if (!help)
                std::fprintf(stderr, "lpm_bench: unknown option '%s'\n", arg.c_str());
            usage(argv[0]);
            status = help ? 0 : 2;
            return std::nullopt;
        }
    }
    if (opt.quick) {
        opt.addresses = 1u << 20;
        opt.repeats = 2;
    }
    return opt;
}

}  // namespace

int main(int argc, char** argv) {
    int status = 0;
    const auto opt = parse_args(argc, argv, status);
    if (!opt)
        return status;
    bool hugepages = false;
    try {
        const EalBacking backing = eal_start(argc, argv, opt->no_huge);
        hugepages = backing.hugepages;
        struct EalStop {
            ~EalStop() { eal_stop(); }
        } stop;
        return run(*opt, backing);
    } catch (const DpdkOutOfMemory& e) {
        // Tables and segments are gone by now (unwound); start over without hugepages.
        if (hugepages)
            reexec_without_hugepages(argc, argv, std::string("out of hugepage memory: ") + e.what());
        std::fprintf(stderr, "lpm_bench: %s\n", e.what());
    } catch (const std::exception& e) {
        std::fflush(stdout);
        std::fprintf(stderr, "lpm_bench: %s\n", e.what());
    }
    return 1;
}
