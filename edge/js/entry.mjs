// The Latch edge's entry module: it does the I/O and none of the deciding. Each request's facts
// cross into WASM once (`start`); the Rust machine answers with a step (load the origin's
// settings, read or write KV, read the body, call the origin, forward to the app, respond),
// which this loop carries out and reports (`resume`) until the request ends. The steps and
// outcomes are documented in edge/src/step.rs; every rule lives in Rust (edge/src, on the shared
// engine in shared/src/engine.rs). Headers and bodies never cross: forwarding stays native.
// wasm-bindgen's glue for the Rust machine, from the build directory (scripts/build-edge.sh).
import * as edge from "latch-edge-glue";

// What `configure` said, once per isolate (and again after the instance is rebuilt).
let plan = null;
// The generic 500, kept across rebuilds: a crashed instance cannot be asked for it.
let internalError = { status: 500, headers: [], body: "" };
// The settings load under way in this isolate, for requests the machine tells to wait on it
// (the machine alone decides which request loads).
let settingsLoad = null;
// The assertion key in WebCrypto, imported once per isolate: the runtime's native Ed25519
// signs several times faster than WASM.
let signingKey = null;
// Each request's number in the machine's table of requests in flight.
let nextId = 0;

const START = '{"outcome":"start"}';

/** The request's User-Agent and Cloudflare's place for it, as the origin stores a device. */
function device(request) {
  const cf = request.cf;
  // The origin parses no longer one (the plan says how long); it would only crowd the call.
  const agent = request.headers.get("user-agent");
  return {
    user_agent: agent !== null && agent.length <= plan.max_user_agent_len ? agent : undefined,
    country: cf?.country,
    region: cf?.region,
    city: cf?.city,
  };
}

// Each fact header's index in the facts, by name (built with the plan).
let factIndex = null;

async function handle(request, env, ctx) {
  if (plan === null) {
    plan = JSON.parse(edge.configure(env));
    internalError = plan.internal_error;
    factIndex = new Map(plan.fact_headers.map((name, index) => [name, index]));
  }
  if (!plan.ok) return reply(request, internalError);
  // One pass over the request's headers gives the machine's facts and the names the app must
  // not get (usually none): cheaper than a lookup per fact header and a second pass to strip.
  const values = plan.fact_headers.map(() => null);
  const stripped = [];
  for (const [name, value] of request.headers) {
    const index = factIndex.get(name);
    if (index !== undefined) values[index] = value;
    // Checked for every name, facts included: a fact header is never the app's to trust.
    if (strippedHeader(name)) stripped.push(name);
  }
  const facts = JSON.stringify({ method: request.method, url: request.url, headers: values });
  const id = (nextId = (nextId + 1) >>> 0);
  let step = JSON.parse(edge.start(id, facts));
  let answer = null; // the app's answer, once forwarded
  try {
    for (;;) {
      let outcome;
      switch (step.do) {
        case "respond":
          answer?.body?.cancel().catch(() => {});
          return reply(request, step);
        case "amend":
          return amend(answer, step);
        case "forward":
          try {
            answer = await forward(request, step, ctx, stripped);
          } catch (err) {
            console.error("latch-edge: upstream app unreachable", err);
            outcome = { outcome: "app_unreachable" };
            break;
          }
          if (!plan.instructions.some((name) => answer.headers.has(name))) {
            edge.finish(id);
            return step.response ? amend(answer, step.response) : answer;
          }
          outcome = {
            outcome: "app",
            login: answer.headers.get(plan.instructions[0]),
            logout: answer.headers.has(plan.instructions[1]),
            jwt_payload: answer.headers.get(plan.instructions[2]),
          };
          // Only for a login, "your devices": request.cf is built when first touched.
          if (outcome.login !== null) outcome.device = device(request);
          break;
        default:
          outcome = await perform(step, request, env);
      }
      step = JSON.parse(edge.resume(id, JSON.stringify(outcome)));
    }
  } catch (err) {
    // A trapped instance is rebuilt whole (below); otherwise the machine lets the request go.
    if (!(err instanceof WebAssembly.RuntimeError)) edge.finish(id);
    throw err;
  }
}

