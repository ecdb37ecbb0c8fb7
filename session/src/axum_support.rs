//! axum glue: [`Session`] as an extractor, its rejection, and the header sets as response parts.

use axum_core::extract::{FromRef, FromRequestParts};
use axum_core::response::{IntoResponse, IntoResponseParts, Response, ResponseParts};
use http::request::Parts;
use http::{HeaderName, HeaderValue, StatusCode};
use latch_shared::protocol::ResponseHeader;
use latch_shared::sdk::{Dialect, AUTH_MODE_HEADER};

use crate::{ClearSession, Latch, Session, SessionError, SessionHeaders, Verification};

/// Extracts the verified session, with anti-CSRF protection on state-changing methods
/// (`getSession(req, res, true)` for them, `false` for GET, HEAD, OPTIONS and TRACE, so that
/// plain navigations work). For the seed's per-call flag, call [`Latch::get_session`].
impl<S> FromRequestParts<S> for Session
where
    Latch: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = SessionRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, SessionRejection> {
        let latch = Latch::from_ref(state);
        let csrf = latch_shared::csrf::method_needs_anti_csrf(parts.method.as_str());
        match latch.get_session(&parts.headers, &parts.method, csrf).await {
            Ok(session) => Ok(session),
            Err(error) => {
                let auth_mode = parts.headers.get(AUTH_MODE_HEADER).and_then(|v| v.to_str().ok());
                Err(latch.reject_in(error, Dialect::of_request(auth_mode)).await)
            }
        }
    }
}

impl Latch {
    /// The answer to a session error, as the deployment configured it: its session-expired
    /// status (440 unless set otherwise at the origin), the JSON body, and, without an edge,
    /// the cookies cleared where the seed clears them (UNAUTHORISED, TOKEN_THEFT_DETECTED).
    pub async fn reject(&self, error: SessionError) -> SessionRejection {
        self.reject_in(error, Dialect::Website4).await
    }

    /// [`Latch::reject`], answered in the SDK generation the request speaks: today's SDKs
    /// (`st-auth-mode`) get 401 and supertokens-node's messages, on which they refresh.
    pub async fn reject_in(&self, error: SessionError, dialect: Dialect) -> SessionRejection {
        let status = self.session_expired_status().await;
        let clear = match self.0.verification {
            Verification::Direct if error.kind().clears_cookies() => {
                self.clear_session_headers().await.map(|clear| clear.0).unwrap_or_default()
            }
            _ => Vec::new(),
        };
        SessionRejection { error, status, clear, dialect }
    }
}

/// A session error with the status and headers to answer it with (see [`Latch::reject`]).
#[derive(Debug, Clone)]
pub struct SessionRejection {
    pub error: SessionError,
    /// The status for UNAUTHORISED, TRY_REFRESH_TOKEN and TOKEN_THEFT_DETECTED.
    pub status: u16,
    pub clear: Vec<ResponseHeader>,
    /// Who is answered: 4.x (the status above) or today's SDKs (401).
    pub dialect: Dialect,
}

impl IntoResponse for SessionRejection {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.dialect.status(self.error.kind(), self.status))
            .unwrap_or(StatusCode::UNAUTHORIZED);
        let mut response = (status, self.dialect.error_body(&self.error)).into_response();
        response
            .headers_mut()
            .insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        append(response.headers_mut(), self.clear);
        response
    }
}

/// For `?` in handlers: the seed's default statuses (440, or 500 for GENERAL_ERROR);
/// [`Latch::reject`] applies the deployment's.
impl From<SessionError> for SessionRejection {
    fn from(error: SessionError) -> Self {
        SessionRejection {
            error,
            status: latch_shared::DEFAULT_SESSION_EXPIRED_STATUS,
            clear: Vec::new(),
            dialect: Dialect::Website4,
        }
    }
}

fn append(headers: &mut http::HeaderMap, add: Vec<ResponseHeader>) {
    for header in add {
        if let (Ok(name), Ok(value)) =
            (HeaderName::try_from(header.name), HeaderValue::try_from(header.value))
        {
            headers.append(name, value);
        }
    }
}

impl IntoResponseParts for ClearSession {
    type Error = std::convert::Infallible;

    fn into_response_parts(self, mut res: ResponseParts) -> Result<ResponseParts, Self::Error> {
        append(res.headers_mut(), self.0);
        Ok(res)
    }
}

impl IntoResponseParts for SessionHeaders {
    type Error = std::convert::Infallible;

    fn into_response_parts(self, mut res: ResponseParts) -> Result<ResponseParts, Self::Error> {
        append(res.headers_mut(), self.0);
        Ok(res)
    }
}
