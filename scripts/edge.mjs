// Runs the built edge worker (edge/build) on workerd through Miniflare's API: used by the run
// command (scripts/serve-edge.mjs) and by the tests and benchmarks.
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Miniflare } from "miniflare";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

export async function startEdge(bindings, { port = 0, kvPersist } = {}) {
  const mf = new Miniflare({
    scriptPath: path.join(ROOT, "edge", "build", "index.js"),
    modules: true,
    modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"] }],
    compatibilityDate: "2026-05-01",
    kvNamespaces: ["BLACKLIST"],
    kvPersist,
    bindings,
    host: "127.0.0.1",
    port,
    cf: false,
  });
  const url = await mf.ready;
  return { mf, url: url.toString().replace(/\/$/, "") };
}
