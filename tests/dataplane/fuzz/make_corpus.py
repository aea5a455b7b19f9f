#!/usr/bin/python3
"""Seed corpus for fastpath_fuzz: one file per behaviour the fuzzer should
start from. Byte 0 picks the port (bit 0: host) and the burst (bit 1: three
copies); the rest is an Ethernet frame, built by scapy."""
import os
import sys

from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import ARP, Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import raw

NODE = "10.168.0.2"
UPLINK, HOST = 0, 1


def seeds():
    eth = Ether(src="02:00:00:00:00:09", dst="02:00:00:00:00:02")
    pod = IP(src="10.244.0.7", dst="10.244.1.5", ttl=64) / TCP(sport=1234, dport=80) / b"payload"
    yield "hostgw", HOST, eth / pod
    yield "ipip_encap", HOST, eth / IP(src="10.244.0.7", dst="10.244.2.9", flags="DF") / UDP(sport=5, dport=53) / b"q"
    yield "vxlan_encap", HOST, eth / IP(src="10.244.0.7", dst="10.244.3.9") / TCP() / (b"x" * 40)
    yield "ipip_decap", UPLINK, eth / IP(src="192.168.5.9", dst=NODE, proto=4) / IP(src="10.244.2.9", dst="10.244.0.7") / TCP()
    inner = Ether(src="02:00:00:00:00:04", dst="02:00:00:00:00:0c") / IP(src="10.244.3.9", dst="10.244.0.7") / UDP()
    yield "vxlan_decap", UPLINK, eth / IP(src="192.168.5.10", dst=NODE) / UDP(sport=50000, dport=4789) / VXLAN(vni=1) / inner
    yield "to_node", UPLINK, eth / IP(src="10.168.0.3", dst=NODE) / TCP(dport=22)
    yield "arp", UPLINK, Ether(dst="ff:ff:ff:ff:ff:ff") / ARP(pdst=NODE)
    yield "options", HOST, eth / IP(src="10.244.0.7", dst="10.244.1.5", options=b"\x01\x01\x01\x01") / TCP()
    # Punts and the uplink's MAC check.
    yield "ttl_1", HOST, eth / IP(src="10.244.0.7", dst="10.244.1.5", ttl=1) / TCP()
    yield "frag_needed", HOST, eth / IP(src="10.244.0.7", dst="10.244.2.9", flags="DF") / UDP() / (b"m" * 1480)
    yield "not_for_us", UPLINK, Ether(src="02:00:00:00:00:09", dst="02:00:00:00:00:77") / pod
    yield "broadcast", UPLINK, Ether(src="02:00:00:00:00:09", dst="ff:ff:ff:ff:ff:ff") / pod
    # The exception path: proxy ARP, errors routed back through a tunnel, one
    # from the kernel, and packets no error may be sent about.
    yield "arp_proxy", HOST, Ether(src="02:00:00:00:00:01", dst="ff:ff:ff:ff:ff:ff") / ARP(
        hwsrc="02:00:00:00:00:01", psrc="10.244.0.7", pdst="10.244.1.5")
    yield "ttl_1_ipip_decap", UPLINK, eth / IP(src="192.168.5.9", dst=NODE, proto=4) / IP(
        src="10.244.2.9", dst="10.244.1.5", ttl=1) / UDP() / b"t"
    yield "frag_needed_vxlan_decap", UPLINK, eth / IP(src="192.168.5.10", dst=NODE) / UDP(sport=50000, dport=4789) / \
        VXLAN(vni=1) / Ether(src="02:00:00:00:00:04", dst="02:00:00:00:00:0c") / IP(
            src="10.244.3.9", dst="10.244.2.9", flags="DF") / UDP() / (b"m" * 1440)
    yield "ttl_1_from_kernel", HOST, eth / IP(src=NODE, dst="10.244.1.5", ttl=1) / UDP(dport=33434)
    yield "ttl_1_icmp_error", HOST, eth / IP(src="10.244.0.7", dst="10.244.1.5", ttl=1) / ICMP(type=3) / \
        IP(src="10.244.1.5", dst="10.244.0.7") / UDP()


def main(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    for name, port, frame in seeds():
        for burst in (0, 2):
            with open(os.path.join(out_dir, f"{name}.{burst}"), "wb") as f:
                f.write(bytes([port | burst]) + raw(frame))


if __name__ == "__main__":
    main(sys.argv[1])
