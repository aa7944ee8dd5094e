#!/usr/bin/env bash
# Side-by-side patch benchmark (issue 4): files of 1k/10k/100k lines with 1% and 30% of
# lines changed. Diff: ours in-process (`cortex-mcp diff --bench`), ours as an MCP call
# (stdio, create_diff), ours at process level (`cortex-mcp diff OLD NEW`), against
# `git diff --no-index`, GNU `diff -u` and the npm package `diff` 5.2 (structuredPatch
# then createTwoFilesPatch, as the original did). Apply: ours in-process and as an MCP
# call (apply_patch) against `git apply` and GNU `patch`. Plus a cold 20-operation
# spool_batch. Then (issue 16.18) diffs of 10k/100k-line files with 30% of the lines
# changed, deleted or inserted at random positions, each unique: ours, `git diff
# --no-index` and GNU `diff -u` on the same files, with times, ratios and output sizes.
# Prints Markdown tables with ratios. `--only-scattered` runs just that last table (no
# node/npm needed). Last (issue 24, tools/bench/edit_bench.py): `edit_files` side by side
# with `edit_file` of @modelcontextprotocol/server-filesystem (pinned in
# tools/bench/package.json), same stdio client, both servers started once: wall time of
# 100 single-edit calls and of one edit touching 20 files, and a correctness table
# (ambiguous match, CRLF, BOM, no final newline, whitespace drift, stale file).
# `--only-edits` runs just that part; EDITS_FSYNC=always|batch|never sets our `--fsync`
# for it (default batch, the server's default; the reference never fsyncs).
#
# Needs: cargo, git, diff, patch, node + npm (installs diff@5.2 into tools/bench/npm,
# gitignored, and tools/bench/package.json into tools/bench/node_modules), python3.
# Not run by .ci/run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# CORTEX_MCP_BIN: use this binary instead of building target/release/cortex-mcp.
BIN="${CORTEX_MCP_BIN:-$ROOT/target/release/cortex-mcp}"
if [[ -z "${CORTEX_MCP_BIN:-}" ]]; then
  echo "building cortex-mcp (release)..." >&2
  cargo build --release --locked --bin cortex-mcp >&2
fi

NPM_DIR="$ROOT/tools/bench/npm"
ONLY_SCATTERED=0
ONLY_EDITS=0
for arg in "$@"; do
  [[ "$arg" == "--only-scattered" ]] && ONLY_SCATTERED=1
  [[ "$arg" == "--only-edits" ]] && ONLY_EDITS=1
done
REF_PKG="$ROOT/tools/bench/node_modules/@modelcontextprotocol/server-filesystem"
edits_bench() {
  if [[ ! -f "$REF_PKG/package.json" ]]; then
    echo "installing tools/bench/package.json (server-filesystem, pinned) into tools/bench/node_modules..." >&2
    (cd "$ROOT/tools/bench" && npm install --no-audit --no-fund --ignore-scripts >&2)
  fi
  python3 "$ROOT/tools/bench/edit_bench.py" --ours "$BIN" \
    --ref "$REF_PKG/dist/index.js" \
    --ref-version "$(node -p "require('$REF_PKG/package.json').version")" \
    --ours-fsync "${EDITS_FSYNC:-batch}"
}
if [[ $ONLY_EDITS == 1 ]]; then
  edits_bench
  exit 0
fi
if [[ $ONLY_SCATTERED == 0 && ! -f "$NPM_DIR/node_modules/diff/package.json" ]]; then
  echo "installing diff@5.2 into tools/bench/npm..." >&2
  mkdir -p "$NPM_DIR"
  npm install --silent --no-audit --no-fund --prefix "$NPM_DIR" diff@5.2 >&2
fi

python3 "$ROOT/tools/bench/patch_bench.py" \
  --ours "$BIN" \
  --npm-dir "$NPM_DIR" "$@"
[[ $ONLY_SCATTERED == 1 ]] || { echo; edits_bench; }
