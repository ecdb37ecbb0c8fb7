// The edge on workerd for the run command. Configuration comes from the environment, as
// `wrangler.toml` vars and secrets would (see docs/configuration.md); KV persists in .latch/kv.
import path from "node:path";
import { ROOT, startEdge } from "./edge.mjs";

const names = [
  "ORIGIN_URL", "UPSTREAM_URL", "DEFAULT_ROUTE", "PUBLIC_PATHS", "OPTIONAL_PATHS", "PROTECTED_PATHS",
  "BLACKLIST_CHECK", "BLACKLIST_FAILURE", "BLACKLIST_CACHE_SECS", "SIGNOUT_PATH", "SESSION_INFO_PATH",
  "SETTINGS_CACHE_SECS", "JWKS_REFETCH_COOLDOWN_SECS", "CORS_ALLOWED_ORIGINS", "MAX_HEADER_BYTES",
  "EDGE_SECRET", "ASSERTION_KEYS", "ASSERTION_ISSUER", "ASSERTION_AUDIENCE", "LOGIN_URL",
  "FETCH_METADATA_CSRF", "FORWARD_SESSION_COOKIES",
];
const bindings = Object.fromEntries(names.filter((n) => process.env[n] !== undefined).map((n) => [n, process.env[n]]));
const port = Number(process.env.EDGE_PORT ?? 8787);
const { mf, url } = await startEdge(bindings, { port, kvPersist: path.join(ROOT, ".latch", "kv") });
console.log(`latch-edge (workerd) listening on ${url}`);
const stop = async () => {
  await mf.dispose();
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
