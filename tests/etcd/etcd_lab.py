"""Shared by the etcd suite's scripts: podfwd-control nodes with the etcd
source (tests/control/integration/lab.py's Lab, without a dataplane, for any
node IP and pod CIDR), podfwdctl JSON wrappers, wait_until, and models of
what the table must hold given etcd's content (Flannel, Calico).

Scripts are run as `test_etcd_X.py PODFWD_CONTROL PODFWDCTL [PODFWD_DATAPLANE]`."""
import ipaddress
import json
import os
import subprocess
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "control", "integration"))
from lab import Checks, Lab, enter_private_netns  # noqa: E402,F401
import etcd_server  # noqa: E402
from etcd_server import EtcdCluster  # noqa: E402,F401

UPLINK = "10.168.0.0/24"
GATEWAY = "10.168.0.1"
FLANNEL = "/coreos.com/network"
CALICO = "/calico"
CALICO_POOLS = "/calico/resources/v3/projectcalico.org/ippools/"
CALICO_NODES = "/calico/resources/v3/projectcalico.org/nodes/"
CALICO_BLOCKS = "/calico/ipam/v2/assignment/ipv4/block/"


def binaries(argv):
    bins = {"control": argv[1], "ctl": argv[2]}
    if len(argv) > 3:
        bins["dataplane"] = argv[3]
    return bins


def run_tests(check, *tests):
    """The scripts' main: in a network namespace of their own, each
    test(bins) in turn; one test's failure (an exception too) does not hide
    the others'. Exits non-zero when any check failed."""
    enter_private_netns()   # before etcd starts: it listens on the namespace's 127.0.0.1
    bins = binaries(sys.argv)
    for test in tests:
        print(f"--- {test.__name__}", flush=True)
        try:
            test(bins)
        except Exception as e:
            traceback.print_exc()
            check(False, f"{test.__name__}: {type(e).__name__}: {e}")
    check.exit()


def wait_until(condition, seconds, what, interval=0.05):
    """Polls `condition` until it returns something true (returned); after
    `seconds` raises TimeoutError naming `what` and the last value seen."""
    deadline = time.monotonic() + seconds
    value = None
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {seconds} s waiting for {what} (last: {value!r})")
        time.sleep(interval)


def etcd_args(etcd, layout="flannel", client_cert=True, endpoints=None, **options):
    """podfwd-control's options for `etcd` (an EtcdCluster); keyword options
    become --name-with-dashes VALUE."""
    args = ["--etcd-endpoints", ",".join(endpoints or etcd.urls()), "--etcd-layout", layout, "--accept", "10.0.0.0/8"]
    if etcd.tls:
        args += ["--etcd-cafile", etcd.certs["ca.crt"]]
        if client_cert:
            args += ["--etcd-certfile", etcd.certs["client.crt"], "--etcd-keyfile", etcd.certs["client.key"]]
    for name, value in options.items():
        args += ["--" + name.replace("_", "-"), str(value)]
    return args


class EtcdCtl:
    """podfwdctl JSON wrappers about the etcd source, for any Lab."""

    def sources(self):
        out = self.ctl_json("sources")
        return out["sources"] if isinstance(out, dict) else out

    def source(self, name="etcd"):
        return next(s for s in self.sources() if s["name"] == name)

    def etcd(self):
        """The etcd source's `etcd` object (plus the Source's fields under `source`)."""
        s = self.source()
        return dict(s.get("etcd") or {}, source=s)

    def changes(self):
        return self.source()["changes"]

    def etcd_routes(self):
        """{prefix: Route} of source etcd, from `podfwdctl route list --json`."""
        return {r["prefix"]: r for r in self.ctl_json("route", "list", "--source", "etcd")["routes"]}

    def route_get(self, ip):
        return self.ctl_json("route", "get", ip)

    def etcd_table(self):
        """What the etcd source states, projected (see project())."""
        return {p: project(r) for p, r in self.etcd_routes().items()}

    def wait_table(self, expected, seconds=15):
        """Until etcd_table() == expected: True; False (and the difference
        printed) if it does not get there within `seconds`."""
        seen = {}

        def equal():
            seen["table"] = self.etcd_table()
            return seen["table"] == expected
        try:
            return wait_until(equal, seconds, "the etcd routes")
        except TimeoutError:
            got = seen["table"]
            for p in sorted(set(got) | set(expected)):
                if got.get(p) != expected.get(p):
                    print(f"     {p}: expected {expected.get(p)}, table {got.get(p)}")
            return False

    def wait_revision(self, revision, seconds=15):
        """Until the source has applied etcd's `revision` (a barrier for
        checking that something did NOT change)."""
        return wait_until(lambda: (lambda e: e if e.get("revision", 0) >= revision else None)(self.etcd()),
                          seconds, f"the etcd source at revision {revision}")

    def wait_state(self, states, seconds=15):
        return wait_until(lambda: (lambda s: s if s["state"] in states else None)(self.source()),
                          seconds, f"the etcd source in state {states}")

    def log_lines(self, needle):
        return [line for line in self.control_log().splitlines() if needle in line]


