// The edge under `wrangler dev`, which docs/configuration.md points users to, not only under
// Miniflare's API: the same worker must be as clean there. `wrangler dev` once answered spurious
// 503s ("Your worker restarted mid-request"), and its clients reset connections, on requests that
// followed a refused request whose body the edge had not read to its end; and 503s to refreshes.
// These are the sequences that showed it.
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
  // A network error counts as a status: a reset connection is what an unread body causes.
  const status = (response) => response.then((res) => res.status, (err) => `${err.cause?.code ?? err}`);
  for (let i = 0; i < 100; i++) {
    // No anti-csrf header: the edge answers itself, without needing the body.
    count(statuses.refused, await status(browser.fetch("/notes", { method: "POST", body, csrf: false })));
    // Nor any session, several at once on the client's pooled connections, bodies up to past
    // 256 KiB (where answering before the whole body is read still broke the next request).
    const anonymous = "y".repeat([100, 4096, 65536, 300_000][i % 4]);
    const burst = [0, 1, 2].map(() =>
      status(fetch(`${edgeUrl}/notes`, { method: "POST", body: anonymous }).then(async (res) => (await res.text(), res))),
    );
    for (const refused of await Promise.all(burst)) count(statuses.refused, refused);
    // Over the edge's body limit at an endpoint that reads bodies: read in part, then refused.
    count(statuses.refused, await status(browser.fetch("/session/info", { method: "PUT", body: "x".repeat(200_000) })));
    count(statuses.valid, await status(browser.fetch("/notes", { method: "POST", body })));
  }
  assert.deepEqual([...statuses.valid], [[200, 100]], `valid POSTs: ${[...statuses.valid]}\n${output}`);
  assert.deepEqual(
    Object.fromEntries(statuses.refused),
    { 440: 400, 413: 100 },
    "refusals are the edge's own answers, never a restart or a reset connection",
  );
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
