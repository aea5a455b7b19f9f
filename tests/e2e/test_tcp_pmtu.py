"""e2e: TCP (iperf3, 2 s) from pod a to pod c through IPIP with the pods'
default MSS (1460: MTU 1500 everywhere). A full segment plus the 20-byte
outer header exceeds the uplink MTU with DF set, so node a's dataplane
answers with ICMP fragmentation needed (Next-Hop MTU 1480); pod a's kernel
lowers its path MTU and the transfer goes on. Checks: iperf3 moved data,
node a counted icmp_frag_needed > 0, pod a's route cache holds MTU 1480.
Then the same over VXLAN (Next-Hop MTU 1450).

    test_tcp_pmtu.py PODFWD_CONTROL PODFWD_DATAPLANE PODFWDCTL"""
import re
import sys

from e2e_lab import Checks, Lab, binaries, require_root_and_tools, run


def iperf(lab, check, label, expected_mtu):
    a = lab.nodes["a"]
    server_ip = lab.pod_ip("c")
    # Path MTU state from an earlier run would hide the ICMP exchange.
    run(["ip", "route", "flush", "cache"], ns=lab.pod_ns("a"))
    before = a.stats()["icmp_frag_needed"]
    received, bps, retransmits, error = lab.iperf3(lab.pod_ns("a"), lab.pod_ns("c"), server_ip, "-t", "2")
    frag_needed = a.stats()["icmp_frag_needed"] - before
    route = run(["ip", "route", "get", server_ip], ns=lab.pod_ns("a")).stdout
    m = re.search(r"mtu (\d+)", route)
    pmtu = int(m.group(1)) if m else None
    print(f"{label}: iperf3 pod a -> pod c: received_bytes={received} mbit_per_s={bps / 1e6:.1f} "
          f"retransmits={retransmits} icmp_frag_needed={frag_needed} pod_a_path_mtu={pmtu}"
          + (f" error={error!r}" if error else ""), flush=True)
    check(not error and received > 1_000_000, f"{label}: iperf3 moved more than 1 MB ({received} bytes)")
    check(frag_needed > 0, f"{label}: node a sent ICMP fragmentation needed ({frag_needed})")
    check(pmtu == expected_mtu, f"{label}: pod a learned path MTU {expected_mtu} ({pmtu})")


def main():
    require_root_and_tools("iperf3", "timeout")
    bins = binaries(sys.argv)
    check = Checks()
    with Lab(bins, nodes="ac", checks=check) as lab:
        iperf(lab, check, "ipip", 1480)
        for src, dst in (("a", "c"), ("c", "a")):
            other = lab.nodes[dst].spec
            lab.nodes[src].route(other.pod_cidr, other.ip, "vxlan", vtep_mac=other.mac)
        iperf(lab, check, "vxlan", 1450)
    check.exit()


if __name__ == "__main__":
    main()
