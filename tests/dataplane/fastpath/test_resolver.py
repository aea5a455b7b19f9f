#!/usr/bin/python3
"""Golden tests of ARP resolution (dataplane/resolver.h) through
podfwd-pcap-forward: next hops without a MAC, packets held for them, the
requests on the wire, retransmission, failure and ageing.

Inputs are built with scapy, each with its timestamp (the tool's clock):
packets from pods on the host port, ARP from neighbours on the uplink, two
pcaps the tool merges by time. Outputs are checked with scapy and with
tshark's dissectors, every counter exactly, and every input packet is
accounted for: sent, or counted as dropped.

    /usr/bin/python3 test_resolver.py PATH/TO/podfwd-pcap-forward [unittest args]
"""

import copy
import json
import os
import subprocess
import sys
import unittest

import golden
from golden import (GW_MAC, HOSTGW_POD, N3_IP, N3_MAC, NODE_IP, UPLINK_MAC, FastPathCase, Run,
                    arp_frame, config_a, from_host, ip_bytes, tshark)
from scapy.all import ARP, IP, UDP, Ether, Raw, raw, rdpcap, wrpcap

T0 = 1000.0           # the first packet's time: every case counts from it
BROADCAST = "ff:ff:ff:ff:ff:ff"
ZERO_MAC = "00:00:00:00:00:00"

N7_IP, N7_MAC = "10.168.0.7", "02:00:00:00:00:07"   # host-gw, on the uplink subnet, MAC unknown
GW_IP = "10.168.0.1"                                  # the uplink's gateway (GW_MAC)
N9_IP = "10.200.0.9"                                  # IPIP node on another subnet: reached through GW_IP
POD7 = "10.244.7.5"
POD9 = "10.244.10.5"

NEXTHOPS = {
    "n3": ({"name": "n3", "node_ip": N3_IP, "mode": "host-gw", "mac": N3_MAC}, "10.244.1.0/24"),
    "n7": ({"name": "n7", "node_ip": N7_IP, "mode": "host-gw", "l2_ip": N7_IP}, "10.244.7.0/24"),
    "n9": ({"name": "n9", "node_ip": N9_IP, "mode": "ipip", "l2_ip": GW_IP}, "10.244.10.0/24"),
    "subnet": ({"name": "subnet", "mode": "host-gw", "connected": True}, "10.168.0.0/24"),
}


def config_r(*names, **neighbour):
    """Node A with the named next hops (and their routes) and a resolver
    with these neighbour settings (NeighbourConfig's defaults otherwise)."""
    return {"node": config_a()["node"],
            "nexthops": [copy.deepcopy(NEXTHOPS[n][0]) for n in names],
            "routes": [{"prefix": NEXTHOPS[n][1], "via": n} for n in names],
            "neighbour": neighbour}


def at(pkt, t):
    pkt.time = t
    return pkt


def reply_to_us(ip, mac, t):
    """The neighbour's answer to our request: unicast to the uplink MAC."""
    return at(arp_frame(2, ip, NODE_IP, mac, UPLINK_MAC, eth_dst=UPLINK_MAC), t)


def is_arp(frame):
    return frame[12:14] == b"\x08\x06"


