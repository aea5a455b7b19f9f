#!/usr/bin/python3
"""podfwd-control, podfwdctl and podfwd-dataplane together (lab.py): a route
added with the CLI takes the next packet, a deleted one drops it (counted),
SIGHUP applies an edited static file as a difference, and kernel routes
(netlink, `ip route ... proto bird table 100`) are mirrored into forwarding.

Usage: test_control_dataplane.py PODFWD_CONTROL PODFWD_DATAPLANE PODFWDCTL"""
import select
import subprocess
import sys
import time

from lab import Checks, Lab, binaries, enter_private_netns, wait_for

from scapy.layers.inet import IP
from scapy.layers.l2 import ARP, Ether

NEIGH_B = ("10.168.0.3", "02:00:00:00:00:03")
GATEWAY = ("10.168.0.1", "02:00:00:00:00:01")

STATIC = f"""# two nodes on the subnet, one behind the gateway
route 10.244.1.0/24 via {NEIGH_B[0]} mode host-gw
route 10.244.2.0/24 via 10.168.0.4 mode host-gw
route 10.244.3.0/24 via 10.169.0.5 mode cross-subnet
neigh {NEIGH_B[0]} {NEIGH_B[1]}
neigh 10.168.0.4 02:00:00:00:00:04
neigh {GATEWAY[0]} {GATEWAY[1]}
"""

check = Checks()


# Without the default route via --gateway, a packet no route covers is
# dropped as no_route, which these tests count.
NO_DEFAULT = ["--no-default-route"]


def test_cli(bins):
    lab = Lab(bins, "cli", STATIC, control_args=NO_DEFAULT)
    try:
        out = lab.probe("10.244.1.7", "static")
        check(out is not None and out.dst == NEIGH_B[1] and out[IP].ttl == 19,
              "static host-gw route forwards: MAC of the neighbour, TTL - 1")
        out = lab.probe("10.244.3.7", "cross")
        check(out is not None and out[IP].proto == 4 and out[IP].dst == "10.169.0.5" and out.dst == GATEWAY[1]
              and out[IP].payload[IP].dst == "10.244.3.7",
              "cross-subnet off the subnet is IPIP to the node, framed to the gateway")

        check(lab.probe_dropped("10.244.9.7", "before", "no_route"), "no route yet: dropped and counted")
        rc, _, err = lab.ctl("route", "add", "10.244.9.0/24", "via", "10.168.0.4", "mode", "ipip")
        check(rc == 0, f"podfwdctl route add: exit 0 ({err.strip()})")
        out = lab.probe("10.244.9.7", "after-add")
        check(out is not None and out[IP].proto == 4 and out[IP].dst == "10.168.0.4" and out[IP].src == "10.168.0.2"
              and out.dst == "02:00:00:00:00:04", "the next packet takes the new route (IPIP to 10.168.0.4)")
        got = lab.ctl_json("route", "get", "10.244.9.7")
        r = got.get("route") or {}
        check(r.get("prefix") == "10.244.9.0/24" and r.get("source") == "cli" and r.get("via") == "10.168.0.4"
              and r.get("effective_mode") == "ipip" and r.get("mac") == "02:00:00:00:00:04"
              and got.get("table_nexthop") == r.get("nexthop_id"),
              f"route get: prefix, source, next hop, mode, MAC, and the table agrees ({got})")

        # A CLI route over a static one wins; deleting it gives the static one back.
        check(lab.ctl("route", "add", "10.244.1.0/24", "via", "10.168.0.4", "mode", "host-gw")[0] == 0,
              "CLI route over a static prefix")
        out = lab.probe("10.244.1.8", "cli-wins")
        check(out is not None and out.dst == "02:00:00:00:00:04", "the CLI route is preferred")
        check(lab.ctl("route", "del", "10.244.1.0/24")[0] == 0, "route del")
        out = lab.probe("10.244.1.8", "static-back")
        check(out is not None and out.dst == NEIGH_B[1], "the static route takes over again")

        rc, _, err = lab.ctl("route", "del", "10.244.9.0/24")
        check(rc == 0, f"podfwdctl route del: exit 0 ({err.strip()})")
        check(lab.probe_dropped("10.244.9.7", "after-del", "no_route"), "after route del: dropped and counted")

        # Refusals: one line, non-zero, nothing changed.
        before = lab.routes()
        for args, code, what in [
            (["route", "add", "10.244.9.0/24", "via", "10.169.0.9", "mode", "host-gw"], 1, "host-gw off the subnet"),
            (["route", "add", "10.244.9.1/24", "via", "10.168.0.4"], 2, "host bits set"),
            (["route", "add", "10.244.9.0/24", "via", "10.168.0.4", "mode", "warp"], 2, "unknown mode"),
            (["route", "del", "10.244.2.0/24"], 1, "deleting a static route with the CLI"),
        ]:
            rc, out, err = lab.ctl(*args)
            lines = err.strip().splitlines()
            check(rc == code and len(lines) == 1 and lines[0].startswith("podfwdctl: "),
                  f"{what}: exit {code}, one line ({rc}: {err.strip()})")
        check(lab.routes() == before, "refused commands changed nothing")

        # Counters: podfwdctl stats agrees with an independent reader of the segment.
        totals = lab.ctl_json("stats")["totals"]
        raw = lab.stats()
        check(totals["drops"]["no_route"] == raw["drop_by_name"]["no_route"] >= 2
              and totals["actions"]["host_gw"] == raw["action_by_name"]["host_gw"] >= 3
              and totals["actions"]["ipip_encap"] == raw["action_by_name"]["ipip_encap"] >= 2,
              f"podfwdctl stats agrees with stats_reader.py ({totals['drops']['no_route']} no_route drops)")
    finally:
        lab.close()


