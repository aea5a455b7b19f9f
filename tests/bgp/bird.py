"""A BIRD 2 fixture for the bgp suite: one `bird -f` per Bird object, in a
temporary dir of its own (config, control socket, pid file, log), with

- a router id that is also the local address of every BGP session
  (an address on the tests' private namespace's lo: not 127/8, whose next
  hops gobgpd refuses, "invalid nexthop address");
- `protocol device` and no kernel protocol: BIRD never touches the
  namespace's FIB;
- `protocol static blocks`: the blocks it advertises (`blackhole`
  routes; BGP sends them with next hop self);
- one `protocol bgp` per Neighbor: `strict bind` (every BGP speaker of the
  namespace has its own address on port 179), `multihop` (BIRD refuses a
  directly connected neighbour on lo: "Invalid next hop"), short error-wait
  and connect-retry timers, and, for route-reflector clients, `rr client`
  without `next hop self`: a reflector passes the originator's next hop on
  unchanged (RFC 4456), which is what test_bgp_rr.py checks.

BIRD's own view is the tests' oracle: protocols() and bgp_state() parse
`birdc show protocols [all]`, routes() parses `birdc show route all`.

Every BIRD started here is ended here by PID (stop(), the context manager,
and an atexit hook), with PR_SET_PDEATHSIG as the last resort."""
import atexit
import ctypes
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "etcd"))
from etcd_lab import wait_until  # noqa: E402

BIRD = shutil.which("bird") or "/usr/sbin/bird"
BIRDC = shutil.which("birdc") or "/usr/sbin/birdc"

_running = set()


def _die_with_parent():
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)


@atexit.register
def _stop_all():
    for bird in list(_running):
        bird.stop()


class Neighbor:
    """One BGP session of a Bird. `name` is the BIRD protocol's name (letters,
    digits, underscores; not a BIRD keyword: it is prefixed `p_` when none is
    given)."""

    def __init__(self, address, asn, name=None, password=None, hold=None, graceful_restart=True,
                 restart_time=None, rr_client=False, passive=False, port=None, next_hop_self=False,
                 import_all=True, export_all=True, disabled=False):
        self.address, self.asn = address, asn
        self.name = name or "p_" + address.replace(".", "_")
        self.password, self.hold = password, hold
        self.graceful_restart, self.restart_time = graceful_restart, restart_time
        self.rr_client, self.passive, self.port = rr_client, passive, port
        self.next_hop_self = next_hop_self
        self.import_all, self.export_all = import_all, export_all
        self.disabled = disabled

    def config(self, local, local_as):
        lines = [f"protocol bgp {self.name} {{",
                 f"  local {local} as {local_as};",
                 f"  neighbor {self.address}{' port %d' % self.port if self.port else ''} as {self.asn};",
                 "  strict bind yes;",
                 "  multihop;",
                 "  connect delay time 1;",
                 "  connect retry time 2;",
                 "  error wait time 1, 4;",
                 "  error forget time 10;"]
        if self.disabled:
            lines.append("  disabled;")
        if self.password is not None:
            lines.append(f'  password "{self.password}";')
        if self.hold is not None:
            # keepalives at a third, as RFC 4271 suggests; BIRD wants both >= 1 (hold >= 3)
            lines.append(f"  hold time {self.hold};")
            lines.append(f"  keepalive time {max(1, self.hold // 3)};")
        if self.graceful_restart:
            lines.append("  graceful restart on;")
            if self.restart_time is not None:
                lines.append(f"  graceful restart time {self.restart_time};")
        else:
            lines.append("  graceful restart off;")
        if self.passive:
            lines.append("  passive on;")
        if self.rr_client:
            lines.append("  rr client;")
        channel = ["import all;" if self.import_all else "import none;",
                   "export all;" if self.export_all else "export none;"]
        if self.next_hop_self:
            channel.append("next hop self;")
        lines.append("  ipv4 { " + " ".join(channel) + " };")
        lines.append("}")
        return "\n".join(lines)


