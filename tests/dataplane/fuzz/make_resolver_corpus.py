#!/usr/bin/python3
"""Seeds for resolver_fuzz: sequences of [op][len][bytes] (see the target's
header) that reach holding, learning, retransmission and failure."""
import os
import sys

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

NODE_MAC = "02:00:00:00:00:02"
HOST, UPLINK, TIME, ARP_FROM = 1, 0, 2, 3


def frame(port, pkt):
    b = bytes(pkt)
    return bytes([port, len(b)]) + b


def time(steps):
    return bytes([TIME, steps])


def arp(pick):
    return bytes([ARP_FROM, 1, pick])


def pod_packet(dst, ttl=64, df=True):
    return Ether(dst=NODE_MAC, src="02:00:00:00:00:01") / IP(src="10.244.0.7", dst=dst, ttl=ttl,
                                                            flags="DF" if df else 0) / UDP(sport=7, dport=9) / b"x"


def seeds():
    # Held for the host-gw node, then its reply to us.
    yield b"".join([frame(HOST, pod_packet("10.244.4.5"))] * 3) + time(1) + arp(0x00) + time(20)
    # Through the gateway (IPIP, VXLAN) and the connected subnet; the gateway
    # answers with a request, a stranger with a reply.
    yield (frame(HOST, pod_packet("10.244.2.9")) + frame(HOST, pod_packet("10.244.3.9")) +
           frame(HOST, pod_packet("10.168.0.77")) + arp(0x81) + arp(0x03) + time(5))
    # Nobody answers: retransmissions, failure, more packets refused.
    yield b"".join([frame(HOST, pod_packet("10.244.4.%d" % i)) for i in range(5)]) + time(255) + \
        frame(HOST, pod_packet("10.244.4.9")) + time(255)
    # Reachable, then stale and probed, then a changed MAC.
    yield frame(HOST, pod_packet("10.244.4.5")) + arp(0x00) + time(30) + frame(HOST, pod_packet("10.244.4.5")) + \
        time(10) + arp(0x08)
    # From the uplink: to a pod behind the unresolved node (routed back out).
    yield frame(UPLINK, pod_packet("10.244.4.6")) + arp(0x40)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for i, seed in enumerate(seeds()):
        with open(os.path.join(out, f"seed{i}"), "wb") as f:
            f.write(seed)


if __name__ == "__main__":
    main()
