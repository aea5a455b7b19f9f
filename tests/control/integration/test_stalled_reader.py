#!/usr/bin/python3
"""A stalled table reader (registered, online, then SIGSTOPped, as a stopped
dataplane lcore would be) must not freeze podfwd-control: under route churn
through podfwdctl every command answers promptly (the writer waits for the
reader once, not per operation), `podfwdctl status` names the stalled
reader, a change the table cannot take leaves the previous route installed,
and after SIGCONT everything converges: the stall is forgotten and every
route is installed.

Usage: test_stalled_reader.py PODFWD_CONTROL TABLE_READER PODFWDCTL"""
import signal
import subprocess
import sys
import time

from lab import Checks, Lab, wait_for

FLAP = [f"10.250.{i}.1/32" for i in range(8)]
VIAS = ("10.168.0.3", "10.168.0.4")
RECLAIM_TIMEOUT_S = 2.0   # TableWriter::Options' default, which podfwd-control uses

check = Checks()


def table_health(lab):
    return lab.ctl_json("status")["table_health"]


def main():
    bins = {"control": sys.argv[1], "ctl": sys.argv[3]}
    reader_bin = sys.argv[2]
    # A small tbl8 pool (2 * 16 + 1 groups, a tenth kept back): each changed
    # /32 copies its group, which the stalled reader then pins.
    lab = Lab(bins, "stall", dataplane=False, control_args=["--max-groups", "16", "--max-routes", "1024"])
    reader = None
    try:
        reader = subprocess.Popen([reader_bin, lab.table], stdout=subprocess.PIPE, text=True)
        line = reader.stdout.readline()
        check(line.startswith("ready "), f"the table reader registered ({line.strip()!r})")
        slot = int(line.split()[1])
        for prefix in FLAP:
            rc, _, err = lab.ctl("route", "add", prefix, "via", VIAS[0], "mode", "ipip")
            check(rc == 0, f"route add {prefix}: {err.strip()}")
        check(table_health(lab)["stalled_reader"] is None, "no stalled reader while it passes quiescent states")

        reader.send_signal(signal.SIGSTOP)
        slow, failed, last_ok = 0, 0, {p: VIAS[0] for p in FLAP}
        for i in range(120):
            prefix, via = FLAP[i % len(FLAP)], VIAS[(i // len(FLAP) + 1) % 2]
            start = time.monotonic()
            rc, _, err = lab.ctl("route", "add", prefix, "via", via, "mode", "ipip")
            took = time.monotonic() - start
            slow += took > RECLAIM_TIMEOUT_S / 2
            check(took < RECLAIM_TIMEOUT_S * 2, f"route add {prefix} answered in {took:.2f} s")
            if rc == 0:
                last_ok[prefix] = via
            else:
                failed += 1
                if failed == 1:
                    check("capacity" in err or "pinned" in err, f"a refused change says why: {err.strip()}")
        check(slow <= 1, f"at most one command waited for the stalled reader ({slow} did)")
        check(failed > 0, f"the pinned pool ran dry ({failed} changes refused)")

        health = table_health(lab)
        stalled = health["stalled_reader"]
        check(stalled is not None and stalled["pid"] == reader.pid and stalled["slot"] == slot,
              f"status names the stalled reader pid {reader.pid} slot {slot}: {stalled}")
        rc, out, _ = lab.ctl("status")
        check(f"reader pid {reader.pid} (slot {slot}) stalled for" in out, "podfwdctl status shows the stall line")
        check(health["reserve_used_pct"] > 0, f"the reserve was used ({health['reserve_used_pct']}%)")
        print(out, flush=True)
        for prefix in FLAP:
            got = lab.request({"op": "route.get", "ip": prefix.split("/")[0]})
            check(got["table_nexthop"] != 0, f"{prefix} still has a route in the table during the stall")

        reader.send_signal(signal.SIGCONT)

        def converged():
            h = table_health(lab)
            routes = lab.routes()
            installed = all(routes[(p, "cli")]["installed"] for p in FLAP)
            return h["stalled_reader"] is None and installed
        try:
            wait_for(converged, 20, "the stall to clear and every route to be installed")
            check(True, "after SIGCONT the stall is forgotten and every route installed")
        except TimeoutError as e:
            check(False, str(e))
        routes = lab.routes()
        for prefix in FLAP:
            check(routes[(prefix, "cli")]["via"] in VIAS, f"{prefix} is installed via {routes[(prefix, 'cli')]['via']}")
    finally:
        if reader is not None and reader.poll() is None:
            reader.send_signal(signal.SIGCONT)
            reader.kill()
            reader.wait(10)
        lab.close()
    check.exit()


if __name__ == "__main__":
    main()
