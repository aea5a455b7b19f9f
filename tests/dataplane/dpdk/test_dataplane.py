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
import contextlib
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

ROUTES = [f"10.244.1.0/24=host_gw,node={GW_NODE},mac={GW_MAC}",
          f"10.244.2.0/24=ipip,node={IPIP_NODE},mac={IPIP_MAC}",
          "10.244.0.0/24=local"]


def eal_args(vdevs, file_prefix=EAL_PREFIX, lcores="0"):
    return ["--no-pci", "--no-huge", "--no-shconf", "--file-prefix", file_prefix, "-m", "256", "-l", lcores,
            "--log-level=lib.eal:warning", *(f"--vdev={vdev}" for vdev in vdevs)]


def pcap_ports(tmp, uplink_rx, host_rx, tag=""):
    """Port 0 (uplink) and port 1 (host) on pcap files, sending into
    {tmp}/{tag}up_out.pcap and {tmp}/{tag}host_out.pcap."""
    return [f"net_pcap0,rx_pcap={uplink_rx},tx_pcap={tmp}/{tag}up_out.pcap",
            f"net_pcap1,rx_pcap={host_rx},tx_pcap={tmp}/{tag}host_out.pcap"]


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


def start_table(table, started, segments, routes=ROUTES):
    segments.append(f"/dev/shm/{table}")
    helper = subprocess.Popen([TABLE_HELPER, table, *routes], stdout=subprocess.PIPE, text=True)
    started.append(helper)
    ready, _, _ = select.select([helper.stdout], [], [], 10)
    line = helper.stdout.readline() if ready else ""
    if not line.startswith("ready"):
        raise RuntimeError(f"table helper did not get ready: {line!r}")
    return helper


class Dataplane:
    """A podfwd-dataplane started by launch()."""

    def __init__(self, proc, log_path, stats_path, file_prefix):
        self.proc, self.log_path, self.stats_path, self.file_prefix = proc, log_path, stats_path, file_prefix

    def log(self):
        # Opened anew: a file object shared with the process would share its
        # offset, and a seek here would make it overwrite its own output.
        with open(self.log_path) as f:
            return f.read()

    def stats_when(self, done, what, timeout=30):
        """The first counters done() accepts; an exit before that fails at once."""
        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError(f"dataplane exited early ({self.proc.returncode})")
            s = read_stats(self.stats_path)
            return s if s and done(s) else None
        return wait_for(ready, timeout, what)

    @contextlib.contextmanager
    def log_shown_on_failure(self):
        """A wait that fails prints the output: it says why the dataplane exited or stalled."""
        try:
            yield
        except (TimeoutError, RuntimeError, subprocess.TimeoutExpired):
            print(self.log())
            raise

    def stop(self):
        """stop(), then the EAL runtime directory removed: a prefix of the test's own leaves none behind."""
        rc = stop(self.proc)
        shutil.rmtree(f"/var/run/dpdk/{self.file_prefix}", ignore_errors=True)
        return rc


def launch(tmp, name, table, vdevs, started, segments, file_prefix=EAL_PREFIX, lcores="0"):
    """podfwd-dataplane forwarding between `vdevs` with route table `table`,
    its output in {tmp}/{name}.log."""
    log_path = f"{tmp}/{name}.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([DATAPLANE, *eal_args(vdevs, file_prefix, lcores), "--", *app_args(table)],
                                stdout=log, stderr=subprocess.STDOUT)
    started.append(proc)
    stats_path = f"/dev/shm/{table}.stats.{proc.pid}"
    segments.append(stats_path)
    return Dataplane(proc, log_path, stats_path, file_prefix)


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
    r = run(eal_args(pcap_ports(tmp, empty, empty)), app_args("unused", host_port=5))
    check(r.returncode == 2 and "no such DPDK port" in r.stderr.splitlines()[-1],
          f"missing port: exit 2 ({r.returncode}: {r.stderr.strip().splitlines()[-1:]})")


def test_wait_for_table(tmp, started, segments):
    """Without a table: one log line, then a clean exit on SIGINT."""
    empty = f"{tmp}/empty.pcap"
    dp = launch(tmp, "wait", f"podfwd-absent-{os.getpid()}", pcap_ports(tmp, empty, empty), started, segments)
    wait_for(lambda: "waiting for the route table" in dp.log() or dp.proc.poll() is not None, 20,
             "the waiting message")
    check(dp.proc.poll() is None, "keeps waiting for the table")
    rc = dp.stop()
    check(rc == 0, f"SIGINT while waiting: exit 0 (got {rc})")
    check(dp.log().count("polling every") == 1, "the wait is logged once, not per poll")


