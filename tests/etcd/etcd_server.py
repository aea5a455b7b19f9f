"""A real etcd for the etcd suite: one member or a small cluster on
127.0.0.1, free ports, a temporary data dir, optionally TLS with client
certificates (a CA, a server certificate for 127.0.0.1 and a client
certificate, made with openssl in the temporary dir).

    with EtcdCluster() as etcd:              # or EtcdCluster(members=3, tls=True)
        rev = etcd.put("/k", "v")
        etcd.kill(0); etcd.start(0)          # same data dir and ports

Every member is started here and ended here by PID (SIGTERM, then SIGKILL);
the temporary dir goes with close(), which runs on leaving the `with`, at
interpreter exit (atexit) and on SIGTERM (meson's timeout), whatever failed.
Readiness is polled (`etcdctl endpoint health`), never slept for."""
import atexit
import base64
import ctypes
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time

ETCD = shutil.which("etcd") or "/usr/bin/etcd"
ETCDCTL = shutil.which("etcdctl") or "/usr/bin/etcdctl"
_live = set()   # clusters not closed yet


def _close_all():
    for cluster in list(_live):
        cluster.close()


def _on_sigterm(signum, frame):
    raise SystemExit(128 + signum)   # unwinds: finally blocks and atexit clean up


atexit.register(_close_all)
if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
    signal.signal(signal.SIGTERM, _on_sigterm)


