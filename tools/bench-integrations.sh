#!/usr/bin/env bash
# The integrations benchmark (benches/integrations_bench.rs, release build): execute_integration
# overhead against a direct HTTP call to the same loopback endpoint (p50), event pipeline
# CPU per 100 events, flush latency p99 with batching, and events lost while the sink
# target is down. Prints a Markdown table.
#
# Env: SINK_DOWN_SECS (default 30) — how long the sink target refuses deliveries.
#      PROFILE (default release; `dev` for a quick, slower run).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export SINK_DOWN_SECS="${SINK_DOWN_SECS:-30}"
PROFILE="${PROFILE:-release}"
[[ "$PROFILE" == debug ]] && PROFILE=dev
echo "sink outage: ${SINK_DOWN_SECS} s; profile: ${PROFILE}" >&2
cargo bench --locked --profile "$PROFILE" --bench integrations_bench 2>&1 |
  grep -E '^\|'
