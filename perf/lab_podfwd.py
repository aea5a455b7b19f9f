"""perf/lab's podfwd side: the same iperf3 runs pod to pod through the e2e
suite's lab (tests/e2e/e2e_lab.py, imported, not copied): podfwd-control and
podfwd-dataplane per node, af_packet uplinks on veths, TAP host ports, pods
behind each node's kernel.

    host-gw: pod a -> pod b (one L2 segment: the router's br0), Lab(nodes="ab")
    vxlan:   the same pods after `podfwdctl route add ... mode vxlan vtep-mac` on both nodes
    ipip:    pod a -> pod c (other subnet, through the router), Lab(nodes="ac")

Two labs of two nodes rather than one of three: the lab pins node a's
dataplane to lcore 0 and b's and c's to lcore 1, and a dataplane polls its
lcore without pause; with three, b and c would share one CPU. Each run
checks on the sending node's counters that the packets took the mode's
action (host_gw, vxlan_encap, ipip_encap) and reports the count."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))
import e2e_lab  # noqa: E402
from lab_net import iperf3, keep_best  # noqa: E402

ACTION = {"host_gw": "host_gw", "vxlan": "vxlan_encap", "ipip": "ipip_encap"}


def bins_of(build):
    return {"control": os.path.join(build, "control/daemon/podfwd-control"),
            "dataplane": os.path.join(build, "dataplane/app/podfwd-dataplane"),
            "ctl": os.path.join(build, "control/ctl/podfwdctl")}


def _measure(lab, mode, src, dst, seconds, protos, log, rounds):
    """iperf3 pod src -> pod dst for each proto, `rounds` times each (best
    kept, every run in `runs`); {proto: result} with the sending node's
    count of the mode's action added (`action_packets`)."""
    first = lab.reach(lab.pod_ns(src), lab.pod_ip(dst), seconds=10)
    if first is None:
        err = f"pod {src} cannot reach pod {dst} ({mode})"
        return {p: {"error": err} for p in protos}
    node = lab.nodes[src]
    runs = {p: [] for p in protos}
    for _ in range(rounds):
        for proto in protos:
            e2e_lab.run(["ip", "route", "flush", "cache"], ns=lab.pod_ns(src))
            before = node.stats()[ACTION[mode]]
            r = iperf3(lab.tmp, lab.pod_ns(src), lab.pod_ns(dst), lab.pod_ip(dst), proto, seconds)
            r["action_packets"] = node.stats()[ACTION[mode]] - before
            if not r["error"] and r["action_packets"] <= 0:
                r["error"] = f"node {src} counted no {ACTION[mode]}: the traffic did not go through podfwd"
            log(f"  podfwd {mode:<7} {proto}: {describe(r)}; node {src} {ACTION[mode]} +{r['action_packets']}")
            runs[proto].append(r)
    return {p: keep_best(rs) for p, rs in runs.items()}


def describe(r):
    if r.get("error"):
        return f"ERROR {r['error']}"
    if "gbps" in r:
        return f"{r['gbps']:.3f} Gb/s, {r['retransmits']} retransmits"
    return f"{r['pps'] / 1e3:.1f} kpps received ({r['sent_pps'] / 1e3:.1f} kpps sent, {r['lost'] * 100:.1f}% lost)"


def run_podfwd(build, seconds, protos, log, rounds=1):
    """{mode: {proto: result}} for host_gw, vxlan, ipip through podfwd nodes."""
    bins = bins_of(build)
    missing = [p for p in bins.values() if not os.access(p, os.X_OK)]
    if missing:
        raise RuntimeError(f"missing {', '.join(missing)}: build with -Ddpdk=enabled")
    results = {}
    with e2e_lab.Lab(bins, nodes="ab") as lab:
        results["host_gw"] = _measure(lab, "host_gw", "a", "b", seconds, protos, log, rounds)
        for src, dst in (("a", "b"), ("b", "a")):
            other = lab.nodes[dst].spec
            lab.nodes[src].route(other.pod_cidr, other.ip, "vxlan", vtep_mac=other.mac)
        results["vxlan"] = _measure(lab, "vxlan", "a", "b", seconds, protos, log, rounds)
    with e2e_lab.Lab(bins, nodes="ac") as lab:
        results["ipip"] = _measure(lab, "ipip", "a", "c", seconds, protos, log, rounds)
    return results
