"""The multi-node lab of the e2e suite (issue 16): podfwd nodes in network
namespaces, a router between two subnets, pods as namespaces behind each
node's kernel, and optionally a plain Linux node with a Flannel-style VXLAN
device.

    router ns: br0 10.168.0.1/24 (ports a-up, b-up, d-up), c-up 10.168.1.1/24, ip_forward
    node a 10.168.0.2  pods 10.244.1.0/24 ─┐
    node b 10.168.0.3  pods 10.244.2.0/24 ─┼─ br0 (one L2 segment)
    node d 10.168.0.4  pods 10.244.4.0/24 ─┘  plain Linux, flannel.1 (Lab(linux_node=True))
    node c 10.168.1.2  pods 10.244.3.0/24 ─── c-up (the other subnet, through the router)

In a podfwd node's namespace: podfwd-control, and podfwd-dataplane with its
uplink on `net_af_packet` bound to the veth `up0` (no IP; enslaved to a
bridge that stays down, so the kernel drops what arrives there after the
packet socket has seen it: the NIC belongs to the dataplane) and its host
port on `net_tap` (`pfhost`, the uplink's MAC, persistent across restarts),
to which the lab gives the node IP, the default route via the router and
the kernel settings of Node.configure_host_port. Pods hang off `cni0`
(10.244.N.1/24); the node's kernel forwards between cni0 and pfhost.

Everything is named `pfe<pid>-...`; `Lab.close()` (the context manager's
exit, also on failure or SIGTERM) ends the processes it started by PID,
deletes the namespaces, the /dev/shm segments, the EAL runtime directories
and its temporary directory. What a SIGKILLed run left (its pid gone) is
removed at the next start: its namespaces' processes by PID, then the rest."""
import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "dataplane", "app"))
from stats_reader import DROPS, STATE_RUNNING, read_stats  # noqa: E402

SKIP = 77
UPLINK_IF = "up0"        # the node's veth to the router (the dataplane's uplink)
HOST_IF = "pfhost"       # the net_tap port's kernel interface
VXLAN_PORT = 8472        # Flannel's: the podfwd nodes and the Linux node all use it
DROP_NAMES = frozenset(DROPS)   # which of Node.stats()'s keys are drop reasons


@dataclass(frozen=True)
class NodeSpec:
    name: str
    ip: str
    subnet: str
    gateway: str
    pod_cidr: str
    mac: str
    lcore: int = 0
    podfwd: bool = True

    @property
    def prefix_len(self):
        return ipaddress.ip_network(self.subnet).prefixlen

    def pod_ip(self, index=1):
        """Pod `index` (1..) of this node: 10.244.N.(index+1); .1 is cni0."""
        return str(ipaddress.ip_network(self.pod_cidr)[index + 1])

    @property
    def cni_ip(self):
        return str(ipaddress.ip_network(self.pod_cidr)[1])


NODES = {
    "a": NodeSpec("a", "10.168.0.2", "10.168.0.0/24", "10.168.0.1", "10.244.1.0/24", "02:00:0a:a8:00:02", lcore=0),
    "b": NodeSpec("b", "10.168.0.3", "10.168.0.0/24", "10.168.0.1", "10.244.2.0/24", "02:00:0a:a8:00:03", lcore=1),
    "c": NodeSpec("c", "10.168.1.2", "10.168.1.0/24", "10.168.1.1", "10.244.3.0/24", "02:00:0a:a8:01:02", lcore=1),
    "d": NodeSpec("d", "10.168.0.4", "10.168.0.0/24", "10.168.0.1", "10.244.4.0/24", "02:00:0a:a8:00:04",
                  podfwd=False),
}
ROUTER_LEGS = {"10.168.0.0/24": ("10.168.0.1/24", "02:00:0a:a8:00:01"),
               "10.168.1.0/24": ("10.168.1.1/24", "02:00:0a:a8:01:01")}
ROUTER_MACS = {leg[0].split("/")[0]: leg[1] for leg in ROUTER_LEGS.values()}


