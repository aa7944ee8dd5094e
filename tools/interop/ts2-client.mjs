// Drives cortex-mcp with the TypeScript SDK v2 client (@modelcontextprotocol/client),
// negotiating the 2026-07-28 (modern, stateless) era with versionNegotiation 'auto'.
// Usage: node ts2-client.mjs stdio <bin> <state-dir>   |   node ts2-client.mjs http <url>
// Prints one "PASS <check>" / "FAIL <check>: <why>" line per check; exits 1 if any failed.
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { StdioClientTransport } from "@modelcontextprotocol/client/stdio";

const [mode, target, stateDir] = process.argv.slice(2);
const tag = `ts-sdk-v2/${mode}`;
let failed = 0;
const pass = (c) => console.log(`PASS ${tag} ${c}`);
const fail = (c, why) => { failed++; console.log(`FAIL ${tag} ${c}: ${String(why).split("\n")[0]}`); };
async function check(name, fn) {
  try { const r = await fn(); if (r === true) pass(name); else fail(name, r); }
  catch (e) { fail(name, e?.message ?? e); }
}

let transport;
if (mode === "stdio") {
  transport = new StdioClientTransport({
    command: target,
    args: ["--state-dir", stateDir, "--toolsets", "all", "serve", "--conformance-fixtures"],
    env: { ...process.env, CORTEX_MCP_LOG_LEVEL: "warn" },
    stderr: "ignore",
  });
} else {
  transport = new StreamableHTTPClientTransport(new URL(target));
}
const client = new Client(
  { name: "cortex-interop-ts2", version: "0.0.0" },
  { versionNegotiation: { mode: "auto" } },
);
const timeout = { timeout: 20000 };

let connected = false;
await check("connect", async () => { await client.connect(transport, timeout); connected = true; return true; });
if (connected) {
  await check("negotiated 2026-07-28", async () => {
    const v = client.getNegotiatedProtocolVersion?.() ?? transport.protocolVersion;
    console.log(`INFO ${tag} negotiated protocol ${v}`);
    return v === "2026-07-28" ? true : `negotiated ${v}`;
  });
  await check("listTools", async () => {
    const names = (await client.listTools({}, timeout)).tools.map((t) => t.name);
    for (const want of ["test_echo", "batch"]) if (!names.includes(want)) return `missing ${want} in [${names}]`;
    return true;
  });
  await check("callTool test_echo", async () => {
    const msg = `hello from ts v2 ${mode} ✓`;
    const r = await client.callTool({ name: "test_echo", arguments: { message: msg } }, timeout);
    if (r.isError) return `isError: ${JSON.stringify(r.content)}`;
    if (r.structuredContent?.text !== msg) return `structuredContent=${JSON.stringify(r.structuredContent)}`;
    return true;
  });
  await check("callTool test_echo {} isError", async () => {
    const r = await client.callTool({ name: "test_echo", arguments: {} }, timeout);
    if (r.isError !== true) return `expected isError, got ${JSON.stringify(r)}`;
    const text = (r.content ?? []).map((c) => c.text ?? "").join(" ");
    if (!text.includes("message")) return `error does not name "message": ${text}`;
    return true;
  });
  await check("readResource cortex://config", async () => {
    const r = await client.readResource({ uri: "cortex://config" }, timeout);
    const c = r.contents?.[0];
    if (!c || typeof c.text !== "string" || !c.text.includes("toolsets")) return `contents=${JSON.stringify(r.contents)}`;
    return true;
  });
  try { await client.close(); } catch {}
}
process.exit(failed ? 1 : 0);
