//! The revocation blacklist in Workers KV: what a read means for the request. Reads and writes
//! are steps the entry carries out (`crate::step::Step::ReadBlacklist`, `WriteBlacklist`);
//! `crate::isolate` keeps what KV said, so a session is read at most once per interval.

use latch_shared::SessionError;

use crate::config::BlacklistMode;
use crate::log;

/// What KV's answer means for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Not revoked (or KV unreadable and the deployment fails open).
    Clear,
    /// Revoked: refused like any ended session.
    Revoked(SessionError),
    /// KV unreadable and the deployment fails closed: nothing is known, so nothing is cleared.
    Unavailable(SessionError),
}

/// Reads KV's answer (`None`: KV could not be read).
pub fn verdict(mode: BlacklistMode, revoked: Option<bool>) -> Verdict {
    match revoked {
        Some(false) => Verdict::Clear,
        Some(true) => Verdict::Revoked(revoked_error()),
        None if mode == BlacklistMode::FailOpen => {
            log::warn("blacklist unreadable, failing open");
            Verdict::Clear
        }
        None => {
            log::error("blacklist unreadable, failing closed");
            Verdict::Unavailable(SessionError::general("the revocation list is unavailable"))
        }
    }
}

/// The error of a request whose session has been revoked.
pub fn revoked_error() -> SessionError {
    SessionError::unauthorised("session has been revoked")
}
