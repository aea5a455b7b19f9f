#!/usr/bin/python3
"""Three podfwd-control nodes (10.168.0.2, .3, .4; three tables; one pod
CIDR each) in an iBGP full mesh, no BIRD: each learns the other two's pod
CIDRs with next hop the owner's node IP, and never its own. A node stopped
(SIGTERM) leaves the others' tables within the graceful-restart time; started
again it is relearned.

Usage: test_bgp_mesh.py PODFWD_CONTROL PODFWDCTL"""
from bgp_lab import BgpNode, Checks, Cleanup, dump_on_failure, peer_arg, run_tests, timed, wait_until

check = Checks()
AS = 65001
NODES = {"10.168.0.2": "10.244.0.0/24", "10.168.0.3": "10.244.1.0/24", "10.168.0.4": "10.244.2.0/24"}
RESTART = 5


def expected(ip, present=NODES):
    return {cidr: other for other, cidr in present.items() if other != ip}


@timed
def test_mesh(bins):
    with Cleanup() as c:
        nodes = {}
        for i, (ip, cidr) in enumerate(NODES.items()):
            peers = [peer_arg(o, AS) for o in NODES if o != ip]
            nodes[ip] = c.add(BgpNode(bins, f"mesh{i}", ip, cidr, asn=AS, peers=peers,
                                      bgp_restart_time=RESTART))
        before = len(check.failures)
        try:
            for ip, n in nodes.items():
                others = [o for o in NODES if o != ip]
                try:
                    n.wait_established(*others)
                    check(True, f"{ip}: sessions to {others} established")
                except TimeoutError as e:
                    check(False, f"{ip}: sessions established ({e}; {n.peers()})")
            for ip, n in nodes.items():
                check(n.wait_bgp_table(expected(ip)), f"{ip} learned {expected(ip)}")
            for ip, n in nodes.items():
                got = n.bgp_routes()
                ok = all(r["effective_mode"] == "host-gw" and r["installed"] and n.installed(p)[0] not in (0, None)
                         for p, r in got.items())
                check(ok and NODES[ip] not in got, f"{ip}: host-gw, installed, its own pod CIDR not a bgp route")
                peers = n.peers()
                check(all(p["advertised"] == 1 and p["accepted"] == 1 for p in peers.values()),
                      f"{ip}: each peer: 1 advertised (the own pod CIDR), 1 accepted "
                      f"({[(a, p['advertised'], p['accepted']) for a, p in peers.items()]})")

            # node .4 stops (SIGTERM): the others lose its pod CIDR (GR window at most RESTART s)
            gone = "10.168.0.4"
            nodes[gone].stop()
            rest = {ip: cidr for ip, cidr in NODES.items() if ip != gone}
            for ip in rest:
                check(nodes[ip].wait_bgp_table(expected(ip, rest), seconds=RESTART + 15),
                      f"{gone} stopped: {ip} withdrew {NODES[gone]} within {RESTART + 15} s")
            nodes[gone].start_control()
            for ip, n in nodes.items():
                check(n.wait_bgp_table(expected(ip), seconds=30), f"{gone} started again: {ip} has {expected(ip)}")
            check(wait_until(lambda: all(p["state"] == "established" for p in nodes[gone].peers().values()), 20,
                             "the restarted node's sessions"), f"{gone}: sessions established again")
        finally:
            dump_on_failure(check, before, list(nodes.values()))


if __name__ == "__main__":
    run_tests(check, test_mesh)
