// Edge benchmark: the Latch worker against a pass-through worker, both on workerd (Miniflare)
// in the same run, in front of the same tiny upstream. For each: wrk throughput and latency on a
// protected route with a valid session, and workerd CPU time per request (from /proc), in
// interleaved rounds. Usage: node bench/edge/bench.mjs [seconds] [connections] [rounds]
import { execFile, execFileSync } from "node:child_process";
import { promisify } from "node:util";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { Miniflare } from "miniflare";
import { APP_SECRET, Browser, EDGE_SECRET, Origin, ROOT, freePort, startEdge } from "../../tests/support.mjs";

const [seconds = 10, connections = 8, rounds = 2] = process.argv.slice(2).map(Number);
const ticksPerSecond = Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim());

function workerdPids() {
  try {
    return new Set(execFileSync("pgrep", ["-x", "workerd"]).toString().trim().split("\n").map(Number));
  } catch {
    return new Set();
  }
}

function cpuSeconds(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond; // utime + stime
}

async function withPid(start) {
  const before = workerdPids();
  const instance = await start();
  const pid = [...workerdPids()].find((p) => !before.has(p));
  if (!pid) throw new Error("could not find the new workerd process");
  return { ...instance, pid };
}

// Asynchronous: the upstream app lives in this process, so its event loop must keep running.
async function wrk(url, cookie, csrf) {
  const { stdout: out } = await promisify(execFile)("wrk", [
    `-t1`, `-c${connections}`, `-d${seconds}s`, "--latency",
    "-H", `cookie: ${cookie}`, "-H", `anti-csrf: ${csrf}`, url,
  ]);
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

const upstream = http.createServer((req, res) => {
  res.writeHead(200, { "content-type": "text/plain" });
  res.end("ok");
});
await new Promise((resolve) => upstream.listen(0, "127.0.0.1", resolve));
const upstreamUrl = `http://127.0.0.1:${upstream.address().port}`;

const origin = new Origin({ LATCH_COOKIE_SECURE: "false" });
await origin.start();
// Log in through a short-lived helper edge whose public /login hits a stand-in that asks for a
// session, then measure with that session's cookies on a protected route.
const loginApp = http.createServer((req, res) => {
  res.writeHead(200, { "x-latch-login": JSON.stringify({ user_id: "bench", jwt_payload: { plan: "pro" } }) });
  res.end("ok");
});
await new Promise((resolve) => loginApp.listen(0, "127.0.0.1", resolve));
const bindings = (up, extra = {}) => ({
  ORIGIN_URL: origin.url, UPSTREAM_URL: up, PUBLIC_PATHS: "/login, /public/*",
  EDGE_SECRET, APP_SECRET, ...extra,
});
const login = await startEdge(bindings(`http://127.0.0.1:${loginApp.address().port}`));
const browser = new Browser(login.url);
await browser.fetch("/login");
await login.mf.dispose();
const cookie = browser.cookieHeader("/");

const latch = await withPid(() => startEdge(bindings(upstreamUrl)));
// The same worker without the KV blacklist read, to separate verification from KV's cost.
const latchNoKv = await withPid(() => startEdge(bindings(upstreamUrl, { BLACKLIST_CHECK: "off" })));
const passthrough = await withPid(async () => {
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

const runs = [];
for (let round = 1; round <= rounds; round++) {
  // latch_public: a public route of the same worker, i.e. forwarding without any session work.
  const targets = [
    ["passthrough", passthrough, "/app/page"],
    ["latch", latch, "/app/page"],
    ["latch_without_kv", latchNoKv, "/app/page"],
    ["latch_public", latch, "/public/page"],
  ];
  for (const [name, worker, route] of targets) {
    const cpuBefore = cpuSeconds(worker.pid);
    const result = await wrk(`${worker.url}${route}`, cookie, browser.antiCsrf);
    const cpu = cpuSeconds(worker.pid) - cpuBefore;
    runs.push({ worker: name, round, ...result, cpu_us_per_request: (cpu * 1e6) / result.requests });
    console.error(`round ${round} ${name}: ${JSON.stringify(runs.at(-1))}`);
  }
}

const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const summary = {};
for (const name of ["passthrough", "latch", "latch_without_kv", "latch_public"]) {
  const mine = runs.filter((r) => r.worker === name);
  summary[name] = Object.fromEntries(
    ["rps", "p50_ms", "p99_ms", "cpu_us_per_request"].map((k) => [k, median(mine.map((r) => r[k]))]),
  );
  summary[name].non2xx = mine.reduce((n, r) => n + r.non2xx, 0);
}
summary.cpu_overhead_us_per_request = summary.latch.cpu_us_per_request - summary.passthrough.cpu_us_per_request;
summary.cpu_overhead_without_kv_us_per_request =
  summary.latch_without_kv.cpu_us_per_request - summary.passthrough.cpu_us_per_request;
summary.session_work_us_per_request =
  summary.latch.cpu_us_per_request - summary.latch_public.cpu_us_per_request;
summary.throughput_ratio = summary.latch.rps / summary.passthrough.rps;
summary.p50_overhead_ms = summary.latch.p50_ms - summary.passthrough.p50_ms;
const wasm = path.join(ROOT, "edge", "build", "index_bg.wasm");
summary.bundle_gzip_bytes = Number(execFileSync("sh", ["-c", `cat ${ROOT}/edge/build/index.js ${wasm} | gzip -9 | wc -c`]).toString());

mkdirSync(path.join(ROOT, "bench", "results"), { recursive: true });
const out = path.join(ROOT, "bench", "results", `edge-${new Date().toISOString().replace(/[:.]/g, "")}.json`);
writeFileSync(out, JSON.stringify({ seconds, connections, runs, summary }, null, 2));
console.log(JSON.stringify(summary, null, 2));
console.log(`results: ${out}`);

await latch.mf.dispose();
await latchNoKv.mf.dispose();
await passthrough.mf.dispose();
await origin.dispose();
upstream.close();
loginApp.close();
