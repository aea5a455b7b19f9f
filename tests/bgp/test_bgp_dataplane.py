#!/usr/bin/python3
"""A running dataplane forwards on routes learned from BGP: podfwd-control
with the BGP source and podfwd-dataplane on net_tap ports in a private
network namespace (tests/control/integration/lab.py: node 10.168.0.2 on
uplink 10.168.0.0/24), BIRD on 10.168.0.10 (both addresses on the
namespace's lo; the taps carry none). A block BIRD advertises takes the next packet host-gw to
BIRD's MAC (TTL - 1); it keeps being forwarded while podfwd-control
restarts (SIGTERM, started again); withdrawn in BIRD, it is dropped
(no_route).

Usage: test_bgp_dataplane.py PODFWD_CONTROL PODFWDCTL PODFWD_DATAPLANE"""
import signal

from bgp_lab import (BgpDataplaneLab, Bird, Checks, Cleanup, Neighbor, bgp_args, dump_on_failure, peer_arg, run_tests,
                     timed)
from scapy.layers.inet import IP

check = Checks()
NODE_IP, NODE_MAC = "10.168.0.2", "02:00:00:00:00:02"   # lab.py's
BIRD_IP, BIRD_MAC, BIRD_AS = "10.168.0.10", "02:00:00:00:00:10", 65010
BLOCK, OTHER = "10.100.0.0/26", "10.100.0.64/26"
NEIGHBOURS = f"neigh {BIRD_IP} {BIRD_MAC}\nneigh 10.168.0.1 02:00:00:00:00:01\n"


@timed
def test_dataplane(bins):
    with Cleanup() as c:
        bird = c.add(Bird("dp", BIRD_IP, BIRD_AS, [Neighbor(NODE_IP, 65001, name="podfwd")], static=[BLOCK, OTHER]))
        # No default route: the probes check that prefixes nobody advertised are dropped as no_route.
        lab = c.add(BgpDataplaneLab(bins, "bgpdp", NEIGHBOURS, control_args=[*bgp_args(
            65001, [peer_arg(BIRD_IP, BIRD_AS)], accept=("10.100.0.0/16",), bgp_restart_time=8),
            "--no-default-route"]))
        before = len(check.failures)
        try:
            lab.wait_established(BIRD_IP)
            check(lab.wait_bgp_table({BLOCK: BIRD_IP, OTHER: BIRD_IP}), "BIRD's blocks learned")
            out = lab.probe("10.100.0.7", "bgp1")
            check(out is not None and out.dst == BIRD_MAC and out.src == NODE_MAC and out[IP].ttl == 19
                  and out[IP].dst == "10.100.0.7", f"forwarded host-gw to BIRD's MAC, TTL - 1 ({out!r})")
            check(lab.probe_dropped("10.100.3.7", "none", "no_route"), "no route: dropped and counted")

            lab.kill_control(signal.SIGTERM)
            out = lab.probe("10.100.0.8", "down")
            check(out is not None and out.dst == BIRD_MAC, f"podfwd-control down: still forwarded ({out!r})")
            lab.start_control()
            out = lab.probe("10.100.0.9", "restarted")
            check(out is not None and out.dst == BIRD_MAC, f"podfwd-control restarted: forwarded at once ({out!r})")
            lab.wait_established(BIRD_IP)

            bird.remove_static(BLOCK)
            check(lab.wait_bgp_table({OTHER: BIRD_IP}), "withdrawn in BIRD: route gone")
            check(lab.probe_dropped("10.100.0.7", "withdrawn", "no_route"), "withdrawn: dropped and counted")
            out = lab.probe("10.100.0.70", "other")
            check(out is not None and out.dst == BIRD_MAC, f"the other block still forwarded ({out!r})")
        finally:
            dump_on_failure(check, before, [lab], [bird])


if __name__ == "__main__":
    run_tests(check, test_dataplane)
