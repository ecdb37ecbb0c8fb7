//! # latch-session
//!
//! The Session object for Rust app backends, after the seed's page: [`Latch::get_session`]
//! verifies a request; [`Session::get_user_id`] and [`Session::get_jwt_payload`] cost nothing;
//! [`Session::get_session_info`], [`Session::update_session_info`] and
//! [`Session::revoke_session`] each cost one origin call (one database operation).
//!
//! Two ways to verify:
//! - [`Verification::BehindEdge`]: the edge verified the access token and signed an identity
//!   assertion (`latch_shared::assertion`); the app checks it against the edge's published
//!   keys (fetched once, cached, refetched on an unknown key). The per-call anti-CSRF flag reads
//!   what the edge found on this request.
//! - [`Verification::Direct`]: no edge in front; the app verifies the access token itself on
//!   the shared request engine, with the origin's published settings and keys (fetched once,
//!   cached, refetched on an unknown `kid`, kept while the origin is unreachable), and can
//!   refresh sessions itself ([`Latch::refresh_session`]).
//!
//! With the `axum` feature, [`Session`] is an extractor whose rejection answers with the
//! deployment's session-expired status, and [`ClearSession`] and [`SessionHeaders`] are
//! response parts.

use std::collections::HashSet;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{HeaderMap, Method};
use latch_shared::access::{VerifiedAccessToken, Verifier, VerifyError};
use latch_shared::api::{
    paths, CreateSessionRequest, DeviceList, DeviceReport, IssuedSession, JwtPayloadUpdate,
    RefreshRequest, ReissuedAccessToken, RevokeResponse, SessionHandles, SessionInfo, UsageReport,
    UserId, CLIENT_ADDRESS_HEADER, MAX_USER_AGENT_LEN,
};
use latch_shared::assertion::{AssertionVerifier, ASSERTION_HEADER};
use latch_shared::engine::{self, AntiCsrfPolicy, RequestFacts};
use latch_shared::identity::{jwt_payload_instruction, JWT_PAYLOAD_HEADER, LOGOUT_HEADER};
use latch_shared::keys::{Jwks, KeySet};
use latch_shared::protocol::{ResponseHeader, ANTI_CSRF_HEADER};
use latch_shared::sdk::{Dialect, TokenTransfer, AUTH_MODE_HEADER, RID_HEADER};
use latch_shared::secret::Secret;
use latch_shared::settings::SharedSettings;
pub use latch_shared::{ErrorKind, SessionError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

/// How requests are verified.
#[derive(Debug, Clone)]
pub enum Verification {
    /// Behind the Latch edge: check the `x-latch-assertion` it signs, with the keys it
    /// publishes at `jwks_url` (`<edge>/.well-known/latch-assertion-jwks.json`), its `issuer`
    /// (`ASSERTION_ISSUER`) and this app's `audience` (`ASSERTION_AUDIENCE`).
    BehindEdge { jwks_url: String, issuer: String, audience: String },
    /// No edge: verify access tokens with the origin's published settings and keys
    /// (`/.well-known/latch-settings.json`: issuer, audience, cookies, anti-CSRF rules).
    Direct,
}

const PUBLISHED_CACHE: Duration = Duration::from_secs(300);
const KEY_REFETCH_COOLDOWN: Duration = Duration::from_secs(10);

/// Something fetched from a Latch service and kept: cached for a while, refetched on demand
/// (an unknown key, at most once per cooldown), and kept while the service cannot be reached
/// (what verified under it was validly signed).
struct Published<T> {
    value: Mutex<Option<(Arc<T>, Instant)>>,
    last_refetch: Mutex<Option<Instant>>,
    /// When a fetch last failed with nothing cached: requests meanwhile fail at once instead of
    /// each waiting for an unreachable service.
    last_failure: Mutex<Option<Instant>>,
}

/// How long a failed first fetch is not retried.
const FAILURE_COOLDOWN: Duration = Duration::from_secs(5);

impl<T> Published<T> {
    fn new() -> Self {
        Published {
            value: Mutex::new(None),
            last_refetch: Mutex::new(None),
            last_failure: Mutex::new(None),
        }
    }

    async fn get(
        &self,
        refetch: bool,
        fetch: impl Future<Output = Result<T, SessionError>>,
    ) -> Result<Arc<T>, SessionError> {
        let cached = self.value.lock().expect("not poisoned").clone();
        if let Some((value, at)) = &cached {
            if !refetch && at.elapsed() < PUBLISHED_CACHE {
                return Ok(value.clone());
            }
        }
        let failed_recently = self
            .last_failure
            .lock()
            .expect("not poisoned")
            .is_some_and(|at| at.elapsed() < FAILURE_COOLDOWN);
        if cached.is_none() && failed_recently {
            return Err(general("the keys and settings could not be fetched; retrying shortly"));
        }
        match (fetch.await, cached) {
            (Ok(value), _) => {
                let value = Arc::new(value);
                *self.value.lock().expect("not poisoned") = Some((value.clone(), Instant::now()));
                Ok(value)
            }
            (Err(_), Some((stale, _))) => Ok(stale),
            (Err(err), None) => {
                *self.last_failure.lock().expect("not poisoned") = Some(Instant::now());
                Err(err)
            }
        }
    }

    fn refetch_allowed(&self) -> bool {
        let mut last = self.last_refetch.lock().expect("not poisoned");
        let allowed = last.is_none_or(|at| at.elapsed() >= KEY_REFETCH_COOLDOWN);
        if allowed {
            *last = Some(Instant::now());
        }
        allowed
    }
}

/// The origin's settings and a verifier for its keys.
struct OriginSettings {
    settings: SharedSettings,
    verifier: Verifier,
}

struct Inner {
    origin_url: String,
    api_key: String,
    verification: Verification,
    http: reqwest::Client,
    settings: Published<OriginSettings>,
    assertion_keys: Published<AssertionVerifier>,
    /// The (session, refresh generation) pairs this process has reported in use (direct mode).
    reported_uses: Mutex<HashSet<(String, u64)>>,
}

/// Bound on [`Inner::reported_uses`]: forgetting only means reporting a pair again.
const MAX_REPORTED_USES: usize = 4096;

/// A handle on Latch for an app backend: verifies requests and calls the origin's API with the
/// app's API key. Cheap to clone.
#[derive(Clone)]
pub struct Latch(Arc<Inner>);

impl std::fmt::Debug for Latch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Latch")
            .field("origin_url", &self.0.origin_url)
            .field("api_key", &"[redacted]")
            .field("verification", &self.0.verification)
            .finish()
    }
}

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
            settings: Published::new(),
            assertion_keys: Published::new(),
            reported_uses: Mutex::new(HashSet::new()),
        }))
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> Result<T, SessionError> {
        self.call_for(None, method, path, body).await
    }

    /// [`Latch::call`] on behalf of the client at `client_address` (the origin's per-address
    /// rate limits, and the network "your devices" shows).
    async fn call_for<T: DeserializeOwned>(
        &self,
        client_address: Option<IpAddr>,
        method: reqwest::Method,
        path: &str,
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> Result<T, SessionError> {
        let mut request = self
            .0
            .http
            .request(method, format!("{}{path}", self.0.origin_url))
            .bearer_auth(&self.0.api_key);
        if let Some(address) = client_address {
            request = request.header(CLIENT_ADDRESS_HEADER, address.to_string());
        }
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

    /// The seed's `getSession`: verifies the request. With `enable_csrf_protection`, the
    /// `anti-csrf` header must match whatever the method, as in the seed; behind the edge, the
    /// edge's assertion says whether it did on this request.
    pub async fn get_session(
        &self,
        headers: &HeaderMap,
        method: &Method,
        enable_csrf_protection: bool,
    ) -> Result<Session, SessionError> {
        match &self.0.verification {
            Verification::BehindEdge { .. } => {
                self.verify_assertion(headers, enable_csrf_protection).await
            }
            Verification::Direct => {
                self.verify_directly(headers, method, enable_csrf_protection).await
            }
        }
    }

    /// The origin's settings and keys.
    async fn origin_settings(&self, refetch: bool) -> Result<Arc<OriginSettings>, SessionError> {
        self.0
            .settings
            .get(refetch, async {
                let settings: SharedSettings =
                    self.call(reqwest::Method::GET, paths::SETTINGS, None::<&()>).await?;
                settings.validate().map_err(general)?;
                let keys = KeySet::from_jwks(&settings.jwks).map_err(general)?;
                let verifier =
                    Verifier::new(keys, settings.issuer.clone(), settings.audience.clone());
                Ok(OriginSettings { settings, verifier })
            })
            .await
    }

    /// The status the deployment answers session errors with (the seed's 440 by default):
    /// what the axum rejection uses.
    pub async fn session_expired_status(&self) -> u16 {
        match self.origin_settings(false).await {
            Ok(published) => published.settings.session_expired_status,
            Err(_) => latch_shared::DEFAULT_SESSION_EXPIRED_STATUS,
        }
    }

    /// The edge's assertion keys (behind the edge).
    async fn assertion_verifier(
        &self,
        refetch: bool,
    ) -> Result<Arc<AssertionVerifier>, SessionError> {
        let Verification::BehindEdge { jwks_url, issuer, audience } = &self.0.verification else {
            return Err(SessionError::general("not configured behind the edge"));
        };
        self.0
            .assertion_keys
            .get(refetch, async {
                let response = self.0.http.get(jwks_url).send().await.map_err(general)?;
                if !response.status().is_success() {
                    return Err(general(format!("{jwks_url} answered {}", response.status())));
                }
                let jwks: Jwks = response.json().await.map_err(general)?;
                let keys = KeySet::from_jwks(&jwks).map_err(general)?;
                Ok(AssertionVerifier::new(keys, issuer.clone(), audience.clone()))
            })
            .await
    }

    async fn verify_assertion(
        &self,
        headers: &HeaderMap,
        enable_csrf_protection: bool,
    ) -> Result<Session, SessionError> {
        let assertion = headers
            .get(ASSERTION_HEADER)
            .and_then(|value| value.to_str().ok())
            .ok_or_else(|| SessionError::unauthorised("the request carries no edge assertion"))?;
        let now = chrono::Utc::now();
        let mut verifier = self.assertion_verifier(false).await?;
        let mut checked = verifier.verify(assertion, now);
        if matches!(checked, Err(VerifyError::UnknownKey { .. }))
            && self.0.assertion_keys.refetch_allowed()
        {
            verifier = self.assertion_verifier(true).await?;
            checked = verifier.verify(assertion, now);
        }
        let claims = checked.map_err(|err| {
            SessionError::unauthorised(format!("the edge assertion is not valid: {err}"))
        })?;
        if enable_csrf_protection {
            claims.csrf.enforce()?;
        }
        Ok(Session {
            latch: self.clone(),
            user_id: claims.uid,
            handle: claims.sid,
            jwt_payload: claims.pld,
            access_token: None,
        })
    }

    async fn verify_directly(
        &self,
        headers: &HeaderMap,
        method: &Method,
        enable_csrf_protection: bool,
    ) -> Result<Session, SessionError> {
        let now = chrono::Utc::now();
        let request = RequestHeaders::read(headers, method);
        let mut published = self.origin_settings(false).await?;
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
        if unknown_key && self.0.settings.refetch_allowed() {
            published = self.origin_settings(true).await?;
            verified = check_request(
                &request.facts(),
                &published.settings.anti_csrf,
                enable_csrf_protection,
                now,
                |token| published.verifier.verify(token, now),
            );
        }
        let claims = verified?.claims;
        let access_token = engine::credential(&request.facts())
            .ok()
            .map(|credential| (Secret::new(credential.token().to_owned()), credential.transfer()));
        // Generation 0 (the login's) has no refresh token before it to spend.
        if let Some(generation) = claims.rgen.filter(|generation| *generation > 0) {
            self.report_first_use(&claims.sid, generation);
        }
        Ok(Session {
            latch: self.clone(),
            user_id: claims.user_id(),
            handle: claims.sid,
            jwt_payload: claims.pld,
            access_token,
        })
    }

    /// Tells the origin, in the background and once per session and generation, that an access
    /// token of refresh generation `generation` is in use: from then on the refresh token
    /// before it is spent, and presenting it is theft. The edge does the same behind it.
    fn report_first_use(&self, handle: &str, generation: u64) {
        {
            let mut reported = self.0.reported_uses.lock().unwrap_or_else(|e| e.into_inner());
            if reported.len() >= MAX_REPORTED_USES {
                reported.clear();
            }
            if !reported.insert((handle.to_owned(), generation)) {
                return;
            }
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let latch = self.clone();
        let path = paths::session_used(handle);
        runtime.spawn(async move {
            let report = UsageReport { generation };
            if let Err(err) = latch.call_no_content(reqwest::Method::POST, &path, &report).await {
                // Nothing is lost but strength: the successor's own refresh proves use too.
                tracing::warn!(error = %err, "latch-session: could not report a session's use");
            }
        });
    }

    async fn call_no_content(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &impl Serialize,
    ) -> Result<(), SessionError> {
        let response = self
            .0
            .http
            .request(method, format!("{}{path}", self.0.origin_url))
            .bearer_auth(&self.0.api_key)
            .json(body)
            .send()
            .await
            .map_err(general)?;
        match response.status() {
            status if status.is_success() => Ok(()),
            status => Err(general(format!("origin answered {status}"))),
        }
    }

    /// The seed's `refreshSession` (direct mode): rotates the request's refresh token at the
    /// origin. On success, send [`Refreshed::headers`] with the answer; on UNAUTHORISED or
    /// TOKEN_THEFT_DETECTED, send [`Latch::clear_session_headers`] (the seed clears the
    /// cookies then). Behind the edge, the edge serves the refresh endpoint itself and this is
    /// a GENERAL_ERROR.
    pub async fn refresh_session(&self, headers: &HeaderMap) -> Result<Refreshed, SessionError> {
        if let Verification::BehindEdge { .. } = self.0.verification {
            return Err(SessionError::general(
                "behind the edge, browsers refresh at the edge's refresh endpoint",
            ));
        }
        let request = RequestHeaders::read(headers, &Method::POST);
        // As the seed: both the refresh token and the id-refresh token, or no session.
        let policy = self.origin_settings(false).await?.settings.anti_csrf.clone();
        let (refresh_token, transfer) =
            engine::refresh_credential(&request.facts(), &policy, true)?;
        let issued: IssuedSession = self
            .call(reqwest::Method::POST, paths::REFRESH, Some(&RefreshRequest { refresh_token }))
            .await?;
        let headers = match transfer {
            TokenTransfer::Cookie => issued.response_headers,
            TokenTransfer::Header => self
                .origin_settings(false)
                .await?
                .settings
                .cookies
                .session_headers(&issued.session, &issued.tokens, TokenTransfer::Header),
        };
        Ok(Refreshed {
            session: Session {
                latch: self.clone(),
                user_id: issued.session.user_id,
                handle: issued.session.handle,
                jwt_payload: issued.session.jwt_payload,
                access_token: Some((Secret::new(issued.tokens.access_token.value), transfer)),
            },
            headers: SessionHeaders(headers),
        })
    }

    /// Creates a session (for apps not behind the edge; behind it, answer with the
    /// `x-latch-login` header instead). The result carries the headers to send.
    pub async fn create_new_session(
        &self,
        user_id: UserId,
        jwt_payload: Option<Value>,
        session_info: Option<Value>,
    ) -> Result<IssuedSession, SessionError> {
        let request = CreateSessionRequest { user_id, jwt_payload, session_info, device: None };
        self.call(reqwest::Method::POST, paths::SESSIONS, Some(&request)).await
    }

    /// [`Latch::create_new_session`] with where the person signs in from, for "your devices"
    /// ([`Session::list_devices`]): what the edge reports for a login behind it.
    pub async fn create_new_session_from(
        &self,
        device: SignInDevice,
        user_id: UserId,
        jwt_payload: Option<Value>,
        session_info: Option<Value>,
    ) -> Result<IssuedSession, SessionError> {
        let request = CreateSessionRequest {
            user_id,
            jwt_payload,
            session_info,
            device: Some(device.report),
        };
        self.call_for(device.address, reqwest::Method::POST, paths::SESSIONS, Some(&request)).await
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
        user_id: &UserId,
    ) -> Result<Vec<String>, SessionError> {
        let path = paths::user_sessions(user_id);
        let handles: SessionHandles =
            self.call(reqwest::Method::DELETE, &path, None::<&()>).await?;
        Ok(handles.handles)
    }

    pub async fn get_all_session_handles_for_user(
        &self,
        user_id: &UserId,
    ) -> Result<Vec<String>, SessionError> {
        let path = paths::user_sessions(user_id);
        let handles: SessionHandles = self.call(reqwest::Method::GET, &path, None::<&()>).await?;
        Ok(handles.handles)
    }

    /// The headers that end the session in the browser: behind the edge, the logout
    /// instruction (the edge clears the cookies and blacklists); directly, the cookies expired.
    pub async fn clear_session_headers(&self) -> Result<ClearSession, SessionError> {
        Ok(ClearSession(match &self.0.verification {
            Verification::BehindEdge { .. } => {
                vec![ResponseHeader { name: LOGOUT_HEADER.into(), value: "1".into() }]
            }
            Verification::Direct => {
                self.origin_settings(false).await?.settings.cookies.clear_headers()
            }
        }))
    }
}

/// The seed's `setRelevantHeadersForOptionsAPI`: add these to the answer to a CORS preflight
/// (with `axum`, return them as part of the response). Behind the edge, the edge answers
/// preflights itself.
pub fn options_api_headers() -> SessionHeaders {
    SessionHeaders(latch_shared::protocol::options_api_headers())
}

/// The request headers the engine reads, copied out of an `http` request.
struct RequestHeaders {
    method: String,
    cookie: String,
    authorization: Option<String>,
    anti_csrf: Option<String>,
    dialect: Dialect,
    rid: bool,
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
            dialect: Dialect::of_request(text(AUTH_MODE_HEADER)),
            rid: headers.contains_key(RID_HEADER),
        }
    }

    fn facts(&self) -> RequestFacts<'_> {
        RequestFacts {
            method: &self.method,
            path: "",
            cookie: Some(&self.cookie),
            authorization: self.authorization.as_deref(),
            anti_csrf: self.anti_csrf.as_deref(),
            // Direct mode knows no site origin to compare with: only the header counts.
            same_origin: false,
            // Counts only in custom-header mode: `check_request` reads the facts `under` the policy.
            custom_header: self.rid,
            dialect: self.dialect,
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
    let facts = facts.under(policy);
    engine::authenticate(&facts, policy.check_for_flag(enable_csrf_protection), now, verify)
}

/// Where a person signs in from, for "your devices", when the app creates the session itself
/// ([`Latch::create_new_session_from`]). The origin stores what its settings allow: the
/// browser, OS and kind read from the `User-Agent` (not the header), and the address only as
/// its network. Never a security decision: a client can claim anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignInDevice {
    pub report: DeviceReport,
    /// The client's address as the app knows it (its socket, or its own proxy's header).
    pub address: Option<IpAddr>,
}

