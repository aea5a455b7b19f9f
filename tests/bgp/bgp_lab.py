"""Shared by the bgp suite's scripts: podfwd-control nodes with the BGP
source (tests/etcd/etcd_lab.py's Node, on addresses of the private
namespace's lo: node IPs 10.168.0.2, .3, .4 on the uplink 10.168.0.0/24,
BIRDs on 10.168.0.10 and up; not 127/8: gobgpd treats an UPDATE whose next
hop is a loopback address as a withdrawal, "invalid nexthop address"), wrappers of `bgp.peers` and of the routes of source bgp, and what
the table must hold given what the BIRDs advertise (bird.py).

Scripts are run as `test_bgp_X.py PODFWD_CONTROL PODFWDCTL [PODFWD_DATAPLANE]`,
each in a network namespace of its own (etcd_lab.run_tests)."""
import glob
import ipaddress
import os
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "etcd"))
from etcd_lab import Checks, DataplaneLab, Node, run_tests, wait_until  # noqa: E402,F401
import etcd_server  # noqa: E402
import bird as bird_fixture  # noqa: E402
from bird import Neighbor  # noqa: E402,F401

UPLINK = "10.168.0.0/24"
GATEWAY = "10.168.0.1"
ACCEPT = "10.0.0.0/8"
NODE_AS = 65001


def ensure_local(ip):
    """Adds ip/32 to the namespace's lo (once): every BGP speaker of a test
    has its own address there, port 179."""
    r = subprocess.run(["ip", "-4", "-o", "addr", "show", "dev", "lo"], capture_output=True, text=True, check=True)
    if f" {ip}/" not in r.stdout:
        subprocess.run(["ip", "addr", "add", f"{ip}/32", "dev", "lo"], check=True)


class Bird(bird_fixture.Bird):
    """bird.Bird on its router id, added to the namespace's lo first."""

    def __init__(self, name, router_id, *args, **kwargs):
        ensure_local(router_id)
        super().__init__(name, router_id, *args, **kwargs)


def peer_arg(address, asn, password=None, passive=False, port=None, hold=None, restart_time=None):
    """A --bgp-peer value: ADDR,as=N[,password=P][,passive][,port=N][,hold=S][,restart-time=S]."""
    spec = f"{address},as={asn}"
    if password is not None:
        spec += f",password={password}"
    if passive:
        spec += ",passive"
    if port is not None:
        spec += f",port={port}"
    if hold is not None:
        spec += f",hold={hold}"
    if restart_time is not None:
        spec += f",restart-time={restart_time}"
    return spec


def bgp_args(asn=NODE_AS, peers=(), accept=(ACCEPT,), **options):
    """podfwd-control's BGP options; keyword options become --name-with-dashes VALUE."""
    args = ["--bgp-as", str(asn)]
    for p in peers:
        args += ["--bgp-peer", p]
    for a in accept:
        args += ["--accept", a]
    for name, value in options.items():
        args += ["--" + name.replace("_", "-"), str(value)]
    return args


