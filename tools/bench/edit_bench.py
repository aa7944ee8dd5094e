#!/usr/bin/env python3
"""Issue 24: cortex-mcp `edit_files` side by side with `edit_file` of the reference MCP
filesystem server (@modelcontextprotocol/server-filesystem, pinned in
tools/bench/package.json). Both servers are driven by the same minimal stdio JSON-RPC
client, started once per run, on identical copies of the same files. Prints the wall
times (100 single-edit calls; one edit touching 20 files) and a correctness table over a
fixed set of cases, as Markdown. Used by `tools/bench-patch.sh --only-edits`."""
import argparse
import hashlib
import json
import os
import random
import shutil
import statistics
import subprocess
import tempfile
import time


class StdioMcp:
    """A minimal MCP client over stdio (newline-delimited JSON-RPC), same for both servers."""

    def __init__(self, cmd):
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, encoding="utf-8")
        self.next_id = 0
        self.request("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                    "clientInfo": {"name": "edit-bench", "version": "0"}})
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def send(self, msg):
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()

    def request(self, method, params):
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"server exited during {method}")
            msg = json.loads(line)
            if "method" in msg:  # a server request or notification; answer requests empty
                if "id" in msg:
                    self.send({"jsonrpc": "2.0", "id": msg["id"], "result": {}})
                continue
            if msg.get("id") == self.next_id:
                return msg

    def call(self, tool, args):
        """(is_error, text): a JSON-RPC error counts as an error too."""
        msg = self.request("tools/call", {"name": tool, "arguments": args})
        if "error" in msg:
            return True, str(msg["error"].get("message", msg["error"]))
        r = msg["result"]
        text = "".join(c.get("text", "") for c in r.get("content", []))
        return bool(r.get("isError")), text

    def close(self):
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def sha(b):
    return hashlib.sha256(b).hexdigest()


def lines_file(rnd, n, tag):
    return "".join(f"{tag} line {i} value = {rnd.randrange(10**9):09d}\n" for i in range(n))


# ---------------------------------------------------------------------------------------
# Timing


