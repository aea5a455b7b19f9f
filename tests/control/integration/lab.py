"""A one-node lab for the control suite: podfwd-control and podfwd-dataplane
in a private network namespace, the dataplane's ports on net_tap devices
(pfup0: the uplink, pfhost0: the host port) that the test reaches from the
kernel side with raw AF_PACKET sockets. Packets are built and dissected with
scapy; the dataplane's counters are read with dataplane/app/stats_reader.py.

Every process is started here and ended here by PID; the namespace dies with
the test process (unshare --net), segments and EAL files are removed."""
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "dataplane", "app"))
from stats_reader import STATE_RUNNING, read_stats, wait_for  # noqa: E402,F401

from scapy.layers.inet import IP, UDP  # noqa: E402
from scapy.layers.l2 import Ether  # noqa: E402

NODE_IP = "10.168.0.2"
NODE_MAC = "02:00:00:00:00:02"
POD_CIDR = "10.244.0.0/24"
ETH_P_ALL = 0x0003


def enter_private_netns():
    """Re-executes the calling script in a network namespace of its own."""
    if os.environ.get("PODFWD_LAB_NETNS") == "1":
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        for key in ("all", "default"):   # no IPv6 chatter on the taps
            with open(f"/proc/sys/net/ipv6/conf/{key}/disable_ipv6", "w") as f:
                f.write("1")
        return
    env = dict(os.environ, PODFWD_LAB_NETNS="1")
    os.execvpe("unshare", ["unshare", "--net", "--", sys.executable, *sys.argv], env)


class Checks:
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


