// subscriptions/listen through the TypeScript SDK v2 client (@modelcontextprotocol/client)
// in the 2026-07-28 era (versionNegotiation 'auto'): listen to events://asbr.task.* and to
// a task's asbr://tasks/{id}/events, record an event on the task, and expect
// notifications/resources/updated for both URIs on the listen stream; a URI that cannot
// change (cortex://config) is not acknowledged.
// Usage: node ts2-listen.mjs stdio <bin> <state-dir>   |   node ts2-listen.mjs http <url>
// Prints one "PASS <check>" / "FAIL <check>: <why>" line per check; exits 1 if any failed.
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { StdioClientTransport } from "@modelcontextprotocol/client/stdio";
import { args, checker, stdioServer, timeout } from "./ts-checks.mjs";

const { mode, target, stateDir } = args();
const tag = `ts-sdk-v2/listen/${mode}`;
const { pass, fail, check, failures } = checker(tag);

const transport = mode === "stdio"
  ? new StdioClientTransport(stdioServer(target, stateDir))
  : new StreamableHTTPClientTransport(new URL(target));
const client = new Client(
  { name: "cortex-interop-ts2-listen", version: "0.0.0" },
  { versionNegotiation: { mode: "auto" } },
);

// Every notifications/resources/updated URI, and a waiter per expected URI.
const updated = [];
const waiters = [];
client.setNotificationHandler("notifications/resources/updated", (n) => {
  updated.push(n.params.uri);
  for (const w of waiters.filter((w) => w.uri === n.params.uri)) w.resolve(true);
});
const updateOf = (uri) => updated.includes(uri)
  ? Promise.resolve(true)
  : new Promise((resolve) => waiters.push({ uri, resolve }));
const within = (p, what) => Promise.race([
  p, new Promise((resolve) => setTimeout(() => resolve(`no ${what} within 20 s`), 20000)),
]);
const input = { title: "listened", brief: "do it", inputs: [{ kind: "text", value: "x" }], scopes: ["docs"] };

let up = false;
await check("connect", async () => { await client.connect(transport, timeout); up = true; return true; });
if (up) {
  let taskId = null;
  let sub = null;
  await check("negotiated 2026-07-28", async () => {
    const v = client.getNegotiatedProtocolVersion?.() ?? transport.protocolVersion;
    return v === "2026-07-28" ? true : `negotiated ${v}`;
  });
  await check("create_task", async () => {
    const r = await client.callTool({ name: "create_task", arguments: { input } }, timeout);
    taskId = r.structuredContent?.id;
    return r.isError || !taskId ? JSON.stringify(r.content) : true;
  });
  const taskUri = `asbr://tasks/${taskId}/events`;
  await check("listen acknowledges the URIs that can change, only", async () => {
    sub = await client.listen(
      { resourceSubscriptions: ["events://asbr.task.*", taskUri, "cortex://config"] },
      timeout,
    );
    const got = JSON.stringify(sub.honoredFilter.resourceSubscriptions ?? []);
    return got === JSON.stringify(["events://asbr.task.*", taskUri]) ? true : `acknowledged ${got}`;
  });
  if (sub) {
    await check("record_task_event", async () => {
      const r = await client.callTool({
        name: "record_task_event",
        arguments: { taskId, type: "StepCompleted", step: "s1" },
      }, timeout);
      return r.isError ? JSON.stringify(r.content) : true;
    });
    await check("resources/updated for events://asbr.task.*", () => within(updateOf("events://asbr.task.*"), "update"));
    await check("resources/updated for the task's events", () => within(updateOf(taskUri), "update"));
    await check("nothing for a URI not acknowledged", async () =>
      updated.includes("cortex://config") ? `updated: ${updated}` : true);
    await check("close the listen stream", async () => {
      await sub.close();
      const how = await sub.closed;
      return how === "local" ? true : `closed ${how}`;
    });
    await check("the connection goes on after the stream", async () => {
      const r = await client.readResource({ uri: taskUri }, timeout);
      const events = JSON.parse(r.contents?.[0]?.text ?? "{}").events ?? [];
      return events.some((e) => e.data?.type === "StepCompleted") ? true : `events: ${JSON.stringify(events)}`;
    });
  }
}
try { await client.close(); } catch {}
process.exit(failures() ? 1 : 0);
