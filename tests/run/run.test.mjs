// The one command in front of your own app, tried as a stranger would: a small app of its own
// (not the demo) started separately, `scripts/run.sh --upstream …` run from another directory,
// a real browser signing in as Zoë, a state-changing API call, an expired access token, logout,
// a copied cookie refused, Ctrl-C; and the configuration mistakes the command must catch before
// it says ready. Also `latch check-edge` against a real origin, and the production template of
// wrangler.toml checked and dry-run deployed offline.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { API_KEY, Browser, EDGE_SECRET, Origin, ROOT, asciiJson, freePort, launchChromium, sleep, verifyAssertion } from "../support.mjs";

const ACCESS_LIFETIME_SECS = 10;
const EXPIRY_WAIT_MS = (ACCESS_LIFETIME_SECS + 6) * 1000; // lifetime + the verifier's leeway
const LATCH = path.join(ROOT, "target", "debug", "latch");
const QUIET = { WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_HIDE_BANNER: "true" };

/** What the app was told to check, from the command's output. */
const expected = { jwks: null, issuer: null, audience: null };
let app, appUrl, edgeUrl, browser, elsewhere;

/** A small app that knows nothing of Latch but the assertion and the two instructions. */
function startApp() {
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, "http://app");
    let body = "";
    for await (const chunk of req) body += chunk;
    let claims = null;
    if (req.headers["x-latch-assertion"]) {
      try {
        claims = await verifyAssertion(edgeUrl, req.headers["x-latch-assertion"], {
          issuer: expected.issuer,
          audience: expected.audience,
        });
      } catch (err) {
        res.writeHead(401, { "content-type": "text/plain" }).end(`assertion refused: ${err.message}`);
        return;
      }
    }
    const page = (html, headers = {}) => res.writeHead(200, { "content-type": "text/html; charset=utf-8", ...headers }).end(html);
    const route = `${req.method} ${url.pathname}`;
    if (route === "GET /") return page(`<h1>Home</h1><a href="/dashboard">dashboard</a>`);
    if (route === "GET /login") {
      return page(`<form method="post" action="/login"><input id="user" name="user"><button id="go">Sign in</button></form>`);
    }
    if (route === "POST /login") {
      const user = new URLSearchParams(body).get("user");
      res.writeHead(303, { location: "/dashboard", "x-latch-login": asciiJson({ user_id: user }) }).end();
      return;
    }
    if (!claims) return res.writeHead(401, { "content-type": "text/plain" }).end("no identity: not through the edge");
    if (route === "GET /dashboard") {
      return page(`<h1 id="who">${claims.uid}</h1><form method="post" action="/logout"><button id="logout">Sign out</button></form>`);
    }
    if (route === "POST /api/notes") {
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ saved: body, by: claims.uid, csrf: claims.csrf, forwardedFor: req.headers["x-forwarded-for"] }));
      return;
    }
    if (route === "POST /logout") return res.writeHead(303, { location: "/", "x-latch-logout": "1" }).end();
    res.writeHead(404).end();
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