def require_root_and_tools(*tools):
    """Exits 77 (meson: skipped) unless root with every tool on PATH."""
    if os.geteuid() != 0:
        print("SKIP: the e2e suite needs root (network namespaces, DPDK vdevs)")
        sys.exit(SKIP)
    missing = [t for t in ("ip", "bridge", "sysctl", "ping", "ethtool", *tools) if shutil.which(t) is None]
    if missing:
        print("SKIP: missing tool(s): " + ", ".join(missing) + " (scripts/setup installs them)")
        sys.exit(SKIP)


def wait_until(condition, seconds, what, interval=0.02):
    """Polls `condition` until it returns something true (returned); after
    `seconds` raises TimeoutError naming `what` and the last value seen."""
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {seconds} s waiting for {what} (last: {value!r})")
        time.sleep(interval)


def run(args, ns=None, check=True, timeout=30, input=None):
    """Runs a command (in namespace `ns`); returns the CompletedProcess
    (text). check: a non-zero exit raises with its output."""
    cmd = (["ip", "netns", "exec", ns] if ns else []) + [str(a) for a in args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=input)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {r.returncode}: {r.stderr.strip() or r.stdout.strip()}")
    return r


def ip_batch(ns, lines):
    """Several `ip` commands in one process, in namespace `ns`."""
    run(["ip", "-n", ns, "-batch", "-"], input="\n".join(lines) + "\n")


def isolate_sysctls(ns, forward):
    # IPv6 off (default too, so interfaces made later inherit it): no
    # router solicitations or MLD on the ports the dataplane counts.
    run(["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1",
         f"net.ipv4.ip_forward={1 if forward else 0}", "net.ipv4.conf.all.rp_filter=0",
         "net.ipv4.conf.default.rp_filter=0"], ns=ns)


def _stale(name):
    """Whether `name` is one of this suite's (pfe<pid>-...) whose run is gone."""
    m = re.match(r"pfe(\d+)-", name)
    return bool(m) and not os.path.exists(f"/proc/{m.group(1)}")


def remove_stale():
    """What earlier runs left when their test process was SIGKILLed (no
    finally ran): their namespaces' processes by PID, the namespaces, their
    segments, EAL directories and temporary directories."""
    for name in run(["ip", "netns", "list"]).stdout.split():
        if not _stale(name):
            continue
        for pid in run(["ip", "netns", "pids", name], check=False).stdout.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        run(["ip", "netns", "del", name], check=False)
    for folder in ("/dev/shm", "/var/run/dpdk", tempfile.gettempdir()):
        if os.path.isdir(folder):
            for name in filter(_stale, os.listdir(folder)):
                _remove(os.path.join(folder, name))


def _remove(path):
    if os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.unlink(path)


