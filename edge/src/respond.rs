//! The edge's own answers: one plain [`Reply`] type for everything the edge says itself (the JS
//! entry turns it into a `Response` without calling back into WASM), and one [`EdgeError`] with
//! one conversion to a reply.

use latch_shared::error::{codes, error_body};
use latch_shared::protocol::{ResponseHeader, EXPOSED_HEADERS, SDK_REQUEST_HEADERS};
use latch_shared::sdk::{Dialect, ACCESS_TOKEN_HEADER};
use latch_shared::settings::SharedSettings;
use latch_shared::SessionError;
use serde::Serialize;

use crate::config::EdgeConfig;

/// A response the edge writes itself, as plain data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn json(status: u16, body: String) -> Reply {
        Reply { status, headers: vec![("content-type".into(), "application/json".into())], body }
    }

    pub fn empty(status: u16) -> Reply {
        Reply { status, headers: Vec::new(), body: String::new() }
    }

    /// Adds headers (never replaces: a response carries several `Set-Cookie`s).
    pub fn with(mut self, headers: &[ResponseHeader]) -> Reply {
        self.headers.extend(headers.iter().map(|h| (h.name.clone(), h.value.clone())));
        self
    }

    /// Adds plain headers (the CORS ones).
    pub fn with_headers(mut self, headers: Vec<(String, String)>) -> Reply {
        self.headers.extend(headers);
        self
    }

    /// Responses that hand over tokens (cookies, or header mode's headers) must never be stored
    /// by a cache.
    pub fn no_store_if_setting_cookies(mut self) -> Reply {
        let sets_cookies = self.headers.iter().any(|(name, _)| hands_over_tokens(name));
        let has_cache_control = self.headers.iter().any(|(name, _)| name == "cache-control");
        if sets_cookies && !has_cache_control {
            self.headers.push(("cache-control".into(), "no-store".into()));
        }
        self
    }

    /// A session error in the SDK generation the client speaks: the status (the deployment's
    /// for 4.x, 401 for the current SDKs), the JSON body, and cleared cookies and tokens where
    /// the error ends the session.
    pub fn session_error(settings: &SharedSettings, dialect: Dialect, err: &SessionError) -> Reply {
        let status = dialect.status(err.kind(), settings.session_expired_status);
        let reply = Reply::json(status, dialect.error_body(err));
        if err.kind().clears_cookies() {
            reply.with(&settings.cookies.clear_headers()).no_store_if_setting_cookies()
        } else {
            reply
        }
    }
}

/// Everything that can go wrong at the edge, with how it is answered.
#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    /// The session is not acceptable: the seed's errors, with the deployment's status.
    #[error("{0}")]
    Session(SessionError),
    /// The client sent something the edge refuses (bad JSON, too large, bad path).
    #[error("{message}")]
    BadRequest { status: u16, code: &'static str, message: String },
    /// The origin answered a client error that is not a session error (a payload over its
    /// limit, a bad value): its status and body go back unchanged.
    #[error("the origin refused the request with {status}")]
    Refused { status: u16, body: String, retry_after: Option<String> },
    /// The origin (or its settings) could not be reached: nothing about the session is known,
    /// so nothing is cleared and nobody is logged out.
    #[error("origin unavailable: {0}")]
    OriginUnavailable(String),
    /// The app behind the edge could not be reached.
    #[error("the app is unreachable")]
    UpstreamUnavailable,
    /// A bug or a bad configuration: logged in full, answered generically.
    #[error("internal: {0}")]
    Internal(String),
}

impl From<SessionError> for EdgeError {
    fn from(err: SessionError) -> Self {
        EdgeError::Session(err)
    }
}

impl From<worker::Error> for EdgeError {
    fn from(err: worker::Error) -> Self {
        EdgeError::Internal(err.to_string())
    }
}