class Bird:
    """One BIRD. `static`: the prefixes it originates. `rr_cluster_id`: the
    cluster id when it reflects routes (defaults to the router id)."""

    def __init__(self, name, router_id, asn, neighbors=(), static=(), start=True):
        self.name, self.router_id, self.asn = name, router_id, asn
        self.neighbors = list(neighbors)
        self.static = list(static)
        self.tmp = tempfile.mkdtemp(prefix=f"bird-{name}-")
        self.conf = f"{self.tmp}/bird.conf"
        self.sock = f"{self.tmp}/bird.ctl"
        self.pidfile = f"{self.tmp}/bird.pid"
        self.log = f"{self.tmp}/bird.log"
        self.proc = None
        self.frozen = False
        if start:
            try:
                self.start()
            except BaseException:
                self.stop()   # a BIRD that failed to start leaves nothing behind
                raise

    # ---- config ----

    def config_text(self):
        statics = "\n".join(f"  route {p} blackhole;" for p in self.static)
        parts = [f"router id {self.router_id};",
                 f'log "{self.log}" all;',
                 "protocol device { scan time 10; }",
                 "protocol static blocks {\n  ipv4;\n" + statics + ("\n" if statics else "") + "}"]
        parts += [n.config(self.router_id, self.asn) for n in self.neighbors]
        return "\n".join(parts) + "\n"

    def write_config(self):
        with open(self.conf + ".new", "w") as f:
            f.write(self.config_text())
        os.replace(self.conf + ".new", self.conf)

    def neighbor(self, address_or_name):
        return next(n for n in self.neighbors if address_or_name in (n.address, n.name))

    # ---- process ----

    def start(self):
        self.write_config()
        check = subprocess.run([BIRD, "-p", "-c", self.conf], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"bird -p refused {self.conf}: {check.stderr.strip()}\n{self.config_text()}")
        out = open(f"{self.tmp}/bird.out", "w")
        self.proc = subprocess.Popen([BIRD, "-f", "-c", self.conf, "-s", self.sock, "-P", self.pidfile],
                                     stdout=out, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        out.close()
        _running.add(self)

        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError(f"bird {self.name} exited ({self.proc.returncode}): {self.output()}")
            try:
                return "Daemon is up and running" in self.birdc("show status", timeout=2)
            except (RuntimeError, subprocess.TimeoutExpired):
                return False
        wait_until(ready, 20, f"bird {self.name} to answer on {self.sock}")
        return self

    def stop(self):
        """SIGTERM (SIGCONT first if frozen), then SIGKILL; removes its dir."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            if self.frozen:
                self.proc.send_signal(signal.SIGCONT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        _running.discard(self)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def freeze(self):
        """SIGSTOP: sessions stay open but BIRD sends nothing (no keepalives)."""
        self.proc.send_signal(signal.SIGSTOP)
        self.frozen = True

    def thaw(self):
        self.proc.send_signal(signal.SIGCONT)
        self.frozen = False

    def output(self):
        text = ""
        for path in (f"{self.tmp}/bird.out", self.log):
            try:
                with open(path) as f:
                    text += f.read()
            except OSError:
                pass
        return text

    # ---- birdc ----

    def birdc(self, *command, timeout=10):
        """birdc -s SOCK COMMAND: its output without the banner; RuntimeError
        when birdc cannot reach BIRD."""
        if self.frozen:
            raise RuntimeError(f"bird {self.name} is frozen (SIGSTOP)")
        r = subprocess.run([BIRDC, "-s", self.sock, *" ".join(command).split()],
                           capture_output=True, text=True, timeout=timeout)
        text = r.stdout + r.stderr
        if "Unable to connect" in text or r.returncode != 0:
            raise RuntimeError(f"birdc {' '.join(command)}: {text.strip()}")
        lines = text.splitlines()
        if lines and lines[0].startswith("BIRD ") and lines[0].endswith("ready."):
            lines = lines[1:]
        return "\n".join(lines)

    def reconfigure(self):
        """Writes the config from the current neighbours and statics and has
        BIRD load it; raises when BIRD refuses it."""
        with open(self.conf) as f:
            previous = f.read()
        self.write_config()
        parsed = subprocess.run([BIRD, "-p", "-c", self.conf], capture_output=True, text=True)
        if parsed.returncode != 0:
            with open(self.conf, "w") as f:
                f.write(previous)   # BIRD keeps running on the previous one
            raise RuntimeError(f"bird {self.name}: new config refused: {parsed.stderr.strip()}")
        out = self.birdc("configure")   # the file given with -c
        if "Reconfigured" not in out and "Reconfiguration in progress" not in out:
            raise RuntimeError(f"bird {self.name}: configure: {out}")
        wait_until(lambda: "Reconfiguration in progress" not in self.birdc("show status"), 10,
                    f"bird {self.name} to finish reconfiguring")
        return out

    def add_static(self, *prefixes):
        for p in prefixes:
            if p not in self.static:
                self.static.append(p)
        return self.reconfigure()

    def remove_static(self, *prefixes):
        self.static = [p for p in self.static if p not in prefixes]
        return self.reconfigure()

    def set_static(self, prefixes):
        self.static = list(prefixes)
        return self.reconfigure()

    def disable(self, name):
        return self.birdc("disable", name)

    def enable(self, name):
        return self.birdc("enable", name)

    def restart(self, name):
        return self.birdc("restart", name)

    # ---- views ----

    def protocols(self):
        """{name: {"proto", "table", "state", "info"}} from `show protocols`."""
        result = {}
        for line in self.birdc("show protocols").splitlines()[1:]:
            fields = line.split(None, 5)
            if len(fields) >= 5:
                result[fields[0]] = {"proto": fields[1], "table": fields[2], "state": fields[3],
                                     "info": fields[5].strip() if len(fields) > 5 else ""}
        return result

    def bgp_state(self, name):
        """The session's state as BIRD names it (`BGP state:` of `show
        protocols all NAME`): Idle, Connect, Active, OpenSent, OpenConfirm,
        Established, Down (protocol disabled)."""
        m = re.search(r"BGP state:\s+(\w+)", self.birdc("show protocols all", name))
        if m:
            return m.group(1)
        p = self.protocols().get(name)
        return "Down" if p and p["state"] == "down" else None

    def established(self, name):
        return self.bgp_state(name) == "Established"

    def protocol_detail(self, name):
        return self.birdc("show protocols all", name)

    _HEADER = re.compile(r"^(?P<prefix>\d+\.\d+\.\d+\.\d+/\d+)?\s+(?P<dest>\S+)\s+\[(?P<proto>\S+) (?P<since>[^\]]*?)"
                         r"(?: from (?P<from>[\d.]+))?\]\s*(?P<best>\*)?\s*\((?P<pref>\d+)\)")

    def route_list(self, *args):
        """Every route of `show route all ARGS`: a list of dicts with prefix,
        dest (blackhole, unreachable, unicast...), proto, from (the BGP peer),
        best, via (the gateway line, if any) and next_hop (BGP.next_hop)."""
        routes, prefix, cur = [], None, None
        for line in self.birdc("show route all", *args).splitlines():
            if line.startswith("Table ") or not line.strip():
                continue
            m = self._HEADER.match(line)
            if m:
                prefix = m.group("prefix") or prefix
                cur = {"prefix": prefix, "dest": m.group("dest"), "proto": m.group("proto"),
                       "from": m.group("from"), "best": m.group("best") == "*", "via": None, "next_hop": None,
                       "as_path": None}
                routes.append(cur)
                gw = re.match(r"^\S*\s+via ([\d.]+)", line)
                if gw:
                    cur["via"] = gw.group(1)
                continue
            if cur is None:
                continue
            s = line.strip()
            if s.startswith("via "):
                cur["via"] = s.split()[1]
            elif s.startswith("BGP.next_hop:"):
                cur["next_hop"] = s.split()[1]
            elif s.startswith("BGP.as_path:"):
                cur["as_path"] = s[len("BGP.as_path:"):].strip()
        return routes

    def routes(self, protocol=None):
        """{prefix: best route} (see route_list), of one protocol if given
        (`show route all protocol NAME`: that protocol's routes, best or not)."""
        args = ("protocol", protocol) if protocol else ()
        result = {}
        for r in self.route_list(*args):
            if r["best"] or protocol:
                result.setdefault(r["prefix"], r)
        return result

    def learned(self, protocol=None):
        """{prefix: BGP next hop} of what BIRD learned over BGP (from one protocol if given)."""
        return {p: r["next_hop"] for p, r in self.routes(protocol).items()
                if r["next_hop"] is not None and r["from"] is not None}

    def exported(self, protocol):
        """{prefix: route} BIRD sends to `protocol`'s neighbour (`show route export NAME`)."""
        result = {}
        for r in self.route_list("export", protocol):
            result.setdefault(r["prefix"], r)
        return result
