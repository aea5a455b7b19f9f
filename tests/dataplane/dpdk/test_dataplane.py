#!/usr/bin/python3
"""Smoke test of podfwd-dataplane on net_pcap vdevs.

A stand-in control plane (podfwd-test-table) creates the route table; the
dataplane forwards scapy-built pcaps from port 0 (uplink) and port 1 (host)
into output pcaps. Checked: host-gw rewrite (MACs, TTL-1), IPIP encap,
delivery to the host, a no-route drop in the shared-memory counters and in
the final report, little CPU when idle, clean exit on SIGINT, and the
command-line validation (exit code 2).

Usage: test_dataplane.py PODFWD_DATAPLANE PODFWD_TEST_TABLE
Runs with Debian's /usr/bin/python3 (it has scapy).
"""
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import ARP, Ether

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "dataplane", "app"))
from stats_reader import ACTIONS, DROPS, STATE_RUNNING, read_stats, wait_for  # noqa: E402
from scapy.utils import rdpcap, wrpcap

DATAPLANE, TABLE_HELPER = sys.argv[1], sys.argv[2]

NODE_IP = "192.168.1.1"
NODE_MAC = "02:00:00:00:01:01"
HOST_MAC = "02:00:00:00:00:01"
PEER_MAC = "02:00:00:00:09:09"          # whoever sent us the frames on the uplink
GW_NODE, GW_MAC = "192.168.1.2", "02:00:00:00:02:02"
IPIP_NODE, IPIP_MAC = "192.168.1.3", "02:00:00:00:03:03"

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


# --no-huge needs legacy memory, which --in-memory refuses: a file prefix of
# our own keeps concurrent instances apart instead (removed at exit).
EAL_PREFIX = f"podfwd-test-{os.getpid()}"


def eal_args(tmp, uplink_rx, host_rx):
    return ["--no-pci", "--no-huge", "--no-shconf", "--file-prefix", EAL_PREFIX, "-m", "256", "-l", "0",
            "--log-level=lib.eal:warning",
            f"--vdev=net_pcap0,rx_pcap={uplink_rx},tx_pcap={tmp}/up_out.pcap",
            f"--vdev=net_pcap1,rx_pcap={host_rx},tx_pcap={tmp}/host_out.pcap"]


def app_args(table, host_port=1):
    return ["--node-ip", NODE_IP, "--node-mac", NODE_MAC, "--host-mac", HOST_MAC, "--table", table,
            "--uplink-port", "0", "--host-port", str(host_port)]


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")   # utime + stime


