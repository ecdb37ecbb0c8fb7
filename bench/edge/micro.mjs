// The edge's own CPU per request, without the network: each build's worker runs in one
// workerd with the app's `fetch` answered at once in JS (the origin's settings and API calls
// still reach the real origin), and a driver calls its `fetch` handler in a tight loop. CPU is
// the workerd process's, from /proc, per request; builds alternate in short batches and the
// figure is the median over batches, so two versions of the edge compare within a few
// microseconds on a noisy machine, where whole-request runs (bench/run-edge.sh) cannot.
// It measures what Latch adds (facts, the machine, header copies, verify, sign), not the
// runtime's fetch: the run of record relates it to the pass-through.
//   node bench/edge/micro.mjs [batches, default 20] [requests per batch, default 2000] BUILD_DIR...
// MICRO_SCENARIOS=passthrough,public,protected,first_sight (the default) picks what runs
// (passthrough: bench/edge/bench.mjs's pass-through worker in the same loop, for scale).
// MICRO_REAL_FETCH=1 sends each forward to a real upstream (a tiny HTTP server in this
// process): the loop then includes the runtime's fetch, as a whole request does, but not the
// parsing of the inbound request.
// MICRO_PROFILE=1 also profiles the first build's isolate over its measured batches and prints
// where its time went (bench/edge/profile.mjs explains the build with function names).
import { readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Miniflare } from "miniflare";
import { Origin, freePort } from "../../tests/support.mjs";
import { cpuSeconds, edgeBindings, inspect, loginHeaders, median, summarize, withPid } from "./measure.mjs";

const [batchesArg = "20", perBatchArg = "2000", ...builds] = process.argv.slice(2);
const [batches, perBatch] = [Number(batchesArg), Number(perBatchArg)];
if (builds.length === 0) throw new Error("usage: node bench/edge/micro.mjs batches requests BUILD_DIR...");
const scenarios = (process.env.MICRO_SCENARIOS ?? "passthrough,public,protected,first_sight").split(",");

// The driver: the app answers every forward at once, so the loop is the edge's own work.
const DRIVER = `
import edge from "./index.js";
const realFetch = globalThis.fetch;
let tokens = null;
// The pass-through worker of bench/edge/bench.mjs, for scale.
const passthrough = {
  fetch(req, env) {
    const u = new URL(req.url);
    return fetch(env.UPSTREAM_URL + u.pathname + u.search, { method: req.method, headers: req.headers });
  },
};
export default {
  async fetch(request, env, ctx) {
    const { scenario, n, offset, headers, upstream, realUpstream } = await request.json();
    globalThis.fetch = (input, init) => {
      const url = typeof input === "string" ? input : input.url;
      if (url.startsWith(upstream) && !realUpstream) return Promise.resolve(new Response("ok"));
      return realFetch(input, init);
    };
    if (scenario === "first_sight") tokens ??= await (await realFetch(env.TOKENS_URL)).json();
    const route = { passthrough: "/app/page", public: "/public/page", protected: "/app/page", first_sight: "/app/first" }[scenario];
    const worker = scenario === "passthrough" ? passthrough : edge;
    for (let i = 0; i < n; i++) {
      const h = scenario === "first_sight" ? { cookie: tokens[offset + i] } : headers;
      const response = await worker.fetch(new Request("http://edge.test" + route, { headers: h }), env, ctx);
      if (response.status !== 200) return new Response(String(response.status) + " " + (await response.text()), { status: 500 });
      await response.arrayBuffer();
    }
    return new Response("done");
  },
};`;

const origin = new Origin({ LATCH_COOKIE_SECURE: "false" });
await origin.start();
const wrkHeaders = await loginHeaders(origin);
const headers = Object.fromEntries(wrkHeaders.map((line) => [line.slice(0, line.indexOf(":")), line.slice(line.indexOf(":") + 2)]));

