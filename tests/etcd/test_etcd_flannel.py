#!/usr/bin/python3
"""The etcd source's Flannel layout against a real etcd: leases added,
modified, deleted and expired (TTL) reach the table; a config change to
vxlan re-writes the node's own lease; malformed values are rejected beside
good ones; the own lease is registered, renewed, and never overwritten when
another node holds it; two nodes learn each other's lease.

Usage: test_etcd_flannel.py PODFWD_CONTROL PODFWDCTL"""
import json

from etcd_lab import (FLANNEL, Checks, EtcdCluster, Node, etcd_args, flannel_config, flannel_expected, flannel_lease,
                      lease_key, route, wait_until, run_tests)

check = Checks()
OWN = "10.244.0.0/24"   # Node's defaults: node IP 10.168.0.2, this pod CIDR
VTEP = "02:00:00:00:aa:02"
MAC1, MAC2 = "aa:bb:cc:dd:ee:01", "aa:bb:cc:dd:ee:02"
PREFIX = "/podfwd.test/network"


def expected(etcd, own=OWN):
    return flannel_expected(etcd.get_all(FLANNEL + "/")[1], own)


def lease_json(etcd, cidr):
    kv = etcd.get_kv(lease_key(cidr))
    return (json.loads(kv["value"]), kv) if kv else (None, None)


SOURCE_FIELDS = {"name": str, "enabled": bool, "state": str, "detail": str, "routes": int, "best": int,
                 "refused": int, "last_error": (str, type(None)), "changes": int, "etcd": dict}
ETCD_FIELDS = {"endpoint": str, "layout": str, "revision": int, "keys": int, "routes": int, "rejected": int,
               "rejections": list, "lease": (dict, type(None)), "syncs": int, "last_error": (str, type(None))}


def schema_errors(src):
    """What differs from the spec's Source object with its `etcd` object."""
    wrong = [f"{k}: {src.get(k)!r}" for k, t in SOURCE_FIELDS.items() if not isinstance(src.get(k, ...), t)]
    e = src.get("etcd") or {}
    wrong += [f"etcd.{k}: {e.get(k)!r}" for k, t in ETCD_FIELDS.items() if not isinstance(e.get(k, ...), t)]
    lease = e.get("lease") or {}
    wrong += [f"etcd.lease.{k}" for k in ("key", "id", "state") if k not in lease]
    return wrong


