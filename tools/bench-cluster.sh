#!/usr/bin/env bash
# Cluster benchmark (issue 21; not run by CI): one replica on the local journal against
# three replicas on Redis (AOF, appendfsync always) behind HAProxy, started by
# tools/cluster.sh, same workloads in one run (tools/bench/cluster_bench.py: a raw
# JSON-RPC-over-HTTP client on aiohttp, so the servers are the bottleneck; it prints each
# row's client and server CPU to show it). Prints Markdown tables.
#
# Env: CORTEX_MCP_BIN (default: target/release/cortex-mcp, built when missing);
#      FAKEHUB_BIN (default: target/release/fakehub, built when missing); LATENCY_MS (20).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${CORTEX_MCP_BIN:-$ROOT/target/release/cortex-mcp}
FAKE=${FAKEHUB_BIN:-$ROOT/target/release/fakehub}
if [ ! -x "$BIN" ] || [ ! -x "$FAKE" ]; then
  cargo build --release --locked -p cortex-mcp -p fakehub >&2
fi
VENV="$ROOT/tools/bench/.venv"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV" >&2
fi
if ! "$VENV/bin/python" -c 'import aiohttp' 2>/dev/null; then
  "$VENV/bin/pip" install -q -r "$ROOT/tools/bench/requirements.txt" >&2
fi
WORK=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]+"${pids[@]}"}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

fport=$(free_port)
"$FAKE" --listen "127.0.0.1:$fport" --latency-ms "${LATENCY_MS:-20}" >"$WORK/fake.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do grep -q "listening on" "$WORK/fake.log" && break; sleep 0.1; done
# One token per setup: each has its own budget at the fake (900 points a minute per
# token and endpoint), so one setup's row never spends the other's.
export GITHUB_API_URL="http://127.0.0.1:$fport"
sport=$(free_port)
GITHUB_TOKEN=ghp_benchsingletoken00000000000000000000 "$BIN" --state-dir "$WORK/single" --toolsets asbr,github --fsync batch serve --http "127.0.0.1:$sport" >"$WORK/single.log" 2>&1 &
pids+=($!)

spid=$!
GITHUB_TOKEN=ghp_benchclustertoken0000000000000000000 CORTEX_MCP_BIN="$BIN" tools/cluster.sh --replicas 3 --dir "$WORK/cluster" -- --toolsets asbr,github >"$WORK/cluster.out" &
pids+=($!)
for _ in $(seq 1 600); do grep -q '^ready' "$WORK/cluster.out" 2>/dev/null && break; sleep 0.1; done
grep -q '^ready' "$WORK/cluster.out" || { echo "the cluster did not start" >&2; cat "$WORK/cluster.out" >&2; exit 1; }
for _ in $(seq 1 100); do grep -q "listening on" "$WORK/single.log" && break; sleep 0.1; done

redis_url=$(awk '$1 == "redis" {print $2}' "$WORK/cluster.out")
redis_pass=$(python3 -c 'import sys, urllib.parse as u; print(u.urlparse(sys.argv[1]).password)' "$redis_url")
redis_port=$(python3 -c 'import sys, urllib.parse as u; print(u.urlparse(sys.argv[1]).port)' "$redis_url")
lb=$(awk '$1 == "endpoint" {print $2}' "$WORK/cluster.out")
r1=$(awk '$1 == "replica" && $2 == 1 {print $3}' "$WORK/cluster.out")
r2=$(awk '$1 == "replica" && $2 == 2 {print $3}' "$WORK/cluster.out")
# The cluster's processes, for the CPU each row costs: replicas, Redis, HAProxy.
cpids=$(awk '$1 == "replica" {print $5}' "$WORK/cluster.out" | paste -sd, -)
redis_pid=$(redis-cli -p "$redis_port" -a "$redis_pass" --no-auth-warning INFO server | awk -F: '$1 == "process_id" {print $2}' | tr -d '\r')
haproxy_pid=$(pgrep -f "haproxy -f $WORK/cluster/haproxy.cfg" | head -1 || true)
cpids="$cpids,$redis_pid${haproxy_pid:+,$haproxy_pid}"

echo "binary: $BIN; Redis: AOF, appendfsync always; fake GitHub latency ${LATENCY_MS:-20} ms; single replica --fsync batch"
"$VENV/bin/python" "$ROOT/tools/bench/cluster_bench.py" --single "http://127.0.0.1:$sport/mcp" \
  --lb "$lb" --replica1 "$r1" --replica2 "$r2" --redis-port "$redis_port" --redis-pass "$redis_pass" \
  --fake "http://127.0.0.1:$fport" --single-pids "$spid" --cluster-pids "$cpids"
