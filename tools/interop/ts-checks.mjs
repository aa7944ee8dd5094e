// The checks the TypeScript SDK clients (ts-client.mjs for v1, ts2-client.mjs for v2) run
// against cortex-mcp, and their PASS/FAIL reporting; each client brings only its SDK (the
// transports, the Client, how callTool is called) and its era-specific checks.
// Prints one "PASS <tag> <check>" / "FAIL <tag> <check>: <why>" line per check; `run`
// exits 1 if any failed.

export const timeout = { timeout: 20000 };

/// The command line: `stdio <bin> <state-dir>` or `http <url>`.
export function args() {
  const [mode, target, stateDir] = process.argv.slice(2);
  return { mode, target, stateDir };
}

/// StdioClientTransport parameters that start the server under test with the
/// conformance fixtures.
export function stdioServer(bin, stateDir) {
  return {
    command: bin,
    args: ["--state-dir", stateDir, "--toolsets", "all", "serve", "--conformance-fixtures"],
    env: { ...process.env, CORTEX_MCP_LOG_LEVEL: "warn" },
    stderr: "ignore",
  };
}

// PASS/FAIL lines under `tag`: `check(name, fn)` passes when `fn` resolves to `true`,
// fails with the value (or the error) otherwise; `failures()` counts the failures.
export function checker(tag) {
  let failed = 0;
  const pass = (c) => console.log(`PASS ${tag} ${c}`);
  const fail = (c, why) => { failed++; console.log(`FAIL ${tag} ${c}: ${String(why).split("\n")[0]}`); };
  async function check(name, fn) {
    try { const r = await fn(); if (r === true) pass(name); else fail(name, r); }
    catch (e) { fail(name, e?.message ?? e); }
  }
  return { pass, fail, check, failures: () => failed };
}

/// Runs the shared checks and exits.
///   tag        printed before every check name
///   client     an SDK Client; transport: the transport to connect it with
///   callTool   (params) => the SDK's callTool result (the SDKs' signatures differ)
///   greeting   the message test_echo must return
///   connected  async (check) => era-specific checks run right after connecting
///   resource   [check name, async () => true | why] for the resource read
export async function run({ tag, client, transport, callTool, greeting, connected, resource }) {
  const { pass, fail, check, failures } = checker(tag);

  let up = false;
  await check("connect", async () => { await client.connect(transport, timeout); up = true; return true; });
  if (up) {
    if (connected) await connected(check);
    await check("listTools", async () => {
      const names = (await client.listTools({}, timeout)).tools.map((t) => t.name);
      for (const want of ["test_echo", "batch"]) if (!names.includes(want)) return `missing ${want} in [${names}]`;
      return true;
    });
    await check("callTool test_echo", async () => {
      const r = await callTool({ name: "test_echo", arguments: { message: greeting } });
      if (r.isError) return `isError: ${JSON.stringify(r.content)}`;
      if (r.structuredContent?.text !== greeting) return `structuredContent=${JSON.stringify(r.structuredContent)}`;
      return true;
    });
    await check("callTool test_echo {} isError", async () => {
      const r = await callTool({ name: "test_echo", arguments: {} });
      if (r.isError !== true) return `expected isError, got ${JSON.stringify(r)}`;
      const text = (r.content ?? []).map((c) => c.text ?? "").join(" ");
      if (!text.includes("message")) return `error does not name "message": ${text}`;
      return true;
    });
    await check(...resource);
    try { await client.close(); } catch {}
  }
  process.exit(failures() ? 1 : 0);
}
