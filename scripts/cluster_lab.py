"""The cluster lab (scripts/demo's main job): three podfwd nodes in network
namespaces on this machine, two pods each, routes spread by etcd, BGP or a
static file, and what it shows as tables.

    router ns  br0 10.168.0.1/24 ── node1-up, node2-up     node3-up 10.168.1.1/24   (ip_forward)
    node1  10.168.0.2  pods 10.244.1.0/24 ─┐ one L2 segment
    node2  10.168.0.3  pods 10.244.2.0/24 ─┘
    node3  10.168.1.2  pods 10.244.3.0/24 ──── the other subnet, through the router

Each node runs podfwd-dataplane (uplink: net_af_packet on its veth, which
the node's kernel never sees; host port: a TAP into the node's namespace,
which holds the node IP) and podfwd-control (tests/e2e/e2e_lab.py builds
that part, as for the e2e suite). Pods are made the way Kubernetes makes
them: the node runs Debian's CNI bridge plugin (cni0, host-local IPAM on the
node's pod CIDR) with a CNI config on stdin, once per pod namespace.

Sources (--source), each run in the router namespace, the nodes reaching it
through their own dataplanes:
- etcd (default): an etcd of the lab's own; Flannel's layout: the lab writes
  /coreos.com/network/config, each node's podfwd-control registers its own
  subnet lease and learns the others'.
- bgp: each node's podfwd-control runs its gobgpd and advertises its pod
  CIDR; a full iBGP mesh (AS 65001), or with --rr one BIRD route reflector
  in the router namespace that every node peers with.
- static: a routes file per node, written by the lab.

Modes (--mode): cross-subnet (default: host-gw node1<->node2, IPIP to and
from node3), ipip, vxlan, host-gw. host-gw needs one L2 segment: node3 is
then reached through the router, which is given the pod routes (as a
top-of-rack router peering with the nodes would be), by each node's default
route via the gateway; the route a source gives for node3's pods is refused
by podfwd ("host-gw needs the next hop on the uplink subnet") and the lab
shows it. BGP carries no VTEP MAC: --source bgp --mode vxlan is refused.

Pod MTUs follow Calico's and Flannel's: 1500 host-gw, 1480 IPIP (and
cross-subnet), 1450 VXLAN.

Usage: cluster_lab.py --build DIR [--source etcd|bgp|static] [--rr] [--mode M]
                      [--keep] [--down] [--prefix NAME] [--iperf-seconds S]"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))
from e2e_lab import Checks, Lab, NodeSpec, run, wait_until  # noqa: E402
import cluster_report as report  # noqa: E402

SPECS = {
    "node1": NodeSpec("node1", "10.168.0.2", "10.168.0.0/24", "10.168.0.1", "10.244.1.0/24", "02:00:0a:a8:00:02",
                      lcore=0),
    "node2": NodeSpec("node2", "10.168.0.3", "10.168.0.0/24", "10.168.0.1", "10.244.2.0/24", "02:00:0a:a8:00:03",
                      lcore=1),
    "node3": NodeSpec("node3", "10.168.1.2", "10.168.1.0/24", "10.168.1.1", "10.244.3.0/24", "02:00:0a:a8:01:02",
                      lcore=0),
}
PODS_PER_NODE = 2
POD_NETWORK = "10.244.0.0/16"
ROUTER_IP = "10.168.0.1"           # etcd's and the route reflector's address
ETCD_URL = f"http://{ROUTER_IP}:2379"
NODE_AS = 65001
VNI = 1
CNI_PATH = "/usr/lib/cni"
MODES = ("cross-subnet", "ipip", "vxlan", "host-gw")
POD_MTU = {"host-gw": 1500, "cross-subnet": 1480, "ipip": 1480, "vxlan": 1450}
FLANNEL_BACKEND = {"cross-subnet": {"Type": "ipip", "DirectRouting": True}, "ipip": {"Type": "ipip"},
                   "vxlan": {"Type": "vxlan", "VNI": VNI, "Port": 8472}, "host-gw": {"Type": "host-gw"}}
STATE_DIR = "/run/podfwd-lab"      # a kept lab's record, for --down


def expected_action(mode, src, dst):
    """The dataplane action node `src` forwards a packet for node `dst`'s pods with."""
    same_subnet = SPECS[src].subnet == SPECS[dst].subnet
    return {"cross-subnet": "host_gw" if same_subnet else "ipip_encap", "ipip": "ipip_encap",
            "vxlan": "vxlan_encap", "host-gw": "host_gw"}[mode]


class Pod:
    def __init__(self, node, index, ns, ip):
        self.node, self.index, self.ns, self.ip = node, index, ns, ip

    @property
    def name(self):
        return f"{self.node}/pod{self.index}"


