#!/usr/bin/python3
"""podfwd-control's BGP source against BIRD 2 (eBGP): the session
establishes (bgp.peers and BIRD's `show protocols`), BIRD's /26 and /32
blocks become routes of source bgp in the table (route.get's
table_nexthop), podfwd's pod CIDR reaches BIRD with next hop the node's IP,
a block withdrawn or added in BIRD follows, a BIRD protocol disabled takes
all its routes away and enabled brings them back; `podfwdctl bgp peers`
and its --json agree.

Usage: test_bgp_bird.py PODFWD_CONTROL PODFWDCTL"""
import json
import re

from bgp_lab import (ACCEPT, NODE_AS, Bird, BgpNode, Checks, Cleanup, Neighbor, dump_on_failure, expected_from,
                     peer_arg, run_tests, timed, wait_until)

check = Checks()
BIRD_IP, BIRD_AS = "10.168.0.10", 65010
NODE_IP, POD = "10.168.0.2", "10.244.0.0/24"
BLOCKS = ["10.100.0.0/26", "10.100.0.64/26", "10.100.1.0/26", "10.100.2.5/32"]

PEER_FIELDS = {"address": str, "port": int, "remote_as": int, "passive": bool, "state": str,
               "uptime_s": (int, type(None)), "received": int, "accepted": int, "refused": int, "advertised": int,
               "end_of_rib": bool, "last_error": (str, type(None))}
BGP_FIELDS = {"asn": int, "router_id": str, "phase": str, "api": str, "gobgpd_pid": (int, type(None)),
              "gobgpd_starts": int, "routes": int, "stale": int, "refused": int, "accept": list}


def schema_errors(out):
    wrong = [f"bgp.{k}: {out['bgp'].get(k, '<missing>')!r}" for k, t in BGP_FIELDS.items()
             if not isinstance(out["bgp"].get(k, ...), t)]
    for p in out["peers"]:
        wrong += [f"peers[{p.get('address')}].{k}: {p.get(k, '<missing>')!r}" for k, t in PEER_FIELDS.items()
                  if not isinstance(p.get(k, ...), t) or (t is int and isinstance(p.get(k), bool))]
    return wrong


def text_agrees(text, peers):
    """Every peer of the JSON has a line of the text naming its address,
    its state and its received/accepted/advertised counts; returns what is missing."""
    missing = []
    lines = text.splitlines()
    for p in peers:
        line = next((l for l in lines if re.search(r"(^|\s)" + re.escape(p["address"]) + r"(\s|:|$)", l)), None)
        if line is None:
            missing.append(f"no line for {p['address']}")
            continue
        if p["state"].lower() not in line.lower():
            missing.append(f"{p['address']}: state {p['state']} not in {line!r}")
        numbers = set(re.findall(r"\b\d+\b", line))
        for k in ("remote_as", "received", "accepted", "advertised"):
            if str(p[k]) not in numbers:
                missing.append(f"{p['address']}: {k} {p[k]} not in {line!r}")
    return missing


