//! The edge's one decision per request, made from plain data with no I/O: the JS entry passes
//! the request's facts in once and acts on the [`Decision`] it gets back. The rules themselves
//! are the shared request engine's (`latch_shared::engine`); this module only adds what is the
//! edge's: which endpoint a path is, the route rules, the caches and the blacklist.

use chrono::{DateTime, Utc};
use latch_shared::access::{VerifiedAccessToken, VerifyError};
use latch_shared::api::{blacklist_key, paths};
use latch_shared::assertion::{CsrfOutcome, ASSERTION_JWKS_PATH};
use latch_shared::engine::{self, Access, RequestFacts};
use latch_shared::error::codes;
use latch_shared::protocol::{without_session_cookies, MAX_COOKIE_HEADER_LEN};
use latch_shared::trace::TRACEPARENT_HEADER;
use latch_shared::SessionError;
use serde::Serialize;

use crate::config::EdgeConfig;
use crate::isolate::{BlacklistStatus, Isolate, SettingsState};
use crate::navigation;
use crate::respond::{cors_headers, EdgeError, Reply};
use latch_shared::settings::SharedSettings;

/// A request as the JS entry hands it over.
#[derive(Debug, Clone, Copy, Default)]
pub struct EdgeRequest<'a> {
    pub facts: RequestFacts<'a>,
    /// The `Origin` header, for CORS.
    pub origin: Option<&'a str>,
    /// Whether `Access-Control-Request-Method` was sent (a CORS preflight).
    pub preflight: bool,
    /// `Sec-Fetch-Mode` and `Sec-Fetch-Site` (Fetch Metadata).
    pub sec_fetch_mode: Option<&'a str>,
    pub sec_fetch_site: Option<&'a str>,
    /// This site's own origin (`https://host[:port]`), as the request's URL has it.
    pub own_origin: &'a str,
    /// The URL's query, with its `?` (empty without one): where a page load comes back to.
    pub query: &'a str,
    /// The W3C `traceparent` header, kept when valid, replaced otherwise.
    pub traceparent: Option<&'a str>,
}

/// What the JS entry does with the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "do", rename_all = "snake_case")]
pub enum Decision {
    /// Forward to the app, unchanged but for client `x-latch-*` headers (always stripped) and
    /// `set` (the verified identity); `response` headers are added to the app's answer. When
    /// `blacklist` names a session, KV's `key` is read first and reported back.
    Forward {
        #[serde(skip_serializing_if = "Vec::is_empty")]
        set: Vec<(String, String)>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        response: Vec<(String, String)>,
        #[serde(skip_serializing_if = "Option::is_none")]
        blacklist: Option<BlacklistRead>,
        /// The `Cookie` header to forward instead of the client's: the session cookies taken
        /// out (empty: no `Cookie` header at all). Absent: forward it as it came.
        #[serde(skip_serializing_if = "Option::is_none")]
        cookie: Option<String>,
        /// This isolate's first sight of the token: report its use to the origin, off the
        /// request path.
        #[serde(skip_serializing_if = "Option::is_none")]
        report: Option<UseReport>,
    },
    /// Answer with this, without the app.
    Respond(Reply),
    /// A session endpoint (refresh, signout, session info, the origin's blacklist hook, a CORS
    /// preflight): hand the whole request to the async `endpoint` export.
    Endpoint,
    /// Load the origin's settings (`fresh`: bypass the shared cache, for an unknown key), or
    /// wait for the load under way, then decide again.
    LoadSettings { fresh: bool },
}

/// A session's refresh generation seen in use (`latch_shared::api::UsageReport`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UseReport {
    pub session: String,
    pub generation: u64,
}

/// A KV read the entry must make before forwarding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlacklistRead {
    pub key: String,
    pub session: String,
    /// A browser loading a page: a refusal is a page too (`crate::navigation`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub page_load: bool,
}

impl Decision {
    fn forward(response: Vec<(String, String)>) -> Decision {
        Decision::Forward { set: Vec::new(), response, blacklist: None, cookie: None, report: None }
    }
}

/// Decides what `request` gets at time `now`.
pub fn decide(isolate: &mut Isolate, request: &EdgeRequest<'_>, now: DateTime<Utc>) -> Decision {
    let mut decision = decide_route(isolate, request, now);
    if let Decision::Forward { cookie, set, .. } = &mut decision {
        // The app sees the assertion, not the session cookies, unless the deployment opts in.
        if !isolate.config.forward_session_cookies {
            *cookie = request.facts.cookie.and_then(without_session_cookies);
        }
        // The app's logs join the edge's and the origin's under one trace id. A request the
        // edge forwards untouched (a public route: no identity to add) stays untouched, its
        // own `traceparent` included: adding one would cost it a copy of all its headers.
        if !set.is_empty() {
            let (trace, new) = isolate.trace_for(request.traceparent);
            if new {
                set.push((TRACEPARENT_HEADER.to_owned(), trace.to_string()));
            }
        }
    }
    decision
}

