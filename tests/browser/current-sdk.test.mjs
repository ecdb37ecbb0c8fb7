// Today's SuperTokens frontend, unchanged, behind Latch: the real `supertokens-website` 20.1.6
// from npm, bundled as it ships, in Debian's chromium, against the edge on workerd and the
// origin on SQLite with a 10-second access token. A stand-in app signs the user in with Latch's
// login instruction; the SDK does the rest in cookie mode and in header mode: learns the session
// from `front-token`, refreshes once for parallel calls after expiry (on 401), echoes anti-CSRF,
// and signs out at `{apiBasePath}/signout`; a claim rule at the edge fires its invalid-claim
// event.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { ASSERTION_KEYS, EDGE_SECRET, Origin, ROOT, asciiJson, freePort, launchChromium, sleep, startEdge } from "../support.mjs";

const ACCESS_LIFETIME_SECS = 10;
const EXPIRY_WAIT_MS = (ACCESS_LIFETIME_SECS + 6) * 1000; // lifetime + the verifier's leeway
// The SDK's default apiBasePath is /auth: the origin's refresh path says where it is.
const API_BASE = "/auth";
let origin, app, edge, browser, bundleDir;

// The app behind the edge: a page that loads the SDK, a login endpoint that answers with the
// login instruction, and two protected APIs that echo who the edge said is calling.
function startApp(sdk) {
  const page = `<!doctype html><meta charset="utf-8"><title>current SDK</title>
<script src="/sdk.js"></script>
<script>
  const st = supertokens.default ?? supertokens;
  const mode = new URLSearchParams(location.search).get("mode") ?? "cookie";
  window.events = [];
  st.init({ apiDomain: location.origin, apiBasePath: "${API_BASE}", tokenTransferMethod: mode,
            onHandleEvent: (event) => window.events.push(event.action) });
  window.st = st;
</script>`;
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => (body += chunk));
    req.on("end", () => {
      const url = new URL(req.url, "http://app");
      if (url.pathname === "/") {
        res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
        return res.end(page);
      }
      if (url.pathname === "/sdk.js") {
        res.writeHead(200, { "content-type": "text/javascript" });
        return res.end(sdk);
      }
      const headers = { "content-type": "application/json" };
      if (url.pathname === "/login") {
        const role = url.searchParams.get("role") ?? "member";
        headers["x-latch-login"] = asciiJson({ user_id: "Zoë 🚀", jwt_payload: { role: [role] } });
      }
      res.writeHead(200, headers);
      res.end(JSON.stringify({
        path: url.pathname,
        method: req.method,
        user: req.headers["x-latch-user-id"] ? decodeURIComponent(req.headers["x-latch-user-id"]) : null,
        authenticated: Boolean(req.headers["x-latch-assertion"]),
        cookie: req.headers.cookie ?? null,
        body,
      }));
    });
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

before(async () => {
  bundleDir = mkdtempSync(path.join(os.tmpdir(), "latch-sdk20-"));
  const bundle = path.join(bundleDir, "sdk.js");
  execFileSync(path.join(ROOT, "node_modules", ".bin", "esbuild"), [
    path.join(ROOT, "node_modules", "supertokens-website-20", "lib", "build", "index.js"),
    "--bundle", "--format=iife", "--global-name=supertokens", "--platform=browser",
    "--define:process=undefined", "--log-level=warning", `--outfile=${bundle}`,
  ]);
  app = await startApp(readFileSync(bundle, "utf8"));
  const edgePort = await freePort();
  origin = new Origin({
    LATCH_EDGE_URL: `http://127.0.0.1:${edgePort}`,
    LATCH_ACCESS_TOKEN_LIFETIME_SECS: String(ACCESS_LIFETIME_SECS),
    LATCH_COOKIE_SECURE: "false",
    LATCH_REFRESH_PATH: `${API_BASE}/session/refresh`,
  });
  await origin.start();
  edge = await startEdge({
    ORIGIN_URL: origin.url,
    UPSTREAM_URL: `http://127.0.0.1:${app.address().port}`,
    EDGE_SECRET,
    ASSERTION_KEYS,
    PUBLIC_PATHS: "/, /sdk.js, /login",
    CLAIM_RULES: "/api/admin/*: role includes admin",
    BLACKLIST_CACHE_SECS: "1",
  }, { port: edgePort });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await edge?.mf.dispose();
  app?.close();
  await origin?.dispose();
  if (bundleDir) rmSync(bundleDir, { recursive: true, force: true });
});

/** A fresh browser on the app's page with the SDK in `mode`, counting refresh calls. */
async function openApp(mode) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const seen = { refreshes: 0, authorization: [], antiCsrf: [] };
  page.on("request", (request) => {
    const url = new URL(request.url());
    if (url.pathname === `${API_BASE}/session/refresh`) seen.refreshes += 1;
    if (url.pathname.startsWith("/api/")) seen.authorization.push(request.headers()["authorization"] ?? null);
    if (url.pathname === "/api/notes") seen.antiCsrf.push(request.headers()["anti-csrf"] ?? null);
  });
  await page.goto(`${edge.url}/?mode=${mode}`);
  return { context, page, seen };
}

const call = (page, pathname, init = {}) =>
  page.evaluate(async ([pathname, init]) => {
    const res = await fetch(pathname, init);
    return { status: res.status, json: await res.json().catch(() => null) };
  }, [pathname, init]);