class Node(EtcdCtl, Lab):
    """One podfwd-control (no dataplane) with its own table, socket and state
    dir in a temporary dir; ended by PID and cleaned up by close()."""

    def __init__(self, bins, name, node_ip="10.168.0.2", pod_cidr="10.244.0.0/24", args=(), static=""):
        self.node_ip, self.pod_cidr = node_ip, pod_cidr
        super().__init__(bins, name, static, control_args=args, dataplane=False)

    def start_control(self, extra=()):
        self._control_logs += 1
        log = open(f"{self.tmp}/control.{self._control_logs}.log", "w")
        cidr = ["--pod-cidr", self.pod_cidr] if self.pod_cidr else []
        self.control = subprocess.Popen(
            [self.bins["control"], "--node-ip", self.node_ip, "--uplink", UPLINK, "--gateway", GATEWAY, *cidr,
             "--table", self.table, "--socket", self.socket_path, "--state-dir", f"{self.tmp}/state",
             "--static-routes", self.static_path, "--allow-empty-static",
             # The probes for prefixes nobody announced look them up: no
             # default route via the gateway to answer them.
             "--no-default-route", *self.control_args, *extra],
            stdout=log, stderr=subprocess.STDOUT, preexec_fn=etcd_server.die_with_parent)
        log.close()
        wait_until(self._control_answers, 30, "podfwd-control to answer on its socket", interval=0.02)

    def stop(self):
        """SIGTERM, as at a node's shutdown."""
        if self.control.poll() is None:
            self.kill_control(15)


class DataplaneLab(EtcdCtl, Lab):
    """lab.py's Lab (podfwd-control and podfwd-dataplane on net_tap ports in
    the private namespace), with the etcd wrappers."""


def route(mode, via=None, vni=None, vtep_mac=None):
    r = {"effective_mode": mode, "via": via}
    if mode == "vxlan":
        r.update(vni=vni, vtep_mac=vtep_mac)
    return r


def project(r):
    """A Route object reduced to what etcd decides: the dataplane's mode,
    the next-hop node, and for VXLAN the VNI and the VTEP's MAC."""
    return route(r["effective_mode"], r.get("via"), r.get("vni"), r.get("vtep_mac"))


def on_uplink(ip):
    return ipaddress.ip_address(ip) in ipaddress.ip_network(UPLINK)


# ---- Flannel ----

def flannel_config(backend="host-gw", vni=1, direct=False, network="10.244.0.0/16"):
    return {"Network": network, "SubnetLen": 24,
            "Backend": {"Type": backend, "VNI": vni, "Port": 8472, "DirectRouting": direct}}


def flannel_lease(ip, backend="host-gw", mac=None, vni=1):
    return {"PublicIP": ip, "PublicIPv6": None, "BackendType": backend,
            "BackendData": {"VNI": vni, "VtepMAC": mac} if backend == "vxlan" else None}


def lease_key(cidr, prefix=FLANNEL):
    return f"{prefix}/subnets/{cidr.replace('/', '-')}"


def flannel_expected(kvs, own_cidr, prefix=FLANNEL):
    """{prefix: route} the etcd source must state for etcd's keys `kvs`;
    bad keys (which the tests know) state nothing."""
    try:
        config = json.loads(kvs[prefix + "/config"])
        network = ipaddress.ip_network(config["Network"])
    except (KeyError, ValueError):
        return {}
    backend = config.get("Backend") or {}
    routes = {}
    for key, value in kvs.items():
        if not key.startswith(prefix + "/subnets/"):
            continue
        try:
            subnet = ipaddress.ip_network(key.rsplit("/", 1)[1].replace("-", "/"))
            lease = json.loads(value)
            ip = lease["PublicIP"]
            ipaddress.ip_address(ip)
        except (ValueError, KeyError, TypeError):
            continue
        if not subnet.subnet_of(network) or str(subnet) == own_cidr:
            continue
        if lease["BackendType"] == "vxlan" and not (backend.get("DirectRouting") and on_uplink(ip)):
            data = lease.get("BackendData") or {}
            routes[str(subnet)] = route("vxlan", ip, data.get("VNI") or backend.get("VNI") or 1, data["VtepMAC"])
        else:
            routes[str(subnet)] = route("host-gw", ip)
    return routes


# ---- Calico ----

def calico_pool(name, cidr, ipip="Never", vxlan="Never", block_size=26):
    return {"kind": "IPPool", "apiVersion": "projectcalico.org/v3", "metadata": {"name": name},
            "spec": {"cidr": cidr, "ipipMode": ipip, "vxlanMode": vxlan, "blockSize": block_size}}


def calico_node(name, address):
    return {"kind": "Node", "apiVersion": "projectcalico.org/v3", "metadata": {"name": name},
            "spec": {"bgp": {"ipv4Address": address}}}


def calico_block(cidr, node):
    return {"cidr": cidr, "affinity": f"host:{node}", "allocations": [None] * 64, "unallocated": list(range(64)),
            "attributes": [], "deleted": False}


def calico_expected(kvs, node_name):
    pools, nodes, routes = [], {}, {}
    for key, value in kvs.items():
        try:
            obj = json.loads(value)
            if key.startswith(CALICO_POOLS):
                pools.append((ipaddress.ip_network(obj["spec"]["cidr"]), obj["spec"]))
            elif key.startswith(CALICO_NODES):
                nodes[key[len(CALICO_NODES):]] = obj["spec"]["bgp"]["ipv4Address"].split("/")[0]
        except (ValueError, KeyError, TypeError):
            continue
    for key, value in kvs.items():
        if not key.startswith(CALICO_BLOCKS):
            continue
        try:
            block = json.loads(value)
            cidr = ipaddress.ip_network(block["cidr"])
            node = block["affinity"].removeprefix("host:")
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
        if node == node_name:
            routes[str(cidr)] = route("local")
            continue
        if node not in nodes:
            continue
        ip = nodes[node]
        spec = next((s for net, s in pools if cidr.subnet_of(net)), {})
        ipip = spec.get("ipipMode", "Never")
        if ipip == "Always" or (ipip == "CrossSubnet" and not on_uplink(ip)):
            routes[str(cidr)] = route("ipip", ip)
        else:
            routes[str(cidr)] = route("host-gw", ip)
    return routes
