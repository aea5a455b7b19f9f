#!/usr/bin/python3
"""The etcd source's watch under trouble, against a real etcd: a watcher
left behind a compaction (the daemon SIGSTOPped while etcd churns, then a
physical compaction), an etcd restart, fail-over between the members of a
three-member cluster, a watch stream that stalls with its connection up,
and a start while etcd is down. Each time the final
table equals what etcd's content states, and the source's `changes` counter
moved by exactly the route changes made (nothing lost, nothing twice).

Usage: test_etcd_resync.py PODFWD_CONTROL PODFWDCTL"""
import json
import signal
import time

from etcd_lab import (FLANNEL, Checks, EtcdCluster, Node, etcd_args, flannel_config, flannel_expected, flannel_lease,
                      lease_key, wait_until, run_tests)
from etcd_server import free_ports
from stall_proxy import StallProxy

check = Checks()
OWN = "10.244.0.0/24"
MAC = "aa:bb:cc:dd:ee:01"
OUTAGE = 20   # seconds etcd stays down in test_restart


def expected(etcd):
    return flannel_expected(etcd.get_all(FLANNEL + "/")[1], OWN)


def put_lease(etcd, n, ip_last, backend="host-gw"):
    return etcd.put_json(lease_key(f"10.244.{n}.0/24"), flannel_lease(f"10.168.0.{ip_last}", backend, MAC))


def setup(etcd, count=6):
    etcd.put_json(FLANNEL + "/config", flannel_config("host-gw"))
    for n in range(1, count + 1):
        put_lease(etcd, n, 10 + n)


def settled(node, etcd, what, seconds=20, own=OWN):
    """Checks that the source catches up with etcd within `seconds`: at one
    revision (etcd's, the source's before and after reading the table), the
    table states exactly etcd's content and the source holds all its keys."""
    seen = {}

    def caught_up():
        revision, kvs = etcd.get_all(FLANNEL + "/")
        before, table, after = node.etcd(), node.etcd_table(), node.etcd()
        seen.update(revision=revision, keys=len(kvs), want=flannel_expected(kvs, own), table=table, etcd=after)
        return (before["revision"] == after["revision"] == revision and table == seen["want"]
                and after["keys"] == len(kvs))
    try:
        ok = wait_until(caught_up, seconds, what, interval=0.1)
    except TimeoutError:
        ok = False
        want, table = seen["want"], seen["table"]
        diff = [p for p in sorted(set(want) | set(table)) if want.get(p) != table.get(p)]
        for p in diff[:10]:
            print(f"     {p}: expected {want.get(p)}, table {table.get(p)}")
        if len(diff) > 10:
            print(f"     ... {len(diff)} prefixes differ")
    e = seen["etcd"]
    return check(ok, f"{what} (revision {e['revision']} of {seen['revision']}, {e['keys']} of {seen['keys']} keys)")


def test_compaction(bins):
    with EtcdCluster() as etcd:
        setup(etcd)
        node = Node(bins, "rsc", args=etcd_args(etcd))
        try:
            settled(node, etcd, "six leases learned")
            wait_until(lambda: (node.etcd().get("lease") or {}).get("state") == "held", 15, "our own lease held")
            settled(node, etcd, "six leases learned, our own lease written")
            before = node.etcd()
            check(before["source"]["changes"] == 6, f"6 changes ({before['source']['changes']})")
            node.control.send_signal(signal.SIGSTOP)
            try:
                # Churn in the watched range (route-neutral): etcd stops
                # sending to a watcher that does not read, which falls behind.
                etcd.put_many([(FLANNEL + "/pad", "x" * 100_000)] * 400)
                # The route changes the watcher will not see as events: 7 of
                # them, plus a lease deleted and put back unchanged.
                for n in (7, 8, 9):
                    put_lease(etcd, n, 20 + n)                 # 3 added
                put_lease(etcd, 1, 31)                         # new PublicIP
                put_lease(etcd, 2, 12, "vxlan")                # host-gw -> vxlan
                etcd.delete(lease_key("10.244.3.0/24"))        # 2 removed
                etcd.delete(lease_key("10.244.4.0/24"))
                etcd.delete(lease_key("10.244.6.0/24"))        # removed and back: no net change
                put_lease(etcd, 6, 16)
                put_lease(etcd, 5, 15)                         # the same value again: no change
                etcd.delete(lease_key(OWN))                    # our own lease, gone unseen
                rev = etcd.delete(FLANNEL + "/pad")
                etcd.compact(rev, physical=True)
            finally:
                node.control.send_signal(signal.SIGCONT)
            settled(node, etcd, "after SIGCONT: the table equals etcd's content", seconds=30)
            after = node.etcd()
            resynced = after["syncs"] - before["syncs"]
            delta = after["source"]["changes"] - before["source"]["changes"]
            print(f"     watch behind the compaction: {resynced} full resync(s), {delta} changes, "
                  f"{after['events'] - before['events']} events")
            check(resynced == 1, "the compacted watch led to exactly one full resync")
            mine = wait_until(lambda: etcd.get_kv(lease_key(OWN)), 15, "our own lease written again")
            check(json.loads(mine["value"]).get("PublicIP") == "10.168.0.2",
                  f"our own lease, deleted while the watch was behind, is written again ({mine})")
            check(delta == (7 if resynced else 9), f"changes: 7 (the resync's diff only) ({delta})")
            # the watch goes on from the resync's revision
            put_lease(etcd, 10, 40)
            put_lease(etcd, 1, 32)
            settled(node, etcd, "changes after the resync arrive")
            check(node.changes() - after["source"]["changes"] == 2, "two more changes")
            check(node.etcd()["syncs"] == after["syncs"], "without another full read")
        finally:
            if node.control.poll() is None:
                node.control.send_signal(signal.SIGCONT)
            node.close()