def test_leases(bins):
    with EtcdCluster() as etcd:
        etcd.put_json(FLANNEL + "/config", flannel_config("host-gw"))
        long = etcd.lease_grant(600)
        etcd.put_json(lease_key("10.244.1.0/24"), flannel_lease("10.168.0.3"), lease=long)
        node = Node(bins, "fl", args=etcd_args(etcd, vtep_mac=VTEP))
        try:
            src = node.source()
            e = src.get("etcd") or {}
            check(src["state"] == "up" and src["enabled"] and e.get("layout") == "flannel"
                  and e.get("endpoint") == etcd.url(), f"source etcd up, flannel, at {etcd.url()} ({src})")
            check(node.etcd_table() == {"10.244.1.0/24": route("host-gw", "10.168.0.3")},
                  "the lease present at start is a route on the daemon's first answer (first sync before listening)")
            check(src["changes"] == 1 and src["routes"] == 1, f"changes 1, routes 1 after the first sync ({src})")
            check(schema_errors(src) == [], f"sources --json: every field of the spec ({schema_errors(src)})")

            # add: a vxlan lease (the route follows the lease's BackendType, not the config's)
            etcd.put_json(lease_key("10.244.3.0/24"), flannel_lease("10.168.0.5", "vxlan", MAC1), lease=long)
            check(node.wait_table(expected(etcd)) and "10.244.3.0/24" in node.etcd_table(), "lease added: vxlan route")
            got = node.route_get("10.244.3.9")
            r = got.get("route") or {}
            check(r.get("prefix") == "10.244.3.0/24" and r.get("source") == "etcd" and r.get("via") == "10.168.0.5"
                  and r.get("effective_mode") == "vxlan" and r.get("vni") == 1 and r.get("vtep_mac") == MAC1
                  and r.get("best") and got.get("table_nexthop") == r.get("nexthop_id") != 0,
                  f"route get 10.244.3.9: the etcd route, in the table ({got})")

            # modify: a new PublicIP, a new VtepMAC
            etcd.put_json(lease_key("10.244.1.0/24"), flannel_lease("10.168.0.4"), lease=long)
            etcd.put_json(lease_key("10.244.3.0/24"), flannel_lease("10.168.0.5", "vxlan", MAC2), lease=long)
            check(node.wait_table({"10.244.1.0/24": route("host-gw", "10.168.0.4"),
                                   "10.244.3.0/24": route("vxlan", "10.168.0.5", 1, MAC2)}),
                  "lease modified: new PublicIP, new VtepMAC")
            got = node.route_get("10.244.1.1")
            check((got.get("route") or {}).get("via") == "10.168.0.4" and got.get("table_nexthop") != 0,
                  f"route get follows the new PublicIP ({got})")

            # delete
            etcd.delete(lease_key("10.244.1.0/24"))
            check(node.wait_table({"10.244.3.0/24": route("vxlan", "10.168.0.5", 1, MAC2)}),
                  "lease deleted: route gone")
            got = node.route_get("10.244.1.1")
            check(got.get("route") is None or got["route"]["source"] != "etcd", f"route get: no etcd route ({got})")

            # TTL expiry: a lease nobody renews
            short = etcd.lease_grant(4)
            etcd.put_json(lease_key("10.244.4.0/24"), flannel_lease("10.168.0.6"), lease=short)
            check(node.wait_table(expected(etcd)), "short-lived lease: route added")
            check(node.wait_table({"10.244.3.0/24": route("vxlan", "10.168.0.5", 1, MAC2)}, seconds=20)
                  and etcd.get(lease_key("10.244.4.0/24")) is None, "the lease's TTL expired: route withdrawn")
            node.wait_revision(etcd.revision())
            check(node.changes() == 7,
                  f"changes: 1 + add + 2 modified + delete + TTL add/expire = 7 ({node.changes()})")

            # The own lease: PublicIP, the config's backend, bound to a lease of the default TTL.
            own, kv = lease_json(etcd, OWN)
            check(own is not None and own.get("PublicIP") == "10.168.0.2" and own.get("BackendType") == "host-gw"
                  and kv["lease"] != 0 and etcd.lease_ttl(kv["lease"])[0] == 86400,
                  f"own lease {lease_key(OWN)} written: PublicIP, host-gw, etcd lease of TTL 86400 ({own}, {kv})")
            lease = node.etcd().get("lease") or {}
            check(lease.get("key") == lease_key(OWN) and kv and lease.get("id") == kv["lease"],
                  f"sources shows the own lease, key and id ({lease})")

            # config host-gw -> vxlan: own lease re-written; the others' routes follow their leases
            before = node.etcd_table()
            changes = node.changes()
            etcd.put_json(FLANNEL + "/config", flannel_config("vxlan", vni=1))

            def rewritten():
                own, _ = lease_json(etcd, OWN)
                return own if own and own.get("BackendType") == "vxlan" else None
            own = wait_until(rewritten, 15, "the own lease re-written with the vxlan backend")
            check((own.get("BackendData") or {}).get("VtepMAC") == VTEP and own["BackendData"].get("VNI") == 1
                  and own.get("PublicIP") == "10.168.0.2", f"own lease: vxlan, VtepMAC {VTEP}, VNI 1 ({own})")
            node.wait_revision(etcd.revision())
            check(node.etcd_table() == before and node.changes() == changes,
                  "config change alone: the other leases' routes are unchanged")
            etcd.put_json(lease_key("10.244.5.0/24"), flannel_lease("10.168.0.7", "vxlan", MAC1), lease=long)
            check(node.wait_table(expected(etcd)) and node.etcd_table()["10.244.5.0/24"]["effective_mode"] == "vxlan",
                  "a node re-registering with vxlan: vxlan route")
            node.wait_revision(etcd.revision())
            check(node.changes() == changes + 1, f"exactly one change ({node.changes() - changes})")
        finally:
            node.close()


