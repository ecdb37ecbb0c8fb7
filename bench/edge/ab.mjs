// A/B of edge builds: each build directory (scripts/build-edge.sh with EDGE_OUT) on its own
// workerd, interleaved round by round with the pass-through worker, on the public route, the
// protected route without KV and the first sight of a token. Prints each build's median of the
// per-round CPU ratios to the pass-through. Not a run of record (bench/run-edge.sh is): a quick
// way to tell two versions of the edge apart on the same machine in the same minutes.
//   node bench/edge/ab.mjs [seconds, default 5] [rounds, default 5] BUILD_DIR...
// AB_FIRST_SIGHT=off leaves out the first sight (and the minting of its tokens).
// AB_PAIRED=1 drives the pass-through and the edge at the same time (two wrk processes), so
// both meet the same moment's noise from the machine's neighbours; each round's ratio is then
// of two runs under the same conditions (routes only, no first sight).
import path from "node:path";
import { Origin, startEdge } from "../../tests/support.mjs";
import {
  edgeBindings, firstSightScript, loginHeaders, measure, median, startPassthrough, startUpstream, withPid,
} from "./measure.mjs";

const [secondsArg = "5", roundsArg = "5", ...builds] = process.argv.slice(2);
const [seconds, rounds, connections] = [Number(secondsArg), Number(roundsArg), 8];
if (builds.length === 0) throw new Error("usage: node bench/edge/ab.mjs seconds rounds BUILD_DIR...");

const upstream = await startUpstream();
const origin = new Origin({ LATCH_COOKIE_SECURE: "false" });
await origin.start();
const headers = await loginHeaders(origin);
const passthrough = await startPassthrough(upstream.url);
const edges = [];
for (const build of builds) {
  const bindings = edgeBindings(origin, upstream.url, { BLACKLIST_CHECK: "off" });
  edges.push({ name: path.basename(build), ...(await withPid(() => startEdge(bindings, { build: path.resolve(build) }))) });
}
const firstSeconds = Math.min(seconds, 3);
const withFirstSight = process.env.AB_FIRST_SIGHT !== "off" && process.env.AB_PAIRED !== "1";
const firstSight = withFirstSight
  ? await firstSightScript(origin, rounds * builds.length * firstSeconds * 1500)
  : { count: 0 };
let tokensUsed = 0;

const ratios = new Map(); // "build scenario" -> per-round ratios
const paired = process.env.AB_PAIRED === "1";
async function pairedRatio(edge, route) {
  const options = { seconds, connections: connections / 2, headers };
  const [base, mine] = await Promise.all([measure(passthrough, "/app/page", options), measure(edge, route, options)]);
  return mine.cpu_us_per_request / base.cpu_us_per_request;
}
for (let round = 1; round <= rounds; round++) {
  const base = paired ? NaN : (await measure(passthrough, "/app/page", { seconds, connections, headers })).cpu_us_per_request;
  const order = round % 2 ? edges : [...edges].reverse();
  const line = [paired ? `round ${round}:` : `round ${round}: passthrough ${base.toFixed(0)} µs`];
  for (const edge of order) {
    if (paired) {
      for (const [scenario, route] of [["public", "/public/page"], ["protected", "/app/page"]]) {
        const value = await pairedRatio(edge, route);
        const key = `${edge.name} ${scenario}`;
        ratios.set(key, [...(ratios.get(key) ?? []), value]);
        line.push(`${key} ${value.toFixed(3)}`);
      }
      continue;
    }
    const publicRoute = await measure(edge, "/public/page", { seconds, connections, headers });
    const protectedRoute = await measure(edge, "/app/page", { seconds, connections, headers });
    const first = withFirstSight && await measure(edge, "/app/first", {
      seconds: firstSeconds, connections, script: firstSight.script, scriptArgs: [String(tokensUsed)],
    });
    tokensUsed += first.requests ?? 0;
    const record = (scenario, value) => {
      const key = `${edge.name} ${scenario}`;
      ratios.set(key, [...(ratios.get(key) ?? []), value]);
      line.push(`${key} ${value.toFixed(3)}`);
    };
    record("public", publicRoute.cpu_us_per_request / base);
    record("protected", protectedRoute.cpu_us_per_request / base);
    if (first) record("first_sight_extra", (first.cpu_us_per_request - protectedRoute.cpu_us_per_request) / base);
  }
  console.error(line.join(" | "));
}
if (tokensUsed > firstSight.count) console.error(`warning: ${tokensUsed} first-sight requests for ${firstSight.count} tokens`);
for (const [key, values] of ratios) console.log(`${key.padEnd(40)} median ${median(values).toFixed(3)}  [${values.map((v) => v.toFixed(2)).join(" ")}]`);

for (const edge of edges) await edge.mf.dispose();
await passthrough.mf.dispose();
await origin.dispose();
upstream.server.close();
