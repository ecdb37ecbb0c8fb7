//! One request's context: its facts, its trace (kept or made once, so every call it causes
//! carries the same id), the isolate's state and the [`Io`] its flow performs steps through.
//! What every flow needs (the settings, the session check, origin calls, KV writes, error
//! answers) is a method here, written once.

use std::cell::RefCell;
use std::rc::Rc;

use chrono::{DateTime, Utc};
use latch_shared::api::blacklist_key;
use latch_shared::engine::RequestFacts;
use latch_shared::settings::SharedSettings;
use latch_shared::trace::{TraceContext, REQUEST_ID_HEADER};
use serde::de::DeserializeOwned;

use crate::admission::{self, Admitted, Purpose, Refusal};
use crate::config::EdgeConfig;
use crate::io::Io;
use crate::isolate::{Isolate, SettingsState};
use crate::navigation;
use crate::respond::{EdgeError, Reply};
use crate::step::{BlacklistWrite, OriginCall, Request, Step};
use crate::{log, origin, settings};

/// The time, injected: `Date.now()` on workerd, a test's clock natively.
pub type Clock = Rc<dyn Fn() -> DateTime<Utc>>;

pub struct Exchange {
    pub config: Rc<EdgeConfig>,
    pub request: Request,
    pub io: Io,
    isolate: Rc<RefCell<Isolate>>,
    clock: Clock,
    /// The request's trace, and whether the edge made it (the request brought none valid).
    trace: Option<(TraceContext, bool)>,
}

impl Exchange {
    pub fn new(isolate: Rc<RefCell<Isolate>>, io: Io, request: Request, clock: Clock) -> Self {
        let config = isolate.borrow().config.clone();
        Exchange { config, request, io, isolate, clock, trace: None }
    }

    pub fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    pub fn now_ms(&self) -> f64 {
        self.now().timestamp_millis() as f64
    }

    /// Runs `f` on the isolate's state (never across an `await`).
    pub fn isolate<T>(&self, f: impl FnOnce(&mut Isolate) -> T) -> T {
        f(&mut self.isolate.borrow_mut())
    }

    /// The request's trace context, kept when valid, else made here once; and whether it was
    /// made here (the app and the origin must then be told it).
    pub fn trace(&mut self) -> (&TraceContext, bool) {
        if self.trace.is_none() {
            let traceparent = self.request.traceparent.as_deref();
            self.trace = Some(self.isolate.borrow_mut().trace_for(traceparent));
        }
        let (trace, made) = self.trace.as_ref().expect("just set");
        (trace, *made)
    }

    /// The request's id in log lines and error answers: its trace id.
    pub fn request_id(&mut self) -> String {
        self.trace().0.trace_id().to_owned()
    }

    /// A browser loading a page (refusals are pages too: `crate::navigation`).
    pub fn page_load(&self) -> bool {
        navigation::is_page_load(&self.request.method, self.request.sec_fetch_mode.as_deref())
    }