def test_sighup(bins):
    lab = Lab(bins, "hup", STATIC, control_args=NO_DEFAULT)
    try:
        before = lab.routes()
        changes_before = {s["name"]: s["changes"] for s in lab.request({"op": "sources"})["sources"]}
        # One route kept, one changed, one removed, one added.
        lab.write_static(STATIC.replace("route 10.244.2.0/24 via 10.168.0.4", "route 10.244.2.0/24 via 10.168.0.3")
                         .replace("route 10.244.3.0/24 via 10.169.0.5 mode cross-subnet\n", "")
                         + "route 10.244.4.0/24 via 10.168.0.4 mode host-gw\n")
        lab.control.send_signal(1)   # SIGHUP
        wait_for(lambda: ("10.244.4.0/24", "static") in lab.routes(), 10, "the reloaded static file")
        after = lab.routes()
        kept = ("10.244.1.0/24", "static")
        check(after[kept] == before[kept], "the unchanged route is untouched (same next-hop record)")
        check(after[("10.244.2.0/24", "static")]["via"] == "10.168.0.3", "the changed route changed")
        check(("10.244.3.0/24", "static") not in after, "the removed route is gone")
        changes = {s["name"]: s["changes"] for s in lab.request({"op": "sources"})["sources"]}
        check(changes["static"] - changes_before["static"] == 3, f"exactly three changes pushed ({changes})")
        out = lab.probe("10.244.2.9", "reloaded")
        check(out is not None and out.dst == NEIGH_B[1], "forwarding follows the changed route")
        check(lab.probe_dropped("10.244.3.9", "removed", "no_route"), "the removed route drops")

        # A bad file: refused whole, the routes already learned stay.
        lab.write_static(STATIC + "route 10.244.5.0/24 via 10.168.0.4 mode warp\n")
        lab.control.send_signal(1)
        def refused():
            static = [s for s in lab.request({"op": "sources"})["sources"] if s["name"] == "static"][0]
            return static if static["state"] == "error" else None
        static = wait_for(refused, 10, "the bad file to be refused")
        check("routes.conf:8" in (static["last_error"] or ""), f"the error names the line ({static['last_error']})")
        check(lab.routes() == after, "nothing already learned is lost")
        check(lab.control.poll() is None, "the daemon keeps running")
    finally:
        lab.close()


