//! Authenticating a request, without calling the origin: the access token (cookie or bearer),
//! the `sIdRefreshToken` presence check of the seed, anti-CSRF, and the KV blacklist.

use std::cell::RefCell;
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use latch_shared::access::{VerifiedAccessToken, VerifyError, DEFAULT_LEEWAY};
use latch_shared::api::blacklist_key;
use latch_shared::csrf::{anti_csrf_matches, method_needs_anti_csrf};
use latch_shared::identity::Identity;
use latch_shared::protocol::{SessionCookies, ANTI_CSRF_HEADER};
use latch_shared::SessionError;
use worker::{Env, Request};

use crate::config::{BlacklistMode, EdgeConfig};
use crate::keys;

/// Tokens whose signature already checked out in this isolate. A repeat request with the same
/// token skips the signature (the expensive part) but not expiry, anti-CSRF or the blacklist.
const MAX_CACHED_TOKENS: usize = 4096;

thread_local! {
    static VERIFIED: RefCell<HashMap<String, VerifiedAccessToken>> = RefCell::new(HashMap::new());
}

/// A request's verified session.
#[derive(Debug, Clone)]
pub struct Session {
    pub token: VerifiedAccessToken,
}

impl Session {
    pub fn identity(&self) -> Identity {
        Identity {
            user_id: self.token.claims.sub.clone(),
            session_handle: self.token.claims.sid.clone(),
            jwt_payload: self.token.claims.pld.clone(),
        }
    }

    pub fn handle(&self) -> &str {
        &self.token.claims.sid
    }
}

pub fn request_cookies(req: &Request) -> Result<SessionCookies, SessionError> {
    let header = req.headers().get("cookie").ok().flatten().unwrap_or_default();
    SessionCookies::from_cookie_header(&header)
        .map_err(|err| SessionError::unauthorised(err.to_string()))
}

async fn verify_token(
    config: &EdgeConfig,
    token: &str,
    now: DateTime<Utc>,
) -> Result<VerifiedAccessToken, SessionError> {
    let cached = VERIFIED.with(|cache| cache.borrow().get(token).cloned());
    if let Some(verified) = cached {
        if now <= verified.expires_at + DEFAULT_LEEWAY {
            return Ok(verified);
        }
        VERIFIED.with(|cache| cache.borrow_mut().remove(token));
        return Err(VerifyError::Expired.into());
    }
    let now_ms = now.timestamp_millis() as f64;
    let verifier = keys::verifier(config, now_ms).await?;
    let verified = match verifier.verify(token, now) {
        Err(VerifyError::UnknownKey { .. }) => {
            match keys::verifier_after_unknown_kid(config, now_ms).await {
                Some(fresh) => fresh.verify(token, now),
                None => Err(VerifyError::UnknownKey { kid: String::new() }),
            }
        }
        other => other,
    }
    .map_err(SessionError::from)?;
    VERIFIED.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.len() >= MAX_CACHED_TOKENS {
            cache.clear();
        }
        cache.insert(token.to_owned(), verified.clone());
    });
    Ok(verified)
}

/// Verifies the request's session. `enforce_anti_csrf` applies the check to state-changing
/// methods of cookie-authenticated requests (a bearer token cannot be sent by a forged form).
pub async fn authenticate(
    req: &Request,
    env: &Env,
    config: &EdgeConfig,
    now: DateTime<Utc>,
) -> Result<Session, SessionError> {
    let bearer = req
        .headers()
        .get("authorization")
        .ok()
        .flatten()
        .and_then(|value| value.strip_prefix("Bearer ").map(str::to_owned));
    let (token, via_cookie) = match bearer {
        Some(token) => (token, false),
        None => {
            let cookies = request_cookies(req)?;
            // As the seed: without the id-refresh cookie there is no session to refresh.
            if cookies.id_refresh_token.is_none() {
                return Err(SessionError::unauthorised("no session: sign in"));
            }
            let token = cookies
                .access_token
                .ok_or_else(|| SessionError::try_refresh("access token missing in cookies"))?;
            (token, true)
        }
    };
    let verified = verify_token(config, &token, now).await?;

    if via_cookie && config.anti_csrf && method_needs_anti_csrf(req.method().as_ref()) {
        let presented = req.headers().get(ANTI_CSRF_HEADER).ok().flatten();
        let expected = verified.claims.csrf.as_deref().unwrap_or_default();
        if expected.is_empty() || !anti_csrf_matches(expected, presented.as_deref()) {
            return Err(SessionError::try_refresh("anti-csrf check failed"));
        }
    }

    if config.blacklist != BlacklistMode::Off {
        let lookup = match env.kv("BLACKLIST") {
            Ok(kv) => {
                kv.get(&blacklist_key(&verified.claims.sid)).text().await.map_err(|e| e.to_string())
            }
            Err(err) => Err(err.to_string()),
        };
        match lookup {
            Ok(Some(_)) => return Err(SessionError::unauthorised("session has been revoked")),
            Ok(None) => {}
            Err(err) if config.blacklist == BlacklistMode::FailClosed => {
                worker::console_error!("latch-edge: blacklist unreadable: {err}");
                return Err(SessionError::general("the revocation list is unavailable"));
            }
            Err(err) => {
                worker::console_warn!("latch-edge: blacklist unreadable, failing open: {err}")
            }
        }
    }
    Ok(Session { token: verified })
}
