use axum::extract::{Path, State};
use latch_shared::api::{
    CreateSessionRequest, IssuedSession, RefreshRequest, RevokeResponse, SessionInfo,
    VerifyRequest, VerifyResponse,
};

use super::Json;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::sessions::parse_handle;
use crate::AppState;

pub async fn create(
    _: Caller,
    State(state): State<AppState>,
    Json(request): Json<CreateSessionRequest>,
) -> ApiResult<Json<IssuedSession>> {
    Ok(Json(state.sessions.create(request).await?))
}

pub async fn refresh(
    _: Caller,
    State(state): State<AppState>,
    Json(request): Json<RefreshRequest>,
) -> ApiResult<Json<IssuedSession>> {
    Ok(Json(state.sessions.refresh(&request.refresh_token).await?))
}

pub async fn verify(
    _: Caller,
    State(state): State<AppState>,
    Json(request): Json<VerifyRequest>,
) -> ApiResult<Json<VerifyResponse>> {
    Ok(Json(state.sessions.verify(request).await?))
}

pub async fn revoke(
    _: Caller,
    State(state): State<AppState>,
    Path(handle): Path<String>,
) -> ApiResult<Json<RevokeResponse>> {
    Ok(Json(state.sessions.revoke(&parse_handle(&handle)?).await?))
}

pub async fn get_info(
    _: Caller,
    State(state): State<AppState>,
    Path(handle): Path<String>,
) -> ApiResult<Json<SessionInfo>> {
    let session_info = state.sessions.session_info(&parse_handle(&handle)?).await?;
    Ok(Json(SessionInfo { session_info }))
}

pub async fn update_info(
    _: Caller,
    State(state): State<AppState>,
    Path(handle): Path<String>,
    Json(body): Json<SessionInfo>,
) -> ApiResult<Json<SessionInfo>> {
    state.sessions.update_session_info(&parse_handle(&handle)?, body.session_info.clone()).await?;
    Ok(Json(body))
}
