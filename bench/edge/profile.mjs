// Where the edge's CPU goes: V8's sampling profiler, through workerd's inspector, while wrk
// drives one kind of request at the built worker. Prints the functions with the most self time
// and the most inclusive time (JS and the WASM functions by name), as shares of the samples the
// isolate was busy. Shares within one profile compare; absolute times are the profiler's.
//   EDGE_OUT=target/edge-names EDGE_KEEP_NAMES=1 scripts/build-edge.sh
//   EDGE_OUT=target/edge-names node bench/edge/profile.mjs [protected|public|first_sight] [seconds, default 10] [connections, default 8]
// (without EDGE_OUT it profiles edge/build, whose WASM functions have no names).
import { writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Origin, ROOT, freePort, startEdge } from "../../tests/support.mjs";
import { edgeBindings, firstSightScript, inspect, loginHeaders, startUpstream, summarize, wrk } from "./measure.mjs";

const [scenario = "protected", secondsArg = "10", connectionsArg = "8"] = process.argv.slice(2);
const [seconds, connections] = [Number(secondsArg), Number(connectionsArg)];
const routes = { protected: "/app/page", public: "/public/page", first_sight: "/app/first" };
if (!(scenario in routes)) throw new Error(`unknown scenario ${scenario}: one of ${Object.keys(routes).join(", ")}`);

const upstream = await startUpstream();
const origin = new Origin({ LATCH_COOKIE_SECURE: "false" });
await origin.start();
// One session's cookies, or a distinct session per request.
const firstSight = scenario === "first_sight" && (await firstSightScript(origin, (seconds + 2) * 2000));
const load = firstSight
  ? { script: firstSight.script }
  : { headers: scenario === "protected" ? await loginHeaders(origin) : [] };

const inspectorPort = await freePort();
const build = process.env.EDGE_OUT ?? path.join(ROOT, "edge", "build");
const bindings = edgeBindings(origin, upstream.url, { BLACKLIST_CHECK: "off" });
const edge = await startEdge(bindings, { inspectorPort, build });
const profiler = await inspect(inspectorPort);

const run = (duration, from = 0) =>
  wrk(`${edge.url}${routes[scenario]}`, { seconds: duration, connections, ...load, scriptArgs: firstSight ? [String(from)] : [] });
// Warm up (the isolate's settings, its caches and V8's tiers); a first sight's measured run
// starts past the tokens the warm-up used.
const warmup = await run(2);
await profiler.start();
const { requests } = await run(seconds, warmup.requests);
if (firstSight && warmup.requests + requests > firstSight.count) console.error("warning: some first-sight tokens were seen before");
const profile = await profiler.stop();
console.log(`${scenario}: ${requests} requests`);
console.log(summarize(profile, requests));
const saved = path.join(os.tmpdir(), `latch-edge-${scenario}-${process.pid}.cpuprofile`);
writeFileSync(saved, JSON.stringify(profile));
console.log(`\nprofile: ${saved} (opens in Chrome DevTools)`);

await edge.mf.dispose();
await origin.dispose();
upstream.server.close();
