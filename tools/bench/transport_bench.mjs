// Transport benchmark: tools/call round trips of a trivial echo tool over stdio and
// streamable HTTP (concurrency 1 and 32), cold start to the first `initialize` answer,
// and idle RSS — for cortex-mcp and a peer in the same run, driven by the same raw
// JSON-RPC client (no SDK in the loop, so the client costs the same for both).
//
// With --wrk BIN, the HTTP loads are also driven by wrk (tools/bench/wrk_call.lua) for
// WRK_SECONDS each: a C load generator, so the figures show the servers rather than
// Node's fetch, which tops out near 1,000 round trips/s on this machine.
//
// Usage: node transport_bench.mjs --ours BIN --peer-entry PATH/TO/server-everything/dist/index.js [--wrk BIN]
// Prints a Markdown table with both servers' figures and ratios.
import { spawn } from "node:child_process";
import { readFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer } from "node:net";
import { performance } from "node:perf_hooks";

const arg = (name) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const OURS = arg("--ours");
const PEER_ENTRY = arg("--peer-entry");
const CALLS = Number(arg("--calls") ?? 2000);
const COLD_RUNS = Number(arg("--cold-runs") ?? 10);
const WRK = arg("--wrk");
const WRK_SECONDS = Number(arg("--wrk-seconds") ?? 5);
const WRK_SCRIPT = new URL("./wrk_call.lua", import.meta.url).pathname;

const INIT = {
  protocolVersion: "2025-11-25",
  capabilities: {},
  clientInfo: { name: "cortex-transport-bench", version: "0.0.0" },
};

const servers = [
  {
    name: "cortex-mcp",
    stdio: () => [OURS, ["--state-dir", mkdtempSync(join(tmpdir(), "bench-")), "--toolsets", "batch", "serve", "--conformance-fixtures"], { CORTEX_MCP_LOG_LEVEL: "error" }],
    http: (port) => [OURS, ["--state-dir", mkdtempSync(join(tmpdir(), "bench-")), "--toolsets", "batch", "serve", "--conformance-fixtures", "--http", `127.0.0.1:${port}`], { CORTEX_MCP_LOG_LEVEL: "error" }],
    echo: { name: "test_echo", arguments: { message: "hi" } },
  },
  {
    name: "server-everything",
    stdio: () => [process.execPath, [PEER_ENTRY, "stdio"], {}],
    http: (port) => [process.execPath, [PEER_ENTRY, "streamableHttp"], { PORT: String(port) }],
    echo: { name: "echo", arguments: { message: "hi" } },
  },
];

function freePort() {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function rssMb(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = Number(/VmRSS:\s+(\d+)/.exec(status)[1]);
    return kb / 1024;
  } catch {
    return NaN;
  }
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

// ---------------------------------------------------------------- stdio
class StdioPeer {
  constructor([cmd, args, env]) {
    this.child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ["pipe", "pipe", "ignore"] });
    this.pending = new Map();
    this.nextId = 1;
    let buf = "";
    this.child.stdout.setEncoding("utf8");
    this.child.stdout.on("data", (chunk) => {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (!line.trim()) continue;
        const msg = JSON.parse(line);
        const done = msg.id !== undefined && this.pending.get(msg.id);
        if (done) {
          this.pending.delete(msg.id);
          done(msg);
        }
      }
    });
  }
  request(method, params) {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.child.stdin.write(JSON.stringify({ jsonrpc: "2.0", id, method, params }) + "\n");
    });
  }
  notify(method, params) {
    this.child.stdin.write(JSON.stringify({ jsonrpc: "2.0", method, params }) + "\n");
  }
  async close() {
    this.child.stdin.end();
    const exited = new Promise((r) => this.child.once("exit", r));
    await Promise.race([exited, sleep(2000)]);
    this.child.kill("SIGKILL");
  }
}

async function stdioSession(server) {
  const peer = new StdioPeer(server.stdio());
  const t0 = performance.now();
  const init = await peer.request("initialize", INIT);
  const coldMs = performance.now() - t0;
  if (init.error) throw new Error(`${server.name} initialize: ${JSON.stringify(init.error)}`);
  peer.notify("notifications/initialized", {});
  return { peer, coldMs };
}

// ---------------------------------------------------------------- HTTP
async function httpServer(server) {
  const port = await freePort();
  const [cmd, args, env] = server.http(port);
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ["ignore", "ignore", "ignore"] });
  const url = `http://127.0.0.1:${port}/mcp`;
  for (let i = 0; i < 200; i++) {
    try {
      await fetch(`http://127.0.0.1:${port}/`, { method: "GET" });
      break;
    } catch {
      await sleep(50);
    }
  }
  return { child, url };
}

async function readRpc(res) {
  const text = await res.text();
  if ((res.headers.get("content-type") ?? "").includes("text/event-stream")) {
    for (const line of text.split("\n")) {
      if (line.startsWith("data:") && line.slice(5).trim()) {
        const msg = JSON.parse(line.slice(5));
        if (msg.id !== undefined) return msg;
      }
    }
    throw new Error(`no response in SSE body: ${text.slice(0, 200)}`);
  }
  return text ? JSON.parse(text) : null;
}

