// What the edge benchmarks share: wrk runs, workerd CPU time from /proc, the pass-through
// worker, a logged-in session's cookies and the first-sight token script.
import { execFile, execFileSync } from "node:child_process";
import { promisify } from "node:util";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { Miniflare } from "miniflare";
import WebSocket from "ws";
import { ASSERTION_KEYS, Browser, EDGE_SECRET, freePort, startEdge } from "../../tests/support.mjs";

const ticksPerSecond = Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim());

// Only workerd processes this script started (Miniflare spawns them as its children): never one
// that anything else on the machine runs.
function workerdPids() {
  try {
    const out = execFileSync("pgrep", ["-x", "-P", String(process.pid), "workerd"]).toString();
    return new Set(out.trim().split("\n").map(Number));
  } catch {
    return new Set();
  }
}

/** User + system CPU seconds of a process so far. */
export function cpuSeconds(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond; // utime + stime
}

/** Starts a workerd instance and finds its process. */
export async function withPid(start) {
  const before = workerdPids();
  const instance = await start();
  const pid = [...workerdPids()].find((p) => !before.has(p));
  if (!pid) throw new Error("could not find the new workerd process");
  return { ...instance, pid };
}

/**
 * One wrk run (asynchronous: the upstream lives in this process, so its event loop must keep
 * running): `headers` as `-H` lines, or a Lua `script` with its arguments.
 */
export async function wrk(url, { seconds, connections, headers = [], script, scriptArgs = [] }) {
  const args = [`-t1`, `-c${connections}`, `-d${seconds}s`, "--latency"];
  if (script) args.push("-s", script);
  for (const header of headers) args.push("-H", header);
  const { stdout: out } = await promisify(execFile)("wrk", [...args, url, ...(scriptArgs.length ? ["--", ...scriptArgs] : [])]);
  if (process.env.BENCH_DEBUG) console.error(out);
  if (!/Requests\/sec/.test(out)) throw new Error(`wrk failed:\n${out}`);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)[1]);
  const requests = Number(/(\d+) requests in/.exec(out)[1]);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const ms = (label) => {
    const [, value, unit] = new RegExp(`${label}\\s+([\\d.]+)(us|ms|s)`).exec(out);
    return Number(value) * { us: 0.001, ms: 1, s: 1000 }[unit];
  };
  return { rps, requests, non2xx, p50_ms: ms("50%"), p99_ms: ms("99%") };
}

/** wrk against a started worker, with its CPU per request. */
export async function measure(worker, route, options) {
  const before = cpuSeconds(worker.pid);
  const result = await wrk(`${worker.url}${route}`, options);
  const cpu = cpuSeconds(worker.pid) - before;
  return { ...result, cpu_us_per_request: (cpu * 1e6) / result.requests };
}

export const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** A tiny upstream app: 200 "ok" to everything. */
export async function startUpstream(handler = (req, res) => {
  res.writeHead(200, { "content-type": "text/plain" });
  res.end("ok");
}) {
  const server = http.createServer(handler);
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, url: `http://127.0.0.1:${server.address().port}` };
}

/** The edge's variables for benchmarks: `/login` and `/public/*` public, everything else protected. */
export const edgeBindings = (origin, upstreamUrl, extra = {}) => ({
  ORIGIN_URL: origin.url, UPSTREAM_URL: upstreamUrl, PUBLIC_PATHS: "/login, /public/*",
  EDGE_SECRET, ASSERTION_KEYS, ...extra,
});

/** The baseline: a JS worker that forwards every request to the upstream and does nothing else. */
export function startPassthrough(upstreamUrl) {
  return withPid(async () => {
    const mf = new Miniflare({
      modules: true,
      script: `export default { fetch(req, env) { const u = new URL(req.url); return fetch(env.UPSTREAM_URL + u.pathname + u.search, { method: req.method, headers: req.headers }); } };`,
      compatibilityDate: "2026-05-01",
      bindings: { UPSTREAM_URL: upstreamUrl },
      host: "127.0.0.1",
      port: await freePort(),
      cf: false,
    });
    return { mf, url: (await mf.ready).toString().replace(/\/$/, "") };
  });
}

/**
 * A session's `-H` lines for wrk: logged in through a short-lived edge whose public `/login`
 * answers with a login instruction.
 */
