"""Framework of the fast-path golden tests: the node under test and its
neighbours, scapy packet builders, the tool runner and tshark.

Imported by test_fastpath.py; TOOL is set by its main."""

import copy
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest

from scapy.all import ARP, ICMP, IP, TCP, UDP, Ether, IPOption, Raw, RawPcapWriter, raw, rdpcap, wrpcap
from scapy.layers.vxlan import VXLAN

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "dataplane", "app"))
import stats_reader  # noqa: E402

TOOL = os.environ.get("PODFWD_PCAP_FORWARD", "")
TSHARK = shutil.which("tshark") or "/usr/bin/tshark"
# With these set, every case runs through podfwd-dataplane on net_pcap vdevs
# (a table made by podfwd-test-table) instead of podfwd-pcap-forward.
DATAPLANE = os.environ.get("PODFWD_DATAPLANE", "")
TEST_TABLE = os.environ.get("PODFWD_TEST_TABLE", "")

# ---- the node under test (A) and its neighbours ----

NODE_IP = "10.168.0.2"
UPLINK_MAC = "02:00:00:00:00:02"
VTEP_MAC = "0a:00:00:00:00:02"
HOST_MAC = "02:00:00:00:00:fe"
GW_MAC = "02:00:00:00:00:99"        # source of frames arriving on the uplink

N3_IP, N3_MAC = "10.168.0.3", "02:00:00:00:00:03"                          # host-gw
N4_IP, N4_MAC = "10.168.0.4", "02:00:00:00:00:04"                          # ipip
N5_IP, N5_MAC, N5_VTEP = "10.168.0.5", "02:00:00:00:00:05", "0a:00:00:00:00:05"   # vxlan

LOCAL_POD = "10.244.0.10"     # 10.244.0.0/24: local
HOSTGW_POD = "10.244.1.5"     # 10.244.1.0/24 via n3
IPIP_POD = "10.244.2.5"       # 10.244.2.0/24 via n4
VXLAN_POD = "10.244.3.5"      # 10.244.3.0/24 via n5
BLACKHOLE = "10.244.9.1"
NO_ROUTE = "192.0.2.1"

# The counters the cases refer to (the tool may list more: all must be zero).
ACTIONS = stats_reader.ACTIONS
DROPS = stats_reader.DROPS


def config_a(vxlan_port=4789, vni=1, mtu=1500, icmp_rate=None, icmp_burst=None):
    node = {"ip": NODE_IP, "uplink_mac": UPLINK_MAC, "vtep_mac": VTEP_MAC, "host_mac": HOST_MAC,
            "vxlan_port": vxlan_port, "vni": vni, "mtu": mtu}
    # The exception path's token bucket (the tool's keys, podfwd-dataplane's
    # --icmp-rate and --icmp-burst); unset: their defaults.
    if icmp_rate is not None:
        node["icmp_rate"] = icmp_rate
    if icmp_burst is not None:
        node["icmp_burst"] = icmp_burst
    return {
        "node": node,
        "nexthops": [
            {"name": "self", "mode": "local"},
            {"name": "n3", "node_ip": N3_IP, "mode": "host-gw", "mac": N3_MAC},
            {"name": "n4", "node_ip": N4_IP, "mode": "ipip", "mac": N4_MAC},
            {"name": "n5", "node_ip": N5_IP, "mode": "vxlan", "mac": N5_MAC, "vtep_mac": N5_VTEP},
            {"name": "bh", "mode": "drop"},
            {"name": "n6", "node_ip": "10.168.0.6", "mode": "ipip"},                     # unresolved
            {"name": "n7", "node_ip": "10.168.0.7", "mode": "host-gw"},                  # unresolved
            {"name": "n8", "node_ip": "10.168.0.8", "mode": "vxlan", "vtep_mac": "0a:00:00:00:00:08"},
        ],
        "routes": [
            {"prefix": "10.244.0.0/24", "via": "self"},
            {"prefix": "10.244.1.0/24", "via": "n3"},
            {"prefix": "10.244.2.0/24", "via": "n4"},
            {"prefix": "10.244.3.0/24", "via": "n5"},
            {"prefix": "10.244.9.0/24", "via": "bh"},
            {"prefix": "10.244.6.0/24", "via": "n6"},
            {"prefix": "10.244.7.0/24", "via": "n7"},
            {"prefix": "10.244.8.0/24", "via": "n8"},
        ],
    }


# ---- packet builders ----

def from_host(dst, src=LOCAL_POD, ttl=64, df=True, proto="udp", sport=40000, dport=80, payload=b"hello podfwd",
              ip_id=0x1234, tos=0):
    """A frame from a local pod as the host port delivers it, frozen to bytes."""
    ip = IP(src=src, dst=dst, ttl=ttl, flags="DF" if df else 0, id=ip_id, tos=tos)
    l4 = TCP(sport=sport, dport=dport, flags="PA", seq=1000) if proto == "tcp" else UDP(sport=sport, dport=dport)
    return Ether(raw(Ether(src=HOST_MAC, dst=UPLINK_MAC) / ip / l4 / Raw(payload)))


