#!/usr/bin/env bash
# Transport benchmark, side by side in one run: cortex-mcp (release) against the reference
# TypeScript server @modelcontextprotocol/server-everything (its `echo` tool), same raw
# JSON-RPC client (tools/bench/transport_bench.mjs): tools/call calls/s and p50/p99 over
# stdio and streamable HTTP at concurrency 1 and 32, cold start to the first `initialize`
# answer, idle RSS. Prints a Markdown table with ratios.
#
# HTTP is driven twice: by the Node client (as the stdio loads are) and by wrk, a C load
# generator (Debian package `wrk`, installed here when missing), because Node's fetch
# saturates near 1,000 round trips/s on 2 cores and then measures itself.
#
# Needs: cargo, node + npm (the peer is installed into tools/bench/node_modules, pinned),
# wrk (apt). Env: CALLS (default 5000), COLD_RUNS (default 20), WRK_SECONDS (default 5)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
echo "building cortex-mcp (release)..." >&2
cargo build --release --locked -p cortex-mcp >&2
if [[ ! -f tools/bench/node_modules/@modelcontextprotocol/server-everything/package.json ]]; then
  echo "installing @modelcontextprotocol/server-everything into tools/bench/node_modules..." >&2
  (cd tools/bench && npm install --no-audit --no-fund --ignore-scripts >&2)
fi
if ! command -v wrk >/dev/null; then
  echo "installing wrk (apt)..." >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get install -y -qq wrk >&2 || { $SUDO apt-get update -qq >&2 && $SUDO apt-get install -y -qq wrk >&2; }
fi
node tools/bench/transport_bench.mjs \
  --wrk "$(command -v wrk)" --wrk-seconds "${WRK_SECONDS:-5}" \
  --ours "$ROOT/target/release/cortex-mcp" \
  --peer-entry "$ROOT/tools/bench/node_modules/@modelcontextprotocol/server-everything/dist/index.js" \
  --calls "${CALLS:-5000}" --cold-runs "${COLD_RUNS:-20}"