def test_forwarding(tmp, started, segments):
    table = f"podfwd-test-{os.getpid()}"
    n_uplink, n_host = write_inputs(tmp)
    start_table(table, started, segments)
    dp = launch(tmp, "dataplane", table, pcap_ports(tmp, f"{tmp}/in.pcap", f"{tmp}/host_in.pcap"), started,
                segments)
    # The counters are live: a burst's RX is counted before its TX, so wait
    # for every expected frame to have left (or been dropped) too.
    with dp.log_shown_on_failure():
        stats = dp.stats_when(lambda s: s["state"] == STATE_RUNNING and s["rx"] == [n_uplink, n_host] and
                              sum(s["tx"]) + sum(s["tx_dropped"]) >= 7,
                              "the dataplane to receive and send every packet")
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
    before = cpu_seconds(dp.proc.pid)
    time.sleep(1.0)   # a measurement window, not a wait for an event
    used = cpu_seconds(dp.proc.pid) - before
    check(used < 0.3, f"idle CPU {used:.2f} s over 1 s")

    rc = dp.stop()
    log = dp.log()
    check(rc == 0, f"SIGINT: exit 0 (got {rc})")
    check("drop no_route 1" in log and "action host_gw 4" in log, "final counters printed by name")
    check(not os.path.exists(dp.stats_path), "counters segment unlinked at exit")
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
    start_table(table, started, segments)
    dp = launch(tmp, "two_lcores", table, ["net_null0,size=64", "net_null1,no-rx=1"], started, segments,
                lcores="0,1")
    with dp.log_shown_on_failure():
        stats = dp.stats_when(lambda s: s["lcores"] == 2 and all(rx > 1000 for rx in s["lcore_rx"]),
                              "both lcores to receive")
    check(stats["lcores"] == 2 and min(stats["lcore_rx"]) > 1000, f"two lcores receive: {stats['lcore_rx']}")
    # The uplink's one frame: the announcement.
    check(stats["drop_by_name"]["not_for_us"] > 0 and stats["tx"] == [1, 0],
          f"zero frames dropped as not for us (tx {stats['tx']})")
    rc = dp.stop()
    check(rc == 0, f"two lcores: SIGINT exit 0 (got {rc})")


def test_held_after_decap(tmp, started, segments):
    """A packet decapsulated here and routed on to a next hop without a MAC
    is held by the resolver, then sent once the next hop answers. The held
    mbuf must carry the inner frame's bounds: rebuilt from the mbuf as it
    was received, the packet would be looked up by its outer destination
    (the node IP: no route here)."""
    table = f"podfwd-test-held-{os.getpid()}"
    start_table(table, started, segments,
                [f"10.244.1.0/24=host_gw,node={GW_NODE}",                # no MAC: to resolve
                 f"10.244.2.0/24=ipip,node={IPIP_NODE},mac={IPIP_MAC}"])  # the IPIP sender is a known node
    l2 = Ether(dst=NODE_MAC, src=PEER_MAC)
    inner = IP(src="10.244.2.9", dst="10.244.1.5", ttl=64) / UDP(sport=4242, dport=80) / ("held" * 5)
    uplink = [l2 / IP(src=IPIP_NODE, dst=NODE_IP) / inner,
              Ether(dst=NODE_MAC, src=GW_MAC) / ARP(op=2, hwsrc=GW_MAC, psrc=GW_NODE, hwdst=NODE_MAC, pdst=NODE_IP)]
    wrpcap(f"{tmp}/held_in.pcap", uplink)
    wrpcap(f"{tmp}/held_host.pcap", [], linktype=1)
    dp = launch(tmp, "held", table, pcap_ports(tmp, f"{tmp}/held_in.pcap", f"{tmp}/held_host.pcap", tag="held_"),
                started, segments, file_prefix=EAL_PREFIX + "-held")
    try:
        with dp.log_shown_on_failure():
            stats = dp.stats_when(lambda s: s["state"] == STATE_RUNNING and s["action_by_name"]["held_sent"] >= 1,
                                  "the held packet to be sent")
            # SIGHUP (a closed terminal, a supervisor) ends it as cleanly as
            # SIGINT: ports stopped, final counters, segments removed.
            dp.proc.send_signal(signal.SIGHUP)
            rc = dp.proc.wait(10)
        check(rc == 0 and "final counters" in dp.log(), f"SIGHUP: exit 0 with the final counters (got {rc})")
        check(not os.path.exists(dp.stats_path) and not os.path.exists(f"/dev/shm/{table}.neigh.{dp.proc.pid}"),
              "SIGHUP: counters and neighbour segments removed")
    finally:
        dp.stop()
    drops = {k: v for k, v in stats["drop_by_name"].items() if v}
    check(not drops and stats["action_by_name"]["host_gw"] == 1,
          f"held after decapsulation, then forwarded host-gw, no drop ({drops})")
    frames = [p for p in rdpcap(f"{tmp}/held_up_out.pcap") if IP in p]
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
    start_table(table, started, segments)
    # Endless traffic to a pod network: every frame is looked up.
    wrpcap(f"{tmp}/trunc_in.pcap", [Ether(dst=NODE_MAC, src=PEER_MAC) /
                                    IP(src="10.244.2.9", dst="10.244.1.5") / UDP(sport=1, dport=2) / "x"])
    dp = launch(tmp, "trunc", table, [f"net_pcap0,rx_pcap={tmp}/trunc_in.pcap,infinite_rx=1,tx_pcap=/dev/null",
                                      "net_null0,no-rx=1"], started, segments, file_prefix=EAL_PREFIX + "-trunc")
    try:
        with dp.log_shown_on_failure():
            dp.stats_when(lambda s: s["state"] == STATE_RUNNING and s["action_by_name"]["host_gw"] > 1000,
                          "the dataplane to forward")
            os.truncate(f"/dev/shm/{table}", 4096)
            rc = dp.proc.wait(10)
    finally:
        dp.stop()
    log = dp.log()
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
            test_wait_for_table(tmp, started, segments)
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