def from_uplink(ip_pkt, src_mac=GW_MAC, dst_mac=UPLINK_MAC):
    return Ether(raw(Ether(src=src_mac, dst=dst_mac) / ip_pkt))


def inner_ip(dst, src="10.244.2.7", ttl=63, payload=b"tunnelled payload"):
    return IP(src=src, dst=dst, ttl=ttl, id=7) / UDP(sport=5000, dport=6000) / Raw(payload)


def ipip_from(node_ip, inner, **outer):
    return from_uplink(IP(src=node_ip, dst=NODE_IP, proto=4, ttl=64, **outer) / inner)


def vxlan_from(node_ip, inner, vni=1, flags=0x08, port=4789, inner_dst_mac=VTEP_MAC, udp_len=None):
    udp = UDP(sport=51000, dport=port, chksum=0)
    if udp_len is not None:
        udp.len = udp_len
    return from_uplink(IP(src=node_ip, dst=NODE_IP, ttl=64) / udp / VXLAN(flags=flags, vni=vni) /
                       Ether(src=N5_VTEP, dst=inner_dst_mac) / inner)


def arp_frame(op, psrc, pdst, hwsrc, hwdst="00:00:00:00:00:00", eth_dst="ff:ff:ff:ff:ff:ff"):
    """An ARP frame of IPv4 over Ethernet (42 bytes), frozen to bytes."""
    return Ether(raw(Ether(src=hwsrc, dst=eth_dst) / ARP(op=op, psrc=psrc, pdst=pdst, hwsrc=hwsrc, hwdst=hwdst)))


def ip_bytes(frame):
    """The IPv4 packet of an Ethernet frame, without Ethernet padding."""
    b = raw(frame)[14:]
    return b[:int.from_bytes(b[2:4], "big")]


def checksum_ok(header):
    s = sum(int.from_bytes(header[i:i + 2], "big") for i in range(0, len(header), 2))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return s == 0xffff


def ones_complement_ok(data):
    """RFC 1071 over `data` (an odd length padded with a zero byte): the
    checksum inside it is right."""
    if len(data) % 2:
        data += b"\0"
    return checksum_ok(data)


def forwarded(ip_in):
    """What a router makes of an IPv4 packet: TTL - 1, checksum recomputed."""
    b = bytearray(ip_in)
    b[8] -= 1
    b[10:12] = b"\0\0"
    s = sum(int.from_bytes(b[i:i + 2], "big") for i in range(0, 20, 2))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    b[10:12] = (~s & 0xffff).to_bytes(2, "big")
    return bytes(b)


# ---- running the tool and tshark ----

class Run:
    def __init__(self, directory, uplink, host, counters, returncode, stderr):
        self.dir = directory
        self.uplink = uplink            # list of bytes
        self.host = host
        self.counters = counters
        self.returncode = returncode
        self.stderr = stderr
        self.uplink_pcap = os.path.join(directory, "up.pcap")
        self.host_pcap = os.path.join(directory, "host.pcap")


def tshark(path, fields, decode_as=()):
    cmd = [TSHARK, "-r", path, "-n", "-o", "ip.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE",
           "-T", "fields", "-E", "separator=\t", "-E", "occurrence=a", "-E", "aggregator=,"]
    for d in decode_as:
        cmd += ["-d", d]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return [dict(zip(fields, line.split("\t"))) for line in out.splitlines()]