class ClusterLab(Lab):
    def __init__(self, bins, source, mode, rr, prefix, checks):
        super().__init__(bins, nodes=list(SPECS), specs=SPECS, prefix=prefix, checks=checks)
        self.source, self.mode, self.rr = source, mode, rr
        self.etcd_url = ETCD_URL
        self.flannel_config = None   # what start_etcd wrote
        self.pods = []
        self.rr_socket = None
        self.kept = False

    def expected_action(self, src, dst):
        return expected_action(self.mode, src, dst)

    # ---- what the lab builds beyond e2e_lab's ----

    def cni(self, command, spec, pod_ns):
        """Runs the CNI bridge plugin in node `spec`'s namespace for pod_ns (the
        container runtime's job); its JSON result."""
        config = {"cniVersion": "1.0.0", "name": "podfwd-lab", "type": "bridge", "bridge": "cni0",
                  "isGateway": True, "ipMasq": False, "mtu": POD_MTU[self.mode],
                  "ipam": {"type": "host-local", "ranges": [[{"subnet": spec.pod_cidr}]],
                           "routes": [{"dst": "0.0.0.0/0"}], "dataDir": os.path.join(self.tmp, "ipam-" + spec.name)}}
        env = [f"CNI_COMMAND={command}", f"CNI_CONTAINERID={pod_ns}", f"CNI_NETNS=/run/netns/{pod_ns}",
               "CNI_IFNAME=eth0", f"CNI_PATH={CNI_PATH}"]
        r = run(["env", *env, f"{CNI_PATH}/bridge"], ns=self.ns_name(spec.name), input=json.dumps(config))
        return json.loads(r.stdout) if r.stdout.strip() else {}

    def add_pods(self, spec, count=PODS_PER_NODE):
        for i in range(1, count + 1):
            pod_ns = self.add_ns(f"{spec.name}-pod{i}", forward=False)
            result = self.cni("ADD", spec, pod_ns)
            try:
                ip = result["ips"][0]["address"].split("/")[0]
            except (KeyError, IndexError) as e:
                raise RuntimeError(f"CNI bridge plugin: no IP in its result for {pod_ns}: {result}") from e
            self.pods.append(Pod(spec.name, i, pod_ns, ip))

    def pod_ns(self, node, index=1):
        return self.ns_name(f"{node}-pod{index}")

    def start_services(self, router_ns):
        if self.mode == "host-gw":
            # The fabric's router knows the pod CIDRs (a ToR peering with the
            # nodes): host-gw's way to the node off the segment.
            run(["ip", "-n", router_ns, "-batch", "-"],
                input="".join(f"route add {s.pod_cidr} via {s.ip}\n" for s in SPECS.values()))
        if self.source == "etcd":
            self.start_etcd(router_ns)
        if self.source == "bgp" and self.rr:
            self.start_route_reflector(router_ns)

    def start_etcd(self, router_ns):
        data = os.path.join(self.tmp, "etcd")
        self.spawn(["etcd", "--name", "lab", "--data-dir", data, "--listen-client-urls", ETCD_URL,
                    "--advertise-client-urls", ETCD_URL, "--listen-peer-urls", "http://127.0.0.1:2380",
                    "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
                    "--initial-cluster", "lab=http://127.0.0.1:2380", "--log-level", "warn"],
                   router_ns, os.path.join(self.tmp, "etcd.log"))

        def healthy():
            return run(["etcdctl", "--endpoints", ETCD_URL, "--dial-timeout", "1s", "--command-timeout", "1s",
                        "endpoint", "health"], ns=router_ns, check=False, timeout=15).returncode == 0
        wait_until(healthy, 30, "the lab's etcd to answer", interval=0.1)
        config = {"Network": POD_NETWORK, "SubnetLen": 24, "Backend": FLANNEL_BACKEND[self.mode]}
        run(["etcdctl", "--endpoints", ETCD_URL, "put", "/coreos.com/network/config"], ns=router_ns,
            input=json.dumps(config))
        self.flannel_config = config

    def start_route_reflector(self, router_ns):
        folder = os.path.join(self.tmp, "bird")
        os.makedirs(folder)
        conf, self.rr_socket = os.path.join(folder, "bird.conf"), os.path.join(folder, "bird.ctl")
        clients = "".join(
            f"protocol bgp {s.name} {{\n  local {ROUTER_IP} as {NODE_AS};\n  neighbor {s.ip} as {NODE_AS};\n"
            f"  rr client;\n  connect retry time 2;\n  error wait time 1, 4;\n"
            f"  ipv4 {{ import all; export all; }};\n}}\n" for s in SPECS.values())
        with open(conf, "w") as f:
            f.write(f"router id {ROUTER_IP};\nprotocol device {{ }}\n{clients}")
        self.spawn(["bird", "-f", "-c", conf, "-s", self.rr_socket], router_ns, os.path.join(folder, "bird.log"))
        wait_until(lambda: "Daemon is up" in self.birdc("show status"), 20, "BIRD (the route reflector) to answer",
                   interval=0.1)

    def birdc(self, *command):
        r = run(["birdc", "-s", self.rr_socket, *command], check=False, timeout=10)
        return r.stdout

    def control_args(self, spec):
        if self.source == "etcd":
            return ["--etcd-endpoints", ETCD_URL, "--accept", POD_NETWORK, "--vtep-mac", spec.mac,
                    "--etcd-start-wait", "0"]
        if self.source == "bgp":
            peers = [ROUTER_IP] if self.rr else [s.ip for s in SPECS.values() if s.name != spec.name]
            args = ["--bgp-as", str(NODE_AS), "--accept", POD_NETWORK, "--default-mode", self.mode]
            for peer in peers:
                args += ["--bgp-peer", f"{peer},as={NODE_AS}"]
            return args
        return []

    def static_routes(self, spec):
        if self.source != "static":
            return ""
        lines = []
        for other in SPECS.values():
            if other.name == spec.name:
                continue
            if self.mode == "host-gw" and other.subnet != spec.subnet:
                continue   # the default route via the gateway: the router knows the pods
            line = f"route {other.pod_cidr} via {other.ip} mode {self.mode}"
            if self.mode == "vxlan":
                line += f" vni {VNI} vtep-mac {other.mac}"
            lines.append(line)
        return "\n".join(lines) + "\n"

    # ---- state ----

    def expected_routes(self, node):
        """Other nodes' pod CIDRs this node must install from the source (the
        off-segment ones are refused in host-gw mode)."""
        me = SPECS[node]
        return {s.pod_cidr for s in SPECS.values()
                if s.name != node and (self.mode != "host-gw" or s.subnet == me.subnet)}

    def routes(self, node):
        return json.loads(self.nodes[node].ctl("--json", "route", "list").stdout)["routes"]

    def converged(self, node):
        source = "static" if self.source == "static" else self.source
        installed = {r["prefix"] for r in self.routes(node)
                     if r.get("source") == source and r.get("installed") and r.get("best")}
        return self.expected_routes(node) <= installed

    def record(self):
        """The kept lab's names and temporary dir, for `--down`."""
        os.makedirs(STATE_DIR, exist_ok=True)
        with open(os.path.join(STATE_DIR, self.prefix + ".json"), "w") as f:
            json.dump({"prefix": self.prefix, "tmp": self.tmp, "namespaces": self.namespaces}, f)

    def close(self):
        if self.kept:
            return
        for pod in self.pods:
            try:
                self.cni("DEL", SPECS[pod.node], pod.ns)
            except (RuntimeError, subprocess.TimeoutExpired, json.JSONDecodeError):
                pass   # the namespace goes anyway
        self.pods = []
        super().close()
        try:
            os.unlink(os.path.join(STATE_DIR, self.prefix + ".json"))
        except OSError:
            pass


