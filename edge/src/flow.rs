//! One request, from its facts to its answer: which endpoint it is (decided once, here), the
//! route rules, the session check, the blacklist, and the forward to the app. Every I/O is a
//! step (`crate::io`), so this reads top to bottom as what happens to the request.

use std::rc::Rc;

use latch_shared::api::blacklist_key;
use latch_shared::assertion::ASSERTION_JWKS_PATH;
use latch_shared::claims;
use latch_shared::engine::{self, Access};
use latch_shared::error::codes;
use latch_shared::protocol::without_session_cookies;
use latch_shared::sdk::INVALID_CLAIM_STATUS;
use latch_shared::settings::SharedSettings;
use latch_shared::trace::TRACEPARENT_HEADER;

use crate::admission::{self, Admitted, Refused};
use crate::blacklist::{self, Verdict};
use crate::config::BlacklistMode;
use crate::endpoints::{self, Endpoint};
use crate::exchange::Exchange;
use crate::instructions;
use crate::isolate::BlacklistStatus;
use crate::navigation;
use crate::origin;
use crate::respond::{cors_headers, EdgeError, Reply};
use crate::step::{Amend, Forward, Header, OriginCall, Step};

/// Serves one request.
pub async fn serve(mut cx: Exchange) -> Step {
    let config = cx.config.clone();
    if config.crash_test_path.as_deref() == Some(cx.request.path.as_str()) {
        panic!("crash test: {} was requested", cx.request.path);
    }
    if let Err(err) = admission::check_header_sizes(&cx.request, config.max_header_bytes) {
        let reply = cx.error_reply(err, None);
        return cx.respond(reply);
    }
    // Route rules match the path as forwarded; one that would mean another path once decoded
    // is refused rather than guessed at.
    if let Err(err) = engine::check_path(&cx.request.path) {
        let err = EdgeError::BadRequest {
            status: 400,
            code: codes::BAD_REQUEST,
            message: err.to_string(),
        };
        let reply = cx.error_reply(err, None);
        return cx.respond(reply);
    }
    let (method, path) = (cx.request.method.as_str(), cx.request.path.as_str());
    if path == ASSERTION_JWKS_PATH && matches!(method, "GET" | "HEAD") {
        let mut reply = Reply::json(200, config.assertion_jwks.clone());
        reply.headers.push(("cache-control".into(), "public, max-age=300".into()));
        return cx.respond(reply);
    }
    if let Some(endpoint) = Endpoint::without_settings(&cx.request, &config) {
        return endpoints::serve(cx, endpoint).await;
    }
    let access = config.routes.access(path);
    let cors = cors_headers(&config, cx.request.origin_header.as_deref());
    let Some(settings) = cx.settings().await else {
        // Public and optional routes go on without identity; protected ones cannot be checked.
        if access != Access::Protected {
            return forward(cx, Vec::new(), cors, None, None).await;
        }
        let err = EdgeError::OriginUnavailable("no settings yet".into());
        let reply = cx.error_reply(err, None);
        return cx.respond(reply.with_headers(cors));
    };
    if let Some(endpoint) = Endpoint::with_settings(&cx.request, &settings, cx.page_load()) {
        return endpoints::serve(cx, endpoint).await;
    }
    if access == Access::Public {
        return forward(cx, Vec::new(), cors, None, None).await;
    }
    let page_load = cx.page_load();
    let refused = |cx: &mut Exchange, err| {
        admission::refuse(&settings, &config, &err, &cx.request, page_load, access)
    };
    let admitted = match cx.authenticate().await {
        Ok(admitted) => admitted,
        Err(EdgeError::Session(err)) => {
            return match refused(&mut cx, err) {
                Refused::Respond(reply) => cx.respond(reply.with_headers(cors)),
                Refused::Anonymous => forward(cx, Vec::new(), cors, None, None).await,
            }
        }
        Err(err) => {
            let reply = cx.error_reply(err, Some(&settings));
            return cx.respond(reply.with_headers(cors));
        }
    };
    let handle = admitted.verified.claims.sid.clone();
    if config.blacklist != BlacklistMode::Off {
        let now_ms = cx.now_ms();
        let verdict = match cx.isolate(|isolate| isolate.blacklist_status(&handle, now_ms)) {
            BlacklistStatus::Clear => Verdict::Clear,
            BlacklistStatus::Revoked => Verdict::Revoked(blacklist::revoked_error()),
            BlacklistStatus::Due => {
                let revoked = cx.io.read_blacklist(blacklist_key(&handle)).await;
                let now_ms = cx.now_ms();
                cx.isolate(|isolate| isolate.record_blacklist(&handle, revoked, now_ms));
                blacklist::verdict(config.blacklist, revoked)
            }
        };
        match verdict {
            Verdict::Clear => {}
            // A revoked session is over on every route, optional ones included: its cookies
            // are cleared (a page load goes to the login page), never left to linger.
            Verdict::Revoked(err) => {
                let reply = if page_load {
                    navigation::session_ended(&settings, &config)
                } else {
                    Reply::session_error(&settings, cx.request.dialect, &err)
                };
                return cx.respond(reply.with_headers(cors));
            }
            Verdict::Unavailable(err) => {
                let reply = Reply::json(503, err.to_json());
                return cx.respond(reply.with_headers(cors));
            }
        }
    }
    // The route's claim rules, on the verified payload: refused as the current SDKs understand
    // (their invalid-claim event), before the app sees the request.
    if let Some(requirements) = engine::most_specific(&config.claim_rules, &cx.request.path) {
        let failed = claims::failures(requirements, admitted.verified.claims.pld.as_ref());
        if !failed.is_empty() {
            let reply = Reply::json(INVALID_CLAIM_STATUS, claims::invalid_claim_body(&failed));
            return cx.respond(reply.with_headers(cors));
        }
    }
    // This isolate's first sight of a token: the refresh token before it is spent from now on.
    // Generation 0 (the login's) has none before it: nothing to report.
    let report = admitted
        .first_sight
        .then_some(admitted.verified.claims.rgen)
        .flatten()
        .filter(|generation| *generation > 0)
        .map(|generation| origin::report_use(&config, &handle, generation));
    let now = cx.now();
    let minted = cx.isolate(|isolate| {
        isolate.minted_identity(&admitted.token, &admitted.verified, admitted.csrf, now)
    });
    let identity = match minted {
        Some(headers) => Ok(headers),
        None => mint_identity(&mut cx, &admitted).await,
    };
    match identity {
        Ok(set) => forward(cx, set, cors, report, Some(handle)).await,
        Err(err) => {
            let reply = cx.error_reply(EdgeError::Internal(err), Some(&settings));
            cx.respond(reply.with_headers(cors))
        }
    }
}

