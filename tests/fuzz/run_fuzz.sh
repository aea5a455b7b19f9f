#!/usr/bin/env bash
# Runs a libFuzzer target for a bounded time from its seeds: a directory of
# seed files kept in the repository, or a script that writes them (scapy).
# Usage: run_fuzz.sh TARGET SEEDS [SECONDS]
# SECONDS: else $PODFWD_FUZZ_SECONDS, else 20.
# Ends with one line "fuzz-summary: <target> <N> executions in <S> s" (what
# scripts/test prints per target). A crashing input is kept in
# <build dir>/fuzz-artifacts/<target>/ (the build dir: the nearest directory
# above TARGET with a build.ninja), its path printed.
set -euo pipefail
target=$(realpath "$1") seeds=$(realpath "$2") seconds=${3:-${PODFWD_FUZZ_SECONDS:-20}}
name=$(basename "$target")
build=$(dirname "$target")
while [[ $build != / && ! -f $build/build.ninja ]]; do
    build=$(dirname "$build")
done
[[ -f $build/build.ninja ]] || build=$(dirname "$target")
artifacts=$build/fuzz-artifacts/$name
mkdir -p "$artifacts"
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
touch "$work/started"   # artifacts newer than this are this run's
# libFuzzer's own exit code for a crash is 77, which meson reads as
# "skipped": any failure exits 1. -timeout: one input running 10 s is a hang.
status=0
"$target" -max_total_time="$seconds" -timeout=10 -error_exitcode=1 -timeout_exitcode=1 -rss_limit_mb=1024 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" "$work/corpus" 2>"$work/log" &
pid=$!
wait "$pid" || status=$?
cat "$work/log" >&2
executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -n 1)
echo "fuzz-summary: $name ${executions:-?} executions in $seconds s"
if [[ $status -ne 0 ]]; then
    echo "fuzz-summary: $name FAILED (exit $status); crashing input(s):"
    find "$artifacts" -type f -newer "$work/started" -printf '    %p\n'
fi
exit "$status"
