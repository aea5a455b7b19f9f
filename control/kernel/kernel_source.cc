#include "control/kernel/kernel_source.h"

#include <linux/if.h>
#include <linux/rtnetlink.h>
#include <netlink/errno.h>
#include <netlink/msg.h>
#include <netlink/route/link.h>
#include <sys/socket.h>

#include <charconv>
#include <cstdlib>
#include <map>
#include <span>

#include "control/kernel/mirror.h"
#include "control/kernel/netlink_objects.h"

namespace podfwd::control {

using namespace kernel_detail;

namespace {

// Big enough for tens of thousands of route notifications, so a BGP
// full-table convergence does not overrun it while the daemon is busy.
constexpr int kReceiveBufferBytes = 4 << 20;
// Bounds one drain() so a route storm cannot starve the daemon's event loop;
// what is left keeps fd() readable.
constexpr unsigned kMaxDatagramsPerDrain = 4096;
// NLM_F_DUMP_INTR: the table changed under the dump; a retry is consistent.
constexpr int kDumpAttempts = 5;

struct Name {
    std::string_view name;
    std::uint32_t value;
};
constexpr Name kProtocolNames[] = {{"kernel", RTPROT_KERNEL}, {"boot", RTPROT_BOOT}, {"static", RTPROT_STATIC},
                                   {"bird", RTPROT_BIRD}};
constexpr Name kTableNames[] = {{"default", RT_TABLE_DEFAULT}, {"main", RT_TABLE_MAIN}, {"local", RT_TABLE_LOCAL}};

std::optional<std::uint64_t> name_or_number(std::string_view text, std::span<const Name> names) {
    for (const Name& n : names)
        if (text == n.name)
            return n.value;
    std::uint64_t value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc{} || end != text.data() + text.size())
        return std::nullopt;
    return value;
}

struct FreeBytes {
    void operator()(unsigned char* bytes) const noexcept { std::free(bytes); }
};

// One nl_recv(): a datagram, or libnl's negative error code.
struct Datagram {
    std::unique_ptr<unsigned char, FreeBytes> bytes;
    int size = 0;   // or the NLE_* error when negative
    bool from_kernel = false;

    bool empty() const noexcept { return size == 0 || size == -NLE_AGAIN; }
    // libnl 3.7 maps errno ENOBUFS (the kernel dropped notifications for this
    // socket) to NLE_NOMEM, as it does ENOMEM (nl_syserr2nlerr); some libnl
    // versions also report their own failed malloc so. A resync is the safe
    // answer to all of them.
    bool overrun() const noexcept { return size == -NLE_NOMEM; }
};

Datagram receive(nl_sock* sock) {
    sockaddr_nl peer{};
    unsigned char* bytes = nullptr;
    Datagram d;
    d.size = nl_recv(sock, &peer, &bytes, nullptr);
    d.bytes.reset(bytes);
    d.from_kernel = peer.nl_pid == 0;
    return d;
}

// Parses one message into a libnl object (rtnl_route_parse, rtnl_neigh_parse)
// and hands it to `use`; false when libnl cannot parse it.
template <class Ptr, class Parse, class Use>
bool parse_then(nlmsghdr* hdr, Parse parse, Use use) {
    typename Ptr::pointer raw = nullptr;
    const int err = parse(hdr, &raw);
    const Ptr object(raw);
    if (err < 0 || !object)
        return false;
    use(*object);
    return true;
}

template <class Alloc>
Result<NlCache> dump_cache(const std::string& what, Alloc alloc) {
    for (int attempt = 1;; ++attempt) {
        auto sock = connect_route_socket();
        if (!sock)
            return std::move(sock).error();
        nl_cache* raw = nullptr;
        const int err = alloc(sock->get(), &raw);
        NlCache cache(raw);
        if (err == -NLE_DUMP_INTR && attempt < kDumpAttempts)
            continue;
        if (err < 0)
            return nl_error(what, err);
        return cache;
    }
}

// What of a link decides whether the kernel flushed routes through it: IPv4
// deletes them without RTM_DELROUTE when a link goes down (and marks next
// hops linkdown on carrier loss, without a message either). MTU, MAC, alias,
// name or promiscuity changes also come as RTM_NEWLINK and leave all of this
// as it was: they cost no dump.
struct LinkState {
    unsigned flags = 0;          // IFF_UP | IFF_LOWER_UP of ifi_flags
    std::uint8_t operstate = 0;  // IFLA_OPERSTATE, IF_OPER_UNKNOWN when absent
    friend bool operator==(const LinkState&, const LinkState&) = default;
};

// The link of a RTM_NEWLINK/RTM_DELLINK, unless it is not about a device of
// its own: AF_BRIDGE messages describe bridge ports (with the raw operstate,
// which differs from the AF_UNSPEC one while the device is down).
std::optional<std::pair<int, LinkState>> link_of(nlmsghdr* hdr) {
    if (hdr->nlmsg_len < NLMSG_LENGTH(sizeof(ifinfomsg)))
        return std::nullopt;
    const auto* ifi = static_cast<const ifinfomsg*>(nlmsg_data(hdr));
    if (ifi->ifi_family != AF_UNSPEC)
        return std::nullopt;
    LinkState state{ifi->ifi_flags & (IFF_UP | IFF_LOWER_UP), IF_OPER_UNKNOWN};
    if (const nlattr* oper = nlmsg_find_attr(hdr, sizeof(ifinfomsg), IFLA_OPERSTATE);
        oper != nullptr && nla_len(oper) >= 1)
        state.operstate = nla_get_u8(oper);
    return std::pair{ifi->ifi_index, state};
}

// Waits until no rtnetlink change is half done. A change sends its
// notification before it finishes (RTM_NEWLINK before the NETDEV_DOWN
// notifiers flush the routes, RTM_DELADDR before the FIB drops the routes
// of the address), all under the RTNL lock. RTM_GETLINK of one device takes
// that lock too (rtnl_getlink is registered without RTNL_FLAG_DOIT_UNLOCKED
// in the 6.x kernels this was written against), so a dump after it sees the
// flush. Best effort: should a kernel answer it without the lock, or the
// request fail, the dump goes ahead anyway and may race the flush.
void wait_for_rtnl() {
    auto sock = connect_route_socket();
    if (!sock)
        return;
    rtnl_link* raw = nullptr;
    constexpr int kLoopback = 1;   // ifindex 1 is lo in every namespace
    if (rtnl_link_get_kernel(sock->get(), kLoopback, nullptr, &raw) >= 0 && raw != nullptr)
        rtnl_link_put(raw);
}

// Past net.core.rmem_max only with SO_RCVBUFFORCE (CAP_NET_ADMIN); without
// it, as much as SO_RCVBUF allows.
Status enlarge_receive_buffer(nl_sock* sock) {
    const int bytes = kReceiveBufferBytes;
    if (setsockopt(nl_socket_get_fd(sock), SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof bytes) == 0)
        return ok();
    if (const int err = nl_socket_set_buffer_size(sock, kReceiveBufferBytes, 0); err < 0)
        return nl_error("set receive buffer", err);
    return ok();
}

}  // namespace