class Lab:
    def __init__(self, bins, name, static_routes="", control_args=(), dataplane=True):
        self.bins = bins
        self.table = f"pfc-{name}-{os.getpid()}"
        self.tmp = tempfile.mkdtemp(prefix=self.table + "-")
        self.socket_path = f"{self.tmp}/control.sock"
        self.static_path = f"{self.tmp}/routes.conf"
        self.control_args = list(control_args)
        self.control = None
        self.dataplane = None
        self._control_logs = 0
        self.write_static(static_routes)
        try:
            self.start_control()
            if dataplane:
                self.start_dataplane()
                self.up = self._raw_socket("pfup0")
                self.host = self._raw_socket("pfhost0")
        except BaseException:
            self.close()   # a lab that failed to start leaves nothing behind
            raise

    # ---- processes ----

    def write_static(self, text):
        with open(self.static_path, "w") as f:
            f.write(text)

    def start_control(self, extra=()):
        self._control_logs += 1
        log = open(f"{self.tmp}/control.{self._control_logs}.log", "w")
        self.control = subprocess.Popen(
            [self.bins["control"], "--node-ip", NODE_IP, "--uplink", "10.168.0.0/24", "--gateway", "10.168.0.1",
             "--pod-cidr", POD_CIDR, "--table", self.table, "--socket", self.socket_path,
             "--state-dir", f"{self.tmp}/state", "--static-routes", self.static_path, "--allow-empty-static", *self.control_args, *extra],
            stdout=log, stderr=subprocess.STDOUT)
        wait_for(lambda: self._control_answers(), 20, "podfwd-control to answer on its socket")

    def _control_answers(self):
        if self.control.poll() is not None:
            raise RuntimeError(f"podfwd-control exited ({self.control.returncode}):\n" + self.control_log())
        try:
            return self.request({"op": "status"}).get("ok")
        except OSError:
            return False

    def control_log(self):
        with open(f"{self.tmp}/control.{self._control_logs}.log") as f:
            return f.read()

    def start_dataplane(self):
        self.eal_prefix = self.table
        log = open(f"{self.tmp}/dataplane.log", "w")
        self.dataplane = subprocess.Popen(
            [self.bins["dataplane"], "--no-pci", "--no-huge", "--no-shconf", "--file-prefix", self.eal_prefix,
             "-m", "256", "-l", "0", "--log-level=lib.eal:warning", "--log-level=pmd.net.tap:error",
             "--vdev=net_tap0,iface=pfup0", "--vdev=net_tap1,iface=pfhost0",
             "--", "--node-ip", NODE_IP, "--node-mac", NODE_MAC, "--table", self.table],
            stdout=log, stderr=subprocess.STDOUT)
        self.stats_path = f"/dev/shm/{self.table}.stats.{self.dataplane.pid}"

        def running():
            if self.dataplane.poll() is not None:
                raise RuntimeError(f"podfwd-dataplane exited ({self.dataplane.returncode})")
            s = read_stats(self.stats_path)
            return s and s["state"] == STATE_RUNNING
        wait_for(running, 30, "podfwd-dataplane to run")

    def kill_control(self, sig=signal.SIGKILL):
        self.control.send_signal(sig)
        self.control.wait(10)

    def close(self):
        for proc in (self.dataplane, self.control):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGINT if proc is self.dataplane else signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        for path in (f"/dev/shm/{self.table}", f"/var/run/dpdk/{self.table}"):
            if os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
            elif os.path.exists(path):
                os.unlink(path)
        if self.dataplane is not None and os.path.exists(self.stats_path):
            os.unlink(self.stats_path)
        shutil.rmtree(self.tmp, ignore_errors=True)

    # ---- control ----

    def request(self, obj):
        """One request on the control socket (the protocol, not the CLI)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(self.socket_path)
            s.sendall((json.dumps(obj) + "\n").encode())
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(1 << 20)
                if not chunk:
                    break
                data += chunk
        return json.loads(data)

    def ctl(self, *args):
        """podfwdctl ARGS: (exit code, stdout, stderr)."""
        r = subprocess.run([self.bins["ctl"], "--socket", self.socket_path, "--table", self.table, *args],
                           capture_output=True, text=True, timeout=30)
        return r.returncode, r.stdout, r.stderr

    def ctl_json(self, *args):
        rc, out, err = self.ctl("--json", *args)
        if rc != 0:
            raise RuntimeError(f"podfwdctl {' '.join(args)}: exit {rc}: {err.strip()}")
        return json.loads(out)

    def routes(self):
        """Every route in the RIB, following route.list's pages."""
        routes, after = {}, None
        while True:
            page = self.request({"op": "route.list", "after": after})
            routes.update({(r["prefix"], r["source"]): r for r in page["routes"]})
            after = page.get("next")
            if after is None:
                return routes

    # ---- packets ----

    def _raw_socket(self, iface):
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        s.bind((iface, 0))
        s.setblocking(False)
        return s

    def drain(self, sock):
        while select.select([sock], [], [], 0)[0]:
            sock.recv(65535)

    def stats(self):
        return read_stats(self.stats_path)

    def pod_packet(self, dst, tag, ttl=20):
        return (Ether(dst=NODE_MAC, src="02:00:00:00:ee:01") /
                IP(src="10.244.0.5", dst=dst, ttl=ttl) / UDP(sport=4000, dport=5000) / f"probe {tag}")

    def send_from_host(self, pkt):
        self.host.send(bytes(pkt))

    def expect_on_uplink(self, tag, seconds=5):
        """The first frame on the uplink carrying `probe <tag>`, dissected, or None."""
        needle = f"probe {tag}".encode()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if select.select([self.up], [], [], max(0, deadline - time.monotonic()))[0]:
                frame = self.up.recv(65535)
                if frame.endswith(needle):
                    return Ether(frame)
        return None

    def probe(self, dst, tag, ttl=20):
        """Sends one pod packet from the host port; returns what left on the uplink (or None)."""
        self.drain(self.up)
        self.send_from_host(self.pod_packet(dst, tag, ttl))
        return self.expect_on_uplink(tag)

    def probe_dropped(self, dst, tag, reason):
        """Sends one packet that must be dropped for `reason`: waits for the
        counter to move, then checks that nothing left on the uplink."""
        before = self.stats()["drop_by_name"][reason]
        self.drain(self.up)
        self.send_from_host(self.pod_packet(dst, tag))
        wait_for(lambda: self.stats()["drop_by_name"][reason] > before, 10, f"drop counter {reason}")
        return self.expect_on_uplink(tag, seconds=0.2) is None


def binaries(argv):
    return {"control": argv[1], "dataplane": argv[2], "ctl": argv[3]}
