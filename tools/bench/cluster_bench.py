"""Cluster benchmark (issue 21): one replica on the local journal against three replicas
on Redis behind HAProxy (tools/cluster.sh), same workloads in one run, driven over
streamable HTTP by the Python MCP SDK, the GitHub calls against one fake GitHub.

Workloads, on each setup:
  (a) acknowledged task events/s: WORKERS clients each create a task and record EVENTS
      StepCompleted events on it, as fast as acknowledgements come back
  (b) GitHub calls/s on the (shared) budget: CALLS get_issue over 60 issues, 50 at once
  (c) cross-replica event latency: create_task on one replica, then watch_task_events for
      it on another (the cluster's replicas 1 and 2; the single server for both), p50/p99
  (d) Redis commands per tool call during (a) (INFO commandstats), cluster only

Usage: cluster_bench.py --single URL --lb URL --replica1 URL --replica2 URL
                        --redis-port P --redis-pass PW
Prints a Markdown table.
"""

import argparse
import asyncio
import statistics
import subprocess
import time

from mcp import Client

WORKERS = 16
EVENTS = 10
CALLS = 200
LATENCY_SAMPLES = 50


def task_input(title):
    return {"input": {"title": title, "brief": "b", "inputs": [], "scopes": ["repo:read"]}}


async def ok(client, tool, args):
    r = await client.call_tool(tool, args)
    if r.is_error:
        raise RuntimeError(f"{tool}: {r.content[0].text if r.content else r}")
    return r.structured_content


async def task_events(url):
    async def worker(i):
        async with Client(url, mode="legacy", read_timeout_seconds=120) as c:
            t = await ok(c, "create_task", task_input(f"bench {i} {time.time()}"))
            for n in range(EVENTS):
                await ok(c, "record_task_event", {"taskId": t["id"], "type": "StepCompleted", "step": f"s{n}"})
    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(WORKERS)))
    took = time.perf_counter() - started
    return WORKERS * (EVENTS + 1) / took, WORKERS * (EVENTS + 1)


async def github_calls(url):
    sem = asyncio.Semaphore(50)
    async with Client(url, mode="legacy", read_timeout_seconds=120) as c:
        async def one(i):
            async with sem:
                await ok(c, "get_issue", {"repository": "octo/hello", "number": 1 + i % 60})
        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(CALLS)))
        return CALLS / (time.perf_counter() - started)


async def cross_latency(create_url, watch_url):
    samples = []
    async with Client(create_url, mode="legacy", read_timeout_seconds=30) as a, Client(
        watch_url, mode="legacy", read_timeout_seconds=30
    ) as b:
        for i in range(LATENCY_SAMPLES):
            t = await ok(a, "create_task", task_input(f"latency {i} {time.time()}"))
            started = time.perf_counter()
            seen = await ok(b, "watch_task_events", {"taskId": t["id"], "since_seq": 0, "wait_ms": 10000})
            assert seen["events"], seen
            samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]


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


async def main():
    p = argparse.ArgumentParser()
    for name in ("--single", "--lb", "--replica1", "--replica2", "--redis-pass"):
        p.add_argument(name, required=True)
    p.add_argument("--redis-port", type=int, required=True)
    a = p.parse_args()

    single_events, _ = await task_events(a.single)
    before = redis_commands(a.redis_port, a.redis_pass)
    lb_events, calls = await task_events(a.lb)
    per_call = (redis_commands(a.redis_port, a.redis_pass) - before) / calls
    single_gh = await github_calls(a.single)
    lb_gh = await github_calls(a.lb)
    s50, s99 = await cross_latency(a.single, a.single)
    c50, c99 = await cross_latency(a.replica1, a.replica2)

    print("| measure | 1 replica, local journal | 3 replicas on Redis via HAProxy | ratio |")
    print("|---|---:|---:|---:|")
    print(f"| acknowledged task events/s ({WORKERS} clients) | {single_events:,.0f} | {lb_events:,.0f} | {lb_events / single_events:.2f}× |")
    print(f"| GitHub get_issue calls/s (50 at once, shared budget) | {single_gh:,.0f} | {lb_gh:,.0f} | {lb_gh / single_gh:.2f}× |")
    print(f"| event latency p50 / p99, ms (watch after create; cluster: on another replica) | {s50:.1f} / {s99:.1f} | {c50:.1f} / {c99:.1f} | |")
    print(f"| Redis commands per tool call (task events) | – | {per_call:.1f} | |")


if __name__ == "__main__":
    asyncio.run(main())
