// The whole system in a real browser: Debian's chromium driven by playwright-core, against the
// demo app behind the edge on workerd, with the origin on SQLite and a 10-second access token.
// Screenshots of each step go to test-artifacts/browser/.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import { ASSERTION_KEYS, EDGE_SECRET, Origin, ROOT, freePort, launchChromium, sleep, startEdge, API_KEY, asciiJson } from "../support.mjs";

const ACCESS_LIFETIME_SECS = 10;
const EXPIRY_WAIT_MS = (ACCESS_LIFETIME_SECS + 6) * 1000; // lifetime + the verifier's leeway
const SHOTS = path.join(ROOT, "test-artifacts", "browser");
let origin, demo, edge, browser, demoPort;

async function waitFor(url) {
  for (let i = 0; i < 200; i++) {
    try { await fetch(url); return; } catch { await sleep(50); }
  }
  throw new Error(`${url} did not start`);
}

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  const edgePort = await freePort();
  origin = new Origin({
    LATCH_EDGE_URL: `http://127.0.0.1:${edgePort}`,
    LATCH_ACCESS_TOKEN_LIFETIME_SECS: String(ACCESS_LIFETIME_SECS),
    LATCH_COOKIE_SECURE: "false",
  });
  await origin.start();
  demoPort = await freePort();
  demo = spawn(path.join(ROOT, "target", "debug", "latch-demo"), [], {
    env: {
      PATH: process.env.PATH,
      DEMO_LISTEN: `127.0.0.1:${demoPort}`,
      LATCH_ORIGIN_URL: origin.url,
      LATCH_API_KEY: API_KEY,
      LATCH_EDGE_URL: `http://127.0.0.1:${edgePort}`,
    },
    stdio: ["ignore", "ignore", "inherit"],
  });
  await waitFor(`http://127.0.0.1:${demoPort}/`);
  edge = await startEdge({
    ORIGIN_URL: origin.url,
    UPSTREAM_URL: `http://127.0.0.1:${demoPort}`,
    EDGE_SECRET,
    ASSERTION_KEYS,
    DEFAULT_ROUTE: "protected",
    PUBLIC_PATHS: "/, /index.html, /app.html, /app.js, /current.html, /style.css, /favicon.ico, /vendor/*, /login",
    LOGIN_URL: "/",
    BLACKLIST_CACHE_SECS: "1",
  }, { port: edgePort });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await edge?.mf.dispose();
  demo?.kill("SIGTERM");
  await origin?.dispose();
});

