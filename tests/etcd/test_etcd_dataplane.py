#!/usr/bin/python3
"""A running dataplane forwards on routes learned from etcd: podfwd-control
with the Flannel source and podfwd-dataplane on net_tap ports in a private
network namespace (tests/control/integration/lab.py), etcd on that
namespace's 127.0.0.1. A host-gw lease takes the next packet (the node's
MAC, TTL - 1), a new PublicIP moves it, a vxlan lease encapsulates it (outer
MACs and IPs, VNI, the lease's VtepMAC inside), and a deleted or revoked
lease drops it (counted no_route).

Usage: test_etcd_dataplane.py PODFWD_CONTROL PODFWDCTL PODFWD_DATAPLANE"""

from etcd_lab import (FLANNEL, Checks, DataplaneLab, EtcdCluster, etcd_args, flannel_config, flannel_lease,
                      lease_key, route, run_tests)
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN

check = Checks()
NODE_IP, NODE_MAC = "10.168.0.2", "02:00:00:00:00:02"   # lab.py's
B, B_MAC = "10.168.0.3", "02:00:00:00:00:03"
C, C_MAC = "10.168.0.4", "02:00:00:00:00:04"
VTEP = "aa:bb:cc:dd:ee:04"
NEIGHBOURS = f"neigh {B} {B_MAC}\nneigh {C} {C_MAC}\nneigh 10.168.0.1 02:00:00:00:00:01\n"


def test_dataplane(bins):
    with EtcdCluster() as etcd:
        etcd.put_json(FLANNEL + "/config", flannel_config("host-gw"))
        # No default route: the probes check that a pod CIDR nobody leased is dropped as no_route.
        lab = DataplaneLab(bins, "etcddp", NEIGHBOURS, control_args=[*etcd_args(etcd, vtep_mac="02:00:00:00:00:02"),
                                                                     "--no-default-route"])
        try:
            check(lab.source()["state"] == "up", "podfwd-control with the etcd source is up")
            check(lab.probe_dropped("10.244.1.7", "before", "no_route"), "no lease yet: dropped and counted")

            etcd.put_json(lease_key("10.244.1.0/24"), flannel_lease(B))
            check(lab.wait_table({"10.244.1.0/24": route("host-gw", B)}), "host-gw lease: route learned")
            out = lab.probe("10.244.1.7", "hostgw")
            check(out is not None and out.dst == B_MAC and out.src == NODE_MAC and out[IP].ttl == 19
                  and out[IP].dst == "10.244.1.7", f"forwarded host-gw to node B's MAC, TTL - 1 ({out!r})")

            etcd.put_json(lease_key("10.244.1.0/24"), flannel_lease(C))
            check(lab.wait_table({"10.244.1.0/24": route("host-gw", C)}), "new PublicIP: route moved")
            out = lab.probe("10.244.1.8", "moved")
            check(out is not None and out.dst == C_MAC and out[IP].ttl == 19, f"the next packet goes to C ({out!r})")

            lease = etcd.lease_grant(600)
            etcd.put_json(lease_key("10.244.3.0/24"), flannel_lease(C, "vxlan", VTEP, vni=7), lease=lease)
            check(lab.wait_table({"10.244.1.0/24": route("host-gw", C), "10.244.3.0/24": route("vxlan", C, 7, VTEP)}),
                  "vxlan lease: route learned")
            out = lab.probe("10.244.3.9", "vxlan")
            ok = (out is not None and out.dst == C_MAC and out.src == NODE_MAC and out[IP].src == NODE_IP
                  and out[IP].dst == C and UDP in out and out[UDP].dport == 4789 and VXLAN in out)
            if ok:
                inner = out[VXLAN].payload
                ok = (out[VXLAN].vni == 7 and isinstance(inner, Ether) and inner.dst == VTEP
                      and inner[IP].dst == "10.244.3.9" and inner[IP].ttl == 19)
            check(ok, f"forwarded VXLAN to C: outer MACs and IPs, VNI 7, the lease's VtepMAC inside ({out!r})")

            etcd.delete(lease_key("10.244.1.0/24"))
            check(lab.wait_table({"10.244.3.0/24": route("vxlan", C, 7, VTEP)}), "lease deleted: route gone")
            check(lab.probe_dropped("10.244.1.7", "deleted", "no_route"), "lease deleted: dropped and counted")
            etcd.lease_revoke(lease)
            check(lab.wait_table({}), "etcd lease revoked: the vxlan route gone")
            check(lab.probe_dropped("10.244.3.9", "revoked", "no_route"), "lease revoked: dropped and counted")
            drops = lab.stats()["drop_by_name"]["no_route"]
            check(drops == 3, f"exactly the three packets without a route were dropped no_route ({drops})")
        finally:
            lab.close()


if __name__ == "__main__":
    run_tests(check, test_dataplane)