def test_direct_routing(bins):
    """DirectRouting, under a prefix of our own (--etcd-prefix)."""
    def mine(cidr):
        return lease_key(cidr, prefix=PREFIX)

    def expected_mine(etcd):
        return flannel_expected(etcd.get_all(PREFIX + "/")[1], OWN, prefix=PREFIX)
    with EtcdCluster() as etcd:
        etcd.put_json(FLANNEL + "/config", flannel_config("host-gw"))   # the default prefix: not ours
        etcd.put_json(lease_key("10.244.7.0/24"), flannel_lease("10.168.0.7"))
        etcd.put_json(PREFIX + "/config", flannel_config("vxlan", direct=True))
        etcd.put_json(mine("10.244.1.0/24"), flannel_lease("10.168.0.3", "vxlan", MAC1))   # on the uplink
        etcd.put_json(mine("10.244.2.0/24"), flannel_lease("10.169.0.5", "vxlan", MAC2))   # off it
        node = Node(bins, "fldr", args=etcd_args(etcd, vtep_mac=VTEP, etcd_prefix=PREFIX))
        try:
            want = {"10.244.1.0/24": route("host-gw", "10.168.0.3"),
                    "10.244.2.0/24": route("vxlan", "10.169.0.5", 1, MAC2)}
            check(want == expected_mine(etcd) and node.wait_table(want),
                  "DirectRouting: host-gw to the node on the uplink subnet, vxlan to the one off it")
            r = node.route_get("10.244.2.1").get("route") or {}
            check(r.get("l2_nexthop") == "10.168.0.1", f"vxlan off the subnet is framed to the gateway ({r})")
            etcd.put_json(mine("10.244.2.0/24"), flannel_lease("10.168.0.5", "vxlan", MAC2))   # onto the subnet
            etcd.put_json(FLANNEL + "/config", flannel_config("vxlan"))                        # not ours
            etcd.put_json(PREFIX + "/config", flannel_config("vxlan", direct=False))
            want = {"10.244.1.0/24": route("vxlan", "10.168.0.3", 1, MAC1),
                    "10.244.2.0/24": route("vxlan", "10.168.0.5", 1, MAC2)}
            check(node.wait_table(want), "DirectRouting off: vxlan to both")
            node.wait_revision(etcd.revision())
            check(node.changes() == 5, f"changes: 2 + moved + DirectRouting off (2) = 5 ({node.changes()})")
            own = json.loads(etcd.get(mine(OWN)) or "{}")
            check(own.get("BackendType") == "vxlan" and etcd.get(lease_key(OWN)) is None,
                  f"the own lease is under --etcd-prefix, nothing under the default one ({own})")
        finally:
            node.close()


