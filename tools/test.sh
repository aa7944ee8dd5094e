#!/usr/bin/env bash
# The README's test command. Provisions what the tests drive, idempotently, then runs
# `cargo test --workspace --locked --no-fail-fast` (extra arguments are passed on to it;
# every test binary runs, so one failing binary does not hide another's failures).
#
# What it installs, each only when missing or out of date:
# - the pinned JS runners (jest, vitest, eslint): `npm ci` into tests/fixtures/js-runners;
# - the authorization server and the TypeScript SDK client of the OAuth tests
#   (oauth2-mock-server, @modelcontextprotocol/sdk; Node >= 20.19): `npm ci` into tools/oauth;
# - pytest, pytest-cov and ruff, pinned in tools/test-requirements.txt, into a virtual
#   environment under target/test-venv (never into the system Python); its bin/ goes
#   first on PATH for the tests;
# - cargo-nextest: `cargo install --locked` (only when it is not on PATH);
# - GNU patch, PostgreSQL and Redis from Debian's packages, when running as root (or
#   with passwordless sudo); otherwise it prints the command, and the tests that need
#   them skip (outside CI) or fail (under CI=true).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

installed=()
present=()
missing=()

note() { printf '== %s\n' "$*"; }

# npm_tools DIR LABEL: `npm ci` into DIR unless its lock file is installed already.
npm_tools() {
  local dir=$1 label=$2 stamp want
  stamp="$dir/node_modules/.cortex-lock-sha256"
  want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    present+=("$label ($dir/node_modules)")
    return
  fi
  if ! command -v npm >/dev/null; then
    missing+=("npm (Node.js): the tests of $label will fail; install Node.js 20.19+")
    return
  fi
  note "installing $label (npm ci --prefix $dir)"
  npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
  echo "$want" >"$stamp"
  installed+=("$label: npm ci --prefix $dir")
}

js_runners() {
  npm_tools tests/fixtures/js-runners "JS runners (jest, vitest, eslint)"
  npm_tools tools/oauth "OAuth test authorization server and client (oauth2-mock-server, @modelcontextprotocol/sdk)"
}

python_tools() {
  local venv=target/test-venv req=tools/test-requirements.txt stamp want
  stamp="$venv/.cortex-requirements-sha256"
  want=$(sha256sum "$req" | cut -d' ' -f1)
  if [ -x "$venv/bin/python3" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    present+=("pytest, pytest-cov, ruff ($venv)")
  else
    note "installing pytest, pytest-cov and ruff into $venv"
    mkdir -p target
    python3 -m venv --clear "$venv"
    "$venv/bin/python3" -m pip install -q --disable-pip-version-check -r "$req"
    echo "$want" >"$stamp"
    installed+=("$(tr '\n' ' ' <"$req")into $venv")
  fi
  export PATH="$repo/$venv/bin:$PATH"
}

nextest() {
  if command -v cargo-nextest >/dev/null; then
    present+=("cargo-nextest ($(command -v cargo-nextest))")
    return
  fi
  note "installing cargo-nextest (cargo install --locked cargo-nextest)"
  cargo install --locked cargo-nextest
  installed+=("cargo-nextest (cargo install --locked)")
}

# Prints the command that runs apt-get with enough rights, or nothing.
apt_runner() {
  if [ "$(id -u)" -eq 0 ]; then
    echo "apt-get"
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    echo "sudo apt-get"
  fi
}

debian_packages() {
  local wanted=() apt
  command -v patch >/dev/null && present+=("GNU patch") || wanted+=(patch)
  command -v redis-server >/dev/null && present+=("redis-server") || wanted+=(redis-server)
  { command -v haproxy || [ -x /usr/sbin/haproxy ]; } >/dev/null && present+=("haproxy") || wanted+=(haproxy)
  if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    present+=("PostgreSQL server")
  else
    wanted+=(postgresql)
  fi
  [ ${#wanted[@]} -eq 0 ] && return
  apt=$(apt_runner)
  if [ -z "$apt" ] || ! command -v apt-get >/dev/null; then
    missing+=("${wanted[*]}: install with \`apt-get install -y ${wanted[*]}\`; their tests skip (fail under CI=true)")
    return
  fi
  note "installing ${wanted[*]} from Debian's packages"
  $apt update -qq
  DEBIAN_FRONTEND=noninteractive $apt install -y -qq "${wanted[@]}" >/dev/null
  installed+=("${wanted[*]} (apt-get)")
}

report() {
  note "test tools"
  local line
  for line in "${installed[@]+"${installed[@]}"}"; do echo "installed: $line"; done
  for line in "${present[@]+"${present[@]}"}"; do echo "present:   $line"; done
  for line in "${missing[@]+"${missing[@]}"}"; do echo "missing:   $line"; done
}

js_runners
python_tools
nextest
debian_packages
report

note "cargo test --workspace --locked --no-fail-fast $*"
exec cargo test --workspace --locked --no-fail-fast "$@"
