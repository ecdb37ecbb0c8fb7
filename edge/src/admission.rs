//! Whether a request's session is admitted, on the shared request engine's rules
//! (`latch_shared::engine`) with this isolate's caches, and how a refusal is answered. Plain
//! data, no I/O: the request flow (`crate::flow`) asks, and carries out the steps.

use chrono::{DateTime, Utc};
use latch_shared::access::{VerifiedAccessToken, VerifyError};
use latch_shared::assertion::CsrfOutcome;
use latch_shared::engine::{self, Access, RequestFacts};
use latch_shared::error::codes;
use latch_shared::protocol::MAX_COOKIE_HEADER_LEN;
use latch_shared::settings::SharedSettings;
use latch_shared::SessionError;

use crate::config::EdgeConfig;
use crate::isolate::Isolate;
use crate::navigation;
use crate::respond::{EdgeError, Reply};
use crate::step::Request;

/// Why a request's session was not admitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The engine's answer.
    Session(SessionError),
    /// The token names a key this isolate does not have, and a refetch is allowed: load the
    /// origin's keys and check again.
    NeedKeys,
    /// The isolate holds no keys (dropped as too stale while this request waited on a load):
    /// nothing can be checked, and nothing is known about the session.
    NoKeys,
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

/// What a session check is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Acting as the session: every rule, anti-CSRF included.
    Act,
    /// Ending a session the request displaces (a new login over it): a valid token is enough,
    /// since nothing is done on its behalf.
    End,
}

/// The engine's check (`latch_shared::engine`) with this isolate's cache of verified
/// signatures and, on an unknown key, a refetch of the origin's keys at most once per cooldown.
pub fn authenticate(
    isolate: &mut Isolate,
    facts: &RequestFacts<'_>,
    purpose: Purpose,
    now: DateTime<Utc>,
) -> Result<Admitted, Refusal> {
    let credential = engine::credential(facts).map_err(Refusal::Session)?;
    let token = credential.token().to_owned();
    let Some(loaded) = isolate.loaded.as_ref() else { return Err(Refusal::NoKeys) };
    let policy = &loaded.settings.anti_csrf;
    let check = match purpose {
        Purpose::Act => policy.check_for(facts.path),
        Purpose::End => engine::CsrfCheck::Never,
    };
    let csrf_enabled = policy.enabled;
    let facts = &facts.under(policy);
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

/// How a refused session is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// With this reply.
    Respond(Reply),
    /// An optional route: forwarded without identity.
    Anonymous,
}

/// A refused session. A browser loading a page gets a page (`crate::navigation`): on an
/// optional route only the refresh page, when refreshing can help. Otherwise an optional route
/// goes on without identity, and any other answers the seed's JSON error.
pub fn refuse(
    settings: &SharedSettings,
    config: &EdgeConfig,
    err: &SessionError,
    request: &Request,
    page_load: bool,
    access: Access,
) -> Refused {
    let cookie = request.cookie.as_deref();
    let page = page_load.then(|| request.target()).and_then(|target| match access {
        Access::Optional => navigation::refresh_if_possible(settings, err, cookie, &target),
        _ => navigation::refusal(settings, config, err, cookie, &target),
    });
    match (page, access) {
        (Some(page), _) => Refused::Respond(page),
        (None, Access::Optional) => Refused::Anonymous,
        (None, _) => Refused::Respond(Reply::session_error(settings, request.dialect, err)),
    }
}

/// The headers the edge reads are bounded: a huge `Cookie` or `Authorization` gets a clear 431
/// instead of being parsed.
pub fn check_header_sizes(request: &Request, max_header_bytes: usize) -> Result<(), EdgeError> {
    let too_large =
        request.cookie.as_ref().is_some_and(|cookie| cookie.len() > MAX_COOKIE_HEADER_LEN)
            || [&request.authorization, &request.anti_csrf]
                .into_iter()
                .flatten()
                .any(|value| value.len() > max_header_bytes);
    if too_large {
        return Err(EdgeError::BadRequest {
            status: 431,
            code: codes::HEADER_TOO_LARGE,
            message: "a request header is too large".into(),
        });
    }
    Ok(())
}
