"""Cluster benchmark (issue 21): one replica on the local journal against three replicas
on Redis behind HAProxy (tools/cluster.sh), same workloads in one run, the GitHub calls
against one fake GitHub.

The load comes from a raw JSON-RPC-over-HTTP client (asyncio + aiohttp, keep-alive
connections from one pool, no per-call session setup): one `initialize` per URL learns
the protocol version the server negotiates, then every call is one POST of `tools/call`
(MCP streamable HTTP, stateless). Replies may be application/json or text/event-stream;
both are parsed. The client's own CPU use (process time over wall time) and the servers'
(from /proc) are printed for every row, with the client's ceiling on this machine: the
same client and workers on a call that costs the server little (`get_task`, read-only, no
fsync) — a row well below it is not bound by the client.

Workloads, on each setup:
  (a) acknowledged task events/s: WORKERS workers each create a task and record EVENTS
      StepCompleted events on it, then start over with a new task, until TASK_SECONDS
      have passed (the last round finishes)
  (b) GitHub get_issue calls/s on the (shared) budget: GITHUB_CALLS calls over 60 issues,
      GITHUB_CONCURRENCY at once; the fake's request counts are shown with it. Sized to
      stay inside one credential's read budget (900 requests a minute per endpoint at the
      fake, as at GitHub; the server paces reads to 900 a minute): a lone replica may
      send one request per call (a 304 revalidation unless it joins an identical request
      in flight), so more than ~850 calls would meet a secondary-limit answer and a 60 s
      pause and measure that instead (seen with 1,000: 4 such answers at the minute's
      edge, 120 s) — this row runs in about a second
  (c) cross-replica event latency: create_task on one replica, then watch_task_events for
      it on another (the cluster's replicas 1 and 2; the single server for both), p50/p99
  (d) Redis commands per tool call during (a) (INFO commandstats), cluster only

Usage: cluster_bench.py --single URL --lb URL --replica1 URL --replica2 URL
                        --redis-port P --redis-pass PW --fake URL
                        [--single-pids PID,...] [--cluster-pids PID,...]
Prints Markdown tables; exits 1 when a call failed (each row counts its failed calls and
shows the first message).
"""

import argparse
import asyncio
import itertools
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid

import aiohttp

WORKERS = 64
EVENTS = 10
TASK_SECONDS = 5.0
CEILING_SECONDS = 3.0
GITHUB_CALLS = 800
GITHUB_CONCURRENCY = 50
GITHUB_ISSUES = 60
LATENCY_SAMPLES = 500
CONNECTIONS = 128
CLIENT_PROTOCOL = "2025-11-25"
CALL_TIMEOUT_SECONDS = 120


class RpcError(RuntimeError):
    """A JSON-RPC error, an `isError` tool result or an HTTP answer that is not one."""


def decode_reply(content_type, body, request_id):
    """The JSON-RPC response with `request_id` from a JSON body or an SSE stream."""
    if content_type == "text/event-stream":
        for message in sse_messages(body.decode()):
            if message.get("id") == request_id:
                return message
        raise RpcError(f"the event stream carried no response to request {request_id}")
    return json.loads(body)


def sse_messages(text):
    """The JSON messages of an SSE stream: each event's `data:` lines joined by newlines."""
    data = []
    for line in text.splitlines() + [""]:
        if line == "":
            if data:
                payload = "\n".join(data)
                data = []
                if payload.strip():
                    yield json.loads(payload)
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))


