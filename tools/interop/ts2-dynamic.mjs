// --dynamic-toolsets through the TypeScript SDK v2 client (@modelcontextprotocol/client)
// over stdio: the first tools/list holds the discovery tools only, enable_toolset makes
// the server send notifications/tools/list_changed, the client's listChanged handler
// sees the new tools, and one of them can be called.
// Usage: node ts2-dynamic.mjs <bin> <state-dir> [legacy|auto]
// Prints one "PASS <check>" / "FAIL <check>: <why>" line per check; exits 1 if any failed.
import { Client } from "@modelcontextprotocol/client";
import { StdioClientTransport } from "@modelcontextprotocol/client/stdio";
import { checker, timeout } from "./ts-checks.mjs";

const [bin, stateDir, negotiation = "legacy"] = process.argv.slice(2);
const tag = `ts-sdk-v2/dynamic/${negotiation}`;
const { pass, fail, check, failures } = checker(tag);

let changed = null;
const seen = new Promise((resolve) => { changed = resolve; });
const client = new Client(
  { name: "cortex-interop-ts2-dynamic", version: "0.0.0" },
  {
    versionNegotiation: { mode: negotiation },
    listChanged: { tools: { debounceMs: 0, onChanged: (err, tools) => changed({ err, tools }) } },
  },
);
const transport = new StdioClientTransport({
  command: bin,
  args: ["--state-dir", stateDir, "--dynamic-toolsets", "serve"],
  env: { ...process.env, CORTEX_MCP_LOG_LEVEL: "warn" },
  stderr: "ignore",
});

await check("connect", async () => { await client.connect(transport, timeout); return true; });
await check("first tools/list: discovery tools only, <= 8 KB", async () => {
  const r = await client.listTools({}, timeout);
  const names = r.tools.map((t) => t.name).sort().join(",");
  const bytes = Buffer.byteLength(JSON.stringify(r));
  console.log(`INFO ${tag} first tools/list ${bytes} bytes`);
  if (names !== "enable_toolset,get_toolset_tools,list_available_toolsets") return `tools: ${names}`;
  return bytes <= 8192 ? true : `${bytes} bytes`;
});
await check("tool of a toolset not enabled answers isError naming enable_toolset", async () => {
  const r = await client.callTool({ name: "create_diff", arguments: { path: "a", before: "x\n", after: "y\n" } }, timeout);
  const text = (r.content ?? []).map((c) => c.text ?? "").join(" ");
  return r.isError === true && text.includes("enable_toolset") ? true : JSON.stringify(r);
});
await check("enable_toolset patchkit", async () => {
  const r = await client.callTool({ name: "enable_toolset", arguments: { toolset: "patchkit" } }, timeout);
  return r.isError ? JSON.stringify(r.content) : true;
});
await check("list_changed received with the new tools", async () => {
  const got = await Promise.race([seen, new Promise((r) => setTimeout(() => r(null), 10000))]);
  if (!got) return "no notifications/tools/list_changed within 10 s";
  if (got.err) return `refresh failed: ${got.err}`;
  const names = (got.tools ?? []).map((t) => t.name);
  return names.includes("create_diff") ? true : `tools after the change: ${names}`;
});
await check("callTool create_diff after enabling", async () => {
  const r = await client.callTool({ name: "create_diff", arguments: { path: "a.txt", before: "one\n", after: "two\n" } }, timeout);
  if (r.isError) return JSON.stringify(r.content);
  return r.structuredContent?.diff?.includes("+two") ? true : JSON.stringify(r.structuredContent);
});
try { await client.close(); } catch {}
process.exit(failures() ? 1 : 0);