/// Signs the identity assertion for an admitted session (through the runtime's native Ed25519:
/// a step) and keeps the identity headers for reuse. Never valid past the access token: the
/// app must not accept a session the edge would now refuse.
async fn mint_identity(cx: &mut Exchange, admitted: &Admitted) -> Result<Vec<Header>, String> {
    let now = cx.now();
    let unsigned = cx
        .config
        .assertion
        .unsigned(&admitted.verified.claims, admitted.csrf, now, admitted.verified.expires_at)
        .map_err(|err| format!("minting the identity assertion failed: {err}"))?;
    let signature = cx.io.sign(unsigned.signing_input().to_owned()).await?;
    let assertion = unsigned.with_signature(&signature);
    Ok(cx.isolate(|isolate| {
        isolate.remember_identity(
            &admitted.token,
            &admitted.verified,
            admitted.csrf,
            assertion,
            now,
        )
    }))
}

/// Forwards the request to the app, with `set` (the verified identity, if any), the forwarding
/// headers, and the session cookies taken out unless the deployment opts in; then acts on the app's
/// instructions, if its answer has any. `session` is the handle the request was admitted with.
async fn forward(
    mut cx: Exchange,
    mut set: Vec<Header>,
    cors: Vec<Header>,
    report: Option<OriginCall>,
    session: Option<String>,
) -> Step {
    let cookie = if cx.config.forward_session_cookies {
        None
    } else {
        cx.request.cookie.as_deref().and_then(without_session_cookies)
    };
    // Every forwarded request carries the forwarding headers (the client's own were dropped),
    // so its headers are copied anyway: it also carries the trace, and the app's logs join
    // the edge's and the origin's under one id.
    set.extend(cx.request.forwarding_headers());
    let (trace, made) = cx.trace();
    if made {
        set.push((TRACEPARENT_HEADER.to_owned(), trace.to_string()));
    }
    // The usage report is off the request path: it carries the trace, not the client address
    // (it spends no client's budget).
    let background = report.map(|call| {
        let traceparent = cx.trace().0.to_string();
        call.for_client(None, Some(traceparent))
    });
    // A session admitted by `Authorization: Bearer` (header mode, API clients) was admitted by
    // that header's token (the engine's rule 1): like the session cookies, the app does not
    // get it unless the deployment opts in.
    let bearer = engine::bearer_token(cx.request.authorization.as_deref()).is_some();
    let delete = if session.is_some() && bearer && !cx.config.forward_session_cookies {
        vec!["authorization".to_owned()]
    } else {
        Vec::new()
    };
    let step = Forward {
        url: format!("{}{}", cx.config.upstream_url, cx.request.target()),
        delete,
        set,
        cookie,
        response: (!cors.is_empty()).then(|| Amend::default().with_cors(cors.clone())),
        background,
    };
    match cx.io.forward(step).await {
        Ok(instruction) => instructions::apply(cx, instruction, session, cors).await,
        Err(()) => {
            let reply = cx.error_reply(EdgeError::UpstreamUnavailable, None);
            cx.respond(reply.with_headers(cors))
        }
    }
}

/// The settings, for flows that act on a session (they cannot without).
pub(crate) async fn required_settings(cx: &mut Exchange) -> Result<Rc<SharedSettings>, EdgeError> {
    cx.settings()
        .await
        .ok_or_else(|| EdgeError::OriginUnavailable("the origin's settings are unavailable".into()))
}