for (const mode of ["cookie", "header"]) {
  test(`supertokens-website 20.1.6 in ${mode} mode: sign in as Zoë, one refresh for parallel calls after expiry, anti-CSRF, sign out`, async () => {
    const { context, page, seen } = await openApp(mode);
    assert.equal(await page.evaluate(() => st.doesSessionExist()), false);

    const login = await call(page, "/login", { method: "POST" });
    assert.equal(login.status, 200);
    assert.equal(await page.evaluate(() => st.doesSessionExist()), true, "the SDK learnt the session from front-token");
    assert.equal(await page.evaluate(() => st.getUserId()), "Zoë 🚀");
    assert.deepEqual(await page.evaluate(() => st.getAccessTokenPayloadSecurely()), { role: ["member"] });
    const cookies = (await context.cookies()).map((cookie) => cookie.name);
    if (mode === "cookie") {
      assert.ok(cookies.includes("sAccessToken") && cookies.includes("sRefreshToken"), `${cookies}`);
    } else {
      assert.ok(!cookies.includes("sAccessToken"), `header mode sets no session cookie: ${cookies}`);
      assert.ok(cookies.includes("st-access-token"), `the SDK keeps header mode's tokens: ${cookies}`);
    }

    const me = await call(page, "/api/me");
    assert.equal(me.status, 200, JSON.stringify(me.json));
    assert.equal(me.json.user, "Zoë 🚀");
    const note = await call(page, "/api/notes", { method: "POST", body: "hello" });
    assert.equal(note.status, 200, `a state-changing call passes anti-CSRF: ${JSON.stringify(note.json)}`);
    if (mode === "header") assert.match(seen.authorization.at(-1) ?? "", /^Bearer /);
    // Cookie mode: the SDK echoes the anti-csrf token it was handed with the front token.
    if (mode === "cookie") assert.ok(seen.antiCsrf.at(-1), "the SDK sent anti-csrf");

    const refreshesBefore = seen.refreshes;
    await sleep(EXPIRY_WAIT_MS);
    const parallel = await page.evaluate(() =>
      Promise.all([1, 2, 3].map(() => fetch("/api/me").then(async (res) => [res.status, (await res.json()).user]))),
    );
    assert.deepEqual(parallel, [[200, "Zoë 🚀"], [200, "Zoë 🚀"], [200, "Zoë 🚀"]]);
    assert.equal(seen.refreshes - refreshesBefore, 1, "one refresh for three parallel calls");
    assert.ok((await page.evaluate(() => window.events)).includes("REFRESH_SESSION"));
    assert.equal((await call(page, "/api/notes", { method: "POST", body: "after refresh" })).status, 200);

    await page.evaluate(() => st.signOut());
    assert.equal(await page.evaluate(() => st.doesSessionExist()), false);
    assert.ok((await page.evaluate(() => window.events)).includes("SIGN_OUT"));
    const after = await call(page, "/api/me");
    assert.equal(after.status, 401, "signed out: the edge refuses, in the current SDK's status");
    await context.close();
  });
}

test("after the current SDK signs out, a copy of its cookies is refused as unauthorised", async () => {
  const { context, page } = await openApp("cookie");
  await call(page, "/login", { method: "POST" });
  const copied = (await context.cookies()).map((cookie) => `${cookie.name}=${cookie.value}`).join("; ");
  await page.evaluate(() => st.signOut());
  const res = await fetch(`${edge.url}/api/me`, { headers: { cookie: copied, "st-auth-mode": "cookie", rid: "anti-csrf" } });
  assert.equal(res.status, 401);
  assert.equal((await res.json()).message, "unauthorised");
  assert.equal(res.headers.get("front-token"), "remove");
  await context.close();
});

test("header mode's tokens, which the SDK keeps in cookies of its own, never reach the app", async () => {
  const { context, page } = await openApp("header");
  await call(page, "/login", { method: "POST" });
  const seenByApp = await page.evaluate(async () => (await (await fetch("/api/cookies")).json()).cookie);
  assert.ok(await page.evaluate(() => document.cookie.includes("st-access-token=")), "the SDK keeps the tokens");
  assert.match(seenByApp ?? "", /sFrontToken=/, "the SDK's other cookies pass");
  assert.doesNotMatch(seenByApp ?? "", /(^|; )st-(access|refresh)-token=/);
  await context.close();
});

test("a fresh browser's first call settles the SDK's state with one refresh, not one before every call", async () => {
  const { context, page, seen } = await openApp("cookie");
  for (let i = 0; i < 3; i++) assert.equal((await call(page, "/api/me")).status, 401);
  assert.equal(seen.refreshes, 1, "MAY_EXIST became NOT_EXISTS on the refresh's 401");
  await context.close();
});

test("a claim rule at the edge refuses a member with the 403 the SDK reads as an invalid claim, and admits an admin", async () => {
  const { context, page } = await openApp("cookie");
  await call(page, "/login", { method: "POST" });
  const refused = await call(page, "/api/admin/users");
  assert.equal(refused.status, 403);
  assert.equal(refused.json.message, "invalid claim");
  assert.deepEqual(refused.json.claimValidationErrors, [
    { id: "role", reason: { message: "wrong value", expectedToInclude: "admin", actualValue: ["member"] } },
  ]);
  assert.ok((await page.evaluate(() => window.events)).includes("API_INVALID_CLAIM"));
  assert.equal(await page.evaluate(() => st.doesSessionExist()), true, "an invalid claim is not a signed-out session");

  await call(page, "/login?role=admin", { method: "POST" });
  const admitted = await call(page, "/api/admin/users");
  assert.equal(admitted.status, 200);
  assert.equal(admitted.json.user, "Zoë 🚀");
  await context.close();
});
