#!/usr/bin/python3
"""kill -9 podfwd-control under route churn while traffic flows: the
dataplane keeps forwarding on the table as it was (zero packets lost or
mis-forwarded), and the restarted daemon reconciles the table to its sources
without withdrawing the unchanged routes (same next-hop records).

Usage: test_restart.py PODFWD_CONTROL PODFWD_DATAPLANE PODFWDCTL"""
import itertools
import select
import socket
import sys
import threading
import time

from lab import Checks, Lab, binaries, enter_private_netns, wait_for
from scapy.layers.inet import IP
from scapy.layers.l2 import Ether

STABLE = [f"10.244.{i}.0/24" for i in range(10, 26)]
NODE_B_MAC = "02:00:00:00:00:03"
STATIC = "".join(f"route {p} via 10.168.0.3 mode host-gw\n" for p in STABLE) + f"neigh 10.168.0.3 {NODE_B_MAC}\n"
PACKETS = 12000
RATE = 4000   # packets/s: below what the taps carry on a loaded 2-core machine

check = Checks()


def churn(lab, stop, acked, uncertain):
    """CLI routes added and removed as fast as the daemon answers, through
    its death and restart. `acked` records each prefix's state as the daemon
    last confirmed it; a request cut off by the kill leaves its prefix
    `uncertain` (it may or may not have been applied and saved)."""
    for i in itertools.count():
        if stop.is_set():
            break
        prefix = f"10.245.{i % 64}.0/24"
        add = (i // 64) % 2 == 0
        op = {"op": "route.add", "prefix": prefix, "via": "10.168.0.4", "mode": "ipip"} if add \
            else {"op": "route.del", "prefix": prefix}
        try:
            response = lab.request(op)
        except (ConnectionRefusedError, FileNotFoundError):
            time.sleep(0.005)   # the daemon is down (never got the request): retry soon, bounded by stop
            continue
        except (OSError, ValueError):
            uncertain.add(prefix)   # sent, but the answer died with the daemon
            continue
        if response["ok"] or response.get("code") == "not_found":
            acked[prefix] = add


def capture(sock, stop, frames):
    while not stop.is_set() or select.select([sock], [], [], 0)[0]:
        if select.select([sock], [], [], 0.05)[0]:
            frames.append(sock.recv(65535))


def main():
    enter_private_netns()
    lab = Lab(binaries(sys.argv), "restart", STATIC)
    try:
        lab.up.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)   # SO_RCVBUFFORCE (not in Python's socket module)
        ids_before = {p: lab.routes()[(p, "static")]["nexthop_id"] for p in STABLE}
        stats_before = lab.stats()
        frames, acked, uncertain = [], {}, set()
        stop_churn, stop_capture = threading.Event(), threading.Event()
        churner = threading.Thread(target=churn, args=(lab, stop_churn, acked, uncertain))
        catcher = threading.Thread(target=capture, args=(lab.up, stop_capture, frames))
        catcher.start()
        churner.start()

        templates = [bytes(lab.pod_packet(p.replace(".0/24", f".{1 + n % 200}"), f"r{n}"))
                     for n, p in enumerate(STABLE * 8)]
        start = time.monotonic()
        killed_at = restarted_at = None
        for n in range(PACKETS):
            lab.send_from_host(templates[n % len(templates)])
            elapsed = time.monotonic() - start
            if killed_at is None and n >= PACKETS // 3:
                lab.kill_control()   # SIGKILL, mid-churn
                killed_at = n
            if killed_at is not None and restarted_at is None and n >= PACKETS // 2:
                lab.start_control()
                restarted_at = n
            ahead = n / RATE - (time.monotonic() - start)
            if ahead > 0:
                time.sleep(ahead)
        print(f"sent {PACKETS} packets in {elapsed:.1f} s; control killed at packet {killed_at}, "
              f"restarted at {restarted_at}; churn touched {len(acked)} prefixes")
        stop_churn.set()
        churner.join()

        def all_in():
            s = lab.stats()
            return s if s["rx"][1] - stats_before["rx"][1] >= PACKETS else None
        stats = wait_for(all_in, 30, "the dataplane to receive every packet")
        wait_for(lambda: sum(1 for f in frames if b"probe r" in f) >= PACKETS - stats["tx_dropped"][0], 10,
                 "the forwarded packets on the uplink")
        stop_capture.set()
        catcher.join()

        delta = {k: stats["drop_by_name"][k] - stats_before["drop_by_name"][k] for k in stats["drop_by_name"]}
        hostgw = stats["action_by_name"]["host_gw"] - stats_before["action_by_name"]["host_gw"]
        check(sum(delta.values()) == 0, f"no packet dropped ({ {k: v for k, v in delta.items() if v} })")
        check(hostgw == PACKETS, f"every packet forwarded host-gw ({hostgw} of {PACKETS})")
        probes = [Ether(f) for f in frames if b"probe r" in f]
        wrong = [p for p in probes if p.dst != NODE_B_MAC or p[IP].ttl != 19 or not p[IP].dst.startswith("10.244.")]
        check(not wrong, f"no packet mis-forwarded ({len(wrong)} wrong of {len(probes)} captured)")
        check(len(probes) + stats["tx_dropped"][0] >= PACKETS,
              f"every packet left on the uplink ({len(probes)} captured, {stats['tx_dropped'][0]} tx drops)")

        after = lab.routes()
        check(all(after[(p, "static")]["nexthop_id"] == ids_before[p] for p in STABLE),
              "the restarted daemon kept every unchanged route's next-hop record")
        disagree = []
        for (prefix, source), r in after.items():
            if not r["best"]:
                continue
            addr = prefix.split("/")[0]
            got = lab.request({"op": "route.get", "ip": addr})
            if got["table_nexthop"] != r["nexthop_id"]:
                disagree.append(prefix)
        check(not disagree, f"table reconciled with the RIB after restart ({disagree[:5]})")
        present = {p for (p, s) in after if s == "cli"}
        lost = [p for p, add in acked.items() if (p in present) != add and p not in uncertain]
        check(acked and not lost, f"every confirmed CLI change survived the restart ({len(present)} CLI routes; "
                                  f"{len(lost)} differ, {len(uncertain)} cut off by the kill)")
    finally:
        lab.close()
    check.exit()


if __name__ == "__main__":
    main()
