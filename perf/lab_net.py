"""perf/lab's network side: iperf3 between two namespaces, and the Linux
kernel's own pod-to-pod paths in namespaces built here (perf/lab's docstring
says what is measured).

Kernel topology (namespaces `pfl<pid>-...`, deleted by KernelLab.close()):

    bare:    bare-c 10.77.0.1/24 ── one veth pair ── bare-s 10.77.0.2/24      (no routing: the host network)
    routed:  pod1 10.78.1.2 ─ cni0 [node1] up0 10.79.0.1 ─ br0 [sw] br0 ─ up0 10.79.0.2 [node2] cni0 ─ pod2 10.78.2.2
             pod1 and pod2 are on veths into a cni0 bridge on their node (10.78.N.1/24, their default route);
             the nodes' up0 veths meet on a bridge in `sw` (the lab's router br0 between nodes a and b).
    host-gw: node1: 10.78.2.0/24 via 10.79.0.2; node2: 10.78.1.0/24 via 10.79.0.1 (plain routing)
    vxlan:   Flannel's layout: vxlan0 (VNI 1, port 8472, MTU 1450, 10.78.N.0/32) on each node, the other pod
             /24 via 10.78.M.0 onlink, a permanent neighbour and an FDB entry to the other node's up0 address
    ipip:    an ipip device (local/remote the up0 addresses, MTU 1480) and the other pod /24 on it, where the
             kernel has IPIP; "absent" with the error otherwise

Pods keep MTU 1500 as in the podfwd lab: tunnels' path MTU is learned from
the node's ICMP fragmentation needed, as there."""
import json
import os
import re
import shutil
import signal
import subprocess
import time

UDP_PAYLOAD = 22       # + 8 UDP + 20 IP = a 50-byte IP packet, a 64-byte Ethernet frame without FCS (fwd_bench's 64 B)
UDP_FRAME = UDP_PAYLOAD + 8 + 20 + 14
VXLAN_PORT = 8472
# iperf3's client on CPU 0 and server on CPU 1 (-A), the same placement for
# every path: left to the scheduler, the two sometimes share a CPU and a
# path's figure swings by 2-3x between runs.
CLIENT_CPU, SERVER_CPU = 0, 1
PIN = (os.cpu_count() or 1) >= 2


class LabError(Exception):
    pass


def run(args, ns=None, check=True, timeout=30, input=None):
    cmd = (["ip", "netns", "exec", ns] if ns else []) + [str(a) for a in args]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=input)
    except subprocess.TimeoutExpired:
        raise LabError(f"{' '.join(cmd)}: no answer in {timeout} s")
    if check and r.returncode != 0:
        raise LabError(f"{' '.join(cmd)}: exit {r.returncode}: {(r.stderr or r.stdout).strip()}")
    return r


def ip_batch(ns, lines):
    run(["ip", "-n", ns, "-batch", "-"], input="\n".join(lines) + "\n")


def wait_until(condition, seconds, what, interval=0.02):
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise LabError(f"timed out after {seconds} s waiting for {what}")
        time.sleep(interval)


