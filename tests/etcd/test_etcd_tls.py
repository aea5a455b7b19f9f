#!/usr/bin/python3
"""The etcd source over TLS against a real etcd that requires client
certificates (--client-cert-auth): with the CA and a client certificate the
daemon syncs, watches and holds its lease; without a client certificate, or
trusting another CA than the server's, the source is in error and learns
nothing.

Usage: test_etcd_tls.py PODFWD_CONTROL PODFWDCTL"""
import json
import os

from etcd_lab import (FLANNEL, Checks, EtcdCluster, Node, etcd_args, flannel_config, flannel_lease, lease_key, route,
                      wait_until, run_tests)
from etcd_server import make_certs

check = Checks()


def test_tls(bins):
    with EtcdCluster(tls=True) as etcd:
        check(etcd.url().startswith("https://"), f"etcd serves TLS ({etcd.url()})")
        etcd.put_json(FLANNEL + "/config", flannel_config("host-gw"))
        etcd.put_json(lease_key("10.244.1.0/24"), flannel_lease("10.168.0.3"))
        node = Node(bins, "tls", args=etcd_args(etcd))
        try:
            s = node.source()
            check(s["state"] == "up" and node.etcd_table() == {"10.244.1.0/24": route("host-gw", "10.168.0.3")},
                  f"CA + client certificate: synced at start ({s['state']}, {s.get('last_error')})")
            etcd.put_json(lease_key("10.244.2.0/24"), flannel_lease("10.168.0.4"))
            check(node.wait_table({"10.244.1.0/24": route("host-gw", "10.168.0.3"),
                                   "10.244.2.0/24": route("host-gw", "10.168.0.4")}), "and watching over TLS")
            own = wait_until(lambda: etcd.get(lease_key("10.244.0.0/24")), 10, "the own lease")
            check(json.loads(own).get("PublicIP") == "10.168.0.2", f"own lease written over TLS ({own})")
        finally:
            node.close()

        # No client certificate: etcd refuses the handshake.
        node = Node(bins, "tlsnocert", args=etcd_args(etcd, client_cert=False))
        try:
            s = node.wait_state(("error",), seconds=20)
            print(f"     without a client certificate: {s['state']}: {s.get('last_error')}")
            check(s["state"] == "error" and s.get("last_error") and node.etcd_table() == {},
                  "without a client certificate: source in error, no routes")
            check(etcd.get(lease_key("10.244.0.0/24")) is not None, "(the lease key is the first node's, untouched)")
        finally:
            node.close()

        # Trusting another CA: the daemon refuses etcd's certificate.
        other = os.path.join(etcd.tmp, "other-ca")
        os.mkdir(other)
        certs = make_certs(other)
        node = Node(bins, "tlsca", pod_cidr="10.244.5.0/24",
                    args=["--etcd-endpoints", etcd.url(), "--etcd-cafile", certs["ca.crt"],
                          "--etcd-certfile", etcd.certs["client.crt"], "--etcd-keyfile", etcd.certs["client.key"],
                          "--accept", "10.0.0.0/8"])
        try:
            s = node.wait_state(("error",), seconds=20)
            print(f"     trusting another CA: {s['state']}: {s.get('last_error')}")
            check(s["state"] == "error" and node.etcd_table() == {}, "another CA: source in error, no routes")
            check(etcd.get(lease_key("10.244.5.0/24")) is None, "and nothing written to etcd")
        finally:
            node.close()


if __name__ == "__main__":
    run_tests(check, test_tls)