def stop(proc, timeout=10):
    """SIGINT, then the exit code (killing the process if it hangs)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return None


def write_inputs(tmp):
    l2 = Ether(dst=NODE_MAC, src=PEER_MAC)
    uplink = [
        l2 / IP(src="10.244.9.1", dst="10.244.1.5", ttl=64) / UDP(sport=1000 + i, dport=80) / ("x" * 20)
        for i in range(3)
    ]
    uplink.append(l2 / IP(src="10.244.9.1", dst="8.8.8.8", ttl=64) / UDP() / "no route")
    uplink.append(l2 / IP(src="10.244.9.1", dst="10.244.0.7", ttl=64) / UDP() / "to a local pod")
    uplink.append(l2 / IP(src="10.244.9.1", dst="10.244.2.9", ttl=64) / UDP() / "to an ipip node")
    host = [Ether(dst=NODE_MAC, src=HOST_MAC) / IP(src="10.244.0.7", dst="10.244.1.6", ttl=10) / UDP() / "pod out"]
    wrpcap(f"{tmp}/in.pcap", uplink)
    wrpcap(f"{tmp}/host_in.pcap", host)
    return len(uplink), len(host)


def start_table(table, started):
    helper = subprocess.Popen(
        [TABLE_HELPER, table,
         f"10.244.1.0/24=host_gw,node={GW_NODE},mac={GW_MAC}",
         f"10.244.2.0/24=ipip,node={IPIP_NODE},mac={IPIP_MAC}",
         "10.244.0.0/24=local"],
        stdout=subprocess.PIPE, text=True)
    started.append(helper)
    ready, _, _ = select.select([helper.stdout], [], [], 10)
    line = helper.stdout.readline() if ready else ""
    if not line.startswith("ready"):
        raise RuntimeError(f"table helper did not get ready: {line!r}")
    return helper


def test_validation(tmp):
    empty = f"{tmp}/empty.pcap"
    wrpcap(empty, [], linktype=1)   # Ethernet; an empty list has no packet to infer it from

    def run(eal, app):
        return subprocess.run([DATAPLANE, *eal, "--", *app], capture_output=True, text=True, timeout=30)

    r = run([], ["--node-ip", "10.0.0.300"])
    check(r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "node-ip" in r.stderr,
          f"bad IP: exit 2, one line ({r.returncode}: {r.stderr.strip()})")
    r = run([], ["--node-ip", "10.0.0.1", "--host-mac", "02:00:00:00:00"])
    check(r.returncode == 2 and "host-mac" in r.stderr, f"bad MAC: exit 2 ({r.stderr.strip()})")
    r = run([], ["--node-ip", "10.0.0.1", "--uplink-port", "1", "--host-port", "1"])
    check(r.returncode == 2, f"same port for both roles: exit 2 ({r.stderr.strip()})")
    for option, value in (("--icmp-rate", "-1"), ("--icmp-burst", "1000001"), ("--icmp-rate", "fast")):
        r = run([], ["--node-ip", "10.0.0.1", option, value])
        check(r.returncode == 2 and option[2:] in r.stderr and r.stderr.strip().count("\n") == 0,
              f"{option} {value}: exit 2, one line ({r.returncode}: {r.stderr.strip()})")
    r = run([], ["--help"])
    check(r.returncode == 0 and "--icmp-rate" in r.stdout and "(=1000)" in r.stdout and "(=100)" in r.stdout,
          "--help lists --icmp-rate and --icmp-burst with the exception path's defaults")
    with open(f"{tmp}/bad.conf", "w") as f:
        f.write("node-ip = 10.0.0.1\nuplink-port = 3\nhost-port = 3\n")
    r = run([], ["--config", f"{tmp}/bad.conf"])
    check(r.returncode == 2 and "both 3" in r.stderr, f"options read from --config ({r.stderr.strip()})")
    r = run(eal_args(tmp, empty, empty), app_args("unused", host_port=5))
    check(r.returncode == 2 and "no such DPDK port" in r.stderr.splitlines()[-1],
          f"missing port: exit 2 ({r.returncode}: {r.stderr.strip().splitlines()[-1:]})")


def test_wait_for_table(tmp, started):
    """Without a table: one log line, then a clean exit on SIGINT."""
    empty = f"{tmp}/empty.pcap"
    log_path = f"{tmp}/wait.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([DATAPLANE, *eal_args(tmp, empty, empty), "--",
                                 *app_args(f"podfwd-absent-{os.getpid()}")], stdout=log, stderr=subprocess.STDOUT)
    started.append(proc)

    def logged():
        with open(log_path) as f:
            return "waiting for the route table" in f.read() or proc.poll() is not None
    wait_for(logged, 20, "the waiting message")
    check(proc.poll() is None, "keeps waiting for the table")
    rc = stop(proc)
    with open(log_path) as f:
        text = f.read()
    check(rc == 0, f"SIGINT while waiting: exit 0 (got {rc})")
    check(text.count("polling every") == 1, "the wait is logged once, not per poll")


def test_forwarding(tmp, started, segments):
    table = f"podfwd-test-{os.getpid()}"
    segments.append(f"/dev/shm/{table}")
    n_uplink, n_host = write_inputs(tmp)
    start_table(table, started)

    out = open(f"{tmp}/dataplane.log", "w+")
    proc = subprocess.Popen([DATAPLANE, *eal_args(tmp, f"{tmp}/in.pcap", f"{tmp}/host_in.pcap"), "--",
                             *app_args(table)], stdout=out, stderr=subprocess.STDOUT)
    started.append(proc)
    stats_path = f"/dev/shm/{table}.stats.{proc.pid}"
    segments.append(stats_path)

    def consumed():
        if proc.poll() is not None:
            raise RuntimeError(f"dataplane exited early ({proc.returncode})")
        s = read_stats(stats_path)
        # The counters are live: a burst's RX is counted before its TX, so
        # wait for every expected frame to have left (or been dropped) too.
        done = s and s["state"] == STATE_RUNNING and s["rx"] == [n_uplink, n_host] \
            and sum(s["tx"]) + sum(s["tx_dropped"]) >= 7
        return s if done else None

    try:
        stats = wait_for(consumed, 30, "the dataplane to receive and send every packet")
    except (TimeoutError, RuntimeError) as e:
        out.seek(0)
        print(out.read())
        raise
    check(stats["n_actions"] == len(ACTIONS) and stats["n_drops"] == len(DROPS), "counter layout as expected")
    drops = dict(zip(DROPS, stats["drops"]))
    actions = dict(zip(ACTIONS, stats["actions"]))
    check(drops["no_route"] == 1, f"no-route packet counted in shared memory ({drops['no_route']})")
    check(sum(stats["drops"]) == 1, "no other drop")
    check(actions["host_gw"] == 4 and actions["ipip_encap"] == 1 and actions["to_host"] == 1,
          f"actions {actions}")
    # The sixth uplink frame is the resolver's announcement at start (every
    # next hop here has its MAC: no other ARP).
    check(actions["arp_request"] == 1, f"one ARP frame sent: the announcement ({actions['arp_request']})")
    check(stats["tx"] == [6, 1] and stats["tx_dropped"] == [0, 0], f"tx per role {stats['tx']}")

    # Idle: the input is consumed; the loop should be sleeping.
    before = cpu_seconds(proc.pid)
    time.sleep(1.0)   # a measurement window, not a wait for an event
    used = cpu_seconds(proc.pid) - before
    check(used < 0.3, f"idle CPU {used:.2f} s over 1 s")

    rc = stop(proc)
    out.seek(0)
    log = out.read()
    check(rc == 0, f"SIGINT: exit 0 (got {rc})")
    check("drop no_route 1" in log and "action host_gw 4" in log, "final counters printed by name")
    check(not os.path.exists(stats_path), "counters segment unlinked at exit")
    if failures:
        print(log)

    up = rdpcap(f"{tmp}/up_out.pcap")
    host = rdpcap(f"{tmp}/host_out.pcap")
    check(len(up) == 6 and len(host) == 1, f"{len(up)} frames out of the uplink, {len(host)} to the host")
    # RFC 5227 2.3: an ARP request with sender and target both the node IP,
    # broadcast, target MAC zero.
    garp = [p for p in up if ARP in p]
    check(len(garp) == 1 and garp[0][Ether].dst == "ff:ff:ff:ff:ff:ff" and garp[0][ARP].op == 1 and
          garp[0][ARP].psrc == NODE_IP and garp[0][ARP].pdst == NODE_IP and garp[0][ARP].hwsrc == NODE_MAC and
          garp[0][ARP].hwdst == "00:00:00:00:00:00" and garp[0][Ether].src == NODE_MAC,
          f"gratuitous ARP announcement first: {garp[0].summary() if garp else None}")
    check(len(up) >= 1 and ARP in up[0], "the announcement is the first frame out")
    gw = [p for p in up if IP in p and p[IP].proto == 17]
    check(len(gw) == 4, "four host-gw frames on the uplink")
    for p in gw:
        check(p[Ether].dst == GW_MAC and p[Ether].src == NODE_MAC, f"host-gw MACs {p[Ether].src} -> {p[Ether].dst}")
        expected_ttl = 9 if p[IP].src == "10.244.0.7" else 63
        check(p[IP].ttl == expected_ttl, f"host-gw TTL {p[IP].ttl} == {expected_ttl}")
        check(p[IP].chksum == _fresh_checksum(p), "host-gw IPv4 checksum valid")
    ipip = [p for p in up if IP in p and p[IP].proto == 4]
    check(len(ipip) == 1 and ipip[0][IP].src == NODE_IP and ipip[0][IP].dst == IPIP_NODE and
          ipip[0][Ether].dst == IPIP_MAC, "IPIP frame to the next hop's node")
    check(host[0][Ether].dst == HOST_MAC and host[0][IP].dst == "10.244.0.7", "local pod's packet to the host MAC")


def test_two_lcores(tmp, started, segments):
    """Two forwarding lcores, one queue pair each: net_null receives on both
    queues (all-zero frames on the uplink: unicast to 00:00:00:00:00:00, not
    the node MAC, so dropped as not_for_us), and every lcore counts in
    its own slot of the counters segment."""
    table = f"podfwd-test-2l-{os.getpid()}"
    segments.append(f"/dev/shm/{table}")
    start_table(table, started)
    eal = ["--no-pci", "--no-huge", "--no-shconf", "--file-prefix", EAL_PREFIX, "-m", "256", "-l", "0,1",
           "--log-level=lib.eal:warning", "--vdev=net_null0,size=64", "--vdev=net_null1,no-rx=1"]
    out = open(f"{tmp}/two_lcores.log", "w+")
    proc = subprocess.Popen([DATAPLANE, *eal, "--", *app_args(table)], stdout=out, stderr=subprocess.STDOUT)
    started.append(proc)
    stats_path = f"/dev/shm/{table}.stats.{proc.pid}"
    segments.append(stats_path)

    def both_busy():
        if proc.poll() is not None:
            raise RuntimeError(f"dataplane exited early ({proc.returncode})")
        s = read_stats(stats_path)
        return s if s and s["lcores"] == 2 and all(rx > 1000 for rx in s["lcore_rx"]) else None
    try:
        stats = wait_for(both_busy, 30, "both lcores to receive")
    except (TimeoutError, RuntimeError):
        out.seek(0)
        print(out.read())
        raise
    check(stats["lcores"] == 2 and min(stats["lcore_rx"]) > 1000, f"two lcores receive: {stats['lcore_rx']}")
    # The uplink's one frame: the announcement.
    check(stats["drop_by_name"]["not_for_us"] > 0 and stats["tx"] == [1, 0],
          f"zero frames dropped as not for us (tx {stats['tx']})")
    rc = stop(proc)
    check(rc == 0, f"two lcores: SIGINT exit 0 (got {rc})")


def test_held_after_decap(tmp, started, segments):
    """A packet decapsulated here and routed on to a next hop without a MAC
    is held by the resolver, then sent once the next hop answers. The held
    mbuf must carry the inner frame's bounds: rebuilt from the mbuf as it
    was received, the packet would be looked up by its outer destination
    (the node IP: no route here)."""
    table = f"podfwd-test-held-{os.getpid()}"
    segments.append(f"/dev/shm/{table}")
    helper = subprocess.Popen(
        [TABLE_HELPER, table, f"10.244.1.0/24=host_gw,node={GW_NODE}",   # no MAC: to resolve
         f"10.244.2.0/24=ipip,node={IPIP_NODE},mac={IPIP_MAC}"],        # the IPIP sender is a known node
        stdout=subprocess.PIPE, text=True)
    started.append(helper)
    if not helper.stdout.readline().startswith("ready"):
        raise RuntimeError("table helper did not get ready")
    l2 = Ether(dst=NODE_MAC, src=PEER_MAC)
    inner = IP(src="10.244.2.9", dst="10.244.1.5", ttl=64) / UDP(sport=4242, dport=80) / ("held" * 5)
    uplink = [l2 / IP(src=IPIP_NODE, dst=NODE_IP) / inner,
              Ether(dst=NODE_MAC, src=GW_MAC) / ARP(op=2, hwsrc=GW_MAC, psrc=GW_NODE, hwdst=NODE_MAC, pdst=NODE_IP)]
    wrpcap(f"{tmp}/held_in.pcap", uplink)
    wrpcap(f"{tmp}/held_host.pcap", [], linktype=1)
    out = open(f"{tmp}/held.log", "w+")
    eal = ["--no-pci", "--no-huge", "--no-shconf", "--file-prefix", EAL_PREFIX + "-held", "-m", "256", "-l", "0",
           "--log-level=lib.eal:warning",
           f"--vdev=net_pcap0,rx_pcap={tmp}/held_in.pcap,tx_pcap={tmp}/held_up.pcap",
           f"--vdev=net_pcap1,rx_pcap={tmp}/held_host.pcap,tx_pcap={tmp}/held_host_out.pcap"]
    proc = subprocess.Popen([DATAPLANE, *eal, "--", *app_args(table)], stdout=out, stderr=subprocess.STDOUT)
    started.append(proc)
    stats_path = f"/dev/shm/{table}.stats.{proc.pid}"
    segments.append(stats_path)

    def sent():
        if proc.poll() is not None:
            raise RuntimeError(f"dataplane exited early ({proc.returncode})")
        s = read_stats(stats_path)
        return s if s and s["state"] == STATE_RUNNING and s["action_by_name"]["held_sent"] >= 1 else None

    try:
        stats = wait_for(sent, 30, "the held packet to be sent")
        # SIGHUP (a closed terminal, a supervisor) ends it as cleanly as
        # SIGINT: ports stopped, final counters, segments removed.
        proc.send_signal(signal.SIGHUP)
        rc = proc.wait(10)
        out.seek(0)
        log = out.read()
        check(rc == 0 and "final counters" in log, f"SIGHUP: exit 0 with the final counters (got {rc})")
        check(not os.path.exists(stats_path) and not os.path.exists(f"/dev/shm/{table}.neigh.{proc.pid}"),
              "SIGHUP: counters and neighbour segments removed")
    except (TimeoutError, RuntimeError):
        out.seek(0)
        print(out.read())
        raise
    finally:
        stop(proc)
        shutil.rmtree(f"/var/run/dpdk/{EAL_PREFIX}-held", ignore_errors=True)
    drops = {k: v for k, v in stats["drop_by_name"].items() if v}
    check(not drops and stats["action_by_name"]["host_gw"] == 1,
          f"held after decapsulation, then forwarded host-gw, no drop ({drops})")
    frames = [p for p in rdpcap(f"{tmp}/held_up.pcap") if IP in p]
    check(len(frames) == 1 and frames[0][Ether].dst == GW_MAC and frames[0][IP].dst == "10.244.1.5" and
          frames[0][IP].src == "10.244.2.9" and frames[0][IP].ttl == 63 and frames[0][IP].proto == 17 and
          bytes(frames[0][UDP].payload) == b"held" * 5,
          f"the inner packet out to the MAC the next hop answered with ({[f.summary() for f in frames]})")


def test_truncated_table(tmp, started, segments):
    """The route table's file truncated under a forwarding dataplane (a bug,
    another process): the lcores' lookups fault past the file's new end. The
    dataplane must not die of SIGBUS: it notices, says so, and exits 1 for its
    supervisor to restart it."""
    table = f"podfwd-test-trunc-{os.getpid()}"
    segments.append(f"/dev/shm/{table}")
    start_table(table, started)
    # Endless traffic to a pod network: every frame is looked up.
    wrpcap(f"{tmp}/trunc_in.pcap", [Ether(dst=NODE_MAC, src=PEER_MAC) /
                                    IP(src="10.244.2.9", dst="10.244.1.5") / UDP(sport=1, dport=2) / "x"])
    eal = ["--no-pci", "--no-huge", "--no-shconf", "--file-prefix", EAL_PREFIX + "-trunc", "-m", "256", "-l", "0",
           "--log-level=lib.eal:warning",
           f"--vdev=net_pcap0,rx_pcap={tmp}/trunc_in.pcap,infinite_rx=1,tx_pcap=/dev/null",
           "--vdev=net_null0,no-rx=1"]
    out = open(f"{tmp}/trunc.log", "w+")
    proc = subprocess.Popen([DATAPLANE, *eal, "--", *app_args(table)], stdout=out,
                            stderr=subprocess.STDOUT)
    started.append(proc)
    stats_path = f"/dev/shm/{table}.stats.{proc.pid}"
    segments.append(stats_path)

    def forwarding():
        if proc.poll() is not None:
            raise RuntimeError(f"dataplane exited early ({proc.returncode})")
        s = read_stats(stats_path)
        return s if s and s["state"] == STATE_RUNNING and s["action_by_name"]["host_gw"] > 1000 else None

    try:
        wait_for(forwarding, 30, "the dataplane to forward")
        os.truncate(f"/dev/shm/{table}", 4096)
        rc = proc.wait(10)
    except (TimeoutError, RuntimeError, subprocess.TimeoutExpired):
        out.seek(0)
        print(out.read())
        raise
    finally:
        stop(proc)
        shutil.rmtree(f"/var/run/dpdk/{EAL_PREFIX}-trunc", ignore_errors=True)
    out.seek(0)
    log = out.read()
    check(rc == 1, f"truncated table: exit 1, not SIGBUS (got {rc})")
    check("truncated under the dataplane" in log and "final counters" in log,
          "truncated table: said so, then the final counters")


def _fresh_checksum(p):
    ip = IP(bytes(p[IP]))
    ip.chksum = None
    return IP(bytes(ip)).chksum


def main():
    started, segments = [], []
    with tempfile.TemporaryDirectory(prefix="podfwd-dp-") as tmp:
        try:
            test_validation(tmp)
            test_wait_for_table(tmp, started)
            test_forwarding(tmp, started, segments)
            test_two_lcores(tmp, started, segments)
            test_held_after_decap(tmp, started, segments)
            test_truncated_table(tmp, started, segments)
        except Exception as e:   # noqa: BLE001 - report and clean up
            failures.append(f"{type(e).__name__}: {e}")
            print(f"FAIL {type(e).__name__}: {e}", flush=True)
        finally:
            for proc in started:        # only what this test started, by PID
                if proc.poll() is None:
                    stop(proc, timeout=5)
            for path in segments:
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
            shutil.rmtree(f"/var/run/dpdk/{EAL_PREFIX}", ignore_errors=True)
    if failures:
        print(f"{len(failures)} failure(s)")
        return 1
    print("all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
