#!/usr/bin/env bash
# Runtime journal and event-bus benchmark (issue 2; not run by CI), in process through
# the runtime's public API (benches/journal_bench.rs): acknowledged journal appends/s under
# `batch` fsync with 1, 64 and 512 concurrent appenders (p50 / p99 to the acknowledgement),
# and event publish cost with 10,000 subscribers on other topics vs none (ratio).
# Prints Markdown tables.
#
# Env: PROFILE=release (default) | debug; BENCH_DIR (temp files; must be a real disk, not
# tmpfs); APPENDERS (512), APPENDS per row (200000), PUBLISHES (100000).
set -euo pipefail
cd "$(dirname "$0")/.."
# `cargo bench` builds with the bench profile (release settings); PROFILE=debug uses dev.
args=()
[[ "${PROFILE:-release}" == release ]] || args+=(--profile dev)
echo "building the benchmark (${PROFILE:-release})..." >&2
cargo bench "${args[@]}" --locked --bench journal_bench --no-run >&2
cargo bench "${args[@]}" --locked --bench journal_bench 2>/dev/null | grep -E '^(\||profile:)'
