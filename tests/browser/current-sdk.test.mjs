// Today's SuperTokens frontends, unchanged, behind Latch: the real `supertokens-website` 20.1.6
// and `supertokens-web-js` 0.16.0 from npm, bundled as they ship, in Debian's chromium, against the edge on workerd and the
// origin on SQLite with a 10-second access token. A stand-in app signs the user in with Latch's
// login instruction; the SDK does the rest in cookie mode and in header mode: learns the session
// from `front-token`, refreshes once for parallel calls after expiry (on 401), echoes anti-CSRF,
// and signs out at `{apiBasePath}/signout`; a claim rule at the edge fires its invalid-claim
// event; a page on another origin calls the edge as its API, through CORS. The 4.x SDK works
// against the same deployment, in its own protocol.
import assert from "node:assert/strict";
import http from "node:http";
import path from "node:path";
import { after, before, test } from "node:test";
import { ASSERTION_KEYS, EDGE_SECRET, Origin, ROOT, asciiJson, freePort, launchChromium, sleep, startEdge } from "../support.mjs";

const ACCESS_LIFETIME_SECS = 10;
const EXPIRY_WAIT_MS = (ACCESS_LIFETIME_SECS + 6) * 1000; // lifetime + the verifier's leeway
// The SDK's default apiBasePath is /auth: the origin's refresh path says where it is.
const API_BASE = "/auth";
let origin, app, edge, browser, appUrl;

// The app behind the edge: a page that loads one of the SDKs (`?sdk=website|webjs`, with the
// transfer `?mode=` and the API's origin `?api=`), a login endpoint that answers with the login
// instruction, and protected APIs that echo who the edge said is calling.
function startApp(bundles) {
  const page = (sdk) => `<!doctype html><meta charset="utf-8"><title>current SDK</title>
<script src="/${sdk}.js"></script>
<script>
  const query = new URLSearchParams(location.search);
  const mode = query.get("mode") ?? "cookie";
  const api = query.get("api") ?? location.origin;
  window.events = [];
  const onHandleEvent = (event) => window.events.push(event.action);
  if (${JSON.stringify(sdk)} === "website4") {
    const st = supertokens4.default;
    st.init({ refreshTokenUrl: api + "${API_BASE}/session/refresh", sessionExpiredStatusCode: 440 });
    window.st = st;
  } else if (${JSON.stringify(sdk)} === "webjs") {
    const { SuperTokens, Session } = webjs;
    SuperTokens.init({
      appInfo: { appName: "latch", apiDomain: api, apiBasePath: "${API_BASE}" },
      recipeList: [Session.init({ tokenTransferMethod: mode, onHandleEvent })],
    });
    window.st = Session;
  } else {
    const st = supertokens.default ?? supertokens;
    st.init({ apiDomain: api, apiBasePath: "${API_BASE}", tokenTransferMethod: mode, onHandleEvent });
    window.st = st;
  }
</script>`;
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => (body += chunk));
    req.on("end", () => {
      const url = new URL(req.url, "http://app");
      if (url.pathname === "/") {
        const sdk = ["webjs", "website4"].find((name) => name === url.searchParams.get("sdk")) ?? "website";
        res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
        return res.end(page(sdk));
      }
      const bundle = bundles[url.pathname.slice(1).replace(/\.js$/, "")];
      if (bundle) {
        res.writeHead(200, { "content-type": "text/javascript" });
        return res.end(bundle);
      }
      const headers = { "content-type": "application/json" };
      if (url.pathname === "/login") {
        const role = url.searchParams.get("role") ?? "member";
        headers["x-latch-login"] = asciiJson({ user_id: "Zoë 🚀", jwt_payload: { role: [role] } });
      }
      // The app promotes the caller: a new JWT payload for the request's session.
      if (url.pathname === "/api/promote") headers["x-latch-jwt-payload"] = '{"role":["member","admin"]}';
      res.writeHead(200, headers);
      res.end(JSON.stringify({
        path: url.pathname,
        method: req.method,
        user: req.headers["x-latch-user-id"] ? decodeURIComponent(req.headers["x-latch-user-id"]) : null,
        authenticated: Boolean(req.headers["x-latch-assertion"]),
        cookie: req.headers.cookie ?? null,
        authorization: req.headers.authorization ?? null,
        body,
      }));
    });
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

