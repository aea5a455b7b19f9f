#!/usr/bin/python3
"""BIRD as an iBGP route reflector (10.168.0.10, `rr client`, next hops left
alone) with two podfwd-control nodes as its only peers: each learns the
other's pod CIDR through the reflector with next hop the other node, not
the reflector; the reflector's own block has next hop the reflector. BIRD's
view (originator, next hop) is checked as well, and a pod CIDR that leaves
(node stopped, restart time 0 in BIRD's view: GR off for its sessions)
leaves the other node's table.

Usage: test_bgp_rr.py PODFWD_CONTROL PODFWDCTL"""
from bgp_lab import BgpNode, Bird, Checks, Cleanup, Neighbor, dump_on_failure, peer_arg, run_tests, timed, wait_until

check = Checks()
AS = 65001
RR = "10.168.0.10"
A, A_POD = "10.168.0.2", "10.244.0.0/24"
B, B_POD = "10.168.0.3", "10.244.1.0/24"
RR_BLOCK = "10.100.0.0/26"
RESTART = 6   # the nodes' graceful-restart time: how long the reflector keeps a stopped node's routes


@timed
def test_rr(bins):
    with Cleanup() as c:
        rr = c.add(Bird("rr", RR, AS, [Neighbor(A, AS, name="client_a", rr_client=True),
                                      Neighbor(B, AS, name="client_b", rr_client=True)], static=[RR_BLOCK]))
        a = c.add(BgpNode(bins, "rra", A, A_POD, asn=AS, peers=[peer_arg(RR, AS)], bgp_restart_time=RESTART))
        b = c.add(BgpNode(bins, "rrb", B, B_POD, asn=AS, peers=[peer_arg(RR, AS)], bgp_restart_time=RESTART))
        before = len(check.failures)
        try:
            a.wait_established(RR)
            b.wait_established(RR)
            check(wait_until(lambda: rr.established("client_a") and rr.established("client_b"), 10, "BIRD's side"),
                  "both clients established with the reflector (bgp.peers and BIRD)")
            check(wait_until(lambda: rr.learned() == {A_POD: A, B_POD: B}, 15, "the reflector's view"),
                  f"the reflector learned {A_POD} via {A} and {B_POD} via {B}")
            check(a.wait_bgp_table({B_POD: B, RR_BLOCK: RR}),
                  f"A learned B's pod CIDR with next hop B ({B}), not the reflector; the RR's block via {RR}")
            check(b.wait_bgp_table({A_POD: A, RR_BLOCK: RR}),
                  f"B learned A's pod CIDR with next hop A ({A}), not the reflector")
            r = a.bgp_routes().get(B_POD) or {}
            check(r.get("effective_mode") == "host-gw" and r.get("installed") and a.installed(B_POD)[0] not in (0, None),
                  f"A: B's pod CIDR host-gw, installed ({r})")
            exported = rr.exported("client_a")
            check(set(exported) == {B_POD, RR_BLOCK} and exported[B_POD]["next_hop"] == B,
                  f"BIRD exports to A exactly B's pod CIDR (next hop {B}) and its block "
                  f"({ {p: x['next_hop'] for p, x in exported.items()} })")
            check(list(a.peers()) == [RR] and list(b.peers()) == [RR], "each node has the reflector as only peer")

            # B leaves: A loses B's pod CIDR (BIRD, GR helper, keeps it at most B's restart time)
            b.stop()
            check(a.wait_bgp_table({RR_BLOCK: RR}, seconds=RESTART + 15),
                  f"B stopped: A withdrew B's pod CIDR within {RESTART + 15} s (the reflector's withdrawal)")
            b.start_control()
            check(a.wait_bgp_table({B_POD: B, RR_BLOCK: RR}, seconds=30), "B back: A relearned B's pod CIDR")
        finally:
            dump_on_failure(check, before, [a, b], [rr])


if __name__ == "__main__":
    run_tests(check, test_rr)