def die_with_parent():
    """In the child before exec: SIGKILL when the test process dies, even by
    SIGKILL (PR_SET_PDEATHSIG), so no etcd outlives it."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)


def free_ports(n):
    """n distinct ports nobody listens on now (held open together so they differ)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_certs(folder):
    """A CA, a server cert for 127.0.0.1 (also usable as a client cert: etcd's
    JSON gateway dials the gRPC server with it) and a client cert; EC keys."""
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl("req", "-x509", *key, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
             "-subj", "/CN=podfwd-test-ca", cwd=folder)
    for name, ext in (("server", "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                                 "extendedKeyUsage=serverAuth,clientAuth\n"),
                      ("client", "extendedKeyUsage=clientAuth\n")):
        with open(os.path.join(folder, name + ".ext"), "w") as f:
            f.write(ext)
        _openssl("req", *key, "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=podfwd-" + name,
                 cwd=folder)
        _openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", name + ".crt", "-days", "2", "-extfile", name + ".ext", cwd=folder)
    return {n: os.path.join(folder, n) for n in ("ca.crt", "server.crt", "server.key", "client.crt", "client.key")}


class Member:
    def __init__(self, name, client_port, peer_port, data_dir, scheme):
        self.name = name
        self.client_url = f"{scheme}://127.0.0.1:{client_port}"
        self.peer_url = f"http://127.0.0.1:{peer_port}"
        self.data_dir = data_dir
        self.proc = None
        self.starts = 0

    def running(self):
        return self.proc is not None and self.proc.poll() is None


class EtcdCluster:
    def __init__(self, members=1, tls=False, quota_mb=128):
        self.tmp = tempfile.mkdtemp(prefix="podfwd-etcd-")
        _live.add(self)
        self.tls = tls
        self.quota = quota_mb << 20
        self.certs = make_certs(self.tmp) if tls else None
        ports = free_ports(2 * members)
        self.members = [Member(f"m{i}", ports[2 * i], ports[2 * i + 1], os.path.join(self.tmp, f"m{i}.data"),
                               "https" if tls else "http") for i in range(members)]
        self.token = os.path.basename(self.tmp)
        try:
            for i in range(members):   # all at once: a cluster needs its quorum to answer
                self._spawn(i)
            for i in range(members):
                self.wait_healthy(i)
        except BaseException:
            self.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- members ----

    def url(self, i=0):
        return self.members[i].client_url

    def urls(self):
        return [m.client_url for m in self.members]

    def _spawn(self, i):
        m = self.members[i]
        m.starts += 1
        args = [ETCD, "--name", m.name, "--data-dir", m.data_dir,
                "--listen-client-urls", m.client_url, "--advertise-client-urls", m.client_url,
                "--listen-peer-urls", m.peer_url, "--initial-advertise-peer-urls", m.peer_url,
                "--initial-cluster", ",".join(f"{x.name}={x.peer_url}" for x in self.members),
                "--initial-cluster-token", self.token, "--initial-cluster-state", "new",
                "--quota-backend-bytes", str(self.quota), "--max-request-bytes", str(1 << 20),
                "--logger", "zap", "--log-level", "warn"]
        if self.tls:
            c = self.certs
            args += ["--cert-file", c["server.crt"], "--key-file", c["server.key"],
                     "--client-cert-auth", "--trusted-ca-file", c["ca.crt"]]
        log = open(os.path.join(self.tmp, f"{m.name}.{m.starts}.log"), "w")
        m.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                  preexec_fn=die_with_parent)
        log.close()

    def log(self, i=0):
        m = self.members[i]
        with open(os.path.join(self.tmp, f"{m.name}.{m.starts}.log")) as f:
            return f.read()

    def wait_healthy(self, i=0, seconds=30):
        m = self.members[i]
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if not m.running():
                raise RuntimeError(f"etcd {m.name} exited ({m.proc.returncode}):\n" + self.log(i)[-4000:])
            # A probe that overruns is one more failed poll, not the verdict: on a
            # loaded machine (the ASan tree beside others) etcdctl's own start
            # can take seconds.
            try:
                r = self._etcdctl(["endpoint", "health"], [m.client_url], timeout=10, check=False,
                                  command_timeout="1s")
                if r.returncode == 0:
                    return
            except subprocess.TimeoutExpired:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"etcd {m.name} not healthy after {seconds} s:\n" + self.log(i)[-4000:])

    def start(self, i=0):
        """(Re)starts member i on its data dir and ports; returns when it is healthy."""
        if self.members[i].running():
            raise RuntimeError(f"etcd {self.members[i].name} is running")
        self._spawn(i)
        self.wait_healthy(i)

    def _end(self, i, sig):
        m = self.members[i]
        if m.running():
            m.proc.send_signal(sig)
            try:
                m.proc.wait(15)
            except subprocess.TimeoutExpired:
                m.proc.kill()
                m.proc.wait()

    def stop(self, i=0):
        self._end(i, signal.SIGTERM)
        self.wait_leader()

    def kill(self, i=0, leader=True):
        """SIGKILL; with leader=True, until the others agree on a leader
        (leader=False: the quorum is lost on purpose)."""
        self._end(i, signal.SIGKILL)
        if leader:
            self.wait_leader()

    def wait_leader(self, seconds=30):
        """With a member gone from a cluster: until the running members agree
        on a leader among them (a write then does not time out on the election)."""
        running = [m for m in self.members if m.running()]
        if len(self.members) == 1 or not running:
            return
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            r = self._etcdctl(["endpoint", "status", "-w", "json"], [m.client_url for m in running], check=False,
                              command_timeout="1s")
            if r.returncode == 0:
                status = [s["Status"] for s in json.loads(r.stdout)]
                ids = {s["header"]["member_id"] for s in status}
                leaders = {s.get("leader", 0) for s in status}   # 0 (omitted): no leader yet
                if len(status) == len(running) and len(leaders) == 1 and leaders <= ids:
                    return
            time.sleep(0.1)
        raise TimeoutError(f"no etcd leader among the running members after {seconds} s")

    def restart(self, i=0):
        self.stop(i)
        self.start(i)

    def pause(self, i=0):
        self.members[i].proc.send_signal(signal.SIGSTOP)

    def resume(self, i=0):
        self.members[i].proc.send_signal(signal.SIGCONT)

    def close(self):
        for m in self.members if hasattr(self, "members") else ():
            if m.running():
                m.proc.send_signal(signal.SIGCONT)
                m.proc.kill()
                m.proc.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)
        _live.discard(self)

    # ---- etcdctl ----

    def tls_args(self, client_cert=True):
        if not self.tls:
            return []
        c = self.certs
        certs = ["--cert", c["client.crt"], "--key", c["client.key"]] if client_cert else []
        return ["--cacert", c["ca.crt"], *certs]

    def _etcdctl(self, args, endpoints, stdin=None, timeout=30, check=True, command_timeout="10s"):
        cmd = [ETCDCTL, "--endpoints", ",".join(endpoints), "--command-timeout", command_timeout,
               "--dial-timeout", "2s", *self.tls_args(), *args]
        r = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout,
                           env=dict(os.environ, ETCDCTL_API="3"))
        if check and r.returncode != 0:
            raise RuntimeError(f"etcdctl {' '.join(args)}: exit {r.returncode}: {r.stderr.strip()}")
        return r

    def etcdctl(self, *args, stdin=None, member=None):
        """etcdctl ARGS against member `member`, or every running member; stdout."""
        endpoints = [self.url(member)] if member is not None else \
            [m.client_url for m in self.members if m.running()]
        return self._etcdctl(list(args), endpoints, stdin=stdin).stdout

    def _json(self, *args, stdin=None, member=None):
        return json.loads(self.etcdctl(*args, "-w", "json", stdin=stdin, member=member))

    def put(self, key, value, lease=None, member=None):
        """Puts `value` (given on stdin, byte for byte); returns the store's revision."""
        args = ["put", key] + ([f"--lease={lease:x}"] if lease else [])
        return int(self._json(*args, stdin=value, member=member)["header"]["revision"])

    def put_json(self, key, obj, lease=None, member=None):
        return self.put(key, json.dumps(obj), lease=lease, member=member)

    def delete(self, key, prefix=False, member=None):
        """Deletes `key` (or every key under it); returns the store's revision."""
        return int(self._json("del", key, *(["--prefix"] if prefix else []), member=member)["header"]["revision"])

    def get_all(self, prefix, member=None):
        """(revision, {key: value}) of every key under `prefix`."""
        out = self._json("get", prefix, "--prefix", member=member)
        kvs = {base64.b64decode(kv["key"]).decode(): base64.b64decode(kv.get("value", "")).decode(errors="replace")
               for kv in out.get("kvs", [])}
        return int(out["header"]["revision"]), kvs

    def get_kv(self, key, member=None):
        """The key's raw record (value decoded; lease, mod_revision as ints), or None."""
        out = self._json("get", key, member=member)
        if not out.get("kvs"):
            return None
        kv = out["kvs"][0]
        return {"value": base64.b64decode(kv.get("value", "")).decode(errors="replace"),
                "lease": int(kv.get("lease", 0)), "mod_revision": int(kv["mod_revision"]),
                "version": int(kv["version"])}

    def get(self, key, member=None):
        kv = self.get_kv(key, member)
        return None if kv is None else kv["value"]

    def revision(self, member=None):
        return int(self._json("get", "/podfwd-test-no-such-key", member=member)["header"]["revision"])

    def lease_grant(self, ttl, member=None):
        return int(self._json("lease", "grant", str(ttl), member=member)["ID"])

    def lease_revoke(self, lease, member=None):
        self.etcdctl("lease", "revoke", f"{lease:x}", member=member)

    def lease_ttl(self, lease, member=None):
        """(granted TTL, remaining TTL) of a lease; remaining -1 when it is gone."""
        out = self._json("lease", "timetolive", f"{lease:x}", member=member)
        return int(out.get("granted-ttl", 0)), int(out.get("ttl", -1))

    def compact(self, revision, physical=True, member=None):
        self.etcdctl("compact", str(revision), *(["--physical"] if physical else []), member=member)

    def _gateway(self, member):
        """An HTTP(S) connection to a member's JSON gateway (etcd's /v3/...)."""
        url = self.url(member if member is not None else next(i for i, m in enumerate(self.members) if m.running()))
        host, port = url.split("://")[1].split(":")
        if not self.tls:
            return http.client.HTTPConnection(host, int(port), timeout=30)
        ctx = ssl.create_default_context(cafile=self.certs["ca.crt"])
        ctx.load_cert_chain(self.certs["client.crt"], self.certs["client.key"])
        return http.client.HTTPSConnection(host, int(port), context=ctx, timeout=30)

    @staticmethod
    def _post(conn, path, obj):
        conn.request("POST", path, body=json.dumps(obj))
        resp = conn.getresponse()
        answer = json.loads(resp.read())
        if resp.status != 200:
            raise RuntimeError(f"{path}: HTTP {resp.status}: {answer}")
        return answer

    def put_many(self, items, member=None):
        """Puts each (key, value) of `items` in turn through the JSON gateway
        on one connection (etcdctl would take a process each); returns the
        last revision."""
        conn = self._gateway(member)
        answer = None
        try:
            for key, value in items:
                answer = self._post(conn, "/v3/kv/put", {"key": _b64(key), "value": _b64(value)})
        finally:
            conn.close()
        return int(answer["header"]["revision"])

    def txn(self, puts=(), deletes=(), member=None):
        """One transaction (one revision, one event per key): puts of
        (key, value) and deletes of keys; returns its revision."""
        ops = [{"request_put": {"key": _b64(k), "value": _b64(v)}} for k, v in puts]
        ops += [{"request_delete_range": {"key": _b64(k)}} for k in deletes]
        conn = self._gateway(member)
        try:
            answer = self._post(conn, "/v3/kv/txn", {"success": ops})
        finally:
            conn.close()
        return int(answer["header"]["revision"])


def _b64(text):
    return base64.b64encode(text.encode()).decode()
