#!/usr/bin/python3
"""The etcd half of scripts/demo: two nodes that know nothing but etcd.

An etcd of its own on free loopback ports (data in a temporary directory)
holds Flannel's network config. Two podfwd-control nodes start with
--etcd-endpoints: each writes its own subnet lease, as flanneld would, and
learns the other's as a host-gw route. A third, VXLAN node's lease is then
written by hand, as a flanneld on it would: both nodes route to it. Nothing
leaves this machine; every process is ended by PID and every file removed.

    demo_etcd.py PODFWD_CONTROL PODFWDCTL
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "etcd"))
from etcd_lab import FLANNEL, Node, etcd_args, flannel_config, flannel_lease, lease_key, wait_until  # noqa: E402
from etcd_server import EtcdCluster  # noqa: E402


def show(title, text):
    print(f"\n{title}:")
    for line in text.rstrip("\n").splitlines():
        print("  " + line)


def main(control, ctl):
    bins = {"control": control, "ctl": ctl}
    with EtcdCluster() as etcd:
        etcd.put_json(FLANNEL + "/config", flannel_config("host-gw"))
        nodes = []
        try:
            for name, ip, cidr in (("a", "10.168.0.2", "10.244.0.0/24"), ("b", "10.168.0.3", "10.244.1.0/24")):
                nodes.append(Node(bins, f"demo-{name}", node_ip=ip, pod_cidr=cidr, args=etcd_args(etcd)))
            a, b = nodes
            wait_until(lambda: "10.244.1.0/24" in a.etcd_routes() and "10.244.0.0/24" in b.etcd_routes(), 15,
                       "each node to learn the other's lease")
            leases = "\n".join(f"{key}  {value}" for key, value in sorted(etcd.get_all(FLANNEL + "/subnets/")[1].items()))
            show("the leases in etcd (each node wrote its own)", leases)
            show("node a: podfwdctl route list", a.ctl("route", "list")[1])

            etcd.put_json(lease_key("10.244.2.0/24"), flannel_lease("10.168.0.4", "vxlan", "0a:00:00:00:00:04"))
            wait_until(lambda: "10.244.2.0/24" in a.etcd_routes() and "10.244.2.0/24" in b.etcd_routes(), 15,
                       "both nodes to learn the VXLAN node's lease")
            show("a VXLAN node's lease appears: node b: podfwdctl route list", b.ctl("route", "list")[1])
            show("node b: podfwdctl sources", b.ctl("sources")[1])
            etcd_state = {k: v for k, v in b.etcd().items() if k in ("endpoint", "layout", "revision", "lease")}
            show("node b: the etcd source (podfwdctl sources --json)", json.dumps(etcd_state, indent=2))
        finally:
            for node in nodes:
                node.close()


if __name__ == "__main__":
    main(*sys.argv[1:3])
