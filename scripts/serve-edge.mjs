// The edge on workerd for the run command. Configuration comes from the environment, as
// `wrangler.toml` vars and secrets would (see docs/configuration.md); KV persists in the data
// directory's kv/ (LATCH_DATA_DIR, default .latch in the checkout).
import path from "node:path";
import { ROOT, edgeVariables, startEdge } from "./edge.mjs";

const names = edgeVariables();
const bindings = Object.fromEntries(names.filter((n) => process.env[n] !== undefined).map((n) => [n, process.env[n]]));
const port = Number(process.env.EDGE_PORT ?? 8787);
const dataDir = process.env.LATCH_DATA_DIR ?? path.join(ROOT, ".latch");
const { mf, url } = await startEdge(bindings, { port, kvPersist: path.join(dataDir, "kv") });
console.log(`latch-edge (workerd) listening on ${url}`);
const stop = async () => {
  await mf.dispose();
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
