// Test support shared by the end-to-end suites: free ports, the origin process, a small
// upstream app, the edge on workerd (Miniflare), and a cookie-keeping client.
import { spawn } from "node:child_process";
import { createPublicKey, verify as cryptoVerify } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
export { startEdge } from "../scripts/edge.mjs";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const API_KEY = "e2e-api-key-0123456789";
export const EDGE_SECRET = "e2e-edge-secret-0123456789";
/** The edge's assertion key: a base64url Ed25519 seed (32 bytes of 0x07). */
export const ASSERTION_KEYS = Buffer.alloc(32, 7).toString("base64url");

/** JSON with every non-ASCII character as a `\u` escape: header values must be ASCII. */
export function asciiJson(value) {
  return JSON.stringify(value).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/**
 * Checks an edge assertion as any app would, with nothing but Node's crypto: EdDSA over the
 * edge's published JWKS, then the times, issuer and audience. Returns the claims or throws.
 */
export async function verifyAssertion(edgeUrl, token, { audience, issuer = "latch-edge", now = Date.now() } = {}) {
  const jwks = await (await fetch(`${edgeUrl}/.well-known/latch-assertion-jwks.json`)).json();
  const [header, payload, signature] = token.split(".");
  const head = JSON.parse(Buffer.from(header, "base64url"));
  if (head.alg !== "EdDSA") throw new Error(`algorithm ${head.alg}`);
  const jwk = jwks.keys.find((key) => key.kid === head.kid);
  if (!jwk) throw new Error("unknown key");
  const key = createPublicKey({ key: { kty: jwk.kty, crv: jwk.crv, x: jwk.x }, format: "jwk" });
  if (!cryptoVerify(null, Buffer.from(`${header}.${payload}`), key, Buffer.from(signature, "base64url"))) {
    throw new Error("bad signature");
  }
  const claims = JSON.parse(Buffer.from(payload, "base64url"));
  const seconds = now / 1000;
  if (claims.exp < seconds - 5 || claims.nbf > seconds + 5) throw new Error("expired or not yet valid");
  if (claims.iss !== issuer) throw new Error("wrong issuer");
  if (audience !== undefined && claims.aud !== audience) throw new Error("wrong audience");
  return claims;
}
const MASTER_KEY = Buffer.alloc(32, 7).toString("base64");

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
    server.on("error", reject);
  });
}

/** Debian's chromium through playwright-core (never a downloaded browser), headless. */
export async function launchChromium() {
  const { chromium } = await import("playwright-core");
  return chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(url, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url);
      if (res.ok) return;
    } catch {}
    await sleep(50);
  }
  throw new Error(`${url} did not come up`);
}