class BgpCtl:
    """Control-socket wrappers about the BGP source, for any Lab."""

    _gobgpd_pids = None

    def bgp(self):
        """The `bgp.peers` response ({"ok", "bgp", "peers"}); remembers gobgpd's pid."""
        out = self.request({"op": "bgp.peers"})
        if not out.get("ok"):
            raise RuntimeError(f"bgp.peers: {out}")
        pid = (out.get("bgp") or {}).get("gobgpd_pid")
        if pid:
            if self._gobgpd_pids is None:
                self._gobgpd_pids = set()
            self._gobgpd_pids.add(pid)
        return out

    def bgp_status(self):
        return self.bgp()["bgp"]

    def peers(self):
        """{address: peer object}."""
        return {p["address"]: p for p in self.bgp()["peers"]}

    def peer(self, address):
        return self.peers().get(address)

    def peer_state(self, address):
        p = self.peer(address)
        return p["state"] if p else None

    def wait_established(self, *addresses, seconds=30):
        return wait_until(lambda: all(self.peer_state(a) == "established" for a in addresses), seconds,
                          f"{self.table}: sessions to {addresses} established",
                          interval=0.1) and self.peers()

    def sources(self):
        out = self.request({"op": "sources"})
        return out["sources"]

    def source(self, name="bgp"):
        return next(s for s in self.sources() if s["name"] == name)

    def bgp_routes(self):
        """{prefix: Route} of source bgp (route.list with `source`, every page)."""
        routes, after = {}, None
        while True:
            page = self.request({"op": "route.list", "source": "bgp", "after": after})
            if not page.get("ok"):
                raise RuntimeError(f"route.list source bgp: {page}")
            routes.update({r["prefix"]: r for r in page["routes"] if r["source"] == "bgp"})
            after = page.get("next")
            if after is None:
                return routes

    def bgp_table(self):
        """{prefix: via} of source bgp."""
        return {p: r.get("via") for p, r in self.bgp_routes().items()}

    def route_get(self, ip):
        return self.request({"op": "route.get", "ip": ip})

    def wait_bgp_table(self, expected, seconds=20, quiet=False):
        """Until bgp_table() == expected: True; False (and the difference
        printed) if it does not get there within `seconds`."""
        seen = {}

        def equal():
            seen["table"] = self.bgp_table()
            return seen["table"] == expected
        try:
            return wait_until(equal, seconds, "the bgp routes", interval=0.1)
        except TimeoutError:
            if not quiet:
                got = seen["table"]
                for p in sorted(set(got) | set(expected)):
                    if got.get(p) != expected.get(p):
                        print(f"     {self.table}: {p}: expected {expected.get(p)}, got {got.get(p)}")
            return False

    def installed(self, prefix):
        """route.get of the prefix's first address: (table_nexthop, route)."""
        got = self.route_get(str(ipaddress.ip_network(prefix).network_address))
        return got.get("table_nexthop"), got.get("route")

    # ---- clean-up and diagnosis ----

    def logs(self):
        """podfwd-control's logs and whatever log gobgpd left in the node's dir."""
        text = ""
        paths = sorted(glob.glob(f"{self.tmp}/control.*.log")) + sorted(
            p for p in glob.glob(f"{self.tmp}/**/*", recursive=True)
            if os.path.isfile(p) and ("gobgp" in os.path.basename(p) or p.endswith(".log"))
            and "/control." not in p)
        for path in paths:
            try:
                with open(path, errors="replace") as f:
                    text += f"==== {path}\n" + "".join(f.readlines()[-60:])
            except OSError:
                pass
        return text

    def leftover_gobgpd(self):
        """The gobgpd children seen in bgp.peers that still run (should be none once the daemon is gone)."""
        alive = []
        for pid in sorted(self._gobgpd_pids or ()):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if b"gobgpd" in f.read():
                        with open(f"/proc/{pid}/stat") as s:
                            if s.read().split(") ")[-1].split()[0] != "Z":
                                alive.append(pid)
            except OSError:
                pass
        return alive

    def reap_gobgpd(self):
        """Kills (by PID) the gobgpd children of this node that outlived it; returns their PIDs."""
        alive = self.leftover_gobgpd()
        for pid in alive:
            os.kill(pid, signal.SIGKILL)
        return alive


