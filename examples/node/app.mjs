// A Node app behind the Latch edge: plain node:http and `jose` (npm). Copy it and change the
// handlers. Configuration (environment):
//   PORT                      where this app listens (default 3000)
//   LATCH_EDGE_URL            the edge in front of it: its keys are at /.well-known/latch-assertion-jwks.json
//   LATCH_ASSERTION_AUDIENCE  the assertion's aud: the edge's ASSERTION_AUDIENCE (by default its UPSTREAM_URL)
//   LATCH_ASSERTION_ISSUER    the assertion's iss: the edge's ASSERTION_ISSUER (default latch-edge)
//   LATCH_ORIGIN_URL          the origin's API, for session info
//   LATCH_API_KEY             the origin's API key
import http from "node:http";
import { createRemoteJWKSet, jwtVerify } from "jose";

const env = process.env;
// Without an audience, an assertion meant for another app behind the same edge would pass.
if (!env.LATCH_ASSERTION_AUDIENCE) throw new Error("set LATCH_ASSERTION_AUDIENCE: this app's ASSERTION_AUDIENCE at the edge");
const EDGE = env.LATCH_EDGE_URL ?? "http://127.0.0.1:8787";
const ORIGIN = env.LATCH_ORIGIN_URL ?? "http://127.0.0.1:3567";
const keys = createRemoteJWKSet(new URL("/.well-known/latch-assertion-jwks.json", EDGE));

// Who is calling: the edge's signed assertion, never the plain x-latch-user-id header.
async function identity(req) {
  const assertion = req.headers["x-latch-assertion"];
  if (!assertion) throw new Error("no assertion: the request did not come through the edge");
  const { payload } = await jwtVerify(assertion, keys, {
    algorithms: ["EdDSA"],
    issuer: env.LATCH_ASSERTION_ISSUER ?? "latch-edge",
    audience: env.LATCH_ASSERTION_AUDIENCE,
    maxTokenAge: "60s",
  });
  return payload; // sub (string), uid (string or number), sid, pld, csrf
}

// The seed's getSession(req, res, true) for state-changing calls: the edge says what it found.
const csrfPassed = (claims) => ["passed", "same_origin", "not_applicable"].includes(claims.csrf);

// Header values must be ASCII: non-ASCII characters as \u escapes ("Zoë" is "Zo\u00eb").
const asciiJson = (value) =>
  JSON.stringify(value).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);

async function sessionInfo(handle, method = "GET", body) {
  const res = await fetch(`${ORIGIN}/v1/sessions/${encodeURIComponent(handle)}/info`, {
    method,
    headers: { authorization: `Bearer ${env.LATCH_API_KEY}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

function send(res, status, body, headers = {}) {
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(JSON.stringify(body));
}

class HttpError extends Error {
  constructor(status, message, { close = false } = {}) {
    super(message);
    this.status = status;
    this.close = close;
  }
}

// Bodies are bounded, and a body that is not JSON is the caller's mistake (400), never ours.
// An oversized body is still read to its end (discarded, up to DRAIN_LIMIT) before the 413:
// closing a connection with unread bytes on it resets it, and the caller would see a lost
// connection instead of the answer.
const DRAIN_LIMIT = 16 * 1024 * 1024;

async function readJson(req, limit = 64 * 1024) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > DRAIN_LIMIT) throw new HttpError(413, `the body is over ${limit} bytes`, { close: true });
    if (size <= limit) chunks.push(chunk);
  }
  if (size > limit) throw new HttpError(413, `the body is over ${limit} bytes`);
  // Decoded once at the end: a character split across two chunks stays whole.
  const text = Buffer.concat(chunks).toString("utf8");
  try {
    return text ? JSON.parse(text) : {};
  } catch {
    throw new HttpError(400, "the body must be JSON");
  }
}

http
  .createServer(async (req, res) => {
    const url = new URL(req.url, "http://app");
    try {
      if (url.pathname === "/login") {
        // Authenticate the person first (a password, a magic link...); then tell the edge.
        const user = url.searchParams.get("user") ?? "";
        const userId = url.searchParams.get("numeric") === "1" ? Number(user) : user;
        const login = { user_id: userId, jwt_payload: { name: user }, session_info: { visits: 0 } };
        return send(res, 200, { status: "OK" }, { "x-latch-login": asciiJson(login) });
      }
      let claims;
      try {
        claims = await identity(req);
      } catch (err) {
        return send(res, 401, { error: "UNAUTHORISED", message: String(err.message ?? err) });
      }
      if (url.pathname === "/me") {
        return send(res, 200, { user_id: claims.uid, sub: claims.sub, session_handle: claims.sid, jwt_payload: claims.pld ?? null, csrf: claims.csrf });
      }
      if (url.pathname === "/info" && req.method === "GET") {
        const info = await sessionInfo(claims.sid);
        return send(res, info.status, info.body);
      }
      if (url.pathname === "/info" && req.method === "POST") {
        if (!csrfPassed(claims)) return send(res, 403, { error: "TRY_REFRESH_TOKEN", message: "anti-csrf check failed" });
        const body = await readJson(req);
        if (typeof body !== "object" || body === null || !("session_info" in body)) {
          return send(res, 400, { error: "BAD_REQUEST", message: 'send {"session_info": ...}' });
        }
        const info = await sessionInfo(claims.sid, "PUT", { session_info: body.session_info });
        return send(res, info.status, info.body);
      }
      if (url.pathname === "/logout" && req.method === "POST") {
        return send(res, 200, { status: "OK" }, { "x-latch-logout": "1" });
      }
      send(res, 404, { error: "NOT_FOUND", message: "no such page" });
    } catch (err) {
      if (err instanceof HttpError) {
        // Past the drain limit the rest of the body is still on the connection: close it.
        const close = err.close ? { connection: "close" } : {};
        return send(res, err.status, { error: "BAD_REQUEST", message: err.message }, close);
      }
      console.error(err);
      send(res, 500, { error: "GENERAL_ERROR", message: "the app failed" });
    }
  })
  .listen(Number(env.PORT ?? 3000), "127.0.0.1", function () {
    console.log(`node example listening on ${this.address().port}`);
  });