class ResolverCase(FastPathCase):
    def resolve(self, host=(), uplink=(), config=None, announce=False, run_after_ms=None, burst=None, expect_rc=0):
        """Runs the tool on the host-port and uplink packets (each list in
        its own pcap); returns a Run, with `times` the uplink's timestamps
        relative to T0."""
        if golden.DATAPLANE:
            self.skipTest("the pcap tool's resolver")
        self.runs += 1
        d = os.path.join(self.tmp, "run%d" % self.runs)
        os.mkdir(d)
        cfg = os.path.join(d, "cfg.json")
        with open(cfg, "w") as f:
            json.dump(config, f)
        cmd = [golden.TOOL, "--config", cfg, "--out-uplink", os.path.join(d, "up.pcap"),
               "--out-host", os.path.join(d, "host.pcap"), "--counters", os.path.join(d, "counters.json")]
        for port, pkts in (("host", host), ("uplink", uplink)):
            if pkts:
                path = os.path.join(d, port + ".in.pcap")
                wrpcap(path, list(pkts))
                cmd += ["--in-" + port, path]
        if announce:
            cmd.append("--announce")
        if run_after_ms is not None:
            cmd += ["--run-after-ms", str(run_after_ms)]
        if burst is not None:
            cmd += ["--burst", str(burst)]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, expect_rc, "tool exit status; stderr: " + p.stderr)
        if p.returncode != 0:
            return Run(d, None, None, None, p.returncode, p.stderr)
        with open(os.path.join(d, "counters.json")) as f:
            counters = json.load(f)
        up = rdpcap(os.path.join(d, "up.pcap"))
        r = Run(d, [raw(x) for x in up], [raw(x) for x in rdpcap(os.path.join(d, "host.pcap"))], counters, 0,
                p.stderr)
        r.times = [round(float(x.time) - T0, 6) for x in up]
        # Every input packet accounted for, by the tool and by its outputs:
        # sent, answered (an ARP request become our reply), or counted as
        # dropped (an ARP frame learned from is dropped too).
        inputs = len(host) + len(uplink)
        actions = counters["actions"]
        self.assertEqual(sum(counters["verdicts"].values()), inputs, "the tool's verdicts")
        data_out = len([f for f in r.uplink if not is_arp(f)]) + len(r.host)
        self.assertEqual(data_out + actions["arp_reply"] + sum(counters["drops"].values()) + actions["arp_learned"],
                         inputs, "every input sent or counted as dropped")
        self.assertEqual(counters["frames_sent"] + actions["arp_reply"], len([f for f in r.uplink if is_arp(f)]),
                         "ARP frames: ours and the answers")
        self.assertEqual(counters["frames_sent"], counters["actions"]["arp_request"], "each request counted")
        return r

    def assert_arp_request(self, frame, target, eth_dst=BROADCAST):
        """frame is our request: who-has `target`, tell the node (IP and uplink MAC)."""
        self.assertEqual(len(frame), 42, "an ARP frame of 42 bytes (the NIC pads)")
        e = Ether(frame)
        self.assertEqual((e.dst, e.src, e.type), (eth_dst, UPLINK_MAC, 0x0806), "Ethernet header")
        a = e[ARP]
        self.assertEqual((a.hwtype, a.ptype, a.hwlen, a.plen, a.op), (1, 0x0800, 6, 4, 1), "ARP request of IPv4")
        self.assertEqual((a.hwsrc, a.psrc), (UPLINK_MAC, NODE_IP), "sender: the node")
        self.assertEqual((a.hwdst, a.pdst), (ZERO_MAC, target), "target: the next hop, MAC unknown")

    def assert_tshark_arp(self, r, rows_expected):
        """tshark's ARP dissector on the uplink pcap: (frame number, eth.dst,
        target IP) of each of our requests, in order."""
        rows = tshark(r.uplink_pcap, ["frame.number", "eth.dst", "eth.src", "arp.opcode", "arp.src.hw_mac",
                                      "arp.src.proto_ipv4", "arp.dst.hw_mac", "arp.dst.proto_ipv4"])
        got = [(int(x["frame.number"]), x["eth.dst"], x["arp.dst.proto_ipv4"]) for x in rows if x["arp.opcode"]]
        self.assertEqual(got, rows_expected, "tshark: our ARP requests")
        for x in rows:
            if x["arp.opcode"]:
                self.assertEqual((x["arp.opcode"], x["eth.src"], x["arp.src.hw_mac"], x["arp.src.proto_ipv4"],
                                  x["arp.dst.hw_mac"]), ("1", UPLINK_MAC, UPLINK_MAC, NODE_IP, ZERO_MAC))

    def assert_sent_host_gw(self, r, frames, inputs, mac):
        """frames are the inputs, in order, routed once to `mac`, payload
        intact; tshark agrees."""
        self.assertEqual(len(frames), len(inputs))
        for out, inp in zip(frames, inputs):
            self.assert_eth(out, mac, UPLINK_MAC)
            self.assertEqual(len(out), 14 + len(ip_bytes(inp)))
            self.assert_ip_forwarded(out[14:], ip_bytes(inp))

    def assert_neighbours(self, r, expected):
        self.assertEqual(r.counters["neighbours"], expected, "the neighbour cache at the end")

    def assert_tshark_data(self, r, inputs, mac):
        rows = [x for x in tshark(r.uplink_pcap, ["eth.dst", "ip.ttl", "ip.checksum.status", "ip.id", "udp.payload"])
                if x["ip.ttl"]]
        self.assertEqual(len(rows), len(inputs))
        for row, inp in zip(rows, inputs):
            self.assertEqual(row["eth.dst"], mac)
            self.assertEqual(row["ip.ttl"], str(inp[IP].ttl - 1), "tshark: TTL decremented once")
            self.assertEqual(row["ip.checksum.status"], "1", "tshark: IP checksum good")
            self.assertEqual(int(row["ip.id"], 16), inp[IP].id, "tshark: in order")
            self.assertEqual(bytes.fromhex(row["udp.payload"].replace(":", "")), raw(inp)[42:], "tshark: payload")