def stop(proc, timeout=5):
    """SIGTERM to this one process, a bounded wait, SIGKILL if it hangs."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def iperf3(tmp, client_ns, server_ns, server_ip, proto, seconds, port=5201):
    """One iperf3 run from `client_ns` to a one-shot server in `server_ns`
    (both bounded by `timeout`). proto "tcp": one stream, default length;
    "udp": one stream of UDP_PAYLOAD-byte datagrams at -b 0 (as fast as the
    sender goes). Returns a dict: tcp: gbps (received), retransmits; udp:
    pps (datagrams the server received / its seconds), sent_pps, lost
    (share); and error (None or text)."""
    log = os.path.join(tmp, f"iperf3-s-{port}-{time.monotonic_ns()}.json")
    with open(log, "w") as out:
        server = subprocess.Popen(["ip", "netns", "exec", server_ns, "timeout", str(int(seconds) + 25), "iperf3",
                                   "-s", "-1", "-B", server_ip, "-p", str(port), "--idle-timeout", "15", "--forceflush",
                                   *(["-A", str(SERVER_CPU)] if PIN else [])],
                                  stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: "listening" in open(log).read() or server.poll() is not None, 10,
                   f"iperf3 server in {server_ns}")
        args = ["iperf3", "-c", server_ip, "-p", port, "-J", "--connect-timeout", "3000", "-t", seconds,
                *(["-A", CLIENT_CPU] if PIN else [])]
        if proto == "udp":
            args += ["-u", "-l", UDP_PAYLOAD, "-b", "0"]
        r = run(args, ns=client_ns, check=False, timeout=seconds + 20)
    finally:
        stop(server)
    try:
        result = json.loads(r.stdout)
    except json.JSONDecodeError:
        result = {"error": (r.stdout[-300:] + r.stderr[-300:]).strip() or f"iperf3 exit {r.returncode}"}
    end = result.get("end", {})
    rx, tx = end.get("sum_received", {}), end.get("sum_sent", {})
    out = {"error": result.get("error")}
    if proto == "tcp":
        out["gbps"] = rx.get("bits_per_second", 0) / 1e9
        out["retransmits"] = tx.get("retransmits")
    else:
        # iperf3 3.12: sum_received.packets is the highest sequence seen,
        # lost_packets the gaps below it; what arrived is their difference
        # (= bytes / payload length).
        got = rx.get("packets", 0) - rx.get("lost_packets", 0)
        out["pps"] = got / rx["seconds"] if rx.get("seconds") else 0.0
        out["sent_pps"] = tx.get("packets", 0) / tx["seconds"] if tx.get("seconds") else 0.0
        out["lost"] = rx.get("lost_percent", 0) / 100
    if not out["error"] and not (out.get("gbps") or out.get("pps")):
        out["error"] = "iperf3 moved nothing"
    return out


def metric(r):
    """A result's figure: Gb/s (TCP) or packets/s (UDP); 0 for an error."""
    return 0.0 if r.get("error") else r.get("gbps", r.get("pps", 0.0))


def keep_best(runs):
    """The best of one path's runs (the highest figure; the last error if
    every run failed), with every run's figure as `runs`."""
    best = max(runs, key=metric)
    return {**best, "runs": [metric(r) for r in runs]}


def _stale(name, tag):
    m = re.match(tag + r"(\d+)-", name)
    return bool(m) and not os.path.exists(f"/proc/{m.group(1)}")


