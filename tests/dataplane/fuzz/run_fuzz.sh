#!/usr/bin/env bash
# Runs a libFuzzer target for a bounded time from a fresh scapy-built seed
# corpus. Usage: run_fuzz.sh TARGET MAKE_CORPUS [SECONDS]
set -euo pipefail
target=$(realpath "$1") make_corpus=$(realpath "$2") seconds=${3:-${PODFWD_FUZZ_SECONDS:-30}}
work=$(mktemp -d)
pid=
cleanup() {
    # The target names its table segment after its pid; a crash leaves it.
    [[ -n $pid ]] && rm -f "/dev/shm/podfwd-fuzz.$pid"
    rm -rf "$work"
}
trap cleanup EXIT
/usr/bin/python3 "$make_corpus" "$work/corpus"
cd "$work"
# libFuzzer's own exit code for a crash is 77, which meson reads as "skipped".
"$target" -max_total_time="$seconds" -error_exitcode=1 -timeout_exitcode=1 -rss_limit_mb=1024 -print_final_stats=1 "$work/corpus" &
pid=$!
wait "$pid"
