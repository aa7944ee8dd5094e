#!/usr/bin/env python3
"""Workloads and timing for tools/bench-patch.sh; prints Markdown tables."""
import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import tempfile
import time

NODE_BENCH = r"""
const Diff = require(process.argv[2]);
const fs = require('fs');
const a = fs.readFileSync(process.argv[3], 'utf8');
const b = fs.readFileSync(process.argv[4], 'utf8');
const n = parseInt(process.argv[5], 10);
let t0 = process.hrtime.bigint();
for (let i = 0; i < n; i++) {
  Diff.structuredPatch('f', 'f', a, b, '', '', { context: 3 });
  Diff.createTwoFilesPatch('f', 'f', a, b, '', '', { context: 3 });
}
const ms = Number(process.hrtime.bigint() - t0) / 1e6 / n;
console.log(ms.toFixed(3));
"""


def make_files(lines, pct, seed):
    rnd = random.Random(seed)
    old = [f"line {i} {rnd.randrange(10**9):09d} some text to diff\n" for i in range(lines)]
    new = list(old)
    for i in rnd.sample(range(lines), max(1, lines * pct // 100)):
        new[i] = f"changed {i} {rnd.randrange(10**9):09d}\n"
    return "".join(old), "".join(new)


def make_scattered(lines, pct, seed):
    """Issue 16.18: an old file of unique lines with pct% of its positions edited at
    random: each edit changes the line, deletes it or inserts a new line before it (one
    third each); every changed or inserted line is unique."""
    rnd = random.Random(seed)
    old = [f"line {i} {rnd.randrange(10**9):09d} some text to diff\n" for i in range(lines)]
    edits = set(rnd.sample(range(lines), max(1, lines * pct // 100)))
    new = []
    for i, line in enumerate(old):
        if i not in edits:
            new.append(line)
            continue
        kind = rnd.randrange(3)
        if kind == 0:
            new.append(f"changed {i} {rnd.randrange(10**9):09d}\n")
        elif kind == 2:
            new.append(f"inserted {i} {rnd.randrange(10**9):09d}\n")
            new.append(line)
        # kind 1: deleted
    return "".join(old), "".join(new)


def diff_size(cmd):
    """(lines in the hunks, changed lines) of a unified diff printed by cmd: the hunk
    lines are everything from the first `@@` on, headers excluded."""
    out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout
    lines = out.split(b"\n")
    start = next((k for k, l in enumerate(lines) if l.startswith(b"@@")), len(lines))
    body = [l for l in lines[start:] if l and not l.startswith(b"@@")]
    changed = sum(1 for l in body if l[:1] in (b"+", b"-"))
    return len(body), changed


def scattered_table(ours, work, sizes, pcts, runs):
    """Ours, `git diff --no-index` and GNU `diff -u` on the same scattered-edit files."""
    rows = []
    for lines in sizes:
        for pct in pcts:
            old, new = make_scattered(lines, pct, lines * 7 + pct)
            case = os.path.join(work, f"s{lines}_{pct}")
            os.makedirs(case)
            a, b = os.path.join(case, "a.txt"), os.path.join(case, "b.txt")
            with open(a, "w") as f:
                f.write(old)
            with open(b, "w") as f:
                f.write(new)
            iters = max(1, 100000 // lines)
            r = subprocess.run([ours, "diff", "--bench", str(iters), a, b],
                               capture_output=True, text=True)
            m = dict(kv.split("=") for kv in r.stderr.split())
            assert m["roundtrip_ok"] == "true", r.stderr
            cmds = {
                "ours": [ours, "diff", a, b],
                "git": ["git", "diff", "--no-index", "--no-color", a, b],
                "gnu": ["diff", "-u", a, b],
            }
            times = {k: best_of(lambda c=c: run(c), runs) for k, c in cmds.items()}
            sizes_ = {k: diff_size(c) for k, c in cmds.items()}
            rows.append((lines, pct, float(m["diff_ms"]), times, sizes_))
    out = []
    out.append("### Diff on scattered edits (ms, lower is better; issue 16.18)\n")
    out.append("Changed, deleted and inserted lines (one third each) at random positions, each unique. "
               "Sizes are hunk lines (changed lines) of each tool's output.\n")
    out.append("| lines | edited | ours in-process | `cortex-mcp diff` | `git diff --no-index` | GNU `diff -u` | ours ÷ git | ours ÷ GNU | size ours | size git | size GNU |")
    out.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for lines, pct, ours_in, t, sz in rows:
        size = {k: f"{v[0]} ({v[1]})" for k, v in sz.items()}
        out.append(f"| {lines} | {pct}% | {fmt(ours_in)} | {fmt(t['ours'])} | {fmt(t['git'])} | {fmt(t['gnu'])} | "
                   f"{t['ours'] / t['git']:.2f}× | {t['ours'] / t['gnu']:.2f}× | {size['ours']} | {size['git']} | {size['gnu']} |")
    return "\n".join(out) + "\n"


def best_of(fn, runs):
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return min(times)


class Mcp:
    """A minimal MCP client over stdio (newline-delimited JSON-RPC)."""

    def __init__(self, binary, workspace):
        self.state = tempfile.mkdtemp()
        self.proc = subprocess.Popen(
            [binary, "--state-dir", self.state, "--toolsets", "patchkit",
             "--workspace-roots", workspace, "serve"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.next_id = 0
        self.request("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                    "clientInfo": {"name": "bench", "version": "0"}})
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def send(self, msg):
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()

    def request(self, method, params):
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        while True:
            msg = json.loads(self.proc.stdout.readline())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(msg["error"])
                return msg["result"]

    def call(self, tool, args):
        r = self.request("tools/call", {"name": tool, "arguments": args})
        if r.get("isError"):
            raise RuntimeError(r["content"][0]["text"][:500])
        return r.get("structuredContent")

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=10)
        shutil.rmtree(self.state, ignore_errors=True)


def run(cmd, cwd=None):
    return subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def fmt(x):
    return f"{x:.2f}" if x < 100 else f"{x:.0f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ours", required=True)
    ap.add_argument("--npm-dir", required=True)
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--pcts", default="1,30")
    ap.add_argument("--scattered-sizes", default="10000,100000")
    ap.add_argument("--scattered-pcts", default="30")
    ap.add_argument("--scattered-runs", type=int, default=7)
    ap.add_argument("--only-scattered", action="store_true",
                    help="run only the scattered-edit diff table (no npm, no MCP)")
    args = ap.parse_args()
    if args.only_scattered:
        work = tempfile.mkdtemp()
        try:
            print(scattered_table(args.ours, work, [int(x) for x in args.scattered_sizes.split(",")],
                            [int(x) for x in args.scattered_pcts.split(",")], args.scattered_runs))
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return
    npm_diff = os.path.abspath(os.path.join(args.npm_dir, "node_modules", "diff"))
    work = tempfile.mkdtemp()
    node_js = os.path.join(work, "npm_bench.js")
    with open(node_js, "w") as f:
        f.write(NODE_BENCH)
    mcp = Mcp(args.ours, work)
    diff_rows, apply_rows = [], []
    try:
        for lines in [int(x) for x in args.sizes.split(",")]:
            for pct in [int(x) for x in args.pcts.split(",")]:
                old, new = make_files(lines, pct, lines * 100 + pct)
                case = os.path.join(work, f"c{lines}_{pct}")
                os.makedirs(case)
                a, b = os.path.join(case, "a.txt"), os.path.join(case, "b.txt")
                with open(a, "w") as f:
                    f.write(old)
                with open(b, "w") as f:
                    f.write(new)
                iters = max(1, 200000 // lines)
                r = subprocess.run([args.ours, "diff", "--bench", str(iters), a, b],
                                   capture_output=True, text=True)
                m = dict(kv.split("=") for kv in r.stderr.split())
                ours_in, ours_apply_in = float(m["diff_ms"]), float(m["apply_ms"])
                assert m["roundtrip_ok"] == "true", r.stderr
                runs = 5 if lines <= 10000 else 3
                # A distinct path per call so the result cache never answers.
                t_mcp = best_of(lambda: mcp.call("create_diff", {"path": f"p{time.perf_counter_ns()}", "before": old, "after": new}), runs)
                ours_proc = best_of(lambda: run([args.ours, "diff", a, b]), runs)
                git_proc = best_of(lambda: run(["git", "diff", "--no-index", "--no-color", a, b]), runs)
                gnu_proc = best_of(lambda: run(["diff", "-u", a, b]), runs)
                npm_iters = max(1, min(20, 20000 // lines))
                if lines >= 100000 and pct >= 30:
                    npm_ms = None  # the npm package needs minutes here; reported as n/a
                else:
                    out = subprocess.run(["node", node_js, npm_diff, a, b, str(npm_iters)],
                                         capture_output=True, text=True, timeout=900)
                    npm_ms = float(out.stdout.strip())
                diff_rows.append((lines, pct, ours_in, t_mcp, ours_proc, git_proc, gnu_proc, npm_ms))

                patch = mcp.call("create_diff", {"path": "f.txt", "before": old, "after": new})["diff"]
                pfile = os.path.join(case, "p.patch")
                with open(pfile, "w") as f:
                    f.write(patch)
                t_apply_mcp = best_of(lambda: mcp.call("apply_patch", {"content": old, "diff": patch}), runs)

                def fresh_tree(name):
                    d = os.path.join(case, name)
                    shutil.rmtree(d, ignore_errors=True)
                    os.makedirs(d)
                    shutil.copy(a, os.path.join(d, "f.txt"))
                    return d

                def git_apply():
                    d = fresh_tree("git")
                    t0 = time.perf_counter()
                    r = run(["git", "apply", pfile], cwd=d)
                    ms = (time.perf_counter() - t0) * 1000
                    assert r.returncode == 0 and open(os.path.join(d, "f.txt")).read() == new
                    return ms

                def gnu_patch():
                    d = fresh_tree("gnu")
                    t0 = time.perf_counter()
                    r = run(["patch", "-p1", "--silent", "-i", pfile], cwd=d)
                    ms = (time.perf_counter() - t0) * 1000
                    assert r.returncode == 0 and open(os.path.join(d, "f.txt")).read() == new
                    return ms

                t_git_apply = min(git_apply() for _ in range(runs))
                t_gnu_patch = min(gnu_patch() for _ in range(runs))
                apply_rows.append((lines, pct, ours_apply_in, t_apply_mcp, t_git_apply, t_gnu_patch))

        # A cold 20-operation spool batch: fresh directory, fresh session.
        batch_times = []
        for k in range(5):
            d = os.path.join(work, f"spool{k}")
            os.makedirs(d)
            for i in range(10):
                with open(os.path.join(d, f"f{i}.txt"), "w") as f:
                    f.write("".join(f"row {j}\n" for j in range(200)))
            ops = []
            for i in range(10):
                ops.append({"op": "replace", "path": f"f{i}.txt", "match": "row 7\n", "replacement": "ROW 7\n"})
                ops.append({"op": "write", "path": f"new/n{i}.txt", "content": f"new {i}\n"})
            sid = mcp.call("spool_open", {"root": d})["session"]
            t0 = time.perf_counter()
            mcp.call("spool_batch", {"session": sid, "operations": ops})
            batch_times.append((time.perf_counter() - t0) * 1000)
            mcp.call("spool_close", {"session": sid})
        scattered = scattered_table(args.ours, work, [int(x) for x in args.scattered_sizes.split(",")],
                                    [int(x) for x in args.scattered_pcts.split(",")], args.scattered_runs)
    finally:
        mcp.close()
        shutil.rmtree(work, ignore_errors=True)

    print("### Diff (ms, lower is better)\n")
    print("| lines | changed | ours in-process | ours MCP call | `cortex-mcp diff` | `git diff --no-index` | GNU `diff -u` | npm diff 5.2 (in-process) | npm ÷ ours (in-process) | ours ÷ git (process) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for lines, pct, ours_in, t_mcp, ours_proc, git_proc, gnu_proc, npm_ms in diff_rows:
        npm = fmt(npm_ms) if npm_ms is not None else "n/a (minutes)"
        ratio = f"{npm_ms / ours_in:.0f}×" if npm_ms is not None else "n/a"
        print(f"| {lines} | {pct}% | {fmt(ours_in)} | {fmt(t_mcp)} | {fmt(ours_proc)} | {fmt(git_proc)} | {fmt(gnu_proc)} | {npm} | {ratio} | {ours_proc / git_proc:.2f}× |")
    print("\n### Apply (ms, lower is better)\n")
    print("| lines | changed | ours in-process | ours MCP call (`apply_patch`) | `git apply` | GNU `patch` |")
    print("|---:|---:|---:|---:|---:|---:|")
    for lines, pct, a_in, a_mcp, g, p in apply_rows:
        print(f"| {lines} | {pct}% | {fmt(a_in)} | {fmt(a_mcp)} | {fmt(g)} | {fmt(p)} |")
    print()
    print(scattered)
    print(f"20-operation `spool_batch`, cold session and files (MCP round trip): best {fmt(min(batch_times))} ms, median {fmt(statistics.median(batch_times))} ms (target ≤ 20 ms).")


if __name__ == "__main__":
    main()
