#!/usr/bin/python3
"""Failures around the BGP source, BIRD's view as the oracle:

- hold timer: a peer with hold=3 and restart-time=0, BIRD frozen (SIGSTOP):
  podfwd drops the session after about the hold time and withdraws its
  routes; thawed, they come back.
- gobgpd killed (-9): podfwd-control restarts it (gobgpd_starts + 1); the
  routes stay in the table throughout (polled during the gap) and BIRD keeps
  the pod CIDR (graceful restart); a block BIRD withdrew during the outage
  is swept; with BIRD's protocol disabled during the outage (no End-of-RIB
  ever), the stale routes stay until --bgp-restart-time and are swept then.
- podfwd-control restarted (SIGTERM, started again on the same state dir and
  table): the learned routes keep their table next hops in between and after
  (not withdrawn and re-added); a block BIRD withdrew meanwhile is swept.

Usage: test_bgp_failures.py PODFWD_CONTROL PODFWDCTL"""
import os
import signal
import time

from bgp_lab import (BgpNode, Bird, Checks, Cleanup, Neighbor, dump_on_failure, expected_from, peer_arg, run_tests,
                     timed, wait_until)

check = Checks()
BIRD_IP, BIRD_AS = "10.168.0.10", 65010
NODE_IP, POD = "10.168.0.2", "10.244.0.0/24"
BLOCKS = ["10.100.0.0/26", "10.100.0.64/26", "10.100.1.0/26"]
RESTART = 8   # --bgp-restart-time


@timed
def test_hold_timer(bins):
    with Cleanup() as c:
        bird = c.add(Bird("hold", BIRD_IP, BIRD_AS, [Neighbor(NODE_IP, 65001, name="podfwd", hold=3)], static=BLOCKS))
        node = c.add(BgpNode(bins, "hold", NODE_IP, POD, peers=[peer_arg(BIRD_IP, BIRD_AS, hold=3, restart_time=0)]))
        before = len(check.failures)
        try:
            node.wait_established(BIRD_IP)
            check(node.wait_bgp_table(expected_from(bird)), "BIRD's blocks learned")
            # a keepalive just arrived: the hold timer starts over from about now
            bird.freeze()
            t0 = time.monotonic()
            try:
                wait_until(lambda: node.peer_state(BIRD_IP) != "established", 15, "the session to drop", interval=0.05)
                down = time.monotonic() - t0
            except TimeoutError:
                down = None
            check(down is not None and 1.5 <= down <= 6,
                  f"BIRD frozen: podfwd dropped the session after the hold time (3 s): {down}")
            gone = node.wait_bgp_table({}, seconds=5)
            total = time.monotonic() - t0
            check(gone and total <= 8, f"  ... and withdrew BIRD's routes (restart-time=0) {total:.1f} s after the freeze")
            check(all(node.installed(p)[0] == 0 for p in BLOCKS), "  ... out of the table")
            err = (node.peer(BIRD_IP) or {}).get("last_error") or ""
            check("hold" in err.lower(), f"  ... last_error says why: {err!r}")
            bird.thaw()
            node.wait_established(BIRD_IP, seconds=40)
            check(node.wait_bgp_table(expected_from(bird)), "BIRD thawed: session back, routes relearned")
        finally:
            if bird.frozen:
                bird.thaw()
            dump_on_failure(check, before, [node], [bird])


def kill_gobgpd(node):
    b = node.bgp_status()
    pid, starts = b["gobgpd_pid"], b["gobgpd_starts"]
    os.kill(pid, signal.SIGKILL)
    return pid, starts


