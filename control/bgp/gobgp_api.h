// Translation between podfwd's BGP vocabulary and gobgpd's API messages
// (package apipb, generated from GoBGP's .proto files at build time). The
// only place besides bgp_source.cc that sees protobuf types.
#pragma once

#include <optional>
#include <string>

#include "attribute.pb.h"
#include "gobgp.pb.h"

#include "control/bgp/bgp_routes.h"
#include "control/bgp/bgp_source.h"

namespace podfwd::control::bgp {

apipb::Global global_config(const BgpOptions& options);
apipb::Peer peer_config(const PeerConfig& peer, const BgpOptions& options);
// This node's pod CIDR, origin IGP, next hop self.
apipb::Path own_path(const Prefix4& prefix, Ipv4Addr next_hop);

// An IPv4 unicast best path as an update (`unusable` without an IPv4 next
// hop); nullopt for other families or a prefix we cannot read.
std::optional<PathUpdate> path_update(const apipb::Path& path);

SessionState session_state(apipb::PeerState::SessionState) noexcept;
// What ListPeer says of a peer; accepted, refused and last_error are ours
// and filled by the caller.
PeerStatus peer_status(const apipb::Peer& peer, std::int64_t now_unix_s);

}  // namespace podfwd::control::bgp
