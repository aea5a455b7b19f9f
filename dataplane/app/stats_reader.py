"""Reader of podfwd-dataplane's counters segment, /dev/shm/<table>.stats.<pid>
(format: dataplane/app/README.md), and the bounded poll that scripts wait on
it with. Used by the tests and scripts/demo; the C++ CLI will read the same
layout."""
import struct
import time

STATS_MAGIC = 0x5441545344574650
STATE_RUNNING = 2

# action_name() and drop_name() of dataplane/fastpath.cc, in enum order. The
# segment's header carries the counts, so a reader notices an enum that grew.
ACTIONS = ["host_gw", "ipip_encap", "vxlan_encap", "ipip_decap", "vxlan_decap", "to_host",
           "arp_reply", "icmp_time_exceeded", "icmp_frag_needed",
           "local_ttl_one", "arp_request", "arp_learned", "held_sent"]
DROPS = ["short_frame", "not_for_us", "not_ipv4", "bad_version", "bad_header_length", "ipv4_options",
         "bad_total_length", "bad_checksum", "ttl_exceeded", "no_route", "blackhole",
         "nexthop_gone", "unresolved_nexthop", "ipip_unknown_source", "vxlan_bad_header",
         "vxlan_wrong_vni", "vxlan_unknown_source", "tunnel_fragment", "mtu_exceeded", "no_headroom", "multi_segment",
         "arp_ignored", "icmp_rate_limited", "hold_queue_full", "neighbour_failed", "neighbour_table_full",
         "resolver_busy", "held_at_exit"]


def read_stats(path):
    """Header and per-lcore counters of /dev/shm/<table>.stats.<pid>, or None."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None
    if len(data) < 64:
        return None
    (magic, version, lcores, entry_size, counters_off, roles, n_actions, n_drops, pid, state,
     _, _, _) = struct.unpack_from("<QIIIIIIIIIIQQ", data, 0)
    if magic != STATS_MAGIC:
        return None
    total = {"state": state, "version": version, "lcores": lcores, "n_actions": n_actions,
             "n_drops": n_drops, "rx": [0] * roles, "tx": [0] * roles, "tx_dropped": [0] * roles,
             "actions": [0] * n_actions, "drops": [0] * n_drops, "lcore_rx": [], "idle_sleeps": 0}
    for i in range(lcores):
        base = 64 + i * entry_size
        _, _, _, idle_sleeps, _ = struct.unpack_from("<IIQQQ", data, base)
        total["idle_sleeps"] += idle_sleeps
        off = base + counters_off
        fields = struct.unpack_from(f"<{3 * roles + n_actions + n_drops}Q", data, off)
        total["lcore_rx"].append(sum(fields[:roles]))
        for key, start, n in (("rx", 0, roles), ("tx", roles, roles), ("tx_dropped", 2 * roles, roles),
                              ("actions", 3 * roles, n_actions), ("drops", 3 * roles + n_actions, n_drops)):
            for k in range(n):
                total[key][k] += fields[start + k]
    if n_actions == len(ACTIONS) and n_drops == len(DROPS):
        total["action_by_name"] = dict(zip(ACTIONS, total["actions"]))
        total["drop_by_name"] = dict(zip(DROPS, total["drops"]))
    return total


def wait_for(condition, seconds, what):
    """Polls `condition` until it returns something true (returned), or
    raises TimeoutError naming `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.01)
    raise TimeoutError("timed out waiting for " + what)
