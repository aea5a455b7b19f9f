"""A TCP relay in front of etcd that can stall watch streams: the failure
where a watch's connection stays up and no byte comes any more (etcd's
HTTP gateway stopping a watcher that fell behind, a middlebox dropping one
direction). Every connection is relayed as is; freeze_watches() stops
relaying server to client on the watch connections open at that moment
(not reading them either: the server sees a receiver that does not read).
Connections opened afterwards, a restarted watch included, flow.

    with StallProxy(etcd.url()) as proxy:   # proxy.url() instead of etcd's
        proxy.freeze_watches()

Threads are daemons; close() (leaving the `with`) shuts every socket."""
import socket
import threading
from urllib.parse import urlparse


class _Connection:
    def __init__(self, client, upstream):
        self.client, self.upstream = client, upstream
        self.watch = False
        self.frozen = threading.Event()
        self.closed = False

    def close(self):
        self.closed = True
        for s in (self.client, self.upstream):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


class StallProxy:
    def __init__(self, upstream_url):
        u = urlparse(upstream_url)
        self.upstream = (u.hostname, u.port)
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.connections = []
        self.lock = threading.Lock()
        self.closing = False
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self):
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}"

    def freeze_watches(self):
        """Stalls the watch streams open now; returns how many."""
        with self.lock:
            watches = [c for c in self.connections if c.watch and not c.closed]
        for c in watches:
            c.frozen.set()
        return len(watches)

    def _accept(self):
        while not self.closing:
            try:
                client, _ = self.listener.accept()
            except OSError:
                continue
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()   # etcd is down: the client sees the refusal at once
                continue
            c = _Connection(client, upstream)
            with self.lock:
                self.connections.append(c)
            threading.Thread(target=self._to_server, args=(c,), daemon=True).start()
            threading.Thread(target=self._to_client, args=(c,), daemon=True).start()

    def _to_server(self, c):
        first = True
        try:
            while data := c.client.recv(65536):
                if first:
                    c.watch = data.startswith(b"POST /v3/watch")
                    first = False
                c.upstream.sendall(data)
        except OSError:
            pass
        c.close()

    def _to_client(self, c):
        try:
            while not c.frozen.is_set() and (data := c.upstream.recv(65536)):
                if c.frozen.is_set():
                    break   # this chunk and everything after: never delivered
                c.client.sendall(data)
            if c.frozen.is_set():
                while not c.closed:   # hold the connection open, silent
                    threading.Event().wait(0.1)
                return
        except OSError:
            pass
        c.close()

    def close(self):
        self.closing = True
        self.listener.close()
        with self.lock:
            for c in self.connections:
                c.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