// First sight: a distinct session per request, served to the driver once per build.
const firstSightCount = scenarios.includes("first_sight") ? batches * perBatch : 0;
const tokens = [];
for (let i = 0; i < firstSightCount; i += 64) {
  const batch = await Promise.all(Array.from({ length: 64 }, (_, j) =>
    origin.api("POST", "/v1/sessions", { user_id: `micro-${i + j}` })));
  for (const { body } of batch) {
    tokens.push(`sAccessToken=${body.tokens.access_token.value}; sIdRefreshToken=${body.tokens.id_refresh_token.value}`);
  }
}
const http = await import("node:http");
const tokenServer = http.createServer((req, res) => res.end(JSON.stringify(tokens)));
await new Promise((resolve) => tokenServer.listen(0, "127.0.0.1", resolve));

const realUpstream = process.env.MICRO_REAL_FETCH === "1";
const app = http.createServer((req, res) => res.end("ok"));
await new Promise((resolve) => app.listen(0, "127.0.0.1", resolve));
const upstream = realUpstream ? `http://127.0.0.1:${app.address().port}` : "http://app.invalid";
const workers = [];
const profiling = process.env.MICRO_PROFILE === "1";
for (const build of builds) {
  const dir = path.resolve(build);
  const inspectorPort = profiling && workers.length === 0 ? await freePort() : undefined;
  const worker = await withPid(async () => {
    const mf = new Miniflare({
      modules: [
        { type: "ESModule", path: path.join(dir, "driver.mjs"), contents: DRIVER },
        { type: "ESModule", path: path.join(dir, "index.js"), contents: readFileSync(path.join(dir, "index.js"), "utf8") },
        { type: "CompiledWasm", path: path.join(dir, "glue_bg.wasm"), contents: readFileSync(path.join(dir, "glue_bg.wasm")) },
      ],
      compatibilityDate: "2026-05-01",
      kvNamespaces: ["BLACKLIST"],
      bindings: {
        ...edgeBindings(origin, upstream, { BLACKLIST_CHECK: "off" }),
        TOKENS_URL: `http://127.0.0.1:${tokenServer.address().port}/`,
      },
      host: "127.0.0.1",
      port: await freePort(),
      cf: false,
      inspectorPort,
    });
    await mf.ready;
    return { mf, profiler: inspectorPort && (await inspect(inspectorPort)) };
  });
  workers.push({ name: path.basename(build), ...worker });
}

async function batch(worker, scenario, n, offset) {
  const before = cpuSeconds(worker.pid);
  const response = await worker.mf.dispatchFetch("http://driver.test/", {
    method: "POST",
    body: JSON.stringify({ scenario, n, offset, headers, upstream, realUpstream }),
  });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`${worker.name} ${scenario}: ${text}`);
  return ((cpuSeconds(worker.pid) - before) * 1e6) / n;
}

// Warm up each build (its settings, V8's tiers) on the cached scenarios.
for (const worker of workers) for (const scenario of ["public", "protected"]) await batch(worker, scenario, perBatch, 0);

const results = new Map();
await workers[0].profiler?.start();
for (let round = 0; round < batches; round++) {
  const order = round % 2 ? [...workers].reverse() : workers;
  for (const worker of order) {
    for (const scenario of scenarios) {
      const micros = await batch(worker, scenario, perBatch, round * perBatch);
      const key = `${worker.name} ${scenario}`;
      results.set(key, [...(results.get(key) ?? []), micros]);
    }
  }
}
if (profiling) {
  const profile = await workers[0].profiler.stop();
  console.log(`${workers[0].name}, ${scenarios.join(" + ")}:\n${summarize(profile, batches * perBatch * scenarios.length, 30)}\n`);
  const saved = path.join(os.tmpdir(), `latch-edge-micro-${process.pid}.cpuprofile`);
  writeFileSync(saved, JSON.stringify(profile));
  console.log(`profile: ${saved} (opens in Chrome DevTools)\n`);
}
for (const [key, values] of results) {
  const sorted = [...values].sort((a, b) => a - b);
  const quartile = (q) => sorted[Math.floor(q * (sorted.length - 1))];
  console.log(`${key.padEnd(32)} ${median(values).toFixed(1).padStart(7)} µs a request  (quartiles ${quartile(0.25).toFixed(1)}–${quartile(0.75).toFixed(1)})`);
}

for (const worker of workers) await worker.mf.dispose();
tokenServer.close();
app.close();
await origin.dispose();
