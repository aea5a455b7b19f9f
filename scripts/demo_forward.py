#!/usr/bin/python3
"""The forwarding half of scripts/demo: one node, control plane and dataplane.

podfwd-control starts from a static routes file (a host-gw neighbour node and
this node's own pod CIDR); podfwdctl injects an IPIP and a VXLAN route and
lists the RIB; podfwd-dataplane forwards a scapy-built pcap from the host
port and one from the uplink; tshark shows what came out, and podfwdctl
stats says what happened to each packet. Nothing leaves this machine: the
ports are pcap files, the control socket lives in a temporary directory.

    demo_forward.py BUILD_DIR
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.utils import wrpcap

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "dataplane", "app"))
from stats_reader import STATE_RUNNING, read_stats, wait_for  # noqa: E402

NODE_IP, NODE_MAC, HOST_MAC = "10.168.0.2", "02:00:00:00:00:02", "02:00:00:00:00:fe"
STATIC_ROUTES = """# node b shares our L2 segment: host-gw
route 10.244.1.0/24 via 10.168.0.3 mode host-gw
neigh 10.168.0.3 02:00:00:00:00:03
# the router towards the other subnets
neigh 10.168.0.1 02:00:00:00:00:99
"""
CLI_ROUTES = [   # nodes behind the gateway: tunnelled
    ["10.244.2.0/24", "via", "192.168.5.9", "mode", "ipip"],
    ["10.244.3.0/24", "via", "192.168.6.7", "mode", "vxlan", "vtep-mac", "0a:00:00:00:06:07"],
]


def show(title, pcap):
    print(f"\n{title}:")
    fields = ["eth.src", "eth.dst", "ip.src", "ip.dst", "ip.proto", "ip.ttl", "udp.dstport", "vxlan.vni"]
    out = subprocess.run(["tshark", "-r", pcap, "-n", "-T", "fields", "-E", "separator=|", "-E", "aggregator=,",
                          "-E", "occurrence=a", *sum((["-e", f] for f in fields), [])],
                         capture_output=True, text=True, check=True).stdout
    print("  " + " | ".join(f.split(".")[-1] for f in fields) + "   (outer,inner where tunnelled)")
    for line in out.splitlines():
        print("  " + " | ".join(line.split("|")))


def main(build):
    work = tempfile.mkdtemp(prefix="podfwd-demo-")
    table = f"podfwd-demo-fwd.{os.getpid()}"
    procs = []
    try:
        pod = "10.244.0.7"
        from_host = [Ether(src=HOST_MAC, dst=NODE_MAC) / IP(src=pod, dst=dst, ttl=64) / TCP(dport=80) / b"hello"
                     for dst in ("10.244.1.5", "10.244.2.5", "10.244.3.5", "10.244.0.9", "192.0.2.1")]
        from_uplink = [Ether(src="02:00:00:00:00:99", dst=NODE_MAC) / IP(src="192.168.5.9", dst=NODE_IP) /
                       IP(src="10.244.2.5", dst=pod, ttl=63) / UDP(dport=53) / b"reply"]
        wrpcap(f"{work}/host_in.pcap", from_host)
        wrpcap(f"{work}/uplink_in.pcap", from_uplink)
        print("input: 5 packets from local pod 10.244.0.7 (host port) to host-gw, IPIP, VXLAN and local "
              "destinations, and one off the pod network\n       (the default route via the gateway); "
              "1 IPIP packet from node 192.168.5.9 (uplink) for the local pod")

        with open(f"{work}/routes.conf", "w") as f:
            f.write(STATIC_ROUTES)
        sock = f"{work}/control.sock"
        control = subprocess.Popen(
            [f"{build}/control/daemon/podfwd-control", "--node-ip", NODE_IP, "--uplink", "10.168.0.0/24",
             "--gateway", "10.168.0.1", "--pod-cidr", "10.244.0.0/24", "--table", table, "--socket", sock,
             "--state-dir", work, "--static-routes", f"{work}/routes.conf"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        procs.append(control)

        def ctl(*args):
            return subprocess.run([f"{build}/control/ctl/podfwdctl", "--socket", sock, "--table", table, *args],
                                  capture_output=True, text=True)
        wait_for(lambda: control.poll() is None and ctl("status").returncode == 0, 20, "podfwd-control")
        print("\npodfwd-control: node 10.168.0.2 on 10.168.0.0/24, own pods 10.244.0.0/24, static routes:\n" +
              "\n".join("  " + line for line in STATIC_ROUTES.splitlines()))
        for route in CLI_ROUTES:
            print("$ podfwdctl route add " + " ".join(route))
            r = ctl("route", "add", *route)
            print((r.stdout + r.stderr).rstrip())
            if r.returncode != 0:
                raise RuntimeError("podfwdctl route add failed")
        print("$ podfwdctl route add 10.244.4.0/24 via 192.168.7.1 mode host-gw   # refused: not one L2 hop away")
        r = ctl("route", "add", "10.244.4.0/24", "via", "192.168.7.1", "mode", "host-gw")
        print((r.stdout + r.stderr).rstrip() + f"   (exit {r.returncode})")
        print("$ podfwdctl route list")
        print(ctl("route", "list").stdout.rstrip())

        dataplane = subprocess.Popen(
            [f"{build}/dataplane/app/podfwd-dataplane", "--no-pci", "--no-huge", "--no-shconf",
             "--file-prefix", table, "-m", "256",
             "-l", "0", "--log-level=lib.eal:warning",
             f"--vdev=net_pcap0,rx_pcap={work}/uplink_in.pcap,tx_pcap={work}/uplink_out.pcap",
             f"--vdev=net_pcap1,rx_pcap={work}/host_in.pcap,tx_pcap={work}/host_out.pcap",
             "--", "--node-ip", NODE_IP, "--node-mac", NODE_MAC, "--host-mac", HOST_MAC, "--table", table,
             "--uplink-port", "0", "--host-port", "1"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        procs.append(dataplane)
        stats_path = f"/dev/shm/{table}.stats.{dataplane.pid}"
        wait_for(lambda: dataplane.poll() is None and (s := read_stats(stats_path)) and
                 s["state"] == STATE_RUNNING and s["rx"] == [len(from_uplink), len(from_host)],
                 30, "the dataplane to take every packet")
        print("\n$ podfwdctl stats")
        print(ctl("stats").stdout.rstrip())
        dataplane.send_signal(signal.SIGINT)
        out, _ = dataplane.communicate(timeout=30)
        print("\npodfwd-dataplane (stopped with SIGINT):\n" + "\n".join("  " + line for line in out.splitlines()))
        show("out of the uplink (first the dataplane's gratuitous ARP for the node IP; host-gw rewritten, "
             "IPIP and VXLAN encapsulated; TTL-1 inside)",
             f"{work}/uplink_out.pcap")
        show("out of the host port (to the node's kernel: local pods, the decapsulated reply)",
             f"{work}/host_out.pcap")
        return 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
        for segment in (f"/dev/shm/{table}",):
            if os.path.exists(segment):
                os.unlink(segment)
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(f"/var/run/dpdk/{table}", ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