def test_stalled_watch(bins):
    """The watch's connection stays up and nothing more comes: the source
    finds it silent while etcd moved on, and starts it again from where it
    was (no full read: nothing was compacted)."""
    with EtcdCluster() as etcd, StallProxy(etcd.url()) as proxy:
        setup(etcd)
        node = Node(bins, "rss", args=etcd_args(etcd, endpoints=[proxy.url()], etcd_watch_check=1000))
        try:
            settled(node, etcd, "six leases learned through the relay")
            before = node.etcd()
            check(proxy.freeze_watches() == 1, "the watch stream stalled at the relay")
            put_lease(etcd, 7, 27)
            put_lease(etcd, 1, 31)
            etcd.delete(lease_key("10.244.3.0/24"))
            started = time.monotonic()
            settled(node, etcd, "the stalled watch noticed and started again", seconds=30)
            after = node.etcd()
            print(f"     caught up {time.monotonic() - started:.1f} s after the changes")
            check(after["watch_restarts"] - before["watch_restarts"] == 1, "one watch restart")
            check(after["syncs"] == before["syncs"], "without a full read")
            check(after["source"]["changes"] - before["source"]["changes"] == 3, "exactly 3 changes")
            put_lease(etcd, 8, 28)
            settled(node, etcd, "the new watch carries on")
        finally:
            node.close()


def test_restart(bins):
    with EtcdCluster() as etcd:
        setup(etcd)
        node = Node(bins, "rsr", args=etcd_args(etcd))
        try:
            settled(node, etcd, "six leases learned")
            table, changes = node.etcd_table(), node.changes()
            etcd.kill()
            s = node.wait_state(("error", "syncing"), seconds=20)
            check(s["state"] in ("error", "syncing"), f"etcd killed: source {s['state']} ({s['last_error']})")
            check(node.etcd_table() == table and node.changes() == changes, "the routes already learned stay")
            got = node.route_get("10.244.1.1")
            check(got.get("table_nexthop") != 0, f"and stay in the table ({got})")
            time.sleep(OUTAGE)   # not a synchronisation: the outage, long enough for the backoff to reach its cap
            back = time.monotonic()
            etcd.start()
            s = node.wait_state(("up",), seconds=30)
            took = time.monotonic() - back
            check(s["state"] == "up" and took < 15,
                  f"etcd back (same data dir, ports) after {OUTAGE} s down: source up in {took:.1f} s (capped backoff)")
            node.wait_revision(etcd.revision())
            check(node.etcd_table() == table and node.changes() == changes,
                  f"nothing changed in etcd: no route change ({node.changes() - changes})")
            put_lease(etcd, 7, 27)
            put_lease(etcd, 1, 41, "vxlan")
            etcd.delete(lease_key("10.244.2.0/24"))
            settled(node, etcd, "changes made after the restart arrive")
            check(node.changes() - changes == 3, f"exactly 3 changes ({node.changes() - changes})")
        finally:
            node.close()


def test_failover(bins):
    with EtcdCluster(members=3) as etcd:
        setup(etcd)
        node = Node(bins, "rsf", args=etcd_args(etcd))
        try:
            settled(node, etcd, "six leases learned from a 3-member cluster")
            e = node.etcd()
            check(e.get("endpoint") == etcd.url(0), f"the first endpoint in use ({e.get('endpoint')})")
            changes = node.changes()
            made = 0
            for round in range(2):
                used = etcd.urls().index(node.etcd()["endpoint"])
                etcd.kill(used)
                put_lease(etcd, 1, 50 + round)
                put_lease(etcd, 11 + round, 60 + round)
                etcd.delete(lease_key(f"10.244.{2 + round}.0/24"))
                made += 3
                settled(node, etcd, f"member {used} killed: changes made through the others arrive")
                e = node.etcd()
                check(e.get("endpoint") in etcd.urls() and e["endpoint"] != etcd.url(used)
                      and node.source()["state"] == "up", f"failed over from member {used} to {e.get('endpoint')}")
                check(node.changes() - changes == made, f"exactly {made} changes ({node.changes() - changes})")
                etcd.start(used)   # back, so that the next round keeps a quorum
        finally:
            node.close()


