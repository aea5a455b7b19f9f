"""e2e: the node's own IP through the exception path. Pods of node b (same
subnet) and node c (behind the router) ping node a's IP, and open a TCP
connection to a small echo server bound to it in node a's namespace: the
dataplane hands what is for the node IP (not a tunnel) to the kernel over
the TAP port, and routes the kernel's answers (the CIDRs of pods b and c,
through the table). Checks the replies, the echoed bytes, and node a's
to_host counter. Also node a's kernel pings node b's IP (the kernel's ARP,
answered by the dataplane's proxy ARP on the TAP) and node c's (via the
gateway): the kernel's own traffic routed by the dataplane.

    test_node_ip.py PODFWD_CONTROL PODFWD_DATAPLANE PODFWDCTL"""
import os
import sys

from e2e_lab import Checks, Lab, binaries, require_root_and_tools, run, seconds, wait_until

ECHO_PORT = 7007
ECHO_SERVER = r"""
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(4)
s.settimeout(30)
print("listening", flush=True)
for _ in range(int(sys.argv[3])):
    conn, peer = s.accept()
    with conn:
        conn.settimeout(10)
        data = conn.recv(4096)
        conn.sendall(b"echo from node a to " + peer[0].encode() + b": " + data)
"""
ECHO_CLIENT = r"""
import socket, sys
with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5) as s:
    s.sendall(sys.argv[3].encode())
    s.shutdown(socket.SHUT_WR)
    out = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        out += chunk
print(out.decode())
"""


def main():
    require_root_and_tools()
    bins = binaries(sys.argv)
    check = Checks()
    with Lab(bins, nodes="abc", checks=check) as lab:
        a = lab.nodes["a"]
        node_ip = a.spec.ip
        for src in ("b", "c"):
            before = a.stats()["to_host"]
            first = lab.reach(lab.pod_ns(src), node_ip)
            received, sent, rtt = lab.ping(lab.pod_ns(src), node_ip, count=5)
            to_host = a.stats()["to_host"] - before
            print(f"ping pod {src} -> node a {node_ip}: first_reply={seconds(first)} received={received}/{sent} "
                  f"rtt_avg_ms={rtt} a.to_host+={to_host}", flush=True)
            check(first is not None and received == sent == 5, f"pod {src} -> node a's IP: 5 of 5 replies")
            check(to_host >= 6, f"node a handed the requests to its kernel ({to_host})")

        log = os.path.join(lab.tmp, "echo-server.log")
        server = lab.spawn([sys.executable, "-c", ECHO_SERVER, node_ip, ECHO_PORT, 2], a.ns, log)
        wait_until(lambda: "listening" in open(log).read() or server.poll() is not None, 10, "the echo server")
        for src in ("b", "c"):
            before = a.stats()["to_host"]
            r = run([sys.executable, "-c", ECHO_CLIENT, node_ip, ECHO_PORT, f"hello from pod {src}"],
                    ns=lab.pod_ns(src), check=False, timeout=20)
            reply = r.stdout.strip()
            to_host = a.stats()["to_host"] - before
            print(f"tcp pod {src} -> node a {node_ip}:{ECHO_PORT}: reply={reply!r} a.to_host+={to_host}", flush=True)
            check(reply == f"echo from node a to {lab.pod_ip(src)}: hello from pod {src}",
                  f"TCP pod {src} -> node a's IP echoed ({r.stderr.strip()[-200:]})")
            check(to_host >= 3, f"node a handed the TCP segments to its kernel ({to_host})")
        lab.stop(server)

        # Node b: on the subnet, by the kernel's ARP (answered by the
        # dataplane's proxy ARP on the TAP); node c: via the gateway.
        for dst in ("b", "c"):
            dst_ip = lab.nodes[dst].spec.ip
            received, sent, rtt = lab.ping(a.ns, dst_ip, count=3)
            neigh = run(["ip", "neigh", "show", dst_ip, "dev", "pfhost"], ns=a.ns).stdout.strip()
            print(f"ping node a -> node {dst} {dst_ip}: received={received}/{sent} rtt_avg_ms={rtt}; "
                  f"node a's kernel: {neigh or 'no neighbour entry'}", flush=True)
            check(received == sent == 3, f"node a's kernel reaches node {dst}'s IP through the dataplanes")
        check(f"lladdr {a.spec.mac}" in run(["ip", "neigh", "show", lab.nodes["b"].spec.ip, "dev", "pfhost"],
                                            ns=a.ns).stdout,
              "node a's kernel learned node b's IP at the uplink MAC (proxy ARP)")
    check.exit()


if __name__ == "__main__":
    main()
