// The MCP TypeScript SDK (v1) as an OAuth client of cortex-mcp, for tests/e2e/oauth.rs:
// connects to MCP_URL with no token, so the SDK follows the MCP authorization spec by
// itself (401 → protected-resource metadata → authorization server metadata → a
// client_credentials token for the resource, RFC 8707), then lists the tools and calls
// list_tasks. Prints one JSON line: {"tools": [...], "listTasks": {...}} or {"error": "..."}.
//
// Usage: node ts-client.mjs MCP_URL ISSUER SCOPE CLIENT_ID
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ClientCredentialsProvider } from "@modelcontextprotocol/sdk/client/auth-extensions.js";

const [url, issuer, scope, clientId] = process.argv.slice(2);
const provider = new ClientCredentialsProvider({
  clientId,
  clientSecret: "test-secret",
  expectedIssuer: issuer,
  scope,
});
const transport = new StreamableHTTPClientTransport(new URL(url), { authProvider: provider });
const client = new Client({ name: "cortex-oauth-ts-client", version: "1.0.0" });
try {
  await client.connect(transport);
  const { tools } = await client.listTools();
  const listed = await client.callTool({ name: "list_tasks", arguments: {} });
  console.log(JSON.stringify({ tools: tools.map((t) => t.name), listTasks: listed.structuredContent }));
  await client.close();
} catch (e) {
  console.log(JSON.stringify({ error: String(e?.stack ?? e) }));
  process.exitCode = 1;
}