def test_full_table(bins):
    # Room for the pod CIDR, the uplink's connected route, the three static
    # routes and the host routes of the three static neighbours, nothing more.
    lab = Lab(bins, "full", STATIC, control_args=["--max-routes", "8", *NO_DEFAULT], dataplane=False)
    try:
        before = lab.routes()
        rc, _, err = lab.ctl("route", "add", "10.244.9.0/24", "via", "10.168.0.4")
        lines = err.strip().splitlines()
        check(rc == 1 and len(lines) == 1 and "full" in lines[0], f"a full table: exit 1, one line ({rc}: {err.strip()})")
        check(lab.routes() == before, "the refused route is not left in the RIB")
        check(lab.ctl("route", "add", "10.244.1.0/24", "via", "10.168.0.4", "mode", "host-gw")[0] == 0,
              "replacing an installed prefix still works when full")
    finally:
        lab.close()


def test_default_route(bins):
    # --gateway's default route: what no source routes goes to the gateway's MAC;
    # a learned default route wins over it.
    lab = Lab(bins, "dflt", STATIC)
    try:
        r = lab.routes().get(("0.0.0.0/0", "gateway"))
        check(r is not None and r["via"] == GATEWAY[0] and r["best"] and r["installed"],
              f"the gateway's default route is in the RIB and the table ({r})")
        c = lab.routes().get(("10.168.0.0/24", "connected"))
        check(c is not None and c["installed"] and c["via"] is None, f"the uplink's connected route ({c})")
        out = lab.probe("10.244.9.7", "default")
        check(out is not None and out.dst == GATEWAY[1] and out[IP].dst == "10.244.9.7" and out[IP].ttl == 19,
              "no other route: host-gw to the gateway's MAC")
        check(lab.ctl("route", "add", "0.0.0.0/0", "via", "10.168.0.4", "mode", "host-gw")[0] == 0,
              "a CLI default route")
        out = lab.probe("10.244.9.7", "cli-default")
        check(out is not None and out.dst == "02:00:00:00:00:04", "the CLI's default route wins over the gateway's")
    finally:
        lab.close()