function perform(step, request, env) {
  switch (step.do) {
    case "load_settings":
      return loadSettingsShared(step);
    case "await_settings":
      return Promise.resolve(settingsLoad).then(() => ({ outcome: "waited" }));
    case "read_blacklist":
      return Promise.resolve()
        .then(() => env[plan.kv_binding].get(step.key))
        .then(
        (value) => ({ outcome: "blacklist", revoked: value !== null }),
        (err) => {
          console.error("latch-edge: KV read failed", err);
          return { outcome: "blacklist" };
        },
      );
    case "write_blacklist":
      return Promise.resolve()
        .then(() =>
          Promise.all(
            step.entries.map((entry) => env[plan.kv_binding].put(entry.key, "1", { expirationTtl: entry.ttl_secs })),
          ),
        )
        .then(
        () => ({ outcome: "written" }),
        (err) => ({ outcome: "written", error: String(err) }),
      );
    case "read_body":
      return readBody(request, step.limit);
    case "sign":
      return sign(step.input);
    case "call_origin":
      return callOrigin(step);
  }
  throw new Error(`latch-edge: no way to carry out ${step.do}`);
}

async function reply(request, { status, headers, body }) {
  await drain(request);
  const out = new Headers();
  for (const [name, value] of headers) out.append(name, value);
  return new Response(body === "" ? null : body, { status, headers: out });
}

function amend(answer, { delete: removed = [], set = [], append = [] }) {
  const response = new Response(answer.body, answer);
  for (const name of removed) response.headers.delete(name);
  for (const [name, value] of set) response.headers.set(name, value);
  for (const [name, value] of append) response.headers.append(name, value);
  return response;
}

function strippedHeader(name) {
  // CGI, WSGI, Rack and PHP read `_` as `-`: strip both spellings.
  const canonical = name.replaceAll("_", "-");
  return canonical.startsWith(plan.latch_header_prefix) || plan.client_forwarding_headers.includes(canonical);
}

function forward(request, step, ctx, stripped) {
  if (step.background) {
    ctx.waitUntil(
      callOrigin(step.background).then((answer) => {
        if (answer.error !== undefined || answer.status >= 300) {
          console.warn("latch-edge: could not report a session's use", answer.error ?? answer.status);
        }
      }),
    );
  }
  // The machine always sets the forwarding headers: every forward copies the headers once.
  const headers = new Headers(request.headers);
  for (const name of stripped) headers.delete(name);
  for (const name of step.delete ?? []) headers.delete(name);
  for (const [name, value] of step.set ?? []) headers.set(name, value);
  if (step.cookie === "") headers.delete("cookie");
  else if (step.cookie !== undefined) headers.set("cookie", step.cookie);
  const init = { method: request.method, headers, redirect: "manual" };
  if (request.body !== null) init.body = request.body;
  return fetch(step.url, init);
}

async function sign(input) {
  try {
    signingKey ??= crypto.subtle.importKey("jwk", plan.assertion_key, { name: "Ed25519" }, false, ["sign"]);
    const signature = await crypto.subtle.sign({ name: "Ed25519" }, await signingKey, new TextEncoder().encode(input));
    return { outcome: "signed", signature: base64url(new Uint8Array(signature)) };
  } catch (err) {
    signingKey = null;
    return { outcome: "signed", error: String(err) };
  }
}