def test_rejections(bins):
    with EtcdCluster() as etcd:
        etcd.put_json(FLANNEL + "/config", flannel_config("host-gw"))
        for cidr, ip in (("10.244.1.0/24", "10.168.0.3"), ("10.244.2.0/24", "10.168.0.4")):
            etcd.put_json(lease_key(cidr), flannel_lease(ip))
        node = Node(bins, "flbad", args=etcd_args(etcd))
        try:
            good = expected(etcd)
            check(len(good) == 2 and node.wait_table(good), "two good leases")
            bad = {lease_key("10.244.5.0/24"): '{"PublicIP": "10.168.0.9", "BackendType": "host-gw"',   # bad JSON
                   f"{FLANNEL}/subnets/10.244.6.0-33": json.dumps(flannel_lease("10.168.0.9")),      # bad key
                   f"{FLANNEL}/subnets/garbage": json.dumps(flannel_lease("10.168.0.9")),           # bad key
                   lease_key("10.99.1.0/24"): json.dumps(flannel_lease("10.168.0.9"))}              # outside Network
            for key, value in bad.items():
                etcd.put(key, value)
            node.wait_revision(etcd.revision())

            def rejected(n):
                e = node.etcd()
                return e if e.get("rejected") == n else None
            e = wait_until(lambda: rejected(4), 10, "4 rejected keys")
            keys = {r["key"] for r in e.get("rejections", [])}
            check(keys == set(bad), f"rejections name the four bad keys ({e.get('rejections')})")
            check(all(r.get("reason") for r in e.get("rejections", [])), "each with a reason")
            check(node.etcd_table() == good and node.changes() == 2, "the good routes stay, nothing changed")
            check(all(len(node.log_lines(k)) == 1 for k in bad),
                  f"each bad key logged once ({ {k: len(node.log_lines(k)) for k in bad} })")

            etcd.put_json(lease_key("10.244.3.0/24"), flannel_lease("10.168.0.5"))   # an unrelated change
            check(node.wait_table(expected(etcd)), "a good lease beside bad ones is learned")
            check(all(len(node.log_lines(k)) == 1 for k in bad), "bad keys are not logged again on other changes")

            # A good lease that becomes bad withdraws only its route; fixed, it comes back.
            etcd.put(lease_key("10.244.2.0/24"), '{"PublicIP": "10.168.0.4", "BackendType": ')
            want = {p: r for p, r in expected(etcd).items() if p != "10.244.2.0/24"}
            check(node.wait_table(want) and set(want) == {"10.244.1.0/24", "10.244.3.0/24"},
                  "a lease turned bad: only its route is withdrawn")
            e = wait_until(lambda: rejected(5), 10, "5 rejected keys")
            check(lease_key("10.244.2.0/24") in {r["key"] for r in e.get("rejections", [])}, "and it is rejected")
            etcd.put_json(lease_key("10.244.2.0/24"), flannel_lease("10.168.0.8"))
            check(node.wait_table(expected(etcd)) and node.etcd_table()["10.244.2.0/24"]["via"] == "10.168.0.8",
                  "fixed: its route is back")
            wait_until(lambda: rejected(4), 10, "4 rejected keys again")
            for key in bad:
                etcd.delete(key)
            check(wait_until(lambda: rejected(0), 10, "no rejected keys") and node.etcd_table() == expected(etcd),
                  "bad keys deleted: none rejected, routes unchanged")
            node.wait_revision(etcd.revision())
            check(node.changes() == 5, f"changes: 2 + add + withdraw + back = 5 ({node.changes()})")
        finally:
            node.close()


