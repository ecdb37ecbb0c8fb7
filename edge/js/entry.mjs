// The Latch edge's entry module: I/O only. Each request's facts cross into WASM once, as plain
// strings, to `decide`; forwarding of headers and bodies stays native. Every rule lives in Rust
// (edge/src on the shared engine in shared/src/engine.rs): this file only carries out decisions.
import * as edge from "../build/glue.js";

// What `configure` said, once per isolate (and again after the instance is rebuilt).
let plan = null;
// The generic 500, kept across rebuilds: a crashed instance cannot be asked for it.
let internalError = { status: 500, headers: [], body: "" };
// The load of the origin's settings under way, which concurrent requests share.
let loading = null;

function reply({ status, headers, body }) {
  const out = new Headers();
  for (const [name, value] of headers) out.append(name, value);
  return new Response(body === "" ? null : body, { status, headers: out });
}

function latchHeader(name) {
  // CGI, WSGI, Rack and PHP read `_` as `-`: strip both spellings.
  return name.replaceAll("_", "-").startsWith(plan.latch_header_prefix);
}

async function handle(request, env, ctx) {
  if (plan === null) {
    plan = JSON.parse(edge.configure(env));
    internalError = plan.internal_error;
  }
  if (!plan.ok) return reply(internalError);
  const url = new URL(request.url);
  const h = request.headers;
  const decideNow = () =>
    JSON.parse(
      edge.decide(
        request.method, url.pathname, h.get("cookie"), h.get("authorization"),
        h.get(plan.anti_csrf_header), h.get("origin"), h.has("access-control-request-method"),
        h.get("sec-fetch-mode"), h.get("sec-fetch-site"), url.origin, url.search,
        h.get("traceparent"), Date.now(),
      ),
    );
  let decision = decideNow();
  if (decision.do === "load_settings") {
    loading ??= edge.load_settings(decision.fresh).finally(() => (loading = null));
    await loading;
    decision = decideNow();
  }
  switch (decision.do) {
    case "forward":
      break;
    case "respond":
      return reply(decision);
    case "endpoint":
      return edge.endpoint(request, env);
    default:
      throw new Error(`latch-edge: no way to carry out ${decision.do}`);
  }
  if (decision.report) {
    // The first sight of this token here: tell the origin off the request path.
    ctx.waitUntil(edge.report_use(decision.report.session, decision.report.generation));
  }
  if (decision.blacklist) {
    let state;
    try {
      state = (await env.BLACKLIST.get(decision.blacklist.key)) === null ? 0 : 1;
    } catch (err) {
      console.error("latch-edge: KV read failed", err);
      state = 2;
    }
    const refusal = edge.blacklist_result(
      decision.blacklist.session, state, decision.blacklist.page_load === true, Date.now(),
    );
    if (refusal !== "") return reply(JSON.parse(refusal));
  }
  // Copy the headers only when something must change: most requests pass as they came.
  let headers = h;
  let spoofed = null;
  for (const name of h.keys()) if (latchHeader(name)) (spoofed ??= []).push(name);
  if (spoofed !== null || decision.set || decision.cookie !== undefined) {
    headers = new Headers(h);
    for (const name of spoofed ?? []) headers.delete(name);
    for (const [name, value] of decision.set ?? []) headers.set(name, value);
    if (decision.cookie === "") headers.delete("cookie");
    else if (decision.cookie !== undefined) headers.set("cookie", decision.cookie);
  }
  const init = { method: request.method, headers, redirect: "manual" };
  if (request.body !== null) init.body = request.body;
  let response;
  try {
    response = await fetch(plan.upstream + url.pathname + url.search, init);
  } catch (err) {
    console.error("latch-edge: upstream app unreachable", err);
    return reply(JSON.parse(edge.upstream_unavailable()));
  }
  if (plan.instructions.some((name) => response.headers.has(name))) {
    response = await edge.app_instruction(request, response, env);
  }
  if (decision.response) {
    response = new Response(response.body, response);
    for (const [name, value] of decision.response) {
      // `Vary` keeps the app's values; the CORS headers are the edge's own.
      if (name === "vary") response.headers.append(name, value);
      else response.headers.set(name, value);
    }
  }
  return response;
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
        loading = null;
      }
      return reply(internalError);
    }
  },
};
