//! # latch-edge
//!
//! The Cloudflare Worker in front of any web app. A small JS entry (`edge/js/entry.mjs`) owns the
//! I/O of the common path: it hands each request's facts to [`decide`] once, as plain strings,
//! and forwards the request natively (method, headers and body untouched but for Latch's own
//! headers). Everything that decides lives here, in Rust, on the shared request engine
//! (`latch_shared::engine`): the session check, anti-CSRF, the route rules, the blacklist.
//! The rare paths that talk to the origin (session endpoints, the app's login and logout
//! instructions, loading the origin's settings) are async exports that run entirely in Rust.
//!
//! This file only dispatches: [`decide`] makes the decision, [`endpoints`] serves the session
//! endpoints, [`instructions`] acts on the app's answers, [`settings`] loads the origin's
//! settings, [`blacklist`] reads and writes KV, [`respond`] builds every answer.

mod blacklist;
mod config;
pub mod decide;
mod endpoints;
mod instructions;
pub mod isolate;
mod navigation;
mod origin;
mod respond;
mod settings;

use std::cell::RefCell;

use chrono::{DateTime, Utc};
use latch_shared::engine::RequestFacts;
use latch_shared::identity::{HEADER_PREFIX, LOGIN_HEADER, LOGOUT_HEADER};
use latch_shared::protocol::ANTI_CSRF_HEADER;
use serde::Serialize;
use wasm_bindgen::prelude::*;
use worker::Env;

pub use config::{BlacklistMode, EdgeConfig};
use decide::{Decision, EdgeRequest};
use isolate::Isolate;
use respond::{internal_error, EdgeError, Reply};

thread_local! {
    /// The isolate's state; `None` until the entry calls [`configure`], or when the
    /// configuration is invalid.
    static ISOLATE: RefCell<Option<Isolate>> = const { RefCell::new(None) };
}

/// Runs `f` on the isolate's state.
fn with_isolate<T>(f: impl FnOnce(&mut Isolate) -> T) -> Option<T> {
    ISOLATE.with(|cell| cell.borrow_mut().as_mut().map(f))
}

fn now(now_ms: f64) -> DateTime<Utc> {
    // std::time and chrono's clock do not work on wasm32-unknown-unknown: the entry passes
    // `Date.now()` in.
    DateTime::from_timestamp_millis(now_ms as i64).unwrap_or_default()
}

fn js_now() -> DateTime<Utc> {
    now(js_sys::Date::now())
}

