//! The Session object for Rust app backends (cargo feature `app`), after the seed's page:
//! `get_session` verifies a request, `get_user_id` and `get_jwt_payload` cost nothing, and
//! `get_session_info`, `update_session_info` and `revoke_session` each cost one origin call
//! (one database operation).
//!
//! Two ways to verify:
//! - [`Verification::BehindEdge`]: the edge already verified the token; the app checks the
//!   edge's HMAC proof on the identity headers. No network, no token parsing.
//! - [`Verification::Direct`]: no edge in front; the app verifies the access token itself on
//!   the shared request engine, with the origin's published settings and keys (fetched once,
//!   cached, refetched on an unknown `kid`, kept while the origin is unreachable).
//!
//! With the `axum` feature, [`Session`] is an extractor and [`SessionError`] a response.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{HeaderMap, Method};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::access::{VerifiedAccessToken, Verifier, VerifyError};
use crate::api::{
    paths, CreateSessionRequest, IssuedSession, RevokeResponse, SessionHandles, SessionInfo,
};
use crate::engine::{self, AntiCsrfPolicy, RequestFacts};
use crate::identity::{Identity, LOGOUT_HEADER};
use crate::keys::KeySet;
use crate::protocol::{ResponseHeader, ANTI_CSRF_HEADER};
use crate::settings::SharedSettings;
use crate::{ErrorKind, SessionError};

/// How requests are verified.
#[derive(Clone)]
pub enum Verification {
    /// Behind the Latch edge: check the `x-latch-proof` HMAC with the shared app secret.
    BehindEdge { app_secret: Vec<u8> },
    /// No edge: verify access tokens with the origin's published settings and keys
    /// (`/.well-known/latch-settings.json`: issuer, audience, cookies, anti-CSRF rules).
    Direct,
}

const SETTINGS_CACHE: Duration = Duration::from_secs(300);
const KEY_REFETCH_COOLDOWN: Duration = Duration::from_secs(10);

/// The origin's settings and a verifier for its keys, as fetched.
struct Published {
    settings: SharedSettings,
    verifier: Verifier,
}

struct Inner {
    origin_url: String,
    api_key: String,
    verification: Verification,
    http: reqwest::Client,
    published: Mutex<Option<(Arc<Published>, Instant)>>,
    last_refetch: Mutex<Option<Instant>>,
}

/// A handle on Latch for an app backend: verifies requests and calls the origin's API with the
/// app's API key. Cheap to clone.
#[derive(Clone)]
pub struct Latch(Arc<Inner>);

fn general(err: impl std::fmt::Display) -> SessionError {
    SessionError::general(format!("the session service failed: {err}"))
}