async function httpSession(url) {
  const headers = { "content-type": "application/json", accept: "application/json, text/event-stream" };
  const res = await fetch(url, { method: "POST", headers, body: JSON.stringify({ jsonrpc: "2.0", id: 0, method: "initialize", params: INIT }) });
  const session = res.headers.get("mcp-session-id");
  await readRpc(res);
  if (session) headers["mcp-session-id"] = session;
  headers["mcp-protocol-version"] = INIT.protocolVersion;
  await (await fetch(url, { method: "POST", headers, body: JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }) })).text();
  let id = 1;
  return {
    headers,
    request: async (method, params) => {
      const r = await fetch(url, { method: "POST", headers, body: JSON.stringify({ jsonrpc: "2.0", id: id++, method, params }) });
      return readRpc(r);
    },
  };
}

// ---------------------------------------------------------------- wrk
function wrkLoad(url, headers, echo, concurrency) {
  const body = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/call", params: echo });
  const threads = Math.min(2, concurrency);
  const args = [`-t${threads}`, `-c${concurrency}`, `-d${WRK_SECONDS}s`, "-s", WRK_SCRIPT, url];
  const env = {
    ...process.env,
    WRK_BODY: body,
    WRK_SESSION: headers["mcp-session-id"] ?? "",
    WRK_PROTOCOL: headers["mcp-protocol-version"],
  };
  return new Promise((resolve, reject) => {
    const child = spawn(WRK, args, { env, stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.on("exit", () => {
      const m = /RESULT rps=([\d.]+) p50_us=(\d+) p99_us=(\d+) requests=(\d+) bad=(\d+) errors=(\d+)/.exec(out);
      if (!m) return reject(new Error(`wrk printed no RESULT line:\n${out}`));
      resolve({ rps: Number(m[1]), p50: Number(m[2]) / 1000, p99: Number(m[3]) / 1000, failures: Number(m[5]) + Number(m[6]) });
    });
  });
}

// ---------------------------------------------------------------- load
async function load(request, echo, concurrency) {
  const latencies = [];
  let next = 0;
  let failures = 0;
  const worker = async () => {
    while (next < CALLS) {
      next++;
      const t0 = performance.now();
      const msg = await request("tools/call", echo);
      latencies.push(performance.now() - t0);
      if (!msg || msg.error || msg.result?.isError) failures++;
    }
  };
  // Warm-up.
  for (let i = 0; i < 50; i++) await request("tools/call", echo);
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const wall = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  return { rps: latencies.length / wall, p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99), failures };
}

async function measure(server) {
  const out = {};
  // Cold start: spawn to the initialize answer, median of COLD_RUNS.
  const colds = [];
  for (let i = 0; i < COLD_RUNS; i++) {
    const { peer, coldMs } = await stdioSession(server);
    colds.push(coldMs);
    await peer.close();
  }
  colds.sort((a, b) => a - b);
  out.coldMs = percentile(colds, 0.5);

  const { peer } = await stdioSession(server);
  await sleep(300);
  out.idleRssMb = rssMb(peer.child.pid);
  for (const c of [1, 32]) out[`stdio${c}`] = await load((m, p) => peer.request(m, p), server.echo, c);
  await peer.close();

  const { child, url } = await httpServer(server);
  const session = await httpSession(url);
  for (const c of [1, 32]) out[`http${c}`] = await load(session.request, server.echo, c);
  if (WRK) for (const c of [1, 32]) out[`wrk${c}`] = await wrkLoad(url, session.headers, server.echo, c);
  child.kill("SIGTERM");
  return out;
}

const results = [];
for (const server of servers) {
  console.error(`measuring ${server.name}...`);
  results.push(await measure(server));
}
const [o, q] = results;
const f = (v, d = 0) => (Number.isFinite(v) ? v.toFixed(d) : "n/a");
const rows = [];
for (const t of WRK ? ["stdio", "http", "wrk"] : ["stdio", "http"]) {
  for (const c of [1, 32]) {
    const k = `${t}${c}`;
    const label = t === "wrk" ? `http c=${c}, wrk driver (${WRK_SECONDS} s)` : `${t} c=${c}`;
    rows.push([`${label}: calls/s`, f(o[k].rps), f(q[k].rps), `${(o[k].rps / q[k].rps).toFixed(1)}×`]);
    rows.push([`${label}: p50 / p99 (ms)`, `${f(o[k].p50, 2)} / ${f(o[k].p99, 2)}`, `${f(q[k].p50, 2)} / ${f(q[k].p99, 2)}`, ""]);
    if (o[k].failures || q[k].failures) rows.push([`${label}: failed calls`, o[k].failures, q[k].failures, ""]);
  }
}
rows.push(["cold start to initialize answer (ms, median)", f(o.coldMs, 1), f(q.coldMs, 1), `${(q.coldMs / o.coldMs).toFixed(1)}× faster`]);
rows.push(["idle RSS (MB)", f(o.idleRssMb, 1), f(q.idleRssMb, 1), `${(q.idleRssMb / o.idleRssMb).toFixed(1)}× smaller`]);
console.log(`| measure (${CALLS} calls each) | cortex-mcp | server-everything | ours vs peer |`);
console.log("|---|---:|---:|---:|");
for (const r of rows) console.log(`| ${r.join(" | ")} |`);