def forward_dpdk(d, packets, config, port, burst):
    """The same case through podfwd-dataplane: the config's routes go into a
    table held by podfwd-test-table, the packets into the port's rx_pcap."""
    specs = []
    nexthops = {nh["name"]: nh for nh in config["nexthops"]}
    for route in config["routes"]:
        nh = nexthops[route["via"]]
        spec = route["prefix"] + "=" + nh["mode"].replace("-", "_")
        for key, name in (("node_ip", "node"), ("mac", "mac"), ("vtep_mac", "vtep"), ("vni", "vni")):
            if key in nh:
                spec += ",%s=%s" % (name, nh[key])
        specs.append(spec)
    table = "golden.%d.%s" % (os.getpid(), os.path.basename(d))
    empty = os.path.join(d, "empty.pcap")
    wrpcap(empty, [])
    inp = os.path.join(d, "in.pcap")
    wrpcap(inp, packets)
    node = {"mtu": 1500, "vxlan_port": 4789, "vni": 1, **config["node"]}   # the tool's defaults
    prefix = "podfwd-golden-%d" % os.getpid()   # our own runtime dir (--in-memory refuses --no-huge)
    eal = ["--no-pci", "--no-huge", "--no-shconf", "--file-prefix", prefix, "-m", "256", "-l", "0",
           "--log-level=lib.eal:error",
           "--vdev=net_pcap0,rx_pcap=%s,tx_pcap=%s/up.pcap" % (inp if port == "uplink" else empty, d),
           "--vdev=net_pcap1,rx_pcap=%s,tx_pcap=%s/host.pcap" % (inp if port == "host" else empty, d)]
    app = ["--node-ip", node["ip"], "--node-mac", node["uplink_mac"], "--vtep-mac", node["vtep_mac"],
           "--host-mac", node["host_mac"], "--mtu", str(node["mtu"]), "--vxlan-port", str(node["vxlan_port"]),
           "--vni", str(node["vni"]), "--table", table, "--uplink-port", "0", "--host-port", "1"]
    for key in ("icmp_rate", "icmp_burst"):
        if key in node:
            app += ["--" + key.replace("_", "-"), str(node[key])]
    if burst is not None:
        app += ["--burst", str(burst)]
    control = subprocess.Popen([TEST_TABLE, table, *specs], stdout=subprocess.PIPE, text=True)
    dataplane = None
    try:
        if not control.stdout.readline().startswith("ready"):
            raise RuntimeError("podfwd-test-table did not start")
        dataplane = subprocess.Popen([DATAPLANE, *eal, "--", *app], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        stats_path = "/dev/shm/%s.stats.%d" % (table, dataplane.pid)
        def received_all():
            if dataplane.poll() is not None:
                raise RuntimeError("podfwd-dataplane exited early:\n" + dataplane.stdout.read())
            s = stats_reader.read_stats(stats_path)
            return s and s["state"] == stats_reader.STATE_RUNNING and sum(s["rx"]) == len(packets)
        stats_reader.wait_for(received_all, 30, "podfwd-dataplane to receive every packet")
        dataplane.send_signal(signal.SIGINT)
        out, _ = dataplane.communicate(timeout=30)   # final counters, printed once the loop has stopped
    finally:
        for p in (dataplane, control):
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                p.wait(timeout=10)
        shutil.rmtree("/var/run/dpdk/" + prefix, ignore_errors=True)
    counters = {"actions": {a: 0 for a in ACTIONS}, "drops": {x: 0 for x in DROPS}}
    for line in out.splitlines():
        words = line.split()
        if len(words) == 3 and words[0] in ("action", "drop"):
            counters[words[0] + "s"][words[1]] = int(words[2])
    # The dataplane's own ARP requests (its announcement at start, requests
    # for config_a's next hops without a MAC) are the resolver's, not the
    # case's: taken out, after checking each was counted.
    up, own_requests = [], 0
    for x in rdpcap(os.path.join(d, "up.pcap")):
        if ARP in x and x[ARP].op == 1 and x[ARP].psrc == node["ip"] and x[Ether].src == node["uplink_mac"]:
            own_requests += 1
        else:
            up.append(raw(x))
    if own_requests != counters["actions"]["arp_request"]:
        raise RuntimeError("%d ARP requests on the uplink, %d counted" % (own_requests,
                                                                       counters["actions"]["arp_request"]))
    counters["actions"]["arp_request"] = 0
    wrpcap(os.path.join(d, "up.pcap"), [Ether(x) for x in up])   # what tshark reads too
    host = [raw(x) for x in rdpcap(os.path.join(d, "host.pcap"))]
    return Run(d, up, host, counters, 0, out)


class FastPathCase(unittest.TestCase):
    maxDiff = None

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="podfwd-fp-")
        self.tmp = self._tmp.name
        self.runs = 0

    def tearDown(self):
        self._tmp.cleanup()

    def forward(self, packets, config=None, port="host", burst=None, expect_rc=0, raw_input=None):
        """Runs the tool (or the DPDK binary) in a fresh subdirectory; returns a Run."""
        self.runs += 1
        d = os.path.join(self.tmp, "run%d" % self.runs)
        os.mkdir(d)
        if DATAPLANE:
            if isinstance(config, str) or raw_input is not None or expect_rc != 0:
                self.skipTest("a case about podfwd-pcap-forward itself")
            return forward_dpdk(d, packets, config if config is not None else config_a(), port, burst)
        cfg = os.path.join(d, "cfg.json")
        with open(cfg, "w") as f:
            if isinstance(config, str):
                f.write(config)
            else:
                json.dump(config if config is not None else config_a(), f)
        inp = os.path.join(d, "in.pcap")
        if raw_input is not None:
            with open(inp, "wb") as f:
                f.write(raw_input)
        else:
            wrpcap(inp, packets)
        cmd = [TOOL, "--config", cfg, "--in", inp, "--from", port, "--out-uplink", os.path.join(d, "up.pcap"),
               "--out-host", os.path.join(d, "host.pcap"), "--counters", os.path.join(d, "counters.json")]
        if burst is not None:
            cmd += ["--burst", str(burst)]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, expect_rc, "tool exit status; stderr: " + p.stderr)
        if p.returncode != 0:
            return Run(d, None, None, None, p.returncode, p.stderr)
        with open(os.path.join(d, "counters.json")) as f:
            counters = json.load(f)
        up = [raw(x) for x in rdpcap(os.path.join(d, "up.pcap"))]
        host = [raw(x) for x in rdpcap(os.path.join(d, "host.pcap"))]
        return Run(d, up, host, counters, 0, p.stderr)

    def assert_counters(self, run, actions=None, drops=None):
        """Every action and drop counter: the given values, zero for the others."""
        actions = actions or {}
        drops = drops or {}
        # The tool lists every counter; names added later must be zero too.
        self.assertLessEqual(set(ACTIONS), set(run.counters["actions"]), "action names")
        self.assertLessEqual(set(DROPS), set(run.counters["drops"]), "drop names")
        self.assertEqual(run.counters["actions"], {a: actions.get(a, 0) for a in run.counters["actions"]},
                         "action counters")
        self.assertEqual(run.counters["drops"], {d: drops.get(d, 0) for d in run.counters["drops"]},
                         "drop counters")

    def assert_ip_forwarded(self, out_ip, in_ip):
        """out_ip is in_ip routed once: TTL - 1, valid checksum, all else identical."""
        self.assertEqual(len(out_ip), len(in_ip), "IP length")
        self.assertEqual(out_ip[8], in_ip[8] - 1, "TTL decremented")
        self.assertTrue(checksum_ok(out_ip[:20]), "IPv4 header checksum valid")
        self.assertEqual(out_ip[:8], in_ip[:8], "IP header bytes 0..7")
        self.assertEqual(out_ip[9], in_ip[9], "protocol")
        self.assertEqual(out_ip[12:], in_ip[12:], "addresses and payload byte-identical")
        self.assertEqual(out_ip, forwarded(in_ip))

    def assert_arp_reply(self, frame, eth_dst, sender_ip, target_mac, target_ip):
        """frame is our ARP reply: from the uplink MAC, `sender_ip` is at it."""
        self.assertEqual(len(frame), 42, "an ARP frame of 42 bytes (the NIC pads)")
        e = Ether(frame)
        self.assertEqual((e.dst, e.src, e.type), (eth_dst, UPLINK_MAC, 0x0806), "Ethernet header")
        a = e[ARP]
        self.assertEqual((a.hwtype, a.ptype, a.hwlen, a.plen, a.op), (1, 0x0800, 6, 4, 2), "ARP reply of IPv4")
        self.assertEqual((a.hwsrc, a.psrc), (UPLINK_MAC, sender_ip), "sender: the asked IP at the uplink MAC")
        self.assertEqual((a.hwdst, a.pdst), (target_mac, target_ip), "target: the asker")

    def assert_icmp_error(self, ip, src, dst, icmp_type, code, offending, mtu=0, ttl=64):
        """ip (an IPv4 packet, no Ethernet) is an ICMP error about the IPv4
        packet `offending`: quoting its header and 8 bytes (RFC 792), from
        `src` to `dst`, DF clear, precedence 6 (TOS 0xc0), both checksums
        right, the Next-Hop MTU `mtu` (RFC 1191) or zero."""
        quoted = offending[:(offending[0] & 0x0f) * 4 + 8]
        self.assertEqual(len(ip), 20 + 8 + len(quoted), "IP + ICMP headers + the quote")
        h = IP(ip[:20])
        self.assertEqual((h.version, h.ihl, h.tos, h.len, h.proto, h.ttl), (4, 5, 0xc0, len(ip), 1, ttl))
        self.assertEqual((h.flags.value, h.frag), (0, 0), "DF clear, not a fragment")
        self.assertEqual((h.src, h.dst), (src, dst), "from the node to the offending packet's source")
        self.assertTrue(checksum_ok(ip[:20]), "IP header checksum")
        self.assertEqual((ip[20], ip[21]), (icmp_type, code), "ICMP type and code")
        self.assertTrue(ones_complement_ok(ip[20:]), "ICMP checksum")
        self.assertEqual(ip[24:28], mtu.to_bytes(4, "big"), "unused / Next-Hop MTU")
        self.assertEqual(ip[28:], quoted, "the offending header and 8 bytes, as received")

    def assert_eth(self, frame, dst, src):
        e = Ether(frame)
        self.assertEqual(e.dst, dst, "Ethernet destination")
        self.assertEqual(e.src, src, "Ethernet source")
        self.assertEqual(e.type, 0x0800, "EtherType")
