//! The origin's public keys, cached in the isolate and, across the isolates of a location, in the
//! Cache API (the origin's `Cache-Control` bounds it). Refetched when the isolate's cache time
//! runs out, and from the origin itself on an unknown `kid` at most once per cooldown (a rotation
//! no cache has seen yet). With no keys at all the edge fails closed.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use latch_shared::access::Verifier;
use latch_shared::api::paths;
use latch_shared::keys::{Jwks, KeySet};
use latch_shared::SessionError;
use worker::{Cache, Fetch, Response, Url};

use crate::config::EdgeConfig;

struct Cached {
    verifier: Rc<Verifier>,
    fetched_at_ms: f64,
}

thread_local! {
    static KEYS: RefCell<Option<Cached>> = const { RefCell::new(None) };
    static LAST_UNKNOWN_KID_REFETCH_MS: Cell<f64> = const { Cell::new(f64::MIN) };
}

/// The JWKS response: from the Cache API unless `from_origin`, else from the origin (and then
/// stored in the Cache API for the other isolates).
async fn jwks_response(url: &Url, from_origin: bool) -> Result<Response, String> {
    let cache = Cache::default();
    if !from_origin {
        if let Ok(Some(cached)) = cache.get(url.as_str(), false).await {
            return Ok(cached);
        }
    }
    let mut response = Fetch::Url(url.clone()).send().await.map_err(|err| err.to_string())?;
    if response.status_code() != 200 {
        return Err(format!("origin answered {} for the JWKS", response.status_code()));
    }
    if let Ok(copy) = response.cloned() {
        if let Err(err) = cache.put(url.as_str(), copy).await {
            worker::console_warn!("latch-edge: could not cache the JWKS: {err}");
        }
    }
    Ok(response)
}

async fn fetch(config: &EdgeConfig, from_origin: bool) -> Result<Verifier, String> {
    let url = Url::parse(&format!("{}{}", config.origin_url, paths::JWKS))
        .map_err(|err| format!("bad ORIGIN_URL: {err}"))?;
    let mut response = jwks_response(&url, from_origin).await?;
    let jwks: Jwks = response.json().await.map_err(|err| format!("JWKS is not JSON: {err}"))?;
    let keys = KeySet::from_jwks(&jwks).map_err(|err| format!("JWKS refused: {err}"))?;
    if keys.is_empty() {
        return Err("the origin publishes no keys".into());
    }
    Ok(Verifier::new(keys, config.issuer.clone(), config.audience.clone()))
}

async fn refetch(
    config: &EdgeConfig,
    now_ms: f64,
    from_origin: bool,
) -> Result<Rc<Verifier>, SessionError> {
    match fetch(config, from_origin).await {
        Ok(verifier) => {
            let verifier = Rc::new(verifier);
            KEYS.with(|keys| {
                *keys.borrow_mut() =
                    Some(Cached { verifier: verifier.clone(), fetched_at_ms: now_ms })
            });
            Ok(verifier)
        }
        Err(err) => {
            worker::console_warn!("latch-edge: JWKS fetch failed: {err}");
            // Stale keys beat none: tokens they verify were validly signed.
            KEYS.with(|keys| keys.borrow().as_ref().map(|cached| cached.verifier.clone()))
                .ok_or_else(|| {
                    SessionError::general("no signing keys: the origin's JWKS is unreachable")
                })
        }
    }
}

/// The verifier for the current keys.
pub async fn verifier(config: &EdgeConfig, now_ms: f64) -> Result<Rc<Verifier>, SessionError> {
    let fresh = KEYS.with(|keys| {
        keys.borrow().as_ref().and_then(|cached| {
            let age_ms = now_ms - cached.fetched_at_ms;
            (age_ms < config.jwks_cache_secs as f64 * 1000.0).then(|| cached.verifier.clone())
        })
    });
    match fresh {
        Some(verifier) => Ok(verifier),
        None => refetch(config, now_ms, false).await,
    }
}

/// After an unknown `kid`: a fresh verifier if the cooldown allows a refetch.
pub async fn verifier_after_unknown_kid(config: &EdgeConfig, now_ms: f64) -> Option<Rc<Verifier>> {
    let last = LAST_UNKNOWN_KID_REFETCH_MS.with(Cell::get);
    if now_ms - last < config.jwks_refetch_cooldown_secs as f64 * 1000.0 {
        return None;
    }
    LAST_UNKNOWN_KID_REFETCH_MS.with(|cell| cell.set(now_ms));
    refetch(config, now_ms, true).await.ok()
}
