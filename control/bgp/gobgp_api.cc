#include "control/bgp/gobgp_api.h"

namespace podfwd::control::bgp {

namespace {

apipb::Family ipv4_unicast() {
    apipb::Family f;
    f.set_afi(apipb::Family::AFI_IP);
    f.set_safi(apipb::Family::SAFI_UNICAST);
    return f;
}

bool is_ipv4_unicast(const apipb::Family& f) {
    return f.afi() == apipb::Family::AFI_IP && f.safi() == apipb::Family::SAFI_UNICAST;
}

std::optional<Ipv4Addr> ipv4(const std::string& text) {
    auto a = parse_ipv4(text);
    return a ? std::optional<Ipv4Addr>(*a) : std::nullopt;
}

}  // namespace

apipb::Global global_config(const BgpOptions& options) {
    apipb::Global g;
    g.set_asn(options.asn);
    g.set_router_id(format_ipv4(options.router_id));
    // gobgpd: -1 does not listen.
    g.set_listen_port(options.listen_port == 0 ? -1 : options.listen_port);
    // One speaker per node address: several podfwd nodes on one host (the
    // lab, the tests) each bind their own address.
    g.add_listen_addresses(format_ipv4(options.node_ip));
    if (options.restart_time > 0) {
        g.mutable_graceful_restart()->set_enabled(true);
        g.mutable_graceful_restart()->set_restart_time(options.restart_time);
    }
    return g;
}

apipb::Peer peer_config(const PeerConfig& peer, const BgpOptions& options) {
    apipb::Peer p;
    apipb::PeerConf& conf = *p.mutable_conf();
    conf.set_neighbor_address(format_ipv4(peer.address));
    conf.set_peer_asn(peer.remote_as);
    conf.set_auth_password(peer.password);
    conf.set_description("podfwd");
    apipb::Transport& transport = *p.mutable_transport();
    transport.set_local_address(format_ipv4(options.node_ip));
    transport.set_remote_port(peer.port);
    transport.set_passive_mode(peer.passive);
    apipb::TimersConfig& timers = *p.mutable_timers()->mutable_config();
    timers.set_hold_time(peer.hold_time);
    timers.set_keepalive_interval(peer.hold_time / 3);
    timers.set_connect_retry(5);
    apipb::AfiSafi& family = *p.add_afi_safis();
    *family.mutable_config()->mutable_family() = ipv4_unicast();
    family.mutable_config()->set_enabled(true);
    if (peer.restart_time > 0) {
        p.mutable_graceful_restart()->set_enabled(true);
        p.mutable_graceful_restart()->set_restart_time(peer.restart_time);
        // Every gobgpd we start is a restart as its peers see it, and the
        // dataplane kept forwarding meanwhile: the Restart State and
        // Forwarding State bits (RFC 4724) let peers keep our routes across
        // the new session until our End-of-RIB instead of dropping them when
        // it opens. (A peer with no state of ours ignores them; a peer
        // restarting too is not waited for.) No deferral: we only advertise
        // our pod CIDRs, known before any peer speaks.
        p.mutable_graceful_restart()->set_local_restarting(true);
        family.mutable_mp_graceful_restart()->mutable_config()->set_enabled(true);
    }
    return p;
}

apipb::Path own_path(const Prefix4& prefix, Ipv4Addr next_hop) {
    apipb::Path path;
    apipb::IPAddressPrefix nlri;
    nlri.set_prefix(format_ipv4(prefix.addr));
    nlri.set_prefix_len(prefix.len);
    path.mutable_nlri()->PackFrom(nlri);
    apipb::OriginAttribute origin;
    origin.set_origin(0);   // IGP
    path.add_pattrs()->PackFrom(origin);
    apipb::NextHopAttribute nh;
    nh.set_next_hop(format_ipv4(next_hop));
    path.add_pattrs()->PackFrom(nh);
    *path.mutable_family() = ipv4_unicast();
    return path;
}

std::optional<PathUpdate> path_update(const apipb::Path& path) {
    if (!is_ipv4_unicast(path.family()))
        return std::nullopt;
    apipb::IPAddressPrefix nlri;
    if (!path.nlri().UnpackTo(&nlri) || nlri.prefix_len() > 32)
        return std::nullopt;
    const auto addr = ipv4(nlri.prefix());
    if (!addr)
        return std::nullopt;
    PathUpdate u;
    // gobgpd sends the network address; a peer's stray host bits are not ours to keep.
    u.prefix = Prefix4{*addr & prefix_mask(static_cast<std::uint8_t>(nlri.prefix_len())),
                       static_cast<std::uint8_t>(nlri.prefix_len())};
    u.withdrawn = path.is_withdraw();
    // Paths of our own (AddPath) have no neighbour: gobgpd writes "<nil>".
    u.own = path.neighbor_ip().empty() || path.neighbor_ip() == "<nil>";
    u.peer = ipv4(path.neighbor_ip()).value_or(0);
    if (u.withdrawn)
        return u;
    for (const google::protobuf::Any& attr : path.pattrs()) {
        if (attr.Is<apipb::NextHopAttribute>()) {
            apipb::NextHopAttribute nh;
            if (attr.UnpackTo(&nh))
                u.next_hop = ipv4(nh.next_hop()).value_or(0);
        } else if (attr.Is<apipb::MpReachNLRIAttribute>()) {
            apipb::MpReachNLRIAttribute mp;
            if (attr.UnpackTo(&mp) && mp.next_hops_size() > 0)
                u.next_hop = ipv4(mp.next_hops(0)).value_or(0);
        }
    }
    // A peer's path without an IPv4 next hop (RFC 8950's IPv6 next hop, or
    // 0.0.0.0): the prefix has no route we can follow.
    u.unusable = !u.own && u.next_hop == 0;
    return u;
}

SessionState session_state(apipb::PeerState::SessionState s) noexcept {
    switch (s) {
    case apipb::PeerState::IDLE: return SessionState::kIdle;
    case apipb::PeerState::CONNECT: return SessionState::kConnect;
    case apipb::PeerState::ACTIVE: return SessionState::kActive;
    case apipb::PeerState::OPENSENT: return SessionState::kOpenSent;
    case apipb::PeerState::OPENCONFIRM: return SessionState::kOpenConfirm;
    case apipb::PeerState::ESTABLISHED: return SessionState::kEstablished;
    default: return SessionState::kUnknown;
    }
}

PeerStatus peer_status(const apipb::Peer& peer, std::int64_t now_unix_s) {
    PeerStatus s;
    s.address = ipv4(peer.conf().neighbor_address()).value_or(0);
    s.port = static_cast<std::uint16_t>(peer.transport().remote_port());
    s.remote_as = peer.conf().peer_asn();
    s.passive = peer.transport().passive_mode();
    s.state = session_state(peer.state().session_state());
    if (s.state == SessionState::kEstablished && peer.timers().state().has_uptime()) {
        const std::int64_t since = peer.timers().state().uptime().seconds();
        s.uptime = std::chrono::seconds(std::max<std::int64_t>(0, now_unix_s - since));
    }
    s.end_of_rib = s.state == SessionState::kEstablished;
    bool have_family = false;
    for (const apipb::AfiSafi& family : peer.afi_safis()) {
        if (!is_ipv4_unicast(family.state().family()) && !is_ipv4_unicast(family.config().family()))
            continue;
        have_family = true;
        s.received += family.state().received();
        s.end_of_rib = s.end_of_rib && family.mp_graceful_restart().state().end_of_rib_received();
    }
    s.end_of_rib = s.end_of_rib && have_family;
    s.notifications_sent = peer.state().messages().sent().notification();
    s.notifications_received = peer.state().messages().received().notification();
    return s;
}

}  // namespace podfwd::control::bgp