@timed
def test_gobgpd_killed(bins):
    with Cleanup() as c:
        bird = c.add(Bird("gr", BIRD_IP, BIRD_AS, [Neighbor(NODE_IP, 65001, name="podfwd")], static=BLOCKS))
        node = c.add(BgpNode(bins, "gr", NODE_IP, POD, peers=[peer_arg(BIRD_IP, BIRD_AS)], bgp_restart_time=RESTART))
        before = len(check.failures)
        try:
            node.wait_established(BIRD_IP)
            expected = expected_from(bird)
            check(node.wait_bgp_table(expected), "BIRD's blocks learned")
            check(wait_until(lambda: bird.learned("podfwd") == {POD: NODE_IP}, 15, "BIRD to learn the pod CIDR"),
                  "BIRD learned the pod CIDR")
            ids = {p: node.installed(p)[0] for p in BLOCKS}

            # 1. kill -9: routes stay while gobgpd is down and are relearned
            pid, starts = kill_gobgpd(node)
            samples, gap, bird_kept, bad = 0, 0, [], []
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                out = node.bgp()
                table = node.bgp_table()
                samples += 1
                peer = out["peers"][0] if out["peers"] else {}
                if table != expected:
                    bad.append(table)
                up = (out["bgp"]["gobgpd_starts"] > starts and out["bgp"]["gobgpd_pid"] not in (None, pid)
                      and peer.get("state") == "established")
                if not up:
                    gap += 1
                    if gap <= 20:
                        bird_kept.append(POD in bird.learned("podfwd"))
                if up and peer.get("end_of_rib") and out["bgp"]["stale"] == 0 and table == expected:
                    break
                time.sleep(0.02)
            b = node.bgp_status()
            check(not bad and gap >= 1, f"gobgpd killed: the table kept BIRD's routes in all {samples} polls, "
                                        f"{gap} of them while gobgpd was down or resyncing (differing: {bad[:3]})")
            check(b["gobgpd_starts"] == starts + 1 and b["gobgpd_pid"] not in (None, pid) and b["stale"] == 0
                  and node.peer_state(BIRD_IP) == "established",
                  f"gobgpd restarted (starts {starts} -> {b['gobgpd_starts']}, pid {pid} -> {b['gobgpd_pid']}), "
                  f"session back, nothing stale ({b})")
            check(not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split(") ")[-1][0] == "Z",
                  f"the killed gobgpd {pid} is gone")
            check(bird_kept and all(bird_kept),
                  f"BIRD kept the pod CIDR during the restart (graceful restart negotiated): {bird_kept}")
            check(node.bgp_table() == expected and {p: node.installed(p)[0] for p in BLOCKS} == ids,
                  "relearned: the table equals BIRD's advertisements, same next-hop records")

            # 2. a block withdrawn while gobgpd is down: swept (End-of-RIB, or at the latest the restart time)
            pid, starts = kill_gobgpd(node)
            t0 = time.monotonic()
            bird.remove_static(BLOCKS[1])
            raced = node.bgp_status()["gobgpd_starts"] > starts and node.peer_state(BIRD_IP) == "established"
            expected = expected_from(bird)
            wrong = []

            def swept():
                table = node.bgp_table()
                if not (set(expected.items()) <= set(table.items()) and set(table) <= set(BLOCKS)):
                    wrong.append(table)
                return table == expected
            try:
                wait_until(swept, RESTART + 10, "the withdrawn block to be swept")
                took = time.monotonic() - t0
            except TimeoutError:
                took = None
            check(took is not None and took <= RESTART + 5,
                  f"a block BIRD withdrew during the outage{' (raced: gobgpd was back already)' if raced else ''}: "
                  f"swept after {took} s (restart time {RESTART} s)")
            check(not wrong, f"  ... the other blocks stayed throughout ({wrong[:3]})")
            check(node.installed(BLOCKS[1])[0] == 0, "  ... and it is out of the table")
            wait_until(lambda: node.peer_state(BIRD_IP) == "established" and node.bgp_status()["stale"] == 0, 20,
                       "the session back")

            # 3. gobgpd killed and BIRD's protocol disabled: no End-of-RIB ever; stale until the restart time
            pid, starts = kill_gobgpd(node)
            t0 = time.monotonic()
            bird.disable("podfwd")
            early, stale_seen = [], 0
            while time.monotonic() - t0 < RESTART - 1.5:
                table = node.bgp_table()
                if table != expected:
                    early.append((round(time.monotonic() - t0, 1), table))
                stale_seen = max(stale_seen, node.bgp_status()["stale"])
                time.sleep(0.1)
            check(not early, f"peer gone (disabled in BIRD) after gobgpd's death: routes kept (stale) for the "
                             f"restart time ({RESTART} s) ({early[:3]})")
            check(stale_seen == len(expected), f"  ... bgp.stale showed them ({stale_seen})")
            check(node.wait_bgp_table({}, seconds=10), f"  ... and swept at the restart time "
                                                         f"({time.monotonic() - t0:.1f} s after the kill)")
            bird.enable("podfwd")
            node.wait_established(BIRD_IP, seconds=30)
            check(node.wait_bgp_table(expected), "BIRD's protocol enabled: relearned")
        finally:
            dump_on_failure(check, before, [node], [bird])


