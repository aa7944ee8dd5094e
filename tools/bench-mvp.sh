#!/usr/bin/env bash
# mvp benchmark (not run by CI): PRP latency without external commands, a graph of 100
# independent tool nodes sequential vs parallel, teaching capture time over 100,000
# captures. Prints a Markdown table. PROFILE=release for release figures (default: the
# debug build the tests use).
set -euo pipefail
cd "$(dirname "$0")/.."
args=()
[[ "${PROFILE:-debug}" == release ]] && args+=(--release)
cargo test "${args[@]}" --locked --test mvp_bench -- --ignored --nocapture 2>/dev/null | grep '^|'