/** Bundles the SDKs as they ship from npm, for the browser. */
async function bundleSdks() {
  const esbuild = await import(path.join(ROOT, "node_modules", "esbuild", "lib", "main.js"));
  const bundle = async (contents) => {
    const built = await esbuild.build({
      stdin: { contents, resolveDir: ROOT, loader: "js" },
      bundle: true, format: "iife", platform: "browser", write: false, logLevel: "warning",
      define: { process: "undefined" },
    });
    return built.outputFiles[0].text;
  };
  return {
    website: await bundle('window.supertokens = require("supertokens-website-20");'),
    website4: await bundle('window.supertokens4 = require("supertokens-website");'),
    webjs: await bundle(
      'window.webjs = { SuperTokens: require("supertokens-web-js").default, Session: require("supertokens-web-js/recipe/session").default };',
    ),
  };
}

before(async () => {
  app = await startApp(await bundleSdks());
  // The app's own origin, another site than the edge's 127.0.0.1: a page there calls the edge
  // as a cross-origin API.
  appUrl = `http://localhost:${app.address().port}`;
  ({ origin, edge } = await startStack());
  browser = await launchChromium();
});

/** An origin and an edge in front of the app; `originEnv` adds to the origin's settings. */
async function startStack(originEnv = {}) {
  const edgePort = await freePort();
  const origin = new Origin({
    LATCH_EDGE_URL: `http://127.0.0.1:${edgePort}`,
    LATCH_ACCESS_TOKEN_LIFETIME_SECS: String(ACCESS_LIFETIME_SECS),
    LATCH_COOKIE_SECURE: "false",
    LATCH_REFRESH_PATH: `${API_BASE}/session/refresh`,
    ...originEnv,
  });
  await origin.start();
  const edge = await startEdge({
    ORIGIN_URL: origin.url,
    UPSTREAM_URL: `http://127.0.0.1:${app.address().port}`,
    EDGE_SECRET,
    ASSERTION_KEYS,
    PUBLIC_PATHS: "/, /website.js, /website4.js, /webjs.js, /login",
    CORS_ALLOWED_ORIGINS: appUrl,
    CLAIM_RULES: "/api/admin/*: role includes admin",
    BLACKLIST_CACHE_SECS: "1",
  }, { port: edgePort });
  return { origin, edge };
}

after(async () => {
  await browser?.close();
  await edge?.mf.dispose();
  app?.close();
  await origin?.dispose();
});

/** A fresh browser on the app's page with `sdk` in `mode`, counting refresh calls. */
async function openApp(mode, { sdk = "website", site = edge.url, api = site } = {}) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const seen = { refreshes: 0, authorization: [], antiCsrf: [] };
  page.on("request", (request) => {
    const url = new URL(request.url());
    if (url.pathname === `${API_BASE}/session/refresh`) seen.refreshes += 1;
    if (url.pathname.startsWith("/api/")) seen.authorization.push(request.headers()["authorization"] ?? null);
    if (url.pathname === "/api/notes") seen.antiCsrf.push(request.headers()["anti-csrf"] ?? null);
  });
  await page.goto(`${site}/?sdk=${sdk}&mode=${mode}&api=${encodeURIComponent(api)}`);
  return { context, page, seen };
}

const call = (page, pathname, init = {}) =>
  page.evaluate(async ([pathname, init]) => {
    const res = await fetch(pathname, init);
    return { status: res.status, json: await res.json().catch(() => null) };
  }, [pathname, init]);