fn decide_route(isolate: &mut Isolate, request: &EdgeRequest<'_>, now: DateTime<Utc>) -> Decision {
    let config = isolate.config.clone();
    // A plain HTML form of the site itself proves it with Fetch Metadata, in place of the SDK's
    // anti-csrf header (unless the deployment turns that off).
    let same_origin = config.fetch_metadata_csrf
        && engine::proves_same_origin(request.sec_fetch_site, request.origin, request.own_origin);
    let facts = &RequestFacts { same_origin, ..request.facts };
    let page_load = navigation::is_page_load(facts.method, request.sec_fetch_mode);
    let now_ms = now.timestamp_millis() as f64;
    if config.crash_test_path.as_deref() == Some(facts.path) {
        panic!("crash test: {} was requested", facts.path);
    }
    if let Err(reply) = check_header_sizes(facts, config.max_header_bytes) {
        return Decision::Respond(reply);
    }
    // Route rules match the path as forwarded; one that would mean another path once decoded
    // is refused rather than guessed at.
    if let Err(err) = engine::check_path(facts.path) {
        let err = EdgeError::BadRequest {
            status: 400,
            code: codes::BAD_REQUEST,
            message: err.to_string(),
        };
        return Decision::Respond(err.into_reply(None));
    }
    if facts.path == ASSERTION_JWKS_PATH && matches!(facts.method, "GET" | "HEAD") {
        let mut reply = Reply::json(200, config.assertion_jwks.clone());
        reply.headers.push(("cache-control".into(), "public, max-age=300".into()));
        return Decision::Respond(reply);
    }
    let endpoint = (facts.method == "OPTIONS" && request.preflight)
        || (facts.path == config.signout_path && facts.method == "POST")
        || (facts.path == config.session_info_path && matches!(facts.method, "GET" | "PUT"))
        || facts.path == paths::EDGE_BLACKLIST;
    if endpoint {
        return Decision::Endpoint;
    }
    let access = config.routes.access(facts.path);
    let cors = cors_headers(&config, request.origin);
    let settings = match isolate.settings_state(now_ms) {
        SettingsState::Due | SettingsState::Loading => {
            return Decision::LoadSettings { fresh: false }
        }
        SettingsState::Ready => isolate.settings().expect("ready settings are loaded"),
        // Public and optional routes go on without identity; protected ones cannot be checked.
        SettingsState::Unavailable if access != Access::Protected => {
            return Decision::forward(cors);
        }
        SettingsState::Unavailable => {
            let reply = EdgeError::OriginUnavailable("no settings yet".into()).into_reply(None);
            return Decision::Respond(with_cors(reply, cors));
        }
    };
    // POST: the SDK's refresh; a page load: the hop of a page without JavaScript.
    if facts.path == settings.cookies.refresh_path && (facts.method == "POST" || page_load) {
        return Decision::Endpoint;
    }
    if access == Access::Public {
        return Decision::forward(cors);
    }
    let Admitted { token, verified, csrf, first_sight } = match authenticate(isolate, facts, now) {
        Ok(verified) => verified,
        Err(Refusal::NeedKeys) => return Decision::LoadSettings { fresh: true },
        Err(Refusal::Session(err)) => {
            return refuse(&settings, &config, &err, request, page_load, access, cors)
        }
    };
    let handle = verified.claims.sid.clone();
    let blacklist = match config.blacklist {
        crate::config::BlacklistMode::Off => None,
        _ => match isolate.blacklist_status(&handle, now_ms) {
            BlacklistStatus::Revoked => {
                let err = SessionError::unauthorised("session has been revoked");
                return refuse(&settings, &config, &err, request, page_load, access, cors);
            }
            BlacklistStatus::Clear => None,
            BlacklistStatus::Due => {
                Some(BlacklistRead { key: blacklist_key(&handle), session: handle, page_load })
            }
        },
    };
    // Generation 0 (the login's) has no refresh token before it to spend: nothing to report.
    let report = first_sight
        .then_some(verified.claims.rgen)
        .flatten()
        .filter(|generation| *generation > 0)
        .map(|generation| UseReport { session: verified.claims.sid.clone(), generation });
    match isolate.identity_headers(&token, &verified, csrf, now) {
        Ok(set) => Decision::Forward { set, response: cors, blacklist, cookie: None, report },
        Err(err) => Decision::Respond(with_cors(EdgeError::Internal(err).into_reply(None), cors)),
    }
}

