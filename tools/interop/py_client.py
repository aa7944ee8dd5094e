"""Drives cortex-mcp with the Python SDK (`mcp` 2.x `mcp.Client`).

Usage: py_client.py stdio <bin> <state-dir> <mode>  |  py_client.py http <url> <mode>
<mode> is the Client negotiation mode: "auto" (probes server/discover, i.e. the
2026-07-28 per-request protocol when offered) or "legacy" (initialize handshake).
Prints one "PASS <check>" / "FAIL <check>: <why>" line per check; exits 1 if any failed.
"""

import sys

import anyio
import mcp
from mcp import Client, StdioServerParameters

transport, target = sys.argv[1], sys.argv[2]
if transport == "stdio":
    state_dir, mode = sys.argv[3], sys.argv[4]
    server = StdioServerParameters(
        command=target,
        args=["--state-dir", state_dir, "--toolsets", "all", "serve", "--conformance-fixtures"],
        env={"CORTEX_MCP_LOG_LEVEL": "warn"},
    )
else:
    mode = sys.argv[3]
    server = target

tag = f"py-sdk/{transport}/{mode}"
failed = 0


def report(name: str, why: object) -> None:
    global failed
    if why is True:
        print(f"PASS {tag} {name}", flush=True)
    else:
        failed += 1
        first = str(why).splitlines()[0] if str(why) else type(why).__name__
        print(f"FAIL {tag} {name}: {first}", flush=True)


async def check(name, fn) -> None:
    try:
        with anyio.fail_after(20):
            why = await fn()
        report(name, why)
    except Exception as e:  # noqa: BLE001
        report(name, f"{type(e).__name__}: {e}")


def text_of(result) -> str:
    return " ".join(getattr(c, "text", "") for c in result.content)


async def main() -> None:
    connected = False
    try:
        with anyio.fail_after(60):
            async with Client(server, mode=mode, read_timeout_seconds=20) as client:
                connected = True
                report("connect", True)
                print(f"INFO {tag} negotiated protocol {client.protocol_version}", flush=True)
                await run_checks(client)
    except Exception as e:  # noqa: BLE001
        if not connected:
            report("connect", f"{type(e).__name__}: {e}")
        else:
            report("session", f"{type(e).__name__}: {e}")


async def run_checks(client) -> None:
    async def list_tools():
        names = [t.name for t in (await client.list_tools()).tools]
        missing = [n for n in ("test_echo", "batch") if n not in names]
        return True if not missing else f"missing {missing} in {names}"

    async def echo():
        msg = f"hello from python {transport} \u2713"
        r = await client.call_tool("test_echo", {"message": msg})
        if r.is_error:
            return f"isError: {text_of(r)}"
        sc = r.structured_content or {}
        return True if sc.get("text") == msg else f"structured_content={sc!r}"

    async def echo_missing():
        r = await client.call_tool("test_echo", {})
        if r.is_error is not True:
            return f"expected isError, got {r!r}"
        return True if "message" in text_of(r) else f"error does not name 'message': {text_of(r)}"

    async def read_static():
        r = await client.read_resource("test://static-text")
        c = r.contents[0] if r.contents else None
        ok = c is not None and str(c.uri) == "test://static-text" and getattr(c, "text", "")
        return True if ok else f"contents={r.contents!r}"

    await check("list_tools", list_tools)
    await check("call_tool test_echo", echo)
    await check("call_tool test_echo {} isError", echo_missing)
    await check("read_resource test://static-text", read_static)


anyio.run(main)
sys.exit(1 if failed else 0)