class RpcClient:
    """MCP streamable HTTP over one aiohttp pool of keep-alive connections."""

    def __init__(self, connections):
        self.connections = connections
        self.ids = itertools.count(1)
        self.headers = {}
        connector = aiohttp.TCPConnector(limit=connections, limit_per_host=connections, keepalive_timeout=60)
        self.http = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=CALL_TIMEOUT_SECONDS)
        )

    async def close(self):
        await self.http.close()

    async def initialize(self, url):
        """One `initialize` on `url`: remembers the protocol version it negotiates."""
        base = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
        params = {
            "protocolVersion": CLIENT_PROTOCOL,
            "capabilities": {},
            "clientInfo": {"name": "cluster-bench", "version": "1"},
        }
        result = await self.request(url, "initialize", params, base)
        version = result["protocolVersion"]
        self.headers[url] = {**base, "MCP-Protocol-Version": version}
        await self.notify(url, "notifications/initialized")
        return version

    async def notify(self, url, method):
        body = json.dumps({"jsonrpc": "2.0", "method": method}).encode()
        async with self.http.post(url, data=body, headers=self.headers[url]) as r:
            await r.read()
            if r.status not in (200, 202):
                raise RpcError(f"{method}: HTTP {r.status}")

    async def request(self, url, method, params, headers=None):
        request_id = next(self.ids)
        body = json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}).encode()
        async with self.http.post(url, data=body, headers=headers or self.headers[url]) as r:
            raw = await r.read()
            if r.status != 200:
                raise RpcError(f"{method}: HTTP {r.status}: {raw[:300].decode(errors='replace')}")
            reply = decode_reply(r.content_type, raw, request_id)
        if "error" in reply:
            e = reply["error"]
            raise RpcError(f"{method}: JSON-RPC error {e.get('code')}: {e.get('message')}")
        return reply["result"]

    async def call(self, url, tool, arguments):
        """`tools/call`; an `isError` result raises with its message."""
        result = await self.request(url, "tools/call", {"name": tool, "arguments": arguments})
        if result.get("isError"):
            text = " ".join(c.get("text", "") for c in result.get("content", []))
            raise RpcError(f"{tool}: {text or result}")
        return result.get("structuredContent")


class Failures:
    """Calls that failed (an RpcError) per row: counted and the first message kept, so a
    row reports acknowledged calls and the failures beside them instead of stopping."""

    def __init__(self):
        self.count = {}
        self.first = {}

    def note(self, row, error):
        self.count[row] = self.count.get(row, 0) + 1
        self.first.setdefault(row, str(error))

    def total(self):
        return sum(self.count.values())


FAILURES = Failures()


def task_input(title):
    return {"input": {"title": title, "brief": "b", "inputs": [], "scopes": ["repo:read"]}}


