#!/usr/bin/env bash
# Starts a local cluster: Redis (AOF, fsync always), N cortex-mcp replicas sharing it
# (--store redis://…) and HAProxy in front (round robin, health-checked on /readyz),
# then prints the endpoint and stays in the foreground until interrupted; everything it
# started is stopped on exit.
#
#   tools/cluster.sh [--replicas N] [--port P] [--redis-url URL] [--dir D] [-- SERVER ARGS…]
#
#   --replicas N     replicas to start (default 3)
#   --port P         the load balancer's port on 127.0.0.1 (default: a free one)
#   --redis-url URL  use this Redis instead of starting one
#   --dir D          where state dirs, logs and configs go (default: a temp dir)
#   SERVER ARGS      given to every replica before `serve` (e.g. --toolsets all)
#
# The binary is $CORTEX_MCP_BIN, else target/release/cortex-mcp (built when missing).
# CORTEX_MCP_STORE_KEY is generated when unset (every replica gets the same one).
# Prints, one per line: `redis <url>`, `replica <i> <url> pid <pid>`, `endpoint <url>`,
# then `ready`.
set -euo pipefail
cd "$(dirname "$0")/.."

replicas=3
port=""
redis_url=""
dir=""
server_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --replicas) replicas=$2; shift 2 ;;
    --port) port=$2; shift 2 ;;
    --redis-url) redis_url=$2; shift 2 ;;
    --dir) dir=$2; shift 2 ;;
    --) shift; server_args=("$@"); break ;;
    *) echo "cluster.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

command -v haproxy >/dev/null || PATH="$PATH:/usr/sbin:/sbin"
for tool in haproxy python3; do
  command -v "$tool" >/dev/null || { echo "cluster.sh: $tool is not installed (apt-get install -y $tool)" >&2; exit 1; }
done

bin=${CORTEX_MCP_BIN:-target/release/cortex-mcp}
if [ ! -x "$bin" ]; then
  echo "cluster.sh: building $bin (cargo build --release --locked)" >&2
  cargo build --release --locked >&2
fi

if [ -z "$dir" ]; then
  dir=$(mktemp -d "${TMPDIR:-/tmp}/cortex-cluster.XXXXXX")
fi
mkdir -p "$dir"

pids=()
cleanup() {
  for pid in "${pids[@]+"${pids[@]}"}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]+"${pids[@]}"}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 0' INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Waits until $1 (a command) succeeds, for at most $2 seconds.
wait_for() {
  local what=$1 seconds=$2 i
  for ((i = 0; i < seconds * 20; i++)); do
    if eval "$what" >/dev/null 2>&1; then return 0; fi
    sleep 0.05
  done
  return 1
}

if [ -z "$redis_url" ]; then
  command -v redis-server >/dev/null || { echo "cluster.sh: redis-server is not installed (apt-get install -y redis-server)" >&2; exit 1; }
  redis_port=$(free_port)
  redis_pass=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
  mkdir -p "$dir/redis"
  redis-server --port "$redis_port" --bind 127.0.0.1 --requirepass "$redis_pass" \
    --appendonly yes --appendfsync always --save "" --dir "$dir/redis" \
    >"$dir/redis/redis.log" 2>&1 &
  pids+=($!)
  redis_url="redis://:$redis_pass@127.0.0.1:$redis_port/"
  wait_for "redis-cli -p $redis_port -a $redis_pass --no-auth-warning ping | grep -q PONG" 20 \
    || { echo "cluster.sh: redis-server did not start (see $dir/redis/redis.log)" >&2; exit 1; }
fi
echo "redis $redis_url"

export CORTEX_MCP_STORE_KEY=${CORTEX_MCP_STORE_KEY:-$(python3 -c 'import secrets; print(secrets.token_hex(32))')}

servers=""
for ((i = 1; i <= replicas; i++)); do
  mkdir -p "$dir/replica-$i"
  started=""
  for _try in 1 2 3 4 5; do
    rport=$(free_port)
    : >"$dir/replica-$i/server.log"
    "$bin" --state-dir "$dir/replica-$i/state" --store "$redis_url" --replica-id "r$i" \
      "${server_args[@]+"${server_args[@]}"}" serve --http "127.0.0.1:$rport" \
      >"$dir/replica-$i/server.log" 2>&1 &
    rpid=$!
    if wait_for "grep -q 'listening on http://127.0.0.1:$rport/mcp' '$dir/replica-$i/server.log'" 30; then
      started=1
      break
    fi
    kill "$rpid" 2>/dev/null || true
    wait "$rpid" 2>/dev/null || true
    grep -q "Address already in use" "$dir/replica-$i/server.log" || break
  done
  if [ -z "$started" ]; then
    echo "cluster.sh: replica $i did not start:" >&2
    cat "$dir/replica-$i/server.log" >&2
    exit 1
  fi
  pids+=("$rpid")
  echo "replica $i http://127.0.0.1:$rport/mcp pid $rpid"
  servers+="  server r$i 127.0.0.1:$rport check inter 500ms fall 2 rise 1"$'\n'
done

port=${port:-$(free_port)}
cat >"$dir/haproxy.cfg" <<EOF
global
  maxconn 4096

defaults
  mode http
  timeout connect 2s
  timeout client 300s
  timeout server 300s
  option http-server-close

frontend mcp
  bind 127.0.0.1:$port
  default_backend replicas

backend replicas
  balance roundrobin
  option httpchk GET /readyz
$servers
EOF
haproxy -f "$dir/haproxy.cfg" -db >"$dir/haproxy.log" 2>&1 &
pids+=($!)
wait_for "python3 -c 'import urllib.request,sys; sys.exit(0 if urllib.request.urlopen(\"http://127.0.0.1:$port/readyz\", timeout=1).status == 200 else 1)'" 20 \
  || { echo "cluster.sh: haproxy did not answer (see $dir/haproxy.log)" >&2; cat "$dir/haproxy.log" >&2; exit 1; }
echo "endpoint http://127.0.0.1:$port/mcp"
echo "ready"

# In the foreground until interrupted or HAProxy exits (a replica that dies stays down:
# HAProxy's checks take it out of rotation).
wait "${pids[-1]}" || true
