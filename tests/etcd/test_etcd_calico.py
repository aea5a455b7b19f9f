#!/usr/bin/python3
"""The etcd source's Calico layout against a real etcd: a pool in each
ipipMode (Always; CrossSubnet with nodes on and off the uplink subnet;
Never), blocks appearing, moving to another node (affinity change) and
disappearing, this node's blocks local, pool and node changes followed,
bad values rejected beside good ones.

Usage: test_etcd_calico.py PODFWD_CONTROL PODFWDCTL"""
import json
import socket

from etcd_lab import (CALICO, CALICO_BLOCKS, CALICO_NODES, CALICO_POOLS, Checks, EtcdCluster, Node, calico_block,
                      calico_expected, calico_node, calico_pool, etcd_args, route, wait_until, run_tests)

check = Checks()
ME = "node-a"
ON, OFF = "10.168.0.3", "10.169.0.5"   # node-b on the uplink subnet, node-c off it


def put_block(etcd, cidr, node):
    return etcd.put_json(CALICO_BLOCKS + cidr.replace("/", "-"), calico_block(cidr, node))


def expected(etcd):
    return calico_expected(etcd.get_all(CALICO + "/")[1], ME)


def test_calico(bins):
    with EtcdCluster() as etcd:
        etcd.put_json(CALICO_POOLS + "pool-always", calico_pool("pool-always", "10.244.0.0/18", ipip="Always"))
        etcd.put_json(CALICO_POOLS + "pool-cross", calico_pool("pool-cross", "10.244.64.0/18", ipip="CrossSubnet"))
        etcd.put_json(CALICO_POOLS + "pool-never", calico_pool("pool-never", "10.244.128.0/18"))
        for name, address in ((ME, "10.168.0.2/24"), ("node-b", ON + "/24"), ("node-c", OFF + "/24")):
            etcd.put_json(CALICO_NODES + name, calico_node(name, address))
        for cidr, node in (("10.244.1.0/26", "node-b"), ("10.244.1.64/26", "node-c"),
                           ("10.244.64.0/26", "node-b"), ("10.244.64.64/26", "node-c"),
                           ("10.244.128.0/26", "node-b"), ("10.244.2.0/26", ME)):
            put_block(etcd, cidr, node)
        node = Node(bins, "cal", pod_cidr=None, args=etcd_args(etcd, "calico", node_name=ME))
        try:
            want = {"10.244.1.0/26": route("ipip", ON),            # Always, on the subnet
                    "10.244.1.64/26": route("ipip", OFF),          # Always, off it
                    "10.244.64.0/26": route("host-gw", ON),        # CrossSubnet, on the subnet
                    "10.244.64.64/26": route("ipip", OFF),         # CrossSubnet, off it
                    "10.244.128.0/26": route("host-gw", ON),       # Never
                    "10.244.2.0/26": route("local")}               # ours
            check(want == expected(etcd), "(the test's model agrees with its literal expectations)")
            check(node.etcd_table() == want, "at start: one route per block, mode from its pool and node")
            src = node.source()
            e = src.get("etcd") or {}
            check(src["state"] == "up" and e.get("layout") == "calico" and e.get("lease") is None
                  and src["changes"] == 6 and e.get("rejected") == 0,
                  f"source up, calico, no lease, 6 changes, nothing rejected ({src})")
            got = node.route_get("10.244.64.70")
            r = got.get("route") or {}
            check(r.get("prefix") == "10.244.64.64/26" and r.get("source") == "etcd" and r.get("via") == OFF
                  and r.get("effective_mode") == "ipip" and r.get("l2_nexthop") == "10.168.0.1"
                  and got.get("table_nexthop") == r.get("nexthop_id") != 0,
                  f"route get: CrossSubnet off the subnet is IPIP framed to the gateway ({got})")
            got = node.route_get("10.244.2.9")
            check((got.get("route") or {}).get("effective_mode") == "local" and got.get("table_nexthop") != 0,
                  f"our block is local in the table ({got})")
            changes = 6

            # blocks appearing
            put_block(etcd, "10.244.128.64/26", "node-b")
            put_block(etcd, "10.244.2.64/26", ME)
            put_block(etcd, "10.244.64.128/26", "node-b")
            want.update({"10.244.128.64/26": route("host-gw", ON), "10.244.2.64/26": route("local"),
                         "10.244.64.128/26": route("host-gw", ON)})
            changes += 3
            check(node.wait_table(want), "blocks appearing: Never host-gw, ours local, CrossSubnet on-subnet host-gw")

            # blocks moving: affinity changes
            put_block(etcd, "10.244.64.0/26", "node-c")   # CrossSubnet: host-gw -> IPIP off the subnet
            put_block(etcd, "10.244.1.0/26", ME)          # to us: local
            put_block(etcd, "10.244.2.64/26", "node-b")   # from us: IPIP (Always)
            want.update({"10.244.64.0/26": route("ipip", OFF), "10.244.1.0/26": route("local"),
                         "10.244.2.64/26": route("ipip", ON)})
            changes += 3
            check(node.wait_table(want), "blocks moving to another node: via and mode follow")

            # blocks disappearing
            etcd.delete(CALICO_BLOCKS + "10.244.1.64-26")
            etcd.delete(CALICO_BLOCKS + "10.244.2.0-26")
            del want["10.244.1.64/26"], want["10.244.2.0/26"]
            changes += 2
            check(node.wait_table(want), "blocks disappearing: their routes go (also our own)")
            got = node.route_get("10.244.1.70")
            check(got.get("route") is None and got.get("table_nexthop") == 0, f"and leave the table ({got})")

            # a pool's mode changes: CrossSubnet -> Always
            etcd.put_json(CALICO_POOLS + "pool-cross", calico_pool("pool-cross", "10.244.64.0/18", ipip="Always"))
            want["10.244.64.128/26"] = route("ipip", ON)
            changes += 1
            check(node.wait_table(want), "pool CrossSubnet -> Always: its on-subnet block becomes IPIP")
            # ... and Never -> CrossSubnet: on-subnet blocks stay host-gw (no change)
            rev = etcd.put_json(CALICO_POOLS + "pool-never", calico_pool("pool-never", "10.244.128.0/18",
                                                                         ipip="CrossSubnet"))
            node.wait_revision(rev)
            check(node.etcd_table() == want and node.changes() == changes,
                  f"pool Never -> CrossSubnet: nothing changes for on-subnet nodes ({node.changes()} vs {changes})")

            # a node's address changes: every block of it follows
            etcd.put_json(CALICO_NODES + "node-b", calico_node("node-b", "10.168.0.4/24"))
            moved = [p for p, r in want.items() if r["via"] == ON]
            for p in moved:
                want[p] = dict(want[p], via="10.168.0.4")
            changes += len(moved)
            check(len(moved) == 4 and node.wait_table(want), f"node-b's new address: its {len(moved)} blocks follow")

            # bad values beside good ones
            bad = {CALICO_BLOCKS + "10.244.1.128-26": json.dumps(calico_block("10.244.1.128/26", "node-x")),
                   CALICO_BLOCKS + "10.244.1.192-26": '{"cidr": "10.244.1.192/26", "affinity": ',
                   CALICO_NODES + "node-y": "not json"}
            for key, value in bad.items():
                rev = etcd.put(key, value)
            node.wait_revision(rev)

            def rejected(n):
                e = node.etcd()
                return e if e.get("rejected") == n else None
            e = wait_until(lambda: rejected(3), 10, "3 rejected keys")
            check({r["key"] for r in e["rejections"]} == set(bad), f"the bad keys are rejected ({e['rejections']})")
            check(node.etcd_table() == want and node.changes() == changes, "every other route stays")
            # the unknown node appears: its block becomes a route
            etcd.put_json(CALICO_NODES + "node-x", calico_node("node-x", "10.168.0.8/24"))
            want["10.244.1.128/26"] = route("ipip", "10.168.0.8")
            changes += 1
            check(node.wait_table(want), "the block's node appears: its route follows")
            check(wait_until(lambda: rejected(2), 10, "2 rejected keys"), "and it is no longer rejected")
            # a node deleted: its blocks are rejected and their routes withdrawn
            etcd.delete(CALICO_NODES + "node-x")
            del want["10.244.1.128/26"]
            changes += 1
            check(node.wait_table(want) and wait_until(lambda: rejected(3), 10, "3 rejected keys"),
                  "a node deleted: its block's route goes, the block is rejected again")
            # a good block turning bad withdraws only its route
            etcd.put(CALICO_BLOCKS + "10.244.64.128-26", "{")
            del want["10.244.64.128/26"]
            changes += 1
            check(node.wait_table(want), "a block turned bad: only its route is withdrawn")
            check(want == expected(etcd), "(the test's model agrees)")
            node.wait_revision(etcd.revision())
            check(node.changes() == changes, f"changes: exactly {changes} ({node.changes()})")
        finally:
            node.close()


