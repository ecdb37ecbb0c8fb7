//! `/v1/sessions…`: the edge and app backends (API key or edge secret).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use latch_shared::api::{
    paths, CreateSessionRequest, IssuedSession, JwtPayloadUpdate, RefreshRequest,
    ReissuedAccessToken, RevokeResponse, SessionInfo, UsageReport, VerifyRequest, VerifyResponse,
};

use super::openapi::{BodyErrors, CallErrors, LimitErrors, SessionErrors};
use super::Json;
use crate::auth::{Caller, ClientAddress};
use crate::error::{ApiError, ApiResult};
use crate::sessions::parse_handle;
use crate::AppState;
use latch_shared::refresh::SessionHandle;

/// Creates a session for a user the app has authenticated.
#[utoipa::path(
    post,
    path = paths::SESSIONS,
    request_body = CreateSessionRequest,
    responses(
        (status = 200, description = "The session, its tokens and the headers to send", body = IssuedSession),
        CallErrors,
        BodyErrors,
        LimitErrors,
    ),
    params(("x-latch-client-address" = Option<String>, Header, description = "The end client's IP address, for the per-address rate limit")),
    security(("apiKey" = []), ("edgeSecret" = [])),
    tag = "sessions"
)]
pub async fn create(
    _: Caller,
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    Json(request): Json<CreateSessionRequest>,
) -> ApiResult<Json<IssuedSession>> {
    state.limits.create(client)?;
    Ok(Json(state.sessions.create(request, client).await?))
}

/// Rotates a refresh token; a reused one is theft and revokes the session.
#[utoipa::path(
    post,
    path = paths::REFRESH,
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "The refreshed session and its new tokens", body = IssuedSession),
        CallErrors,
        BodyErrors,
        SessionErrors,
        LimitErrors,
    ),
    params(("x-latch-client-address" = Option<String>, Header, description = "The end client's IP address, for the per-address rate limit")),
    security(("apiKey" = []), ("edgeSecret" = [])),
    tag = "sessions"
)]
pub async fn refresh(
    _: Caller,
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    Json(request): Json<RefreshRequest>,
) -> ApiResult<Json<IssuedSession>> {
    // Only a token the origin issued counts against its session: a forged one naming someone
    // else's handle must not use up their refreshes.
    let handle = state.sessions.issued_handle(&request.refresh_token);
    state.limits.refresh(handle.as_ref().map(SessionHandle::as_str), client)?;
    Ok(Json(state.sessions.refresh(&request.refresh_token).await?))
}

/// The strong check of an access token: the shared engine's rules, then that the session still
/// exists.
#[utoipa::path(
    post,
    path = paths::VERIFY,
    request_body = VerifyRequest,
    responses(
        (status = 200, description = "The session the token belongs to", body = VerifyResponse),
        CallErrors,
        BodyErrors,
        SessionErrors,
    ),
    security(("apiKey" = []), ("edgeSecret" = [])),
    tag = "sessions"
)]
pub async fn verify(
    _: Caller,
    State(state): State<AppState>,
    Json(request): Json<VerifyRequest>,
) -> ApiResult<Json<VerifyResponse>> {
    Ok(Json(state.sessions.verify(request).await?))
}

/// Reports an access token of refresh generation `generation` seen in use (the edge's first
/// sight of it, or a Session object verifying directly). Once the session's current generation
/// is proven, presenting the refresh token before it is theft. Idempotent.
#[utoipa::path(
    post,
    path = paths::SESSION_USED,
    params(("handle" = String, Path, description = "The session handle")),
    request_body = UsageReport,
    responses(
        (status = 204, description = "Recorded (or nothing to record: an older generation, or a session that is gone)"),
        CallErrors,
        BodyErrors,
    ),
    security(("apiKey" = []), ("edgeSecret" = [])),
    tag = "sessions"
)]
pub async fn used(
    _: Caller,
    State(state): State<AppState>,
    Path(handle): Path<String>,
    Json(report): Json<UsageReport>,
) -> ApiResult<StatusCode> {
    let handle = parse_handle(&handle)?;
    let generation = i64::try_from(report.generation)
        .map_err(|_| ApiError::BadRequest("generation is out of range".into()))?;
    state.sessions.prove_generation(handle.as_str(), generation).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Revokes one session and blacklists it at the edge.
#[utoipa::path(
    delete,
    path = paths::SESSION,
    params(("handle" = String, Path, description = "The session handle")),
    responses(
        (status = 200, description = "Whether there was such a session, and the headers that clear it", body = RevokeResponse),
        CallErrors,
    ),
    security(("apiKey" = []), ("edgeSecret" = [])),
    tag = "sessions"
)]
pub async fn revoke(
    _: Caller,
    State(state): State<AppState>,
    Path(handle): Path<String>,
) -> ApiResult<Json<RevokeResponse>> {
    Ok(Json(state.sessions.revoke(&parse_handle(&handle)?).await?))
}

/// Reads the session's info.
#[utoipa::path(
    get,
    path = paths::SESSION_INFO,
    params(("handle" = String, Path, description = "The session handle")),
    responses(
        (status = 200, description = "The session info", body = SessionInfo),
        CallErrors,
        SessionErrors,
    ),
    security(("apiKey" = []), ("edgeSecret" = [])),
    tag = "sessions"
)]
pub async fn get_info(
    _: Caller,
    State(state): State<AppState>,
    Path(handle): Path<String>,
) -> ApiResult<Json<SessionInfo>> {
    let session_info = state.sessions.session_info(&parse_handle(&handle)?).await?;
    Ok(Json(SessionInfo { session_info }))
}

/// Overwrites the session's info, as the seed does.
#[utoipa::path(
    put,
    path = paths::SESSION_INFO,
    params(("handle" = String, Path, description = "The session handle")),
    request_body = SessionInfo,
    responses(
        (status = 200, description = "The stored session info", body = SessionInfo),
        CallErrors,
        BodyErrors,
        SessionErrors,
    ),
    security(("apiKey" = []), ("edgeSecret" = [])),
    tag = "sessions"
)]
pub async fn update_info(
    _: Caller,
    State(state): State<AppState>,
    Path(handle): Path<String>,
    Json(body): Json<SessionInfo>,
) -> ApiResult<Json<SessionInfo>> {
    state.sessions.update_session_info(&parse_handle(&handle)?, body.session_info.clone()).await?;
    Ok(Json(body))
}

/// Replaces the session's JWT payload, and re-issues the access token the client holds with it
/// (same session, generation, anti-CSRF token and expiry): the client's next request carries
/// the new payload, and every refresh from now on.
#[utoipa::path(
    put,
    path = paths::SESSION_JWT_PAYLOAD,
    params(("handle" = String, Path, description = "The session handle")),
    request_body = JwtPayloadUpdate,
    responses(
        (status = 200, description = "The re-issued access token and the headers to send", body = ReissuedAccessToken),
        CallErrors,
        BodyErrors,
        SessionErrors,
    ),
    security(("apiKey" = []), ("edgeSecret" = [])),
    tag = "sessions"
)]
pub async fn update_jwt_payload(
    _: Caller,
    State(state): State<AppState>,
    Path(handle): Path<String>,
    Json(update): Json<JwtPayloadUpdate>,
) -> ApiResult<Json<ReissuedAccessToken>> {
    Ok(Json(state.sessions.update_jwt_payload(&parse_handle(&handle)?, update).await?))
}