Result<std::uint8_t> parse_route_protocol(std::string_view text) {
    const auto value = name_or_number(text, kProtocolNames);
    if (!value || *value > 255)
        return Error{Errc::kInvalidArgument, "invalid route protocol '" + std::string(text) +
                                                 "': want bird, static, boot, kernel or a number 0..255"};
    return static_cast<std::uint8_t>(*value);
}

Result<std::uint32_t> parse_route_table(std::string_view text) {
    const auto value = name_or_number(text, kTableNames);
    if (!value || *value == 0 || *value > 0xffffffffu)
        return Error{Errc::kInvalidArgument, "invalid route table '" + std::string(text) +
                                                 "': want main, local, default or a number 1..4294967295"};
    return static_cast<std::uint32_t>(*value);
}

class KernelSource::Impl {
public:
    Impl(const KernelOptions& options, NlSock sock) : options_(options), sock_(std::move(sock)) {}

    const KernelOptions& options() const noexcept { return options_; }
    int fd() const noexcept { return nl_socket_get_fd(sock_.get()); }
    std::uint64_t ignored() const noexcept { return retired_ignored_ + mirror_.ignored; }

    Result<KernelSnapshot> dump();
    Result<std::vector<KernelEvent>> drain();

private:
    struct Mirror {
        RouteMirror routes;
        NeighbourMirror neighbours;
        std::uint64_t ignored = 0;
    };

    std::optional<KernelEvent> apply_route(Mirror& mirror, rtnl_route& route, bool deleted) const;
    static std::optional<KernelEvent> apply_neighbour(Mirror& mirror, rtnl_neigh& neigh, bool deleted);
    // What apply_datagram() stopped at: the mirror may be stale.
    enum class Applied {
        kAll,
        kLost,       // a message libnl could not parse: its change is lost
        kFlushed,    // a link or IPv4 address changed: the kernel may have flushed routes silently
    };
    // True when the message shows a link whose up/carrier/oper state differs
    // from what was seen last (or was never seen), or one deleted.
    bool link_changed(nlmsghdr* hdr);
    Applied apply_datagram(const Datagram& datagram, std::vector<KernelEvent>& events);
    // Discards what is queued and answers with one Resynced. `lost`: some
    // notifications never arrived (overrun, unparsable), so the link states
    // are unknown too.
    Result<std::vector<KernelEvent>> resync(bool lost);