class BgpNode(BgpCtl, Node):
    """One podfwd-control (no dataplane) with the BGP source, on `node_ip`
    (gobgpd listens and connects from it), its own table, socket and state dir."""

    def __init__(self, bins, name, node_ip, pod_cidr, asn=NODE_AS, peers=(), accept=(ACCEPT,), args=(),
                 uplink=UPLINK, gateway=GATEWAY, **options):
        self.uplink, self.gateway = uplink, gateway
        self.asn = asn
        ensure_local(node_ip)
        super().__init__(bins, name, node_ip=node_ip, pod_cidr=pod_cidr,
                         args=[*bgp_args(asn, peers, accept, **options), *args])

    def start_control(self, extra=()):
        self._control_logs += 1
        log = open(f"{self.tmp}/control.{self._control_logs}.log", "w")
        cidr = ["--pod-cidr", self.pod_cidr] if self.pod_cidr else []
        self.control = subprocess.Popen(
            [self.bins["control"], "--node-ip", self.node_ip, "--uplink", self.uplink, "--gateway", self.gateway,
             *cidr, "--table", self.table, "--socket", self.socket_path, "--state-dir", f"{self.tmp}/state",
             "--static-routes", self.static_path, "--allow-empty-static",
             # The probes for prefixes nobody announced look them up: no
             # default route via the gateway to answer them.
             "--no-default-route", *self.control_args, *extra],
            stdout=log, stderr=subprocess.STDOUT, preexec_fn=etcd_server.die_with_parent)
        log.close()
        wait_until(self._control_answers, 30, "podfwd-control to answer on its socket", interval=0.02)

    def close(self):
        try:
            self.bgp()   # the last gobgpd pid, if the daemon still answers
        except Exception:
            pass
        super().close()
        left = self.reap_gobgpd()
        if left:
            print(f"WARNING {self.table}: gobgpd {left} outlived podfwd-control; killed", flush=True)
            self.gobgpd_leftovers = left


class BgpDataplaneLab(BgpCtl, DataplaneLab):
    """lab.py's Lab (podfwd-control and podfwd-dataplane on net_tap ports)
    with the BGP wrappers; node IP 10.168.0.2 on uplink 10.168.0.0/24 (lab.py's)."""

    def __init__(self, *args, **kwargs):
        ensure_local("10.168.0.2")
        super().__init__(*args, **kwargs)

    def close(self):
        try:
            self.bgp()
        except Exception:
            pass
        super().close()
        left = self.reap_gobgpd()
        if left:
            print(f"WARNING {self.table}: gobgpd {left} outlived podfwd-control; killed", flush=True)


def expected_from(bird, accept=ACCEPT, refuse=()):
    """{prefix: next hop} podfwd must learn from `bird` (a Bird over eBGP or
    iBGP, originating its `static` blocks with next hop itself): the blocks
    inside `accept`, not the default route, not overlapping `refuse`
    (uplink, own pod CIDRs)."""
    acc = ipaddress.ip_network(accept)
    result = {}
    for p in bird.static:
        net = ipaddress.ip_network(p)
        if net.prefixlen == 0 or not net.subnet_of(acc):
            continue
        if any(net.overlaps(ipaddress.ip_network(r)) for r in refuse):
            continue
        result[p] = bird.router_id
    return result


def dump_on_failure(check, before, nodes=(), birds=()):
    """Prints every node's and BIRD's logs when checks failed since `before` (len(check.failures))."""
    if len(check.failures) == before:
        return
    for n in nodes:
        try:
            print(f"---- {n.table} bgp.peers: {n.bgp()}")
        except Exception as e:
            print(f"---- {n.table} bgp.peers: {e}")
        print(n.logs())
    for b in birds:
        try:
            print(f"---- bird {b.name} protocols: {b.birdc('show protocols')}")
        except Exception as e:
            print(f"---- bird {b.name}: {e}")
        print("".join(b.output().splitlines(True)[-40:]))


class Cleanup:
    """Closes nodes and BIRDs (in reverse order) however the test ends."""

    def __init__(self):
        self.items = []

    def add(self, item):
        self.items.append(item)
        return item

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for item in reversed(self.items):
            try:
                item.close() if hasattr(item, "close") else item.stop()
            except Exception as e:
                print(f"cleanup of {item}: {e}")
        self.items.clear()


def timed(fn):
    """Prints how long fn (a test) took."""
    def wrapper(bins):
        t0 = time.monotonic()
        try:
            return fn(bins)
        finally:
            print(f"    ({fn.__name__}: {time.monotonic() - t0:.1f} s)", flush=True)
    wrapper.__name__ = fn.__name__
    return wrapper
