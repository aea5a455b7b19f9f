// libFuzzer target for the fast path: any bytes, received on either port,
// against a table holding every forwarding mode. Beyond the sanitizers'
// checks, it asserts what must hold for every packet the fast path lets
// through or punts: the view stays inside its buffer and keeps room for an
// Ethernet and an IPv4 header (an Ethernet header for ARP), and every drop
// was counted exactly once (punts as the fallback counts them).
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "dataplane/fastpath.h"
#include "lpm/writer.h"

using namespace podfwd;
using namespace podfwd::lpm;

namespace {

constexpr std::uint32_t kHeadroom = 128;
constexpr std::uint32_t kBufferSize = 4096;

struct Fixture {
    std::string name = "podfwd-fuzz." + std::to_string(::getpid());
    TableWriter writer;
    TableView view;
    ReaderSlot slot;
    dp::Forwarder forwarder;

    static TableWriter make_writer(const std::string& name) {
        (void)TableWriter::unlink(name);
        TableWriter::Options options;
        options.capacity.max_routes = 1024;
        options.capacity.max_nexthops = 64;
        options.capacity.max_groups = 64;
        auto w = TableWriter::open(name, options);
        if (!w) {
            std::fprintf(stderr, "fuzz: %s\n", w.error().message.c_str());
            std::abort();
        }
        auto writer = std::move(w).value();
        const auto add = [&](const char* node, ForwardMode mode, bool resolved, const char* prefix) {
            NextHop nh;
            nh.node_ip = *parse_ipv4(node);
            nh.mode = mode;
            nh.vni = 7;
            nh.mac = {2, 0, 0, 0, 0, 3};
            nh.vtep_mac = {2, 0, 0, 0, 0, 4};
            nh.flags = resolved ? NextHop::kMacResolved : 0;
            const NextHopId id = *writer.nexthop_add(nh);
            (void)writer.route_add(*Prefix4::parse(prefix), id);
        };
        add("10.168.0.3", ForwardMode::kHostGw, true, "10.244.1.0/24");
        add("192.168.5.9", ForwardMode::kIpip, true, "10.244.2.0/24");
        add("192.168.5.10", ForwardMode::kVxlan, true, "10.244.3.0/24");
        add("10.168.0.2", ForwardMode::kLocal, true, "10.244.0.0/24");
        add("10.168.0.4", ForwardMode::kHostGw, false, "10.244.4.0/24");
        add("10.168.0.5", ForwardMode::kDrop, true, "10.244.5.0/24");
        add("10.168.0.6", ForwardMode::kIpip, true, "10.244.6.128/25");
        (void)writer.commit();
        return writer;
    }
    static dp::NodeConfig node() {
        dp::NodeConfig c;
        c.node_ip = *parse_ipv4("10.168.0.2");
        c.uplink_mac = {2, 0, 0, 0, 0, 2};
        c.vtep_mac = {2, 0, 0, 0, 0, 12};
        c.host_mac = {2, 0, 0, 0, 0, 1};
        c.vni = 1;
        return c;
    }

    Fixture()
        : writer(make_writer(name)), view(*TableView::open(name)), slot(*view.register_reader()),
          forwarder(node(), view) {
        std::atexit([] { (void)TableWriter::unlink("podfwd-fuzz." + std::to_string(::getpid())); });
    }
};

std::uint64_t drops_counted(const dp::LcoreCounters& c) {
    std::uint64_t sum = 0;
    for (auto v : c.drops)
        sum += v;
    return sum;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static Fixture fixture;
    if (size < 1 || size > kBufferSize - kHeadroom + 1)
        return 0;
    // Byte 0 picks the receiving port and the burst size (1 or 3 copies).
    const auto from = (data[0] & 1) ? dp::PortRole::kHost : dp::PortRole::kUplink;
    const unsigned copies = (data[0] & 2) ? 3 : 1;
    static std::array<std::array<std::uint8_t, kBufferSize>, 3> buffers;
    dp::PacketView pkts[3];
    for (unsigned i = 0; i < copies; ++i) {
        std::memcpy(buffers[i].data() + kHeadroom, data + 1, size - 1);
        pkts[i] = dp::PacketView{buffers[i].data() + kHeadroom, static_cast<std::uint32_t>(size - 1), kHeadroom};
    }
    dp::Verdict verdicts[3];
    dp::LcoreCounters counters;
    fixture.forwarder.process(from, pkts, verdicts, copies, counters);
    fixture.slot.quiescent();

    unsigned dropped = 0;
    for (unsigned i = 0; i < copies; ++i) {
        if (verdicts[i] == dp::Verdict::kDrop) {
            ++dropped;
            continue;
        }
        // A punted packet goes on to the exception path: its view must hold
        // as well, with an Ethernet header (ARP) or Ethernet and IPv4.
        const std::uint32_t min_len = verdicts[i] == dp::Verdict::kPuntArp ? 14 : 34;
        const std::uint8_t* begin = buffers[i].data();
        if (pkts[i].data < begin || pkts[i].data + pkts[i].len > begin + kBufferSize ||
            pkts[i].data - begin != static_cast<std::ptrdiff_t>(pkts[i].headroom) || pkts[i].len < min_len)
            std::abort();
        if (dp::is_punt(verdicts[i])) {   // dropped until the exception path takes punts
            dp::count_unhandled_punt(verdicts[i], counters);
            ++dropped;
        }
    }
    if (drops_counted(counters) != dropped)
        std::abort();   // a drop not counted, or counted twice
    return 0;
}