def test_quorum_lost(bins):
    """The member the daemon watches loses its cluster's leader (both other
    members down) but keeps its connection: the watch must fail (hasleader)
    rather than stay open while events stop; with the quorum back, the
    source follows changes again."""
    with EtcdCluster(members=3) as etcd:
        setup(etcd, count=2)
        node = Node(bins, "rsq", args=etcd_args(etcd, endpoints=[etcd.url(0)]))
        try:
            settled(node, etcd, "two leases learned from member 0")
            etcd.kill(1)
            etcd.kill(2, leader=False)   # member 0 alone: no quorum, no leader
            s = wait_until(lambda: (lambda s: s if s["state"] == "error" else None)(node.source()), 30,
                           "the source to notice member 0 has no leader")
            check(s["state"] == "error", f"no leader: the source is in error ({s.get('last_error')})")
            check(len(node.etcd_routes()) == 2, "and its routes stay")
            etcd.start(1)
            etcd.start(2)
            etcd.wait_leader()
            put_lease(etcd, 3, 13)
            settled(node, etcd, "quorum back: the new lease arrives", seconds=40)
            check(node.source()["state"] == "up", "the source is up again")
        finally:
            node.close()


def test_daemon_restart(bins):
    """kill -9 of podfwd-control: the restarted daemon waits for etcd before
    reconciling, so the table keeps every unchanged etcd route's next-hop
    record, learns what changed while it was down, and takes its own lease
    back (same PublicIP: no conflict)."""
    with EtcdCluster() as etcd:
        setup(etcd)
        node = Node(bins, "rsd", args=etcd_args(etcd))
        try:
            settled(node, etcd, "six leases learned")
            before = node.etcd_routes()
            own = etcd.get_kv(lease_key(OWN))
            node.kill_control()
            put_lease(etcd, 1, 33)
            etcd.delete(lease_key("10.244.2.0/24"))
            node.start_control()
            after = node.etcd_routes()
            check(node.etcd_table() == expected(etcd), "at the restarted daemon's first answer: etcd's content")
            kept = [p for p in before if p in after and after[p]["nexthop_id"] == before[p]["nexthop_id"]]
            check(sorted(kept) == sorted(set(before) - {"10.244.1.0/24", "10.244.2.0/24"}),
                  f"the 4 unchanged routes kept their next-hop records ({kept})")
            check(node.changes() == 5, f"changes of the new process: its first sync's 5 routes ({node.changes()})")
            e = node.etcd()
            check((e.get("lease") or {}).get("state") == "held" and e["source"]["last_error"] is None,
                  f"its own lease held again, no error ({e.get('lease')}, {e['source']['last_error']})")
            kv = etcd.get_kv(lease_key(OWN))
            check(kv["value"] == own["value"], f"own lease value unchanged ({kv})")
        finally:
            node.close()


def test_one_revision(bins):
    """Several events in one revision (a transaction, a prefix delete) are
    all applied, not only the first."""
    with EtcdCluster() as etcd:
        setup(etcd)
        node = Node(bins, "rs1", args=etcd_args(etcd))
        try:
            settled(node, etcd, "six leases learned")
            rev = etcd.txn(puts=[(lease_key("10.244.7.0/24"), json.dumps(flannel_lease("10.168.0.27"))),
                                 (lease_key("10.244.1.0/24"), json.dumps(flannel_lease("10.168.0.31")))],
                           deletes=[lease_key("10.244.2.0/24"), lease_key("10.244.3.0/24")])
            settled(node, etcd, f"a transaction of 2 puts and 2 deletes (revision {rev}): all four applied")
            check(node.changes() == 10, f"exactly 4 changes ({node.changes() - 6})")
            etcd.delete(FLANNEL + "/subnets/10.244.", prefix=True)   # our own lease too: written again
            settled(node, etcd, "a prefix delete of every lease: all withdrawn")
            check(node.etcd_table() == {} and node.changes() == 15, f"exactly 5 changes ({node.changes() - 10})")
        finally:
            node.close()