/** `scripts/run.sh` with `args`, from `cwd`, in its own process group; resolves once it says ready. */
function run(args, { cwd, env = {} }) {
  const child = spawn("bash", [path.join(ROOT, "scripts", "run.sh"), ...args], {
    cwd,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  child.output = "";
  for (const stream of [child.stdout, child.stderr]) stream.on("data", (data) => (child.output += data));
  child.exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  child.ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not ready after 5 min:\n${child.output}`)), 300_000);
    child.stdout.on("data", () => {
      if (child.output.includes("origin API on")) { clearTimeout(timer); resolve(); }
    });
    child.exited.then(({ code }) => { clearTimeout(timer); reject(Object.assign(new Error(`exited ${code}:\n${child.output}`), { code })); });
  });
  return child;
}

async function interrupt(child) {
  try { process.kill(-child.pid, "SIGINT"); } catch {}
  return child.exited;
}

before(async () => {
  app = await startApp();
  appUrl = `http://127.0.0.1:${app.address().port}`;
  elsewhere = mkdtempSync(path.join(os.tmpdir(), "latch-stranger-"));
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  app?.close();
  if (elsewhere) rmSync(elsewhere, { recursive: true, force: true });
});

test("run.sh --upstream puts Latch in front of your own app: sign in as Zoë, an API call, expiry, logout, a copied cookie refused, Ctrl-C", async () => {
  const [edgePort, originPort] = [await freePort(), await freePort()];
  edgeUrl = `http://127.0.0.1:${edgePort}`;
  const child = run(
    ["--upstream", `${appUrl}/`, "--public", "/,/login", "--login-url", "/login",
      "--port", String(edgePort), "--origin-port", String(originPort), "--data-dir", "state"],
    { cwd: elsewhere, env: { LATCH_ACCESS_TOKEN_LIFETIME_SECS: String(ACCESS_LIFETIME_SECS) } },
  );
  try {
    await child.ready;
    // What the app needs, printed: the app above checks every assertion against exactly this.
    expected.jwks = child.output.match(/^\s+JWKS\s+(\S+)$/m)?.[1];
    expected.issuer = child.output.match(/^\s+iss\s+(\S+)$/m)?.[1];
    expected.audience = child.output.match(/^\s+aud\s+(\S+)$/m)?.[1];
    assert.equal(expected.jwks, `${edgeUrl}/.well-known/latch-assertion-jwks.json`, child.output);
    assert.equal(expected.issuer, "latch-edge");
    assert.equal(expected.audience, appUrl, "the upstream without its trailing slash");
    assert.equal((await fetch(expected.jwks)).status, 200);
    assert.ok(existsSync(path.join(elsewhere, "state", "run.env")), "a relative --data-dir is the caller's");

    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${edgeUrl}/dashboard`);
    assert.equal(new URL(page.url()).pathname, "/login", "no session: sent to the login URL");
    await page.fill("#user", "Zoë 🚀");
    await Promise.all([page.waitForURL("**/dashboard"), page.click("#go")]);
    assert.equal(await page.textContent("#who"), "Zoë 🚀");

    // A state-changing call from the page, as plain fetch: Fetch Metadata proves it same-origin.
    const note = () => page.evaluate(async () => {
      const res = await fetch("/api/notes", { method: "POST", body: "hello" });
      return { status: res.status, body: await res.text() };
    });
    const saved = await note();
    assert.equal(saved.status, 200, saved.body);
    assert.deepEqual(JSON.parse(saved.body), { saved: "hello", by: "Zoë 🚀", csrf: "same_origin", forwardedFor: "127.0.0.1" });

    // Past the access token's life, the next page load refreshes and lands where it was going.
    await sleep(EXPIRY_WAIT_MS);
    await page.goto(`${edgeUrl}/dashboard`);
    await page.waitForURL("**/dashboard");
    assert.equal(await page.textContent("#who"), "Zoë 🚀");
    assert.equal((await note()).status, 200, "the refreshed session serves API calls again");

    const copied = (await context.cookies()).map((c) => `${c.name}=${c.value}`).join("; ");
    await Promise.all([page.waitForURL(`${edgeUrl}/`), page.click("#logout")]);
    const replay = await fetch(`${edgeUrl}/dashboard`, { headers: { cookie: copied } });
    assert.notEqual(replay.status, 200, "a copy of the signed-out session's cookies is refused");
    assert.equal((await replay.json()).error, "UNAUTHORISED");
    await context.close();
  } finally {
    const { code, signal } = await interrupt(child);
    assert.ok(code === 0 || code === 130 || signal === "SIGINT", `Ctrl-C stops cleanly: ${code} ${signal}\n${child.output}`);
  }
  // Everything it started is gone.
  for (const url of [edgeUrl, `http://127.0.0.1:${originPort}/healthz`]) {
    await assert.rejects(fetch(url), `${url} still answers after Ctrl-C`);
  }
});

/** The origin process run.sh started for `dataDir`: its command and environment in /proc. */
function originPid(dataDir) {
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const command = readFileSync(`/proc/${entry}/cmdline`, "utf8");
      const environment = readFileSync(`/proc/${entry}/environ`, "utf8").split("\0");
      if (command.includes("latch-origin") && environment.includes(`LATCH_DATA_DIR=${dataDir}`)) return Number(entry);
    } catch {
      // Gone meanwhile, or not ours to read.
    }
  }
  return null;
}

