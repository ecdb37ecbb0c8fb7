// The edge under `wrangler dev`, which docs/configuration.md points users to, not only under
// Miniflare's API: the same worker must be as clean there. `wrangler dev` once answered spurious
// 503s ("Your worker restarted mid-request") to valid requests that followed a refused request
// with a body the edge had not read, and to refreshes; these are the sequences that showed it.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { ASSERTION_KEYS, Browser, EDGE_SECRET, Origin, ROOT, freePort, sleep, startUpstream } from "../support.mjs";

let origin, upstream, wrangler, edgeUrl, state;
let output = "";

before(async () => {
  upstream = await startUpstream();
  const port = await freePort();
  edgeUrl = `http://127.0.0.1:${port}`;
  origin = new Origin({ LATCH_EDGE_URL: edgeUrl, LATCH_COOKIE_SECURE: "false" });
  await origin.start();
  state = mkdtempSync(path.join(os.tmpdir(), "latch-wrangler-dev-"));
  const vars = {
    ORIGIN_URL: origin.url,
    UPSTREAM_URL: upstream.url,
    PUBLIC_PATHS: "/login, /public/*",
    EDGE_SECRET,
    ASSERTION_KEYS,
  };
  wrangler = spawn(path.join(ROOT, "node_modules", ".bin", "wrangler"), [
    "dev", "--config", path.join(ROOT, "wrangler.toml"), "--ip", "127.0.0.1", "--port", String(port),
    "--inspector-port", String(await freePort()), "--persist-to", state,
    "--show-interactive-dev-session=false", "--log-level", "warn",
    ...Object.entries(vars).flatMap(([name, value]) => ["--var", `${name}:${value}`]),
  ], {
    cwd: ROOT,
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_HIDE_BANNER: "true" },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  for (const stream of [wrangler.stdout, wrangler.stderr]) stream.on("data", (data) => (output += data));
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      if ((await fetch(`${edgeUrl}/.well-known/latch-assertion-jwks.json`)).status === 200) break;
    } catch {}
    if (Date.now() > deadline || wrangler.exitCode !== null) throw new Error(`wrangler dev did not start:\n${output}`);
    await sleep(200);
  }
});

after(async () => {
  if (wrangler?.exitCode === null) {
    const exited = new Promise((resolve) => wrangler.once("exit", resolve));
    try { process.kill(-wrangler.pid, "SIGTERM"); } catch {}
    await exited;
  }
  await origin?.dispose();
  upstream?.server.close();
  if (state) rmSync(state, { recursive: true, force: true });
});

async function login() {
  const browser = new Browser(edgeUrl);
  const res = await browser.fetch("/login?user=dev");
  assert.equal(res.status, 200, res.text);
  return browser;
}

test("under wrangler dev, valid POSTs after refused POSTs with unread bodies all succeed", async () => {
  const browser = await login();
  const body = JSON.stringify({ note: "x".repeat(4096) });
  const statuses = { refused: new Map(), valid: new Map() };
  const count = (map, status) => map.set(status, (map.get(status) ?? 0) + 1);
  for (let i = 0; i < 40; i++) {
    // No anti-csrf header: the edge answers itself, without reading the body.
    const refused = await browser.fetch("/notes", { method: "POST", body, csrf: false });
    count(statuses.refused, refused.status);
    // Nor any session: refused before the body too.
    const anonymous = await fetch(`${edgeUrl}/notes`, { method: "POST", body });
    await anonymous.text();
    count(statuses.refused, anonymous.status);
    // Over the edge's body limit at an endpoint that reads bodies: read in part, then refused.
    const oversized = await browser.fetch("/session/info", { method: "PUT", body: "x".repeat(200_000) });
    count(statuses.refused, oversized.status);
    const valid = await browser.fetch("/notes", { method: "POST", body });
    count(statuses.valid, valid.status);
  }
  assert.deepEqual([...statuses.valid], [[200, 40]], `valid POSTs: ${[...statuses.valid]}\n${output}`);
  assert.ok(!statuses.refused.has(503), `refusals are the edge's own, never a restart: ${[...statuses.refused]}`);
});

test("under wrangler dev, refresh then retry never meets a restarted worker", async () => {
  const browser = await login();
  const statuses = new Map();
  for (let i = 0; i < 10; i++) {
    const refreshed = await browser.refresh();
    statuses.set(`refresh ${refreshed.status}`, (statuses.get(`refresh ${refreshed.status}`) ?? 0) + 1);
    const retried = await browser.fetch("/protected", { method: "POST", body: "retry" });
    statuses.set(`retry ${retried.status}`, (statuses.get(`retry ${retried.status}`) ?? 0) + 1);
  }
  assert.deepEqual(Object.fromEntries(statuses), { "refresh 200": 10, "retry 200": 10 }, output);
  assert.doesNotMatch(output, /restarted mid-request/);
});