function base64url(bytes) {
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

async function callOrigin({ method, url, headers = [], body }) {
  const init = { method, headers: new Headers(headers) };
  init.headers.set("authorization", plan.origin_authorization);
  if (body !== undefined) {
    init.headers.set("content-type", "application/json");
    init.body = body;
  }
  try {
    const response = await fetch(url, init);
    const text = await response.text();
    return { outcome: "origin", status: response.status, body: text, retry_after: response.headers.get("retry-after") };
  } catch (err) {
    return { outcome: "origin", error: String(err) };
  }
}

function loadSettingsShared(step) {
  const load = loadSettings(step);
  settingsLoad = load;
  return load.finally(() => {
    if (settingsLoad === load) settingsLoad = null;
  });
}

// The settings document: from the Cache API (shared by the isolates of a location, bounded by
// the origin's Cache-Control) unless the load is fresh, then from the origin.
async function loadSettings({ url, fresh }) {
  try {
    const cache = caches.default;
    if (!fresh) {
      const cached = await cache.match(url);
      if (cached) return { outcome: "settings", text: await cached.text() };
    }
    const response = await fetch(url);
    if (response.status !== 200) return { outcome: "settings", error: `the origin answered ${response.status}` };
    try {
      await cache.put(url, response.clone());
    } catch (err) {
      console.warn("latch-edge: could not cache the settings", err);
    }
    return { outcome: "settings", text: await response.text() };
  } catch (err) {
    return { outcome: "settings", error: String(err) };
  }
}

// A request answered before its body was read still has that body read to its end and dropped
// before the answer goes out, as nginx's lingering close does: a body left unread leaves its
// connection unusable, so the client's next request on it is reset, and `wrangler dev`'s proxy
// answers a refused POST 503 "Your worker restarted mid-request". Measured: bodies cancelled
// past 256 KiB (Go's net/http bound) still broke about one request in four after them. The
// bound is Cloudflare's own request body limit on the Free and Pro plans: larger bodies are
// cancelled. Waiting on the body costs wall time, not CPU; draining it after answering, in
// `waitUntil`, does not keep the connection usable.
const DRAIN_LIMIT = 100 * 1024 * 1024;

// The longest an answer waits on a client still sending the body it will not read.
const DRAIN_WAIT_MS = 10_000;

function drain(request) {
  // A body handed to the app's fetch is locked (and read by the runtime): nothing to drain.
  if (request.body === null || request.bodyUsed || request.body.locked) return;
  if (Number(request.headers.get("content-length")) > DRAIN_LIMIT) {
    request.body.cancel().catch(() => {});
    return;
  }
  let reader;
  try {
    reader = request.body.getReader();
  } catch {
    return;
  }
  return discard(reader, 0);
}

// Reads and drops the rest of a body (`size` bytes of it read already), for at most
// DRAIN_WAIT_MS and DRAIN_LIMIT bytes.
function discard(reader, size) {
  let timer;
  const timeout = new Promise((resolve) => (timer = setTimeout(resolve, DRAIN_WAIT_MS)));
  return Promise.race([readToEnd(reader, size), timeout]).finally(() => clearTimeout(timer));
}

async function readToEnd(reader, size) {
  try {
    while (size <= DRAIN_LIMIT) {
      const { done, value } = await reader.read();
      if (done) return;
      size += value.byteLength;
    }
    reader.cancel().catch(() => {});
  } catch {
    // The client went away: nothing left to read.
  }
}

// The request's body as UTF-8 text, at most `limit` bytes whatever Content-Length says.
async function readBody(request, limit) {
  if (request.body === null) return { outcome: "body", text: "" };
  if (Number(request.headers.get("content-length")) > limit) {
    await drain(request);
    return { outcome: "body", too_large: true };
  }
  const reader = request.body.getReader();
  const chunks = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await discard(reader, size);
      return { outcome: "body", too_large: true };
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.byteLength;
  }
  try {
    return { outcome: "body", text: new TextDecoder("utf-8", { fatal: true }).decode(bytes) };
  } catch {
    return { outcome: "body" };
  }
}

export default {
  async fetch(request, env, ctx) {
    try {
      return await handle(request, env, ctx);
    } catch (err) {
      console.error("latch-edge: request failed", err);
      if (err instanceof WebAssembly.RuntimeError) {
        // The instance trapped (a panic or a fault): its memory cannot be trusted. Rebuild it
        // from the compiled module so the next request is served by a fresh one.
        edge.__wbg_reset_state();
        plan = null;
        settingsLoad = null;
        signingKey = null;
      }
      return reply(request, internalError);
    }
  },
};