impl Latch {
    pub fn new(
        origin_url: impl Into<String>,
        api_key: impl Into<String>,
        verification: Verification,
    ) -> Self {
        Latch(Arc::new(Inner {
            origin_url: origin_url.into().trim_end_matches('/').to_owned(),
            api_key: api_key.into(),
            verification,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("the HTTP client builds"),
            published: Mutex::new(None),
            last_refetch: Mutex::new(None),
        }))
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> Result<T, SessionError> {
        let mut request = self
            .0
            .http
            .request(method, format!("{}{path}", self.0.origin_url))
            .bearer_auth(&self.0.api_key);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(general)?;
        let status = response.status();
        let text = response.text().await.map_err(general)?;
        if status.is_success() {
            return serde_json::from_str(&text).map_err(general);
        }
        Err(serde_json::from_str::<SessionError>(&text)
            .ok()
            .filter(|err| err.kind() != ErrorKind::GeneralError || status.is_server_error())
            .unwrap_or_else(|| general(format!("origin answered {status}"))))
    }

    /// The seed's `getSession`: verifies the request. `enable_csrf_protection` requires the
    /// `anti-csrf` header whatever the method, as in the seed (direct mode; behind the edge,
    /// the edge enforces its rules).
    pub async fn get_session(
        &self,
        headers: &HeaderMap,
        method: &Method,
        enable_csrf_protection: bool,
    ) -> Result<Session, SessionError> {
        let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
        let identity = match &self.0.verification {
            Verification::BehindEdge { app_secret } => {
                let now = chrono::Utc::now().timestamp();
                Identity::from_headers(header, app_secret, now)
                    .map_err(|err| SessionError::unauthorised(err.to_string()))?
            }
            Verification::Direct => {
                self.verify_directly(headers, method, enable_csrf_protection).await?
            }
        };
        Ok(Session {
            latch: self.clone(),
            user_id: identity.user_id,
            handle: identity.session_handle,
            jwt_payload: identity.jwt_payload,
        })
    }

    /// The origin's settings and keys: cached for a while, refetched on demand; when the origin
    /// cannot be reached, the last ones stay in use (tokens they verify were validly signed).
    async fn published(&self, refetch: bool) -> Result<Arc<Published>, SessionError> {
        let cached = self.0.published.lock().expect("not poisoned").clone();
        if let Some((published, at)) = &cached {
            if !refetch && at.elapsed() < SETTINGS_CACHE {
                return Ok(published.clone());
            }
        }
        let fetched = async {
            let settings: SharedSettings =
                self.call(reqwest::Method::GET, paths::SETTINGS, None::<&()>).await?;
            settings.validate().map_err(general)?;
            let keys = KeySet::from_jwks(&settings.jwks).map_err(general)?;
            let verifier = Verifier::new(keys, settings.issuer.clone(), settings.audience.clone());
            Ok::<_, SessionError>(Arc::new(Published { settings, verifier }))
        }
        .await;
        match (fetched, cached) {
            (Ok(published), _) => {
                *self.0.published.lock().expect("not poisoned") =
                    Some((published.clone(), Instant::now()));
                Ok(published)
            }
            (Err(_), Some((stale, _))) => Ok(stale),
            (Err(err), None) => Err(err),
        }
    }

    fn refetch_allowed(&self) -> bool {
        let mut last = self.0.last_refetch.lock().expect("not poisoned");
        let allowed = last.is_none_or(|at| at.elapsed() >= KEY_REFETCH_COOLDOWN);
        if allowed {
            *last = Some(Instant::now());
        }
        allowed
    }

    async fn verify_directly(
        &self,
        headers: &HeaderMap,
        method: &Method,
        enable_csrf_protection: bool,
    ) -> Result<Identity, SessionError> {
        let now = chrono::Utc::now();
        let request = RequestHeaders::read(headers, method);
        let mut published = self.published(false).await?;
        let mut unknown_key = false;
        let mut verified = check_request(
            &request.facts(),
            &published.settings.anti_csrf,
            enable_csrf_protection,
            now,
            |token| {
                let result = published.verifier.verify(token, now);
                unknown_key = matches!(result, Err(VerifyError::UnknownKey { .. }));
                result
            },
        );
        if unknown_key && self.refetch_allowed() {
            published = self.published(true).await?;
            verified = check_request(
                &request.facts(),
                &published.settings.anti_csrf,
                enable_csrf_protection,
                now,
                |token| published.verifier.verify(token, now),
            );
        }
        let verified = verified?;
        Ok(Identity {
            user_id: verified.claims.sub,
            session_handle: verified.claims.sid,
            jwt_payload: verified.claims.pld,
        })
    }

    /// Creates a session (for apps not behind the edge; behind it, answer with the
    /// `x-latch-login` header instead). The result carries the headers to send.
    pub async fn create_new_session(
        &self,
        user_id: &str,
        jwt_payload: Option<Value>,
        session_info: Option<Value>,
    ) -> Result<IssuedSession, SessionError> {
        let request =
            CreateSessionRequest { user_id: user_id.to_owned(), jwt_payload, session_info };
        self.call(reqwest::Method::POST, paths::SESSIONS, Some(&request)).await
    }

    pub async fn get_session_info(&self, handle: &str) -> Result<Option<Value>, SessionError> {
        let info: SessionInfo =
            self.call(reqwest::Method::GET, &paths::session_info(handle), None::<&()>).await?;
        Ok(info.session_info)
    }

    /// Overwrites the session info, as the seed does.
    pub async fn update_session_info(
        &self,
        handle: &str,
        info: Option<Value>,
    ) -> Result<(), SessionError> {
        let body = SessionInfo { session_info: info };
        let _: SessionInfo =
            self.call(reqwest::Method::PUT, &paths::session_info(handle), Some(&body)).await?;
        Ok(())
    }

    /// Revokes one session; false if there was none. Blacklisted at the edge by the origin.
    pub async fn revoke_session_using_session_handle(
        &self,
        handle: &str,
    ) -> Result<bool, SessionError> {
        let revoked: RevokeResponse =
            self.call(reqwest::Method::DELETE, &paths::session(handle), None::<&()>).await?;
        Ok(revoked.revoked)
    }

    /// Revokes every session of a user at once; returns their handles.
    pub async fn revoke_all_sessions_for_user(
        &self,
        user_id: &str,
    ) -> Result<Vec<String>, SessionError> {
        let path = paths::user_sessions(user_id);
        let handles: SessionHandles =
            self.call(reqwest::Method::DELETE, &path, None::<&()>).await?;
        Ok(handles.handles)
    }

    pub async fn get_all_session_handles_for_user(
        &self,
        user_id: &str,
    ) -> Result<Vec<String>, SessionError> {
        let path = paths::user_sessions(user_id);
        let handles: SessionHandles = self.call(reqwest::Method::GET, &path, None::<&()>).await?;
        Ok(handles.handles)
    }

    async fn clear_headers(&self) -> Result<Vec<ResponseHeader>, SessionError> {
        Ok(match &self.0.verification {
            // The edge owns the cookies: it clears them (and blacklists) on this instruction.
            Verification::BehindEdge { .. } => {
                vec![ResponseHeader { name: LOGOUT_HEADER.into(), value: "1".into() }]
            }
            Verification::Direct => self.published(false).await?.settings.cookies.clear_headers(),
        })
    }
}

/// The request headers the engine reads, copied out of an `http` request.
struct RequestHeaders {
    method: String,
    cookie: String,
    authorization: Option<String>,
    anti_csrf: Option<String>,
}

impl RequestHeaders {
    fn read(headers: &HeaderMap, method: &Method) -> Self {
        let text = |name| headers.get(name).and_then(|v: &http::HeaderValue| v.to_str().ok());
        RequestHeaders {
            method: method.as_str().to_owned(),
            // Several Cookie headers (HTTP/2) are one list.
            cookie: headers
                .get_all(http::header::COOKIE)
                .iter()
                .filter_map(|value| value.to_str().ok())
                .collect::<Vec<_>>()
                .join("; "),
            authorization: text(http::header::AUTHORIZATION.as_str()).map(str::to_owned),
            anti_csrf: text(ANTI_CSRF_HEADER).map(str::to_owned),
        }
    }