# ---------------------------------------------------------------- resolution

class Resolution(ResolverCase):
    def test_host_gw_request_then_held_packets_sent_in_order(self):
        host = [at(from_host("10.244.7.%d" % (i + 1), payload=b"held %d" % i, ip_id=i + 1), T0 + 0.01 * i)
                for i in range(3)]
        r = self.resolve(host, [reply_to_us(N7_IP, N7_MAC, T0 + 0.05)], config_r("n7"))
        self.assertEqual(r.host, [])
        self.assertEqual(len(r.uplink), 4)
        self.assert_arp_request(r.uplink[0], N7_IP)
        self.assert_sent_host_gw(r, r.uplink[1:], host, N7_MAC)
        self.assertEqual(r.times, [0.0, 0.05, 0.05, 0.05], "the request at once, the packets with the reply")
        self.assert_tshark_arp(r, [(1, BROADCAST, N7_IP)])
        self.assert_tshark_data(r, host, N7_MAC)
        self.assert_counters(r, actions={"host_gw": 3, "held_sent": 3, "arp_request": 1, "arp_learned": 1})
        self.assertEqual(r.counters["verdicts"], {"uplink": 3, "host": 0, "drop": 1})
        self.assert_neighbours(r, [{"ip": N7_IP, "mac": N7_MAC, "state": "reachable", "probes": 0, "queued": 0}])

    def test_bursts_give_the_same_result(self):
        # A burst is what arrived at one instant: 5 instants of 4 packets.
        host = [at(from_host("10.244.7.%d" % (i + 1), ip_id=i), T0 + 0.001 * (i // 4)) for i in range(20)]
        runs = [self.resolve(host, [reply_to_us(N7_IP, N7_MAC, T0 + 0.0025)], config_r("n7", hold_per_neighbour=16),
                             burst=b) for b in (1, 3, 64)]
        for r in runs[1:]:
            self.assertEqual((r.uplink, r.times, r.counters), (runs[0].uplink, runs[0].times, runs[0].counters))
        # 12 held before the reply (0..2 ms), the other 8 sent at once with the MAC learned
        self.assertEqual(runs[0].times, [0.0] + [0.0025] * 12 + [0.003] * 4 + [0.004] * 4)
        self.assert_counters(runs[0], actions={"host_gw": 20, "held_sent": 12, "arp_request": 1, "arp_learned": 1})
        self.assert_sent_host_gw(runs[0], runs[0].uplink[1:], host, N7_MAC)

    def test_ipip_off_subnet_asks_for_the_gateway(self):
        pkt = at(from_host(POD9, ip_id=9, payload=b"to the third node"), T0)
        r = self.resolve([pkt], [reply_to_us(GW_IP, GW_MAC, T0 + 0.02)], config_r("n9"))
        self.assertEqual(len(r.uplink), 2)
        self.assert_arp_request(r.uplink[0], GW_IP)
        out = r.uplink[1]
        self.assert_eth(out, GW_MAC, UPLINK_MAC)
        o = IP(out[14:34])
        self.assertEqual((o.src, o.dst, o.proto, o.ttl), (NODE_IP, N9_IP, 4, 64), "outer header to the node")
        self.assert_ip_forwarded(out[34:], ip_bytes(pkt))
        self.assert_tshark_arp(r, [(1, BROADCAST, GW_IP)])
        rows = tshark(r.uplink_pcap, ["eth.dst", "ip.dst", "ip.ttl", "ip.checksum.status"])
        self.assertEqual(rows[1], {"eth.dst": GW_MAC, "ip.dst": "%s,%s" % (N9_IP, POD9), "ip.ttl": "64,63",
                                   "ip.checksum.status": "1,1"})
        self.assert_counters(r, actions={"ipip_encap": 1, "held_sent": 1, "arp_request": 1, "arp_learned": 1})
        self.assert_neighbours(r, [{"ip": GW_IP, "mac": GW_MAC, "state": "reachable", "probes": 0, "queued": 0}])

    def test_connected_route_resolves_each_destination(self):
        mac50, mac51 = "02:00:00:00:00:50", "02:00:00:00:00:51"
        host = [at(from_host("10.168.0.50", ip_id=1), T0), at(from_host("10.168.0.51", ip_id=2), T0 + 0.01),
                at(from_host("10.168.0.50", ip_id=3), T0 + 0.02)]
        uplink = [reply_to_us("10.168.0.51", mac51, T0 + 0.05), reply_to_us("10.168.0.50", mac50, T0 + 0.06)]
        r = self.resolve(host, uplink, config_r("subnet"))
        self.assertEqual(len(r.uplink), 5)
        self.assert_arp_request(r.uplink[0], "10.168.0.50")
        self.assert_arp_request(r.uplink[1], "10.168.0.51")
        self.assert_sent_host_gw(r, [r.uplink[2]], [host[1]], mac51)
        self.assert_sent_host_gw(r, r.uplink[3:], [host[0], host[2]], mac50)
        self.assertEqual(r.times, [0.0, 0.01, 0.05, 0.06, 0.06])
        self.assert_tshark_arp(r, [(1, BROADCAST, "10.168.0.50"), (2, BROADCAST, "10.168.0.51")])
        self.assert_counters(r, actions={"host_gw": 3, "held_sent": 3, "arp_request": 2, "arp_learned": 2})

    def test_next_hops_resolved_ahead_of_traffic(self):
        # Only traffic to the static n3 at first: the timer asks for n7 (in
        # the table without a MAC) all the same, so its first packet waits for nothing.
        host = [at(from_host(HOSTGW_POD, ip_id=1), T0), at(from_host(POD7, ip_id=2), T0 + 0.5)]
        r = self.resolve(host, [reply_to_us(N7_IP, N7_MAC, T0 + 0.1)], config_r("n3", "n7"))
        self.assertEqual(len(r.uplink), 3)
        self.assert_arp_request(r.uplink[0], N7_IP)
        self.assert_sent_host_gw(r, [r.uplink[1]], [host[0]], N3_MAC)
        self.assert_sent_host_gw(r, [r.uplink[2]], [host[1]], N7_MAC)
        self.assertEqual(r.times, [0.0, 0.0, 0.5])
        self.assert_counters(r, actions={"host_gw": 2, "arp_request": 1, "arp_learned": 1})

    def test_request_from_tracked_neighbour_answered_and_learned(self):
        # N7 asks for us while we ask for it: answered, and its MAC taken
        # from the request (stale: a request confirms nothing, so probed).
        pkt = at(from_host(POD7, ip_id=7), T0)
        asks = at(arp_frame(1, N7_IP, NODE_IP, N7_MAC), T0 + 0.05)
        r = self.resolve([pkt], [asks], config_r("n7"))
        self.assertEqual(len(r.uplink), 4)
        self.assert_arp_request(r.uplink[0], N7_IP)
        self.assert_arp_reply(r.uplink[1], N7_MAC, NODE_IP, N7_MAC, N7_IP)
        self.assert_sent_host_gw(r, [r.uplink[2]], [pkt], N7_MAC)
        self.assert_arp_request(r.uplink[3], N7_IP, eth_dst=N7_MAC)
        self.assertEqual(r.times, [0.0, 0.05, 0.05, 0.05])
        rows = tshark(r.uplink_pcap, ["arp.opcode", "eth.dst", "arp.dst.proto_ipv4"])
        self.assertEqual([(x["arp.opcode"], x["eth.dst"], x["arp.dst.proto_ipv4"]) for x in rows],
                         [("1", BROADCAST, N7_IP), ("2", N7_MAC, N7_IP), ("", N7_MAC, ""), ("1", N7_MAC, N7_IP)])
        self.assert_counters(r, actions={"arp_reply": 1, "host_gw": 1, "held_sent": 1, "arp_request": 2})
        self.assert_neighbours(r, [{"ip": N7_IP, "mac": N7_MAC, "state": "probe", "probes": 1, "queued": 0}])

    def test_arp_from_the_host_port_teaches_nothing(self):
        # The kernel's side of the host port is not the wire: a reply
        # arriving there (here with N7's addresses) is ignored, and the
        # packet stays held.
        pkt = at(from_host(POD7), T0)
        wrong_port = reply_to_us(N7_IP, N7_MAC, T0 + 0.05)
        r = self.resolve([pkt, wrong_port], config=config_r("n7"))
        self.assertEqual(len(r.uplink), 1)
        self.assert_arp_request(r.uplink[0], N7_IP)
        self.assert_counters(r, actions={"arp_request": 1}, drops={"arp_ignored": 1, "held_at_exit": 1})

    def test_icmp_error_to_a_remote_source_waits_for_its_next_hop(self):
        # TTL 1 from a pod behind n7, to the static n3: the time exceeded goes
        # back through n7, whose MAC is not known yet (its second pass punts).
        expiring = at(Ether(raw(Ether(src=GW_MAC, dst=UPLINK_MAC) /
                                IP(src="10.244.7.9", dst=HOSTGW_POD, ttl=1) / UDP(sport=1, dport=2) / Raw(b"x"))), T0)
        r = self.resolve(uplink=[expiring, reply_to_us(N7_IP, N7_MAC, T0 + 0.05)], config=config_r("n3", "n7"))
        self.assertEqual(len(r.uplink), 2)
        self.assert_arp_request(r.uplink[0], N7_IP)
        self.assert_eth(r.uplink[1], N7_MAC, UPLINK_MAC)
        self.assert_icmp_error(r.uplink[1][14:], NODE_IP, "10.244.7.9", 11, 0, ip_bytes(expiring), ttl=63)
        self.assertEqual(r.times, [0.0, 0.05])
        rows = tshark(r.uplink_pcap, ["icmp.type", "icmp.code", "icmp.checksum.status", "eth.dst"])
        self.assertEqual((rows[1]["icmp.type"], rows[1]["icmp.code"], rows[1]["icmp.checksum.status"]),
                         ("11", "0", "1"))
        self.assert_counters(r, actions={"icmp_time_exceeded": 1, "host_gw": 1, "held_sent": 1, "arp_request": 1,
                                         "arp_learned": 1})

    def test_announcement_first_and_static_next_hops_unchanged(self):
        pkt = at(from_host(HOSTGW_POD), T0)
        r = self.resolve([pkt], config=config_r("n3"), announce=True)
        self.assertEqual(len(r.uplink), 2)
        e = Ether(r.uplink[0])
        self.assertEqual(len(r.uplink[0]), 42)
        self.assertEqual((e.dst, e.src, e.type), (BROADCAST, UPLINK_MAC, 0x0806))
        self.assertEqual((e[ARP].op, e[ARP].hwsrc, e[ARP].psrc, e[ARP].hwdst, e[ARP].pdst),
                         (1, UPLINK_MAC, NODE_IP, ZERO_MAC, NODE_IP), "RFC 5227 announcement of the node IP")
        rows = tshark(r.uplink_pcap, ["arp.opcode", "arp.isgratuitous", "arp.isannouncement", "arp.src.proto_ipv4"])
        self.assertEqual((rows[0]["arp.opcode"], rows[0]["arp.src.proto_ipv4"]), ("1", NODE_IP))
        self.assertIn(rows[0]["arp.isgratuitous"], ("1", "True"), "tshark: gratuitous")
        self.assertIn(rows[0]["arp.isannouncement"], ("1", "True"), "tshark: an announcement")
        self.assertEqual(r.times, [0.0, 0.0])
        self.assert_counters(r, actions={"host_gw": 1, "arp_request": 1})
        self.assert_neighbours(r, [])
        # The static MAC's packet, byte for byte as without a resolver.
        plain = self.forward([pkt], config={k: v for k, v in config_r("n3").items() if k != "neighbour"})
        self.assertEqual(r.uplink[1:], plain.uplink)

    def test_arp_not_to_us_from_tracked_neighbour_is_learned(self):
        pkt = at(from_host(POD7, ip_id=7), T0)
        uplink = [
            # N7 answers someone else, broadcast: tracked, so learned (stale: nobody asked)
            at(arp_frame(2, N7_IP, "10.168.0.99", N7_MAC, "02:00:00:00:00:63"), T0 + 0.05),
            # an untracked sender teaches nothing: no entry for it
            at(arp_frame(2, "10.168.0.77", "10.168.0.77", "02:00:00:00:00:77"), T0 + 0.06),
        ]
        r = self.resolve([pkt], uplink, config_r("n7"))
        self.assertEqual(len(r.uplink), 3)
        self.assert_arp_request(r.uplink[0], N7_IP)
        self.assert_sent_host_gw(r, [r.uplink[1]], [pkt], N7_MAC)
        # Using a stale entry probes it: unicast, to the MAC learned.
        self.assert_arp_request(r.uplink[2], N7_IP, eth_dst=N7_MAC)
        self.assertEqual(r.times, [0.0, 0.05, 0.05])
        self.assert_tshark_arp(r, [(1, BROADCAST, N7_IP), (3, N7_MAC, N7_IP)])
        self.assert_counters(r, actions={"host_gw": 1, "held_sent": 1, "arp_request": 2, "arp_learned": 1},
                             drops={"arp_ignored": 1})
        self.assert_neighbours(r, [{"ip": N7_IP, "mac": N7_MAC, "state": "probe", "probes": 1, "queued": 0}])


# ---------------------------------------------------------------- limits and timers

class Limits(ResolverCase):
    def test_hold_queue_limit_per_neighbour(self):
        host = [at(from_host(POD7, ip_id=i), T0 + 0.01 * i) for i in range(5)]
        r = self.resolve(host, [reply_to_us(N7_IP, N7_MAC, T0 + 0.1)], config_r("n7", hold_per_neighbour=2))
        self.assertEqual(len(r.uplink), 3)
        self.assert_arp_request(r.uplink[0], N7_IP)
        self.assert_sent_host_gw(r, r.uplink[1:], host[:2], N7_MAC)   # the first two, the rest refused
        self.assert_tshark_data(r, host[:2], N7_MAC)
        self.assert_counters(r, actions={"host_gw": 2, "held_sent": 2, "arp_request": 1, "arp_learned": 1},
                             drops={"hold_queue_full": 3})

    def test_hold_limit_over_all_neighbours(self):
        host = [at(from_host(POD7, ip_id=1), T0), at(from_host("10.168.0.50", ip_id=2), T0 + 0.01),
                at(from_host(POD7, ip_id=3), T0 + 0.02), at(from_host("10.168.0.50", ip_id=4), T0 + 0.03)]
        uplink = [reply_to_us(N7_IP, N7_MAC, T0 + 0.1), reply_to_us("10.168.0.50", "02:00:00:00:00:50", T0 + 0.2)]
        r = self.resolve(host, uplink, config_r("n7", "subnet", hold_per_neighbour=4, hold_total=3))
        self.assertEqual([Ether(f).type for f in r.uplink], [0x0806, 0x0806, 0x0800, 0x0800, 0x0800])
        self.assert_sent_host_gw(r, r.uplink[2:4], [host[0], host[2]], N7_MAC)
        self.assert_sent_host_gw(r, r.uplink[4:], [host[1]], "02:00:00:00:00:50")
        self.assert_counters(r, actions={"host_gw": 3, "held_sent": 3, "arp_request": 2, "arp_learned": 2},
                             drops={"hold_queue_full": 1})

    def test_no_reply_retransmits_then_fails(self):
        host = [at(from_host(POD7, ip_id=1), T0), at(from_host(POD7, ip_id=2), T0 + 0.01),
                at(from_host(POD7, ip_id=3), T0 + 3.2)]   # while failed: refused at once
        cfg = config_r("n7", retrans_ms=1000, max_multicast_probes=3, failed_hold_ms=3000)
        r = self.resolve(host, config=cfg, run_after_ms=300)
        self.assertEqual(len(r.uplink), 3)
        for frame in r.uplink:
            self.assert_arp_request(frame, N7_IP)
        self.assertEqual(r.times, [0.0, 1.0, 2.0], "a broadcast every retrans_ms, max_multicast_probes of them")
        self.assert_tshark_arp(r, [(1, BROADCAST, N7_IP), (2, BROADCAST, N7_IP), (3, BROADCAST, N7_IP)])
        self.assert_counters(r, actions={"arp_request": 3}, drops={"neighbour_failed": 3})
        self.assert_neighbours(r, [{"ip": N7_IP, "mac": ZERO_MAC, "state": "failed", "probes": 0, "queued": 0}])
        # failed_hold_ms later, the table's next hop is asked for again.
        r = self.resolve(host, config=cfg, run_after_ms=3300)
        self.assertEqual(r.times, [0.0, 1.0, 2.0, 6.0])
        self.assert_counters(r, actions={"arp_request": 4}, drops={"neighbour_failed": 3})

    def test_held_at_exit(self):
        host = [at(from_host(POD7, ip_id=i), T0 + 0.01 * i) for i in range(2)]
        r = self.resolve(host, config=config_r("n7"))
        self.assertEqual(len(r.uplink), 1)
        self.assert_arp_request(r.uplink[0], N7_IP)
        self.assert_counters(r, actions={"arp_request": 1}, drops={"held_at_exit": 2})
        self.assert_neighbours(r, [{"ip": N7_IP, "mac": ZERO_MAC, "state": "incomplete", "probes": 1, "queued": 2}])

    def test_reachable_becomes_stale(self):
        r = self.resolve([at(from_host(POD7), T0)], [reply_to_us(N7_IP, N7_MAC, T0 + 0.1)],
                         config_r("n7", reachable_ms=1000), run_after_ms=1500)
        self.assertEqual(r.times, [0.0, 0.1], "no request while unused, stale or not")
        self.assert_neighbours(r, [{"ip": N7_IP, "mac": N7_MAC, "state": "stale", "probes": 0, "queued": 0}])

    def test_stale_used_sends_unicast_probe(self):
        host = [at(from_host(POD7, ip_id=1), T0), at(from_host(POD7, ip_id=2), T0 + 0.5),
                at(from_host(POD7, ip_id=3), T0 + 2.0)]
        uplink = [reply_to_us(N7_IP, N7_MAC, T0 + 0.1), reply_to_us(N7_IP, N7_MAC, T0 + 2.1)]
        r = self.resolve(host, uplink, config_r("n7", reachable_ms=1000))
        self.assertEqual(len(r.uplink), 5)
        self.assert_arp_request(r.uplink[0], N7_IP)
        # reachable: sent at once; stale (1.9 s after the reply): sent with
        # the MAC it has, and probed at that MAC
        self.assert_sent_host_gw(r, r.uplink[1:4], host, N7_MAC)
        self.assert_arp_request(r.uplink[4], N7_IP, eth_dst=N7_MAC)
        self.assertEqual(r.times, [0.0, 0.1, 0.5, 2.0, 2.0])
        self.assert_tshark_arp(r, [(1, BROADCAST, N7_IP), (5, N7_MAC, N7_IP)])
        self.assert_counters(r, actions={"host_gw": 3, "held_sent": 1, "arp_request": 2, "arp_learned": 2})
        self.assert_neighbours(r, [{"ip": N7_IP, "mac": N7_MAC, "state": "reachable", "probes": 0, "queued": 0}])


# ---------------------------------------------------------------- the tool's options and config

class ToolOptions(ResolverCase):
    def test_resolver_options_and_config_errors(self):
        pkt = [at(from_host(POD7), T0)]
        plain = {k: v for k, v in config_r("n7").items() if k != "neighbour"}
        self.assertIn("need a \"neighbour\"", self.resolve(pkt, config=plain, announce=True, expect_rc=2).stderr)
        for name, cfg, message in [
            ("connected with a mac", config_r("subnet"), "connected"),
            ("bad l2_ip", config_r("n7"), "l2_ip"),
            ("neighbour typo", config_r("n7", hold_per_neigbour=1), "unknown key"),
            ("tick 0", config_r("n7", tick_ms=0), "tick_ms"),
        ]:
            if name == "connected with a mac":
                cfg["nexthops"][0]["mac"] = N7_MAC
            if name == "bad l2_ip":
                cfg["nexthops"][0]["l2_ip"] = "10.168.0"
            r = self.resolve(pkt, config=cfg, expect_rc=2)
            self.assertIn(message, r.stderr, name)
            self.assertEqual(len(r.stderr.strip().splitlines()), 1, name + ": one line")


if __name__ == "__main__":
    args = sys.argv[1:]
    if args and not args[0].startswith("-"):
        golden.TOOL = args.pop(0)
    if not golden.TOOL or not os.access(golden.TOOL, os.X_OK):
        sys.exit("usage: test_resolver.py PATH/TO/podfwd-pcap-forward (or PODFWD_PCAP_FORWARD)")
    if not os.access(golden.TSHARK, os.X_OK):
        print("tshark not found: skipped")
        sys.exit(77)
    unittest.main(argv=[sys.argv[0]] + args, verbosity=2)