def test_conflict(bins):
    with EtcdCluster() as etcd:
        etcd.put_json(FLANNEL + "/config", flannel_config("host-gw"))
        theirs = etcd.lease_grant(600)
        key = lease_key("10.244.9.0/24")
        etcd.put_json(key, flannel_lease("10.168.0.9"), lease=theirs)
        held = etcd.get_kv(key)
        node = Node(bins, "flconf", node_ip="10.168.0.5", pod_cidr="10.244.9.0/24",
                    args=etcd_args(etcd, etcd_lease_ttl=6))
        try:
            def reported():
                s = node.source()
                return s if "10.244.9.0" in (s.get("last_error") or "") else None
            s = wait_until(reported, 15, "the conflict in sources")
            print(f"     sources: state {s['state']}, last_error {s['last_error']!r}, lease {s['etcd'].get('lease')}")
            check("10.168.0.9" in s["last_error"], "the error names the holder's PublicIP")
            check(s["state"] == "error", f"a lease held by another node puts the source in error ({s['state']})")
            lease = s["etcd"].get("lease") or {}
            check(lease.get("key") == key and lease.get("state") != "held", f"the own lease is not held ({lease})")
            rc, out, _ = node.ctl("sources")
            check(rc == 0 and "10.244.9.0" in out, "podfwdctl sources (text) shows it")
            # later changes are still followed, and the holder's lease is never overwritten
            etcd.put_json(lease_key("10.244.1.0/24"), flannel_lease("10.168.0.3"))
            check(node.wait_table({"10.244.1.0/24": route("host-gw", "10.168.0.3")}), "other leases still followed")
            check(etcd.get_kv(key) == held, f"the holder's lease is untouched ({etcd.get_kv(key)})")

            # The holder gives the subnet up: the node takes it; its lease revoked, it takes it again.
            etcd.lease_revoke(theirs)
            mine = wait_until(lambda: (lambda kv: kv if kv and '"10.168.0.5"' in kv["value"] else None)(
                etcd.get_kv(key)), 15, "the node to take its subnet")
            check(json.loads(mine["value"]).get("PublicIP") == "10.168.0.5" and mine["lease"] not in (0, theirs),
                  f"the holder gone: the node writes its own lease ({mine})")
            check(wait_until(lambda: (node.etcd().get("lease") or {}).get("state") == "held", 10, "lease held"),
                  "and holds it")
            check(wait_until(lambda: node.source()["state"] == "up", 5, "the source up"), "the source is up again")
            etcd.lease_revoke(mine["lease"])
            again = wait_until(lambda: (lambda kv: kv if kv and kv["lease"] != mine["lease"] else None)(
                etcd.get_kv(key)), 15, "the node to take its subnet again")
            check(json.loads(again["value"]).get("PublicIP") == "10.168.0.5",
                  f"its etcd lease revoked (key gone): the node writes it again, on a new lease ({again})")
        finally:
            node.close()


def test_two_nodes(bins):
    with EtcdCluster() as etcd:
        etcd.put_json(FLANNEL + "/config", flannel_config("host-gw"))
        a = Node(bins, "fla", node_ip="10.168.0.2", pod_cidr="10.244.1.0/24", args=etcd_args(etcd, etcd_lease_ttl=6))
        b = None
        try:
            b = Node(bins, "flb", node_ip="10.168.0.3", pod_cidr="10.244.2.0/24",
                     args=etcd_args(etcd, etcd_lease_ttl=6))
            for cidr, ip in (("10.244.1.0/24", "10.168.0.2"), ("10.244.2.0/24", "10.168.0.3")):
                lease, kv = wait_until(lambda: (lambda x: x if x[0] else None)(lease_json(etcd, cidr)), 10,
                                       f"the lease of {cidr}")
                check(lease.get("PublicIP") == ip and lease.get("BackendType") == "host-gw" and kv["lease"] != 0
                      and etcd.lease_ttl(kv["lease"])[0] == 6, f"{cidr} registered by its node ({lease}, {kv})")
            check(a.wait_table({"10.244.2.0/24": route("host-gw", "10.168.0.3")}), "node A learns B's lease")
            check(b.wait_table({"10.244.1.0/24": route("host-gw", "10.168.0.2")}), "node B learns A's lease")

            _, kv = lease_json(etcd, "10.244.1.0/24")
            seen = [etcd.lease_ttl(kv["lease"])[1]]

            def renewed():
                seen.append(etcd.lease_ttl(kv["lease"])[1])
                return seen[-1] > seen[-2]
            check(wait_until(renewed, 10, "A's lease to be renewed", interval=0.2),
                  f"A renews its lease (remaining TTL {seen[-2]} -> {seen[-1]} s)")

            b.stop()   # B stops renewing: its lease expires, A withdraws the route
            check(a.wait_table({}, seconds=20), "B stopped: its lease expires and A's route to it goes")
            check(lease_json(etcd, "10.244.1.0/24")[0] is not None, "A's own lease lives on")
        finally:
            a.close()
            if b is not None:
                b.close()


if __name__ == "__main__":
    run_tests(check, test_leases, test_direct_routing, test_rejections, test_conflict, test_two_nodes)