def test_start_empty(bins):
    """A daemon started before Calico's keys exist: up with nothing, then
    the keys arrive in the 'wrong' order (block before its node)."""
    with EtcdCluster() as etcd:
        node = Node(bins, "cal0", pod_cidr=None, args=etcd_args(etcd, "calico", node_name=ME))
        try:
            src = node.source()
            check(src["state"] == "up" and node.etcd_table() == {}, f"empty datastore: up, no routes ({src['state']})")
            put_block(etcd, "10.244.3.0/26", "node-b")
            etcd.put_json(CALICO_POOLS + "p", calico_pool("p", "10.244.0.0/16", ipip="CrossSubnet"))
            etcd.put_json(CALICO_NODES + "node-b", calico_node("node-b", ON + "/24"))
            check(node.wait_table({"10.244.3.0/26": route("host-gw", ON)}), "block, pool, node: the route")
            node.wait_revision(etcd.revision())
            check(node.etcd()["rejected"] == 0, "nothing left rejected")
        finally:
            node.close()


def test_default_node_name(bins):
    """Without --node-name, this node is the host's name."""
    with EtcdCluster() as etcd:
        me = socket.gethostname()
        etcd.put_json(CALICO_NODES + me, calico_node(me, "10.168.0.2/24"))
        put_block(etcd, "10.244.5.0/26", me)
        node = Node(bins, "calh", pod_cidr=None, args=etcd_args(etcd, "calico"))
        try:
            check(node.etcd_table() == {"10.244.5.0/26": route("local")}, f"a block affine to {me} is local")
        finally:
            node.close()


if __name__ == "__main__":
    run_tests(check, test_calico, test_start_empty, test_default_node_name)