    KernelOptions options_;
    NlSock sock_;
    Mirror mirror_;
    std::uint64_t retired_ignored_ = 0;   // counted by mirrors a dump has replaced
    std::map<int, LinkState> links_;      // by ifindex, as last seen in a notification
};

std::optional<KernelEvent> KernelSource::Impl::apply_route(Mirror& mirror, rtnl_route& route, bool deleted) const {
    const RouteVerdict verdict = classify_route(route, options_);
    if (!deleted && verdict.kind == RouteVerdict::Kind::kIgnored)
        ++mirror.ignored;
    if (!verdict.prefix)
        return std::nullopt;
    if (!deleted && verdict.kind == RouteVerdict::Kind::kMirrored)
        return mirror.routes.upsert(*verdict.prefix, verdict.key, verdict.gateway);
    // Deleted, or replaced in place by something that no longer qualifies
    // (another protocol, a device route): gone from the mirror either way.
    return mirror.routes.erase(*verdict.prefix, verdict.key);
}

std::optional<KernelEvent> KernelSource::Impl::apply_neighbour(Mirror& mirror, rtnl_neigh& neigh, bool deleted) {
    const NeighbourVerdict verdict = classify_neighbour(neigh);
    switch (verdict.kind) {
    case NeighbourVerdict::Kind::kOther: return std::nullopt;
    case NeighbourVerdict::Kind::kUp:
        if (!deleted)
            return mirror.neighbours.up(verdict.neighbour);
        break;
    case NeighbourVerdict::Kind::kDown: break;
    }
    return mirror.neighbours.down(verdict.neighbour.ip);
}

Result<KernelSnapshot> KernelSource::Impl::dump() {
    Mirror fresh;
    auto routes = dump_cache("dump routes", [](nl_sock* sock, nl_cache** out) {
        return rtnl_route_alloc_cache(sock, AF_INET, 0, out);
    });
    if (!routes)
        return std::move(routes).error();
    for (nl_object* obj = nl_cache_get_first(routes->get()); obj != nullptr; obj = nl_cache_get_next(obj))
        (void)apply_route(fresh, *reinterpret_cast<rtnl_route*>(obj), false);

    if (options_.neighbours) {
        auto neighbours = dump_cache("dump neighbours", [](nl_sock* sock, nl_cache** out) {
            return rtnl_neigh_alloc_cache(sock, out);
        });
        if (!neighbours)
            return std::move(neighbours).error();
        for (nl_object* obj = nl_cache_get_first(neighbours->get()); obj != nullptr; obj = nl_cache_get_next(obj))
            (void)apply_neighbour(fresh, *reinterpret_cast<rtnl_neigh*>(obj), false);
    }

    KernelSnapshot snapshot{fresh.routes.routes(), fresh.neighbours.neighbours(), fresh.ignored};
    retired_ignored_ += mirror_.ignored;
    mirror_ = std::move(fresh);
    return snapshot;
}

bool KernelSource::Impl::link_changed(nlmsghdr* hdr) {
    const auto link = link_of(hdr);
    if (!link)
        return false;
    const auto [ifindex, state] = *link;
    if (hdr->nlmsg_type == RTM_DELLINK) {
        links_.erase(ifindex);
        return true;
    }
    const auto [it, inserted] = links_.try_emplace(ifindex, state);
    if (inserted)
        return true;
    if (it->second == state)
        return false;
    it->second = state;
    return true;
}

KernelSource::Impl::Applied KernelSource::Impl::apply_datagram(const Datagram& datagram,
                                                               std::vector<KernelEvent>& events) {
    int remaining = datagram.size;
    for (auto* hdr = reinterpret_cast<nlmsghdr*>(datagram.bytes.get()); nlmsg_ok(hdr, remaining);
         hdr = nlmsg_next(hdr, &remaining)) {
        std::optional<KernelEvent> event;
        switch (hdr->nlmsg_type) {
        case RTM_NEWLINK:
        case RTM_DELLINK:
            if (link_changed(hdr))
                return Applied::kFlushed;
            break;
        // Only IPv4 addresses (RTNLGRP_IPV4_IFADDR). Removing one flushes the
        // routes through it (all routes of the link with its last address);
        // adding one flushes nothing, but comes rarely and is cheap to answer.
        case RTM_NEWADDR:
        case RTM_DELADDR: return Applied::kFlushed;
        case RTM_NEWROUTE:
        case RTM_DELROUTE:
            if (!parse_then<RoutePtr>(hdr, rtnl_route_parse, [&](rtnl_route& route) {
                    event = apply_route(mirror_, route, hdr->nlmsg_type == RTM_DELROUTE);
                }))
                return Applied::kLost;
            break;
        case RTM_NEWNEIGH:
        case RTM_DELNEIGH:
            if (options_.neighbours && !parse_then<NeighPtr>(hdr, rtnl_neigh_parse, [&](rtnl_neigh& neigh) {
                    event = apply_neighbour(mirror_, neigh, hdr->nlmsg_type == RTM_DELNEIGH);
                }))
                return Applied::kLost;
            break;
        default: break;
        }
        if (event)
            events.push_back(std::move(*event));
    }
    return Applied::kAll;
}

