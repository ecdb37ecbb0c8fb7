//! # latch-edge
//!
//! The Cloudflare Worker in front of any web app, as a step machine. The JS entry
//! (`edge/js/entry.mjs`) does all the I/O and none of the deciding: it passes each request's
//! facts in once ([`start`]), carries out the [`Step`] it gets back (load the origin's settings,
//! read or write KV, call the origin, forward to the app, respond) and reports each
//! [`Outcome`] ([`resume`]) until the request ends. Headers and bodies stay in the entry; the
//! steps and outcomes are plain data ([`step`]), so the same flows run on workerd and in native
//! tests, where the test plays the entry ([`Edge`]).
//!
//! [`flow`] is one request from its facts to its answer, on the shared request engine
//! (`latch_shared::engine`) through [`admission`]; [`endpoints`] serves the edge's own
//! endpoints, [`instructions`] acts on the app's answers; [`exchange`] is what a request's flow
//! holds (trace, settings, session check, origin calls); [`io`] turns awaits into steps;
//! [`respond`] builds every answer the edge writes itself.

mod admission;
mod blacklist;
mod config;
mod endpoints;
mod exchange;
mod flow;
mod instructions;
mod io;
mod isolate;
mod log;
mod navigation;
mod origin;
mod respond;
pub mod settings;
pub mod step;
#[cfg(test)]
mod tests;

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use latch_shared::api::MAX_USER_AGENT_LEN;
use latch_shared::identity::{
    CLIENT_FORWARDING_HEADERS, HEADER_PREFIX, JWT_PAYLOAD_HEADER, LOGIN_HEADER, LOGOUT_HEADER,
};
use serde::Serialize;
use wasm_bindgen::prelude::*;
use worker::Env;

pub use config::{BlacklistMode, ConfigError, EdgeConfig, SECRETS};
pub use exchange::Clock;
use exchange::Exchange;
pub use io::Machine;
use isolate::Isolate;
use respond::{internal_error, Reply};
use step::{Facts, Outcome, Request, Step, FACT_HEADERS};

/// One isolate's edge: its configuration and what it keeps between requests, and a
/// [`Machine`] for each request.
pub struct Edge {
    isolate: Rc<RefCell<Isolate>>,
    clock: Clock,
}

impl Edge {
    pub fn new(config: EdgeConfig, clock: Clock) -> Edge {
        Edge { isolate: Rc::new(RefCell::new(Isolate::new(config))), clock }
    }

    /// The machine for one request; its first step comes from `resume(Outcome::Start)`.
    pub fn request(&self, facts: Facts) -> Machine {
        let io = io::Io::default();
        let request = Request::from_facts(facts);
        let exchange = Exchange::new(self.isolate.clone(), io.clone(), request, self.clock.clone());
        Machine::new(io, flow::serve(exchange))
    }
}

/// The KV namespace binding of the revocation blacklist.
pub const KV_BINDING: &str = "BLACKLIST";

/// The requests in flight in this isolate, by the entry's id for each.
#[derive(Default)]
struct InFlight {
    machines: HashMap<u32, Machine>,
}

/// Requests in flight past this many means the entry lost some (it ends each one with a final
/// step or [`finish`], unless the runtime cancelled it mid-step): the oldest are dropped rather
/// than kept forever.
const MAX_IN_FLIGHT: usize = 10_000;

thread_local! {
    /// `None` until the entry calls [`configure`], or when the configuration is invalid.
    static EDGE: RefCell<Option<Edge>> = const { RefCell::new(None) };
    static IN_FLIGHT: RefCell<InFlight> = RefCell::new(InFlight::default());
}