/// Why a request's session was not admitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The engine's answer.
    Session(SessionError),
    /// The token names a key this isolate does not have, and a refetch is allowed: load the
    /// origin's keys and check again.
    NeedKeys,
}

/// A request the engine admitted.
#[derive(Debug, Clone)]
pub struct Admitted {
    pub token: String,
    pub verified: VerifiedAccessToken,
    /// What the anti-CSRF check found, for the app's assertion (required or not here).
    pub csrf: CsrfOutcome,
    /// Whether this isolate verified the token's signature just now (it had not seen it).
    pub first_sight: bool,
}

/// The engine's check (`latch_shared::engine`) with this isolate's cache of verified
/// signatures and, on an unknown key, a refetch of the origin's keys at most once per cooldown.
pub fn authenticate(
    isolate: &mut Isolate,
    facts: &RequestFacts<'_>,
    now: DateTime<Utc>,
) -> Result<Admitted, Refusal> {
    let credential = engine::credential(facts).map_err(Refusal::Session)?;
    let token = credential.token().to_owned();
    let loaded = isolate.loaded.as_ref().expect("settings are loaded before authenticating");
    let check = loaded.settings.anti_csrf.check_for(facts.path);
    let csrf_enabled = loaded.settings.anti_csrf.enabled;
    let cached = isolate.cached_verification(&token);
    let first_sight = cached.is_none();
    let verified = match cached {
        Some(verified) => Ok(verified),
        None => {
            let result = loaded.verifier.verify(&token, now);
            match &result {
                Ok(verified) => isolate.remember_verification(&token, verified.clone()),
                Err(VerifyError::UnknownKey { kid })
                    if isolate.unknown_kid_refetch_allowed(kid, now.timestamp_millis() as f64) =>
                {
                    return Err(Refusal::NeedKeys);
                }
                Err(_) => {}
            }
            result
        }
    };
    let verified =
        engine::admit(facts, &credential, verified, check, now).map_err(Refusal::Session)?;
    let csrf = if csrf_enabled {
        engine::csrf_outcome(facts, &credential, &verified.claims)
    } else {
        CsrfOutcome::NotApplicable
    };
    Ok(Admitted { token, verified, csrf, first_sight })
}

/// A refused session. A browser loading a page gets a page (`crate::navigation`): on an
/// optional route only the refresh page, when refreshing can help. Otherwise an optional route
/// goes on without identity, and any other answers the seed's JSON error.
fn refuse(
    settings: &SharedSettings,
    config: &EdgeConfig,
    err: &SessionError,
    request: &EdgeRequest<'_>,
    page_load: bool,
    access: Access,
    cors: Vec<(String, String)>,
) -> Decision {
    let cookie = request.facts.cookie;
    let page =
        page_load.then(|| format!("{}{}", request.facts.path, request.query)).and_then(|target| {
            match access {
                Access::Optional => navigation::refresh_if_possible(settings, err, cookie, &target),
                _ => navigation::refusal(settings, config, err, cookie, &target),
            }
        });
    match (page, access) {
        (Some(page), _) => Decision::Respond(page),
        (None, Access::Optional) => Decision::forward(cors),
        (None, _) => Decision::Respond(with_cors(Reply::session_error(settings, err), cors)),
    }
}

fn with_cors(mut reply: Reply, cors: Vec<(String, String)>) -> Reply {
    reply.headers.extend(cors);
    reply
}

/// The headers the edge reads are bounded: a huge `Cookie` or `Authorization` gets a clear 431
/// instead of being parsed.
fn check_header_sizes(facts: &RequestFacts<'_>, max_header_bytes: usize) -> Result<(), Reply> {
    let too_large = facts.cookie.is_some_and(|cookie| cookie.len() > MAX_COOKIE_HEADER_LEN)
        || [facts.authorization, facts.anti_csrf]
            .into_iter()
            .flatten()
            .any(|value| value.len() > max_header_bytes);
    if too_large {
        return Err(EdgeError::BadRequest {
            status: 431,
            code: codes::HEADER_TOO_LARGE,
            message: "a request header is too large".into(),
        }
        .into_reply(None));
    }
    Ok(())
}
