"""e2e: Linux VXLAN interop. Node d is plain Linux (no podfwd) on node a's
segment with a Flannel-style VXLAN device, as flanneld's vxlan backend
would set it up:

    ip link add flannel.1 type vxlan id 1 dstport 8472 local 10.168.0.4 nolearning dev up0
    bridge fdb append <a's VTEP MAC> dev flannel.1 dst 10.168.0.2
    ip neigh replace 10.244.1.0 lladdr <a's VTEP MAC> dev flannel.1 nud permanent
    ip route add 10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink

and podfwd node a (--vxlan-port 8472) gets `route add 10.244.4.0/24 via
10.168.0.4 mode vxlan vni 1 vtep-mac <flannel.1's MAC>`. Pods ping both
ways; node a's vxlan_encap and vxlan_decap counters move. Then TCP both
ways (iperf3, 1 s each).

Node d's veth has TX checksum offload turned off (`ethtool -K up0 tx off`):
a veth hands the packet socket of node a's dataplane the inner TCP
checksum as Linux left it for the NIC to fill in (CHECKSUM_PARTIAL) and
nothing on the way fills it in, so pod a would drop every segment from pod
d. A real NIC computes it; only the lab's veth needs this.

    test_vxlan_interop.py PODFWD_CONTROL PODFWD_DATAPLANE PODFWDCTL"""
import json
import sys

from e2e_lab import (NODES, UPLINK_IF, VXLAN_PORT, Checks, Lab, binaries, ip_batch, require_root_and_tools, run,
                     seconds)


def main():
    require_root_and_tools("iperf3", "ethtool", "timeout")
    bins = binaries(sys.argv)
    check = Checks()
    with Lab(bins, nodes="a", linux_node=True, checks=check) as lab:
        a, d = lab.nodes["a"], NODES["d"]
        d_ns = lab.ns_name("d")
        a_vtep_mac = a.spec.mac   # podfwd-dataplane's --vtep-mac defaults to the node MAC
        a_net = a.spec.pod_cidr.split("/")[0]
        ip_batch(d_ns, [f"link add flannel.1 type vxlan id 1 dstport {VXLAN_PORT} local {d.ip} nolearning "
                        f"dev {UPLINK_IF}",
                        "link set flannel.1 up",
                        f"addr add {d.pod_cidr.split('/')[0]}/32 dev flannel.1",
                        f"neigh replace {a_net} lladdr {a_vtep_mac} dev flannel.1 nud permanent",
                        f"route add {a.spec.pod_cidr} via {a_net} dev flannel.1 onlink"])
        run(["bridge", "fdb", "append", a_vtep_mac, "dev", "flannel.1", "dst", a.spec.ip], ns=d_ns)
        run(["ethtool", "-K", UPLINK_IF, "tx", "off"], ns=d_ns)
        flannel_mac = json.loads(run(["ip", "-j", "link", "show", "flannel.1"], ns=d_ns).stdout)[0]["address"]
        a.route(d.pod_cidr, d.ip, "vxlan", vtep_mac=flannel_mac, vni=1)
        print(f"node d: flannel.1 {flannel_mac}, fdb {a_vtep_mac} dst {a.spec.ip}; "
              f"node a: {d.pod_cidr} via {d.ip} vxlan vni 1 vtep-mac {flannel_mac}", flush=True)

        for src_ns, dst_ip, label in ((lab.pod_ns("a"), d.pod_ip(), "pod a -> pod d (Linux)"),
                                      (lab.pod_ns("d"), lab.pod_ip("a"), "pod d (Linux) -> pod a")):
            before = a.stats()
            first = lab.reach(src_ns, dst_ip)
            received, sent, rtt = lab.ping(src_ns, dst_ip, count=5)
            after = a.stats()
            encap = after["vxlan_encap"] - before["vxlan_encap"]
            decap = after["vxlan_decap"] - before["vxlan_decap"]
            print(f"{label}: first_reply={seconds(first)} received={received}/{sent} rtt_avg_ms={rtt} "
                  f"a.vxlan_encap+={encap} a.vxlan_decap+={decap}", flush=True)
            check(first is not None and received == sent == 5, f"{label}: 5 of 5 replies")
            check(encap >= 6 and decap >= 6, f"{label}: node a encapsulated and decapsulated VXLAN ({encap}, {decap})")
        for client, server, server_ip in (("a", "d", d.pod_ip()), ("d", "a", lab.pod_ip("a"))):
            received, bps, retransmits, error = lab.iperf3(lab.pod_ns(client), lab.pod_ns(server), server_ip,
                                                           "-t", "1")
            print(f"iperf3 pod {client} -> pod {server}: received_bytes={received} mbit_per_s={bps / 1e6:.1f} "
                  f"retransmits={retransmits}" + (f" error={error!r}" if error else ""), flush=True)
            check(not error and received > 1_000_000, f"TCP pod {client} -> pod {server} moved more than 1 MB "
                  f"({received} bytes)")
        fdb = run(["bridge", "fdb", "show", "dev", "flannel.1"], ns=d_ns).stdout.strip()
        print("node d: bridge fdb show dev flannel.1:", fdb.replace("\n", "; "))
    check.exit()


if __name__ == "__main__":
    main()
