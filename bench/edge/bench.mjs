// Edge benchmark: the Latch worker against a pass-through worker, both on workerd (Miniflare)
// in the same run, in front of the same tiny upstream. For each: wrk throughput and latency, and
// workerd CPU time per request (from /proc, for the workerd processes this script started), in
// interleaved rounds; the summary is the median of the rounds. Also: the first sight of a token
// (every request a distinct, pre-minted token, so no cache helps) and KV reads per request under
// steady load from one session. Usage: node bench/edge/bench.mjs [seconds] [connections] [rounds]
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { Miniflare } from "miniflare";
import { Origin, ROOT, freePort, startEdge } from "../../tests/support.mjs";
import {
  edgeBindings, firstSightScript, loginHeaders, measure, median, startPassthrough, startUpstream, withPid, wrk,
} from "./measure.mjs";

const [seconds = 10, connections = 8, rounds = 5] = process.argv.slice(2).map(Number);

const upstream = await startUpstream();
const upstreamUrl = upstream.url;
const origin = new Origin({ LATCH_COOKIE_SECURE: "false" });
await origin.start();
const bindings = (up, extra) => edgeBindings(origin, up, extra);
// Measured with one logged-in session's cookies on a protected route.
const headers = await loginHeaders(origin);

const latch = await withPid(() => startEdge(bindings(upstreamUrl)));
// The same worker without the KV blacklist read, to separate verification from KV's cost.
const latchNoKv = await withPid(() => startEdge(bindings(upstreamUrl, { BLACKLIST_CHECK: "off" })));
const passthrough = await startPassthrough(upstreamUrl);

// First sight: distinct sessions minted at the origin beforehand, one per request, served to wrk
// by a Lua script, against the worker without KV so the figure is the verification's.
// Each round takes the next unused tokens, so no round meets a token an earlier one cached.
const firstSightSeconds = Math.min(seconds, 3);
const firstSight = await firstSightScript(origin, Number(process.env.FIRST_SIGHT_TOKENS ?? rounds * firstSightSeconds * 1500));

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
    runs.push({ worker: name, round, ...(await measure(worker, route, { seconds, connections, headers })) });
    console.error(`round ${round} ${name}: ${JSON.stringify(runs.at(-1))}`);
  }
  const first = await measure(latchNoKv, "/app/first", {
    seconds: firstSightSeconds, connections, script: firstSight.script, scriptArgs: [String(tokensUsed)],
  });
  tokensUsed += first.requests;
  if (tokensUsed > firstSight.count) console.error(`warning: ${tokensUsed} first-sight requests for ${firstSight.count} tokens: some were seen before`);
  runs.push({ worker: "latch_first_sight", round, ...first });
  console.error(`round ${round} latch_first_sight: ${JSON.stringify(runs.at(-1))}`);
}

const readsBefore = await counted.reads();
const steady = await wrk(`${counted.url}/app/page`, { seconds, connections, headers });
const kvReads = (await counted.reads()) - readsBefore;

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
upstream.server.close();