    fn facts(&self) -> RequestFacts<'_> {
        RequestFacts {
            method: &self.method,
            path: "",
            cookie: Some(&self.cookie),
            authorization: self.authorization.as_deref(),
            anti_csrf: self.anti_csrf.as_deref(),
        }
    }
}

/// The Session object's side of the request engine, with no I/O: the seed's `getSession`
/// with its per-call flag (checked whatever the method, as in the seed), on the request's facts
/// and the signature check of the token it presents.
pub fn check_request(
    facts: &RequestFacts<'_>,
    policy: &AntiCsrfPolicy,
    enable_csrf_protection: bool,
    now: chrono::DateTime<chrono::Utc>,
    verify: impl FnOnce(&str) -> Result<VerifiedAccessToken, VerifyError>,
) -> Result<VerifiedAccessToken, SessionError> {
    engine::authenticate(facts, policy.check_for_flag(enable_csrf_protection), now, verify)
}

/// [`check_request`] on an `http` request's headers.
pub fn check_http_request(
    headers: &HeaderMap,
    method: &Method,
    policy: &AntiCsrfPolicy,
    enable_csrf_protection: bool,
    now: chrono::DateTime<chrono::Utc>,
    verifier: &Verifier,
) -> Result<VerifiedAccessToken, SessionError> {
    let request = RequestHeaders::read(headers, method);
    check_request(&request.facts(), policy, enable_csrf_protection, now, |token| {
        verifier.verify(token, now)
    })
}

/// A verified session: what the app's handler works with.
#[derive(Clone)]
pub struct Session {
    latch: Latch,
    user_id: String,
    handle: String,
    jwt_payload: Option<Value>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("user_id", &self.user_id)
            .field("handle", &self.handle)
            .finish()
    }
}

/// Headers that end the session in the browser; add them to the response (with `axum`, return
/// this value as part of the response).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClearSession(pub Vec<ResponseHeader>);