/// What the entry needs to know once per isolate: whether the configuration is valid, which
/// request headers never reach the app (Latch's and the forwarding ones), which header values the
/// machine reads, which response headers are the app's instructions, and the edge's
/// credential for the origin's API.
#[derive(Serialize)]
struct EntryPlan {
    ok: bool,
    latch_header_prefix: &'static str,
    /// Client-sent forwarding headers, dropped like Latch's own: the edge sets its own.
    client_forwarding_headers: [&'static str; CLIENT_FORWARDING_HEADERS.len()],
    fact_headers: [&'static str; FACT_HEADERS.len()],
    instructions: [&'static str; 3],
    /// The Workers KV binding of the blacklist (`wrangler.toml`).
    kv_binding: &'static str,
    origin_authorization: String,
    /// The longest `User-Agent` sent with a login (longer ones are left out).
    max_user_agent_len: usize,
    /// The assertion signing key, as a private JWK for the runtime's WebCrypto.
    assertion_key: Option<serde_json::Value>,
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
    let secrets = match config {
        Ok(config) => {
            let authorization = format!("Bearer {}", config.edge_secret.expose());
            let assertion_key = config.assertion.signing_jwk();
            let edge = Edge::new(config, Rc::new(|| now(js_sys::Date::now())));
            // Trace ids need uniqueness, not secrecy: 53 random bits from each of two draws.
            let seed = (js_sys::Math::random() * 2f64.powi(53)) as u64
                ^ ((js_sys::Math::random() * 2f64.powi(53)) as u64).rotate_left(32);
            edge.isolate.borrow_mut().seed_traces(seed);
            EDGE.with(|cell| *cell.borrow_mut() = Some(edge));
            Some((authorization, assertion_key))
        }
        Err(err) => {
            log::error(&format!("invalid configuration: {err}"));
            None
        }
    };
    let (origin_authorization, assertion_key) = secrets.unzip();
    let plan = EntryPlan {
        ok: origin_authorization.is_some(),
        latch_header_prefix: HEADER_PREFIX,
        client_forwarding_headers: CLIENT_FORWARDING_HEADERS,
        fact_headers: FACT_HEADERS,
        instructions: [LOGIN_HEADER, LOGOUT_HEADER, JWT_PAYLOAD_HEADER],
        kv_binding: KV_BINDING,
        max_user_agent_len: MAX_USER_AGENT_LEN,
        origin_authorization: origin_authorization.unwrap_or_default(),
        assertion_key,
        internal_error: internal_error(),
    };
    serde_json::to_string(&plan).expect("the plan serialises")
}

fn now(now_ms: f64) -> chrono::DateTime<chrono::Utc> {
    // std::time and chrono's clock do not work on wasm32-unknown-unknown.
    chrono::DateTime::from_timestamp_millis(now_ms as i64).unwrap_or_default()
}

/// Starts request `id` (the entry's number for it) from its facts (JSON [`Facts`]); returns
/// its first step (JSON [`Step`]).
#[wasm_bindgen]
pub fn start(id: u32, facts: &str) -> String {
    let machine = match serde_json::from_str::<Facts>(facts) {
        Ok(facts) => EDGE.with(|edge| edge.borrow().as_ref().map(|edge| edge.request(facts))),
        Err(err) => {
            log::error(&format!("the entry passed facts that do not parse: {err}"));
            None
        }
    };
    match machine {
        Some(machine) => run(id, machine, Outcome::Start),
        None => to_json(&Step::Respond(internal_error())),
    }
}

/// Reports the outcome of request `id`'s last step (JSON [`Outcome`]); returns its next step.
#[wasm_bindgen]
pub fn resume(id: u32, outcome: &str) -> String {
    let outcome = match serde_json::from_str::<Outcome>(outcome) {
        Ok(outcome) => outcome,
        Err(err) => {
            log::error(&format!("the entry reported an outcome that does not parse: {err}"));
            finish(id);
            return to_json(&Step::Respond(internal_error()));
        }
    };
    match IN_FLIGHT.with(|in_flight| in_flight.borrow_mut().machines.remove(&id)) {
        Some(machine) => run(id, machine, outcome),
        None => {
            log::error("the entry resumed a request that is not in flight");
            to_json(&Step::Respond(internal_error()))
        }
    }
}

/// Ends request `id` where it stands (the app's answer carried no instruction, or the entry
/// failed).
#[wasm_bindgen]
pub fn finish(id: u32) {
    IN_FLIGHT.with(|in_flight| in_flight.borrow_mut().machines.remove(&id));
}

fn run(id: u32, mut machine: Machine, outcome: Outcome) -> String {
    let step = machine.resume(outcome);
    if !machine.is_done() {
        IN_FLIGHT.with(|in_flight| {
            let machines = &mut in_flight.borrow_mut().machines;
            if machines.len() >= MAX_IN_FLIGHT {
                // The oldest (the entry numbers requests in order) was surely lost: a client
                // that went away mid-step. Live requests keep theirs.
                log::warn("a request in flight was never ended: dropping the oldest");
                if let Some(oldest) = machines.keys().min().copied() {
                    machines.remove(&oldest);
                }
            }
            machines.insert(id, machine);
        });
    }
    to_json(&step)
}

fn to_json(step: &Step) -> String {
    serde_json::to_string(step).expect("a step serialises")
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