const SDKS = { website: "supertokens-website 20.1.6", webjs: "supertokens-web-js 0.16.0" };
for (const [sdk, mode] of [["website", "cookie"], ["website", "header"], ["webjs", "cookie"]]) {
  test(`${SDKS[sdk]} in ${mode} mode: sign in as Zoë, one refresh for parallel calls after expiry, anti-CSRF, sign out`, async () => {
    const { context, page, seen } = await openApp(mode, { sdk });
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
    if (mode === "header") {
      assert.match(seen.authorization.at(-1) ?? "", /^Bearer /);
      assert.equal(me.json.authorization, null, "the app never sees the access token");
    }
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

test("a page on another site uses the edge as its API in header mode, through CORS: sign in, call, refresh, sign out", async () => {
  const { context, page, seen } = await openApp("header", { site: appUrl, api: edge.url });
  const login = await call(page, `${edge.url}/login`, { method: "POST" });
  assert.equal(login.status, 200, "the SDK's headers pass the preflight");
  assert.equal(await page.evaluate(() => st.getUserId()), "Zoë 🚀", "front-token is exposed to the page");
  const me = await call(page, `${edge.url}/api/me`);
  assert.equal(me.status, 200);
  assert.equal(me.json.user, "Zoë 🚀");
  assert.match(seen.authorization.at(-1) ?? "", /^Bearer /);
  const refreshesBefore = seen.refreshes; // a fresh browser's first call refreshes once
  assert.equal(await page.evaluate(() => st.attemptRefreshingSession()), true, "st-access-token is exposed to the page");
  assert.equal(seen.refreshes - refreshesBefore, 1);
  assert.equal((await call(page, `${edge.url}/api/notes`, { method: "POST", body: "x" })).status, 200);
  await page.evaluate(() => st.signOut());
  assert.equal(await page.evaluate(() => st.doesSessionExist()), false);
  await context.close();
});

test("supertokens-website 4.2.0 on the same deployment keeps its protocol: sign in, one refresh on 440 after expiry, anti-CSRF, sign out", async () => {
  const { context, page, seen } = await openApp("cookie", { sdk: "website4" });
  assert.equal((await call(page, "/login", { method: "POST" })).status, 200);
  assert.equal(await page.evaluate(() => st.doesSessionExist()), true, "4.x learnt the session from id-refresh-token");
  assert.equal((await call(page, "/api/me")).json.user, "Zoë 🚀");
  await sleep(EXPIRY_WAIT_MS);
  const parallel = await page.evaluate(() =>
    Promise.all([1, 2, 3].map(() => fetch("/api/me").then((res) => res.status))),
  );
  assert.deepEqual(parallel, [200, 200, 200]);
  assert.equal(seen.refreshes, 1, "one refresh for three parallel calls");
  assert.equal((await call(page, "/api/notes", { method: "POST", body: "x" })).status, 200);
  assert.ok(seen.antiCsrf.at(-1), "4.x echoed the anti-csrf header");
  const expired = await fetch(`${edge.url}/api/me`);
  assert.equal(expired.status, 440, "a client speaking no current SDK gets the deployment's status");
  assert.equal((await call(page, "/session/signout", { method: "POST" })).status, 200);
  assert.equal(await page.evaluate(() => st.doesSessionExist()), false);
  await context.close();
});

for (const mode of ["cookie", "header"]) {
  test(`in ${mode} mode the app's new JWT payload reaches the SDK on the same answer, and the claim rule admits the promoted user`, async () => {
    const { context, page } = await openApp(mode);
    await call(page, "/login", { method: "POST" });
    assert.equal((await call(page, "/api/admin/users")).status, 403);
    const promoted = await call(page, "/api/promote", { method: "POST" });
    assert.equal(promoted.status, 200, JSON.stringify(promoted.json));
    assert.deepEqual(await page.evaluate(() => st.getAccessTokenPayloadSecurely()), { role: ["member", "admin"] });
    assert.ok((await page.evaluate(() => window.events)).includes("ACCESS_TOKEN_PAYLOAD_UPDATED"));
    const admitted = await call(page, "/api/admin/users");
    assert.equal(admitted.status, 200, "the next request carries the re-issued token");
    await context.close();
  });
}

test("a script cannot turn a cookie session's refresh or new payload into readable tokens by asking for header mode", async () => {
  const { context, page } = await openApp("cookie");
  await call(page, "/login", { method: "POST" });
  const cookies = await context.cookies();
  const cookie = (path) => cookies
    .filter((c) => path.startsWith(c.path))
    .map((c) => `${c.name}=${c.value}`).join("; ");
  const asHeaderMode = { "st-auth-mode": "header", rid: "session" };
  const refreshed = await fetch(`${edge.url}${API_BASE}/session/refresh`, {
    method: "POST", headers: { ...asHeaderMode, cookie: cookie(`${API_BASE}/session/refresh`) },
  });
  assert.equal(refreshed.status, 200);
  assert.equal(refreshed.headers.get("st-refresh-token"), null);
  assert.equal(refreshed.headers.get("st-access-token"), null);
  assert.match(refreshed.headers.get("set-cookie") ?? "", /sRefreshToken=/, "the tokens stay in HttpOnly cookies");
  const fresh = refreshed.headers.getSetCookie().map((c) => c.split(";")[0]).join("; ");
  const promoted = await fetch(`${edge.url}/api/promote`, {
    method: "POST", headers: { ...asHeaderMode, cookie: fresh, "sec-fetch-site": "same-origin" },
  });
  assert.equal(promoted.status, 200);
  assert.equal(promoted.headers.get("st-access-token"), null);
  assert.match(promoted.headers.get("set-cookie") ?? "", /sAccessToken=/);
  await context.close();
});

test("the signout path beside the refresh path is the edge's only for the current SDKs: an app's own stays the app's", async () => {
  const { context, page } = await openApp("cookie", { sdk: "website4" });
  await call(page, "/login", { method: "POST" });
  const own = await call(page, `${API_BASE}/signout`, { method: "POST" });
  assert.equal(own.status, 200);
  assert.equal(own.json.path, `${API_BASE}/signout`, "the app answered its own route");
  assert.equal((await call(page, "/api/me")).status, 200, "and the session lives on");
  await context.close();
});

test("in custom-header mode the SDK's rid header is the anti-CSRF proof: its POSTs pass, a forged cross-site POST with the cookies does not, 4.2.0 passes same-origin", async (t) => {
  const custom = await startStack({ LATCH_ANTI_CSRF_PROOF: "custom_header" });
  t.after(async () => {
    await custom.edge.mf.dispose();
    await custom.origin.dispose();
  });
  const { context, page, seen } = await openApp("cookie", { site: custom.edge.url });
  await call(page, "/login", { method: "POST" });
  assert.equal(await page.evaluate(() => st.getUserId()), "Zoë 🚀");
  const note = await call(page, "/api/notes", { method: "POST", body: "hello" });
  assert.equal(note.status, 200, JSON.stringify(note.json));
  assert.equal(seen.antiCsrf.at(-1), null, "no anti-CSRF token was handed out to echo");

  const cookie = (await context.cookies()).map((c) => `${c.name}=${c.value}`).join("; ");
  const forged = await fetch(`${custom.edge.url}/api/notes`, {
    method: "POST", body: "forged", headers: { cookie, "sec-fetch-site": "cross-site", "content-type": "text/plain" },
  });
  assert.equal(forged.status, 440, await forged.text());
  const scripted = await fetch(`${custom.edge.url}/api/notes`, {
    method: "POST", body: "scripted", headers: { cookie, "sec-fetch-site": "cross-site", rid: "anti-csrf" },
  });
  assert.equal(scripted.status, 200, "what a script of an origin the CORS rules allow may send");
  const refreshCookie = (await context.cookies()).filter((c) => c.name === "sRefreshToken").map((c) => `${c.name}=${c.value}`).join("; ");
  const forgedRefresh = await fetch(`${custom.edge.url}${API_BASE}/session/refresh`, {
    method: "POST", headers: { cookie: refreshCookie, "sec-fetch-site": "cross-site" },
  });
  assert.equal(forgedRefresh.status, 440, "another site cannot rotate the session");
  assert.equal((await forgedRefresh.json()).error, "TRY_REFRESH_TOKEN");
  assert.equal(forgedRefresh.headers.get("set-cookie"), null, "nor clear it");
  assert.equal(await page.evaluate(() => st.attemptRefreshingSession()), true, "the SDK's own refresh sends rid");
  await context.close();

  const old = await openApp("cookie", { sdk: "website4", site: custom.edge.url });
  await call(old.page, "/login", { method: "POST" });
  const sameOrigin = await call(old.page, "/api/notes", { method: "POST", body: "x" });
  assert.equal(sameOrigin.status, 200, "4.2.0 sends no rid: the browser's Fetch Metadata proves it same-origin");
  await old.context.close();
});