impl EdgeError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        EdgeError::BadRequest { status: 400, code: codes::BAD_REQUEST, message: message.into() }
    }

    pub fn too_large(message: impl Into<String>) -> Self {
        EdgeError::BadRequest {
            status: 413,
            code: codes::PAYLOAD_TOO_LARGE,
            message: message.into(),
        }
    }

    /// The one conversion to what the client sees. Internal details go to the log only, under
    /// the request's id.
    pub fn into_reply(
        self,
        settings: Option<&SharedSettings>,
        dialect: Dialect,
        request_id: &str,
    ) -> Reply {
        let request = format!(" (request {request_id})");
        match self {
            EdgeError::Session(err) => match settings {
                Some(settings) => Reply::session_error(settings, dialect, &err),
                None => Reply::json(503, unavailable_body()),
            },
            EdgeError::BadRequest { status, code, message } => {
                Reply::json(status, error_body(code, &message))
            }
            EdgeError::Refused { status, body, retry_after } => {
                let mut reply = Reply::json(status, body);
                if let Some(seconds) = retry_after {
                    reply.headers.push(("retry-after".into(), seconds));
                }
                reply
            }
            EdgeError::OriginUnavailable(detail) => {
                worker::console_error!("latch-edge: origin unavailable{request}: {detail}");
                Reply::json(503, unavailable_body())
            }
            EdgeError::UpstreamUnavailable => {
                Reply::json(502, SessionError::general("the app is unreachable").to_json())
            }
            EdgeError::Internal(detail) => {
                worker::console_error!("latch-edge: internal error{request}: {detail}");
                internal_error()
            }
        }
    }
}

fn unavailable_body() -> String {
    SessionError::general("the session service is unavailable; try again").to_json()
}

/// The generic 500: what a client sees of a bug, a bad configuration or a crashed instance.
pub fn internal_error() -> Reply {
    Reply::json(500, SessionError::general("edge error").to_json())
}

/// Whether a response header hands a session's tokens to the client (a cookie, or header mode's
/// access token, which always travels with its refresh token).
pub fn hands_over_tokens(name: &str) -> bool {
    name == "set-cookie" || name == ACCESS_TOKEN_HEADER
}

/// CORS headers for an allowed cross-origin page: credentials, and the SDK's headers exposed.
pub fn cors_headers(config: &EdgeConfig, origin: Option<&str>) -> Vec<(String, String)> {
    match origin.filter(|origin| config.allows_origin(origin)) {
        Some(origin) => vec![
            ("access-control-allow-origin".into(), origin.to_owned()),
            ("access-control-allow-credentials".into(), "true".into()),
            ("access-control-expose-headers".into(), EXPOSED_HEADERS.into()),
            ("vary".into(), "Origin".into()),
        ],
        None => Vec::new(),
    }
}

/// Answers a CORS preflight: allowed origins get the SDK's headers and credentials; others get
/// a 403 without any CORS header.
pub fn preflight(
    config: &EdgeConfig,
    origin: Option<&str>,
    requested_method: Option<&str>,
    requested_headers: Option<&str>,
) -> Reply {
    let Some(origin) = origin.filter(|origin| config.allows_origin(origin)) else {
        return Reply::json(403, error_body(codes::FORBIDDEN, "origin not allowed"));
    };
    let is_token = |s: &str| {
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
    };
    let mut allowed = SDK_REQUEST_HEADERS.to_owned();
    for header in requested_headers.unwrap_or_default().split(',').map(str::trim) {
        if is_token(header) && !allowed.split(", ").any(|a| a.eq_ignore_ascii_case(header)) {
            allowed.push_str(", ");
            allowed.push_str(header);
        }
    }
    // Any method the page asks for: WebDAV and custom methods pass the edge like the usual ones.
    let mut methods = String::from("GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS");
    if let Some(method) = requested_method.filter(|m| is_token(m)) {
        if !methods.split(", ").any(|m| m == method) {
            methods.push_str(", ");
            methods.push_str(method);
        }
    }
    let mut reply = Reply::empty(204);
    reply.headers = vec![
        ("access-control-allow-origin".into(), origin.to_owned()),
        ("access-control-allow-credentials".into(), "true".into()),
        ("access-control-allow-methods".into(), methods),
        ("access-control-allow-headers".into(), allowed),
        ("access-control-max-age".into(), "600".into()),
        ("vary".into(), "Origin".into()),
    ];
    reply
}
