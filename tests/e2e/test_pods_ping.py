"""e2e: pods ping each other across every pair of podfwd nodes: host-gw
between a and b (one L2 segment), IPIP a<->c and b<->c (cross-subnet, through
the router); then the same pairs again with every route switched to VXLAN
by podfwdctl (the CLI's routes win over the static file's). Next hops are
resolved by the dataplane's ARP (no static neighbours). Each leg prints what
it measured: seconds to the first answer, replies, average RTT, and the
counters that prove which way the packets went.

    test_pods_ping.py PODFWD_CONTROL PODFWD_DATAPLANE PODFWDCTL"""
import json
import sys

from e2e_lab import DROP_NAMES, NODES, ROUTER_MACS, Checks, Lab, binaries, require_root_and_tools, seconds

PAIRS = [("a", "b"), ("b", "a"), ("a", "c"), ("c", "a"), ("b", "c"), ("c", "b")]


def expected_mode(src, dst):
    return "host_gw" if NODES[src].subnet == NODES[dst].subnet else "ipip_encap"


def ping_pairs(lab, check, tunnel):
    for src, dst in PAIRS:
        before = lab.nodes[src].stats()
        action = "vxlan_encap" if tunnel == "vxlan" else expected_mode(src, dst)
        decap = {"vxlan_encap": "vxlan_decap", "ipip_encap": "ipip_decap", "host_gw": None}[action]
        dst_before = lab.nodes[dst].stats()
        first = lab.reach(lab.pod_ns(src), lab.pod_ip(dst))
        received, sent, rtt = lab.ping(lab.pod_ns(src), lab.pod_ip(dst), count=5)
        after = lab.nodes[src].stats()
        dst_after = lab.nodes[dst].stats()
        moved = after[action] - before[action]
        print(f"{tunnel}: pod {src} -> pod {dst}: first_reply={seconds(first)} received={received}/{sent} "
              f"rtt_avg_ms={rtt} {src}.{action}+={moved}"
              + (f" {dst}.{decap}+={dst_after[decap] - dst_before[decap]}" if decap else ""), flush=True)
        check(first is not None and received == sent == 5, f"{tunnel}: pod {src} -> pod {dst}: 5 of 5 replies")
        check(moved >= 6, f"{tunnel}: node {src} forwarded the requests as {action} ({moved})")
        if decap:
            check(dst_after[decap] - dst_before[decap] >= 6, f"{tunnel}: node {dst} decapsulated them ({decap})")


def static_neighbours(bins, check):
    """The one case with the next hops' MACs given (`neigh IP MAC` in the
    static file): they are used as given, no ARP needed for them."""
    with Lab(bins, nodes="ab", static_neighbours=True, checks=check) as lab:
        a = lab.nodes["a"]
        received, sent, rtt = lab.ping(lab.pod_ns("a"), lab.pod_ip("b"), count=5)
        neighbours = json.loads(a.ctl("--json", "neigh", "list").stdout)
        print(f"static neighbours: pod a -> pod b: received={received}/{sent} rtt_avg_ms={rtt}; "
              f"node a: podfwdctl --json neigh list: {json.dumps(neighbours)}", flush=True)
        check(received == sent == 5, "static neighbours: pod a -> pod b: 5 of 5 replies")
        entry = [n for n in neighbours.get("neighbours", []) if n.get("ip") == lab.nodes["b"].spec.ip]
        check(len(entry) == 1 and entry[0].get("source") == "static" and entry[0].get("mac") == lab.nodes["b"].spec.mac,
              "static neighbours: node a uses node b's MAC from the static file")


def main():
    require_root_and_tools()
    bins = binaries(sys.argv)
    check = Checks()
    static_neighbours(bins, check)
    with Lab(bins, nodes="abc", checks=check) as lab:
        ping_pairs(lab, check, "host-gw/ipip")
        for name, node in lab.nodes.items():
            rows = node.ctl("neigh", "list").stdout.strip().splitlines()
            print(f"node {name}: podfwdctl neigh list:", *rows, sep="\n  ")
            learned = {n["ip"]: n for n in json.loads(node.ctl("--json", "neigh", "list").stdout)["neighbours"]}
            # The next hops the pings needed: the same-subnet peer, and the gateway towards node c.
            wanted = {o.spec.ip: o.spec.mac for o in lab.nodes.values()
                      if o is not node and o.spec.subnet == node.spec.subnet}
            wanted[node.spec.gateway] = ROUTER_MACS[node.spec.gateway]
            for ip, mac in wanted.items():
                n = learned.get(ip, {})
                check(n.get("source") == "arp" and n.get("mac") == mac and n.get("state") in ("reachable", "stale"),
                      f"node {name} resolved {ip} by ARP to {mac} ({n.get('source')}, {n.get('mac')}, "
                      f"{n.get('state')})")
        for node in lab.nodes.values():
            for other in lab.nodes.values():
                if other is not node:
                    node.route(other.spec.pod_cidr, other.spec.ip, "vxlan", vtep_mac=other.spec.mac)
        ping_pairs(lab, check, "vxlan")
        for name, node in lab.nodes.items():
            s = node.stats()
            drops = {k: v for k, v in s.items() if k in DROP_NAMES and v}
            print(f"node {name}: drops {drops or 'none'}", flush=True)
            # Well-formed traffic only: none of it may be dropped as malformed.
            malformed = {k: drops[k] for k in ("short_frame", "bad_checksum", "bad_header_length", "bad_total_length",
                                                "vxlan_bad_header", "vxlan_wrong_vni", "ipip_unknown_source",
                                                "vxlan_unknown_source") if k in drops}
            check(not malformed, f"node {name}: nothing dropped as malformed or unknown ({malformed})")
    check.exit()


if __name__ == "__main__":
    main()