async function shot(page, name) {
  await page.bringToFront(); // background tabs produce no frames to capture
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

async function signIn(context, name) {
  const page = await context.newPage();
  await page.goto(`${edge.url}/`);
  await page.fill("#name", name);
  await page.click("button[type=submit]");
  await page.waitForURL("**/app.html");
  await page.waitForFunction(() => document.body.dataset.loaded);
  return page;
}

async function reload(page) {
  const before = await page.evaluate(() => document.body.dataset.loaded);
  await page.click("#reload");
  await page.waitForFunction((b) => document.body.dataset.loaded !== b || document.body.dataset.signedOut, before);
}

const accessCookie = async (context) => (await context.cookies()).find((c) => c.name === "sAccessToken")?.value;

test("the demo works end to end in a real browser", async () => {
  const context = await browser.newContext();
  const page = await signIn(context, "alice");
  assert.equal(await page.textContent("#user-id"), "alice");
  assert.match(await page.textContent("#payload"), /"role":"member"/);
  assert.match(await page.textContent("#info"), /"theme":"light"/);
  await shot(page, "01-signed-in");

  // The access token expires; the SDK refreshes transparently on the next call.
  const tokenBefore = await accessCookie(context);
  await sleep(EXPIRY_WAIT_MS);
  await reload(page);
  assert.equal(await page.textContent("#user-id"), "alice");
  assert.notEqual(await accessCookie(context), tokenBefore, "the SDK refreshed the session");
  await shot(page, "02-refreshed-transparently");

  // Two tabs hit expiry at once: both stay signed in.
  const second = await context.newPage();
  await second.goto(`${edge.url}/app.html`);
  await second.waitForFunction(() => document.body.dataset.loaded);
  await sleep(EXPIRY_WAIT_MS);
  await Promise.all([reload(page), reload(second)]);
  for (const tab of [page, second]) {
    assert.equal(await tab.getAttribute("body", "data-signed-out"), null);
    assert.equal(await tab.textContent("#user-id"), "alice");
  }
  await shot(second, "03-two-tabs-after-expiry");

  // Edit the session info.
  await page.fill("#info-editor", JSON.stringify({ note: "hello from the browser", theme: "dark" }));
  await page.click("#save-info");
  await page.waitForFunction(() => document.getElementById("info").textContent.includes("hello from the browser"));
  await shot(page, "04-session-info-updated");

  // A second device signs in; the first revokes it from the list.
  const other = await browser.newContext();
  const otherPage = await signIn(other, "alice");
  await reload(page);
  await page.waitForSelector("#sessions li button.revoke");
  assert.equal(await page.locator("#sessions li").count(), 2);
  await shot(page, "05-two-sessions");
  await page.click("#sessions li button.revoke");
  await page.waitForFunction(() => document.querySelectorAll("#sessions li").length === 1);
  await sleep(500); // the origin's blacklist write reaches the edge
  await reload(otherPage);
  await otherPage.waitForFunction(() => document.body.dataset.signedOut === "true");
  await shot(otherPage, "06-revoked-device-signed-out");
  await other.close();

  // Log out.
  await page.click("#logout");
  await page.waitForURL(`${edge.url}/`);
  assert.equal(await accessCookie(context), undefined);
  await shot(page, "07-logged-out");
  await context.close();
});

test("a person named Zoë 🚀 signs in, stays signed in across expiry and sees their sessions", async () => {
  const context = await browser.newContext();
  const page = await signIn(context, "Zoë 🚀");
  assert.equal(await page.textContent("#user-id"), "Zoë 🚀");
  assert.match(await page.textContent("#payload"), /"name":"Zoë 🚀"/);
  await sleep(EXPIRY_WAIT_MS);
  await reload(page);
  assert.equal(await page.getAttribute("body", "data-signed-out"), null);
  assert.equal(await page.textContent("#user-id"), "Zoë 🚀");
  await page.waitForSelector("#sessions li");
  assert.equal(await page.locator("#sessions li").count(), 1);
  await shot(page, "08-unicode-name");
  await context.close();
});

test("a server-rendered page with no JavaScript stays signed in, posts its form, and ends at the login page", async () => {
  // Sign in through the JavaScript login page, then browse with JavaScript off.
  const signingIn = await browser.newContext();
  await signIn(signingIn, "plain-reader");
  const context = await browser.newContext({ javaScriptEnabled: false });
  await context.addCookies(await signingIn.cookies());
  await signingIn.close();
  const page = await context.newPage();
  await page.goto(`${edge.url}/plain`);
  assert.equal(await page.textContent("#user"), "plain-reader");

  // The access token expires; the next page load comes back signed in, on the same page.
  const tokenBefore = await accessCookie(context);
  await sleep(EXPIRY_WAIT_MS);
  await page.goto(`${edge.url}/plain?view=1`);
  await page.waitForURL(`${edge.url}/plain?view=1`);
  await page.waitForSelector("#user");
  assert.equal(await page.textContent("#user"), "plain-reader");
  assert.notEqual(await accessCookie(context), tokenBefore, "the edge refreshed the session");
  await shot(page, "09-plain-page-after-expiry");

  // A plain HTML form post from the site itself works without the SDK's header.
  await page.fill("#note-input", "from a form");
  await Promise.all([page.waitForURL(`${edge.url}/plain`), page.click("#save-note")]);
  assert.equal(await page.textContent("#note"), "from a form");

  // The same form from another origin of the same site (the app's own port, where the
  // SameSite=Lax cookies still go): Fetch Metadata says same-site, which proves nothing.
  const elsewhere = await browser.newContext();
  await elsewhere.addCookies(await context.cookies());
  const attacker = await elsewhere.newPage();
  await attacker.goto(`http://127.0.0.1:${demoPort}/style.css`);
  await attacker.setContent(
    `<form method="post" action="${edge.url}/plain/note"><input name="note" value="forged"><button id="go">Go</button></form>`,
  );
  const [answer] = await Promise.all([
    attacker.waitForResponse((res) => res.url() === `${edge.url}/plain/note`),
    attacker.click("#go"),
  ]);
  assert.equal(answer.status(), 440, "refused");
  assert.equal((await answer.json()).message, "anti-csrf token not found in headers");
  await elsewhere.close();
  await page.goto(`${edge.url}/plain`);
  assert.equal(await page.textContent("#note"), "from a form", "nothing changed");

  // Revoked elsewhere: the next page load goes to the login page, cookies cleared.
  const handles = await origin.api("DELETE", "/v1/users/plain-reader/sessions");
  assert.equal(handles.body.handles.length, 1);
  await sleep(1500);
  await page.goto(`${edge.url}/plain`);
  await page.waitForURL(`${edge.url}/`);
  assert.equal(await accessCookie(context), undefined);
  await shot(page, "10-plain-page-after-revocation");
  await context.close();
});

test("replaying an old refresh token ends the session in every tab", async () => {
  const context = await browser.newContext();
  const tab1 = await signIn(context, "bob");
  const tab2 = await context.newPage();
  await tab2.goto(`${edge.url}/app.html`);
  await tab2.waitForFunction(() => document.body.dataset.loaded);
  const saved = await context.storageState(); // the cookie jar an attacker copied

  await sleep(EXPIRY_WAIT_MS);
  const proven = await origin.metric("latch_refresh_generations_proven_total");
  await reload(tab1); // the SDK rotates the refresh token and uses the new access token
  await origin.metricAbove("latch_refresh_generations_proven_total", proven);

  const thief = await browser.newContext({ storageState: saved });
  const replay = await thief.request.post(`${edge.url}/session/refresh`);
  assert.equal(replay.status(), 440);
  assert.equal((await replay.json()).error, "TOKEN_THEFT_DETECTED");
  await thief.close();

  await sleep(500);
  for (const [i, tab] of [tab1, tab2].entries()) {
    await reload(tab);
    await tab.waitForFunction(() => document.body.dataset.signedOut === "true");
    await shot(tab, `08-theft-tab${i + 1}-signed-out`);
  }
  await context.close();
});

test("the demo's page on today's SDK (supertokens-website 20.1.6): sign in as Zoë, promote to admin, sign out", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${edge.url}/current.html`);
  await page.waitForFunction(() => document.body.dataset.loaded);
  await page.fill("#name", "Zoë 🚀");
  const loaded = await page.evaluate(() => document.body.dataset.loaded);
  await page.click("button[type=submit]");
  await page.waitForFunction((before) => document.body.dataset.loaded !== before, loaded);
  assert.equal(await page.textContent("#user-id"), "Zoë 🚀");
  assert.deepEqual(JSON.parse(await page.textContent("#payload")), { name: "Zoë 🚀", role: "member" });
  assert.equal(JSON.parse(await page.textContent("#me")).user_id, "Zoë 🚀");
  await shot(page, "current-sdk-signed-in");

  const beforePromote = await page.evaluate(() => document.body.dataset.loaded);
  await page.click("#promote");
  await page.waitForFunction((before) => document.body.dataset.loaded !== before, beforePromote);
  assert.equal(JSON.parse(await page.textContent("#payload")).role, "admin", "the SDK has the new payload");
  assert.equal(JSON.parse(await page.textContent("#me")).jwt_payload.role, "admin", "and so does the app");
  await shot(page, "current-sdk-promoted");

  const beforeSignOut = await page.evaluate(() => document.body.dataset.loaded);
  await page.click("#signout");
  await page.waitForFunction((before) => document.body.dataset.loaded !== before, beforeSignOut);
  assert.equal(await page.isVisible("#login"), true);
  assert.equal(await page.textContent("#status"), "Signed out.");
  assert.equal((await page.evaluate(async () => (await fetch("/api/me")).status)), 401);
  await context.close();
});

test("your devices: one person in two browsers sees both with browser, OS and place, signs out the other, and it is refused", async () => {
  // Miniflare lets a request say what Cloudflare's `request.cf` would: the place of each device
  // (ASCII JSON: a header is not UTF-8).
  const device = (userAgent, cf) => browser.newContext({ userAgent, extraHTTPHeaders: { "MF-CF-Blob": asciiJson(cf) } });
  const laptop = await device(
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    { country: "FR", region: "Île-de-France", city: "Paris" },
  );
  const phone = await device(
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
    { country: "CH", region: "Zürich", city: "Zürich" },
  );
  const phonePage = await signIn(phone, "Zoë devices");
  const page = await signIn(laptop, "Zoë devices");
  await page.waitForFunction(() => document.querySelectorAll("#sessions li").length === 2);
  const rows = await page.locator("#sessions li .device").allTextContents();
  assert.match(rows[0], /^Firefox 133 on Linux · pc · Paris, Île-de-France, FR · .* \(this device\)$/, rows[0]);
  assert.match(rows[1], /^Chrome 131 on Android · smartphone · Zürich, Zürich, CH · /, rows[1]);
  assert.doesNotMatch(rows.join(" "), /127\.0\.0\.1/, "an address is shown only as its network");
  await shot(page, "10-your-devices");

  const phoneCookie = (await phone.cookies()).map((c) => `${c.name}=${c.value}`).join("; ");
  assert.equal((await fetch(`${edge.url}/api/me`, { headers: { cookie: phoneCookie } })).status, 200);
  await page.click("#sign-out-others");
  await page.waitForFunction(() => document.querySelectorAll("#sessions li").length === 1);
  assert.match(await page.textContent("#status"), /1 other device signed out/);
  // Refused within the blacklist delay (BLACKLIST_CACHE_SECS=1), though its token is unexpired.
  let status;
  for (let i = 0; i < 30; i++) {
    status = (await fetch(`${edge.url}/api/me`, { headers: { cookie: phoneCookie } })).status;
    if (status === 440) break;
    await sleep(100);
  }
  assert.equal(status, 440, "the signed-out phone's next request is refused");
  await reload(phonePage);
  await phonePage.waitForFunction(() => document.body.dataset.signedOut === "true");
  assert.equal((await fetch(`${edge.url}/api/me`, { headers: { cookie: (await laptop.cookies()).map((c) => `${c.name}=${c.value}`).join("; ") } })).status, 200, "this device stays");
  await laptop.close();
  await phone.close();
});