impl SignInDevice {
    /// From the sign-in request's headers (its `User-Agent`, left out past
    /// [`MAX_USER_AGENT_LEN`] bytes or if not text) and the client's address.
    pub fn from_request(headers: &HeaderMap, address: Option<IpAddr>) -> SignInDevice {
        let user_agent = headers
            .get(http::header::USER_AGENT)
            .and_then(|value| value.to_str().ok())
            .filter(|value| value.len() <= MAX_USER_AGENT_LEN)
            .map(str::to_owned);
        SignInDevice { report: DeviceReport { user_agent, ..DeviceReport::default() }, address }
    }
}

/// A verified session: what the app's handler works with.
#[derive(Clone)]
pub struct Session {
    latch: Latch,
    user_id: UserId,
    handle: String,
    jwt_payload: Option<Value>,
    /// The access token the request carried and how it came (direct mode only: behind the
    /// edge, the app never sees it), for re-issuing it with a new payload the same way.
    access_token: Option<(Secret, TokenTransfer)>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("user_id", &self.user_id)
            .field("handle", &self.handle)
            .finish()
    }
}

/// A refreshed session and the headers that hand its new tokens to the browser.
#[derive(Debug, Clone)]
pub struct Refreshed {
    pub session: Session,
    pub headers: SessionHeaders,
}

