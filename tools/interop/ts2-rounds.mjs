// input_required (multi-round tool calls, 2026-07-28) through the TypeScript SDK v2 client
// (@modelcontextprotocol/client, versionNegotiation 'auto', form elicitation declared):
// the SDK fulfils each input_required result through the client's elicitation/create
// handler and retries with inputResponses and the echoed requestState, inside callTool.
// - delete_integration of an integration with stored credentials: the user is asked (the
//   question names the credentials, never their values); declined -> isError, nothing
//   deleted; accepted -> deleted;
// - test_input_required_result_multi_round (conformance fixture): two rounds with an
//   evolving, signed requestState -> the answers of both rounds in the result.
// Usage: node ts2-rounds.mjs stdio <bin> <state-dir>   |   node ts2-rounds.mjs http <url>
// Prints one "PASS <check>" / "FAIL <check>: <why>" line per check; exits 1 if any failed.
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { StdioClientTransport } from "@modelcontextprotocol/client/stdio";
import { args, checker, stdioServer, timeout } from "./ts-checks.mjs";

const { mode, target, stateDir } = args();
const tag = `ts-sdk-v2/rounds/${mode}`;
const { pass, fail, check, failures } = checker(tag);

const transport = mode === "stdio"
  ? new StdioClientTransport(stdioServer(target, stateDir))
  : new StreamableHTTPClientTransport(new URL(target));
const client = new Client(
  { name: "cortex-interop-ts2-rounds", version: "0.0.0" },
  { versionNegotiation: { mode: "auto" }, capabilities: { elicitation: { form: {} } } },
);

// The user: answers each question with `reply(params)`; every question is kept.
const questions = [];
let reply = () => ({ action: "decline" });
client.setRequestHandler("elicitation/create", async (request) => {
  questions.push(request.params);
  return reply(request.params);
});

const secret = "whsec-interop-never-shown-7";
const textOf = (r) => (r.content ?? []).map((c) => c.text ?? "").join(" ");

let up = false;
await check("connect", async () => { await client.connect(transport, timeout); up = true; return true; });
if (up) {
  await check("negotiated 2026-07-28", async () => {
    const v = client.getNegotiatedProtocolVersion?.() ?? transport.protocolVersion;
    return v === "2026-07-28" ? true : `negotiated ${v}`;
  });
  let id = null;
  await check("create_integration with a credential", async () => {
    const r = await client.callTool({
      name: "create_integration",
      arguments: { name: `rounds-${mode}-${Date.now()}`, type: "webhook", config: { credentials: { webhookSecret: secret } } },
    }, timeout);
    id = r.structuredContent?.id;
    return r.isError || !id ? textOf(r) : true;
  });
  const stillThere = async () => {
    const r = await client.callTool({ name: "list_integrations", arguments: { limit: 100 } }, timeout);
    return (r.structuredContent?.items ?? []).some((i) => i.id === id);
  };
  await check("declined: asked, nothing deleted, isError", async () => {
    reply = () => ({ action: "decline" });
    const r = await client.callTool({ name: "delete_integration", arguments: { integrationId: id } }, timeout);
    if (questions.length !== 1) return `${questions.length} questions`;
    const q = JSON.stringify(questions[0]);
    if (!q.includes("webhookSecret") || q.includes(secret)) return `question: ${q}`;
    if (r.isError !== true || !textOf(r).includes("Nothing was deleted")) return `result: ${JSON.stringify(r)}`;
    return (await stillThere()) ? true : "deleted although declined";
  });
  await check("accepted: deleted", async () => {
    reply = () => ({ action: "accept", content: { confirm: true } });
    const r = await client.callTool({ name: "delete_integration", arguments: { integrationId: id } }, timeout);
    if (r.isError || r.structuredContent?.deleted?.id !== id) return `result: ${JSON.stringify(r)}`;
    if (questions.length !== 2) return `${questions.length} questions`;
    return (await stillThere()) ? "still listed" : true;
  });
  await check("two rounds with an evolving requestState", async () => {
    const before = questions.length;
    reply = (params) => params.message.startsWith("Step 1")
      ? { action: "accept", content: { name: "Ada" } }
      : { action: "accept", content: { color: "teal" } };
    const r = await client.callTool({ name: "test_input_required_result_multi_round", arguments: {} }, timeout);
    if (questions.length - before !== 2) return `${questions.length - before} questions`;
    return textOf(r).includes("Ada's favorite color is teal") ? true : `result: ${JSON.stringify(r)}`;
  });
}
try { await client.close(); } catch {}
process.exit(failures() ? 1 : 0);