def tear_down(prefix):
    """Removes a lab left by --keep (or by a run that was killed): the
    processes in its namespaces by PID (everything the lab starts runs in
    one; PIDs recorded earlier could have been reused since), the
    namespaces, its shared-memory segments, EAL and temporary dirs."""
    state_path = os.path.join(STATE_DIR, prefix + ".json")
    state = {}
    if os.path.exists(state_path):
        with open(state_path) as f:
            state = json.load(f)
    namespaces = [n for n in run(["ip", "netns", "list"]).stdout.split() if n.startswith(prefix + "-")]
    pids = set()
    for ns in namespaces:
        pids.update(int(p) for p in run(["ip", "netns", "pids", ns], check=False).stdout.split())
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(os.path.exists(f"/proc/{p}") for p in pids):
            time.sleep(0.05)
    for ns in namespaces:
        run(["ip", "netns", "del", ns], check=False)
    for folder in ("/dev/shm", "/var/run/dpdk"):
        if os.path.isdir(folder):
            for name in os.listdir(folder):
                if name.startswith(prefix + "-"):
                    path = os.path.join(folder, name)
                    shutil.rmtree(path, ignore_errors=True) if os.path.isdir(path) else os.unlink(path)
    if state.get("tmp", "").startswith("/tmp/" + prefix):
        shutil.rmtree(state["tmp"], ignore_errors=True)
    if os.path.exists(state_path):
        os.unlink(state_path)
    return len(namespaces)