Result<std::vector<KernelEvent>> KernelSource::Impl::drain() {
    std::vector<KernelEvent> events;
    for (unsigned n = 0; n < kMaxDatagramsPerDrain; ++n) {
        const Datagram datagram = receive(sock_.get());
        if (datagram.empty())
            break;
        if (datagram.overrun())
            return resync(true);
        if (datagram.size < 0)
            return nl_error("receive notifications", datagram.size);
        if (!datagram.from_kernel)
            continue;
        switch (apply_datagram(datagram, events)) {
        case Applied::kAll: break;
        case Applied::kLost: return resync(true);
        case Applied::kFlushed: return resync(false);
        }
    }
    return events;
}

Result<std::vector<KernelEvent>> KernelSource::Impl::resync(bool lost) {
    // The kernel reports the overrun before the messages still queued; those
    // predate the gap, and applied after the snapshot they would bring back
    // state that the lost messages changed (after a link or address change,
    // routes that the kernel has flushed since). The snapshot is newer than
    // all of them. The kernel queues nothing new after an overrun until the
    // queue is empty, so this ends. Link states still count: what the
    // snapshot shows follows from them.
    if (lost)
        links_.clear();
    for (;;) {
        const Datagram datagram = receive(sock_.get());
        if (datagram.empty())
            break;
        if (datagram.overrun()) {
            lost = true;
            links_.clear();
            continue;
        }
        if (datagram.size < 0)
            return nl_error("receive notifications", datagram.size);
        if (lost || !datagram.from_kernel)
            continue;
        int remaining = datagram.size;
        for (auto* hdr = reinterpret_cast<nlmsghdr*>(datagram.bytes.get()); nlmsg_ok(hdr, remaining);
             hdr = nlmsg_next(hdr, &remaining))
            if (hdr->nlmsg_type == RTM_NEWLINK || hdr->nlmsg_type == RTM_DELLINK)
                (void)link_changed(hdr);
    }
    wait_for_rtnl();
    auto snapshot = dump();
    if (!snapshot)
        return std::move(snapshot).error();
    std::vector<KernelEvent> events;
    events.emplace_back(Resynced{std::move(*snapshot)});
    return events;
}

Result<KernelSource> KernelSource::open(const KernelOptions& options) {
    auto sock = connect_route_socket();
    if (!sock)
        return std::move(sock).error();
    nl_sock* raw = sock->get();
    // Notifications carry the sequence numbers of other sockets' requests.
    nl_socket_disable_seq_check(raw);
    // Links and IPv4 addresses: their changes flush routes without a message.
    const int err = options.neighbours
                        ? nl_socket_add_memberships(raw, RTNLGRP_IPV4_ROUTE, RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR,
                                                    RTNLGRP_NEIGH, 0)
                        : nl_socket_add_memberships(raw, RTNLGRP_IPV4_ROUTE, RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR, 0);
    if (err < 0)
        return nl_error("join route notification groups", err);
    if (const int nb = nl_socket_set_nonblocking(raw); nb < 0)
        return nl_error("set non-blocking", nb);
    if (auto status = enlarge_receive_buffer(raw); !status)
        return std::move(status).error();
    return KernelSource(std::make_unique<Impl>(options, std::move(*sock)));
}

KernelSource::KernelSource(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
KernelSource::KernelSource(KernelSource&&) noexcept = default;
KernelSource& KernelSource::operator=(KernelSource&&) noexcept = default;
KernelSource::~KernelSource() = default;

const KernelOptions& KernelSource::options() const noexcept { return impl_->options(); }
int KernelSource::fd() const noexcept { return impl_ ? impl_->fd() : -1; }
Result<KernelSnapshot> KernelSource::dump() { return impl_->dump(); }
Result<std::vector<KernelEvent>> KernelSource::drain() { return impl_->drain(); }
std::uint64_t KernelSource::ignored() const noexcept { return impl_ ? impl_->ignored() : 0; }

}  // namespace podfwd::control
