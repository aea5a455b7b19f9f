"""What the cluster lab (cluster_lab.py) measures and prints: convergence,
every pod pair's reachability with the mode its packets took (read from the
dataplanes' counters, not assumed), iperf3 per node pair, each node's routes
and where they came from, and how to look inside while the lab is up."""
import json
import time

from e2e_lab import wait_until

MODE_OF_ACTION = {"host_gw": "host-gw", "ipip_encap": "ipip", "vxlan_encap": "vxlan", None: "none seen"}
DECAP_OF_ACTION = {"ipip_encap": "ipip_decap", "vxlan_encap": "vxlan_decap"}
PINGS = 5


def table(header, rows):
    """An aligned text table (Markdown's pipe syntax, readable as it is)."""
    cells = [list(map(str, header))] + [list(map(str, r)) for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    out = [line(cells[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [line(r) for r in cells[1:]]
    print("\n".join(out), flush=True)


def section(title):
    print(f"\n=== {title}", flush=True)


def topology(lab):
    section(f"the cluster: source {lab.source}{' (BIRD route reflector)' if lab.rr else ''}, mode {lab.mode}")
    rows = []
    for name, node in lab.nodes.items():
        s = node.spec
        pods = ", ".join(p.ip for p in lab.pods if p.node == name)
        rows.append([name, s.ip, s.subnet, s.pod_cidr, pods, lab.ns_name(name)])
    table(["node", "node IP", "uplink subnet", "pod CIDR", "pods (CNI bridge, host-local)", "namespace"], rows)
    if lab.source == "etcd":
        print(f"etcd at {lab.etcd_url} in the router namespace; "
              f"/coreos.com/network/config = {json.dumps(lab.flannel_config)}")


def wait_converged(lab, check, seconds=60):
    """Until every node installed the routes its source owes it."""
    t0 = time.monotonic()
    pending = set(lab.nodes)

    def done():
        for node in list(pending):
            if lab.converged(node):
                pending.discard(node)
        return not pending
    try:
        wait_until(done, seconds, "the nodes' routes", interval=0.2)
    except TimeoutError:
        pass
    check(not pending, f"routes converged on every node in {time.monotonic() - t0:.1f} s"
          + (f" (not on {', '.join(sorted(pending))})" if pending else ""))
    return not pending


def counters(lab):
    return {name: node.stats() for name, node in lab.nodes.items()}


def path_of(delta):
    """The action a node forwarded PINGS packets with, from its counters'
    change: a tunnel if one moved by PINGS (nothing else encapsulates),
    else host-gw if it did (the nodes' own etcd and BGP traffic is host-gw
    too, so it can only add to it), else None."""
    for action in ("ipip_encap", "vxlan_encap"):
        if delta[action] >= PINGS:
            return action
    return "host_gw" if delta["host_gw"] >= PINGS else None


def reachability(lab, check):
    """Every ordered pod pair: replies, the mode of the request's and the
    reply's path (path_of the sender's and the answerer's counters),
    decapsulations at the far end."""
    section(f"pod to pod: {PINGS} pings per pair, the path's mode from the dataplanes' counters")
    rows = []
    for src in lab.pods:
        for dst in lab.pods:
            if src is dst:
                continue
            before = counters(lab)
            first = lab.reach(src.ns, dst.ip, seconds=5)
            received, sent, rtt = lab.ping(src.ns, dst.ip, count=PINGS, interval=0.02, wait=1)
            after = counters(lab)
            if src.node == dst.node:
                rows.append([src.name, dst.name, f"{received}/{sent}", rtt, "same node (cni0)", "-", "-"])
                check(received == sent == PINGS, f"{src.name} -> {dst.name}: {received}/{sent} replies")
                continue
            delta = {n: {k: after[n][k] - before[n][k] for k in after[n]} for n in after}
            want = lab.expected_action(src.node, dst.node)
            there, back = path_of(delta[src.node]), path_of(delta[dst.node])
            decap = DECAP_OF_ACTION.get(want)
            decaps = delta[dst.node][decap] if decap else "-"
            rows.append([src.name, dst.name, f"{received}/{sent}", rtt, MODE_OF_ACTION[there], MODE_OF_ACTION[back],
                         decaps])
            ok = (first is not None and received == sent == PINGS and there == want and back ==
                  lab.expected_action(dst.node, src.node) and delta[src.node][want] >= PINGS and
                  (decap is None or delta[dst.node][decap] >= PINGS))
            check(ok, f"{src.name} -> {dst.name}: {received}/{sent} replies, path {MODE_OF_ACTION[there]} "
                      f"(want {MODE_OF_ACTION[want]}), back {MODE_OF_ACTION[back]}, far-end decaps {decaps}")
    table(["from", "to", "replies", "rtt ms", "path", "reply path", "decaps at far end"], rows)


def throughput(lab, check, seconds):
    """iperf3 TCP, pod1 of each node to pod1 of each other, one at a time."""
    section(f"iperf3 TCP, {seconds:g} s per node pair (pod1 to pod1)")
    rows = []
    pod1 = {p.node: p for p in lab.pods if p.index == 1}
    port = 5201
    for src in lab.nodes:
        for dst in lab.nodes:
            if src == dst:
                continue
            received, bps, retransmits, error = lab.iperf3(pod1[src].ns, pod1[dst].ns, pod1[dst].ip,
                                                           "-t", str(seconds), port=port)
            port += 1
            mode = MODE_OF_ACTION[lab.expected_action(src, dst)]
            rows.append([src, dst, mode, f"{bps / 1e6:.0f}", retransmits, f"{received / 1e6:.1f}", error or "-"])
            check(error is None and received > 0, f"iperf3 {src} -> {dst} ({mode}): {bps / 1e6:.0f} Mbit/s"
                  + (f", error: {error}" if error else ""))
    table(["from", "to", "mode", "Mbit/s", "retransmits", "MB received", "error"], rows)


def routes(lab):
    section("the routes each node holds (podfwdctl route list), and where they came from")
    rows = []
    for name in lab.nodes:
        for r in lab.routes(name):
            if r.get("source") in ("connected", "gateway"):
                continue
            rows.append([name, r["prefix"], r.get("via") or "-", r.get("effective_mode") or r.get("mode") or "-",
                         r["source"], "yes" if r.get("installed") and r.get("best") else "no"])
    table(["node", "prefix", "via", "mode", "source", "in the table"], rows)
    for name, node in lab.nodes.items():
        sources = json.loads(node.ctl("--json", "sources").stdout)["sources"]
        for source in sources:
            if source.get("refused"):
                print(f"{name}: {source['refused']} {source['name']} route(s) refused (podfwdctl sources); "
                      f"the source's last error: {source['last_error']}")
    if lab.mode == "host-gw":
        print("host-gw needs one L2 segment: podfwd refuses a host-gw route via a node off the uplink subnet (above, "
              "where a source gives one); those pods are reached by the default route via the router, which knows "
              "the pod CIDRs, as a top-of-rack router peering with the nodes would.")


def explore(lab, args):
    section("look inside (while the lab is up: --keep)")
    node = lab.nodes["node1"]
    ctl = f"ip netns exec {node.ns} {lab.bins['ctl']} --socket {node.socket} --table {node.table}"
    print(f"  {ctl} stats --watch\n  {ctl} route list\n  {ctl} sources\n  {ctl} neigh list")
    if lab.source == "bgp":
        print(f"  {ctl} bgp peers")
    pod = next(p for p in lab.pods if p.node == "node3")
    print(f"  ip netns exec {lab.pod_ns('node1')} ping {pod.ip}\n  ip netns list | grep {lab.prefix}")