class QuietChecks(Checks):
    """Checks that print only what failed: the tables show the rest."""

    def __call__(self, cond, what):
        if not cond:
            print("FAIL " + what, flush=True)
            self.failures.append(what)
        return cond


def require_tools(args):
    if os.geteuid() != 0:
        print("cluster lab: needs root (network namespaces, DPDK vdevs)")
        sys.exit(77)
    tools = ["ip", "bridge", "sysctl", "ping", "ethtool", "iperf3", "timeout"]
    tools += {"etcd": ["etcd", "etcdctl"], "bgp": ["gobgpd"] + (["bird", "birdc"] if args.rr else []),
              "static": []}[args.source]
    missing = [t for t in tools if shutil.which(t) is None]
    if not os.access(f"{CNI_PATH}/bridge", os.X_OK) or not os.access(f"{CNI_PATH}/host-local", os.X_OK):
        missing.append(f"{CNI_PATH}/bridge and host-local (containernetworking-plugins)")
    if missing:
        print("cluster lab: missing " + ", ".join(missing) + " (scripts/setup installs them)")
        sys.exit(77)
    probe = f"{args.prefix}-probe"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        print(f"cluster lab: cannot make network namespaces here ({made.stderr.strip()})")
        sys.exit(77)
    run(["ip", "netns", "del", probe], check=False)


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="scripts/demo", description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", required=True, help="meson build dir with the podfwd binaries")
    ap.add_argument("--source", choices=("etcd", "bgp", "static"), default="etcd",
                    help="how routes spread (default etcd, Flannel's layout)")
    ap.add_argument("--rr", action="store_true", help="with --source bgp: a BIRD route reflector, not a full mesh")
    ap.add_argument("--mode", choices=MODES, default="cross-subnet",
                    help="cross-subnet (default: host-gw on the segment, IPIP to node3), ipip, vxlan, host-gw")
    ap.add_argument("--keep", action="store_true", help="leave the lab up for exploration (scripts/demo --down)")
    ap.add_argument("--down", action="store_true", help="remove a lab kept by --keep, and exit")
    ap.add_argument("--prefix", default="pflab", help="of every name the lab makes (default pflab)")
    ap.add_argument("--iperf-seconds", type=float, default=1.0, help="per node pair (default 1)")
    args = ap.parse_args(argv)
    if args.rr and args.source != "bgp":
        ap.error("--rr is a BGP route reflector: it needs --source bgp")
    if args.source == "bgp" and args.mode == "vxlan":
        ap.error("--mode vxlan needs each node's VTEP MAC, which BGP does not carry (Calico's VXLAN mode does not "
                 "use BGP either): use --source etcd or static")
    if not 0.5 <= args.iperf_seconds <= 30:
        ap.error("--iperf-seconds: 0.5..30")
    return args


def main(argv):
    args = parse_args(argv)
    if args.down:
        if os.geteuid() != 0:
            print("cluster lab: --down needs root")
            return 1
        n = tear_down(args.prefix)
        print(f"cluster lab: removed {n} namespaces of '{args.prefix}'" if n else
              f"cluster lab: no lab '{args.prefix}' is up")
        return 0
    require_tools(args)
    if tear_down(args.prefix):
        print(f"cluster lab: removed the lab '{args.prefix}' an earlier run left up")
    bins = {"control": f"{args.build}/control/daemon/podfwd-control",
            "dataplane": f"{args.build}/dataplane/app/podfwd-dataplane", "ctl": f"{args.build}/control/ctl/podfwdctl"}
    check = QuietChecks()
    t0 = time.monotonic()
    lab = ClusterLab(bins, args.source, args.mode, args.rr, args.prefix, check)
    with lab:
        report.topology(lab)
        converged = report.wait_converged(lab, check)
        if converged:
            report.reachability(lab, check)
            report.throughput(lab, check, args.iperf_seconds)
        report.routes(lab)
        report.explore(lab, args)
        print(f"\ncluster lab: {'passed' if not check.failures else 'FAILED'} in {time.monotonic() - t0:.0f} s "
              f"(source {args.source}{' with a route reflector' if args.rr else ''}, mode {args.mode})", flush=True)
        if args.keep:
            lab.record()
            lab.kept = True   # leaving the `with` ends nothing: --down does
            print(f"cluster lab: kept up; `scripts/demo --down{'' if args.prefix == 'pflab' else ' --prefix ' + args.prefix}`"
                  " removes it")
    if check.failures:
        print(f"{len(check.failures)} check(s) failed:", *check.failures, sep="\n  ")
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        print("\ncluster lab: interrupted; torn down")
        sys.exit(130)