export async function loginHeaders(origin) {
  const loginApp = await startUpstream((req, res) => {
    res.writeHead(200, { "x-latch-login": JSON.stringify({ user_id: "bench", jwt_payload: { plan: "pro" } }) });
    res.end("ok");
  });
  const login = await startEdge(edgeBindings(origin, loginApp.url));
  const browser = new Browser(login.url);
  await browser.fetch("/login");
  await login.mf.dispose();
  loginApp.server.close();
  return [`cookie: ${browser.cookieHeader("/")}`, `anti-csrf: ${browser.antiCsrf}`];
}

/**
 * First sight: `count` distinct sessions minted at the origin, one per request, served to wrk
 * by a Lua script whose argument is the index to start at (so a later run meets no token an
 * earlier one cached).
 */
export async function firstSightScript(origin, count) {
  const cookies = [];
  for (let i = 0; i < count; i += 32) {
    const batch = await Promise.all(Array.from({ length: 32 }, (_, j) =>
      origin.api("POST", "/v1/sessions", { user_id: `first-sight-${i + j}` })));
    for (const { body } of batch) {
      cookies.push(`sAccessToken=${body.tokens.access_token.value}; sIdRefreshToken=${body.tokens.id_refresh_token.value}`);
    }
  }
  const dir = path.join(os.tmpdir(), `latch-bench-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, "cookies.txt"), cookies.join("\n") + "\n");
  const script = path.join(dir, "first-sight.lua");
  writeFileSync(script, `
local cookies = {}
for line in io.lines("${path.join(dir, "cookies.txt")}") do cookies[#cookies + 1] = line end
local i = 0
init = function(args) i = tonumber(args[1]) or 0 end
request = function()
  i = i + 1
  return wrk.format(nil, nil, { ["cookie"] = cookies[((i - 1) % #cookies) + 1] })
end
`);
  return { script, count: cookies.length };
}

/** V8's sampling profiler on a workerd isolate, through its inspector (Miniflare's `inspectorPort`). */
export async function inspect(inspectorPort) {
  const targets = await (await fetch(`http://127.0.0.1:${inspectorPort}/json`)).json();
  const socket = new WebSocket(targets[0].webSocketDebuggerUrl);
  await new Promise((resolve, reject) => socket.once("open", resolve).once("error", reject));
  let nextMessage = 0;
  const pending = new Map();
  socket.on("message", (data) => {
    const message = JSON.parse(data);
    pending.get(message.id)?.(message);
    pending.delete(message.id);
  });
  const send = (method, params = {}) => new Promise((resolve, reject) => {
    const id = ++nextMessage;
    pending.set(id, (message) => (message.error ? reject(new Error(JSON.stringify(message.error))) : resolve(message.result)));
    socket.send(JSON.stringify({ id, method, params }));
  });
  return {
    async start() {
      await send("Profiler.enable");
      await send("Profiler.setSamplingInterval", { interval: 50 });
      await send("Profiler.start");
    },
    async stop() {
      const { profile } = await send("Profiler.stop");
      socket.close();
      return profile;
    },
  };
}

/**
 * The functions with the most self and inclusive time in a profile (JS, and WASM functions by
 * name when the build kept them), as shares of the samples the isolate was busy.
 */
export function summarize(profile, requests, rows = 40) {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const label = ({ callFrame: { functionName, url, lineNumber } }) =>
    `${(functionName || "(anonymous)").replace(/::h[0-9a-f]{16}$/, "")} ${url ? `${path.basename(url)}:${lineNumber + 1}` : ""}`.trim();
  const self = new Map();
  const inclusive = new Map();
  let busy = 0;
  let busyMicros = 0;
  profile.samples.forEach((id, index) => {
    const node = byId.get(id);
    if (node.callFrame.functionName === "(idle)") return;
    busy++;
    busyMicros += profile.timeDeltas[index + 1] ?? 0;
    self.set(label(node), (self.get(label(node)) ?? 0) + 1);
    const seen = new Set();
    for (let at = id; at !== undefined; at = parent.get(at)) seen.add(label(byId.get(at)));
    for (const name of seen) inclusive.set(name, (inclusive.get(name) ?? 0) + 1);
  });
  const top = (counts) => [...counts].sort((a, b) => b[1] - a[1]).slice(0, rows)
    .map(([name, count]) => `${((100 * count) / busy).toFixed(1).padStart(5)} %  ${name}`).join("\n");
  return `${busy} busy samples of ${profile.samples.length}, the isolate busy ` +
    `${(busyMicros / requests).toFixed(0)} µs a request (with the profiler's own cost)\n\n` +
    `self time:\n${top(self)}\n\ninclusive time:\n${top(inclusive)}`;
}
