// Drives cortex-mcp with the TypeScript SDK v1 client; the checks live in ts-checks.mjs.
// Usage: node ts-client.mjs stdio <bin> <state-dir>   |   node ts-client.mjs http <url>
// Prints one "PASS <check>" / "FAIL <check>: <why>" line per check; exits 1 if any failed.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { args, run, stdioServer, timeout } from "./ts-checks.mjs";

const { mode, target, stateDir } = args();
const transport = mode === "stdio"
  ? new StdioClientTransport(stdioServer(target, stateDir))
  : new StreamableHTTPClientTransport(new URL(target));
const client = new Client({ name: "cortex-interop-ts", version: "0.0.0" });

await run({
  tag: `ts-sdk/${mode}`,
  client,
  transport,
  callTool: (params) => client.callTool(params, undefined, timeout),
  greeting: `hello from ts ${mode} ✓`,
  resource: ["readResource test://static-text", async () => {
    const r = await client.readResource({ uri: "test://static-text" }, timeout);
    const c = r.contents?.[0];
    if (!c || c.uri !== "test://static-text" || typeof c.text !== "string" || c.text.length === 0)
      return `contents=${JSON.stringify(r.contents)}`;
    return true;
  }],
});