/** The origin binary on its own SQLite file; `restart()` keeps the database and keys. */
export class Origin {
  constructor(env) {
    this.dir = mkdtempSync(path.join(os.tmpdir(), "latch-e2e-"));
    this.env = env;
  }
  async start() {
    this.port ??= await freePort();
    this.url = `http://127.0.0.1:${this.port}`;
    const binary = path.join(ROOT, "target", "debug", "latch-origin");
    this.child = spawn(binary, [], {
      env: {
        PATH: process.env.PATH,
        LATCH_LISTEN: `127.0.0.1:${this.port}`,
        DATABASE_URL: `sqlite://${this.dir}/latch.db?mode=rwc`,
        LATCH_MASTER_KEY: MASTER_KEY,
        LATCH_API_KEY: API_KEY,
        LATCH_EDGE_SECRET: EDGE_SECRET,
        LATCH_LOG: "warn",
        // An origin must name its edge, or say there is none.
        ...(this.env.LATCH_EDGE_URL === undefined ? { LATCH_NO_EDGE: "true" } : {}),
        ...this.env,
      },
      stdio: ["ignore", "inherit", "inherit"],
    });
    await waitFor(`${this.url}/healthz`);
  }
  async stop() {
    if (!this.child) return;
    const exited = new Promise((resolve) => this.child.once("exit", resolve));
    this.child.kill("SIGTERM");
    await exited;
    this.child = undefined;
  }
  async api(method, pathname, body) {
    const res = await fetch(`${this.url}${pathname}`, {
      method,
      headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: await res.json().catch(() => null) };
  }
  /** The sum of a Prometheus counter's samples. */
  async metric(name) {
    const res = await fetch(`${this.url}/metrics`, { headers: { authorization: `Bearer ${API_KEY}` } });
    const text = await res.text();
    return text
      .split("\n")
      .filter((line) => line.startsWith(name) && !line.startsWith("#"))
      .reduce((sum, line) => sum + Number(line.split(" ").pop()), 0);
  }
  /** Waits until the counter `name` exceeds `than` (background work landing). */
  async metricAbove(name, than, timeoutMs = 5000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await this.metric(name);
      if (value > than) return value;
      if (Date.now() > deadline) throw new Error(`${name} stayed at ${value}`);
      await sleep(25);
    }
  }
  async dispose() {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A stand-in app: echoes what it received; /login and /logout answer with Latch instructions. */
export async function startUpstream() {
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => (body += chunk));
    req.on("end", () => {
      const url = new URL(req.url, "http://upstream");
      const headers = {};
      if (url.pathname === "/login") {
        const user = url.searchParams.get("user") ?? "anonymous";
        const numeric = url.searchParams.get("numeric") === "1";
        headers["x-latch-login"] = asciiJson({
          user_id: numeric ? Number(user) : user,
          jwt_payload: { role: "member" },
          session_info: { theme: "dark" },
        });
      }
      if (url.pathname === "/logout") headers["x-latch-logout"] = "1";
      // An app that marks its answer cacheable, unaware that the edge sets cookies on it.
      if (url.searchParams.has("cacheable")) headers["cache-control"] = "public, max-age=600";
      if (url.pathname === "/bad-login") headers["x-latch-login"] = "{not json";
      if (url.pathname === "/string-payload-login") headers["x-latch-login"] = '{"user_id":"x","jwt_payload":"notanobject"}';
      // JSON.stringify leaves "ë" raw, and Node writes a header's characters as Latin-1 bytes.
      if (url.pathname === "/latin1-login") headers["x-latch-login"] = JSON.stringify({ user_id: "Zoë" });
      // The same JSON as raw UTF-8 bytes, as Go's encoding/json or Python without ensure_ascii send it.
      if (url.pathname === "/utf8-login") {
        headers["x-latch-login"] = Buffer.from(JSON.stringify({ user_id: "Zoë 🚀 raw" }), "utf8").toString("latin1");
      }
      if (url.pathname === "/deep-login") headers["x-latch-login"] = `{"user_id":"x","jwt_payload":${"[".repeat(2000)}`;
      if (url.pathname === "/big-login") {
        headers["x-latch-login"] = JSON.stringify({ user_id: "big", jwt_payload: { blob: "x".repeat(5000) } });
      }
      res.writeHead(200, { "content-type": "application/json", ...headers });
      res.end(JSON.stringify({ method: req.method, path: url.pathname, query: url.search, headers: req.headers, body }));
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, url: `http://127.0.0.1:${server.address().port}` };
}

/** A minimal browser: keeps cookies by name and path, and the SDK's anti-csrf header. */
export class Browser {
  constructor(base) {
    this.base = base;
    this.cookies = new Map(); // name -> { value, path }
    this.antiCsrf = null;
  }
  cookieHeader(pathname) {
    return [...this.cookies]
      .filter(([, c]) => pathname.startsWith(c.path))
      .map(([name, c]) => `${name}=${c.value}`)
      .join("; ");
  }
  absorb(res) {
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(";").map((s) => s.trim());
      const [name, value] = [pair.slice(0, pair.indexOf("=")), pair.slice(pair.indexOf("=") + 1)];
      const pathAttr = attrs.find((a) => a.toLowerCase().startsWith("path="));
      const expires = attrs.find((a) => a.toLowerCase().startsWith("expires="));
      const expired = expires && new Date(expires.slice(8)).getTime() < Date.now();
      if (!value || expired) this.cookies.delete(name);
      else this.cookies.set(name, { value, path: pathAttr ? pathAttr.slice(5) : "/" });
    }
    const csrf = res.headers.get("anti-csrf");
    if (csrf) this.antiCsrf = csrf;
  }
  /**
   * A top-level page load, as a browser without JavaScript makes it: `Sec-Fetch-Mode: navigate`
   * (which fetch() cannot send: it always says `cors`), cookies, no anti-csrf header.
   */
  async navigate(pathname, { method = "GET", headers = {}, body } = {}) {
    const { hostname, port } = new URL(this.base);
    const h = { "sec-fetch-mode": "navigate", "sec-fetch-site": "same-origin", "sec-fetch-dest": "document", ...headers };
    const cookie = this.cookieHeader(pathname);
    if (cookie) h.cookie = cookie;
    const res = await new Promise((resolve, reject) => {
      const req = http.request({ hostname, port, path: pathname, method, headers: h }, (res) => {
        let text = "";
        res.on("data", (chunk) => (text += chunk));
        res.on("end", () => resolve({ status: res.statusCode, headers: new Headers(Object.entries(res.headers).flatMap(([k, v]) => (Array.isArray(v) ? v.map((x) => [k, x]) : [[k, v]]))), text }));
      });
      req.on("error", reject);
      req.end(body);
    });
    this.absorb(res);
    let json = null;
    try { json = JSON.parse(res.text); } catch {}
    return { ...res, json };
  }

  async fetch(pathname, { method = "GET", headers = {}, body, csrf = true } = {}) {
    const h = { ...headers };
    const cookie = this.cookieHeader(pathname);
    if (cookie) h.cookie = cookie;
    if (csrf && this.antiCsrf) h["anti-csrf"] = this.antiCsrf;
    const res = await fetch(`${this.base}${pathname}`, { method, headers: h, body, redirect: "manual" });
    this.absorb(res);
    const text = await res.text();
    let json = null;
    try { json = JSON.parse(text); } catch {}
    return { status: res.status, headers: res.headers, json, text };
  }
  async refresh() {
    return this.fetch("/session/refresh", { method: "POST", csrf: false });
  }
  clone() {
    const copy = new Browser(this.base);
    copy.cookies = new Map([...this.cookies].map(([k, v]) => [k, { ...v }]));
    copy.antiCsrf = this.antiCsrf;
    return copy;
  }
}
