#!/usr/bin/env bash
# asbr benchmark (issue 5; not run by CI), in process through the toolset's public API
# (benches/asbr_bench.rs): (a) task-event publish throughput and p99 latency to the
# acknowledgement under `batch` fsync with concurrent publishers, against a baseline in
# the same run that appends + fsyncs per event and walks every subscriber (the original's
# design, on libuv's 4 writer threads; also printed with one thread per publisher); (b) publish cost with 1,000 watchers on other tasks vs none; (c) the service
# map cached vs rebuilt each call; (d) secrets + SAST scan MB/s on a generated 200 MB tree.
# Prints Markdown tables.
#
# Env: PROFILE=release (default) | debug; BENCH_DIR (temp files; must be a real disk, not
# tmpfs, for the fsync figures); PUBLISHERS (256), EVENTS per publisher (400),
# BASELINE_EVENTS (2000), COST_EVENTS (20000), SCAN_MB (200).
set -euo pipefail
cd "$(dirname "$0")/.."
# `cargo bench` builds with the bench profile (release settings); PROFILE=debug uses dev.
args=()
[[ "${PROFILE:-release}" == release ]] || args+=(--profile dev)
echo "building the benchmark (${PROFILE:-release})..." >&2
cargo bench "${args[@]}" --locked --bench asbr_bench --no-run >&2
cargo bench "${args[@]}" --locked --bench asbr_bench 2>/dev/null | grep -E '^(\||profile:)'