def timing(ours, ref, root, rounds):
    """Per server: seconds for 100 single-edit calls (one unique line in one of 100
    200-line files each) and for one edit touching 20 files (ours: one call; the
    reference edits one file per call, so 20 calls). Best and median of `rounds`."""
    res = {"ours": {"single": [], "multi": []}, "ref": {"single": [], "multi": []}}
    for r in range(rounds):
        rnd = random.Random(1000 + r)
        base = {f"s{i:03}.txt": lines_file(rnd, 200, f"s{i}") for i in range(100)}
        base.update({f"m{i:02}.txt": lines_file(rnd, 200, f"m{i}") for i in range(20)})
        singles, multi = [], []
        for i in range(100):
            name = f"s{i:03}.txt"
            old = base[name].splitlines(keepends=True)[(i * 7) % 200].rstrip("\n")
            singles.append((name, old, old.replace("value", "VALUE")))
        for i in range(20):
            name = f"m{i:02}.txt"
            old = base[name].splitlines(keepends=True)[(i * 11) % 200].rstrip("\n")
            multi.append((name, old, old + "  # edited"))
        for who, client in (("ours", ours), ("ref", ref)):
            d = os.path.join(root, who, f"t{r}")
            os.makedirs(d)
            for name, text in base.items():
                with open(os.path.join(d, name), "w", newline="") as f:
                    f.write(text)
            t0 = time.perf_counter()
            for name, old, new in singles:
                p = os.path.join(d, name)
                if who == "ours":
                    err, msg = client.call("edit_files", {"edits": [{"path": p, "oldText": old, "newText": new}]})
                else:
                    err, msg = client.call("edit_file", {"path": p, "edits": [{"oldText": old, "newText": new}]})
                assert not err, (who, msg[:300])
            res[who]["single"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            if who == "ours":
                err, msg = client.call("edit_files", {"edits": [
                    {"path": os.path.join(d, n), "oldText": o, "newText": w} for n, o, w in multi]})
                assert not err, msg[:300]
            else:
                for n, o, w in multi:
                    err, msg = client.call("edit_file", {"path": os.path.join(d, n), "edits": [{"oldText": o, "newText": w}]})
                    assert not err, msg[:300]
            res[who]["multi"].append(time.perf_counter() - t0)
            # Every file must hold exactly the intended result.
            for name, old, new in singles + multi:
                with open(os.path.join(d, name), newline="") as f:
                    assert f.read() == base[name].replace(old, new, 1), (who, name)
    return res


# ---------------------------------------------------------------------------------------
# Correctness cases


def cases():
    """(name, what, file bytes, oldText, newText, expected file bytes or None for
    "unchanged, refused", stale: bytes written after the agent read the file or None)."""
    body = "def f(x):\n    if x:\n        y = 1\n    return y\n"
    return [
        ("ambiguous match", "oldText occurs twice",
         b"a = 1\nb = 2\na = 1\n", "a = 1", "a = 9", None, None),
        ("CRLF file", "CRLF file, LF oldText",
         b"one\r\ntwo\r\nthree\r\n", "two", "TWO", b"one\r\nTWO\r\nthree\r\n", None),
        ("UTF-8 BOM", "file starts with EF BB BF",
         b"\xef\xbb\xbfalpha\nbeta\n", "beta", "BETA", b"\xef\xbb\xbfalpha\nBETA\n", None),
        ("no final newline", "last line has no \\n",
         b"alpha\nbeta", "beta", "BETA", b"alpha\nBETA", None),
        ("whitespace drift", "2-line oldText indented 0/4, file 4/8",
         body.encode(), "if x:\n    y = 1", "if x:\n    y = 2",
         body.replace("y = 1", "y = 2").encode(), None),
        ("stale file", "file changed after the agent read it",
         b"timeout = 30\nretries = 3\n", "timeout = 30", "timeout = 60", None,
         b"timeout = 30\nretries = 0\n"),
    ]


def describe(b):
    props = []
    if b.startswith(b"\xef\xbb\xbf"):
        props.append("BOM")
    if b"\r\n" in b:
        props.append("CRLF")
    elif b"\n" in b:
        props.append("LF")
    if not b.endswith(b"\n"):
        props.append("no final NL")
    return ", ".join(props)


def correctness(ours, ref, root):
    rows = []
    for name, what, content, old, new, expected, stale in cases():
        row = [name, what]
        for who, client in (("ours", ours), ("ref", ref)):
            d = os.path.join(root, who, "cases")
            os.makedirs(d, exist_ok=True)
            p = os.path.join(d, name.replace(" ", "_") + ".txt")
            with open(p, "wb") as f:
                f.write(content)
            seen = sha(content)
            if stale is not None:
                with open(p, "wb") as f:
                    f.write(stale)
            if who == "ours":
                args = {"edits": [{"path": p, "oldText": old, "newText": new}]}
                if stale is not None:
                    args["expectedSha"] = {p: seen}
                err, msg = client.call("edit_files", args)
            else:
                err, msg = client.call("edit_file", {"path": p, "edits": [{"oldText": old, "newText": new}]})
            with open(p, "rb") as f:
                after = f.read()
            before = stale if stale is not None else content
            if expected is None:
                ok = err and after == before
                if ok:
                    outcome = "refused, file unchanged"
                elif after == before:
                    outcome = "no error, file unchanged"
                else:
                    outcome = "applied" + (" on top of the unseen change" if stale else " to the first match")
            else:
                ok = not err and after == expected
                if ok:
                    outcome = f"edited ({describe(after)} kept)"
                    if who == "ours" and "whitespace-tolerant" in msg:
                        outcome = "edited, reported as whitespace-tolerant, re-indented"
                elif err:
                    outcome = "refused, file unchanged" if after == before else "error, file changed"
                else:
                    outcome = f"edited, wrong bytes ({describe(after)}; expected {describe(expected)})"
                    if describe(after) == describe(expected):
                        outcome = f"edited, wrong bytes: {after!r}"
            row.append(("✅ " if ok else "❌ ") + outcome + (" (isError)" if err else ""))
        rows.append(row)
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ours", required=True, help="cortex-mcp binary")
    ap.add_argument("--ref", required=True, help="server-filesystem dist/index.js")
    ap.add_argument("--ref-version", default="?")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--ours-fsync", choices=["always", "batch", "never"], default="batch",
                    help="cortex-mcp's --fsync policy (the reference never fsyncs)")
    args = ap.parse_args()
    root = os.path.realpath(tempfile.mkdtemp())
    state = tempfile.mkdtemp()
    for who in ("ours", "ref"):
        os.makedirs(os.path.join(root, who))
    ours = StdioMcp([args.ours, "--state-dir", state, "--fsync", args.ours_fsync, "--toolsets", "patchkit",
                     "--workspace-roots", os.path.join(root, "ours"), "serve"])
    ref = StdioMcp(["node", args.ref, os.path.join(root, "ref")])
    try:
        t = timing(ours, ref, root, args.rounds)
        rows = correctness(ours, ref, root)
    finally:
        ours.close()
        ref.close()
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(state, ignore_errors=True)

    def ms(xs):
        return f"{min(xs) * 1000:.0f} / {statistics.median(xs) * 1000:.0f}"

    print(f"### edit_files vs server-filesystem {args.ref_version} edit_file\n")
    print(f"Wall time in ms, best / median of {args.rounds} runs (stdio, same client, servers started once; "
          f"ours with `--fsync {args.ours_fsync}`):\n")
    print("| workload | cortex-mcp `edit_files` | server-filesystem `edit_file` | reference ÷ ours (best) |")
    print("|---|---:|---:|---:|")
    print(f"| 100 single-edit calls (200-line files) | {ms(t['ours']['single'])} | {ms(t['ref']['single'])} | "
          f"{min(t['ref']['single']) / min(t['ours']['single']):.2f}× |")
    print(f"| one edit of 20 files (ours 1 call, reference 20 calls) | {ms(t['ours']['multi'])} | {ms(t['ref']['multi'])} | "
          f"{min(t['ref']['multi']) / min(t['ours']['multi']):.2f}× |")
    print("\n### Correctness (✅ = expected outcome)\n")
    print("| case | setup | cortex-mcp `edit_files` | server-filesystem `edit_file` |")
    print("|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print("\nExpected: ambiguous → refused, file unchanged; CRLF / BOM / no final newline → edited, "
          "the property kept; whitespace drift → edited with the file's indentation and reported, or refused; "
          "stale (ours: `expectedSha` of the bytes read; the reference has no such guard) → refused.")


if __name__ == "__main__":
    main()
