"""e2e: scripts/demo, the README's first command, in one of its
configurations: it must exit 0 (every pod pair answers on the path its mode
owes, iperf3 carries data, every node converged) within the time given.

    test_demo.py BUILD_DIR [scripts/demo options...]

The lab is named pfe<pid>, so what a killed run left is removed by the next
e2e test (e2e_lab.remove_stale); the demo tears down its own lab at exit.
Exit 77 (skipped) as the demo's: not root, a tool missing, no namespaces."""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEMO = os.path.join(HERE, "..", "..", "scripts", "demo")


def main():
    if len(sys.argv) < 2:
        print(f"usage: {sys.argv[0]} BUILD_DIR [scripts/demo options...]", file=sys.stderr)
        return 2
    build, options = sys.argv[1], sys.argv[2:]
    cmd = [DEMO, *options, "--prefix", f"pfe{os.getpid()}"]
    print("running:", " ".join(cmd), flush=True)
    try:
        r = subprocess.run(cmd, env=dict(os.environ, PODFWD_BUILD_DIR=build), timeout=240)
    except subprocess.TimeoutExpired:
        print("FAIL scripts/demo did not finish within 240 s")
        return 1
    if r.returncode == 77:
        return 77
    print(("ok   " if r.returncode == 0 else "FAIL ") + f"scripts/demo {' '.join(options)}: exit {r.returncode}")
    return 0 if r.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