def test_many(bins):
    """2000 leases: a large first read, then one revision deleting 250 of
    them (one watch message) and 250 modified."""
    own = "10.9.0.0/24"
    with EtcdCluster() as etcd:
        etcd.put_json(FLANNEL + "/config", dict(flannel_config("host-gw"), Network="10.0.0.0/8"))
        leases = [(lease_key(f"10.{1 + i // 250}.{i % 250}.0/24"), flannel_lease(f"10.168.0.{10 + i % 200}"))
                  for i in range(2000)]
        etcd.put_many([(k, json.dumps(v)) for k, v in leases])
        node = Node(bins, "rsm", pod_cidr=own, args=etcd_args(etcd, etcd_watch_check=1000))
        try:
            want = flannel_expected(etcd.get_all(FLANNEL + "/")[1], own)
            check(len(want) == 2000 and node.etcd_table() == want and node.changes() == 2000,
                  f"2000 routes at the first answer ({node.changes()} changes)")
            etcd.delete(FLANNEL + "/subnets/10.1.", prefix=True)
            etcd.put_many([(k, json.dumps(flannel_lease("10.168.0.250"))) for k, _ in leases[250:500]])
            check(len(flannel_expected(etcd.get_all(FLANNEL + "/")[1], own)) == 1750, "(1750 leases left)")
            settled(node, etcd, "250 deleted at once, 250 modified", seconds=30, own=own)
            check(node.changes() == 2500, f"exactly 500 more changes ({node.changes() - 2000})")
            checks = node.etcd()["watch_checks"]
            wait_until(lambda: node.etcd()["watch_checks"] >= checks + 3, 15, "three checks of the quiet watch")
            check(node.etcd()["watch_restarts"] == 0, "a healthy watch, busy then quiet, is never restarted")
        finally:
            node.close()


def test_first_endpoint_dead(bins):
    with EtcdCluster() as etcd:
        setup(etcd, count=2)
        dead = f"http://127.0.0.1:{free_ports(1)[0]}"
        node = Node(bins, "rsx", args=etcd_args(etcd, endpoints=[dead, etcd.url()]))
        try:
            e = node.etcd()
            check(e["source"]["state"] == "up" and e["endpoint"] == etcd.url() and node.etcd_table() == expected(etcd),
                  f"first endpoint refused: synced from the second before the first answer ({e['endpoint']})")
        finally:
            node.close()


def test_restart_unreachable(bins):
    """kill -9 of podfwd-control while etcd is down too: the restarted daemon
    starts from the routes etcd stated last (kept in --state-dir), so the
    running dataplane's table keeps them, same next-hop records; etcd back,
    only the difference is applied."""
    with EtcdCluster() as etcd:
        setup(etcd)
        node = Node(bins, "rsx", args=etcd_args(etcd, etcd_start_wait=1000))
        try:
            settled(node, etcd, "six leases learned")
            before = node.etcd_routes()
            saved_path = f"{node.tmp}/state/{node.table}.etcd.json"

            def saved_routes():
                try:
                    with open(saved_path) as f:
                        return len(json.load(f)["routes"]) == len(before)
                except (OSError, ValueError, KeyError):
                    return False
            wait_until(saved_routes, 10, "etcd's routes kept in the state dir")
            node.kill_control()
            etcd.stop()
            node.start_control()
            after = node.etcd_routes()
            check({p: r["nexthop_id"] for p, r in after.items()} == {p: r["nexthop_id"] for p, r in before.items()},
                  f"etcd down at the restart: its {len(before)} routes stay, same next-hop records")
            s = node.source()
            check(s["state"] in ("error", "syncing"), f"the source shows etcd is not reached ({s['state']})")
            check(node.log_lines("starting from the 6 routes it stated last"), "and says it started from them")
            loaded = node.changes()
            etcd.start()
            put_lease(etcd, 1, 34)
            settled(node, etcd, "etcd back: its content, one changed lease")
            check(node.changes() - loaded == 1, f"only the difference applied: 1 change ({node.changes() - loaded})")
        finally:
            node.close()


def test_start_unreachable(bins):
    with EtcdCluster() as etcd:
        setup(etcd, count=2)
        etcd.stop()
        started = time.monotonic()
        node = Node(bins, "rsu", args=etcd_args(etcd))
        try:
            took = time.monotonic() - started
            s = node.source()
            check(took < 15, f"the daemon answers without etcd after a bounded wait ({took:.1f} s)")
            check(s["state"] in ("error", "syncing") and node.etcd_table() == {},
                  f"source {s['state']}, no routes ({s.get('last_error')})")
            etcd.start()
            check(wait_until(lambda: node.source()["state"] == "up", 30, "the source up"), "etcd up: source up")
            settled(node, etcd, "and the leases learned")
            check(node.changes() == 2, f"2 changes ({node.changes()})")
        finally:
            node.close()


if __name__ == "__main__":
    run_tests(check, test_compaction, test_stalled_watch, test_restart, test_failover, test_quorum_lost, test_daemon_restart,
              test_one_revision, test_many, test_first_endpoint_dead, test_restart_unreachable, test_start_unreachable)