/// What the entry needs to know once per isolate: whether the configuration is valid, where
/// the app is, which request headers are Latch's (stripped from every forwarded request) and
/// which response headers are the app's instructions.
#[derive(Serialize)]
struct EntryPlan {
    ok: bool,
    upstream: String,
    latch_header_prefix: &'static str,
    anti_csrf_header: &'static str,
    instructions: [&'static str; 2],
    internal_error: Reply,
}

/// Reads and validates the edge's variables once per isolate. An invalid configuration is
/// logged in full and every request answered with a generic 500.
#[wasm_bindgen]
pub fn configure(env: &Env) -> String {
    console_error_panic_hook();
    let config = EdgeConfig::from_lookup(|name| {
        env.secret(name)
            .map(|value| value.to_string())
            .or_else(|_| env.var(name).map(|value| value.to_string()))
            .ok()
    });
    let upstream = match config {
        Ok(config) => {
            let upstream = config.upstream_url.clone();
            let mut isolate = Isolate::new(config);
            // Trace ids need uniqueness, not secrecy: 53 random bits from each of two draws.
            let seed = (js_sys::Math::random() * 2f64.powi(53)) as u64
                ^ ((js_sys::Math::random() * 2f64.powi(53)) as u64).rotate_left(32);
            isolate.seed_traces(seed);
            ISOLATE.with(|cell| *cell.borrow_mut() = Some(isolate));
            Some(upstream)
        }
        Err(err) => {
            worker::console_error!("latch-edge: invalid configuration: {err}");
            None
        }
    };
    let plan = EntryPlan {
        ok: upstream.is_some(),
        upstream: upstream.unwrap_or_default(),
        latch_header_prefix: HEADER_PREFIX,
        anti_csrf_header: ANTI_CSRF_HEADER,
        instructions: [LOGIN_HEADER, LOGOUT_HEADER],
        internal_error: internal_error(),
    };
    serde_json::to_string(&plan).expect("the plan serialises")
}

/// The one call per request on the common path: the request's facts in, a [`Decision`] out.
#[wasm_bindgen]
#[allow(clippy::too_many_arguments)]
pub fn decide(
    method: &str,
    path: &str,
    cookie: Option<String>,
    authorization: Option<String>,
    anti_csrf: Option<String>,
    origin: Option<String>,
    preflight: bool,
    sec_fetch_mode: Option<String>,
    sec_fetch_site: Option<String>,
    own_origin: &str,
    query: &str,
    traceparent: Option<String>,
    now_ms: f64,
) -> String {
    let request = EdgeRequest {
        facts: RequestFacts {
            method,
            path,
            cookie: cookie.as_deref(),
            authorization: authorization.as_deref(),
            anti_csrf: anti_csrf.as_deref(),
            same_origin: false,
        },
        origin: origin.as_deref(),
        preflight,
        sec_fetch_mode: sec_fetch_mode.as_deref(),
        sec_fetch_site: sec_fetch_site.as_deref(),
        own_origin,
        query,
        traceparent: traceparent.as_deref(),
    };
    let decision = with_isolate(|isolate| decide::decide(isolate, &request, now(now_ms)))
        .unwrap_or_else(|| Decision::Respond(internal_error()));
    serde_json::to_string(&decision).expect("a decision serialises")
}

/// KV's answer for a session the decision asked about: `state` is 0 (not revoked), 1 (revoked)
/// or 2 (KV unreadable). Returns an empty string to go on forwarding, or a reply to send.
#[wasm_bindgen]
pub fn blacklist_result(session: &str, state: u8, page_load: bool, now_ms: f64) -> String {
    let reply =
        with_isolate(|isolate| blacklist::outcome(isolate, session, state, page_load, now_ms))
            .unwrap_or_else(|| Some(internal_error()));
    match reply {
        Some(reply) => serde_json::to_string(&reply).expect("a reply serialises"),
        None => String::new(),
    }
}

/// The reply when the app cannot be reached.
#[wasm_bindgen]
pub fn upstream_unavailable() -> String {
    worker::console_error!("latch-edge: upstream app unreachable");
    serde_json::to_string(&EdgeError::UpstreamUnavailable.into_reply(None))
        .expect("a reply serialises")
}

/// Loads the origin's settings and keys into the isolate (`fresh` bypasses the shared cache).
#[wasm_bindgen]
pub async fn load_settings(fresh: bool) {
    let Some(config) = with_isolate(|isolate| isolate.config.clone()) else { return };
    let fetched = settings::fetch(&config, fresh).await;
    with_isolate(|isolate| {
        isolate.loading = false;
        match fetched {
            Ok((settings, keys)) => isolate.install(settings, keys, js_sys::Date::now()),
            Err(err) => {
                isolate.forget_unknown_kids();
                worker::console_warn!("latch-edge: could not load the origin's settings: {err}")
            }
        }
    });
}

/// Tells the origin that an access token of refresh generation `generation` was first seen in
/// use here (run off the request path, in `waitUntil`). A report that fails is logged and
/// dropped: the origin then learns of the use from the successor's refresh instead.
#[wasm_bindgen]
pub async fn report_use(session: String, generation: f64) {
    let Some(config) = with_isolate(|isolate| isolate.config.clone()) else { return };
    let origin = origin::Origin::background(&config);
    if let Err(err) = origin.report_use(&session, generation as u64).await {
        worker::console_warn!("latch-edge: could not report a session's use: {err}");
    }
}

/// Serves a session endpoint: refresh, signout, session info, the origin's blacklist hook and
/// CORS preflights.
#[wasm_bindgen]
pub async fn endpoint(request: web_sys::Request, env: Env) -> web_sys::Response {
    endpoints::serve(worker::Request::from(request), &env).await.into()
}

/// Acts on the app's login or logout instruction in `response` and removes it.
#[wasm_bindgen]
pub async fn app_instruction(
    request: web_sys::Request,
    response: web_sys::Response,
    env: Env,
) -> web_sys::Response {
    instructions::apply(&worker::Request::from(request), worker::Response::from(response), &env)
        .await
        .into()
}

/// Panics are logged with their message before the instance traps; the entry then rebuilds
/// the instance for the next request.
fn console_error_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            worker::console_error!("latch-edge: panic: {info}");
            previous(info);
        }));
    });
}

/// Turns a [`Reply`] into a `worker::Response`.
pub(crate) fn to_response(reply: Reply) -> worker::Response {
    let headers = worker::Headers::new();
    for (name, value) in &reply.headers {
        let _ = headers.append(name, value);
    }
    let response = if reply.body.is_empty() {
        worker::Response::empty()
    } else {
        worker::Response::ok(reply.body)
    };
    response
        .map(|response| response.with_status(reply.status).with_headers(headers))
        .unwrap_or_else(|_| worker::Response::error("edge error", 500).expect("a plain 500"))
}
