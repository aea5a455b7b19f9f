#!/usr/bin/python3
"""The forwarding half of scripts/demo: one node's dataplane on pcap vdevs.

A stand-in control plane installs the node's pod routes (host-gw, IPIP,
VXLAN, local); podfwd-dataplane forwards a scapy-built pcap from the host
port and one from the uplink; tshark shows what came out, and the
dataplane's counters say what happened to each packet. Nothing leaves this
machine: the ports are pcap files.

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
ROUTES = [
    "10.244.0.0/24=local",
    "10.244.1.0/24=host_gw,node=10.168.0.3,mac=02:00:00:00:00:03",
    "10.244.2.0/24=ipip,node=192.168.5.9,mac=02:00:00:00:00:99",
    "10.244.3.0/24=vxlan,node=192.168.6.7,mac=02:00:00:00:00:99,vtep=0a:00:00:00:06:07,vni=1",
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
        print("input: 5 packets from local pod 10.244.0.7 (host port) to host-gw, IPIP, VXLAN, local and "
              "unrouted destinations;\n       1 IPIP packet from node 192.168.5.9 (uplink) for the local pod")

        control = subprocess.Popen([f"{build}/tests/dataplane/dpdk/podfwd-test-table", table, *ROUTES],
                                   stdout=subprocess.PIPE, text=True)
        procs.append(control)
        if not control.stdout.readline().startswith("ready"):
            raise RuntimeError("the route table did not come up")
        print(f"\nroute table /dev/shm/{table}: " + "; ".join(ROUTES))

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
        dataplane.send_signal(signal.SIGINT)
        out, _ = dataplane.communicate(timeout=30)
        print("\npodfwd-dataplane (stopped with SIGINT):\n" + "\n".join("  " + line for line in out.splitlines()))
        show("out of the uplink (host-gw rewritten, IPIP and VXLAN encapsulated; TTL-1 inside)",
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
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(f"/var/run/dpdk/{table}", ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
