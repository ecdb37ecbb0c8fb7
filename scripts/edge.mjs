// Runs the built edge worker (edge/build) on workerd through Miniflare's API: used by the run
// command (scripts/serve-edge.mjs) and by the tests and benchmarks.
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Miniflare } from "miniflare";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

export async function startEdge(bindings, { port = 0, kvPersist, inspectorPort, build = path.join(ROOT, "edge", "build") } = {}) {
  const mf = new Miniflare({
    scriptPath: path.join(build, "index.js"),
    modules: true,
    modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"] }],
    compatibilityDate: "2026-05-01",
    kvNamespaces: ["BLACKLIST"],
    kvPersist,
    bindings,
    host: "127.0.0.1",
    port,
    cf: false,
    inspectorPort,
  });
  const url = await mf.ready;
  return { mf, url: url.toString().replace(/\/$/, "") };
}

/**
 * The variables the edge reads, from docs/configuration.md's edge table: edge/src/config.rs's
 * test holds that table equal to the names its `from_lookup` reads, so this list cannot drift.
 */
export function edgeVariables() {
  const docs = readFileSync(path.join(ROOT, "docs", "configuration.md"), "utf8");
  const table = docs.split("## Edge")[1].split("### ")[0];
  return table
    .split("\n")
    .filter((line) => line.startsWith("| `"))
    .flatMap((line) => line.slice(2).split(" |")[0].split("`").filter((_, i) => i % 2 === 1))
    .map((name) => name.replace(/ \(secret\)$/, "").trim())
    .filter((name) => name !== "" && name !== "/");
}
