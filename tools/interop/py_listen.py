"""subscriptions/listen through the Python SDK (`mcp` 2.x `mcp.Client`, mode "auto",
i.e. 2026-07-28): listen to events://asbr.task.* and to a task's asbr://tasks/{id}/events,
record an event on the task, and expect a ResourceUpdated event for both URIs; a URI that
cannot change (cortex://config) is not honored.

Usage: py_listen.py stdio <bin> <state-dir>  |  py_listen.py http <url>
Prints one "PASS <check>" / "FAIL <check>: <why>" line per check; exits 1 if any failed.
"""

import json
import sys

import anyio
from mcp import Client, StdioServerParameters
from mcp.shared.subscriptions import ResourceUpdated

transport, target = sys.argv[1], sys.argv[2]
if transport == "stdio":
    server = StdioServerParameters(
        command=target,
        args=["--state-dir", sys.argv[3], "--toolsets", "all", "serve", "--conformance-fixtures"],
        env={"CORTEX_MCP_LOG_LEVEL": "warn"},
    )
else:
    server = target

tag = f"py-sdk/listen/{transport}"
failed = 0
TOPIC = "events://asbr.task.*"
TASK_INPUT = {"title": "listened", "brief": "do it", "inputs": [{"kind": "text", "value": "x"}], "scopes": ["docs"]}


def report(name: str, why: object) -> None:
    global failed
    if why is True:
        print(f"PASS {tag} {name}", flush=True)
    else:
        failed += 1
        first = str(why).splitlines()[0] if str(why) else type(why).__name__
        print(f"FAIL {tag} {name}: {first}", flush=True)


async def updated_uris(sub, want: set[str]) -> set[str]:
    """The ResourceUpdated URIs of `sub` until every URI of `want` was seen."""
    seen: set[str] = set()
    async for event in sub:
        if isinstance(event, ResourceUpdated):
            seen.add(event.uri)
        if want <= seen:
            break
    return seen


async def main() -> None:
    try:
        with anyio.fail_after(60):
            async with Client(server, mode="auto", read_timeout_seconds=20) as client:
                report("connect", True)
                version = client.protocol_version
                report("negotiated 2026-07-28", True if version == "2026-07-28" else f"negotiated {version}")
                created = await client.call_tool("create_task", {"input": TASK_INPUT})
                task_id = (created.structured_content or {}).get("id")
                report("create_task", True if task_id and not created.is_error else f"{created!r}")
                task_uri = f"asbr://tasks/{task_id}/events"
                async with client.listen(resource_subscriptions=[TOPIC, task_uri, "cortex://config"]) as sub:
                    honored = list(sub.honored.resource_subscriptions or [])
                    report(
                        "listen honors the URIs that can change, only",
                        True if honored == [TOPIC, task_uri] else f"honored {honored}",
                    )
                    step = await client.call_tool(
                        "record_task_event", {"taskId": task_id, "type": "StepCompleted", "step": "s1"}
                    )
                    report("record_task_event", True if not step.is_error else f"{step!r}")
                    with anyio.fail_after(20):
                        seen = await updated_uris(sub, {TOPIC, task_uri})
                    report("ResourceUpdated for the topic and the task", True)
                    report("nothing for a URI not honored", True if "cortex://config" not in seen else f"{seen}")
                page = await client.read_resource(task_uri)
                events = json.loads(page.contents[0].text).get("events", [])
                kinds = [e.get("data", {}).get("type") for e in events]
                report(
                    "the connection goes on after the stream",
                    True if "StepCompleted" in kinds else f"events: {kinds}",
                )
    except Exception as e:  # noqa: BLE001
        report("session", f"{type(e).__name__}: {e}")


anyio.run(main)
sys.exit(1 if failed else 0)
