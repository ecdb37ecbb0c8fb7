// Edge benchmark: the Latch worker against a pass-through worker, both on workerd (Miniflare)
// in the same run, in front of the same tiny upstream. For each: wrk throughput and latency, and
// workerd CPU time per request (from /proc, for the workerd processes this script started), in
// interleaved rounds; the summary is the median of the rounds. Also: the first sight of a token
// (every request a distinct, pre-minted token, so no cache helps) and KV reads per request under
// steady load from one session. Usage: node bench/edge/bench.mjs [seconds] [connections] [rounds]
import { execFile, execFileSync } from "node:child_process";
import { promisify } from "node:util";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { Miniflare } from "miniflare";
import { ASSERTION_KEYS, Browser, EDGE_SECRET, Origin, ROOT, freePort, startEdge } from "../../tests/support.mjs";
import os from "node:os";

const [seconds = 10, connections = 8, rounds = 5] = process.argv.slice(2).map(Number);
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
async function wrk(url, cookie, csrf, { duration = seconds, script, scriptArgs = [] } = {}) {
  const args = [`-t1`, `-c${connections}`, `-d${duration}s`, "--latency"];
  if (script) args.push("-s", script);
  else args.push("-H", `cookie: ${cookie}`, "-H", `anti-csrf: ${csrf}`);
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
  EDGE_SECRET, ASSERTION_KEYS, ...extra,
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

// First sight: distinct sessions minted at the origin beforehand, one per request, served to wrk
// by a Lua script, against the worker without KV so the figure is the verification's.
// Each round takes the next unused tokens, so no round meets a token an earlier one cached.
const firstSightSeconds = Math.min(seconds, 3);
const tokens = [];
const wanted = Number(process.env.FIRST_SIGHT_TOKENS ?? rounds * firstSightSeconds * 1500);
for (let i = 0; i < wanted; i += 32) {
  const batch = await Promise.all(Array.from({ length: 32 }, (_, j) =>
    origin.api("POST", "/v1/sessions", { user_id: `first-sight-${i + j}` })));
  for (const { body } of batch) {
    tokens.push(`sAccessToken=${body.tokens.access_token.value}; sIdRefreshToken=${body.tokens.id_refresh_token.value}`);
  }
}
const scriptDir = path.join(os.tmpdir(), `latch-bench-${process.pid}`);
mkdirSync(scriptDir, { recursive: true });
writeFileSync(path.join(scriptDir, "cookies.txt"), tokens.join("\n") + "\n");
const firstSightScript = path.join(scriptDir, "first-sight.lua");
writeFileSync(firstSightScript, `
local cookies = {}
for line in io.lines("${path.join(scriptDir, "cookies.txt")}") do cookies[#cookies + 1] = line end
local i = 0
init = function(args) i = tonumber(args[1]) or 0 end
request = function()
  i = i + 1
  return wrk.format(nil, nil, { ["cookie"] = cookies[((i - 1) % #cookies) + 1] })
end
`);

// KV reads per request under steady load from one session: the same worker with its blacklist
// binding replaced by a counting stand-in (JS RPC, so the edge calls it exactly as it calls KV).
const counted = await (async () => {
  const mf = new Miniflare({
    host: "127.0.0.1",
    port: await freePort(),
    workers: [
      {
        name: "latch",
        scriptPath: path.join(ROOT, "edge", "build", "index.js"),
        modules: true,
        modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"] }],
        compatibilityDate: "2026-05-01",
        bindings: bindings(upstreamUrl),
        serviceBindings: { BLACKLIST: { name: "kv-counter", entrypoint: "Counter" } },
      },
      {
        name: "kv-counter",
        modules: true,
        compatibilityDate: "2026-05-01",
        script: `import { WorkerEntrypoint } from "cloudflare:workers";
          let reads = 0;
          export class Counter extends WorkerEntrypoint { async get() { reads++; return null; } }
          export default { fetch() { return new Response(String(reads)); } };`,
      },
    ],
    cf: false,
  });
  const url = (await mf.ready).toString().replace(/\/$/, "");
  const reads = async () => Number(await (await (await mf.getWorker("kv-counter")).fetch("http://counter/")).text());
  return { mf, url, reads };
})();

const runs = [];
let tokensUsed = 0;
for (let round = 1; round <= rounds; round++) {
  // latch_public: a public route of the same worker, i.e. forwarding without any session work.
  const targets = [
    ["passthrough", passthrough, "/app/page"],
    ["latch", latch, "/app/page"],
    ["latch_without_kv", latchNoKv, "/app/page"],
    ["latch_public", latch, "/public/page"],
  ];
  // Each round starts at the next target: CPU per request drifts within a run, and a fixed
  // order would charge the drift to whichever worker always comes last.
  const shift = (round - 1) % targets.length;
  for (const [name, worker, route] of [...targets.slice(shift), ...targets.slice(0, shift)]) {
    const cpuBefore = cpuSeconds(worker.pid);
    const result = await wrk(`${worker.url}${route}`, cookie, browser.antiCsrf);
    const cpu = cpuSeconds(worker.pid) - cpuBefore;
    runs.push({ worker: name, round, ...result, cpu_us_per_request: (cpu * 1e6) / result.requests });
    console.error(`round ${round} ${name}: ${JSON.stringify(runs.at(-1))}`);
  }
  const cpuBefore = cpuSeconds(latchNoKv.pid);
  const first = await wrk(`${latchNoKv.url}/app/first`, null, null, {
    duration: firstSightSeconds, script: firstSightScript, scriptArgs: [String(tokensUsed)],
  });
  const cpu = cpuSeconds(latchNoKv.pid) - cpuBefore;
  tokensUsed += first.requests;
  if (tokensUsed > tokens.length) console.error(`warning: ${tokensUsed} first-sight requests for ${tokens.length} tokens: some were seen before`);
  runs.push({ worker: "latch_first_sight", round, ...first, cpu_us_per_request: (cpu * 1e6) / first.requests });
  console.error(`round ${round} latch_first_sight: ${JSON.stringify(runs.at(-1))}`);
}

const readsBefore = await counted.reads();
const steady = await wrk(`${counted.url}/app/page`, cookie, browser.antiCsrf);
const kvReads = (await counted.reads()) - readsBefore;

const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const summary = {};
for (const name of ["passthrough", "latch", "latch_without_kv", "latch_public", "latch_first_sight"]) {
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
// CPU per request as a multiple of the pass-through's, the medians of the same run.
const ratio = (name) => summary[name].cpu_us_per_request / summary.passthrough.cpu_us_per_request;
summary.cpu_ratio = {
  protected_cached_with_kv: ratio("latch"),
  protected_cached_without_kv: ratio("latch_without_kv"),
  public: ratio("latch_public"),
};
summary.first_sight_verify_us =
  summary.latch_first_sight.cpu_us_per_request - summary.latch_without_kv.cpu_us_per_request;
summary.kv_reads_per_request = { requests: steady.requests, kv_reads: kvReads, per_request: kvReads / steady.requests };
summary.p50_overhead_ms = summary.latch.p50_ms - summary.passthrough.p50_ms;
const wasm = path.join(ROOT, "edge", "build", "glue_bg.wasm");
summary.bundle_gzip_bytes = Number(execFileSync("sh", ["-c", `cat ${ROOT}/edge/build/index.js ${wasm} | gzip -9 | wc -c`]).toString());

mkdirSync(path.join(ROOT, "bench", "results"), { recursive: true });
const out = path.join(ROOT, "bench", "results", `edge-${new Date().toISOString().replace(/[:.]/g, "")}.json`);
writeFileSync(out, JSON.stringify({ seconds, connections, runs, summary }, null, 2));
console.log(JSON.stringify(summary, null, 2));
console.log(`results: ${out}`);

await latch.mf.dispose();
await counted.mf.dispose();
await latchNoKv.mf.dispose();
await passthrough.mf.dispose();
await origin.dispose();
upstream.close();
loginApp.close();