@timed
def test_control_restart(bins):
    with Cleanup() as c:
        bird = c.add(Bird("rs", BIRD_IP, BIRD_AS, [Neighbor(NODE_IP, 65001, name="podfwd")], static=BLOCKS))
        node = c.add(BgpNode(bins, "rs", NODE_IP, POD, peers=[peer_arg(BIRD_IP, BIRD_AS)], bgp_restart_time=RESTART))
        before = len(check.failures)
        try:
            node.wait_established(BIRD_IP)
            expected = expected_from(bird)
            check(node.wait_bgp_table(expected), "BIRD's blocks learned")
            wait_until(lambda: bird.learned("podfwd") == {POD: NODE_IP}, 15, "BIRD to learn the pod CIDR")
            ids = {p: node.installed(p)[0] for p in BLOCKS}
            check(all(ids.values()), f"all in the table ({ids})")

            node.stop()   # SIGTERM
            kept = wait_until(lambda: (lambda s: s if s != "Established" else None)(bird.bgp_state("podfwd")), 10,
                              "BIRD to see the session go")
            check(POD in bird.learned("podfwd"),
                  f"podfwd-control stopped (SIGTERM): BIRD keeps the pod CIDR (graceful restart; state {kept})")
            bird.remove_static(BLOCKS[2])

            node.start_control()
            first = node.bgp_table()
            first_ids = {p: node.installed(p)[0] for p in BLOCKS}
            check(first == dict(expected),
                  f"started again: its first answer has every route of the previous run, the withdrawn one stale "
                  f"too ({first})")
            check(all(first_ids[p] == ids[p] for p in BLOCKS),
                  f"  ... on the same table next-hop records (not withdrawn and re-added: {ids} -> {first_ids})")
            expected = expected_from(bird)
            changed = []

            def converged():
                now = {p: node.installed(p)[0] for p in expected}
                if now != {p: ids[p] for p in expected}:
                    changed.append(now)
                return node.bgp_table() == expected
            try:
                wait_until(converged, RESTART + 15, "the table to converge", interval=0.1)
                ok = True
            except TimeoutError:
                ok = False
            check(ok, f"converged to BIRD's advertisements: {BLOCKS[2]} swept ({node.bgp_table()})")
            check(not changed, f"  ... the other blocks' next hops never changed ({changed[:3]})")
            check(node.installed(BLOCKS[2])[0] == 0, f"  ... {BLOCKS[2]} out of the table")
            node.wait_established(BIRD_IP)
            check(wait_until(lambda: bird.learned("podfwd") == {POD: NODE_IP}, 15, "BIRD's view"),
                  "BIRD has the pod CIDR from the new session")
        finally:
            dump_on_failure(check, before, [node], [bird])


if __name__ == "__main__":
    run_tests(check, test_hold_timer, test_gobgpd_killed, test_control_restart)