@timed
def test_bird(bins):
    with Cleanup() as c:
        bird = c.add(Bird("b", BIRD_IP, BIRD_AS, [Neighbor(NODE_IP, NODE_AS, name="podfwd")], static=BLOCKS))
        node = c.add(BgpNode(bins, "bird", NODE_IP, POD, peers=[peer_arg(BIRD_IP, BIRD_AS)]))
        before = len(check.failures)
        try:
            node.wait_established(BIRD_IP)
            check(wait_until(lambda: bird.established("podfwd"), 10, "BIRD's side established"),
                  "session established: bgp.peers and BIRD's show protocols")
            expected = expected_from(bird)
            check(node.wait_bgp_table(expected), f"BIRD's blocks are routes of source bgp, via BIRD ({expected})")
            routes = node.bgp_routes()
            cli = node.ctl_json("route", "list", "--source", "bgp")
            cli = {r["prefix"]: r for r in (cli["routes"] if isinstance(cli, dict) else cli)}
            check(cli == routes, f"podfwdctl route list --source bgp --json: the same routes ({sorted(cli)})")
            check(all(r["effective_mode"] == "host-gw" and r["best"] and r["installed"] for r in routes.values()),
                  "next hop on the uplink: host-gw, best, installed "
                  f"({[(p, r['effective_mode'], r['best'], r['installed']) for p, r in routes.items()]})")
            for p in BLOCKS:
                nh, r = node.installed(p)
                check(nh not in (0, None) and r and r["source"] == "bgp" and r["prefix"] == p
                      and nh == r.get("nexthop_id"), f"route.get {p}: the bgp route, table_nexthop {nh} != 0")
            nh, r = node.installed("10.100.3.0/26")
            check(nh == 0 and (r is None or r["source"] != "bgp"), f"route.get 10.100.3.0: no route ({nh}, {r})")

            check(wait_until(lambda: bird.learned("podfwd") == {POD: NODE_IP}, 15, "BIRD to learn the pod CIDR"),
                  f"BIRD learned the pod CIDR {POD} with next hop {NODE_IP}")
            r = bird.routes("podfwd").get(POD) or {}
            check(r.get("as_path") == str(NODE_AS) and r.get("from") == NODE_IP,
                  f"  ... from {NODE_IP}, AS path {NODE_AS} ({r})")

            out = wait_until(lambda: (lambda o: o if o["peers"] and o["peers"][0]["end_of_rib"] else None)(node.bgp()),
                             10, "End-of-RIB from BIRD")
            check(schema_errors(out) == [], f"bgp.peers: every field of the spec ({schema_errors(out)})")
            b, p = out["bgp"], out["peers"][0]
            check(b["asn"] == NODE_AS and b["router_id"] == NODE_IP and b["phase"] == "up"
                  and b["gobgpd_starts"] == 1 and b["gobgpd_pid"] and b["routes"] == len(BLOCKS)
                  and b["stale"] == 0 and b["refused"] == 0 and b["accept"] == [ACCEPT],
                  f"bgp: asn, router id = node IP, up, one gobgpd, routes {len(BLOCKS)}, accept ({b})")
            check(p["address"] == BIRD_IP and p["port"] == 179 and p["remote_as"] == BIRD_AS and not p["passive"]
                  and p["state"] == "established" and isinstance(p["uptime_s"], int) and p["uptime_s"] >= 0
                  and p["received"] == len(BLOCKS) and p["accepted"] == len(BLOCKS) and p["refused"] == 0
                  and p["end_of_rib"], f"peer: BIRD, established, counters ({p})")
            got = bird.learned("podfwd")
            check(p["advertised"] == len(got) == 1,
                  f"peer: advertised = what BIRD received from us ({p['advertised']}, BIRD: {got})")
            src = node.source("bgp")
            check(src["enabled"] and src["state"] == "up" and src["routes"] == len(BLOCKS) and src["detail"],
                  f"sources: bgp up, {len(BLOCKS)} routes, a detail ({src})")

            rc, text, err = node.ctl("bgp", "peers")
            rcj, js, errj = node.ctl("--json", "bgp", "peers")
            try:
                parsed = json.loads(js)
            except ValueError:
                parsed = None
            check(rc == 0 and rcj == 0 and parsed is not None and parsed.get("peers"),
                  f"podfwdctl bgp peers: exit 0, --json parses ({rc}, {rcj}, {err.strip()} {errj.strip()})")
            if parsed:
                missing = text_agrees(text, parsed["peers"])
                check(missing == [] and [q["address"] for q in parsed["peers"]] == [BIRD_IP],
                      f"podfwdctl bgp peers: text and --json agree ({missing})\n{text}")

            # withdraw one block, add another
            bird.remove_static("10.100.0.64/26")
            check(node.wait_bgp_table(expected_from(bird)), "a block withdrawn in BIRD: its route gone")
            nh, _ = node.installed("10.100.0.64/26")
            check(nh == 0, f"  ... and out of the table (table_nexthop {nh})")
            bird.add_static("10.100.9.0/26")
            check(node.wait_bgp_table(expected_from(bird)), "a block added in BIRD: its route appears")
            nh, _ = node.installed("10.100.9.0/26")
            check(nh not in (0, None), f"  ... in the table (table_nexthop {nh})")

            # the protocol disabled (BIRD sends a Cease): every route of it goes
            bird.disable("podfwd")
            check(node.wait_bgp_table({}), "BIRD's protocol disabled: all its routes gone")
            try:   # (bgp.peers' states are polled from gobgpd: they may trail the routes a little)
                down = wait_until(lambda: (lambda p: p if p["state"] != "established" else None)(node.peer(BIRD_IP)),
                                  10, "the session down in bgp.peers")
            except TimeoutError as e:
                down = str(e)
            check(isinstance(down, dict) and down["last_error"], f"  ... session down, last_error says so ({down})")
            check(all(node.installed(p)[0] == 0 for p in BLOCKS), "  ... and out of the table")
            bird.enable("podfwd")
            node.wait_established(BIRD_IP)
            check(node.wait_bgp_table(expected_from(bird)), "enabled again: the routes are back")
            check(wait_until(lambda: bird.learned("podfwd") == {POD: NODE_IP}, 15, "BIRD to relearn the pod CIDR"),
                  "  ... and BIRD has the pod CIDR again")
        finally:
            dump_on_failure(check, before, [node], [bird])


if __name__ == "__main__":
    run_tests(check, test_bird)