def cpu_seconds(pids):
    """User + system CPU seconds of these processes so far (0 for one that is gone)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


class Meter:
    """Wall time, client CPU and server CPU of one row."""

    def __init__(self, server_pids):
        self.server_pids = server_pids

    def __enter__(self):
        self.wall = time.perf_counter()
        self.client = time.process_time()
        self.server = cpu_seconds(self.server_pids)
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.wall
        self.client = time.process_time() - self.client
        self.server = cpu_seconds(self.server_pids) - self.server



async def task_events(client, url, run, row):
    """Acknowledged calls/s and their count; a failed call ends its round (the worker
    starts over with a new task)."""
    calls = 0

    async def worker(i):
        nonlocal calls
        deadline = time.perf_counter() + TASK_SECONDS
        for round_no in itertools.count():
            if time.perf_counter() >= deadline:
                return
            try:
                t = await client.call(url, "create_task", task_input(f"bench {run} {i} {round_no}"))
                calls += 1
                for n in range(EVENTS):
                    await client.call(url, "record_task_event", {"taskId": t["id"], "type": "StepCompleted", "step": f"s{n}"})
                    calls += 1
            except RpcError as e:
                FAILURES.note(row, e)

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(WORKERS)))
    return calls / (time.perf_counter() - started), calls


async def client_ceiling(client, url, run, row):
    """Calls/s of WORKERS workers repeating `get_task` on one task for CEILING_SECONDS."""
    t = await client.call(url, "create_task", task_input(f"ceiling {run}"))
    calls = 0

    async def worker():
        nonlocal calls
        deadline = time.perf_counter() + CEILING_SECONDS
        while time.perf_counter() < deadline:
            try:
                await client.call(url, "get_task", {"taskId": t["id"]})
                calls += 1
            except RpcError as e:
                FAILURES.note(row, e)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(WORKERS)))
    return calls / (time.perf_counter() - started), calls


async def github_calls(client, url, row):
    """Acknowledged calls/s."""
    sem = asyncio.Semaphore(GITHUB_CONCURRENCY)
    calls = 0

    async def one(i):
        nonlocal calls
        async with sem:
            try:
                await client.call(url, "get_issue", {"repository": "octo/hello", "number": 1 + i % GITHUB_ISSUES})
                calls += 1
            except RpcError as e:
                FAILURES.note(row, e)

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(GITHUB_CALLS)))
    return calls / (time.perf_counter() - started), calls


async def cross_latency(client, create_url, watch_url, run, row):
    """p50 and p99 in ms of the watch that follows each create (a failed pair is no sample)."""
    samples = []
    for i in range(LATENCY_SAMPLES):
        try:
            t = await client.call(create_url, "create_task", task_input(f"latency {run} {i}"))
            started = time.perf_counter()
            seen = await client.call(watch_url, "watch_task_events", {"taskId": t["id"], "since_seq": 0, "wait_ms": 10000})
        except RpcError as e:
            FAILURES.note(row, e)
            continue
        if not seen["events"]:
            FAILURES.note(row, f"watch_task_events: no event of task {t['id']} within 10 s")
            continue
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    if not samples:
        return (float("nan"), float("nan")), 0
    return (statistics.median(samples), samples[max(0, int(len(samples) * 0.99) - 1)]), 2 * len(samples)


def redis_commands(port, password):
    out = subprocess.run(
        ["redis-cli", "-p", str(port), "-a", password, "--no-auth-warning", "INFO", "commandstats"],
        capture_output=True, text=True, check=True,
    ).stdout
    total = 0
    for line in out.splitlines():
        if line.startswith("cmdstat_"):
            fields = dict(kv.split("=") for kv in line.split(":", 1)[1].split(","))
            total += int(fields["calls"])
    return total


def fake_stats(fake):
    with urllib.request.urlopen(f"{fake}/_fake/stats", timeout=5) as r:
        return json.load(r)


def fake_delta(before, after):
    return {k: after[k] - before[k] for k in ("requests", "not_modified", "secondary_limited")}


def pid_list(text):
    return [int(p) for p in text.split(",") if p]


class Rows:
    """Runs each row under a Meter and keeps its name, acknowledged calls and usage."""

    def __init__(self):
        self.usage = []

    async def run(self, name, pids, work):
        """`work(name)` answers (figure, acknowledged calls); answers the figure."""
        with Meter(pids) as m:
            figure, calls = await work(name)
        self.usage.append((name, calls, m))
        return figure


async def main():
    p = argparse.ArgumentParser()
    for name in ("--single", "--lb", "--replica1", "--replica2", "--redis-pass", "--fake"):
        p.add_argument(name, required=True)
    p.add_argument("--redis-port", type=int, required=True)
    p.add_argument("--single-pids", default="")
    p.add_argument("--cluster-pids", default="")
    a = p.parse_args()
    single_pids, cluster_pids = pid_list(a.single_pids), pid_list(a.cluster_pids)
    run = uuid.uuid4().hex[:8]

    client = RpcClient(CONNECTIONS)
    rows = Rows()
    try:
        versions = {url: await client.initialize(url) for url in (a.single, a.lb, a.replica1, a.replica2)}
        ceiling = await rows.run("client ceiling: get_task, 1 replica", single_pids,
                                 lambda row: client_ceiling(client, a.single, run, row))
        single_events = await rows.run("task events, 1 replica", single_pids,
                                       lambda row: task_events(client, a.single, f"{run}s", row))
        before = redis_commands(a.redis_port, a.redis_pass)
        lb_events = await rows.run("task events, 3 replicas", cluster_pids,
                                   lambda row: task_events(client, a.lb, f"{run}c", row))
        per_call = (redis_commands(a.redis_port, a.redis_pass) - before) / rows.usage[-1][1]

        fake0 = fake_stats(a.fake)
        single_gh = await rows.run("GitHub calls, 1 replica", single_pids,
                                   lambda row: github_calls(client, a.single, row))
        fake1 = fake_stats(a.fake)
        lb_gh = await rows.run("GitHub calls, 3 replicas", cluster_pids,
                               lambda row: github_calls(client, a.lb, row))
        fake2 = fake_stats(a.fake)
        single_fake, lb_fake = fake_delta(fake0, fake1), fake_delta(fake1, fake2)

        s50, s99 = await rows.run("latency, 1 replica", single_pids,
                                  lambda row: cross_latency(client, a.single, a.single, f"{run}s", row))
        c50, c99 = await rows.run("latency, 3 replicas (create on 1, watch on 2)", cluster_pids,
                                  lambda row: cross_latency(client, a.replica1, a.replica2, f"{run}c", row))
    finally:
        await client.close()

    print(
        f"client: raw JSON-RPC over HTTP (Python asyncio + aiohttp {aiohttp.__version__}, one pool of "
        f"{CONNECTIONS} keep-alive connections, stateless streamable HTTP, protocol "
        f"{', '.join(sorted(set(versions.values())))})"
    )
    print()
    print("| measure | 1 replica, local journal | 3 replicas on Redis via HAProxy | ratio |")
    print("|---|---:|---:|---:|")
    print(f"| acknowledged task events/s ({WORKERS} workers, create + {EVENTS} events each, {TASK_SECONDS:.0f} s) | {single_events:,.0f} | {lb_events:,.0f} | {lb_events / single_events:.2f}× |")
    print(f"| GitHub `get_issue` calls/s ({GITHUB_CALLS} over {GITHUB_ISSUES} issues, {GITHUB_CONCURRENCY} at once, shared budget) | {single_gh:,.0f} | {lb_gh:,.0f} | {lb_gh / single_gh:.2f}× |")
    print(f"| event latency p50 / p99, ms (watch after create; cluster: on another replica) | {s50:.1f} / {s99:.1f} | {c50:.1f} / {c99:.1f} | |")
    print(f"| Redis commands per tool call (task events) | – | {per_call:.1f} | |")
    print()
    print(
        "fake GitHub during the GitHub rows (requests / 304s / secondary-limit answers): "
        f"1 replica {single_fake['requests']} / {single_fake['not_modified']} / {single_fake['secondary_limited']}; "
        f"3 replicas {lb_fake['requests']} / {lb_fake['not_modified']} / {lb_fake['secondary_limited']}"
    )
    print()
    print("Is the client the bottleneck? CPU % of one core over each row's wall time (the client is "
          "one Python process; servers: the replicas, plus Redis and HAProxy for the cluster):")
    print()
    print("| row | acknowledged calls | failed | wall | calls/s | client CPU | servers' CPU |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, calls, m in rows.usage:
        print(f"| {name} | {calls:,} | {FAILURES.count.get(name, 0)} | {m.wall:.1f} s | {calls / m.wall:,.0f} | "
              f"{100 * m.client / m.wall:.0f} % | {100 * m.server / m.wall:.0f} % |")
    print()
    print(f"client ceiling ({WORKERS} workers, `get_task` on the single replica): {ceiling:,.0f} calls/s; "
          f"the task-event rows reach {single_events / ceiling:.0%} (1 replica) and {lb_events / ceiling:.0%} (3 replicas) of it")
    if FAILURES.total():
        print()
        for name, count in FAILURES.count.items():
            print(f"FAILED: {count} call(s) in \"{name}\", the first: {FAILURES.first[name]}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