def wait_for_arp_request(lab, target, seconds=5):
    """The first ARP request for `target` the dataplane sends on the uplink, or None."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if select.select([lab.up], [], [], max(0, deadline - time.monotonic()))[0]:
            frame = Ether(lab.up.recv(65535))
            if ARP in frame and frame[ARP].op == 1 and frame[ARP].pdst == target:
                return frame
    return None


def test_arp_learned(bins):
    # A next hop no source has a MAC for: the dataplane ARPs for it, and
    # what it learns reaches podfwd-control (the "arp" neighbour source),
    # the next-hop record, and podfwdctl neigh list.
    node, mac = "10.168.0.6", "02:00:00:00:00:06"
    lab = Lab(bins, "arp", f"route 10.244.6.0/24 via {node} mode host-gw\n", control_args=NO_DEFAULT)
    try:
        lab.drain(lab.up)
        lab.send_from_host(lab.pod_packet("10.244.6.7", "held"))
        request = wait_for_arp_request(lab, node)
        check(request is not None and request[ARP].psrc == "10.168.0.2" and request[ARP].hwsrc == "02:00:00:00:00:02",
              f"the dataplane asks who has {node} ({request.summary() if request is not None else None})")
        lab.up.send(bytes(Ether(dst="02:00:00:00:00:02", src=mac) /
                          ARP(op=2, hwsrc=mac, psrc=node, hwdst="02:00:00:00:00:02", pdst="10.168.0.2")))

        def learned():
            rows = [n for n in lab.ctl_json("neigh", "list")["neighbours"] if n["ip"] == node]
            return rows[0] if rows and rows[0].get("mac") == mac else None
        row = wait_for(learned, 10, "the dataplane's neighbour in podfwdctl neigh list")
        check(row["source"] == "arp" and row["state"] in ("reachable", "stale") and row["nexthops"] >= 1,
              f"neigh list: source arp, its state, the records using it ({row})")
        got = lab.ctl_json("route", "get", "10.244.6.7")
        check(got["route"]["mac"] == mac and got["table_nexthop"] == got["route"]["nexthop_id"],
              f"the route's record has the MAC ({got})")
        out = lab.probe("10.244.6.7", "resolved")
        check(out is not None and out.dst == mac, "the next packet goes to the learned MAC")
        rc, text, _ = lab.ctl("neigh", "list")
        check(rc == 0 and any(node in line and "arp" in line and mac in line for line in text.splitlines()),
              f"podfwdctl neigh list shows it:\n{text}")
        sources = {s["name"]: s for s in lab.request({"op": "sources"})["sources"]}
        check(sources["arp"]["state"] == "up" and sources["arp"]["refused"] == 0, f"arp source up ({sources['arp']})")
    finally:
        lab.close()


def ip(*args):
    subprocess.run(["ip", *args], check=True)


def test_netlink(bins):
    # The uplink subnet on a veth pair (this kernel has no dummy driver), so
    # the kernel accepts gateways on it.
    ip("link", "add", "nl0", "type", "veth", "peer", "name", "nl1")
    ip("addr", "add", "10.168.0.2/24", "dev", "nl0")
    ip("link", "set", "nl0", "up")
    ip("link", "set", "nl1", "up")
    lab = Lab(bins, "nl", "", control_args=["--kernel", "--kernel-table", "100", "--kernel-protocol", "bird",
                                             "--kernel-neighbours", "--accept", "10.244.0.0/16", *NO_DEFAULT])
    try:
        ip("neigh", "add", "10.168.0.7", "lladdr", "02:00:00:00:00:07", "dev", "nl0", "nud", "permanent")
        ip("route", "add", "10.244.7.0/24", "via", "10.168.0.7", "proto", "bird", "table", "100")
        ip("route", "add", "10.244.8.0/24", "via", "10.168.0.7", "table", "100")   # not bird: not mirrored

        def listed():
            routes = lab.ctl_json("route", "list", "--source", "kernel")["routes"]
            return routes if any(r["prefix"] == "10.244.7.0/24" for r in routes) else None
        routes = wait_for(listed, 10, "the kernel route in podfwdctl route list")
        r = [r for r in routes if r["prefix"] == "10.244.7.0/24"][0]
        check(r["via"] == "10.168.0.7" and r["effective_mode"] == "host-gw" and r["mac"] == "02:00:00:00:00:07",
              f"ip route add ... proto bird table 100: listed, cross-subnet resolves to host-gw, MAC from the kernel ({r})")
        check(not any(r["prefix"] == "10.244.8.0/24" for r in routes), "other protocols are not mirrored")
        out = lab.probe("10.244.7.3", "kernel")
        check(out is not None and out.dst == "02:00:00:00:00:07" and out[IP].ttl == 19, "and forwarded")

        ip("route", "del", "10.244.7.0/24", "via", "10.168.0.7", "proto", "bird", "table", "100")
        wait_for(lambda: not any(r["prefix"] == "10.244.7.0/24"
                                 for r in lab.ctl_json("route", "list", "--source", "kernel")["routes"]),
                 10, "ip route del to reach the RIB")
        check(lab.probe_dropped("10.244.7.3", "kernel-gone", "no_route"), "ip route del: removed from forwarding")
    finally:
        lab.close()
        subprocess.run(["ip", "link", "del", "nl0"], check=False)


if __name__ == "__main__":
    enter_private_netns()
    bins = binaries(sys.argv)
    for test in (test_cli, test_sighup, test_full_table, test_netlink, test_default_route, test_arp_learned):
        print(f"--- {test.__name__}", flush=True)
        test(bins)
    check.exit()
