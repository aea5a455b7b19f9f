"""perf/lab's output: the Markdown tables (lab.md) and the chart (lab.png,
gnuplot) from the measured figures.

`e2e` is {system: {mode: {proto: result}}} with system "kernel" or
"podfwd", mode "bare", "host_gw", "ipip", "vxlan" and proto "tcp" (gbps) or
"udp" (pps); a result may carry `error` (or the mode `absent`). `fwd` is
fwd_bench's --json output."""
import math
import os
import subprocess

MODES = (("bare", "bare veth (host network)"), ("host_gw", "host-gw"), ("ipip", "IPIP"), ("vxlan", "VXLAN"))
MODE_NAME = dict(MODES)
SYSTEMS = (("kernel", "Linux kernel"), ("podfwd", "podfwd lab nodes"))
FWD_CASES = (("host_gw", "host-gw"), ("ipip_encap", "IPIP encap"), ("ipip_decap", "IPIP decap"),
             ("vxlan_encap", "VXLAN encap"), ("vxlan_decap", "VXLAN decap"), ("l3fwd", "DPDK l3fwd (LPM)"))
LIT_HOSTGW = 0.9          # literature: host-gw about 10% below the bare host network
LIT_TUNNEL = (0.7, 0.8)   # VXLAN and IPIP 20-30% below
CPU_SHARE_MIN = 0.95      # fwd_bench's: below it another process ran on the forwarding lcore's CPU


def value(e2e, system, mode, proto):
    """The figure (Gb/s for tcp, packets/s for udp) or None."""
    r = e2e.get(system, {}).get(mode, {}).get(proto)
    if not r or r.get("error") or r.get("absent"):
        return None
    return r.get("gbps") if proto == "tcp" else r.get("pps")


def ratios(e2e, system, mode, proto):
    """(vs host-gw of the same system, vs the kernel's bare veth path)."""
    v = value(e2e, system, mode, proto)
    hg = value(e2e, system, "host_gw", proto)
    bare = value(e2e, "kernel", "bare", proto)
    return (v / hg if v and hg else None), (v / bare if v and bare else None)


def _f(x, digits=2):
    return "-" if x is None else f"{x:.{digits}f}"


def status(e2e, system, mode):
    """Why a row has no figures ('absent: ...', 'error: ...'), or ''."""
    rs = e2e.get(system, {}).get(mode, {})
    for r in rs.values():
        if r.get("absent"):
            return f"absent ({r['absent']})"
    errs = [f"{p}: {r['error']}" for p, r in rs.items() if r.get("error")]
    if errs:
        return "error: " + "; ".join(errs)
    runs = []
    for p, unit, scale, digits in (("tcp", "Gb/s", 1, 2), ("udp", "kpps", 1e3, 1)):
        if len(rs.get(p, {}).get("runs", [])) > 1:
            runs.append(f"{p.upper()} runs " + " / ".join(f"{x / scale:.{digits}f}" for x in rs[p]["runs"]) + f" {unit}")
    return "; ".join(runs)