test("the origin killed under run.sh: the edge goes on serving the signed-in session, run.sh starts the origin again, and its sessions survive", async () => {
  const [edgePort, originPort] = [await freePort(), await freePort()];
  edgeUrl = `http://127.0.0.1:${edgePort}`;
  const child = run(
    ["--upstream", appUrl, "--public", "/,/login", "--login-url", "/login",
      "--port", String(edgePort), "--origin-port", String(originPort), "--data-dir", "killed"],
    { cwd: elsewhere },
  );
  try {
    await child.ready;
    expected.issuer = child.output.match(/^\s+iss\s+(\S+)$/m)?.[1];
    expected.audience = child.output.match(/^\s+aud\s+(\S+)$/m)?.[1];
    const visitor = new Browser(edgeUrl);
    const form = { "content-type": "application/x-www-form-urlencoded", origin: edgeUrl };
    const login = await visitor.navigate("/login", { method: "POST", headers: form, body: "user=Zo%C3%AB" });
    assert.equal(login.status, 303, login.text);
    assert.match((await visitor.navigate("/dashboard")).text, /Zoë/);

    const pid = originPid(path.join(elsewhere, "killed"));
    assert.ok(pid, `the origin's process:\n${child.output}`);
    process.kill(pid, "SIGKILL");
    await assert.rejects(fetch(`http://127.0.0.1:${originPort}/healthz`), "the origin is down");
    // What needs no database goes on: the session the edge has verified, and public pages.
    const dashboard = await visitor.navigate("/dashboard");
    assert.equal(dashboard.status, 200, dashboard.text);
    assert.match(dashboard.text, /Zoë/);
    assert.equal((await visitor.navigate("/")).status, 200);

    for (let i = 0; i < 300 && !child.output.includes("the origin is back"); i++) await sleep(100);
    assert.match(child.output, /the origin ended.*\n(.*\n)*.*the origin is back/, child.output);
    // The session survived the kill: it refreshes through the new origin, and serves pages.
    const refreshed = await visitor.refresh();
    assert.equal(refreshed.status, 200, refreshed.text);
    assert.match((await visitor.navigate("/dashboard")).text, /Zoë/);
  } finally {
    const { code, signal } = await interrupt(child);
    assert.ok(code === 0 || code === 130 || signal === "SIGINT", `Ctrl-C stops cleanly: ${code} ${signal}\n${child.output}`);
  }
  await assert.rejects(fetch(`http://127.0.0.1:${originPort}/healthz`), "the restarted origin stops with the rest");
});

