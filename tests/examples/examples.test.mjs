// The recipes in examples/ (Node with jose, Python with Flask and PyJWT, Go with the standard
// library), each a real app behind the real edge and origin: it reads the identity from the
// edge's assertion (a Unicode and a numeric user id), logs in and out through the edge's
// headers, reads and updates session info at the origin, and refuses assertions that are
// forged, expired, for another app, or missing.
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { createPrivateKey, generateKeyPairSync, sign } from "node:crypto";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import {
  API_KEY, ASSERTION_KEYS, Browser, EDGE_SECRET, Origin, ROOT, freePort, sleep, startEdge,
} from "../support.mjs";

const GO_APP = path.join(ROOT, "target", "examples", "go-app");
const EXAMPLES = {
  node: () => ["node", [path.join(ROOT, "examples", "node", "app.mjs")]],
  python: () => [path.join(ROOT, "examples", "python", ".venv", "bin", "python"), [path.join(ROOT, "examples", "python", "app.py")]],
  go: () => [GO_APP, []],
};

let origin;

before(async () => {
  execFileSync("go", ["build", "-o", GO_APP, path.join(ROOT, "examples", "go", "main.go")], {
    env: { ...process.env, GOCACHE: path.join(ROOT, "target", "go-cache"), GO111MODULE: "off" },
    stdio: "inherit",
  });
  origin = new Origin({ LATCH_COOKIE_SECURE: "false" });
  await origin.start();
});

after(async () => {
  await origin?.dispose();
});

const b64url = (data) => Buffer.from(data).toString("base64url");

/** Signs assertion claims as the edge would (or with `key`, as a forger would). */
function mint(claims, kid, key) {
  const header = b64url(JSON.stringify({ alg: "EdDSA", kid, typ: "JWT" }));
  const payload = b64url(JSON.stringify(claims));
  return `${header}.${payload}.${b64url(sign(null, Buffer.from(`${header}.${payload}`), key))}`;
}

const edgeKey = createPrivateKey({
  key: Buffer.concat([Buffer.from("302e020100300506032b657004220420", "hex"), Buffer.from(ASSERTION_KEYS, "base64url")]),
  format: "der",
  type: "pkcs8",
});

async function waitFor(url) {
  for (let i = 0; i < 300; i++) {
    try {
      await fetch(url);
      return;
    } catch {
      await sleep(50);
    }
  }
  throw new Error(`${url} did not start`);
}

for (const [name, command] of Object.entries(EXAMPLES)) {
  describe(`the ${name} example`, () => {
    let app, edge, appUrl;

    before(async () => {
      const [appPort, edgePort] = [await freePort(), await freePort()];
      appUrl = `http://127.0.0.1:${appPort}`;
      const [program, args] = command();
      app = spawn(program, args, {
        env: {
          PATH: process.env.PATH,
          NODE_PATH: path.join(ROOT, "node_modules"),
          PORT: String(appPort),
          LATCH_EDGE_URL: `http://127.0.0.1:${edgePort}`,
          LATCH_ASSERTION_AUDIENCE: appUrl,
          LATCH_ORIGIN_URL: origin.url,
          LATCH_API_KEY: API_KEY,
        },
        stdio: ["ignore", "ignore", "inherit"],
      });
      await waitFor(`${appUrl}/login`);
      edge = await startEdge({
        ORIGIN_URL: origin.url,
        UPSTREAM_URL: appUrl,
        EDGE_SECRET,
        ASSERTION_KEYS,
        PUBLIC_PATHS: "/login",
        BLACKLIST_CACHE_SECS: "1",
      }, { port: edgePort });
    });

    after(async () => {
      await edge?.mf.dispose();
      app?.kill("SIGTERM");
    });

    test("reads who is calling from the assertion, for any user id", async () => {
      for (const [user, numeric, expected] of [["Zoë 🚀", false, "Zoë 🚀"], ["7", true, 7]]) {
        const browser = new Browser(edge.url);
        const login = await browser.fetch(`/login?user=${encodeURIComponent(user)}${numeric ? "&numeric=1" : ""}`);
        assert.equal(login.status, 200, login.text);
        assert.equal(login.headers.get("x-latch-login"), null);
        const me = await browser.fetch("/me");
        assert.equal(me.status, 200, me.text);
        assert.deepEqual(me.json.user_id, expected);
        assert.equal(me.json.sub, String(expected));
        assert.deepEqual(me.json.jwt_payload, { name: user });
        assert.equal(me.json.csrf, "passed");
      }
    });

    test("reads and updates session info through the origin's API, and logs out", async () => {
      const browser = new Browser(edge.url);
      await browser.fetch("/login?user=reader");
      assert.deepEqual((await browser.fetch("/info")).json, { session_info: { visits: 0 } });
      const bare = await browser.fetch("/info", { method: "POST", body: "{}", csrf: false });
      assert.equal(bare.status, 440, "the edge wants the anti-csrf header on a POST");
      const updated = await browser.fetch("/info", {
        method: "POST", body: JSON.stringify({ session_info: { visits: 1 } }), headers: { "content-type": "application/json" },
      });
      assert.equal(updated.status, 200, updated.text);
      assert.deepEqual((await browser.fetch("/info")).json, { session_info: { visits: 1 } });
      // Bad bodies are refused and change nothing: not JSON, 10,000 '[', 2 MB.
      const json = { "content-type": "application/json" };
      for (const [body, status] of [["not json", 400], ["[".repeat(10_000), 400], [`{"session_info":"${"x".repeat(2_000_000)}"}`, 413], ["[1]", 400]]) {
        const bad = await browser.fetch("/info", { method: "POST", body, headers: json });
        assert.equal(bad.status, status, `${body.slice(0, 20)}: ${bad.text.slice(0, 200)}`);
      }
      assert.deepEqual((await browser.fetch("/info")).json, { session_info: { visits: 1 } }, "nothing lost");
      const out = await browser.fetch("/logout", { method: "POST" });
      assert.equal(out.status, 200, out.text);
      assert.ok(out.headers.getSetCookie().some((c) => c.startsWith("sAccessToken=;")), "cookies cleared");
      assert.equal((await browser.fetch("/me")).status, 440);
    });

    test("refuses assertions that are forged, expired, for another app, or missing", async () => {
      const { keys } = await (await fetch(`${edge.url}/.well-known/latch-assertion-jwks.json`)).json();
      const now = Math.floor(Date.now() / 1000);
      const claims = { iss: "latch-edge", aud: appUrl, sub: "mallory", uid: "mallory", sid: "h", csrf: "passed", iat: now, nbf: now, exp: now + 60 };
      const ask = (assertion) => fetch(`${appUrl}/me`, { headers: assertion ? { "x-latch-assertion": assertion } : {} });
      const valid = await ask(mint(claims, keys[0].kid, edgeKey));
      assert.equal(valid.status, 200, "control: what the edge signs is accepted");
      const forger = generateKeyPairSync("ed25519").privateKey;
      for (const [what, assertion] of [
        ["forged", mint(claims, keys[0].kid, forger)],
        ["expired", mint({ ...claims, iat: now - 600, nbf: now - 600, exp: now - 540 }, keys[0].kid, edgeKey)],
        ["other audience", mint({ ...claims, aud: "http://other.app" }, keys[0].kid, edgeKey)],
        ["missing", null],
      ]) {
        const res = await ask(assertion);
        assert.equal(res.status, 401, what);
      }
    });
  });
}