impl Session {
    /// No database or network call.
    pub fn get_user_id(&self) -> &str {
        &self.user_id
    }

    /// No database or network call: the payload of the verified access token.
    pub fn get_jwt_payload(&self) -> Option<&Value> {
        self.jwt_payload.as_ref()
    }

    pub fn get_handle(&self) -> &str {
        &self.handle
    }

    /// One database read at the origin.
    pub async fn get_session_info(&self) -> Result<Option<Value>, SessionError> {
        self.latch.get_session_info(&self.handle).await
    }

    /// One database write at the origin; overwrites the whole value.
    pub async fn update_session_info(&self, info: Option<Value>) -> Result<(), SessionError> {
        self.latch.update_session_info(&self.handle, info).await
    }

    /// Revokes this session (one database write; the origin blacklists it at the edge) and
    /// returns the headers that clear its cookies.
    pub async fn revoke_session(&self) -> Result<ClearSession, SessionError> {
        self.latch.revoke_session_using_session_handle(&self.handle).await?;
        Ok(ClearSession(self.latch.clear_headers().await?))
    }
}

#[cfg(feature = "axum")]
mod axum_support {
    use axum_core::extract::{FromRef, FromRequestParts};
    use axum_core::response::{IntoResponse, IntoResponseParts, Response, ResponseParts};
    use http::request::Parts;
    use http::{HeaderName, HeaderValue, StatusCode};

    use super::{ClearSession, Latch, Session};
    use crate::{SessionError, DEFAULT_SESSION_EXPIRED_STATUS};

    /// Extracts the verified session, with anti-CSRF protection on state-changing methods
    /// (`getSession(req, res, true)` for them, `false` for GET, HEAD, OPTIONS and TRACE, so
    /// that plain navigations work).
    impl<S> FromRequestParts<S> for Session
    where
        Latch: FromRef<S>,
        S: Send + Sync,
    {
        type Rejection = SessionError;

        async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, SessionError> {
            let csrf = crate::csrf::method_needs_anti_csrf(parts.method.as_str());
            Latch::from_ref(state).get_session(&parts.headers, &parts.method, csrf).await
        }
    }

    /// The seed's statuses: 440 for UNAUTHORISED, TRY_REFRESH_TOKEN and theft, 500 for
    /// GENERAL_ERROR, with the JSON error body.
    impl IntoResponse for SessionError {
        fn into_response(self) -> Response {
            let status = StatusCode::from_u16(self.kind().status(DEFAULT_SESSION_EXPIRED_STATUS))
                .expect("valid status");
            let mut response = (status, self.to_json()).into_response();
            response
                .headers_mut()
                .insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            response
        }
    }

    impl IntoResponseParts for ClearSession {
        type Error = std::convert::Infallible;

        fn into_response_parts(self, mut res: ResponseParts) -> Result<ResponseParts, Self::Error> {
            for header in self.0 {
                if let (Ok(name), Ok(value)) =
                    (HeaderName::try_from(header.name), HeaderValue::try_from(header.value))
                {
                    res.headers_mut().append(name, value);
                }
            }
            Ok(res)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn behind_the_edge_the_proof_is_the_session() {
        let secret = b"app-secret-0123456789".to_vec();
        let latch = Latch::new(
            "http://127.0.0.1:9",
            "k",
            Verification::BehindEdge { app_secret: secret.clone() },
        );
        let identity = Identity {
            user_id: "alice".into(),
            session_handle: "h".into(),
            jwt_payload: Some(serde_json::json!({"role": "admin"})),
        };
        let mut headers = HeaderMap::new();
        for (name, value) in identity.to_headers(&secret, chrono::Utc::now().timestamp()) {
            headers.insert(name, value.parse().unwrap());
        }
        let session = latch.get_session(&headers, &Method::POST, true).await.unwrap();
        assert_eq!(session.get_user_id(), "alice");
        assert_eq!(session.get_handle(), "h");
        assert_eq!(session.get_jwt_payload(), Some(&serde_json::json!({"role": "admin"})));
        headers.insert("x-latch-user-id", "mallory".parse().unwrap());
        let err = latch.get_session(&headers, &Method::GET, false).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unauthorised);
        // An origin that cannot be reached is GENERAL_ERROR, never a session error.
        let err = session.get_session_info().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::GeneralError);
    }
}
