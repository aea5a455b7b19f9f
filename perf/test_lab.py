"""e2e (meson suite e2e, test perf_lab): `perf/lab --quick` completes (exit
0: every part measured, none failed; the kernel's IPIP may be absent) and
writes its table (lab.md: both tables, a row per system and mode) and a
non-empty PNG chart. Exits 77 (skipped) unless root with iperf3, gnuplot,
ip, timeout and free hugepages for fwd_bench.

    test_lab.py PERF_LAB BUILD_DIR"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile

SKIP = 77


def hugepages_free():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("HugePages_Free:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def main():
    if len(sys.argv) != 3:
        print("usage: test_lab.py PERF_LAB BUILD_DIR", file=sys.stderr)
        return 2
    lab, build = sys.argv[1], sys.argv[2]
    if os.geteuid() != 0:
        print("SKIP: perf/lab needs root (network namespaces, DPDK)")
        return SKIP
    missing = [t for t in ("ip", "bridge", "iperf3", "gnuplot", "timeout", "ping") if shutil.which(t) is None]
    if missing:
        print(f"SKIP: missing tool(s): {', '.join(missing)} (scripts/setup installs them)")
        return SKIP
    if hugepages_free() < 136:
        print(f"SKIP: {hugepages_free()} free 2 MiB hugepages, fwd_bench needs 136 (scripts/setup)")
        return SKIP
    out = tempfile.mkdtemp(prefix=f"perf-lab-test{os.getpid()}-")
    try:
        proc = subprocess.Popen(["/usr/bin/python3", lab, "--quick", "--out", out],
                                env={**os.environ, "PODFWD_BUILD": build})
        try:
            code = proc.wait(280)
        finally:
            if proc.poll() is None:   # a timeout or our SIGTERM: perf/lab cleans up on SIGTERM
                proc.terminate()
                try:
                    proc.wait(60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        failures = []
        if code != 0:
            failures.append(f"perf/lab --quick exited {code}")
        md = os.path.join(out, "lab.md")
        text = open(md).read() if os.path.exists(md) else ""
        for want in ("## Pod to pod, end to end", "| Linux kernel | bare veth", "| Linux kernel | host-gw |",
                     "| Linux kernel | VXLAN |", "| Linux kernel | IPIP |", "| podfwd lab nodes | host-gw |",
                     "| podfwd lab nodes | IPIP |", "| podfwd lab nodes | VXLAN |", "## Fast path",
                     "| host-gw |", "| VXLAN decap |", "| DPDK l3fwd (LPM) |"):
            if want not in text:
                failures.append(f"lab.md lacks {want!r}")
        png = os.path.join(out, "lab.png")
        size = os.path.getsize(png) if os.path.exists(png) else 0
        with open(png if size else os.devnull, "rb") as f:
            head = f.read(8)
        if head != b"\x89PNG\r\n\x1a\n" or size < 1000:
            failures.append(f"lab.png missing or not a PNG ({size} bytes)")
        for f in failures:
            print("FAIL " + f)
        if not failures:
            print(f"ok: lab.md ({len(text)} bytes) and lab.png ({size} bytes)")
        return 1 if failures else 0
    finally:
        shutil.rmtree(out, ignore_errors=True)


def on_sigterm(signum, frame):
    raise SystemExit(f"signal {signum}")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, on_sigterm)   # meson's timeout: perf/lab gets SIGTERM and cleans up
    sys.exit(main())