class KernelLab:
    """The kernel's paths above; a context manager (deletes its namespaces)."""

    def __init__(self, tmp, tag="pfl"):
        self.tag = tag
        self.prefix = f"{tag}{os.getpid()}"
        self.tmp = tmp
        self.namespaces = []
        self.ipip_absent = None
        self.vxlan_absent = None

    def ns(self, role):
        return f"{self.prefix}-{role}"

    def __enter__(self):
        self.remove_stale()
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def remove_stale(self):
        """Namespaces an earlier SIGKILLed run left (its pid gone), their processes by PID."""
        for name in run(["ip", "netns", "list"]).stdout.split():
            if _stale(name, self.tag):
                for pid in run(["ip", "netns", "pids", name], check=False).stdout.split():
                    try:
                        os.kill(int(pid), signal.SIGKILL)
                    except (ProcessLookupError, ValueError):
                        pass
                run(["ip", "netns", "del", name], check=False)

    def close(self):
        for name in reversed(self.namespaces):
            for pid in run(["ip", "netns", "pids", name], check=False).stdout.split():
                try:   # an iperf3 of ours that outlived its bounded wait
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            run(["ip", "netns", "del", name], check=False)
        self.namespaces = []

    def add_ns(self, role, forward=False):
        name = self.ns(role)
        run(["ip", "netns", "add", name])
        self.namespaces.append(name)
        run(["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1",
             f"net.ipv4.ip_forward={1 if forward else 0}", "net.ipv4.conf.all.rp_filter=0",
             "net.ipv4.conf.default.rp_filter=0"], ns=name)
        ip_batch(name, ["link set lo up"])
        return name

    @staticmethod
    def node_mac(n):
        return f"02:00:0a:4e:00:{n:02x}"

    def _build(self):
        c, s = self.add_ns("bare-c"), self.add_ns("bare-s")
        ip_batch(c, [f"link add eth0 type veth peer name eth0 netns {s}", "addr add 10.77.0.1/24 dev eth0",
                     "link set eth0 up"])
        ip_batch(s, ["addr add 10.77.0.2/24 dev eth0", "link set eth0 up"])
        sw = self.add_ns("sw")
        ip_batch(sw, ["link add br0 type bridge", "link set br0 up"])
        for n in (1, 2):
            node, pod = self.add_ns(f"node{n}", forward=True), self.add_ns(f"pod{n}")
            ip_batch(node, [f"link add up0 address {self.node_mac(n)} type veth peer name up{n} netns {sw}",
                            f"addr add 10.79.0.{n}/24 dev up0", "link set up0 up",
                            "link add cni0 type bridge", f"addr add 10.78.{n}.1/24 dev cni0", "link set cni0 up",
                            f"link add veth1 type veth peer name eth0 netns {pod}", "link set veth1 master cni0",
                            "link set veth1 up"])
            ip_batch(sw, [f"link set up{n} master br0", f"link set up{n} up"])
            ip_batch(pod, [f"addr add 10.78.{n}.2/24 dev eth0", "link set eth0 up", f"route add default via 10.78.{n}.1"])
        for n, m in ((1, 2), (2, 1)):
            node = self.ns(f"node{n}")
            ip_batch(node, [f"route add 10.78.{m}.0/24 via 10.79.0.{m} dev up0"])
            try:
                ip_batch(node, [f"link add vxlan0 address {self.node_mac(0x10 + n)} type vxlan id 1 "
                                f"dstport {VXLAN_PORT} local 10.79.0.{n} dev up0 nolearning",
                                "link set vxlan0 mtu 1450", f"addr add 10.78.{n}.0/32 dev vxlan0", "link set vxlan0 up",
                                f"neigh add 10.78.{m}.0 lladdr {self.node_mac(0x10 + m)} dev vxlan0 nud permanent"])
                run(["bridge", "-n", node, "fdb", "append", self.node_mac(0x10 + m), "dev", "vxlan0",
                     "dst", f"10.79.0.{m}"])
            except LabError as e:
                self.vxlan_absent = str(e).splitlines()[0]
            try:
                ip_batch(node, [f"link add name ipip0 type ipip local 10.79.0.{n} remote 10.79.0.{m}",
                                "link set ipip0 mtu 1480", f"addr add 10.78.{n}.0/32 dev ipip0", "link set ipip0 up"])
            except LabError as e:
                self.ipip_absent = re.sub(r"^.*: exit \d+: ", "", str(e).splitlines()[0])

    def set_mode(self, mode):
        """Routes each node's way to the other node's pods: host-gw, vxlan or ipip."""
        for n, m in ((1, 2), (2, 1)):
            route = {"host_gw": f"route replace 10.78.{m}.0/24 via 10.79.0.{m} dev up0",
                     "vxlan": f"route replace 10.78.{m}.0/24 via 10.78.{m}.0 dev vxlan0 onlink",
                     "ipip": f"route replace 10.78.{m}.0/24 dev ipip0"}[mode]
            ip_batch(self.ns(f"node{n}"), [route])
        for n in (1, 2):   # path MTU learned in the previous mode
            run(["ip", "route", "flush", "cache"], ns=self.ns(f"pod{n}"))

    def absent(self, mode):
        return {"ipip": self.ipip_absent, "vxlan": self.vxlan_absent}.get(mode)

    def path(self, mode):
        """(client ns, server ns, server IP) of `mode`'s path ("bare" or a routed mode)."""
        if mode == "bare":
            return self.ns("bare-c"), self.ns("bare-s"), "10.77.0.2"
        return self.ns("pod1"), self.ns("pod2"), "10.78.2.2"

    def reachable(self, mode):
        client, _, ip = self.path(mode)
        for _ in range(10):
            if run(["ping", "-n", "-q", "-c", "1", "-W", "1", ip], ns=client, check=False).returncode == 0:
                return True
        return False


def have_tools(*tools):
    return [t for t in tools if shutil.which(t) is None]
