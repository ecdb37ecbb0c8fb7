//! The revocation blacklist in Workers KV: what a read means for the request, and writes for
//! sessions the edge itself ends (signout, theft, the app's logout, the origin's hook).

use latch_shared::api::blacklist_key;
use latch_shared::SessionError;
use worker::Env;

use crate::config::BlacklistMode;
use crate::isolate::Isolate;
use crate::respond::{EdgeError, Reply};

/// The KV binding.
pub const BINDING: &str = "BLACKLIST";

/// What KV said about a session, reported by the entry: 0 not revoked, 1 revoked, 2 unreadable.
/// `None` lets the request through; a reply refuses it.
pub fn outcome(
    isolate: &mut Isolate,
    session: &str,
    state: u8,
    page_load: bool,
    now_ms: f64,
) -> Option<Reply> {
    let settings = isolate.settings();
    let revoked = match state {
        0 => Some(false),
        1 => Some(true),
        _ => None,
    };
    isolate.record_blacklist(session, revoked, now_ms);
    match revoked {
        Some(false) => None,
        Some(true) => {
            let err = SessionError::unauthorised("session has been revoked");
            match (&settings, page_load) {
                (Some(settings), true) => {
                    Some(crate::navigation::session_ended(settings, &isolate.config))
                }
                _ => Some(EdgeError::Session(err).into_reply(settings.as_deref())),
            }
        }
        None if isolate.config.blacklist == BlacklistMode::FailOpen => {
            worker::console_warn!("latch-edge: blacklist unreadable, failing open");
            None
        }
        None => {
            worker::console_error!("latch-edge: blacklist unreadable, failing closed");
            let err = SessionError::general("the revocation list is unavailable");
            Some(Reply::json(503, err.to_json()))
        }
    }
}

/// Writes a revoked session to KV for `ttl_secs` (at least KV's minimum of 60 s), and marks it
/// revoked in this isolate at once.
pub async fn write(env: &Env, handle: &str, ttl_secs: u64) -> Result<(), String> {
    crate::with_isolate(|isolate| {
        isolate.record_blacklist(handle, Some(true), js_sys::Date::now())
    });
    let kv = env.kv(BINDING).map_err(|err| err.to_string())?;
    kv.put(&blacklist_key(handle), "1")
        .map_err(|err| err.to_string())?
        .expiration_ttl(ttl_secs.max(60))
        .execute()
        .await
        .map_err(|err| err.to_string())
}

/// [`write`], logging a failure: the session is already revoked at the origin, which also
/// delivers the entry, so a failed write here never fails the request.
pub async fn write_logged(env: &Env, handle: &str, ttl_secs: u64) {
    if let Err(err) = write(env, handle, ttl_secs).await {
        worker::console_error!("latch-edge: could not blacklist a revoked session: {err}");
    }
}