test("a configuration mistake stops run.sh before it says ready, naming the variable", async () => {
  const [edgePort, originPort] = [await freePort(), await freePort()];
  const dataDir = path.join(elsewhere, "mistakes");
  const common = ["--port", String(edgePort), "--origin-port", String(originPort), "--data-dir", dataDir];
  const routes = run(["--upstream", appUrl, "--public", "static/*", ...common], { cwd: elsewhere });
  await assert.rejects(routes.ready, (err) => {
    assert.equal(err.code, 2, err.message);
    assert.match(err.message, /PUBLIC_PATHS: "static\/\*" must be \/exact\/path or \/prefix\/\*/);
    assert.match(err.message, /nothing was started/);
    assert.doesNotMatch(err.message, /ready: open/);
    return true;
  });
  const login = run(["--upstream", appUrl, "--login-url", "/dashboard", ...common], { cwd: elsewhere });
  await assert.rejects(login.ready, /LOGIN_URL "\/dashboard" is a protected route/);
  const loop = run(["--upstream", `http://127.0.0.1:${edgePort}`, ...common], { cwd: elsewhere });
  await assert.rejects(loop.ready, /the edge's own address/);
  const typo = run(["--upstrem", appUrl], { cwd: elsewhere });
  await assert.rejects(typo.ready, /unknown option --upstrem/);
  // The origin the first attempts started is stopped again.
  await assert.rejects(fetch(`http://127.0.0.1:${originPort}/healthz`));
});

/** `latch check-edge` with exactly `env` (and PATH). */
function checkEdge(args, env) {
  return new Promise((resolve) => {
    const child = spawn(LATCH, ["check-edge", ...args], { env: { PATH: process.env.PATH, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (d) => (output += d));
    child.stderr.on("data", (d) => (output += d));
    child.once("exit", (code) => resolve({ code, output }));
  });
}

test("check-edge asks the origin whether EDGE_SECRET is the edge's: a wrong secret or the API key is refused", async () => {
  const origin = new Origin({});
  await origin.start();
  try {
    const vars = { ORIGIN_URL: origin.url, UPSTREAM_URL: appUrl, ASSERTION_KEYS: Buffer.alloc(32, 3).toString("base64url") };
    const good = await checkEdge(["--probe-origin"], { ...vars, EDGE_SECRET });
    assert.equal(good.code, 0, good.output);
    const wrong = await checkEdge(["--probe-origin"], { ...vars, EDGE_SECRET: "not-the-edge-secret-0123456789" });
    assert.equal(wrong.code, 1);
    assert.match(wrong.output, /EDGE_SECRET: the origin refuses it/);
    const admin = await checkEdge(["--probe-origin"], { ...vars, EDGE_SECRET: API_KEY });
    assert.equal(admin.code, 1);
    assert.match(admin.output, /EDGE_SECRET is the origin's API key/);
    assert.ok(!admin.output.includes(API_KEY), "the check never prints a secret");
    const notOrigin = await checkEdge(["--probe-origin"], { ...vars, EDGE_SECRET, ORIGIN_URL: appUrl });
    assert.equal(notOrigin.code, 1);
    assert.match(notOrigin.output, /answered 401, not the origin's settings document/);
    assert.doesNotMatch(notOrigin.output, /EDGE_SECRET/, "the secret is not blamed for a wrong URL");
  } finally {
    await origin.dispose();
  }
});

test("the production template is refused until filled in; filled in, check-edge and wrangler deploy --dry-run pass", async () => {
  const committed = await checkEdge(["--config", path.join(ROOT, "wrangler.toml"), "--env", "production"], {});
  assert.equal(committed.code, 1);
  assert.match(committed.output, /BLACKLIST namespace's id is a placeholder/);
  assert.match(committed.output, /route "app.example.com\/\*" is still the template's example host/);
  assert.match(committed.output, /EDGE_SECRET not checked: a secret/);

  const dir = mkdtempSync(path.join(os.tmpdir(), "latch-deploy-"));
  try {
    const filled = readFileSync(path.join(ROOT, "wrangler.toml"), "utf8")
      .replaceAll("example.com", "shop.test")
      .replace(/(\[\[env\.production\.kv_namespaces\]\]\nbinding = "BLACKLIST"\nid = )"0+"/, '$1"5f1e2d3c4b5a69788796a5b4c3d2e1f0"')
      .replace('main = "edge/build/index.js"', `main = "${path.join(ROOT, "edge", "build", "index.js")}"`)
      .replace('command = "bash scripts/build-edge.sh"', `command = "bash ${path.join(ROOT, "scripts", "build-edge.sh")}"`);
    const config = path.join(dir, "wrangler.toml");
    writeFileSync(config, filled);
    const secrets = path.join(dir, ".dev.vars");
    writeFileSync(secrets, `EDGE_SECRET=${EDGE_SECRET}\nASSERTION_KEYS=${Buffer.alloc(32, 5).toString("base64url")}\n`);
    const ok = await checkEdge(["--config", config, "--env", "production", "--secrets", secrets], {});
    assert.equal(ok.code, 0, ok.output);
    assert.doesNotMatch(ok.output, /error:/);

    // A secret pasted into [vars] is refused by name ([env.production.vars] is the last table).
    assert.match(filled, /\[env\.production\.vars\][^[]*$/);
    writeFileSync(config, `${filled}EDGE_SECRET = "leaked-into-vars-0123456789"\n`);
    const leaked = await checkEdge(["--config", config, "--env", "production", "--secrets", secrets], {});
    assert.equal(leaked.code, 1);
    assert.match(leaked.output, /EDGE_SECRET is in \[vars\], which are public/);

    writeFileSync(config, filled);
    const dryRun = await new Promise((resolve) => {
      const child = spawn(path.join(ROOT, "node_modules", ".bin", "wrangler"),
        ["deploy", "--dry-run", "--env", "production", "--config", config, "--outdir", path.join(dir, "out")],
        { env: { ...process.env, ...QUIET }, stdio: ["ignore", "pipe", "pipe"] });
      let output = "";
      child.stdout.on("data", (d) => (output += d));
      child.stderr.on("data", (d) => (output += d));
      child.once("exit", (code) => resolve({ code, output }));
    });
    assert.equal(dryRun.code, 0, dryRun.output);
    assert.match(dryRun.output, /env\.BLACKLIST \(5f1e2d3c4b5a69788796a5b4c3d2e1f0\)/);
    assert.match(dryRun.output, /env\.UPSTREAM_URL \("https:\/\/app-backend\.shop\.test"\)/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
