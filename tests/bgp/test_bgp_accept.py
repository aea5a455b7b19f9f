#!/usr/bin/python3
"""The accept filter: BIRD advertises a default route, prefixes outside
--accept (and one covering it), prefixes inside --accept that overlap
--uplink or --pod-cidr, and good ones: only the good ones become routes;
the peer's and the source's `refused` count the bad ones, `last_error`
names a refusal, and the refused prefixes are not in the table.

Usage: test_bgp_accept.py PODFWD_CONTROL PODFWDCTL"""
from bgp_lab import BgpNode, Bird, Checks, Cleanup, Neighbor, dump_on_failure, peer_arg, run_tests, timed, wait_until

check = Checks()
BIRD_IP, BIRD_AS = "10.168.0.10", 65010
NODE_IP, POD = "10.168.0.2", "10.244.0.0/24"
# --accept 10.0.0.0/8 (holds the uplink 10.168.0.0/24 and the pod CIDR: overlapping them stays refused)
# and 172.16.0.0/16
ACCEPTS = ("10.0.0.0/8", "172.16.0.0/16")
GOOD = ["10.100.0.0/26", "10.100.0.64/26", "10.244.1.0/24", "10.100.2.5/32", "172.16.5.0/24", "10.168.1.0/24"]
BAD = {"0.0.0.0/0": "default route",
       "192.168.5.0/24": "outside --accept",
       "10.0.0.0/7": "covers --accept, not inside",
       "172.0.0.0/8": "covers an --accept",
       "10.168.0.128/25": "inside --uplink",
       "10.168.0.0/16": "covers --uplink",
       "10.244.0.0/24": "is --pod-cidr",
       "10.244.0.128/25": "inside --pod-cidr",
       "10.244.0.0/16": "covers --pod-cidr"}
# BIRD's path for the pod CIDR itself is never gobgpd's best (the node's own
# origination is): it is received but never reaches the filter, so neither
# accepted nor counted refused.
SHADOWED = {"10.244.0.0/24"}
REFUSED = len(BAD) - len(SHADOWED)


@timed
def test_accept(bins):
    with Cleanup() as c:
        bird = c.add(Bird("acc", BIRD_IP, BIRD_AS, [Neighbor(NODE_IP, 65001, name="podfwd")],
                          static=GOOD + list(BAD)))
        node = c.add(BgpNode(bins, "accept", NODE_IP, POD, peers=[peer_arg(BIRD_IP, BIRD_AS)], accept=ACCEPTS))
        before = len(check.failures)
        try:
            node.wait_established(BIRD_IP)
            check(node.wait_bgp_table({p: BIRD_IP for p in GOOD}), f"only the good prefixes are routes ({GOOD})")
            exported = bird.exported("podfwd")
            check(set(exported) == set(GOOD) | set(BAD), f"(BIRD did send all {len(GOOD) + len(BAD)}: {sorted(exported)})")
            def counted():
                q = node.peer(BIRD_IP)
                return q if q and q["end_of_rib"] and q["received"] == len(GOOD) + len(BAD) \
                    and q["refused"] >= REFUSED else None
            try:
                p = wait_until(counted, 10, "the peer's counters", interval=0.1)
            except TimeoutError:
                p = node.peer(BIRD_IP)
            check(p["received"] == len(GOOD) + len(BAD) and p["accepted"] == len(GOOD) and p["refused"] == REFUSED,
                  f"peer: received {len(GOOD) + len(BAD)}, accepted {len(GOOD)}, refused {REFUSED} ({p})")
            err = p.get("last_error") or ""
            check(any(x in err for x in BAD),
                  f"peer's last_error names a refused prefix ({err!r})")
            b = node.bgp_status()
            check(b["refused"] == REFUSED and b["routes"] == len(GOOD) and sorted(b["accept"]) == sorted(ACCEPTS),
                  f"bgp: refused {REFUSED}, routes {len(GOOD)}, accept {ACCEPTS} ({b})")
            src = node.source("bgp")
            check(src["refused"] == REFUSED and src["routes"] == len(GOOD) and src["last_error"],
                  f"sources: bgp refused {REFUSED}, routes {len(GOOD)}, last_error set ({src})")
            for prefix, why in BAD.items():
                if prefix in ("0.0.0.0/0", "10.244.0.0/24", "10.244.0.0/16", "10.244.0.128/25", "10.168.0.0/16"):
                    continue   # their first address has another route (local, or another block)
                nh, r = node.installed(prefix)
                # Inside the uplink subnet the connected route answers: never a BGP one.
                check((nh == 0 or r["source"] == "connected") and (r is None or r["source"] != "bgp"),
                      f"{prefix} ({why}): not in the table ({nh}, {r})")
            nh, r = node.installed("10.244.0.130/32")
            check(r is not None and r["source"] == "local", f"own pod CIDR stays local ({r})")
            nh, r = node.installed("192.0.2.1/32")
            check(nh == 0 and r is None, f"no default route installed: 192.0.2.1 has no route ({nh}, {r})")

            # a new bad prefix is counted; withdrawing a bad one changes no route
            bird.add_static("8.0.0.0/6")
            check(wait_until(lambda: node.peer(BIRD_IP)["refused"] == REFUSED + 1, 10, "refused + 1"),
                  "a new bad prefix: refused counts it")
            bird.remove_static("192.168.5.0/24")
            bird.add_static("10.100.7.0/26")
            check(node.wait_bgp_table({p: BIRD_IP for p in GOOD + ["10.100.7.0/26"]}),
                  "a bad prefix withdrawn and a good one added: the good one follows, nothing else")
            check(node.peer(BIRD_IP)["refused"] == REFUSED + 1, "refused counts ever, not now")
        finally:
            dump_on_failure(check, before, [node], [bird])


if __name__ == "__main__":
    run_tests(check, test_accept)
