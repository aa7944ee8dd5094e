// Drives cortex-mcp with the TypeScript SDK v2 client (@modelcontextprotocol/client),
// negotiating the 2026-07-28 (modern, stateless) era with versionNegotiation 'auto'; the
// checks it shares with ts-client.mjs live in ts-checks.mjs.
// Usage: node ts2-client.mjs stdio <bin> <state-dir>   |   node ts2-client.mjs http <url>
// Prints one "PASS <check>" / "FAIL <check>: <why>" line per check; exits 1 if any failed.
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { StdioClientTransport } from "@modelcontextprotocol/client/stdio";
import { args, run, stdioServer, timeout } from "./ts-checks.mjs";

const { mode, target, stateDir } = args();
const tag = `ts-sdk-v2/${mode}`;
const transport = mode === "stdio"
  ? new StdioClientTransport(stdioServer(target, stateDir))
  : new StreamableHTTPClientTransport(new URL(target));
const client = new Client(
  { name: "cortex-interop-ts2", version: "0.0.0" },
  { versionNegotiation: { mode: "auto" } },
);

await run({
  tag,
  client,
  transport,
  callTool: (params) => client.callTool(params, timeout),
  greeting: `hello from ts v2 ${mode} ✓`,
  connected: async (check) => {
    await check("negotiated 2026-07-28", async () => {
      const v = client.getNegotiatedProtocolVersion?.() ?? transport.protocolVersion;
      console.log(`INFO ${tag} negotiated protocol ${v}`);
      return v === "2026-07-28" ? true : `negotiated ${v}`;
    });
  },
  resource: ["readResource cortex://config", async () => {
    const r = await client.readResource({ uri: "cortex://config" }, timeout);
    const c = r.contents?.[0];
    if (!c || typeof c.text !== "string" || !c.text.includes("toolsets")) return `contents=${JSON.stringify(r.contents)}`;
    return true;
  }],
});
