#!/usr/bin/env bash
# mvp benchmark (not run by CI): PRP latency without external commands, a graph of 100
# independent tool nodes sequential vs parallel, teaching capture time over 100,000
# captures. Prints a Markdown table. PROFILE=release for release figures (default: the
# debug build the tests use).
set -euo pipefail
cd "$(dirname "$0")/.."
# `cargo bench` builds with the bench profile (release settings) or, by default, dev.
args=(--profile dev)
[[ "${PROFILE:-debug}" == release ]] && args=()
cargo bench "${args[@]}" --locked --bench mvp_bench 2>/dev/null | grep '^|'
