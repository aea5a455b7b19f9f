// podfwd-table-demo: the route table end to end, across processes.
// A writer installs a node's pod routes; a reader process looks pod IPs up
// while the writer changes a next hop, then the writer "crashes" and a new
// one re-attaches and reconciles. Used by scripts/demo.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "lpm/reader.h"
#include "lpm/writer.h"

using namespace podfwd;
using namespace podfwd::lpm;

namespace {

template <class T>
T must(Result<T> r, const char* what) {
    if (!r) {
        std::fprintf(stderr, "demo: %s: %s\n", what, r.error().message.c_str());
        std::exit(1);
    }
    return std::move(r).value();
}
void must(Status s, const char* what) {
    if (!s) {
        std::fprintf(stderr, "demo: %s: %s\n", what, s.error().message.c_str());
        std::exit(1);
    }
}

NextHop node(const char* ip, ForwardMode mode) {
    NextHop nh;
    nh.node_ip = *parse_ipv4(ip);
    nh.mode = mode;
    nh.vni = mode == ForwardMode::kVxlan ? 1 : 0;
    return nh;
}

void show(const TableView& view, const char* ip) {
    const NextHopId id = view.lookup(*parse_ipv4(ip));
    const NextHop* nh = view.nexthop(id);
    if (nh == nullptr)
        std::printf("  %-15s -> no route\n", ip);
    else
        std::printf("  %-15s -> next hop %u: %s via %s%s\n", ip, id, mode_name(nh->mode),
                    format_ipv4(nh->node_ip).c_str(), nh->mac_resolved() ? " (MAC resolved)" : "");
}

void reader_process(const std::string& name, int ready_fd) {
    auto view = must(TableView::open(name), "open table");
    auto slot = must(view.register_reader(), "register reader");
    std::printf("reader pid %d: looking up pod IPs\n", ::getpid());
    for (const char* ip : {"10.244.1.17", "10.244.2.5", "10.244.3.9", "10.244.0.4", "8.8.8.8"})
        show(view, ip);
    slot.quiescent();
    char byte = 1;
    (void)!::write(ready_fd, &byte, 1);
    // Wait for the writer to resolve a MAC, then look again: same id, new record.
    const auto generation = view.stats().generation;
    for (int i = 0; i < 2000 && view.stats().generation == generation; ++i) {
        slot.quiescent();
        ::usleep(1000);
    }
    std::printf("reader: after the writer's update\n");
    show(view, "10.244.1.17");
}

}  // namespace

int main(int argc, char** argv) {
    const std::string name = argc > 1 ? argv[1] : "podfwd-demo." + std::to_string(::getpid());
    (void)TableWriter::unlink(name);

    std::vector<Route> desired;
    {
        auto writer = must(TableWriter::open(name), "create table");
        std::printf("writer pid %d: created /dev/shm/%s\n", ::getpid(), name.c_str());
        const auto local = must(writer.nexthop_add(node("10.168.0.2", ForwardMode::kLocal)), "next hop");
        const auto node3 = must(writer.nexthop_add(node("10.168.0.3", ForwardMode::kHostGw)), "next hop");
        const auto node9 = must(writer.nexthop_add(node("192.168.5.9", ForwardMode::kIpip)), "next hop");
        desired = {{*Prefix4::parse("10.244.0.0/24"), local},
                   {*Prefix4::parse("10.244.1.0/24"), node3},
                   {*Prefix4::parse("10.244.2.0/24"), node9},
                   {*Prefix4::parse("10.244.2.5/32"), node3}};
        for (const Route& r : desired)
            must(writer.route_add(r.prefix, r.nexthop), "route add");
        if (auto bad = Prefix4::parse("10.244.3.1/24"); !bad)
            std::printf("writer: refused 10.244.3.1/24: %s\n", bad.error().message.c_str());
        must(writer.commit(), "commit");
        std::printf("writer: %zu routes committed\n", writer.route_count());

        int pipefd[2];
        must(::pipe(pipefd) == 0 ? ok() : Status(Errc::kSystem, "pipe"), "pipe");
        std::fflush(stdout);   // or the child inherits and repeats the buffered lines
        const pid_t child = ::fork();
        if (child == 0) {
            reader_process(name, pipefd[1]);
            std::fflush(stdout);
            std::_Exit(0);
        }
        char byte;
        (void)!::read(pipefd[0], &byte, 1);
        NextHop resolved = *writer.nexthop(node3);
        resolved.mac = {0x02, 0, 0, 0, 0, 3};
        resolved.flags |= NextHop::kMacResolved;
        must(writer.nexthop_update(node3, resolved), "next hop update");
        must(writer.commit(), "commit");
        std::fflush(stdout);
        int status = 0;
        ::waitpid(child, &status, 0);
        std::printf("writer: exits without cleaning up, as a crash would\n");
    }

    auto writer = must(TableWriter::open(name), "re-attach");
    std::printf("new writer: re-attached (recovered=%s), %zu routes, %zu next hops\n",
                writer.recovered() ? "yes" : "no", writer.route_count(), writer.nexthops().size());
    desired.pop_back();   // the desired set no longer has 10.244.2.5/32
    must(writer.reconcile(desired), "reconcile");
    const TableStats stats = writer.stats();
    std::printf("new writer: reconciled to %u routes (epoch %llu, %zu KiB of the segment resident)\n", stats.routes,
                static_cast<unsigned long long>(stats.epoch), writer.resident_bytes() / 1024);
    auto view = must(TableView::open(name), "open table");
    show(view, "10.244.2.5");
    must(TableWriter::unlink(name), "unlink");
    return 0;
}