class Node:
    """One podfwd node: its namespace, podfwd-control, podfwd-dataplane."""

    def __init__(self, lab, spec):
        self.lab = lab
        self.spec = spec
        self.ns = lab.ns_name(spec.name)
        self.table = f"{lab.prefix}-{spec.name}"
        self.dir = os.path.join(lab.tmp, spec.name)
        os.makedirs(self.dir)
        self.socket = os.path.join(self.dir, "control.sock")
        self.static_path = os.path.join(self.dir, "routes.conf")
        self.control = None
        self.dataplane = None
        self.dataplane_runs = 0

    # ---- processes ----

    def write_static(self, text):
        with open(self.static_path, "w") as f:
            f.write(text)

    def start_control(self):
        s = self.spec
        self.control = self.lab.spawn(
            [self.lab.bins["control"], "--node-ip", s.ip, "--uplink", s.subnet, "--gateway", s.gateway,
             "--pod-cidr", s.pod_cidr, "--table", self.table, "--socket", self.socket,
             "--state-dir", os.path.join(self.dir, "state"), "--static-routes", self.static_path, "--allow-empty-static",
             *self.lab.control_args(s)],
            self.ns, os.path.join(self.dir, "control.log"))

    def wait_control(self):
        def answers():
            if self.control.poll() is not None:
                raise RuntimeError(f"podfwd-control of {self.spec.name} exited ({self.control.returncode})")
            return self.ctl("status", check=False).returncode == 0
        wait_until(answers, 30, f"podfwd-control of node {self.spec.name}")

    def dataplane_args(self):
        s = self.spec
        # --no-shconf + a unique --file-prefix: --in-memory needs huge pages.
        # persist: the TAP outlives the process with the kernel's addresses and
        # routes on it, so a restarted dataplane finds the node as it was.
        return [self.lab.bins["dataplane"], "--no-pci", "--no-huge", "-m", "256", "--no-shconf",
                "--file-prefix", self.table, "-l", str(s.lcore), "--log-level=lib.eal:warning",
                "--log-level=pmd.net.tap:error",
                f"--vdev=net_af_packet0,iface={UPLINK_IF}", f"--vdev=net_tap0,iface={HOST_IF},mac={s.mac},persist",
                "--", "--node-ip", s.ip, "--table", self.table, "--mtu", "1500", "--vxlan-port", str(VXLAN_PORT),
                "--uplink-port", "0", "--host-port", "1"]

    def start_dataplane(self):
        """Starts podfwd-dataplane; returns time.monotonic() at the start."""
        self.dataplane_runs += 1
        started = time.monotonic()
        self.dataplane = self.lab.spawn(self.dataplane_args(), self.ns,
                                        os.path.join(self.dir, f"dataplane.{self.dataplane_runs}.log"))
        return started

    @property
    def stats_path(self):
        return f"/dev/shm/{self.table}.stats.{self.dataplane.pid}"

    def wait_dataplane(self):
        """Until the dataplane forwards (its ports started: the TAP exists)."""
        def running():
            if self.dataplane.poll() is not None:
                raise RuntimeError(f"podfwd-dataplane of {self.spec.name} exited ({self.dataplane.returncode})")
            s = read_stats(self.stats_path)
            return s and s["state"] == STATE_RUNNING
        wait_until(running, 60, f"podfwd-dataplane of node {self.spec.name} to run")

    def configure_host_port(self):
        """The kernel's side of the exception port: node IP, default route via the router."""
        s = self.spec
        ip_batch(self.ns, [f"addr replace {s.ip}/{s.prefix_len} dev {HOST_IF}", f"link set {HOST_IF} up",
                           f"route replace default via {s.gateway} dev {HOST_IF}"])
        # The kernel's ARP on the TAP is answered by the dataplane (proxy ARP)
        # a few microseconds away: retry after 100 ms, not Linux's 1 s. While
        # a dataplane restarts the TAP has no carrier, the kernel's neighbours
        # there are flushed and its first request is lost; with the default
        # the retry came 1 s later (seen: 0.8 s of a 1.5 s restart gap).
        run(["sysctl", "-qw", f"net.ipv4.neigh.{HOST_IF}.retrans_time_ms=100"], ns=self.ns)
        # The dataplane's ICMP errors come from the node IP: the kernel that
        # owns it drops them as martians unless told to accept them here.
        run(["sysctl", "-qw", f"net.ipv4.conf.{HOST_IF}.accept_local=1"], ns=self.ns)

    def stop_dataplane(self, sig=signal.SIGTERM):
        """Signals the dataplane and waits for it; returns the seconds it took."""
        t0 = time.monotonic()
        self.lab.stop(self.dataplane, sig)
        return time.monotonic() - t0

    # ---- control and counters ----

    def ctl(self, *args, check=True):
        return run([self.lab.bins["ctl"], "--socket", self.socket, "--table", self.table, *args],
                   check=check, timeout=30)

    def stats(self):
        """This dataplane's counters (stats_reader), by name."""
        s = read_stats(self.stats_path)
        if not s or "action_by_name" not in s:
            raise RuntimeError(f"no counters of node {self.spec.name} at {self.stats_path}")
        return {**s["action_by_name"], **s["drop_by_name"], "rx_uplink": s["rx"][0], "rx_host": s["rx"][1],
                "tx_uplink": s["tx"][0], "tx_host": s["tx"][1]}

    def route(self, prefix, via, mode, vtep_mac=None, vni=None):
        args = ["route", "add", prefix, "via", via, "mode", mode]
        if vni is not None:
            args += ["vni", str(vni)]
        if vtep_mac:
            args += ["vtep-mac", vtep_mac]
        self.ctl(*args)


