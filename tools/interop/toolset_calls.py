"""Calls every toolset's tools through the Python SDK (`mcp` 2.x) over stdio.

Usage: toolset_calls.py <bin> <state-dir> <calls.json> [KEY=VALUE ...]
KEY=VALUE pairs are added to the server's environment (e.g. GITHUB_API_URL pointing at
tools/fakehub). `calls.json` is a list of checks, run in order in one session:
  {"tool": "get_issue", "arguments": {...},
   "expect": "ok" | "error",            (default "ok")
   "contains": "text the result must contain"}   (optional)
   "save": {"NAME": "field.path"}  (optional: keeps a field of the structured result)
Strings in arguments may use {STATE_DIR}, {WORK_DIR} (a scratch directory), {KEY} for a
KEY=VALUE pair given on the command line, and {NAME} for values saved by earlier calls.
Prints one "PASS <check>" / "FAIL <check>: <why>" line per call.
"""

import json
import os
import sys
import tempfile

import anyio
from mcp import Client, StdioServerParameters

binary, state_dir, calls_path = sys.argv[1], sys.argv[2], sys.argv[3]
extra_env = dict(kv.split("=", 1) for kv in sys.argv[4:])
work_dir = tempfile.mkdtemp(prefix="cortex-toolset-calls.")
env = {"CORTEX_MCP_LOG_LEVEL": "warn", "PATH": os.environ.get("PATH", "")} | extra_env
env.setdefault("CORTEX_MCP_WORKSPACE_ROOTS", work_dir)
server = StdioServerParameters(
    command=binary,
    args=["--state-dir", state_dir, "--toolsets", "all", "serve"],
    env=env,
)
failed = 0
saved: dict[str, str] = {}


def substitute(value):
    if isinstance(value, str):
        value = value.replace("{STATE_DIR}", state_dir).replace("{WORK_DIR}", work_dir)
        for key, val in (extra_env | saved).items():
            value = value.replace("{" + key + "}", val)
        return value
    if isinstance(value, list):
        return [substitute(v) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v) for k, v in value.items()}
    return value


def report(name: str, why) -> None:
    global failed
    if why is True:
        print(f"PASS py-sdk/toolsets {name}", flush=True)
    else:
        failed += 1
        print(f"FAIL py-sdk/toolsets {name}: {str(why).splitlines()[0][:300]}", flush=True)


def text_of(result) -> str:
    return " ".join(getattr(c, "text", "") for c in result.content)


async def run_call(client, call) -> None:
    tool = call["tool"]
    name = call.get("name", tool)
    expect = call.get("expect", "ok")
    try:
        with anyio.fail_after(30):
            r = await client.call_tool(tool, substitute(call.get("arguments", {})))
    except Exception as e:  # noqa: BLE001
        report(name, f"{type(e).__name__}: {e}")
        return
    text = text_of(r)
    if bool(r.is_error) != (expect == "error"):
        report(name, f"expected {expect}, got isError={r.is_error}: {text}")
    elif "contains" in call and call["contains"] not in text:
        report(name, f"result lacks {call['contains']!r}: {text}")
    else:
        for key, path in call.get("save", {}).items():
            value = r.structured_content or {}
            for field in path.split("."):
                value = value.get(field, {}) if isinstance(value, dict) else {}
            saved[key] = str(value) if value != {} else ""
        report(name, True)


async def main() -> None:
    with open(calls_path) as f:
        calls = json.load(f)
    try:
        with anyio.fail_after(300):
            async with Client(server, read_timeout_seconds=30) as client:
                listed = {t.name for t in (await client.list_tools()).tools}
                for call in calls:
                    if call["tool"] not in listed:
                        report(call.get("name", call["tool"]), "tool not listed")
                        continue
                    await run_call(client, call)
    except Exception as e:  # noqa: BLE001
        report("session", f"{type(e).__name__}: {e}")


anyio.run(main)
sys.exit(1 if failed else 0)