    /// What the shared engine reads. A plain HTML form of the site itself proves it with Fetch
    /// Metadata, in place of the SDK's anti-csrf header (unless the deployment turns that off).
    pub fn facts(&self) -> RequestFacts<'_> {
        let request = &self.request;
        RequestFacts {
            method: &request.method,
            path: &request.path,
            cookie: request.cookie.as_deref(),
            authorization: request.authorization.as_deref(),
            anti_csrf: request.anti_csrf.as_deref(),
            same_origin: self.config.fetch_metadata_csrf && request.proves_same_origin(false),
            // Counts only in custom-header mode: admission reads the facts `under` the policy.
            custom_header: request.rid,
            dialect: request.dialect,
        }
    }

    /// The origin's settings: this request loads them when they are due, or waits for the load
    /// another request has under way. `None`: none could be had.
    pub async fn settings(&mut self) -> Option<Rc<SharedSettings>> {
        // A load ends in Ready or Unavailable; waiting may find a load still under way: a
        // few rounds are enough, and bound a load that never reports.
        for _ in 0..3 {
            let now_ms = self.now_ms();
            match self.isolate(|isolate| isolate.settings_state(now_ms)) {
                SettingsState::Ready => break,
                SettingsState::Unavailable => return None,
                SettingsState::Due => self.load_settings(false).await,
                SettingsState::Loading => self.io.await_settings().await,
            }
        }
        self.isolate(|isolate| isolate.settings())
    }

    /// Loads the settings and keys into the isolate (`fresh`: bypass the shared cache).
    async fn load_settings(&mut self, fresh: bool) {
        let loaded = self.io.load_settings(settings::url(&self.config), fresh).await;
        let loaded = loaded.and_then(|text| settings::parse(&text));
        let now_ms = self.now_ms();
        self.isolate(|isolate| {
            isolate.loading = false;
            match loaded {
                Ok((settings, keys)) => isolate.install(settings, keys, now_ms),
                Err(err) => {
                    isolate.forget_unknown_kids();
                    log::warn(&format!("could not load the origin's settings: {err}"));
                }
            }
        });
    }

    /// The request's session, by the shared engine's rules (`crate::admission`), fetching the
    /// origin's keys first when the token names one this isolate does not have. A refused
    /// session is [`EdgeError::Session`].
    pub async fn authenticate(&mut self) -> Result<Admitted, EdgeError> {
        self.check_session(Purpose::Act).await
    }

    /// The handle of the valid session the request carries, if any, for ending it: anti-CSRF
    /// does not apply (nothing is done on the session's behalf).
    pub async fn displaced_session(&mut self) -> Option<String> {
        self.check_session(Purpose::End).await.ok().map(|admitted| admitted.verified.claims.sid)
    }

    async fn check_session(&mut self, purpose: Purpose) -> Result<Admitted, EdgeError> {
        loop {
            let now = self.now();
            let checked = admission::authenticate(
                &mut self.isolate.borrow_mut(),
                &self.facts(),
                purpose,
                now,
            );
            match checked {
                Ok(admitted) => return Ok(admitted),
                Err(Refusal::Session(err)) => return Err(EdgeError::Session(err)),
                Err(Refusal::NoKeys) => {
                    return Err(EdgeError::OriginUnavailable("no keys to check the session".into()))
                }
                // Allowed at most once per cooldown: this loops at most twice.
                Err(Refusal::NeedKeys) => self.load_settings(true).await,
            }
        }
    }

    /// Calls the origin for this request's client, under its trace; the successful answer's
    /// body as it came.
    pub async fn call_origin(&mut self, call: OriginCall) -> Result<String, EdgeError> {
        let traceparent = self.trace().0.to_string();
        let call = call.for_client(self.request.client_address.as_deref(), Some(traceparent));
        origin::read_answer(self.io.call_origin(call).await)
    }

    /// [`Exchange::call_origin`], parsed.
    pub async fn call_origin_json<T: DeserializeOwned>(
        &mut self,
        call: OriginCall,
    ) -> Result<T, EdgeError> {
        origin::parse_body(&self.call_origin(call).await?)
    }

    /// Blacklists a session the edge itself ended (signout, theft, the app's logout): refused
    /// in this isolate at once, and in KV for `ttl_secs` (at least KV's minimum of 60 s). A
    /// failed write is logged, never the request's failure: the session is already revoked at
    /// the origin, which delivers the entry too.
    pub async fn blacklist(&mut self, handle: &str, ttl_secs: u64) {
        self.blacklist_all(&[handle.to_owned()], ttl_secs).await;
    }

    /// [`Exchange::blacklist`] for several sessions, in one step.
    pub async fn blacklist_all(&mut self, handles: &[String], ttl_secs: u64) {
        if handles.is_empty() {
            return;
        }
        let now_ms = self.now_ms();
        self.isolate(|isolate| {
            for handle in handles {
                isolate.record_blacklist(handle, Some(true), now_ms);
            }
        });
        let entries = handles
            .iter()
            .map(|handle| BlacklistWrite { key: blacklist_key(handle), ttl_secs: ttl_secs.max(60) })
            .collect();
        if let Err(err) = self.io.write_blacklist(entries).await {
            let id = self.request_id();
            log::error(&format!("could not blacklist a revoked session (request {id}): {err}"));
        }
    }

    /// The answer to an error, logged under this request's id.
    pub fn error_reply(&mut self, err: EdgeError, settings: Option<&SharedSettings>) -> Reply {
        let id = self.request_id();
        err.into_reply(settings, self.request.dialect, &id)
    }

    /// Ends the request with `reply`. An error answer names the request's id, which the edge's
    /// log line about it carries too.
    pub fn respond(&mut self, mut reply: Reply) -> Step {
        if reply.status >= 400 {
            let id = self.request_id();
            reply.headers.push((REQUEST_ID_HEADER.to_owned(), id));
        }
        Step::Respond(reply)
    }
}