def e2e_table(e2e):
    rows = ["| system | mode | TCP Gb/s | TCP vs host-gw | TCP vs bare | UDP 64 B kpps | UDP vs host-gw | UDP vs bare | note |",
            "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for system, sname in SYSTEMS:
        for mode, mname in MODES:
            if mode not in e2e.get(system, {}):
                continue
            t, u = value(e2e, system, mode, "tcp"), value(e2e, system, mode, "udp")
            (th, tb), (uh, ub) = ratios(e2e, system, mode, "tcp"), ratios(e2e, system, mode, "udp")
            rows.append(f"| {sname} | {mname} | {_f(t)} | {_f(th)} | {_f(tb)} | {_f(u / 1e3 if u else None, 1)} | "
                        f"{_f(uh)} | {_f(ub)} | {status(e2e, system, mode)} |")
    return "\n".join(rows)


def fwd_table(fwd):
    """Mpps per case and pod frame size; the decap cases' l3fwd divisor is l3fwd at their size on the wire in."""
    rows = {(r["case"], r["size"]): r for r in fwd.get("rows", [])}
    sizes = sorted({s for c, s in rows if c != "l3fwd" or (("host_gw", s) in rows)})
    head = "| case | " + " | ".join(f"{s} B Mpps" for s in sizes) + " | " + \
        " | ".join(f"{s} B vs l3fwd" for s in sizes) + " |"
    lines = [head, "|---|" + "---:|" * (2 * len(sizes))]
    for case, name in FWD_CASES:
        cells = [rows.get((case, s)) for s in sizes]
        if not any(cells):
            continue
        mpps = [(_f(r["mpps"]) + ("!" if (r.get("cpu_share") or 1) < CPU_SHARE_MIN else "")
                 + ("†" if r.get("error") else "") if r and r["mpps"] else ("aborted" if r else "-")) for r in cells]
        vs = [_f(r["vs_l3fwd"], 3) if r and case != "l3fwd" else "-" for r in cells]
        lines.append(f"| {name} | " + " | ".join(mpps) + " | " + " | ".join(vs) + " |")
    return "\n".join(lines)


def gnuplot_data(e2e):
    """Rows: mode, then per panel (vs bare, vs host-gw) kernel tcp, kernel udp, podfwd tcp, podfwd udp."""
    lines = ["# mode  vs-bare: kernel_tcp kernel_udp podfwd_tcp podfwd_udp  vs-host-gw: the same"]
    for mode, name in MODES[1:]:
        cells = []
        for which in (1, 0):
            for system, _ in SYSTEMS:
                for proto in ("tcp", "udp"):
                    x = ratios(e2e, system, mode, proto)[which]
                    cells.append("NaN" if x is None or not math.isfinite(x) else f"{x:.4f}")
        lines.append(f'"{name}" ' + " ".join(cells))
    return "\n".join(lines) + "\n"


def chart(e2e, out_dir, title):
    """lab.png: two panels of grouped bars (log y: podfwd's figures are far
    below the kernel's), relative to the bare path and to host-gw, with the
    literature's figures as lines. Returns the PNG's path; raises on failure."""
    data = os.path.join(out_dir, "lab.dat")
    png = os.path.join(out_dir, "lab.png")
    with open(data, "w") as f:
        f.write(gnuplot_data(e2e))
    cols = ["Linux kernel TCP", "Linux kernel UDP 64 B", "podfwd lab TCP", "podfwd lab UDP 64 B"]

    def plot(first_col):
        series = ", ".join(
            f"'{data}' using {first_col + i}:xtic(1) title '{c}' lc {i + 1}" for i, c in enumerate(cols))
        labels = ", ".join(
            f"'{data}' using ($0 + {(i - 1.5) * 0.2:.2f}):{first_col + i}:(sprintf('%.2f', ${first_col + i})) "
            f"with labels offset 0,0.6 font ',8' notitle" for i in range(len(cols)))
        return f"{series}, {labels}"

    hostgw_line = (f"{LIT_HOSTGW} with lines dt 2 lw 2 lc rgb 'dark-green' "
                   f"title 'literature: host-gw -10% (vs the host network)'")
    band = (f"'+' using 1:({LIT_TUNNEL[0]}):({LIT_TUNNEL[1]}) with filledcurves fc rgb 'orange' "
            f"fs transparent solid 0.3 noborder title 'literature: VXLAN, IPIP -20-30%'")
    # A mode a system lacks (the kernel without IPIP): said where its bars would be.
    marks = []
    for i, (mode, _) in enumerate(MODES[1:]):
        for j, (system, _) in enumerate(SYSTEMS):
            why = status(e2e, system, mode)
            if why.startswith(("absent", "error")):
                word = "absent" if why.startswith("absent") else "error"
                marks.append(f"set label '{system}: {word}' at {i + (2 * j - 1.5) * 0.2 + 0.1:.2f}, 0.008 "
                             f"rotate by 90 font ',9'")
    marks = "\n".join(marks)
    script = f"""set terminal pngcairo size 1400,640 font ',10'
set output '{png}'
set datafile missing 'NaN'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set logscale y
set yrange [0.005:12]
set xrange [-0.6:2.6]
set ytics (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 0.7, 1, 2)
set grid ytics
set key top left font ',9' opaque box
set multiplot layout 1,2 title "{title}"
{marks}
set title "throughput relative to the kernel's bare veth path (the host network), log scale"
plot {band}, {hostgw_line}, {plot(2)}
set title 'throughput relative to host-gw of the same system, log scale'
plot {band}, {plot(6)}
unset multiplot
"""
    script_path = os.path.join(out_dir, "lab.gnuplot")
    with open(script_path, "w") as f:
        f.write(script)
    r = subprocess.run(["gnuplot", script_path], capture_output=True, text=True, timeout=60)
    if r.returncode != 0 or not os.path.exists(png) or os.path.getsize(png) == 0:
        raise RuntimeError(f"gnuplot {script_path}: exit {r.returncode}: {r.stderr.strip()[-500:]}")
    return png