class Lab:
    """The topology above; a context manager. `nodes`: which podfwd nodes
    (of a, b, c); linux_node: node d as well; static_neighbours: the next
    hops' MACs in the static file instead of ARP; checks: a Checks whose
    failures, like an exception, have the logs and counters printed at exit.
    specs: the NodeSpecs by name (default NODES; `nodes` names podfwd nodes of
    it); prefix: of every name the lab makes (default pfe<pid>, which the
    next run removes once this process is gone). Subclasses add services in
    the router namespace (start_services), control options (control_args)
    and their own pods (add_pods)."""

    def __init__(self, bins, nodes="abc", linux_node=False, static_neighbours=False, checks=None, specs=None,
                 prefix=None):
        self.bins = bins
        self.checks = checks
        self.specs = specs or NODES
        self.prefix = prefix or f"pfe{os.getpid()}"
        self.tmp = tempfile.mkdtemp(prefix=self.prefix + "-")
        self.procs = []
        self.namespaces = []
        self.static_neighbours = static_neighbours
        self.node_names = nodes
        self.linux_node = linux_node
        self.nodes = {}

    def __enter__(self):
        signal.signal(signal.SIGTERM, _raise_on_sigterm)   # meson's timeout: clean up all the same
        try:
            remove_stale()
            self._build()
        except BaseException:
            self.dump_logs()
            self.close()
            raise
        return self

    def __exit__(self, exc_type, exc, tb):
        interrupted = exc_type is not None and issubclass(exc_type, KeyboardInterrupt)   # Ctrl-C: no dump
        try:
            if exc_type is not None and not interrupted:
                traceback.print_exception(exc_type, exc, tb)
            if (exc_type is not None and not interrupted) or (self.checks is not None and self.checks.failures):
                self.dump_logs()
        finally:   # also when printing fails (a closed pipe)
            self.close()
        return False

    def ns_name(self, role):
        return f"{self.prefix}-{role}"

    # ---- building ----

    def add_ns(self, role, forward):
        name = self.ns_name(role)
        run(["ip", "netns", "add", name])
        self.namespaces.append(name)
        isolate_sysctls(name, forward)
        ip_batch(name, ["link set lo up"])
        return name

    def _build(self):
        t0 = time.monotonic()
        router = self.add_ns("router", forward=True)
        ip_batch(router, ["link add br0 type bridge", f"link set br0 address {ROUTER_LEGS['10.168.0.0/24'][1]}",
                          f"addr add {ROUTER_LEGS['10.168.0.0/24'][0]} dev br0", "link set br0 up"])
        run(["ethtool", "-K", "br0", "tx", "off"], ns=router)   # as for each leg below
        specs = [self.specs[n] for n in self.node_names] + ([NODES["d"]] if self.linux_node else [])
        for spec in specs:
            ns = self.add_ns(spec.name, forward=True)
            peer = f"{spec.name}-up"
            ip_batch(ns, [f"link add {UPLINK_IF} address {spec.mac} type veth peer name {peer} netns {router}",
                          f"link set {UPLINK_IF} up"])
            if spec.subnet == "10.168.0.0/24":
                ip_batch(router, [f"link set {peer} master br0", f"link set {peer} up"])
            else:
                addr, mac = ROUTER_LEGS[spec.subnet]
                ip_batch(router, [f"link set {peer} address {mac}", f"addr add {addr} dev {peer}",
                                  f"link set {peer} up"])
            # The router's own packets (ARP aside: its ICMP, a TCP service such
            # as the lab's etcd) would leave its veth with the checksum left to
            # a NIC that is not there (CHECKSUM_PARTIAL) and reach the
            # dataplane's packet socket so; a real router's NIC fills it in.
            run(["ethtool", "-K", peer, "tx", "off"], ns=router)
            if spec.podfwd:
                # The kernel must not see the uplink: a bridge that stays down
                # drops what arrives, after the dataplane's packet socket saw it.
                ip_batch(ns, ["link add nic-owned type bridge", f"link set {UPLINK_IF} master nic-owned"])
                self.nodes[spec.name] = Node(self, spec)
            else:
                ip_batch(ns, [f"addr add {spec.ip}/{spec.prefix_len} dev {UPLINK_IF}",
                              f"route add default via {spec.gateway}"])
            self.add_pods(spec)
        self.start_services(router)
        for node in self.nodes.values():
            node.write_static(self.static_routes(node.spec))
            node.start_control()
        for node in self.nodes.values():
            node.wait_control()
            node.start_dataplane()
        for node in self.nodes.values():
            node.wait_dataplane()
            node.configure_host_port()
        print(f"lab: {len(specs)} nodes up in {time.monotonic() - t0:.1f} s "
              f"({', '.join(s.name + ' ' + s.ip for s in specs)})", flush=True)

    def start_services(self, router_ns):
        """Hook: what the nodes' control processes need running in the
        router's namespace before they start (etcd, a route reflector)."""

    def control_args(self, spec):
        """Hook: podfwd-control's options beyond the lab's own, for node `spec`."""
        return []

    def add_pods(self, spec, count=1):
        ns = self.ns_name(spec.name)
        ip_batch(ns, ["link add cni0 type bridge", f"addr add {spec.cni_ip}/24 dev cni0", "link set cni0 up"])
        for i in range(1, count + 1):
            pod = self.add_ns(f"{spec.name}{i}", forward=False)
            ip_batch(pod, [f"link add eth0 type veth peer name veth{i} netns {ns}",
                           f"addr add {spec.pod_ip(i)}/24 dev eth0", "link set eth0 up",
                           f"route add default via {spec.cni_ip}"])
            ip_batch(ns, [f"link set veth{i} master cni0", f"link set veth{i} up"])

    def static_routes(self, spec):
        """Each other podfwd node's pod CIDR: host-gw on the subnet, IPIP off it
        (what --default-mode cross-subnet would choose, spelled out)."""
        lines = []
        for other in self.nodes.values():
            o = other.spec
            if o.name == spec.name:
                continue
            mode = "host-gw" if o.subnet == spec.subnet else "ipip"
            lines.append(f"route {o.pod_cidr} via {o.ip} mode {mode}")
            if self.static_neighbours and o.subnet == spec.subnet:
                lines.append(f"neigh {o.ip} {o.mac}")
        if self.static_neighbours:
            lines.append(f"neigh {spec.gateway} {ROUTER_MACS[spec.gateway]}")
        return "\n".join(lines) + "\n"

    # ---- processes ----

    def spawn(self, args, ns, log_path):
        with open(log_path, "w") as log:
            proc = subprocess.Popen(["ip", "netns", "exec", ns, *[str(a) for a in args]],
                                    stdout=log, stderr=subprocess.STDOUT)
        proc.log_path = log_path
        self.procs.append(proc)
        return proc

    def stop(self, proc, sig=signal.SIGTERM, timeout=10):
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def close(self):
        for proc in reversed(self.procs):
            self.stop(proc)
        for name in reversed(self.namespaces):
            run(["ip", "netns", "del", name], check=False)
        for node in self.nodes.values():
            for path in [f"/dev/shm/{f}" for f in os.listdir("/dev/shm") if f == node.table or
                         f.startswith(node.table + ".")] + [f"/var/run/dpdk/{node.table}"]:
                _remove(path)
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.namespaces, self.procs = [], []

    def dump_logs(self, lines=25):
        """What a failure needs to be understood: the logs' tails, counters, neighbours."""
        for proc in self.procs:
            try:
                with open(proc.log_path) as f:
                    tail = f.read().splitlines()[-lines:]
            except OSError:
                continue
            print(f"--- {os.path.relpath(proc.log_path, self.tmp)} (pid {proc.pid}, "
                  f"{'running' if proc.poll() is None else 'exit ' + str(proc.returncode)})", *tail, sep="\n")
        for node in self.nodes.values():
            for args in (("stats",), ("neigh", "list"), ("route", "list")):
                r = node.ctl(*args, check=False)
                print(f"--- node {node.spec.name}: podfwdctl {' '.join(args)}", r.stdout.strip(), r.stderr.strip(),
                      sep="\n")
        sys.stdout.flush()

    # ---- pods and traffic ----

    def pod_ns(self, node, index=1):
        return self.ns_name(f"{node}{index}")

    def pod_ip(self, node, index=1):
        return self.specs[node].pod_ip(index)

    def ping(self, ns, dst, count=5, interval=0.1, wait=2):
        """ping from namespace `ns`: (received, transmitted, average RTT ms or None)."""
        deadline = int(count * interval + wait + 2)   # ping's -w takes whole seconds
        r = run(["ping", "-n", "-q", "-c", count, "-i", interval, "-W", wait, "-w", deadline, dst],
                ns=ns, check=False, timeout=deadline + 10)
        m = re.search(r"(\d+) packets transmitted, (\d+) received", r.stdout)
        rtt = re.search(r"= [\d.]+/([\d.]+)/", r.stdout)
        if not m:
            return 0, 0, None
        return int(m.group(2)), int(m.group(1)), float(rtt.group(1)) if rtt else None

    def iperf3(self, client_ns, server_ns, server_ip, *client_args, port=5201):
        """One iperf3 run (client_args: "-t", "2" or "-n", "2M"), the server
        started here for one client and bounded by `timeout`. Returns
        (received bytes, bits/s, retransmits, error or None)."""
        log = os.path.join(self.tmp, f"iperf3-server-{port}-{time.monotonic_ns()}.log")
        server = self.spawn(["timeout", "30", "iperf3", "-s", "-1", "-B", server_ip, "-p", port,
                             "--idle-timeout", "20", "--forceflush"], server_ns, log)
        wait_until(lambda: "Server listening" in open(log).read() or server.poll() is not None, 10,
                   "iperf3 server to listen")
        r = run(["iperf3", "-c", server_ip, "-p", port, "-J", "--connect-timeout", "3000", *client_args],
                ns=client_ns, check=False, timeout=40)
        self.stop(server)
        try:
            result = json.loads(r.stdout)
        except json.JSONDecodeError:
            result = {"error": (r.stdout[-300:] + r.stderr[-300:]).strip()}
        received = result.get("end", {}).get("sum_received", {})
        return (received.get("bytes", 0), received.get("bits_per_second", 0),
                result.get("end", {}).get("sum_sent", {}).get("retransmits"), result.get("error"))

    def reach(self, ns, dst, seconds=5):
        """Seconds until the first ping from `ns` to `dst` is answered (single
        pings, each waiting 1 s), or None after `seconds`."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            if self.ping(ns, dst, count=1, wait=1)[0] == 1:
                return time.monotonic() - t0
        return None


def _raise_on_sigterm(signum, frame):
    raise SystemExit(f"signal {signum}")


class Checks:
    """Named checks, printed as they happen; exit(): 1 if any failed."""

    def __init__(self):
        self.failures = []

    def __call__(self, cond, what):
        print(("ok   " if cond else "FAIL ") + what, flush=True)
        if not cond:
            self.failures.append(what)
        return cond

    def exit(self):
        if self.failures:
            print(f"{len(self.failures)} check(s) failed:", *self.failures, sep="\n  ")
            sys.exit(1)
        print("all checks passed")
        sys.exit(0)


def binaries(argv):
    """The scripts' arguments: PODFWD_CONTROL PODFWD_DATAPLANE PODFWDCTL."""
    if len(argv) != 4:
        print(f"usage: {argv[0]} PODFWD_CONTROL PODFWD_DATAPLANE PODFWDCTL", file=sys.stderr)
        sys.exit(2)
    return {"control": argv[1], "dataplane": argv[2], "ctl": argv[3]}


def seconds(value):
    """A duration for the printed measurements: '0.02s', or 'none'."""
    return "none" if value is None else f"{value:.2f}s"