/// Headers that end the session in the browser; add them to the response (with `axum`, return
/// this value as part of the response).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClearSession(pub Vec<ResponseHeader>);

/// Headers to add to a response (new session cookies, CORS preflight headers); with `axum`, a
/// response part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionHeaders(pub Vec<ResponseHeader>);

impl Session {
    /// No database or network call: the user id, with the type it was created with.
    pub fn get_user_id(&self) -> &UserId {
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

    /// Replaces this session's JWT payload (one database write) and returns the headers that
    /// hand the client its access token re-issued with it: behind the edge, the instruction
    /// the edge acts on (`x-latch-jwt-payload`); directly, the `sAccessToken` cookie and
    /// `front-token`. Every refresh carries the new payload from then on. The seed era's
    /// `updateJWTPayload`; for today's `mergeIntoAccessTokenPayload`, merge into
    /// [`Session::get_jwt_payload`] first.
    pub async fn update_jwt_payload(
        &mut self,
        jwt_payload: Option<Value>,
    ) -> Result<SessionHeaders, SessionError> {
        if jwt_payload.as_ref().is_some_and(|payload| !payload.is_object()) {
            return Err(general("the JWT payload must be a JSON object"));
        }
        let headers = match &self.access_token {
            None => {
                let value = jwt_payload_instruction(jwt_payload.as_ref());
                vec![ResponseHeader { name: JWT_PAYLOAD_HEADER.into(), value }]
            }
            Some((token, transfer)) => {
                let transfer = *transfer;
                let update = JwtPayloadUpdate {
                    access_token: token.expose().clone(),
                    jwt_payload: jwt_payload.clone(),
                };
                let path = paths::session_jwt_payload(&self.handle);
                let reissued: ReissuedAccessToken =
                    self.latch.call(reqwest::Method::PUT, &path, Some(&update)).await?;
                let cookies = &self.latch.origin_settings(false).await?.settings.cookies;
                let headers = cookies.access_token_headers(
                    &reissued.session,
                    &reissued.access_token,
                    transfer,
                );
                self.access_token = Some((Secret::new(reissued.access_token.value), transfer));
                headers
            }
        };
        self.jwt_payload = jwt_payload;
        Ok(SessionHeaders(headers))
    }

    /// "Your devices": the user's sessions with what they were made from, the
    /// [`MAX_DEVICES_LISTED`](latch_shared::api::MAX_DEVICES_LISTED) newest first and this one
    /// (marked `current`) always; `more` says whether older ones exist (one database read, two
    /// when this session is older than those listed).
    pub async fn list_devices(&self) -> Result<DeviceList, SessionError> {
        let path = paths::user_devices(&self.user_id, &[("current", &self.handle)]);
        self.latch.call(reqwest::Method::GET, &path, None::<&()>).await
    }

    /// Signs out the user's session `handle` ("that lost phone"), blacklisted at the edge by
    /// the origin; false if it was none of the user's. This session must still be live; to
    /// sign out this one, use [`Session::revoke_session`], which clears its cookies.
    pub async fn sign_out_device(&self, handle: &str) -> Result<bool, SessionError> {
        if handle == self.handle {
            return Err(general("this is the session asking: sign it out with revoke_session"));
        }
        let path = paths::user_device(&self.user_id, handle, &[("current", &self.handle)]);
        let revoked: SessionHandles =
            self.latch.call(reqwest::Method::DELETE, &path, None::<&()>).await?;
        Ok(!revoked.handles.is_empty())
    }

    /// Signs out every other device of the user, keeping this session; returns the handles
    /// revoked.
    pub async fn sign_out_other_devices(&self) -> Result<Vec<String>, SessionError> {
        let path = paths::user_devices(&self.user_id, &[("except", &self.handle)]);
        let revoked: SessionHandles =
            self.latch.call(reqwest::Method::DELETE, &path, None::<&()>).await?;
        Ok(revoked.handles)
    }

    /// Revokes this session (one database write; the origin blacklists it at the edge) and
    /// returns the headers that clear its cookies. As in the seed, a session that was already
    /// gone leaves the cookies alone (the headers are empty).
    pub async fn revoke_session(&self) -> Result<ClearSession, SessionError> {
        if self.latch.revoke_session_using_session_handle(&self.handle).await? {
            self.latch.clear_session_headers().await
        } else {
            Ok(ClearSession(Vec::new()))
        }
    }
}

#[cfg(feature = "axum")]
mod axum_support;
#[cfg(feature = "axum")]
pub use axum_support::SessionRejection;

#[cfg(test)]
mod tests;
