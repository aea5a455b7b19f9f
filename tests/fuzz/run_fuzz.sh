#!/usr/bin/env bash
# Runs a libFuzzer target for a bounded time from its seeds: a directory of
# seed files kept in the repository, or a script that writes them (scapy).
# Usage: run_fuzz.sh TARGET SEEDS [SECONDS]
set -euo pipefail
target=$(realpath "$1") seeds=$(realpath "$2") seconds=${3:-${PODFWD_FUZZ_SECONDS:-30}}
work=$(mktemp -d)
pid=
cleanup() {
    # The target names its table segment after its pid; a crash leaves it.
    [[ -n $pid ]] && rm -f "/dev/shm/podfwd-fuzz.$pid"
    rm -rf "$work"
}
trap cleanup EXIT
if [[ -d $seeds ]]; then
    mkdir -p "$work/corpus" && cp -r "$seeds"/. "$work/corpus"/
else
    /usr/bin/python3 "$seeds" "$work/corpus"
fi
cd "$work"
# libFuzzer's own exit code for a crash is 77, which meson reads as "skipped".
"$target" -max_total_time="$seconds" -error_exitcode=1 -timeout_exitcode=1 -rss_limit_mb=1024 -print_final_stats=1 "$work/corpus" &
pid=$!
wait "$pid"
