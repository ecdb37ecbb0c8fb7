//! The four session errors of the seed library, their HTTP statuses and the one JSON body
//! shape every Latch component answers with.

use serde::{Deserialize, Serialize};

/// Status that tells the frontend SDK "session expired, try refreshing": 440, as in the seed's
/// docs. supertokens-website 4.2 defaults to 401, so pages pass `sessionExpiredStatusCode: 440`
/// to its `init` (or the deployment sets its status to 401).
pub const DEFAULT_SESSION_EXPIRED_STATUS: u16 = 440;

/// What went wrong, in the seed library's four categories.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorKind {
    /// Something failed that the client cannot fix (database down, bad configuration, a bug).
    GeneralError,
    /// The session is over: revoked, expired, or never existed. The user must log in again.
    Unauthorised,
    /// The access token is missing, invalid or expired, or the anti-CSRF check failed:
    /// the client should call the refresh endpoint and retry.
    TryRefreshToken,
    /// A refresh token was reused after its successor was in use: the session has been revoked.
    TokenTheftDetected,
}

impl ErrorKind {
    /// HTTP status for this error, with the deployment's session-expired status (440 by default).
    pub fn status(self, session_expired_status: u16) -> u16 {
        match self {
            ErrorKind::GeneralError => 500,
            ErrorKind::Unauthorised
            | ErrorKind::TryRefreshToken
            | ErrorKind::TokenTheftDetected => session_expired_status,
        }
    }

    /// Whether the browser's session cookies must be cleared when answering with this error.
    /// TRY_REFRESH_TOKEN keeps them: the refresh token is still needed to recover.
    pub fn clears_cookies(self) -> bool {
        matches!(self, ErrorKind::Unauthorised | ErrorKind::TokenTheftDetected)
    }

    /// The wire name, e.g. `TRY_REFRESH_TOKEN`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::GeneralError => "GENERAL_ERROR",
            ErrorKind::Unauthorised => "UNAUTHORISED",
            ErrorKind::TryRefreshToken => "TRY_REFRESH_TOKEN",
            ErrorKind::TokenTheftDetected => "TOKEN_THEFT_DETECTED",
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who was affected when a refresh token was reused: returned with TOKEN_THEFT_DETECTED so the
/// app can alert the user or revoke their other sessions too.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TheftDetails {
    pub user_id: crate::user_id::UserId,
    pub session_handle: String,
}

/// A session error: its kind, a human-readable reason, and theft details where they apply.
///
/// The message never contains a token or a secret: it is safe to log and to send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("{error}: {message}")]
pub struct SessionError {
    pub error: ErrorKind,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub theft: Option<TheftDetails>,
}

impl SessionError {
    pub fn new(error: ErrorKind, message: impl Into<String>) -> Self {
        SessionError { error, message: message.into(), theft: None }
    }

    pub fn general(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::GeneralError, message)
    }

    pub fn unauthorised(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unauthorised, message)
    }

    pub fn try_refresh(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::TryRefreshToken, message)
    }

    pub fn theft(details: TheftDetails) -> Self {
        SessionError {
            error: ErrorKind::TokenTheftDetected,
            message: "refresh token reused after its successor was in use; the session was revoked"
                .into(),
            theft: Some(details),
        }
    }

    pub fn kind(&self) -> ErrorKind {
        self.error
    }

    /// The JSON body to send: `{"error":"TRY_REFRESH_TOKEN","message":"…"}`, with `theft` when set.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a SessionError always serialises")
    }
}

/// Codes of the errors that are about the request rather than the session.
pub mod codes {
    pub const BAD_REQUEST: &str = "BAD_REQUEST";
    pub const UNAUTHENTICATED: &str = "UNAUTHENTICATED";
    pub const FORBIDDEN: &str = "FORBIDDEN";
    pub const NOT_FOUND: &str = "NOT_FOUND";
    pub const METHOD_NOT_ALLOWED: &str = "METHOD_NOT_ALLOWED";
    pub const PAYLOAD_TOO_LARGE: &str = "PAYLOAD_TOO_LARGE";
    pub const HEADER_TOO_LARGE: &str = "HEADER_TOO_LARGE";
    /// Too many requests: retry after the `Retry-After` header's seconds.
    pub const RATE_LIMITED: &str = "RATE_LIMITED";
}

/// Every error answer's body: a [`SessionError`] (`error` one of its four kinds, `theft` with
/// TOKEN_THEFT_DETECTED) or an error about the request itself (`error` a code from [`codes`]).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// UNAUTHORISED, TRY_REFRESH_TOKEN, TOKEN_THEFT_DETECTED or GENERAL_ERROR for session
    /// errors; BAD_REQUEST, UNAUTHENTICATED, FORBIDDEN, NOT_FOUND, METHOD_NOT_ALLOWED,
    /// PAYLOAD_TOO_LARGE, HEADER_TOO_LARGE or RATE_LIMITED for the request's own.
    pub error: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub theft: Option<TheftDetails>,
}

/// The body of an error about the request itself (a code from [`codes`]).
pub fn error_body(code: &str, message: &str) -> String {
    let body = ErrorBody { error: code.to_owned(), message: message.to_owned(), theft: None };
    serde_json::to_string(&body).expect("an error body always serialises")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_the_seed() {
        assert_eq!(ErrorKind::GeneralError.status(440), 500);
        assert_eq!(ErrorKind::Unauthorised.status(440), 440);
        assert_eq!(ErrorKind::TryRefreshToken.status(401), 401);
        assert_eq!(ErrorKind::TokenTheftDetected.status(440), 440);
    }

    #[test]
    fn only_terminal_errors_clear_cookies() {
        assert!(!ErrorKind::TryRefreshToken.clears_cookies());
        assert!(!ErrorKind::GeneralError.clears_cookies());
        assert!(ErrorKind::Unauthorised.clears_cookies());
        assert!(ErrorKind::TokenTheftDetected.clears_cookies());
    }

    #[test]
    fn json_body_shape_round_trips() {
        let err = SessionError::theft(TheftDetails {
            user_id: crate::user_id::UserId::Text("alice".into()),
            session_handle: "h1".into(),
        });
        let json = err.to_json();
        assert!(json.starts_with(r#"{"error":"TOKEN_THEFT_DETECTED","message":"#), "{json}");
        assert!(json.contains(r#""theft":{"user_id":"alice","session_handle":"h1"}"#), "{json}");
        let back: SessionError = serde_json::from_str(&json).unwrap();
        assert_eq!(back, err);
        let plain = SessionError::try_refresh("expired").to_json();
        assert_eq!(plain, r#"{"error":"TRY_REFRESH_TOKEN","message":"expired"}"#);
        assert_eq!(error_body(codes::NOT_FOUND, "no"), r#"{"error":"NOT_FOUND","message":"no"}"#);
    }
}
